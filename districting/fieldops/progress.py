"""Monitor Stage-2 progress: coverage, completion and pace per counting district, ID and settlement.

:func:`progress` joins the deduplicated Stage-2 records (``accepted.csv`` of
deduplication: one record per accepted person, plus tablet visits that met no
person) to the plan's address units by ``building_id`` and measures, for every
counting district (CD), instructor district (ID) and settlement:

* **persons**: expected = Stage-1 residents of its units; counted = accepted person
  records (a non-blank ``iin_hash``); coverage = counted / expected;
* **households**: expected = Stage-1 households; done = distinct households with an
  online answer or a completed tablet visit, plus households closed as vacant
  (refused and absent are *attempted*, not done); completion = done / expected;
* **pace**: households done since the field period started, per elapsed field day
  (households done online before it are a head start, not pace); projected
  completion = (done + pace x remaining field days) / expected, at most 100 % (or
  what is already done). A
  district is **lagging** when the projection falls short of 100 % by the period's
  end (before the period starts nobody is lagging: "not started");
* **over-coverage**: coverage above ``over_threshold`` (1.05): possible duplicates or
  a register under-count.

Districts nest exactly: every person record and every household is counted in
one unit, so a settlement's figures are the sum of its IDs', and an ID's the sum
of its CDs'. A building split into several units (by dwelling ranges) gives a
record to the unit whose ``dwelling_from``-``dwelling_to`` holds the record's
``dwelling``, else to the building's first unit; a household belongs to the unit
of the record that first made it done (or first attempted it).

Only records submitted on or before ``as_of`` count, up to the end of that day.
The day of a record is its date as written: ``2021-10-20T23:30:00+06:00`` is 20
October (the local day of the device that stamped it); times without an offset are
taken as local.

:func:`write_progress` writes ``cd_progress.csv``, ``id_progress.csv``,
``settlement_progress.csv``, ``summary.json`` and ``dashboard.html`` (a folium map
of CD completion with lagging CDs outlined in red, and two charts) to a folder, all
or nothing. No output or log message holds an IIN, an IIN hash, a record or a
household identifier: only codes and counts. The same inputs always give the same
bytes.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from branca.element import Element, Figure, MacroElement
from folium.template import Template
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.dates import DateFormatter, DayLocator, date2num
from matplotlib.figure import Figure as MplFigure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.style import context as style_context
from matplotlib.ticker import MaxNLocator, PercentFormatter

from districting.check import read_plan_layers
from districting.errors import DistrictingError, InputFileError
from districting.fieldops.records import (
    ONLINE_CHANNELS,
    cell_text,
    cell_texts,
    household_keys,
    locate_units,
    read_table,
    unit_keys,
    wall_clock,
)
from districting.layers import LAYER_FIELDS, PlanLayers
from districting.outputs.cells import csv_text
from districting.outputs.folders import MANIFEST, atomic_directory
from districting.outputs.maps import add_geojson, assign_sequential_ids, display_frame
from districting.outputs.numbers import as_number, localise, whole
from districting.outputs.writer import pick_language, write_bytes_atomic, write_json

logger = logging.getLogger(__name__)

__all__ = [
    "DASHBOARD_FILE",
    "FORMAT",
    "ONLINE_START",
    "OUTPUT_FILES",
    "OVER_THRESHOLD",
    "PERIOD",
    "REQUIRED_COLUMNS",
    "STATUSES",
    "ProgressResult",
    "progress",
    "read_plan",
    "read_progress_records",
    "run_progress",
    "write_progress",
]

#: The door-to-door field period of the 2021 census (both days included).
PERIOD = (date(2021, 10, 1), date(2021, 10, 30))
#: The first day of online answers.
ONLINE_START = date(2021, 9, 1)
#: Coverage above this is flagged: possible duplicates or a register under-count.
OVER_THRESHOLD = 1.05
#: Columns the records must have (others are ignored; ``dwelling`` is used when present).
REQUIRED_COLUMNS = (
    "record_id", "building_id", "household_id", "channel", "submitted_at", "status",
    "iin_hash",
)
#: A district's progress status, from :func:`progress`.
STATUSES = ("not_started", "on_pace", "lagging", "complete", "no_households")
FORMAT = "districting-progress/1"
SUMMARY_FILE = "summary.json"
DASHBOARD_FILE = "dashboard.html"
CSV_FILES = {
    "cds": "cd_progress.csv",
    "ids": "id_progress.csv",
    "settlements": "settlement_progress.csv",
}
OUTPUT_FILES = (*CSV_FILES.values(), SUMMARY_FILE, DASHBOARD_FILE, MANIFEST)

#: Figures that add up from units to CDs, IDs and settlements.
COUNT_COLUMNS = (
    "expected_persons", "counted_persons", "expected_households", "done_households",
    "done_online", "done_visit", "done_vacant", "attempted_households", "done_in_period",
)
#: Figures derived from the counts (see :func:`progress`).
DERIVED_COLUMNS = (
    "coverage", "completion", "daily_pace", "required_pace", "projected_done",
    "projected_completion", "status", "lagging", "households_short", "over_coverage",
)
_METRIC_COLUMNS = (
    "expected_persons", "counted_persons", "coverage", "expected_households",
    "done_households", "done_online", "done_visit", "done_vacant", "attempted_households",
    "completion", "done_in_period", "daily_pace", "required_pace", "projected_done",
    "projected_completion", "status", "lagging", "households_short", "lagging_reason",
    "over_coverage", "over_coverage_reason",
)
#: Columns of the three CSV files.
CSV_COLUMNS: dict[str, tuple[str, ...]] = {
    "cds": ("cd_code", "id_code", "rd_code", "settlement_id", *_METRIC_COLUMNS),
    "ids": ("id_code", "settlement_id", "n_cd", "n_cd_lagging", "n_cd_over_coverage",
            *_METRIC_COLUMNS),
    "settlements": ("settlement_id", "settlement_name", "n_id", "n_cd", "n_cd_lagging",
                    "n_cd_over_coverage", *_METRIC_COLUMNS),
}
_RATIO_COLUMNS = frozenset({"coverage", "completion", "projected_completion"})
_PACE_COLUMNS = frozenset({"daily_pace", "required_pace", "projected_done"})

#: Kinds of record: what a record says about its household.
_DONE_RANK = {"online": 0, "visit": 1, "vacant": 2}
_EPS = 1e-9

# Dashboard look.
_MAP_HEIGHT_PX = 560
_NO_DATA_COLOUR = "#cccccc"
_LAGGING_COLOUR = "#d7191c"
_ON_PACE_COLOUR = "#2c7fb8"
_COLOUR_MAP = "YlGnBu"
_DPI = 110
_MAX_ID_BARS = 60
_MAX_TABLE_ROWS = 100
_STYLE_CD = {"color": "#555555", "weight": 1, "fillOpacity": 0.7}
_STYLE_CD_LAGGING = {"color": _LAGGING_COLOUR, "weight": 3.5, "fillOpacity": 0.7}
_STYLE_ID = {"color": "#222222", "weight": 2, "fill": False, "dashArray": "6 4"}

#: Every text of the dashboard, the reasons in the CSV files, by language.
TEXT: dict[str, dict[str, str]] = {
    "ru": {
        "title": "Ход переписи на {date}",
        "subtitle": "Данные на конец дня {as_of}. Обход: {start} – {end} (прошло дней: "
                    "{elapsed} из {total}); онлайн-перепись с {online}.",
        "not_started_note": "Обход ещё не начался: отставание не оценивается.",
        "expected_persons": "Ожидается жителей",
        "counted_persons": "Переписано жителей",
        "coverage": "Охват",
        "expected_households": "Ожидается домохозяйств",
        "done_households": "Обойдено домохозяйств",
        "completion": "Выполнение",
        "daily_pace": "Темп, дх в день",
        "required_pace": "Нужный темп, дх в день",
        "projected_completion": "Прогноз к {end}",
        "lagging_cds": "Отстающих УП",
        "over_cds": "УП с охватом > {threshold}",
        "legend_title": "Выполнение по домохозяйствам",
        "legend_lagging": "отстающий УП (прогноз < 100 %)",
        "legend_no_data": "нет домохозяйств",
        "legend_id": "граница ИУ",
        "layer_cd": "Счётные участки",
        "layer_id": "Инструкторские участки",
        "offline_note": "Карта без подложки; для карты нужен доступ к библиотеке Leaflet.",
        "cd": "УП",
        "id": "ИУ",
        "settlement": "Населённый пункт",
        "persons_line": "Жители: {counted} из {expected} (охват {coverage})",
        "households_line": "Домохозяйства: {done} из {expected} ({completion})",
        "breakdown_line": "онлайн {online}, планшет {visit}, пустуют {vacant}; "
                          "отказ/нет дома {attempted}",
        "pace_line": "Темп: {pace} дх/день; нужно {required}",
        "projection_line": "Прогноз к {end}: {projected}",
        "chart_ids_title": "Выполнение по инструкторским участкам",
        "chart_ids_subset": "Выполнение: {shown} ИУ с наименьшим прогнозом из {total}",
        "chart_ids_x": "Обойдено домохозяйств, % от ожидаемых",
        "chart_done": "выполнено",
        "chart_done_lagging": "выполнено (отстаёт)",
        "chart_projected": "прогноз к {end}",
        "chart_daily_title": "Обойдено домохозяйств нарастающим итогом",
        "chart_daily_y": "Домохозяйств",
        "chart_actual": "обойдено",
        "chart_needed": "нужно, чтобы закончить к {end}",
        "chart_projection": "прогноз при текущем темпе",
        "chart_expected": "ожидается всего",
        "chart_as_of": "на {as_of}",
        "no_data": "нет данных",
        "lagging_table": "Отстающие счётные участки",
        "over_table": "Возможный сверхохват (охват > {threshold})",
        "none": "Нет.",
        "more_rows": "Показаны первые {shown} из {total}; все — в {file}.",
        "col_short": "Не хватает дх",
        "col_reason": "Причина",
        "footer": "Данные без персональных сведений: только коды участков и счётчики. "
                  "Таблицы: cd_progress.csv, id_progress.csv, settlement_progress.csv.",
        "status_not_started": "не начато",
        "status_on_pace": "в графике",
        "status_lagging": "отстаёт",
        "status_complete": "завершено",
        "status_no_households": "нет домохозяйств",
        "reason_not_started": "не начато: обход начинается {start}",
        "reason_lagging": "отстаёт: прогноз {projected} к {end}, не хватает домохозяйств: "
                          "{short}",
        "reason_ended": "обход завершён на {completion}: не обойдено домохозяйств: {short}",
        "reason_over": "охват {coverage} выше {threshold}: возможны дубликаты или недоучёт "
                       "в регистре",
        "reason_over_none": "ожидалось 0 жителей, переписано {counted}: возможны дубликаты "
                            "или недоучёт в регистре",
    },
    "en": {
        "title": "Census progress as of {date}",
        "subtitle": "Data to the end of {as_of}. Field period: {start} – {end} (day "
                    "{elapsed} of {total}); online answers since {online}.",
        "not_started_note": "The field period has not started: nobody is lagging yet.",
        "expected_persons": "Persons expected",
        "counted_persons": "Persons counted",
        "coverage": "Coverage",
        "expected_households": "Households expected",
        "done_households": "Households done",
        "completion": "Completion",
        "daily_pace": "Pace, households/day",
        "required_pace": "Pace needed, households/day",
        "projected_completion": "Projected by {end}",
        "lagging_cds": "Lagging CDs",
        "over_cds": "CDs with coverage > {threshold}",
        "legend_title": "Households done (completion)",
        "legend_lagging": "lagging CD (projected < 100%)",
        "legend_no_data": "no households",
        "legend_id": "ID boundary",
        "layer_cd": "Counting districts",
        "layer_id": "Instructor districts",
        "offline_note": "No background map; the map needs the Leaflet library to load.",
        "cd": "CD",
        "id": "ID",
        "settlement": "Settlement",
        "persons_line": "Persons: {counted} of {expected} (coverage {coverage})",
        "households_line": "Households: {done} of {expected} ({completion})",
        "breakdown_line": "online {online}, tablet {visit}, vacant {vacant}; "
                          "refused/absent {attempted}",
        "pace_line": "Pace: {pace} households/day; needed {required}",
        "projection_line": "Projected by {end}: {projected}",
        "chart_ids_title": "Completion by instructor district",
        "chart_ids_subset": "Completion: the {shown} IDs with the lowest projection, of {total}",
        "chart_ids_x": "Households done, % of expected",
        "chart_done": "done",
        "chart_done_lagging": "done (lagging)",
        "chart_projected": "projected by {end}",
        "chart_daily_title": "Households done, cumulative",
        "chart_daily_y": "Households",
        "chart_actual": "done",
        "chart_needed": "needed to finish by {end}",
        "chart_projection": "projection at the current pace",
        "chart_expected": "expected in total",
        "chart_as_of": "as of {as_of}",
        "no_data": "no data",
        "lagging_table": "Lagging counting districts",
        "over_table": "Possible over-coverage (coverage > {threshold})",
        "none": "None.",
        "more_rows": "The first {shown} of {total} are shown; all are in {file}.",
        "col_short": "Households short",
        "col_reason": "Reason",
        "footer": "No personal data: district codes and counts only. "
                  "Tables: cd_progress.csv, id_progress.csv, settlement_progress.csv.",
        "status_not_started": "not started",
        "status_on_pace": "on pace",
        "status_lagging": "lagging",
        "status_complete": "complete",
        "status_no_households": "no households",
        "reason_not_started": "not started: the field period starts on {start}",
        "reason_lagging": "lagging: projected {projected} by {end}, {short} households short",
        "reason_ended": "the field period has ended at {completion}: {short} households not "
                        "done",
        "reason_over": "coverage {coverage} above {threshold}: possible duplicates or "
                       "register under-count",
        "reason_over_none": "no residents expected but {counted} persons counted: possible "
                            "duplicates or register under-count",
    },
}


@dataclass
class ProgressResult:
    """Progress per CD, ID and settlement, the daily series and the summary.

    ``cds``, ``ids`` and ``settlements`` have the columns of :data:`CSV_COLUMNS` except
    the language-dependent reasons (``lagging_reason``, ``over_coverage_reason``), which
    :func:`write_progress` adds. ``daily`` has one row per day from the online start to
    the period end: ``date``, ``done_households`` (cumulative; NaN after ``as_of``),
    ``needed_households`` (the straight line from the households done before the period
    to all expected households at its end) and ``projected_households`` (from ``as_of``
    at the current pace). ``cd_shapes`` and ``id_shapes`` are the districts' polygons.
    """

    as_of: date
    period: tuple[date, date]
    online_start: date
    over_threshold: float
    cds: pd.DataFrame
    ids: pd.DataFrame
    settlements: pd.DataFrame
    daily: pd.DataFrame
    cd_shapes: gpd.GeoDataFrame
    id_shapes: gpd.GeoDataFrame
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Clock:
    """Field days of the period as seen on ``as_of``."""

    as_of: date
    start: date
    end: date
    online_start: date

    @property
    def total(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def started(self) -> bool:
        return self.as_of >= self.start

    @property
    def elapsed(self) -> int:
        """Field days up to the end of ``as_of`` (0 before the period)."""
        if not self.started:
            return 0
        return (min(self.as_of, self.end) - self.start).days + 1

    @property
    def remaining(self) -> int:
        """Field days after ``as_of`` (the whole period before it starts)."""
        return self.total - self.elapsed

    @property
    def phase(self) -> str:
        if not self.started:
            return "not_started"
        return "ended" if self.remaining == 0 else "running"


# ---------------------------------------------------------------- computing


def progress(
    layers: PlanLayers,
    records: pd.DataFrame,
    *,
    as_of: date,
    period: tuple[date, date] = PERIOD,
    online_start: date = ONLINE_START,
    over_threshold: float = OVER_THRESHOLD,
) -> ProgressResult:
    """Measure Stage-2 progress per CD, ID and settlement as of the end of ``as_of``.

    Parameters
    ----------
    layers
        The plan: ``units``, ``counting_districts``, ``instructor_districts`` and
        ``settlements`` are used.
    records
        Deduplicated Stage-2 records with the columns of :data:`REQUIRED_COLUMNS`
        (and optionally ``dwelling``); cells may be text or numbers, ``submitted_at``
        ISO 8601 text or datetimes. ``iin_hash`` is only tested for being blank.
    as_of
        The day of the report: records submitted up to the end of this day count.
    period
        First and last day of the door-to-door field period.
    online_start
        First day of online answers (the start of the daily chart).
    over_threshold
        Coverage above this flags a district as over-covered.

    Returns
    -------
    ProgressResult
        The tables (sorted by code), the daily series and the summary.

    Raises
    ------
    DistrictingError
        If a required column is missing or the dates are inconsistent.
    """
    clock = _check_dates(as_of=as_of, period=period, online_start=online_start)
    if not (isinstance(over_threshold, int | float) and math.isfinite(over_threshold)
            and over_threshold > 0):
        raise DistrictingError(f"over_threshold must be a positive number, not {over_threshold!r}")
    units = _unit_table(layers.units)
    table, counts = _record_table(records, as_of=as_of)
    position = locate_units(table, units)
    known = position >= 0
    counts["unknown_building"] = int((~known).sum())
    if counts["unknown_building"]:
        logger.warning("progress: %d record(s) name a building_id that is not in the plan; "
                       "they are not counted", counts["unknown_building"])
    table = table.loc[known].assign(unit=position[known]).reset_index(drop=True)
    counts["used"] = len(table)
    per_unit, done_days = _unit_counts(table, units, clock=clock)
    cds, ids, settlements = _district_tables(layers, units, per_unit)
    for frame in (cds, ids, settlements):
        _derive(frame, clock=clock, over_threshold=over_threshold)
    _child_counts(ids, cds, "id_code")
    _child_counts(settlements, cds, "settlement_id")
    settlements["n_id"] = (
        ids.groupby("settlement_id")["id_code"].size()
        .reindex(settlements["settlement_id"]).fillna(0).astype(np.int64).to_numpy()
    )
    totals = pd.DataFrame({c: [int(cds[c].sum())] for c in COUNT_COLUMNS})
    _derive(totals, clock=clock, over_threshold=over_threshold)
    daily = _daily(done_days, clock=clock, totals=totals.iloc[0])
    summary = _summary(clock, over_threshold, counts, totals.iloc[0], cds, ids, settlements)
    logger.info(
        "progress as of %s: %d of %d households done, %d of %d persons counted; "
        "%d CD(s) lagging, %d over-covered", as_of.isoformat(),
        int(totals["done_households"].iloc[0]), int(totals["expected_households"].iloc[0]),
        int(totals["counted_persons"].iloc[0]), int(totals["expected_persons"].iloc[0]),
        summary["counting_districts"]["lagging"], summary["counting_districts"]["over_coverage"],
    )
    return ProgressResult(
        as_of=as_of, period=(clock.start, clock.end), online_start=online_start,
        over_threshold=float(over_threshold), cds=cds, ids=ids, settlements=settlements,
        daily=daily, cd_shapes=_shapes(layers.counting_districts, "cd_code"),
        id_shapes=_shapes(layers.instructor_districts, "id_code"), summary=summary,
    )


def _check_dates(*, as_of: date, period: tuple[date, date], online_start: date) -> _Clock:
    values = {"as_of": as_of, "period start": period[0], "period end": period[1],
              "online_start": online_start}
    for name, value in values.items():
        if not isinstance(value, date) or isinstance(value, datetime):
            raise DistrictingError(f"{name} must be a date, not {value!r}")
    start, end = period
    if end < start:
        raise DistrictingError(f"the field period ends ({end}) before it starts ({start})")
    if online_start > end:
        raise DistrictingError(
            f"online answers start ({online_start}) after the field period ends ({end})")
    return _Clock(as_of=as_of, start=start, end=end, online_start=online_start)


def _numbers(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").fillna(0).to_numpy(dtype=float)


def _unit_table(units: pd.DataFrame) -> pd.DataFrame:
    """The units' codes as text and figures as numbers, in layer order."""
    needed = ("building_id", "residents", "households", "cd_code")
    missing = [c for c in needed if c not in units.columns]
    if missing:
        raise DistrictingError(f"the plan's units have no column(s) {', '.join(missing)}")
    return unit_keys(units).assign(
        cd_code=cell_texts(units["cd_code"]),
        residents=np.round(_numbers(units["residents"])).astype(np.int64),
        households=np.round(_numbers(units["households"])).astype(np.int64),
    )


