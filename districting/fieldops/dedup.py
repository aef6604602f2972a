"""Keep one record per person across channels and visits; quarantine, flag or link all others.

Every input record lands in exactly one of four tables:

* **accepted** — one record per valid IIN, plus tablet visits that met no person
  (status refused, absent or vacant, blank IIN), which progress monitoring needs;
* **duplicates** — other records of an accepted IIN, with ``duplicate_of``;
* **quarantined** — records that cannot be used as they are, with a ``reason``: a
  missing or invalid IIN, an address (``building_id``) not in the plan, a tablet
  record's ``cd_code`` not in the plan, a ``submitted_at`` outside the census window,
  or a row problem found when reading (a malformed CSV row, a blank or repeated
  ``record_id``, unknown channel, unreadable time, tablet record without status, bad
  dwelling number, blank building, a household size that is not 1 to
  :data:`~districting.fieldops.records.MAX_PERSONS`; see
  :func:`~districting.fieldops.records.record_issues`);
* **conflicts** — every record of an IIN that appears at two or more addresses
  (``building_id`` and ``dwelling``), with a ``conflict_group``; none of them is
  accepted until someone resolves the conflict.

Precedence among the records of one IIN at one address (:data:`PRECEDENCE`): a complete
record (online, or a tablet visit with status completed) before an incomplete one; then
online before tablet; then the latest ``submitted_at``; then the smallest ``record_id``.

Personal data: outputs never hold a raw IIN. The ``iin`` column becomes ``iin_hash``
(:func:`~districting.fieldops.iin.hash_iin`, salted SHA-256) and ``iin_masked``
(``8710******27``); an invalid IIN keeps only its masked form (``(malformed)`` unless
it has 12 characters). Reuse the same salt file across runs so that hashes match, and
keep it secret: with the salt, IINs can be recovered from their hashes by trying them all.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import shlex
import stat
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from districting.check import read_plan_layers
from districting.errors import DistrictingError, InputFileError
from districting.fieldops.generate import read_plan_units
from districting.fieldops.iin import check_iin, hash_iin, mask_iin
from districting.fieldops.records import (
    CENSUS_WINDOW,
    CHANNELS,
    NO_PERSON_STATUSES,
    ONLINE_CHANNELS,
    cell_texts,
    normalize_records,
    parse_times,
    record_issues,
)
from districting.outputs.cells import frame_csv
from districting.outputs.folders import atomic_directory
from districting.outputs.writer import write_json

logger = logging.getLogger(__name__)

__all__ = [
    "OUTPUT_COLUMNS",
    "OUTPUT_FILES",
    "PRECEDENCE",
    "SALT_BYTES",
    "DedupResult",
    "dedup",
    "default_salt_path",
    "load_or_create_salt",
    "plan_buildings",
    "plan_keys",
    "write_dedup",
]

PRECEDENCE = (
    "among the records of one IIN at one address, keep: a complete record (online, or "
    "tablet with status completed) before an incomplete one; then online before tablet; "
    "then the latest submitted_at; then the smallest record_id"
)
SALT_BYTES = 32
MIN_SALT_BYTES = 16
FORMAT = "districting-dedup/1"
#: Columns shared by the four tables; each adds its own at the end.
OUTPUT_COLUMNS = (
    "record_id", "iin_hash", "iin_masked", "building_id", "dwelling", "household_id",
    "persons", "channel", "submitted_at", "cd_code", "interviewer", "status", "source", "row",
)
OUTPUT_FILES = {
    "accepted": ("accepted.csv", ()),
    "duplicates": ("duplicates.csv", ("duplicate_of",)),
    "quarantined": ("quarantined.csv", ("reason", "detail")),
    "conflicts": ("conflicts.csv", ("conflict_group", "addresses")),
}
SUMMARY_FILE = "summary.json"
#: Runs of 12 or more ASCII digits: where an IIN could hide in another column.
_DIGIT_RUN = re.compile(r"[0-9]{12,}")


@dataclass
class DedupResult:
    """The four tables (columns :data:`OUTPUT_COLUMNS` plus their own, no raw IIN), sorted
    by ``record_id``, and the summary written to ``summary.json``."""

    accepted: pd.DataFrame
    duplicates: pd.DataFrame
    quarantined: pd.DataFrame
    conflicts: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The four tables by name, in :data:`OUTPUT_FILES` order."""
        return {name: getattr(self, name) for name in OUTPUT_FILES}


