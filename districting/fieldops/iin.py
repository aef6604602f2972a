"""Validate, build, mask and hash Kazakhstan IINs (12-digit personal identification numbers).

An IIN is ``YYMMDD`` (birth date), one century/sex digit (1–2: 1800s, 3–4: 1900s,
5–6: 2000s; odd is male, even is female), a four-digit serial and a check digit.
The check digit is ``Σ dᵢ·i mod 11`` over the first 11 digits; when that is 10 it is
recomputed with the weights 3, 4, …, 11, 1, 2, and when that is 10 again the number
cannot be an IIN.

Personal data rule: a raw IIN must never reach an output, a log line or an error
message. Use :func:`mask_iin` (``8710******27``) or :func:`hash_iin` (salted SHA-256)
instead, and :func:`redact` on any free text that might hold one.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date

__all__ = [
    "IIN_LENGTH",
    "check_digit",
    "check_iin",
    "hash_iin",
    "iin_birth_date",
    "iin_sex",
    "make_iin",
    "mask_iin",
    "redact",
]

IIN_LENGTH = 12
WEIGHTS_FIRST = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
WEIGHTS_SECOND = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)
#: Century digit → first year of the century.
CENTURY_START = {1: 1800, 2: 1800, 3: 1900, 4: 1900, 5: 2000, 6: 2000}
MALFORMED = "(malformed)"
_DIGITS = frozenset("0123456789")
_TWELVE_DIGITS = re.compile(r"(?<!\d)\d{12}(?!\d)")


def _is_digits(text: str) -> bool:
    # str.isdigit() also accepts other scripts' digits (e.g. Arabic-Indic); an IIN may not.
    return bool(text) and all(c in _DIGITS for c in text)


def check_digit(first11: str) -> int | None:
    """The check digit of the first 11 digits, or ``None`` if it cannot be computed."""
    if len(first11) != IIN_LENGTH - 1 or not _is_digits(first11):
        raise ValueError("check_digit needs exactly 11 digits")
    digits = [int(c) for c in first11]
    value = sum(d * w for d, w in zip(digits, WEIGHTS_FIRST, strict=True)) % 11
    if value == 10:
        value = sum(d * w for d, w in zip(digits, WEIGHTS_SECOND, strict=True)) % 11
    return None if value == 10 else value


def _birth_date(text: str) -> date | None:
    century = CENTURY_START.get(int(text[6]))
    if century is None:
        return None
    try:
        return date(century + int(text[0:2]), int(text[2:4]), int(text[4:6]))
    except ValueError:
        return None


def check_iin(text: str) -> str | None:
    """``None`` if ``text`` is a valid IIN, else a short reason.

    The reasons are ``"not 12 digits"``, ``"invalid century digit D"``, ``"invalid birth
    date YYMMDD"``, ``"check digit C, expected E"`` and ``"check digit cannot be
    computed"``. The birth-date reason quotes six digits of the input: show it only to
    someone allowed to see the IIN (the dedup outputs use the reason without digits).
    """
    if not isinstance(text, str) or len(text) != IIN_LENGTH or not _is_digits(text):
        return "not 12 digits"
    if int(text[6]) not in CENTURY_START:
        return f"invalid century digit {text[6]}"
    if _birth_date(text) is None:
        return f"invalid birth date {text[:6]}"
    expected = check_digit(text[:11])
    if expected is None:
        return "check digit cannot be computed"
    if int(text[11]) != expected:
        return f"check digit {text[11]}, expected {expected}"
    return None


def _require_valid(iin: str) -> None:
    reason = check_iin(iin)
    if reason is not None:
        # The reason never quotes the whole number; the masked form is safe to show.
        raise ValueError(f"{mask_iin(iin)} is not a valid IIN ({reason.split(' ')[0]} …)")


def iin_birth_date(iin: str) -> date:
    """The birth date encoded in a valid IIN (``ValueError`` if it is not valid)."""
    _require_valid(iin)
    birth = _birth_date(iin)
    assert birth is not None  # guaranteed by _require_valid
    return birth


def iin_sex(iin: str) -> str:
    """``"M"`` or ``"F"``, from the century/sex digit of a valid IIN."""
    _require_valid(iin)
    return "M" if int(iin[6]) % 2 == 1 else "F"


def make_iin(birth: date, sex: str, serial: int) -> str:
    """A valid IIN for a birth date (1800–2099), sex ``"M"``/``"F"`` and serial 0–9999.

    When the serial gives a number whose check digit cannot be computed (about one
    serial in 121), the next serial (modulo 10 000) is used, so the result always
    validates; its serial digits may therefore differ from ``serial``.
    """
    if sex not in ("M", "F"):
        raise ValueError(f"sex must be 'M' or 'F', not {sex!r}")
    if not 0 <= serial <= 9999:
        raise ValueError(f"serial must be 0–9999, not {serial}")
    if not 1800 <= birth.year <= 2099:
        raise ValueError(f"an IIN encodes birth years 1800–2099, not {birth.year}")
    century = {1800: 1, 1900: 3, 2000: 5}[birth.year // 100 * 100] + (sex == "F")
    prefix = f"{birth.year % 100:02d}{birth.month:02d}{birth.day:02d}{century}"
    for step in range(10_000):
        first11 = f"{prefix}{(serial + step) % 10_000:04d}"
        digit = check_digit(first11)
        if digit is not None:
            return f"{first11}{digit}"
    raise AssertionError("unreachable: some serial always has a computable check digit")


def mask_iin(iin: str) -> str:
    """The first 4 and last 2 characters of a 12-character IIN (``8710******27``).

    Anything that is not 12 characters long is ``"(malformed)"`` (an empty value stays
    empty), so that a mistyped number is never shown either.
    """
    if iin == "":
        return ""
    if len(iin) != IIN_LENGTH:
        return MALFORMED
    return f"{iin[:4]}{'*' * 6}{iin[-2:]}"


def hash_iin(iin: str, *, salt: bytes) -> str:
    """The first 16 hex digits of ``sha256(salt + iin)``: a stable pseudonym of an IIN.

    With the same salt the same IIN always gives the same hash, so records can be
    matched across runs. IINs are few enough (about 4·10⁹) to be found again by trying
    them all when the salt is known: keep the salt secret and apart from the outputs.
    """
    if not salt:
        raise ValueError("hash_iin needs a non-empty salt")
    return hashlib.sha256(salt + iin.encode("utf-8")).hexdigest()[:16]


def redact(text: str) -> str:
    """``text`` with every run of exactly 12 digits replaced by its masked form."""
    return _TWELVE_DIGITS.sub(lambda match: mask_iin(match.group(0)), text)
