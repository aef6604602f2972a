"""Tests of IIN validation, construction, masking and hashing."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from districting.fieldops.iin import (
    WEIGHTS_FIRST,
    WEIGHTS_SECOND,
    check_digit,
    check_iin,
    hash_iin,
    iin_birth_date,
    iin_sex,
    make_iin,
    mask_iin,
    redact,
)

VECTORS = {
    "871008401427": (date(1987, 10, 8), "F"),
    "760212350620": (date(1976, 2, 12), "M"),
    "800416300257": (date(1980, 4, 16), "M"),
    "680503450037": (date(1968, 5, 3), "F"),
}


def _first_sum(iin: str) -> int:
    return sum(int(d) * w for d, w in zip(iin[:11], WEIGHTS_FIRST, strict=True)) % 11


def _second_sum(iin: str) -> int:
    return sum(int(d) * w for d, w in zip(iin[:11], WEIGHTS_SECOND, strict=True)) % 11


def _random_iins(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    start = date(1900, 1, 1)
    return [make_iin(start + timedelta(days=rng.randrange(73_000)), rng.choice("MF"),
                     rng.randrange(10_000)) for _ in range(count)]


@pytest.mark.parametrize("iin", sorted(VECTORS))
def test_vectors_are_valid(iin: str) -> None:
    assert check_iin(iin) is None
    assert (iin_birth_date(iin), iin_sex(iin)) == VECTORS[iin]


@pytest.mark.parametrize(("text", "reason"), [
    ("87100840142", "not 12 digits"),
    ("8710084014270", "not 12 digits"),
    ("", "not 12 digits"),
    ("87100840142X", "not 12 digits"),
    (" 87100840142", "not 12 digits"),
    ("٨٧١٠٠٨٤٠١٤٢٧", "not 12 digits"),  # Arabic-Indic digits are not IIN digits
    ("871340401427", "invalid birth date 871340"),
    ("870229401427", "invalid birth date 870229"),  # 1987 is not a leap year
    ("871008001427", "invalid century digit 0"),
    ("871008701427", "invalid century digit 7"),
    ("871008901427", "invalid century digit 9"),
    ("871008401420", "check digit 0, expected 7"),
])
def test_reasons(text: str, reason: str) -> None:
    assert check_iin(text) == reason


def test_leap_day_depends_on_the_century_digit() -> None:
    # 29 Feb 2000 exists (2000 is a leap year); 29 Feb 1900 does not.
    assert check_iin(make_iin(date(2000, 2, 29), "F", 1)) is None
    text = "000229" + "3" + make_iin(date(2000, 2, 29), "M", 1)[7:]
    assert check_iin(text) == "invalid birth date 000229"


def test_second_weights_branch_is_used_when_the_first_sum_is_ten() -> None:
    prefix = "871008" + "4"
    found_valid = found_uncomputable = False
    for serial in range(10_000):
        first11 = f"{prefix}{serial:04d}"
        first = _first_sum(first11 + "0")
        if first != 10:
            continue
        second = _second_sum(first11 + "0")
        if second != 10 and not found_valid:
            iin = first11 + str(second)
            assert check_digit(first11) == second
            assert check_iin(iin) is None
            wrong = first11 + str((second + 1) % 10)
            assert check_iin(wrong) == f"check digit {(second + 1) % 10}, expected {second}"
            found_valid = True
        if second == 10 and not found_uncomputable:
            assert check_digit(first11) is None
            for last in "0123456789":
                assert check_iin(first11 + last) == "check digit cannot be computed"
            found_uncomputable = True
    assert found_valid and found_uncomputable


def test_make_iin_skips_serials_whose_check_digit_cannot_be_computed() -> None:
    birth = date(1987, 10, 8)
    serial = next(s for s in range(10_000) if check_digit(f"8710084{s:04d}") is None)
    iin = make_iin(birth, "F", serial)
    assert check_iin(iin) is None
    assert int(iin[7:11]) == serial + 1 or check_digit(f"8710084{serial + 1:04d}") is None


def _mutants(iin: str) -> list[tuple[int, str]]:
    return [(i + 1, iin[:i] + d + iin[i + 1:]) for i in range(12) for d in "0123456789"
            if d != iin[i]]


def _blind(position: int, original: str, mutant: str) -> bool | None:
    """Whether the check digit cannot see this change (None: the branch changed, either)."""
    if position == 12:
        return False
    branch = _first_sum(original) == 10, _first_sum(mutant) == 10
    if branch[0] != branch[1]:
        return None
    weights = WEIGHTS_SECOND if branch[0] else WEIGHTS_FIRST
    return weights[position - 1] % 11 == 0


def test_single_digit_changes_are_caught_except_the_weight_eleven_digit() -> None:
    """Every one-digit change is caught by the date/century rule or the check digit, except
    where the official scheme is blind: the digit weighted 11 (≡ 0 mod 11), which is digit
    11 with the first weights and digit 9 with the second, and the rare changes that move
    the number from one weight branch to the other."""
    caught = blind = switched_blind = total = 0
    for iin in [*VECTORS, *_random_iins(400, seed=1)]:
        for position, mutant in _mutants(iin):
            expected_blind = _blind(position, iin, mutant)
            detected = check_iin(mutant) is not None
            total += 1
            caught += detected
            if expected_blind is None:
                switched_blind += not detected
                continue
            assert detected != expected_blind, (position, mask_iin(iin))
            blind += not detected
    print(f"\none-digit changes: {caught / total:.2%} caught, {blind / total:.2%} invisible "
          f"(digit weighted 11), {switched_blind / total:.2%} missed after switching branch")
    assert caught / total > 0.90
    assert blind / total < 0.09
    assert switched_blind / total < 0.02


def test_changes_to_the_date_century_and_check_digits_are_always_caught() -> None:
    for iin in [*VECTORS, *_random_iins(200, seed=2)]:
        for position, mutant in _mutants(iin):
            if position == 12:
                assert check_iin(mutant) is not None


@settings(max_examples=500, deadline=None)
@given(birth=st.dates(date(1800, 1, 1), date(2099, 12, 31)), sex=st.sampled_from("MF"),
       serial=st.integers(0, 9999))
def test_make_iin_always_validates(birth: date, sex: str, serial: int) -> None:
    iin = make_iin(birth, sex, serial)
    assert len(iin) == 12 and iin.isascii() and iin.isdigit()
    assert check_iin(iin) is None
    assert iin_birth_date(iin) == birth
    assert iin_sex(iin) == sex


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_check_iin_agrees_with_its_parts(text: str) -> None:
    reason = check_iin(text)
    if reason is None:
        assert check_digit(text[:11]) == int(text[11])
        assert iin_birth_date(text).strftime("%y%m%d") == text[:6]


def test_make_iin_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="sex"):
        make_iin(date(2000, 1, 1), "X", 1)
    with pytest.raises(ValueError, match="serial"):
        make_iin(date(2000, 1, 1), "M", 10_000)
    with pytest.raises(ValueError, match="1800"):
        make_iin(date(1799, 12, 31), "M", 1)


def test_errors_never_quote_the_raw_iin() -> None:
    bad = "871008401420"
    with pytest.raises(ValueError) as info:
        iin_birth_date(bad)
    assert bad not in str(info.value)
    assert "8710******20" in str(info.value)


def test_mask() -> None:
    assert mask_iin("871008401427") == "8710******27"
    assert mask_iin("87100840142") == "(malformed)"
    assert mask_iin("8710084014270") == "(malformed)"
    assert mask_iin("") == ""


def test_hash_is_salted_stable_and_short() -> None:
    a = hash_iin("871008401427", salt=b"s" * 32)
    assert a == hash_iin("871008401427", salt=b"s" * 32)
    assert len(a) == 16 and int(a, 16) >= 0
    assert a != hash_iin("871008401427", salt=b"t" * 32)
    assert a != hash_iin("760212350620", salt=b"s" * 32)
    with pytest.raises(ValueError):
        hash_iin("871008401427", salt=b"")


def test_redact_masks_every_twelve_digit_run() -> None:
    text = "id 871008401427, phone 87010000000, code 1234567890123"
    assert redact(text) == "id 8710******27, phone 87010000000, code 1234567890123"