def _iin_reason(reason: str) -> tuple[str, str]:
    """A ``check_iin`` reason as (quarantine reason, detail), neither quoting a birth date."""
    if reason.startswith("invalid birth date"):
        return "invalid IIN: invalid birth date", "digits 1–6 are not a valid date YYMMDD"
    if reason.startswith("invalid century digit"):
        return "invalid IIN: invalid century digit", f"{reason} (must be 1–6)"
    if reason.startswith("check digit cannot"):
        return "invalid IIN: check digit cannot be computed", reason
    if reason.startswith("check digit"):
        return "invalid IIN: wrong check digit", reason
    return f"invalid IIN: {reason}", reason


def dedup(records: pd.DataFrame, *, known_buildings: set[str] | None,
          salt: bytes, known_cds: set[str] | None = None,
          window: tuple[date, date] | None = CENSUS_WINDOW) -> DedupResult:
    """Sort every record into accepted, duplicates, quarantined or conflicts.

    Parameters
    ----------
    records
        Records as from :func:`~districting.fieldops.records.read_records` or the
        generator: the columns of ``ALL_COLUMNS`` (tablet columns may be absent),
        optionally ``source``, ``row`` and ``row_problem``. Other columns are dropped
        (they might hold personal data). A blank or repeated ``record_id`` is
        quarantined (see :func:`~districting.fieldops.records.record_issues`).
    known_buildings
        The plan's ``building_id`` values; a record elsewhere is quarantined as
        "unknown address". ``None`` skips this check.
    salt
        The secret salt of :func:`~districting.fieldops.iin.hash_iin` (see
        :func:`load_or_create_salt`).
    known_cds
        The plan's ``cd_code`` values; a tablet record with another (or none) is
        quarantined as "unknown CD". ``None`` skips this check.
    window
        First and last day (inclusive) of the census; a record submitted on another day
        (by the clock it was stamped with) is quarantined as "outside census window".
        The default is the 2021 census (:data:`~districting.fieldops.records.CENSUS_WINDOW`);
        ``None`` skips this check.

    Raises
    ------
    DistrictingError
        A ``record_id`` holds an IIN (it would be written to every output).
    RuntimeError
        An internal error: the four tables are not a partition of the input records.
    """
    if len(salt) < MIN_SALT_BYTES:
        raise DistrictingError(f"the salt must have at least {MIN_SALT_BYTES} bytes")
    frame = normalize_records(records)
    frame["source"] = (frame["source"].map(lambda v: "" if pd.isna(v) else str(v))
                       if "source" in frame.columns else "")
    frame["row"] = (frame["row"].map(lambda v: "" if pd.isna(v) else str(v))
                    if "row" in frame.columns else "")
    ids = frame["record_id"]
    raw_iins = set(frame["iin"][frame["iin"] != ""])
    if ids.str.contains(_DIGIT_RUN).any() and any(_holds_iin(i, raw_iins) for i in ids):
        raise DistrictingError("some record_id values contain an IIN; record ids must not "
                               "hold personal data")
    n = len(frame)
    outcome = np.full(n, "", dtype=object)
    reason = np.full(n, "", dtype=object)
    detail = np.full(n, "", dtype=object)

    def settle(mask: np.ndarray, name: str, why: str = "", more: str = "") -> None:
        open_ = mask & (outcome == "")
        outcome[open_] = name
        reason[open_] = why
        detail[open_] = more

    for issue in record_issues(frame, window=window):
        if issue.quarantine and outcome[issue.position] == "":
            outcome[issue.position] = "quarantined"
            reason[issue.position] = issue.reason
            detail[issue.position] = issue.detail
    if known_buildings is not None:
        unknown = ~frame["building_id"].isin(known_buildings).to_numpy()
        settle(unknown, "quarantined", "unknown address",
               "the building_id is not in the plan")
    if known_cds is not None:
        cd_code = frame["cd_code"]
        unknown_cd = ((frame["channel"] == "tablet") & ~cd_code.isin(known_cds)).to_numpy()
        codes = cd_code.astype(str).tolist()
        for at in np.flatnonzero(unknown_cd & (outcome == "")).tolist():
            code = codes[at]
            outcome[at], reason[at] = "quarantined", "unknown CD"
            detail[at] = (f"cd_code {_show_cell(code)} is not a counting district of the "
                          "plan" if code else "the tablet record has no cd_code")
    channel, status, iin = frame["channel"], frame["status"], frame["iin"]
    no_person = ((channel == "tablet") & status.isin(NO_PERSON_STATUSES) & (iin == ""))
    settle(no_person.to_numpy(), "accepted")
    settle((iin == "").to_numpy(), "quarantined", "missing IIN", "the iin is empty")
    checks = {value: check_iin(value) for value in iin[iin != ""].unique()}
    iin_values = iin.tolist()
    for position in np.flatnonzero(outcome == ""):
        why = checks[iin_values[position]]
        if why is not None:
            outcome[position] = "quarantined"
            reason[position], detail[position] = _iin_reason(why)
    conflict_group, duplicate_of = _group_by_iin(frame, outcome)
    valid = {value for value, why in checks.items() if why is None}
    result = _tables(frame, outcome, reason, detail, conflict_group, duplicate_of,
                     raw_iins, {value: hash_iin(value, salt=salt) for value in valid})
    _check_partition(frame, result)
    result.summary = _summary(frame, outcome, reason, result, known_buildings, salt,
                              known_cds=known_cds, window=window)
    logger.info("dedup: %d record(s): %d accepted, %d duplicates, %d quarantined, "
                "%d in conflicts", n, len(result.accepted), len(result.duplicates),
                len(result.quarantined), len(result.conflicts))
    return result