def _record_table(records: pd.DataFrame, *, as_of: date) -> tuple[pd.DataFrame, dict[str, int]]:
    """The records needed for counting (no IIN hash: only whether there is one)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in records.columns]
    if missing:
        hint = ("; these look like raw records: deduplicate them first and give the accepted "
                "records" if "iin" in records.columns and "iin_hash" in missing else "")
        raise DistrictingError(f"the records have no column(s) {', '.join(missing)}{hint}")
    frame = records.reset_index(drop=True)
    times = wall_clock(frame["submitted_at"]).reset_index(drop=True)
    channel = np.char.lower(cell_texts(frame["channel"]).astype(str)).astype(object)
    status = np.char.lower(cell_texts(frame["status"]).astype(str)).astype(object)
    person = cell_texts(frame["iin_hash"]) != ""
    household = cell_texts(frame["household_id"])
    dwelling = (cell_texts(frame["dwelling"]) if "dwelling" in frame.columns
                else np.full(len(frame), "", dtype=object))
    building = cell_texts(frame["building_id"])
    kind = np.select(
        [np.isin(channel, ONLINE_CHANNELS),
         (status == "completed") | ((status == "") & person),
         status == "vacant",
         np.isin(status, ("refused", "absent"))],
        ["online", "visit", "vacant", "attempt"], default="other",
    ).astype(object)
    key = household_keys(building, household, dwelling, cell_texts(frame["record_id"]))
    table = pd.DataFrame({
        "record_id": cell_texts(frame["record_id"]),
        "building_id": building,
        "household": key,
        "dwelling": pd.to_numeric(pd.Series(dwelling, dtype=object), errors="coerce")
        .to_numpy(dtype=float),
        "person": person,
        "kind": kind,
        "time": times.to_numpy(),
    })
    unreadable = table["time"].isna().to_numpy()
    cutoff = pd.Timestamp(as_of + timedelta(days=1))
    after = ~unreadable & (table["time"] >= cutoff).to_numpy()
    counts = {
        "given": len(table),
        "unreadable_time": int(unreadable.sum()),
        "after_as_of": int(after.sum()),
    }
    if counts["unreadable_time"]:
        logger.warning("progress: %d record(s) have no readable submitted_at; they are not "
                       "counted", counts["unreadable_time"])
    table = table.loc[~unreadable & ~after].reset_index(drop=True)
    counts["no_outcome"] = int((table["kind"] == "other").sum())
    if counts["no_outcome"]:
        logger.warning("progress: %d record(s) are neither an online answer nor a tablet "
                       "visit with a known status; they count no household",
                       counts["no_outcome"])
    return table, counts


def _unit_counts(table: pd.DataFrame, units: pd.DataFrame, *,
                 clock: _Clock) -> tuple[pd.DataFrame, pd.Series]:
    """Counts per unit, and the day each done household was first done."""
    n = len(units)

    def per_unit(positions: np.ndarray) -> np.ndarray:
        return np.bincount(positions.astype(np.int64), minlength=n).astype(np.int64)

    unit = table["unit"].to_numpy(dtype=np.int64)
    order = table.sort_values(["time", "record_id"], kind="stable")
    done = order.loc[order["kind"].isin(list(_DONE_RANK))]
    best = done.assign(rank=done["kind"].map(_DONE_RANK)).groupby("household")["rank"].min()
    first_done = done.drop_duplicates("household")
    done_unit = first_done["unit"].to_numpy(dtype=np.int64)
    rank = first_done["household"].map(best).to_numpy(dtype=np.int64)
    done_days = first_done["time"].dt.normalize().reset_index(drop=True)
    in_period = (done_days >= pd.Timestamp(clock.start)).to_numpy()
    attempts = order.loc[(order["kind"] == "attempt")
                         & ~order["household"].isin(first_done["household"])]
    attempts = attempts.drop_duplicates("household")
    counts = pd.DataFrame({
        "cd_code": units["cd_code"].to_numpy(),
        "expected_persons": units["residents"].to_numpy(dtype=np.int64),
        "counted_persons": per_unit(unit[table["person"].to_numpy(dtype=bool)]),
        "expected_households": units["households"].to_numpy(dtype=np.int64),
        "done_households": per_unit(done_unit),
        "done_online": per_unit(done_unit[rank == 0]),
        "done_visit": per_unit(done_unit[rank == 1]),
        "done_vacant": per_unit(done_unit[rank == 2]),
        "attempted_households": per_unit(attempts["unit"].to_numpy(dtype=np.int64)),
        "done_in_period": per_unit(done_unit[in_period]),
    })
    return counts, done_days


def _district_tables(layers: PlanLayers, units: pd.DataFrame,
                     per_unit: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Counts per CD (from its units), per ID and per settlement (from their CDs)."""
    layer = layers.counting_districts
    cds = pd.DataFrame({
        column: cell_texts(layer[column]) if column in layer.columns
        else np.full(len(layer), "", dtype=object)
        for column in ("cd_code", "id_code", "rd_code", "settlement_id")
    })
    cds = cds.loc[cds["cd_code"] != ""].drop_duplicates("cd_code")
    cds = cds.sort_values("cd_code", kind="stable").reset_index(drop=True)
    orphans = ~per_unit["cd_code"].isin(cds["cd_code"])
    if orphans.any():
        logger.warning(
            "progress: %d unit(s) (%d expected persons, %d counted) are in no counting "
            "district of the plan; they are left out", int(orphans.sum()),
            int(per_unit.loc[orphans, "expected_persons"].sum()),
            int(per_unit.loc[orphans, "counted_persons"].sum()),
        )
    sums = per_unit.loc[~orphans].groupby("cd_code")[list(COUNT_COLUMNS)].sum()
    sums = sums.reindex(cds["cd_code"]).fillna(0).astype(np.int64).reset_index(drop=True)
    cds = pd.concat([cds, sums], axis=1)

    id_settlement = _lookup(layers.instructor_districts, "id_code", "settlement_id")
    ids = cds.groupby("id_code", sort=True).agg(
        settlement_id=("settlement_id", "first"), n_cd=("cd_code", "size"),
        **{c: (c, "sum") for c in COUNT_COLUMNS},
    ).reset_index()
    ids["settlement_id"] = [id_settlement.get(code) or given
                            for code, given in zip(ids["id_code"], ids["settlement_id"],
                                                   strict=True)]
    names = _lookup(layers.settlements, "settlement_id", "settlement_name")
    settlements = cds.groupby("settlement_id", sort=True).agg(
        n_cd=("cd_code", "size"), **{c: (c, "sum") for c in COUNT_COLUMNS},
    ).reset_index()
    settlements.insert(1, "settlement_name",
                       [names.get(code, "") for code in settlements["settlement_id"]])
    return cds, ids, settlements


