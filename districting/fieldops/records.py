"""Read Stage-2 person records (CSV or Parquet) as text and report every problem per row.

One record per person: ``record_id``, ``iin``, ``building_id``, ``dwelling``,
``household_id``, ``persons``, ``channel`` (web, egov, aitu, tablet) and
``submitted_at`` (ISO 8601); tablet records also carry ``cd_code``, ``interviewer``
and ``status`` (completed, refused, absent, vacant; the IIN may be blank unless
completed). Every cell is read as text: an IIN stays a 12-character string with its
leading zeros.

Problems of a whole file (it is missing, unreadable, not UTF-8, has a quote that is
never closed, lacks a column) are errors: :func:`read_records` raises one
:class:`DistrictingError` listing all of them. Problems of single rows are warnings:
the row is kept, and deduplication quarantines it with the same reason. They are: a
CSV row with more or fewer cells than the header ("malformed row"), a blank or
repeated ``record_id``, a blank ``building_id``, a bad dwelling number, a household
size (``persons``) that is not a whole number from 1 to :data:`MAX_PERSONS`, an
unknown channel, an unreadable ``submitted_at``, and a tablet record without a known
status. Deduplication adds the checks that need more than the records (see
:func:`record_issues` and :func:`~districting.fieldops.dedup.dedup`): a
``submitted_at`` outside the census window and, with a plan, an unknown building or
CD. Whether an IIN is valid is not a reading question either: deduplication
quarantines invalid IINs. No message quotes an IIN.
"""

from __future__ import annotations

import csv
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
import pyarrow as pa
from pyarrow import csv as pa_csv

from districting.errors import DistrictingError, InputFileError, Problem
from districting.fieldops.iin import IIN_LENGTH, redact
from districting.io.register import check_input_file
from districting.outputs.cells import frame_from_csv

logger = logging.getLogger(__name__)

