"""Read Stage-2 person records (CSV or Parquet) as text and report every problem per row.

One record per person: ``record_id``, ``iin``, ``building_id``, ``dwelling``,
``household_id``, ``persons``, ``channel`` (web, egov, aitu, tablet) and
``submitted_at`` (ISO 8601); tablet records also carry ``cd_code``, ``interviewer``
and ``status`` (completed, refused, absent, vacant; the IIN may be blank unless
completed). Every cell is read as text: an IIN stays a 12-character string with its
leading zeros.

Problems of a whole file (a missing column) and of identity (a blank or repeated
``record_id``) are errors: :func:`read_records` raises one :class:`DistrictingError`
listing all of them. Problems of single rows (unknown channel, unreadable time, tablet
record without status, bad dwelling number) are warnings: the row is kept, and
deduplication quarantines it with the same reason. Whether an IIN is valid is not a
reading question: deduplication quarantines invalid IINs. No message quotes an IIN.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from districting.errors import DistrictingError, InputFileError, Problem
from districting.fieldops.iin import IIN_LENGTH, redact
from districting.register import check_input_file

logger = logging.getLogger(__name__)

__all__ = [
    "ALL_COLUMNS",
    "CHANNELS",
    "NO_PERSON_STATUSES",
    "ONLINE_CHANNELS",
    "RECORD_COLUMNS",
    "STATUSES",
    "SUFFIXES",
    "TABLET_COLUMNS",
    "RecordIssue",
    "cell_text",
    "cell_texts",
    "household_keys",
    "locate_units",
    "normalize_records",
    "parse_times",
    "read_records",
    "record_issues",
    "unit_keys",
    "wall_clock",
]

RECORD_COLUMNS = (
    "record_id", "iin", "building_id", "dwelling", "household_id", "persons", "channel",
    "submitted_at",
)
TABLET_COLUMNS = ("cd_code", "interviewer", "status")
ALL_COLUMNS = RECORD_COLUMNS + TABLET_COLUMNS
ONLINE_CHANNELS = ("web", "egov", "aitu")
CHANNELS = (*ONLINE_CHANNELS, "tablet")
STATUSES = ("completed", "refused", "absent", "vacant")
#: Tablet statuses of a visit that met no person: the record carries no IIN.
NO_PERSON_STATUSES = ("refused", "absent", "vacant")
SUFFIXES = (".csv", ".parquet", ".pq")

_SCIENTIFIC = re.compile(r"^\d(?:[.,]\d+)?[eE]\+?\d+$")
_POSITIVE_INT = re.compile(r"^0*[1-9]\d*$")  # leading zeros allowed: "05" is 5


@dataclass(frozen=True)
class RecordIssue:
    """A problem of one record: ``position`` in the frame, the column, why.

    ``reason`` is a short category (the quarantine reason when ``quarantine`` is set),
    ``detail`` the specific explanation; neither quotes an IIN.
    """

    position: int
    column: str
    reason: str
    detail: str
    quarantine: bool


def _show(value: str) -> str:
    """A cell value safe to quote in a message: no 12-digit run, at most 40 characters."""
    text = redact(value)
    return repr(text if len(text) <= 40 else text[:39] + "…")


def normalize_records(frame: pd.DataFrame) -> pd.DataFrame:
    """The record columns (:data:`ALL_COLUMNS`, then ``source``/``row`` if present) as
    stripped text with ``""`` for blanks; absent tablet columns become blank columns.

    Raises :class:`DistrictingError` if a column of :data:`RECORD_COLUMNS` is missing.
    """
    missing = [c for c in RECORD_COLUMNS if c not in frame.columns]
    if missing:
        raise DistrictingError(f"the records have no column(s) {', '.join(missing)}")
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for column in ALL_COLUMNS:
        if column in frame.columns:
            out[column] = _text_column(frame[column].reset_index(drop=True)).str.strip()
        else:
            out[column] = pd.Series([""] * len(frame), dtype=object)
    for column in ("source", "row"):
        if column in frame.columns:
            out[column] = frame[column].to_numpy()
    return out


def _text_column(series: pd.Series) -> pd.Series:
    """Any column as text: whole numbers without ``.0``, times as ISO 8601, blanks ``""``."""
    if pd.api.types.is_datetime64_any_dtype(series):
        text = series.map(lambda t: "" if pd.isna(t) else t.isoformat())
    elif pd.api.types.is_bool_dtype(series):
        text = series.map(lambda v: "" if pd.isna(v) else str(bool(v)).lower())
    elif pd.api.types.is_integer_dtype(series):
        text = series.astype("Int64").astype(object).map(lambda v: "" if pd.isna(v) else str(v))
    elif pd.api.types.is_float_dtype(series):
        def _float(v: float) -> str:
            if pd.isna(v):
                return ""
            return str(int(v)) if float(v).is_integer() else repr(float(v))
        text = series.map(_float)
    else:
        text = series.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v))
                          else str(v))
    return text.astype(object)


def parse_times(values: pd.Series) -> pd.Series:
    """ISO 8601 texts as UTC times; unreadable or blank cells are ``NaT``.

    Times with an offset (``2021-09-03T14:22:05+06:00``) are converted to UTC; times
    without one are taken as UTC.
    """
    text = values.astype(object).where(values.astype(str).str.strip() != "", None)
    return pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")


def record_issues(frame: pd.DataFrame) -> list[RecordIssue]:
    """Row problems of normalized records (see :func:`normalize_records`), in row order.

    Quarantined (``quarantine=True``): blank ``building_id``, a dwelling that is not a
    whole number ≥ 1, an unknown channel, an unreadable ``submitted_at``, a tablet record
    without a known status. Warnings only: a household size that is not a whole number
    ≥ 1 (blank is allowed for tablet visits that met no household), an IIN that looks
    like a spreadsheet's scientific notation.
    """
    issues: list[RecordIssue] = []
    channel = frame["channel"].astype(str)
    status = frame["status"].astype(str)
    tablet = channel == "tablet"
    no_person = tablet & status.isin(NO_PERSON_STATUSES)

    def add(mask: pd.Series | np.ndarray, column: str, reason: str,
            detail_of: str | Callable[[str], str], *, quarantine: bool) -> None:
        values = frame[column].astype(str).tolist()
        for position in np.flatnonzero(np.asarray(mask)).tolist():
            value = values[position]
            detail = detail_of(value) if callable(detail_of) else str(detail_of)
            issues.append(RecordIssue(int(position), column, reason, detail, quarantine))

    building = frame["building_id"].astype(str)
    add(building == "", "building_id", "missing address", "building_id is empty",
        quarantine=True)
    dwelling = frame["dwelling"].astype(str)
    add((dwelling != "") & ~dwelling.str.match(_POSITIVE_INT), "dwelling", "bad dwelling",
        lambda v: f"dwelling {_show(v)} is not a whole number ≥ 1 (leave it blank for a house)",
        quarantine=True)
    add(~channel.isin(CHANNELS), "channel", "unknown channel",
        lambda v: (f"channel {_show(v)} is not one of {', '.join(CHANNELS)}" if v
                   else "channel is empty"),
        quarantine=True)
    times = parse_times(frame["submitted_at"])
    add(times.isna().to_numpy(), "submitted_at", "bad submitted_at",
        lambda v: (f"submitted_at {_show(v)} is not an ISO 8601 time "
                   "(e.g. 2021-09-03T14:22:05+06:00)" if v else "submitted_at is empty"),
        quarantine=True)
    add(tablet & (status == ""), "status", "tablet record without status",
        f"a tablet record needs a status ({', '.join(STATUSES)})", quarantine=True)
    add(tablet & (status != "") & ~status.isin(STATUSES), "status", "unknown status",
        lambda v: f"status {_show(v)} is not one of {', '.join(STATUSES)}", quarantine=True)
    persons = frame["persons"].astype(str)
    add(~(persons.str.match(_POSITIVE_INT) | ((persons == "") & no_person)), "persons",
        "bad persons",
        lambda v: (f"persons {_show(v)} is not a whole number ≥ 1" if v
                   else "persons (household size) is empty"),
        quarantine=False)
    iin = frame["iin"].astype(str)
    add(iin.str.match(_SCIENTIFIC), "iin", "iin in scientific notation",
        "the IIN looks like a number in scientific notation (was the file saved from a "
        "spreadsheet?); its digits are lost", quarantine=False)
    issues.sort(key=lambda issue: issue.position)
    return issues


def read_records(paths: Sequence[Path]) -> tuple[pd.DataFrame, list[Problem]]:
    """Read record files; return the records and the warnings, or raise on any error.

    Parameters
    ----------
    paths
        ``.csv`` (UTF-8, comma- or semicolon-separated, header row) or ``.parquet``
        files, one record per row, with the columns of :data:`RECORD_COLUMNS` (and
        :data:`TABLET_COLUMNS` for tablet records). Other columns are ignored (with a
        warning).

    Returns
    -------
    records, problems
        All records as text (:data:`ALL_COLUMNS`), plus ``source`` (the file name) and
        ``row`` (1-based data row in that file), in file and row order; and the warnings
        (:func:`record_issues`), each naming file, row and column.

    Raises
    ------
    InputFileError
        A file is missing, unreadable or in another format.
    DistrictingError
        Any error: a missing required column, a blank or repeated ``record_id`` (also
        across files), a tablet record in a file without a ``status`` column. The message
        lists every error on its own line.
    """
    if not paths:
        raise InputFileError("no record files given")
    seen: dict[Path, Path] = {}
    for path in map(Path, paths):
        resolved = path.resolve()
        if resolved in seen:
            raise InputFileError(f"the record file {path} is given twice")
        seen[resolved] = path
    names = [Path(p).name for p in paths]
    labels = [name if names.count(name) == 1 else str(p) for name, p in zip(names, paths,
                                                                             strict=True)]
    problems: list[Problem] = []
    frames: list[pd.DataFrame] = []
    for path, label in zip(map(Path, paths), labels, strict=True):
        raw = read_table(path)
        raw.columns = [str(c).strip().lower() for c in raw.columns]
        file_errors = [Problem("error", None, column, "required column is missing", label)
                       for column in RECORD_COLUMNS if column not in raw.columns]
        extra = [c for c in raw.columns if c not in ALL_COLUMNS]
        if extra:
            problems.append(Problem("warning", None, None,
                                    f"column(s) ignored: {', '.join(map(_show, extra))}",
                                    label))
        if file_errors:
            problems.extend(file_errors)
            continue
        numeric_iin = not (pd.api.types.is_object_dtype(raw["iin"])
                           or pd.api.types.is_string_dtype(raw["iin"]))
        frame = normalize_records(raw)
        if numeric_iin:
            short = frame["iin"].str.len().between(1, IIN_LENGTH - 1)
            frame.loc[short, "iin"] = frame.loc[short, "iin"].str.zfill(IIN_LENGTH)
            problems.append(Problem("warning", None, "iin",
                                    "the IINs are stored as numbers; leading zeros were "
                                    "restored (store IINs as text)", label))
        if "status" not in raw.columns and (frame["channel"] == "tablet").any():
            problems.append(Problem("error", None, "status",
                                    "the file has tablet records but no status column",
                                    label))
        frame["source"] = label
        frame["row"] = np.arange(1, len(frame) + 1, dtype=np.int64)
        frames.append(frame)
    records = (pd.concat(frames, ignore_index=True) if frames
               else pd.DataFrame({c: pd.Series(dtype=object) for c in ALL_COLUMNS}))
    if "source" not in records.columns:
        records["source"] = pd.Series(dtype=object)
        records["row"] = pd.Series(dtype=np.int64)
    problems.extend(_identity_errors(records))
    ids = records["record_id"].astype(str).tolist()
    sources = records["source"].astype(str).tolist()
    rows = [int(r) for r in records["row"]]
    problems.extend(
        Problem("warning", rows[i.position], i.column,
                f"(record_id {_show(ids[i.position])}) {i.detail}"
                + ("; the record will be quarantined" if i.quarantine else ""),
                sources[i.position])
        for i in record_issues(records)
    )
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        lines = [f"the records have {len(errors)} error(s):"]
        lines += [f"  {p}" for p in errors]
        raise DistrictingError("\n".join(lines))
    logger.info("read %d record(s) from %d file(s), %d warning(s)", len(records), len(paths),
                len(problems))
    return records, problems


def _identity_errors(records: pd.DataFrame) -> list[Problem]:
    """A blank ``record_id``, or one seen before (in this or an earlier file)."""
    out: list[Problem] = []
    ids = records["record_id"].astype(str).tolist()
    sources = records["source"].astype(str).tolist()
    rows = [int(r) for r in records["row"]]
    first: dict[str, int] = {}
    for position, value in enumerate(ids):
        if value == "":
            out.append(Problem("error", rows[position], "record_id", "record_id is empty",
                               sources[position]))
        elif value in first:
            at = first[value]
            out.append(Problem(
                "error", rows[position], "record_id",
                f"duplicate record_id {_show(value)} (first seen in {sources[at]} "
                f"row {rows[at]})",
                sources[position]))
        else:
            first[value] = position
    return out


def read_table(path: Path) -> pd.DataFrame:
    """One CSV (comma or semicolon, UTF-8; cells as text) or Parquet file."""
    suffix = check_input_file(path, what="record", suffixes=SUFFIXES)
    if suffix == ".csv":
        try:
            with path.open(encoding="utf-8-sig") as handle:
                header = handle.readline()
            # Spreadsheets in Russian and Kazakh locales save "CSV" with semicolons.
            separator = ";" if header.count(";") > header.count(",") else ","
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                               sep=separator)
        except UnicodeDecodeError:
            raise InputFileError(f"{path}: the CSV is not UTF-8 encoded") from None
        except pd.errors.EmptyDataError:
            raise InputFileError(f"{path}: the file is empty (no header row)") from None
        except pd.errors.ParserError as exc:
            raise InputFileError(f"{path}: cannot parse the CSV ({redact(str(exc))})") from None
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several error types for unreadable files
        raise InputFileError(f"{path}: cannot read as Parquet ({redact(str(exc))})") from None


def unit_keys(units: pd.DataFrame) -> pd.DataFrame:
    """What :func:`locate_units` needs of a plan's units, in layer order: ``unit_id`` and
    ``building_id`` as text (a missing ``unit_id`` column numbers the units),
    ``dwelling_from`` and ``dwelling_to`` as whole numbers (0 when absent or blank)."""
    def whole(column: str) -> np.ndarray:
        if column not in units.columns:
            return np.zeros(len(units), dtype=np.int64)
        values = pd.to_numeric(units[column], errors="coerce").fillna(0)
        return np.round(values.to_numpy(dtype=float)).astype(np.int64)

    return pd.DataFrame({
        "unit_id": cell_texts(units["unit_id"]) if "unit_id" in units.columns
        else np.arange(len(units)).astype(str),
        "building_id": cell_texts(units["building_id"]),
        "dwelling_from": whole("dwelling_from"),
        "dwelling_to": whole("dwelling_to"),
    })


def locate_units(table: pd.DataFrame, units: pd.DataFrame) -> np.ndarray:
    """The position in ``units`` of each record's unit, or -1 for an unknown building.

    ``table`` has ``building_id`` (text) and ``dwelling`` (a number or NaN); ``units``
    has ``building_id``, ``unit_id`` (text), ``dwelling_from`` and ``dwelling_to``.

    A record goes to the unit of its building whose dwelling range holds its dwelling,
    else to the building's first unit (the lowest ``dwelling_from``, then ``unit_id``).
    """
    ordered = units.assign(pos=np.arange(len(units))).sort_values(
        ["building_id", "dwelling_from", "unit_id", "pos"], kind="stable")
    ordered = ordered.loc[ordered["building_id"] != ""]
    first = ordered.drop_duplicates("building_id").set_index("building_id")["pos"]
    position = np.array(table["building_id"].map(first).fillna(-1), dtype=np.int64)
    ranged = ordered.loc[ordered["building_id"].duplicated(keep=False)
                         & (ordered["dwelling_to"] > 0)
                         & (ordered["dwelling_to"] >= ordered["dwelling_from"])]
    if len(ranged) == 0:
        return position
    candidates = table.assign(row=np.arange(len(table)))
    candidates = candidates.loc[candidates["building_id"].isin(ranged["building_id"])
                                & candidates["dwelling"].notna(), ["row", "building_id",
                                                                   "dwelling"]]
    pairs = candidates.merge(ranged[["building_id", "pos", "dwelling_from", "dwelling_to"]],
                             on="building_id", how="inner")
    inside = pairs.loc[(pairs["dwelling"] >= pairs["dwelling_from"])
                       & (pairs["dwelling"] <= pairs["dwelling_to"])]
    inside = inside.sort_values(["row", "dwelling_from", "pos"], kind="stable")
    inside = inside.drop_duplicates("row")
    position[inside["row"].to_numpy(dtype=np.int64)] = inside["pos"].to_numpy(dtype=np.int64)
    return position


def cell_text(value: Any) -> str:
    """A cell as stripped text: blanks, None and NaN become ``""``, whole floats lose ``.0``."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
    if value is pd.NA or value is pd.NaT:
        return ""
    return str(value).strip()