def _lookup(frame: pd.DataFrame, key: str, value: str) -> dict[str, str]:
    if key not in frame.columns or value not in frame.columns:
        return {}
    return dict(zip(cell_texts(frame[key]), cell_texts(frame[value]), strict=True))


def _derive(frame: pd.DataFrame, *, clock: _Clock, over_threshold: float) -> None:
    """Add the derived columns (:data:`DERIVED_COLUMNS`) to a table of counts, in place."""
    persons = frame["expected_persons"].to_numpy(dtype=float)
    counted = frame["counted_persons"].to_numpy(dtype=float)
    expected = frame["expected_households"].to_numpy(dtype=float)
    done = frame["done_households"].to_numpy(dtype=float)
    in_period = frame["done_in_period"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        coverage = np.where(persons > 0, counted / persons, np.nan)
        completion = np.where(expected > 0, done / expected, np.nan)
        if clock.started:
            pace = in_period / clock.elapsed
            # A district never projects more households than it has (or has done).
            projected = np.minimum(done + pace * clock.remaining, np.maximum(expected, done))
        else:
            pace = np.full(len(frame), np.nan)
            projected = np.full(len(frame), np.nan)
        projected_completion = np.where(expected > 0, projected / expected, np.nan)
        required = (np.maximum(expected - done, 0.0) / clock.remaining
                    if clock.remaining > 0 else np.full(len(frame), np.nan))
    status = np.select(
        [expected <= 0, done >= expected, np.full(len(frame), not clock.started),
         projected >= expected - _EPS],
        ["no_households", "complete", "not_started", "on_pace"], default="lagging",
    ).astype(object)
    lagging = status == "lagging"
    short = np.where(lagging, np.ceil(np.nan_to_num(expected - projected) - _EPS), 0)
    frame["coverage"] = coverage
    frame["completion"] = completion
    frame["daily_pace"] = pace
    frame["required_pace"] = required
    frame["projected_done"] = projected
    frame["projected_completion"] = projected_completion
    frame["status"] = status
    frame["lagging"] = lagging
    frame["households_short"] = np.maximum(short, 0).astype(np.int64)
    frame["over_coverage"] = (np.nan_to_num(coverage) > over_threshold) | (
        (persons <= 0) & (counted > 0))


def _child_counts(parents: pd.DataFrame, cds: pd.DataFrame, key: str) -> None:
    """How many of each parent's CDs are lagging and over-covered, in place."""
    for column, flag in (("n_cd_lagging", "lagging"), ("n_cd_over_coverage", "over_coverage")):
        counts = cds.groupby(key)[flag].sum()
        parents[column] = counts.reindex(parents[key]).fillna(0).astype(np.int64).to_numpy()


def _daily(done_days: pd.Series, *, clock: _Clock, totals: pd.Series) -> pd.DataFrame:
    """Cumulative households done per day, the line needed to finish and the projection."""
    first = min(clock.online_start, clock.start)
    if len(done_days):
        first = min(first, done_days.min().date())
    last = max(clock.end, clock.as_of) if clock.as_of >= clock.start else clock.end
    days = pd.date_range(pd.Timestamp(first), pd.Timestamp(last), freq="D")
    per_day = done_days.value_counts().reindex(days, fill_value=0).sort_index()
    done = np.array(per_day.cumsum(), dtype=float)
    done[days > pd.Timestamp(clock.as_of)] = np.nan
    expected = float(totals["expected_households"])
    before = float(totals["done_households"] - totals["done_in_period"])
    offset = np.array([(d.date() - clock.start).days + 1 for d in days], dtype=float)
    needed = np.where((offset >= 0) & (offset <= clock.total),
                      before + (expected - before) * offset / clock.total, np.nan)
    projected = np.full(len(days), np.nan)
    if clock.started and clock.remaining > 0:
        ahead = np.array([(d.date() - clock.as_of).days for d in days], dtype=float)
        span = (ahead >= 0) & (days <= pd.Timestamp(clock.end))
        done_now = float(totals["done_households"])
        projected[span] = np.minimum(done_now + float(totals["daily_pace"]) * ahead[span],
                                     max(expected, done_now))
    return pd.DataFrame({
        "date": [d.date() for d in days],
        "done_households": done,
        "needed_households": needed,
        "projected_households": projected,
    })


def _shapes(layer: gpd.GeoDataFrame, code: str) -> gpd.GeoDataFrame:
    if code not in layer.columns or layer.geometry.name not in layer.columns:
        return gpd.GeoDataFrame({code: []}, geometry=[], crs=layer.crs)
    return gpd.GeoDataFrame({code: cell_texts(layer[code])},
                            geometry=layer.geometry.to_numpy(), crs=layer.crs)


def _round(value: Any, digits: int = 4) -> float | None:
    number = float(value)
    return None if math.isnan(number) else round(number, digits)


def _level_summary(frame: pd.DataFrame) -> dict[str, int]:
    out = {"total": len(frame)}
    out.update({status: int((frame["status"] == status).sum()) for status in STATUSES})
    out["over_coverage"] = int(frame["over_coverage"].sum())
    return out


def _summary(clock: _Clock, over_threshold: float, counts: dict[str, int], totals: pd.Series,
             cds: pd.DataFrame, ids: pd.DataFrame, settlements: pd.DataFrame) -> dict[str, Any]:
    """The language-neutral summary written to ``summary.json``."""
    return {
        "format": FORMAT,
        "as_of": clock.as_of.isoformat(),
        "period": {"start": clock.start.isoformat(), "end": clock.end.isoformat()},
        "online_start": clock.online_start.isoformat(),
        "phase": clock.phase,
        "field_days": {"total": clock.total, "elapsed": clock.elapsed,
                       "remaining": clock.remaining},
        "over_threshold": over_threshold,
        "records": {
            "given": counts["given"],
            "used": counts["used"],
            "person_records": int(totals["counted_persons"]),
            "after_as_of": counts["after_as_of"],
            "unreadable_time": counts["unreadable_time"],
            "unknown_building": counts["unknown_building"],
            "no_outcome": counts["no_outcome"],
        },
        "totals": {
            **{c: int(totals[c]) for c in COUNT_COLUMNS},
            "coverage": _round(totals["coverage"]),
            "completion": _round(totals["completion"]),
            "daily_pace": _round(totals["daily_pace"], 3),
            "required_pace": _round(totals["required_pace"], 3),
            "projected_completion": _round(totals["projected_completion"]),
            "status": str(totals["status"]),
            "households_short": int(totals["households_short"]),
        },
        "counting_districts": _level_summary(cds),
        "instructor_districts": _level_summary(ids),
        "settlements": _level_summary(settlements),
        "lagging_cds": cds.loc[cds["lagging"], "cd_code"].tolist(),
        "over_covered_cds": cds.loc[cds["over_coverage"], "cd_code"].tolist(),
    }


# ---------------------------------------------------------------- reading inputs


def read_progress_records(paths: Sequence[str | Path]) -> pd.DataFrame:
    """Read deduplicated records (``accepted.csv`` of deduplication, CSV or Parquet) as text.

    Several files are concatenated; a raw ``iin`` column is dropped on reading.

    Raises
    ------
    InputFileError
        If a file is missing or unreadable.
    DistrictingError
        If no file is given, a required column is missing, or a ``record_id`` repeats
        (the same records given twice would be counted twice).
    """
    if not paths:
        raise DistrictingError("give at least one records file")
    frames = []
    for raw in paths:
        path = Path(raw)
        frame = read_table(path)
        missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
        if missing:
            hint = (": these look like raw records; deduplicate them first and give the "
                    "accepted records" if "iin" in frame.columns and "iin_hash" in missing
                    else "")
            raise DistrictingError(f"{path}: no column(s) {', '.join(missing)}{hint}")
        frames.append(frame.drop(columns=[c for c in ("iin",) if c in frame.columns]))
    records = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    ids = pd.Series(cell_texts(records["record_id"]))
    repeated = int(ids.duplicated(keep=False).sum())
    if repeated:
        raise DistrictingError(
            f"{repeated} records share a record_id with another; give each file of accepted "
            "records once")
    return records


def read_plan(plan_dir: str | Path) -> PlanLayers:
    """The layers of a plan folder progress needs; the others are left empty (not read).

    Raises
    ------
    InputFileError
        If ``plan.gpkg`` is missing or unreadable, or lacks a needed layer.
    """
    needed = ("units", "counting_districts", "instructor_districts", "settlements")
    found = read_plan_layers(plan_dir, only=needed)
    missing = [name for name in needed if name not in found]
    if missing:
        raise InputFileError(
            f"the plan in {plan_dir} has no layer(s) {', '.join(missing)}")
    crs = found["units"].crs
    empty = {
        name: gpd.GeoDataFrame({c: [] for c in fields}, geometry=[], crs=crs)
        for name, fields in LAYER_FIELDS.items() if name not in found
    }
    return PlanLayers(**{**empty, **found})


def run_progress(
    plan_dir: str | Path,
    record_paths: Sequence[str | Path],
    *,
    as_of: date,
    out_dir: str | Path,
    title: str | None = None,
    lang: str = "ru",
    period: tuple[date, date] = PERIOD,
    online_start: date = ONLINE_START,
    over_threshold: float = OVER_THRESHOLD,
    tiles: str | None = None,
) -> ProgressResult:
    """Read a plan and deduplicated records, measure progress and write the output folder.

    ``title`` defaults to "Census progress as of <as_of>" in ``lang``. The output folder
    must be new, empty, or an earlier progress output (it is then replaced); it must not
    hold the plan or a records file.
    """
    text = _texts_for(lang)
    layers = read_plan(plan_dir)
    records = read_progress_records(record_paths)
    result = progress(layers, records, as_of=as_of, period=period, online_start=online_start,
                      over_threshold=over_threshold)
    protect = (Path(plan_dir) / "plan.gpkg", *(Path(p) for p in record_paths))
    write_progress(result, out_dir,
                   title=title or text["title"].format(date=_date(as_of, lang)),
                   lang=lang, tiles=tiles, protect=protect)
    return result


# ---------------------------------------------------------------- writing


def write_progress(
    result: ProgressResult,
    out_dir: str | Path,
    *,
    title: str,
    lang: str = "ru",
    tiles: str | None = None,
    simplify_m: float = 2.0,
    protect: Sequence[Path] = (),
) -> Path:
    """Write the three CSV tables, ``summary.json`` and ``dashboard.html``, all or nothing.

    Parameters
    ----------
    result
        From :func:`progress`.
    out_dir
        The folder to write; it must be new, empty, or an earlier output of this
        function (it is then replaced).
    title
        The dashboard's title.
    lang
        ``"ru"`` (default) or ``"en"``: the dashboard's labels and the reasons in the
        CSV files.
    tiles
        A folium tile layer for a user who is online; ``None`` (default) draws none.
    simplify_m
        Tolerance in metres for simplifying the map's polygons.
    protect
        Input paths the folder must not hold.

    Returns
    -------
    Path
        The folder written.

    Raises
    ------
    DistrictingError
        If ``lang`` is unknown, or the folder cannot be used.
    """
    text = _texts_for(lang)
    files: dict[str, bytes] = {}
    tables = {
        "cds": _with_reasons(result.cds, result, text, lang),
        "ids": _with_reasons(result.ids, result, text, lang),
        "settlements": _with_reasons(result.settlements, result, text, lang),
    }
    for name, frame in tables.items():
        files[CSV_FILES[name]] = _csv_bytes(frame, CSV_COLUMNS[name])
    files[DASHBOARD_FILE] = build_dashboard(
        result, title=title, lang=lang, tiles=tiles, simplify_m=simplify_m,
        tables=tables).encode("utf-8")
    target = Path(out_dir).resolve()
    with atomic_directory(target, kind="progress", protect=tuple(protect)) as staging:
        _write_files(staging, files, result.summary)
    return target


def _texts_for(lang: str) -> dict[str, str]:
    return pick_language(TEXT, lang, what="progress dashboard")


def _write_files(folder: Path, files: Mapping[str, bytes], summary: dict[str, Any]) -> None:
    for name, data in files.items():
        write_bytes_atomic(folder / name, data)
    write_json(summary, folder / SUMMARY_FILE)


def _with_reasons(frame: pd.DataFrame, result: ProgressResult, t: dict[str, str],
                  lang: str) -> pd.DataFrame:
    out = frame.copy()
    out["lagging_reason"] = [
        _lagging_reason(row, result, t, lang) for row in out.to_dict("records")]
    out["over_coverage_reason"] = [
        _over_reason(row, result, t, lang) for row in out.to_dict("records")]
    return out


def _lagging_reason(row: Mapping[Any, Any], result: ProgressResult, t: dict[str, str],
                    lang: str) -> str:
    status = row["status"]
    if status == "not_started":
        return t["reason_not_started"].format(start=_date(result.period[0], lang))
    if status != "lagging":
        return ""
    short = whole(row["households_short"], lang)
    if result.summary.get("phase") == "ended":
        return t["reason_ended"].format(completion=_pct(row["completion"], lang), short=short)
    return t["reason_lagging"].format(projected=_pct(row["projected_completion"], lang),
                                      end=_date(result.period[1], lang), short=short)


def _over_reason(row: Mapping[Any, Any], result: ProgressResult, t: dict[str, str],
                 lang: str) -> str:
    if not row["over_coverage"]:
        return ""
    if not row["expected_persons"]:
        return t["reason_over_none"].format(counted=whole(row["counted_persons"], lang))
    return t["reason_over"].format(coverage=_pct(row["coverage"], lang),
                                   threshold=_pct(result.over_threshold, lang, digits=0))


def _csv_cell(column: str, value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return ""
        if column in _RATIO_COLUMNS:
            return f"{value:.4f}"
        if column in _PACE_COLUMNS:
            return f"{value:.2f}"
        return f"{value:g}"
    if isinstance(value, int | np.integer):
        return str(int(value))
    return csv_text(cell_text(value))  # text from data never reads as a formula


def _csv_bytes(frame: pd.DataFrame, columns: Sequence[str]) -> bytes:
    """UTF-8 CSV with ``\\n`` line ends; numbers formatted so that reruns give the same bytes,
    text that a spreadsheet would read as a formula quoted (:mod:`districting.outputs.cells`)."""
    buffer = io.StringIO()
    frame = frame.loc[:, list(columns)]
    rows = [",".join(_csv_quote(c) for c in columns)]
    for values in frame.itertuples(index=False, name=None):
        rows.append(",".join(_csv_quote(_csv_cell(c, v))
                             for c, v in zip(columns, values, strict=True)))
    buffer.write("\n".join(rows) + "\n")
    return buffer.getvalue().encode("utf-8")


def _csv_quote(text: str) -> str:
    if any(ch in text for ch in ',"\n\r;'):
        return '"' + text.replace('"', '""') + '"'
    return text


# ---------------------------------------------------------------- number formats





def _dec(value: Any, lang: str, digits: int = 1) -> str:
    number = as_number(value)
    return "—" if number is None else localise(f"{number:,.{digits}f}", lang)


def _pct(value: Any, lang: str, digits: int = 1) -> str:
    number = as_number(value)
    if number is None:
        return "—"
    return localise(f"{number * 100:,.{digits}f}", lang) + ("\u00a0%" if lang == "ru" else "%")


def _date(day: date, lang: str) -> str:
    return day.strftime("%d.%m.%Y") if lang == "ru" else day.isoformat()


def _esc(value: Any) -> str:
    return html.escape(cell_text(value), quote=True)


# ---------------------------------------------------------------- dashboard


def completion_colour(value: Any) -> str:
    """The choropleth colour of a completion rate (0–100 %, clipped); grey when unknown."""
    number = as_number(value)
    if number is None:
        return _NO_DATA_COLOUR
    return str(to_hex(colormaps[_COLOUR_MAP](min(max(number, 0.0), 1.0)), keep_alpha=False))


class _AfterMap(MacroElement):
    """Raw HTML placed in the page after the map (folium adds the map's div at render)."""

    _template = Template("{% macro html(this, kwargs) %}{{ this.body }}{% endmacro %}")

    def __init__(self, body: str) -> None:
        super().__init__()
        self._name = "AfterMap"
        self.body = body


def build_dashboard(
    result: ProgressResult,
    *,
    title: str,
    lang: str = "ru",
    tiles: str | None = None,
    simplify_m: float = 2.0,
    tables: Mapping[str, pd.DataFrame] | None = None,
) -> str:
    """The dashboard page: key figures, the CD completion map, two charts and tables."""
    t = _texts_for(lang)
    if tables is None:
        tables = {"cds": _with_reasons(result.cds, result, t, lang)}
    cds = tables["cds"]
    fmap = _dashboard_map(result, cds, t=t, lang=lang, tiles=tiles, simplify_m=simplify_m)
    figure = fmap.get_root()
    if not isinstance(figure, Figure):  # pragma: no cover - folium always makes one
        raise TypeError("folium.Map is not attached to a Figure")
    figure.header.add_child(Element(f"<title>{html.escape(title)}</title>"))
    figure.header.add_child(Element(f"<style>{_CSS}</style>"))
    figure.html.add_child(Element(_header_html(result, title=title, t=t, lang=lang)))
    ids_png = id_chart_png(result, lang=lang)
    daily_png = daily_chart_png(result, lang=lang)
    body = [
        '<div class="page">',
        _figure_html(daily_png, alt=t["chart_daily_title"]),
        _figure_html(ids_png, alt=t["chart_ids_title"]),
        _lagging_table(cds, result, t=t, lang=lang),
        _over_table(cds, result, t=t, lang=lang),
        f'<p class="note">{html.escape(t["footer"])}</p>',
        "</div>",
    ]
    figure.add_child(_AfterMap("\n".join(body)))
    assign_sequential_ids(figure)
    return figure.render()


_CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; color: #222; background: #fff; }
.page { max-width: 1100px; margin: 0 auto; padding: 10px 16px; }
.page h1 { font-size: 22px; margin: 6px 0 2px; }
.page p.sub { margin: 2px 0 8px; color: #444; font-size: 13px; }
.cards { display: flex; flex-wrap: wrap; gap: 8px; margin: 6px 0; }
.card { border: 1px solid #bbb; border-radius: 4px; padding: 4px 10px; min-width: 130px; }
.card .v { font-size: 18px; font-weight: bold; }
.card .k { font-size: 11px; color: #555; }
.card.warn .v { color: #d7191c; }
.legend { font-size: 12px; margin: 6px 0; display: flex; flex-wrap: wrap; gap: 14px;
          align-items: center; }
.ramp { display: inline-block; width: 180px; height: 12px; border: 1px solid #888;
        vertical-align: middle; }
.swatch { display: inline-block; width: 14px; height: 12px; vertical-align: middle;
          border: 1px solid #888; }
.folium-map { border-top: 1px solid #aaa; border-bottom: 1px solid #aaa; background: #f2f2f2; }
figure { margin: 14px 0; }
figure img { max-width: 100%; }
table.t { border-collapse: collapse; font-size: 12px; margin: 6px 0 14px; }
table.t th, table.t td { border: 1px solid #bbb; padding: 2px 6px; text-align: right; }
table.t th { background: #eee; }
table.t td.l, table.t th.l { text-align: left; }
table.t td.l:first-child, table.t td.l:nth-child(2) { white-space: nowrap; }
.page h2 { font-size: 17px; font-weight: bold; margin: 16px 0 4px; }
.page p.note { font-size: 12px; color: #555; }
"""


def _header_html(result: ProgressResult, *, title: str, t: dict[str, str], lang: str) -> str:
    s = result.summary
    totals = s["totals"]
    end = _date(result.period[1], lang)
    subtitle = t["subtitle"].format(
        as_of=_date(result.as_of, lang), start=_date(result.period[0], lang), end=end,
        elapsed=s["field_days"]["elapsed"], total=s["field_days"]["total"],
        online=_date(result.online_start, lang))
    cds = s["counting_districts"]
    cards = [
        (t["expected_persons"], whole(totals["expected_persons"], lang), False),
        (t["counted_persons"], whole(totals["counted_persons"], lang), False),
        (t["coverage"], _pct(totals["coverage"], lang), False),
        (t["expected_households"], whole(totals["expected_households"], lang), False),
        (t["done_households"], whole(totals["done_households"], lang), False),
        (t["completion"], _pct(totals["completion"], lang), False),
        (t["daily_pace"], _dec(totals["daily_pace"], lang), False),
        (t["required_pace"], _dec(totals["required_pace"], lang), False),
        (t["projected_completion"].format(end=end), _pct(totals["projected_completion"], lang),
         totals["status"] == "lagging"),
        (t["lagging_cds"], f'{cds["lagging"]} / {cds["total"]}', cds["lagging"] > 0),
        (t["over_cds"].format(threshold=_pct(result.over_threshold, lang, digits=0)),
         f'{cds["over_coverage"]} / {cds["total"]}', cds["over_coverage"] > 0),
    ]
    card_html = "".join(
        f'<div class="card{" warn" if alert else ""}"><div class="v">{html.escape(value)}'
        f'</div><div class="k">{html.escape(key)}</div></div>'
        for key, value, alert in cards
    )
    stops = ", ".join(f"{completion_colour(x / 5)} {x * 20}%" for x in range(6))
    legend = (
        f'<div class="legend"><span><b>{html.escape(t["legend_title"])}:</b> 0%&nbsp;'
        f'<span class="ramp" style="background:linear-gradient(to right, {stops});"></span>'
        f"&nbsp;100%</span>"
        f'<span><span class="swatch" style="border:3px solid {_LAGGING_COLOUR};"></span> '
        f'{html.escape(t["legend_lagging"])}</span>'
        f'<span><span class="swatch" style="background:{_NO_DATA_COLOUR};"></span> '
        f'{html.escape(t["legend_no_data"])}</span>'
        f'<span><span style="display:inline-block;width:22px;border-top:2px dashed #222;'
        f'vertical-align:middle;"></span> {html.escape(t["legend_id"])}</span>'
        f'<span style="color:#777;">{html.escape(t["offline_note"])}</span></div>'
    )
    note = (f'<p class="sub"><b>{html.escape(t["not_started_note"])}</b></p>'
            if s["phase"] == "not_started" else "")
    return (
        f'<div class="page"><h1>{html.escape(title)}</h1>'
        f'<p class="sub">{html.escape(subtitle)}</p>{note}'
        f'<div class="cards">{card_html}</div>{legend}</div>'
    )


def _cd_tooltip(row: Mapping[Any, Any], result: ProgressResult, t: dict[str, str],
                lang: str) -> str:
    end = _date(result.period[1], lang)
    lines = [
        f"<b>{html.escape(t['cd'])} {_esc(row['cd_code'])}</b> · "
        f"{html.escape(t['status_' + str(row['status'])])}",
        f"{html.escape(t['id'])}: {_esc(row['id_code'])}",
        html.escape(t["persons_line"].format(
            counted=whole(row["counted_persons"], lang),
            expected=whole(row["expected_persons"], lang),
            coverage=_pct(row["coverage"], lang))),
        html.escape(t["households_line"].format(
            done=whole(row["done_households"], lang),
            expected=whole(row["expected_households"], lang),
            completion=_pct(row["completion"], lang))),
        html.escape(t["breakdown_line"].format(
            online=whole(row["done_online"], lang), visit=whole(row["done_visit"], lang),
            vacant=whole(row["done_vacant"], lang),
            attempted=whole(row["attempted_households"], lang))),
        html.escape(t["pace_line"].format(pace=_dec(row["daily_pace"], lang),
                                          required=_dec(row["required_pace"], lang))),
        html.escape(t["projection_line"].format(
            end=end, projected=_pct(row["projected_completion"], lang))),
    ]
    for key, colour in (("lagging_reason", _LAGGING_COLOUR), ("over_coverage_reason", "#7b3294")):
        reason = cell_text(row.get(key))
        if reason and not (key == "lagging_reason" and row["status"] == "not_started"):
            lines.append(f'<span style="color:{colour}">{html.escape(reason)}</span>')
    return "<br>".join(lines)


def _dashboard_map(result: ProgressResult, cds: pd.DataFrame, *, t: dict[str, str], lang: str,
                   tiles: str | None, simplify_m: float) -> folium.Map:
    shapes = display_frame(result.cd_shapes, "counting_districts", simplify_m)
    id_shapes = display_frame(result.id_shapes, "instructor_districts", simplify_m)
    figures = cds.set_index("cd_code")
    shapes = shapes.loc[shapes["cd_code"].isin(figures.index)]
    shapes = shapes.assign(lagging=figures["lagging"].reindex(shapes["cd_code"]).to_numpy())
    # Lagging CDs are drawn last, so that their red outlines lie on top.
    shapes = shapes.sort_values(["lagging", "cd_code"], kind="stable").reset_index(drop=True)
    frames = [f for f in (shapes, id_shapes) if len(f)]
    if frames:
        minx = min(float(f.total_bounds[0]) for f in frames)
        miny = min(float(f.total_bounds[1]) for f in frames)
        maxx = max(float(f.total_bounds[2]) for f in frames)
        maxy = max(float(f.total_bounds[3]) for f in frames)
        centre = [round((miny + maxy) / 2, 6), round((minx + maxx) / 2, 6)]
        fmap = folium.Map(tiles=tiles, control_scale=True, location=centre, zoom_start=13,
                          height=f"{_MAP_HEIGHT_PX}px")
    else:
        fmap = folium.Map(tiles=tiles, control_scale=True, height=f"{_MAP_HEIGHT_PX}px")
    cd_group = folium.FeatureGroup(name=t["layer_cd"], show=True)
    if len(shapes):
        rows = [figures.loc[code].to_dict() | {"cd_code": code} for code in shapes["cd_code"]]
        fills = [completion_colour(row["completion"]) for row in rows]
        outline = [_STYLE_CD_LAGGING if row["lagging"] else _STYLE_CD for row in rows]
        add_geojson(
            cd_group, shapes,
            [{"cd_code": str(row["cd_code"]), "tip": _cd_tooltip(row, result, t, lang),
              "label": f"{t['cd']} {row['cd_code']}"} for row in rows],
            class_name="cd-progress",
            style=_style_by_index(fills, outline),
            highlight={"weight": 4, "fillOpacity": 0.9},
        )
    cd_group.add_to(fmap)
    id_group = folium.FeatureGroup(name=t["layer_id"], show=True)
    if len(id_shapes):
        ids = result.ids.set_index("id_code")
        tips = []
        for code in id_shapes["id_code"]:
            row = ids.loc[code] if code in ids.index else None
            line = f"<b>{html.escape(t['id'])} {_esc(code)}</b>"
            if row is not None:
                line += "<br>" + html.escape(t["households_line"].format(
                    done=whole(row["done_households"], lang),
                    expected=whole(row["expected_households"], lang),
                    completion=_pct(row["completion"], lang)))
            tips.append({"tip": line})
        add_geojson(id_group, id_shapes, tips, class_name="id-outline",
                     style=lambda i: dict(_STYLE_ID))
    id_group.add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    if frames:
        fmap.fit_bounds([[round(miny, 6), round(minx, 6)], [round(maxy, 6), round(maxx, 6)]],
                        padding=(12, 12), max_zoom=18)
    return fmap


def _style_by_index(fills: list[str],
                    outline: list[dict[str, Any]]) -> Callable[[int], dict[str, Any]]:
    def style(i: int) -> dict[str, Any]:
        return {**outline[i], "fillColor": fills[i]}
    return style


def _figure_html(png: bytes, *, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></figure>'


def _table_html(headers: Sequence[str], rows: Sequence[Sequence[str]], *,
                left: Sequence[int] = (0,)) -> str:
    """A table; the columns ``left`` (codes and texts) are left-aligned, numbers right."""
    head = "".join(f'<th{" class=l" if i in left else ""}>{html.escape(h)}</th>'
                   for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f'<td{" class=l" if i in left else ""}>{html.escape(v)}</td>'
                         for i, v in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f'<table class="t"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _more(total: int, t: dict[str, str]) -> str:
    if total <= _MAX_TABLE_ROWS:
        return ""
    return (f'<p class="note">'
            f'{html.escape(t["more_rows"].format(shown=_MAX_TABLE_ROWS, total=total, file=CSV_FILES["cds"]))}'  # noqa: E501
            "</p>")


def _lagging_table(cds: pd.DataFrame, result: ProgressResult, *, t: dict[str, str],
                   lang: str) -> str:
    heading = f"<h2>{html.escape(t['lagging_table'])}</h2>"
    lagging = cds.loc[cds["lagging"]].sort_values(
        ["households_short", "cd_code"], ascending=[False, True], kind="stable")
    if len(lagging) == 0:
        return heading + f'<p class="note">{html.escape(t["none"])}</p>'
    end = _date(result.period[1], lang)
    headers = [t["cd"], t["id"], t["expected_households"], t["done_households"],
               t["completion"], t["daily_pace"], t["required_pace"],
               t["projected_completion"].format(end=end), t["col_short"]]
    rows = [
        [str(r["cd_code"]), str(r["id_code"]), whole(r["expected_households"], lang),
         whole(r["done_households"], lang), _pct(r["completion"], lang),
         _dec(r["daily_pace"], lang), _dec(r["required_pace"], lang),
         _pct(r["projected_completion"], lang), whole(r["households_short"], lang)]
        for r in lagging.head(_MAX_TABLE_ROWS).to_dict("records")
    ]
    return heading + _table_html(headers, rows, left=(0, 1)) + _more(len(lagging), t)


def _over_table(cds: pd.DataFrame, result: ProgressResult, *, t: dict[str, str],
                lang: str) -> str:
    threshold = _pct(result.over_threshold, lang, digits=0)
    heading = f"<h2>{html.escape(t['over_table'].format(threshold=threshold))}</h2>"
    over = cds.loc[cds["over_coverage"]].sort_values(
        ["coverage", "cd_code"], ascending=[False, True], kind="stable", na_position="first")
    if len(over) == 0:
        return heading + f'<p class="note">{html.escape(t["none"])}</p>'
    headers = [t["cd"], t["id"], t["expected_persons"], t["counted_persons"], t["coverage"],
               t["col_reason"]]
    rows = [
        [str(r["cd_code"]), str(r["id_code"]), whole(r["expected_persons"], lang),
         whole(r["counted_persons"], lang), _pct(r["coverage"], lang),
         str(r["over_coverage_reason"])]
        for r in over.head(_MAX_TABLE_ROWS).to_dict("records")
    ]
    return heading + _table_html(headers, rows, left=(0, 1, 5)) + _more(len(over), t)


def _png(fig: MplFigure) -> bytes:
    """The figure as PNG bytes, without a software stamp (reproducible)."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()


def id_chart_png(result: ProgressResult, *, lang: str = "ru") -> bytes:
    """Horizontal bars of completion per ID (red when lagging), with the projection, as PNG.

    With more than 60 IDs, the 60 with the lowest projected completion are shown.
    """
    t = _texts_for(lang)
    ids = result.ids
    title = t["chart_ids_title"]
    if len(ids) > _MAX_ID_BARS:
        key = ids["projected_completion"].fillna(ids["completion"]).fillna(np.inf)
        ids = ids.assign(_key=key).sort_values(["_key", "id_code"], kind="stable")
        ids = ids.head(_MAX_ID_BARS).sort_values("id_code", kind="stable")
        title = t["chart_ids_subset"].format(shown=_MAX_ID_BARS, total=len(result.ids))
    n = len(ids)
    end = _date(result.period[1], lang)
    with style_context("default"):
        height = 1.4 + 0.24 * max(n, 3)
        fig = MplFigure(figsize=(7.5, height))
        ax = fig.add_axes((0.2, 0.55 / height, 0.76, 1 - 1.4 / height))
        fig.text(0.01, 1 - 0.1 / height, title, fontsize=11, va="top", ha="left")
        if n == 0:
            ax.text(0.5, 0.5, t["no_data"], transform=ax.transAxes, ha="center", va="center")
            ax.set_yticks([])
        else:
            y = np.arange(n)[::-1]
            completion = ids["completion"].fillna(0).to_numpy(dtype=float)
            colours = [_LAGGING_COLOUR if lag else _ON_PACE_COLOUR for lag in ids["lagging"]]
            ax.barh(y, completion, color=colours, height=0.7)
            projected = ids["projected_completion"].to_numpy(dtype=float)
            shown = np.isfinite(projected)
            if shown.any():
                ax.plot(projected[shown], y[shown], linestyle="none", marker="|",
                        markersize=11, markeredgewidth=2, color="#222222")
            for yi, value in zip(y, ids["completion"].to_numpy(dtype=float), strict=True):
                label = _pct(value, lang, digits=0)
                ax.text(0.005 + (value if math.isfinite(value) else 0), yi, " " + label,
                        va="center", fontsize=7)
            ax.set_yticks(y, ids["id_code"].tolist(), fontsize=7, parse_math=False)  # data
            largest = float(np.max(np.concatenate([completion, projected[shown]])))
            ax.set_xlim(0, max(1.05, largest + 0.08))
            ax.set_ylim(-0.7, n - 0.3)
        ax.axvline(1.0, color="#555555", linestyle="--", linewidth=1)
        ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
        ax.set_xlabel(t["chart_ids_x"], fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        handles = [Patch(color=_ON_PACE_COLOUR, label=t["chart_done"]),
                   Patch(color=_LAGGING_COLOUR, label=t["chart_done_lagging"]),
                   Line2D([], [], linestyle="none", marker="|", markersize=10,
                          markeredgewidth=2, color="#222222",
                          label=t["chart_projected"].format(end=end))]
        fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, 1 - 0.42 / height),
                   ncols=3, fontsize=8, frameon=False)
        return _png(fig)


def daily_chart_png(result: ProgressResult, *, lang: str = "ru") -> bytes:
    """Cumulative households done per day against the straight line needed to finish, as PNG."""
    t = _texts_for(lang)
    daily = result.daily
    end = _date(result.period[1], lang)
    x = np.asarray(date2num([datetime(d.year, d.month, d.day) for d in daily["date"]]))
    expected = float(result.summary["totals"]["expected_households"])
    with style_context("default"):
        fig = MplFigure(figsize=(7.5, 3.8))
        ax = fig.add_axes((0.1, 0.13, 0.86, 0.68))
        ax.set_title(t["chart_daily_title"], fontsize=11, loc="left", pad=26)
        done = daily["done_households"].to_numpy(dtype=float)
        needed = daily["needed_households"].to_numpy(dtype=float)
        projected = daily["projected_households"].to_numpy(dtype=float)
        ax.axhline(expected, color="#888888", linewidth=1, label=t["chart_expected"])
        ax.plot(x, needed, color="#555555", linestyle="--", linewidth=1.5,
                label=t["chart_needed"].format(end=end))
        if np.isfinite(projected).any():
            ax.plot(x, projected, color=_ON_PACE_COLOUR, linestyle=":", linewidth=1.8,
                    label=t["chart_projection"])
        ax.plot(x, done, color=_ON_PACE_COLOUR, linewidth=2.2, label=t["chart_actual"])
        start_x = float(date2num(datetime.combine(result.period[0], datetime.min.time())))
        ax.axvspan(start_x - 0.5, float(x[-1]) if len(x) else start_x, color="#f0f0f0",
                   zorder=0)
        as_of_x = float(date2num(datetime.combine(result.as_of, datetime.min.time())))
        if len(x) and x[0] <= as_of_x <= x[-1]:
            ax.axvline(as_of_x, color="#d95f02", linewidth=1)
            ax.text(as_of_x, 1.01, " " + t["chart_as_of"].format(as_of=_date(result.as_of, lang)),
                    transform=ax.get_xaxis_transform(), fontsize=8, color="#d95f02",
                    ha="center", va="bottom")
        ax.xaxis.set_major_locator(DayLocator(bymonthday=(1, 10, 20)))
        ax.xaxis.set_major_formatter(DateFormatter("%d.%m"))
        ax.tick_params(labelsize=8)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_formatter(lambda v, _pos: whole(v, lang))
        ax.set_ylabel(t["chart_daily_y"], fontsize=9)
        if len(x):
            ax.set_xlim(float(x[0]) - 0.5, float(x[-1]) + 0.5)
        ax.set_ylim(0, max(expected, float(np.nanmax(np.concatenate(
            [[0.0], done[np.isfinite(done)], projected[np.isfinite(projected)]])))) * 1.05 + 1)
        ax.legend(loc="upper left", fontsize=8, frameon=True)
        return _png(fig)