def _group_by_iin(frame: pd.DataFrame, outcome: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Settle the records with a valid IIN: conflicts, then one accepted per IIN."""
    n = len(frame)
    conflict_group = np.full(n, "", dtype=object)
    duplicate_of = np.full(n, "", dtype=object)
    open_ = np.flatnonzero(outcome == "")
    if len(open_) == 0:
        return conflict_group, duplicate_of
    sub = frame.iloc[open_][["record_id", "iin", "building_id", "dwelling", "channel",
                             "status"]].copy()
    sub["position"] = open_
    sub["address"] = sub["building_id"] + "\x1f" + sub["dwelling"].str.lstrip("0")
    addresses = sub.groupby("iin")["address"].transform("nunique")
    clash = sub[addresses.to_numpy() > 1]
    if len(clash):
        firsts = clash.groupby("iin")["record_id"].min().sort_values()
        width = max(4, len(str(len(firsts))))
        names = {iin: f"C{k + 1:0{width}d}" for k, iin in enumerate(firsts.index)}
        positions = clash["position"].to_numpy()
        outcome[positions] = "conflicts"
        conflict_group[positions] = clash["iin"].map(names).to_numpy()
    rest = sub[addresses.to_numpy() == 1].copy()
    online = rest["channel"].isin(ONLINE_CHANNELS)
    rest["incomplete"] = ~(online | (rest["status"] == "completed"))
    rest["tablet"] = ~online
    rest["time"] = parse_times(frame["submitted_at"].iloc[rest["position"]]).to_numpy()
    rest = rest.sort_values(["iin", "incomplete", "tablet", "time", "record_id"],
                            ascending=[True, True, True, False, True], kind="stable")
    keep = ~rest["iin"].duplicated(keep="first")
    outcome[rest["position"][keep].to_numpy()] = "accepted"
    winner = dict(zip(rest["iin"][keep], rest["record_id"][keep], strict=True))
    others = rest[~keep]
    outcome[others["position"].to_numpy()] = "duplicates"
    duplicate_of[others["position"].to_numpy()] = others["iin"].map(winner).to_numpy()
    return conflict_group, duplicate_of


def _check_partition(frame: pd.DataFrame, result: DedupResult) -> None:
    """Every input record in exactly one table: a broken promise is a bug, never silent.

    Records are told apart by ``record_id`` and ``row`` (a repeated ``record_id`` is
    quarantined, not refused), counted as a multiset."""
    def keys(table: pd.DataFrame) -> pd.Series:
        return table["record_id"].astype(str) + "\x1f" + table["row"].astype(str)

    inputs = keys(frame)
    placed = pd.concat([keys(table) for table in result.tables().values()])
    surplus = placed.value_counts().sub(inputs.value_counts(), fill_value=0)
    if (surplus != 0).any():
        raise RuntimeError(f"internal error: dedup placed {len(placed)} record(s) for "
                           f"{len(inputs)} inputs ({int(-surplus[surplus < 0].sum())} lost, "
                           f"{int(surplus[surplus > 0].sum())} placed twice)")


def _show_cell(value: str) -> str:
    """A cell value safe to quote in a detail: every run of 12 or more digits (where an IIN
    could hide) masked but its first 4 and last 2 digits, at most 40 characters."""
    text = _DIGIT_RUN.sub(lambda m: m.group(0)[:4] + "*" * (len(m.group(0)) - 6)
                          + m.group(0)[-2:], value)
    return repr(text if len(text) <= 40 else text[:39] + "…")


def _holds_iin(text: str, raw_iins: set[str]) -> bool:
    return any(run[i:i + 12] in raw_iins for run in _DIGIT_RUN.findall(text)
               for i in range(len(run) - 11))


def _scrub(values: pd.Series, raw_iins: set[str]) -> pd.Series:
    """Mask every input IIN that sits in another text column (e.g. a household id)."""
    hits = values.str.contains(_DIGIT_RUN)
    if not hits.any():
        return values

    def mask_run(match: re.Match[str]) -> str:
        run = list(match.group(0))
        for i in range(len(run) - 11):
            if match.group(0)[i:i + 12] in raw_iins:
                run[i + 4:i + 10] = "*" * 6
        return "".join(run)

    values = values.copy()
    values[hits] = values[hits].map(lambda text: _DIGIT_RUN.sub(mask_run, text))
    return values


def _tables(frame: pd.DataFrame, outcome: np.ndarray, reason: np.ndarray, detail: np.ndarray,
            conflict_group: np.ndarray, duplicate_of: np.ndarray, raw_iins: set[str],
            hashes: dict[str, str]) -> DedupResult:
    """The four tables; ``hashes`` maps each valid IIN to its hash (invalid ones get none)."""
    out = pd.DataFrame({"record_id": frame["record_id"]})
    iin = frame["iin"]
    out["iin_hash"] = iin.map(lambda v: hashes.get(v, ""))
    out["iin_masked"] = iin.map(mask_iin)
    for column in OUTPUT_COLUMNS[3:]:
        out[column] = _scrub(frame[column].astype(str), raw_iins) if column != "row" \
            else frame[column].astype(str)
    out["duplicate_of"] = duplicate_of
    out["reason"] = reason
    out["detail"] = detail
    out["conflict_group"] = conflict_group
    addresses = pd.Series("", index=out.index, dtype=object)
    in_conflict = conflict_group != ""
    if in_conflict.any():
        label = (frame["building_id"] + np.where(frame["dwelling"] != "",
                                                 " dwelling " + frame["dwelling"], ""))
        listed = (pd.DataFrame({"group": conflict_group[in_conflict],
                                "label": _scrub(label[in_conflict], raw_iins)})
                  .groupby("group")["label"]
                  .agg(lambda s: " | ".join(sorted(set(s)))))
        addresses[in_conflict] = pd.Series(conflict_group[in_conflict]).map(listed).to_numpy()
    out["addresses"] = addresses
    tables = {}
    for name, (_, extra) in OUTPUT_FILES.items():
        table = out[outcome == name][[*OUTPUT_COLUMNS, *extra]]
        # by record_id, then (for a repeated one) file and row: the order of the input
        # records never matters
        repeated = bool(table["record_id"].duplicated().any())
        tables[name] = table.sort_values(
            ["record_id", "source", "row"] if repeated else "record_id", kind="stable",
            key=lambda column: (pd.to_numeric(column, errors="coerce") if column.name == "row"
                                else column),
        ).reset_index(drop=True)
    return DedupResult(**tables)


def _salt_fingerprint(salt: bytes) -> str:
    return hashlib.sha256(b"districting salt fingerprint\0" + salt).hexdigest()[:16]


def _summary(frame: pd.DataFrame, outcome: np.ndarray, reason: np.ndarray,
             result: DedupResult, known_buildings: set[str] | None,
             salt: bytes, *, known_cds: set[str] | None = None,
             window: tuple[date, date] | None = None) -> dict[str, Any]:
    channel = frame["channel"].where(frame["channel"].isin(CHANNELS), "(other)")
    by_channel: dict[str, dict[str, int]] = {}
    for name in [*CHANNELS, "(other)"]:
        mine = (channel == name).to_numpy()
        if name == "(other)" and not mine.any():
            continue
        settled = Counter(str(value) for value in outcome[mine])
        by_channel[name] = {"inputs": int(mine.sum()),
                            **{table: int(settled.get(table, 0)) for table in OUTPUT_FILES}}
    status_records = result.accepted[result.accepted["iin_masked"] == ""]
    counts = {name: len(table) for name, table in result.tables().items()}
    return {
        "format": FORMAT,
        "inputs": len(frame),
        **counts,
        "check": (f"inputs {len(frame)} = accepted {counts['accepted']} + duplicates "
                  f"{counts['duplicates']} + quarantined {counts['quarantined']} + "
                  f"conflicts {counts['conflicts']}"),
        "accepted_persons": counts["accepted"] - len(status_records),
        "accepted_household_status": {
            status: int((status_records["status"] == status).sum())
            for status in NO_PERSON_STATUSES},
        "conflict_groups": int(result.conflicts["conflict_group"].nunique()),
        "by_channel": by_channel,
        "quarantine_reasons": dict(sorted(Counter(
            str(r) for r, o in zip(reason, outcome, strict=True) if o == "quarantined"
        ).items())),
        "address_check": ("building_id checked against the plan "
                          f"({len(known_buildings)} buildings)" if known_buildings is not None
                          else "not checked (no plan given)"),
        "cd_check": ("cd_code of tablet records checked against the plan "
                     f"({len(known_cds)} CDs)" if known_cds is not None
                     else "not checked (no plan given)"),
        "time_check": (f"submitted_at checked against the census window {window[0]} to "
                       f"{window[1]} (inclusive, on the clock of each record)"
                       if window is not None else "not checked"),
        "precedence": PRECEDENCE,
        "personal_data": {
            "iin_hash": "first 16 hex digits of sha256(salt + IIN); the same salt gives the "
                        "same hash, so reuse the salt file across runs",
            "iin_masked": "first 4 and last 2 digits; '(malformed)' when not 12 characters",
            "salt_fingerprint": _salt_fingerprint(salt),
            "note": "outputs hold no raw IIN: IINs are stored as salted hashes; keep the "
                    "salt secret and apart from these files",
        },
    }


def plan_keys(plan_dir: str | Path) -> tuple[set[str], set[str]]:
    """What records are checked against, from one reading of a plan folder's ``plan.gpkg``:
    the ``building_id`` values of its units (the known addresses) and the ``cd_code``
    values of its counting districts."""
    layers = read_plan_layers(plan_dir, only=("units", "counting_districts"))
    units = layers.get("units")
    if units is None or "building_id" not in units.columns:
        raise InputFileError(f"the plan in {plan_dir} has no units layer with a building_id "
                             "column")
    cds = layers.get("counting_districts")
    if cds is None or "cd_code" not in cds.columns:
        raise InputFileError(f"the plan in {plan_dir} has no counting_districts layer with "
                             "a cd_code column")
    buildings = {text for text in cell_texts(units["building_id"]) if text}
    codes = {text for text in cell_texts(cds["cd_code"]) if text}
    return buildings, codes


def plan_buildings(plan_dir: str | Path) -> set[str]:
    """The ``building_id`` values of a plan folder's units (the known addresses)."""
    units = read_plan_units(plan_dir)
    if "building_id" not in units.columns:
        raise InputFileError(f"the units layer in {plan_dir} has no building_id column")
    return {str(v).strip() for v in units["building_id"] if not pd.isna(v)}


def default_salt_path(out_dir: str | Path) -> Path:
    """Where the salt lives by default: beside the output folder, ``<out_dir>.salt``.

    Not inside it, so that the folder can be shared without the salt, and replacing
    the folder on a rerun keeps the salt.
    """
    out = Path(out_dir)
    return out.with_name(f"{out.name}.salt")


def load_or_create_salt(path: str | Path) -> bytes:
    """The salt in ``path`` (hexadecimal text), or a new random 32-byte salt saved there.

    The same salt must be reused across runs for IIN hashes to match. The file is
    created readable by its owner only; a new salt is logged as a warning. An existing
    file that other users may read or write (on POSIX, any of the mode bits 0o077) is
    refused with :class:`InputFileError`, which says how to fix it (``chmod 600``).
    """
    path = Path(path)
    if path.is_dir():
        raise InputFileError(f"the salt path {path} is a folder, not a file")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        salt = secrets.token_bytes(SALT_BYTES)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(descriptor, "w", encoding="ascii") as handle:
                handle.write(salt.hex() + "\n")
            created = True
            try:
                os.link(temporary, path)  # fails if another run created the salt meanwhile
            except FileExistsError:
                created = False
            except OSError:  # a file system without hard links
                created = not path.exists()
                if created:
                    os.replace(temporary, path)
            if created:
                logger.warning("created a new salt file %s; keep it secret and reuse it so "
                               "that IIN hashes match across runs", path)
        finally:
            temporary.unlink(missing_ok=True)
    try:
        with path.open("rb") as handle:
            mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
            data = handle.read()
    except OSError as exc:
        raise InputFileError(f"cannot read the salt file {path}: {exc.strerror}") from None
    if os.name == "posix" and mode & 0o077:
        raise InputFileError(
            f"the salt file {path} is open to other users (mode {mode:04o}); anyone who can "
            "read it can recover IINs from their hashes. Make it readable by its owner "
            f"only: chmod 600 {shlex.quote(str(path))}")
    try:
        salt = bytes.fromhex(data.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise InputFileError(f"the salt file {path} must hold hexadecimal text "
                             f"({2 * SALT_BYTES} hex digits)") from None
    if len(salt) < MIN_SALT_BYTES:
        raise InputFileError(f"the salt in {path} is too short ({len(salt)} bytes; use at "
                             f"least {MIN_SALT_BYTES}, best {SALT_BYTES})")
    return salt


def write_dedup(result: DedupResult, out_dir: str | Path, *,
                protect: Sequence[Path] = ()) -> Path:
    """Write the four CSV tables and ``summary.json`` to ``out_dir``, all or nothing.

    The folder must be new, empty, or an earlier output of this function (it is then
    replaced). ``protect`` are input paths the folder must not hold. CSVs are UTF-8
    with ``\\n`` line ends, sorted by ``record_id``: the same result gives the same bytes.
    A text cell that a spreadsheet would read as a formula (it begins with ``=``, ``+``,
    ``-``, ``@``, a tab or a CR) is written with ``'`` in front
    (:mod:`districting.outputs.cells`).
    """
    target = Path(out_dir).resolve()
    with atomic_directory(target, kind="dedup", protect=tuple(protect)) as staging:
        _write_files(result, staging)
    return target


def _write_files(result: DedupResult, folder: Path) -> None:
    for name, table in result.tables().items():
        # Text from the records never reads as a formula (outputs.cells); numbers as they are.
        text = frame_csv(table, as_text=True, lineterminator="\n")
        (folder / OUTPUT_FILES[name][0]).write_bytes(text.encode("utf-8"))
    write_json(result.summary, folder / SUMMARY_FILE)