def cell_texts(values: pd.Series) -> np.ndarray:
    """Each cell as text (see :func:`cell_text`), as an object array."""
    return np.array([cell_text(v) for v in values], dtype=object)


def wall_clock(values: pd.Series) -> pd.Series:
    """Submission times as naive datetimes on the wall clock they were stamped with."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_localize(None)
    if pd.api.types.is_datetime64_any_dtype(values):
        return values

    def cell(value: Any) -> str:
        if isinstance(value, datetime):
            return value.replace(tzinfo=None).isoformat()
        if isinstance(value, date):
            return value.isoformat()
        return cell_text(value)

    text = pd.Series([cell(v) for v in values], index=values.index, dtype=object)
    # Drop a trailing UTC offset after a time of day: the date as written is the day.
    text = text.str.replace(
        r"([T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$",
        r"\1", regex=True,
    ).str.replace(",", ".", regex=False)
    text = text.where(text != "", None)
    return pd.Series(pd.to_datetime(text, format="ISO8601", errors="coerce"),
                     index=values.index)


def household_keys(building: np.ndarray, household: np.ndarray, dwelling: np.ndarray,
                   record: np.ndarray) -> np.ndarray:
    """A key per record naming its household: its ``household_id`` within its building.

    A record without one belongs to the household another record names at the same
    building and dwelling (the smallest such id), else to its dwelling, else to itself.
    """
    named: dict[tuple[str, str], str] = {}
    for b, h, d in zip(building, household, dwelling, strict=True):
        if h and d and ((b, d) not in named or h < named[(b, d)]):
            named[(b, d)] = h
    keys = []
    for b, h, d, r in zip(building, household, dwelling, record, strict=True):
        h = h or named.get((b, d), "") if d else h
        keys.append(f"{b}\x1fh:{h}" if h else (f"{b}\x1fd:{d}" if d else f"{b}\x1fr:{r}"))
    return np.array(keys, dtype=object)