__all__ = [
    "ALL_COLUMNS",
    "CENSUS_WINDOW",
    "CHANNELS",
    "MAX_PERSONS",
    "NO_PERSON_STATUSES",
    "ONLINE_CHANNELS",
    "RECORD_COLUMNS",
    "ROW_PROBLEM",
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
    "parse_window",
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

#: The largest household size (``persons``) taken as plausible. Synthetic households
#: have 1–8 persons, dormitories and hostels count every resident as a household of
#: their own, and households of more than 20 are rare; 50 leaves room for any real
#: one and stops typos (0, 120, a 10-digit number) from reaching the counts.
MAX_PERSONS = 50
#: The 2021 census, first and last day (inclusive): online answers from 1 September to
#: 15 October, the door-to-door round from 1 to 30 October. (A config's ``period`` is
#: the door-to-door round only.)
CENSUS_WINDOW = (date(2021, 9, 1), date(2021, 10, 30))
#: Column the reader adds: why a row could not be read cell by cell (a CSV row with more
#: or fewer cells than the header); ``""`` for the others.
ROW_PROBLEM = "row_problem"

_SCIENTIFIC = re.compile(r"^\d(?:[.,]\d+)?[eE]\+?\d+$")
_WHOLE = re.compile(r"^[0-9]+$")
_PLACES_SHOWN = 5  # places of a repeated record_id named in its detail
_POSITIVE_INT = re.compile(r"^0*[1-9]\d*$")  # leading zeros allowed: "05" is 5


@dataclass(frozen=True)
class RecordIssue:
    """A problem of one record: ``position`` in the frame, the column (``None`` for the
    whole row), why.

    ``reason`` is a short category (the quarantine reason when ``quarantine`` is set),
    ``detail`` the specific explanation; neither quotes an IIN.
    """

    position: int
    column: str | None
    reason: str
    detail: str
    quarantine: bool


def _show(value: str) -> str:
    """A cell value safe to quote in a message: no 12-digit run, at most 40 characters."""
    text = redact(value)
    return repr(text if len(text) <= 40 else text[:39] + "…")


def normalize_records(frame: pd.DataFrame) -> pd.DataFrame:
    """The record columns (:data:`ALL_COLUMNS`, then ``source``/``row`` and
    :data:`ROW_PROBLEM` if present) as stripped text with ``""`` for blanks; absent
    tablet columns become blank columns.

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
    if ROW_PROBLEM in frame.columns:
        out[ROW_PROBLEM] = _text_column(frame[ROW_PROBLEM].reset_index(drop=True))
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


def parse_window(text: str) -> tuple[date, date]:
    """``"YYYY-MM-DD/YYYY-MM-DD"`` as (first day, last day); raises :class:`DistrictingError`
    unless both are dates and the first is not after the last."""
    parts = [part.strip() for part in str(text).split("/")]
    try:
        if len(parts) != 2:
            raise ValueError
        first, last = (date.fromisoformat(part) for part in parts)
    except ValueError:
        raise DistrictingError(f"the census window {text!r} is not FIRST/LAST, two dates "
                               "YYYY-MM-DD (e.g. 2021-09-01/2021-10-30)") from None
    if first > last:
        raise DistrictingError(f"the census window {text!r} ends before it begins")
    return first, last


def record_issues(frame: pd.DataFrame, *,
                  window: tuple[date, date] | None = None) -> list[RecordIssue]:
    """Row problems of normalized records (see :func:`normalize_records`), in row order
    (within a row, in the order listed here).

    Quarantined (``quarantine=True``): a row the reader could not read cell by cell
    (:data:`ROW_PROBLEM`), a blank ``record_id``, a repeated ``record_id`` (see below),
    a blank ``building_id``, a dwelling that is not a whole number ≥ 1, an unknown
    channel, an unreadable ``submitted_at``, a ``submitted_at`` outside ``window`` (first
    and last day, inclusive, on the clock the time was written with; ``None`` skips the
    check), a tablet record without a known status, and a household size (``persons``)
    that is not a whole number from 1 to :data:`MAX_PERSONS` (a tablet visit that met
    no household may leave it blank or 0). Warning only: an IIN that looks like a
    spreadsheet's scientific notation (the IIN check quarantines it anyway).

    A ``record_id`` used by several records: if the records are identical in every
    column of :data:`ALL_COLUMNS` (the same record delivered twice), the first copy (by
    ``source`` and ``row``) stays and the other copies are quarantined; if they differ,
    which one the id means cannot be told, and every copy is quarantined.
    """
    issues: list[RecordIssue] = []
    channel = frame["channel"].astype(str)
    status = frame["status"].astype(str)
    tablet = channel == "tablet"
    no_person = tablet & status.isin(NO_PERSON_STATUSES)

    def add(mask: pd.Series | np.ndarray, column: str | None, reason: str,
            detail_of: str | Callable[[str], str], *, quarantine: bool) -> None:
        values = frame[column].astype(str).tolist() if column else [""] * len(frame)
        for position in np.flatnonzero(np.asarray(mask)).tolist():
            value = values[position]
            detail = detail_of(value) if callable(detail_of) else str(detail_of)
            issues.append(RecordIssue(int(position), column, reason, detail, quarantine))

    if ROW_PROBLEM in frame.columns:
        problem = frame[ROW_PROBLEM].astype(str)
        add(problem != "", ROW_PROBLEM, "malformed row", lambda v: v, quarantine=True)
    ids = frame["record_id"].astype(str)
    add(ids == "", "record_id", "missing record_id", "record_id is empty", quarantine=True)
    for position, detail in _repeated_ids(frame):
        issues.append(RecordIssue(position, "record_id", "repeated record_id", detail, True))
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
    if window is not None:
        first, last = window
        day = _days_as_written(frame["submitted_at"], times)
        early = (day < first.isoformat()).to_numpy()
        late = (day > last.isoformat()).to_numpy()
        span = f"the census window {first.isoformat()} to {last.isoformat()}"
        add(early, "submitted_at", "outside census window",
            lambda v: f"submitted_at {_show(v)} is before {span}", quarantine=True)
        add(late, "submitted_at", "outside census window",
            lambda v: f"submitted_at {_show(v)} is after {span}", quarantine=True)
    add(tablet & (status == ""), "status", "tablet record without status",
        f"a tablet record needs a status ({', '.join(STATUSES)})", quarantine=True)
    add(tablet & (status != "") & ~status.isin(STATUSES), "status", "unknown status",
        lambda v: f"status {_show(v)} is not one of {', '.join(STATUSES)}", quarantine=True)
    persons = frame["persons"].astype(str)
    whole = persons.str.match(_WHOLE)
    short = persons.str.lstrip("0").str.len() <= 6  # spare to_numeric a 10**30
    size = pd.to_numeric(persons.where(whole & short, ""), errors="coerce")
    plausible = size.between(1, MAX_PERSONS).to_numpy()
    nobody = (no_person & ((persons == "") | (size == 0))).to_numpy()
    add(~(plausible | nobody), "persons", "bad persons",
        lambda v: (f"persons {_show(v)} is not a whole number from 1 to {MAX_PERSONS}" if v
                   else "persons (household size) is empty"),
        quarantine=True)
    iin = frame["iin"].astype(str)
    add(iin.str.match(_SCIENTIFIC), "iin", "iin in scientific notation",
        "the IIN looks like a number in scientific notation (was the file saved from a "
        "spreadsheet?); its digits are lost", quarantine=False)
    if ROW_PROBLEM in frame.columns:  # a malformed row's cells are not worth more words
        malformed = {i.position for i in issues if i.column == ROW_PROBLEM}
        issues = [i for i in issues if i.column == ROW_PROBLEM or i.position not in malformed]
    issues.sort(key=lambda issue: issue.position)
    return issues


def _days_as_written(values: pd.Series, times: pd.Series) -> pd.Series:
    """The day (``YYYY-MM-DD``) of each readable time on the clock it was written with, as
    :func:`wall_clock` reads it; ``""`` where ``times`` (:func:`parse_times`) is NaT."""
    text = values.astype(str).reset_index(drop=True)
    readable = pd.Series(times.notna().to_numpy())
    day = text.str.slice(0, 10)
    plain = day.str.match(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$") & text.str.match(
        r"^.{10}(?:$|[T ])")
    other = readable & ~plain
    if other.any():  # e.g. 20210903T142205: the slow way
        clock = wall_clock(text[other])
        utc = pd.Series(times.dt.tz_convert(None).to_numpy()[other.to_numpy()],
                        index=clock.index)
        day[other] = clock.fillna(utc).dt.strftime("%Y-%m-%d")
    return day.where(readable, "")


def _repeated_ids(frame: pd.DataFrame) -> list[tuple[int, str]]:
    """(position, detail) of each record to quarantine for a repeated ``record_id``.

    Identical copies: all but the first (by ``source``, ``row``); copies that differ:
    all. The outcome does not depend on the order of the records.
    """
    ids = frame["record_id"].astype(str)
    repeated = (ids != "") & ids.duplicated(keep=False)
    if not repeated.any():
        return []
    sub = frame.loc[repeated.to_numpy(), list(ALL_COLUMNS)].astype(str)
    content = pd.util.hash_pandas_object(sub, index=False).to_numpy()
    source = (frame["source"].map(lambda v: "" if pd.isna(v) else str(v))
              if "source" in frame.columns else pd.Series("", index=frame.index))
    row = (frame["row"].map(lambda v: "" if pd.isna(v) else str(v))
           if "row" in frame.columns else pd.Series("", index=frame.index))
    table = pd.DataFrame({
        "position": np.flatnonzero(repeated.to_numpy()),
        "id": sub["record_id"].to_numpy(),
        "content": content,
        "source": source[repeated.to_numpy()].to_numpy(),
        "row": row[repeated.to_numpy()].to_numpy(),
    })
    table["row_number"] = pd.to_numeric(table["row"], errors="coerce")
    table = table.sort_values(["id", "source", "row_number", "position"], kind="stable")
    table["place"] = np.where(table["source"] != "", table["source"] + " row " + table["row"],
                              np.where(table["row"] != "", "row " + table["row"], ""))
    group = table.groupby("id", sort=False)
    table["copies"] = group["position"].transform("size")
    table["identical"] = group["content"].transform("nunique").to_numpy() == 1
    table["first"] = ~table["id"].duplicated()
    listed = (table.loc[~table["identical"]].groupby("id", sort=False)["place"]
              .agg(lambda places: ", ".join(places.iloc[:_PLACES_SHOWN])
                   + (", …" if len(places) > _PLACES_SHOWN else "")))
    first_place = group["place"].first()
    out: list[tuple[int, str]] = []
    for position, record_id, copies, identical, first in zip(
            table["position"], table["id"], table["copies"], table["identical"],
            table["first"], strict=True):
        shown = _show(str(record_id))
        if identical:
            if not first:
                place = str(first_place[record_id])
                where = f" in {place}" if place else ""
                out.append((int(position), f"record_id {shown} is used {copies} times by "
                            f"identical records; this copy is left out, the one{where} is "
                            "used"))
        else:
            where = f" ({listed[record_id]})" if first_place[record_id] else ""
            out.append((int(position), f"record_id {shown} is used by {copies} different "
                        f"records{where}; every copy is quarantined, since which one the id "
                        "means cannot be told"))
    return out


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
        All records as text (:data:`ALL_COLUMNS`), plus ``source`` (the file name),
        ``row`` (1-based data row in that file) and :data:`ROW_PROBLEM`, in file and row
        order; and the warnings: of files (ignored columns, IINs stored as numbers) and
        of rows (:func:`record_issues`, including a blank or repeated ``record_id``, also
        across files), each naming file, row and column.

    Raises
    ------
    InputFileError
        A file is missing, unreadable, in another format, or not a CSV one can read
        (not UTF-8, a quote never closed).
    DistrictingError
        Any error of a whole file: a missing required column, a tablet record in a file
        without a ``status`` column. The message lists every error on its own line.
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
        raw, row_problems = read_record_table(path)
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
        frame[ROW_PROBLEM] = pd.Series(row_problems, dtype=object)
        frames.append(frame)
    records = (pd.concat(frames, ignore_index=True) if frames
               else pd.DataFrame({c: pd.Series(dtype=object) for c in ALL_COLUMNS}))
    if "source" not in records.columns:
        records["source"] = pd.Series(dtype=object)
        records["row"] = pd.Series(dtype=np.int64)
        records[ROW_PROBLEM] = pd.Series(dtype=object)
    ids = records["record_id"].astype(str).tolist()
    sources = records["source"].astype(str).tolist()
    rows = [int(r) for r in records["row"]]
    problems.extend(
        Problem("warning", rows[i.position], i.column if i.column != ROW_PROBLEM else None,
                (f"(record_id {_show(ids[i.position])}) " if ids[i.position] else "")
                + i.detail + ("; the record will be quarantined" if i.quarantine else ""),
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


def read_table(path: Path) -> pd.DataFrame:
    """One CSV (comma or semicolon, UTF-8; cells as text) or Parquet file."""
    suffix = check_input_file(path, what="record", suffixes=SUFFIXES)
    if suffix == ".csv":
        try:
            separator = _csv_separator(path)
            return frame_from_csv(pd.read_csv(path, dtype=str, keep_default_na=False,
                                              encoding="utf-8-sig", sep=separator))
        except UnicodeDecodeError:
            raise InputFileError(f"{path}: the CSV is not UTF-8 encoded") from None
        except pd.errors.EmptyDataError:
            raise InputFileError(f"{path}: the file is empty (no header row)") from None
        except pd.errors.ParserError as exc:
            raise InputFileError(f"{path}: cannot parse the CSV ({redact(str(exc))})") from None
    return _read_parquet(path)


def read_record_table(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """One record file (see :func:`read_table`) and, per data row, why it could not be
    read cell by cell (``""`` if it could).

    A CSV row with more or fewer cells than the header is kept as a row (its cells as
    far as they go, the rest blank) with its problem, so that it can be quarantined;
    only what spoils the whole file raises :class:`InputFileError` (not UTF-8, no
    header, a quote that is never closed). Quotes are read as pandas and Arrow read
    them (``"a"b`` is ``ab``). Lines with nothing on them are skipped and not counted
    as rows.
    """
    suffix = check_input_file(path, what="record", suffixes=SUFFIXES)
    if suffix != ".csv":
        frame = _read_parquet(path)
        return frame, [""] * len(frame)
    try:
        separator = _csv_separator(path)
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, delimiter=separator, strict=True)
            names = _csv_header(reader, path)
            if reader.line_num == 1:
                fast = _read_csv_arrow(path, separator, names)
                if fast is not None:
                    return frame_from_csv(fast), [""] * len(fast)
            frame, problems = _read_csv_rows(reader, handle, separator, names, path)
            return frame_from_csv(frame), problems
    except UnicodeDecodeError:
        raise InputFileError(f"{path}: the CSV is not UTF-8 encoded") from None


def _csv_separator(path: Path) -> str:
    """Spreadsheets in Russian and Kazakh locales save "CSV" with semicolons."""
    with path.open(encoding="utf-8-sig") as handle:
        header = handle.readline()
    return ";" if header.count(";") > header.count(",") else ","


def _csv_header(reader: Any, path: Path) -> list[str]:
    """The column names, unique (a repeated name gets ``.1``, ``.2``, … as in pandas)."""
    try:
        header = next(reader)
    except StopIteration:
        raise InputFileError(f"{path}: the file is empty (no header row)") from None
    except csv.Error as exc:
        raise InputFileError(f"{path}: cannot read the header row ({redact(str(exc))})"
                             ) from None
    names: list[str] = []
    for index, name in enumerate(header):
        name = name.strip() or f"unnamed: {index}"
        base, copy = name, 0
        while name in names:
            copy += 1
            name = f"{base}.{copy}"
        names.append(name)
    return names


def _read_csv_arrow(path: Path, separator: str, names: list[str]) -> pd.DataFrame | None:
    """The quick reading of a CSV whose rows all have the header's number of cells; ``None``
    if any row has not (or Arrow cannot read the file): :func:`_read_csv_rows` then
    reads it row by row and says which rows are malformed."""

    def refuse(row: Any) -> str:
        return "error"

    try:
        table = pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(skip_rows=1, column_names=names),
            parse_options=pa_csv.ParseOptions(delimiter=separator, newlines_in_values=True,
                                              invalid_row_handler=refuse),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except pa.ArrowInvalid:
        return None
    return table.to_pandas()


def _read_csv_rows(reader: Any, handle: Any, separator: str, names: list[str],
                   path: Path) -> tuple[pd.DataFrame, list[str]]:
    """The data rows after the header, one by one: rows with too many or too few cells
    are kept (cut or padded to the header) with their problem; a row strict CSV cannot
    read is read leniently, as pandas and Arrow do (``"a"b`` is ``ab``)."""
    width = len(names)
    rows: list[list[str]] = []
    problems: dict[int, str] = {}
    broken: dict[int, tuple[int, int]] = {}  # row -> its first and last line
    end = reader.line_num
    while True:
        try:
            for cells in reader:
                if len(cells) != width:
                    if not cells or (len(cells) == 1 and not cells[0].strip()):
                        end = reader.line_num
                        continue  # a blank line
                    problems[len(rows)] = _width_problem(len(cells), width, end + 1)
                    cells = (cells + [""] * width)[:width]
                rows.append(cells)
                end = reader.line_num
            break
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                raise InputFileError(
                    f"{path}: line {end + 1}: a quoted cell is never closed, so the rest of "
                    "the file would be inside it; fix the quotes") from None
            broken[len(rows)] = (end + 1, reader.line_num)
            rows.append([""] * width)
            end = reader.line_num
    if broken:
        _read_broken_rows(handle, separator, broken, rows, problems, width)
    frame = pd.DataFrame(rows, columns=pd.Index(names, dtype=object), dtype=object)
    out = [""] * len(rows)
    for row, problem in problems.items():
        out[row] = problem
    return frame, out


def _width_problem(cells: int, width: int, line: int) -> str:
    return (f"the row has {cells} cell(s) but the header has {width} (line {line}); its "
            "cells may be in the wrong columns")


def _read_broken_rows(handle: Any, separator: str, broken: dict[int, tuple[int, int]],
                      rows: list[list[str]], problems: dict[int, str], width: int) -> None:
    """Fill in the cells of rows strict CSV could not read, from their lines read leniently."""
    wanted = {line: row for row, (first, last) in broken.items()
              for line in range(first, last + 1)}
    texts: dict[int, list[str]] = {row: [] for row in broken}
    handle.seek(0)
    for number, line in enumerate(handle, start=1):
        if number in wanted:
            texts[wanted[number]].append(line)
    for row, lines in texts.items():
        cells = next(csv.reader(["".join(lines).rstrip("\r\n")], delimiter=separator), [])
        if len(cells) != width:
            problems[row] = _width_problem(len(cells), width, broken[row][0])
        rows[row] = (cells + [""] * width)[:width]


def _read_parquet(path: Path) -> pd.DataFrame:
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
