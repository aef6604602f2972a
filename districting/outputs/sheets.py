"""Assignment sheets for field staff: CSV tables, Excel workbooks and printable pages.

* One sheet per counting district (CD) for its interviewer: a header (settlement,
  CD, ID and RD codes, the registration point, the census period and blank
  name and signature fields), the address units in walking-route order
  (``visit_order`` of the ``units`` layer), then the units without households
  that are not visited, the totals and the route length.
* One sheet per instructor district (ID) for its instructor-controller: a header
  and the CDs it supervises, with their figures and a totals row.

:func:`write_field_sheets` writes all of them, for a plan's ``sheets/`` folder
(:func:`writing_field_sheets` on worker processes, while the plan's other files are
written):

* ``<cd_code>.csv`` and ``instructors/<id_code>.csv``: UTF-8 with a byte-order
  mark (so Excel recognises Cyrillic) and ``\\r\\n`` line endings;
* ``xlsx/<id_code>.xlsx``: the instructor's sheet, then one sheet per CD with a
  small map of the district;
* ``html/<id_code>.html``: a self-contained page for A4 printing, the
  instructor's page first and then each CD on its own page, with an inline SVG map.

Every file is byte-identical for the same layers, and each is written atomically
(a temporary file in the same folder, then :func:`os.replace`). The workbooks are
made with XlsxWriter rather than openpyxl (which makes the staffing plan): a national
plan has tens of thousands of them, and XlsxWriter writes them in about 60% of the time.
"""

from __future__ import annotations

import csv
import datetime
import html
import io
import itertools
import logging
import math
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from copy import copy
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import xlsxwriter
from scipy.spatial import cKDTree
from shapely.geometry.base import BaseGeometry
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet as XlsxSheet

from districting.errors import DistrictingError
from districting.layers import PlanLayers
from districting.outputs.cells import csv_row, looks_like_formula
from districting.outputs.folders import child, safe_file_name
from districting.outputs.numbers import as_number
from districting.outputs.processes import jobs_on_processes
from districting.outputs.raster import MapData, map_png
from districting.outputs.writer import XLSX_TIMESTAMP, pick_language, write_bytes_atomic
from districting.timing import log_stage

logger = logging.getLogger(__name__)
#: The units column of a follow-up plan (after online self-response): households still
#: to visit. Its sheets list only the units that have some.
FOLLOWUP_COLUMN = "households_remaining"

#: Column labels of the CD sheets, by language.
CD_SHEET_COLUMNS: dict[str, list[str]] = {
    "ru": [
        "№", "Адрес", "Код адресной единицы", "Квартиры (с–по)", "Квартир", "Жителей",
        "Домохозяйств к обходу", "Нагрузка, мин",
    ],
    "en": [
        "No.", "Address", "Unit ID", "Flat range", "Dwellings", "Residents",
        "Households to visit", "Workload, min",
    ],
}

#: Column labels of the instructor sheets, by language.
ID_SHEET_COLUMNS: dict[str, list[str]] = {
    "ru": [
        "Счётный участок", "Регистрационный участок", "Адресных единиц", "Квартир",
        "Жителей", "Нагрузка, мин", "Загрузка, %",
    ],
    "en": [
        "Counting district", "Registration district", "Address units", "Dwellings",
        "Residents", "Workload, min", "Utilization, %",
    ],
}

#: Label of the totals row, by language.
TOTAL_LABEL: dict[str, str] = {"ru": "ИТОГО", "en": "TOTAL"}

#: The other texts of the sheets, by language.
SHEET_TEXT: dict[str, dict[str, str]] = {
    "ru": {
        "cd_title": "Маршрутный лист счётного участка",
        "id_title": "Сводный лист инструкторского участка",
        "settlement": "Населённый пункт",
        "cd": "Счётный участок",
        "id": "Инструкторский участок",
        "rd": "Регистрационный участок",
        "point": "Стационарный участок",
        "period": "Период переписи",
        "interviewer": "Интервьюер (Ф. И. О.)",
        "instructor": "Инструктор-контролёр (Ф. И. О.)",
        "signature": "Подпись",
        "flats": "кв. {first}–{last}",
        "unvisited": "Не посещаются: нет домохозяйств (проверить на месте)",
        "units_total": "Адресных единиц: {n}",
        "cds_total": "Счётных участков: {n}",
        "route": "Длина маршрута, км",
        "naive": "В порядке реестра, км",
        "route_text": "Длина маршрута по улицам: {route} км "
                      "(при обходе в порядке реестра: {naive} км).",
        "legend": "Красные точки — адреса с номером по порядку обхода (зелёная — первый); "
                  "линия — порядок обхода (по прямой, идти по улицам); "
                  "белые точки — не посещаются.",
        "mark": "Отметка",
        "interviewer_col": "Интервьюер (Ф. И. О.)",
        "km": "км",
        "m": "м",
        "no_units": "В участке нет адресных единиц.",
    },
    "en": {
        "cd_title": "Counting district route sheet",
        "id_title": "Instructor district summary sheet",
        "settlement": "Settlement",
        "cd": "Counting district",
        "id": "Instructor district",
        "rd": "Registration district",
        "point": "Registration point",
        "period": "Census period",
        "interviewer": "Interviewer (name)",
        "instructor": "Instructor-controller (name)",
        "signature": "Signature",
        "flats": "flats {first}–{last}",
        "unvisited": "Not visited: no households (check on the ground)",
        "units_total": "Address units: {n}",
        "cds_total": "Counting districts: {n}",
        "route": "Route length, km",
        "naive": "In register order, km",
        "route_text": "Route length along the streets: {route} km "
                      "(walking the register order: {naive} km).",
        "legend": "Red dots: addresses, numbered in route order (green: the first); "
                  "line: the route order (straight, walk along the streets); "
                  "white dots: not visited.",
        "mark": "Done",
        "interviewer_col": "Interviewer (name)",
        "km": "km",
        "m": "m",
        "no_units": "The district has no address units.",
    },
}

_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
              "Dec")
_ENCODING = "utf-8-sig"
_WORKLOAD_DECIMALS = 1
_KM_DECIMALS = 2
#: Width of the inline SVG map, in its own units (the page shows it 100% wide).
_SVG_WIDTH = 700.0
_SVG_MAX_HEIGHT = 430.0
#: Districts with more located units than this get a taller map (up to a square).
_DENSE_UNITS = 40
#: Route numbers the small PNG map of a CD draws at most (more would not be readable
#: at that size).
_PNG_MAX_LABELS = 60
_SVG_MIN_HEIGHT = 220.0
_SVG_PAD = 18.0
_SHEET_TITLE_MAX = 31


# ---------------------------------------------------------------- the sheets' content


@dataclass(frozen=True)
class _UnitRow:
    """One address unit on a CD sheet."""

    number: int | None  # place in the route; None for a unit that is not visited
    address: str
    unit_id: str
    flats: str
    dwellings: int | str
    residents: int | str
    to_visit: int | str
    workload: float | str
    xy: tuple[float, float] | None

    def cells(self) -> list[Any]:
        return [
            "" if self.number is None else self.number, self.address, self.unit_id,
            self.flats, self.dwellings, self.residents, self.to_visit, self.workload,
        ]


@dataclass(frozen=True)
class _CdSheet:
    """Everything one CD sheet shows, in every format."""

    code: str
    id_code: str
    header: list[tuple[str, str]]
    signers: tuple[str, ...]
    visited: list[_UnitRow]
    unvisited: list[_UnitRow]
    total: list[Any]
    tour_km: float | str
    naive_km: float | str
    shape: BaseGeometry | None

    @cached_property
    def map_data(self) -> MapData | None:
        """What its maps (the workbook's PNG, the page's SVG) draw; made once."""
        return _map_data(self)


@dataclass(frozen=True)
class _IdSheet:
    """Everything one instructor sheet shows, in every format."""

    code: str
    header: list[tuple[str, str]]
    signers: tuple[str, ...]
    rows: list[list[Any]]
    total: list[Any]
    cd_codes: list[str] = field(default_factory=list)


def format_period(period: str, lang: str = "ru") -> str:
    """The census period ``"2021-10-01/2021-10-30"`` as people read it.

    Russian gives ``"01.10.2021 – 30.10.2021"``, English ``"1 Oct 2021 – 30 Oct 2021"``.
    A single date is shown alone; text that is not ISO dates is returned unchanged.
    """
    parts = [part.strip() for part in str(period).split("/")]
    try:
        dates = [datetime.date.fromisoformat(part) for part in parts]
    except ValueError:
        return str(period)
    if not 1 <= len(dates) <= 2:
        return str(period)
    if lang == "en":
        shown = [f"{d.day} {_MONTHS_EN[d.month - 1]} {d.year}" for d in dates]
    else:
        shown = [d.strftime("%d.%m.%Y") for d in dates]
    return " – ".join(shown)


def _cd_sheets(layers: PlanLayers, *, lang: str, period: str) -> list[_CdSheet]:
    """The content of every CD sheet, in CD-code order."""
    maker = _CdSheetMaker(layers, lang=lang, period=period)
    return [maker.sheet(cd) for cd in maker.records]


class _CdSheetMaker:
    """Builds CD sheets one at a time, so that a national plan's tens of thousands are
    never all in memory at once. Every check on the plan is done on creation, before
    any sheet is made."""

    def __init__(self, layers: PlanLayers, *, lang: str, period: str) -> None:
        self.lang = lang
        self.text = text = _texts(lang)
        units, cds = _metric_pair(layers.units, layers.counting_districts)
        cd_codes = _unique_codes(cds, "cd_code", "counting_districts")
        _require_parents(units, "cd_code", cd_codes, key="unit_id",
                         what="address unit(s) have no counting district")
        self.rows = _UnitRows(units, text)
        self.followup = FOLLOWUP_COLUMN in units.columns
        if "visit_order" in units.columns:
            self.order = pd.to_numeric(units["visit_order"], errors="coerce").fillna(0).to_numpy()
        else:
            logger.warning("sheets: the units layer has no visit_order; using the register order")
            self.order = np.arange(1, len(units) + 1)
        self.natural = [_natural_key(u) for u in units["unit_id"]]
        self.positions = units.groupby(units["cd_code"].astype(str), sort=False).indices
        self.workload = pd.to_numeric(units["workload"], errors="coerce").to_numpy(dtype=float)
        self.settlement_names = _settlement_names(layers)
        self.points = _point_names(layers)
        self.period_text = format_period(period, lang) if period else ""
        #: The CDs' records, in CD-code order.
        self.records: list[dict[str, Any]] = sorted(
            cds.to_dict("records"), key=lambda r: _natural_key(r["cd_code"]))

    def part(self, cds: list[dict[str, Any]]) -> _CdSheetMaker:
        """A maker of only these CDs' sheets, holding only their units' data: small to
        send to a worker process, which then makes the sheets itself."""
        empty = np.zeros(0, dtype=np.intp)
        own = [self.positions.get(str(cd["cd_code"]), empty) for cd in cds]
        members = np.concatenate(own) if own else empty
        part = copy(self)
        part.rows = self.rows.part(members)
        part.order = self.order[members]
        part.natural = [self.natural[i] for i in members.tolist()]
        part.workload = self.workload[members]
        starts = np.cumsum([0] + [len(p) for p in own])
        part.positions = {str(cd["cd_code"]): np.arange(starts[i], starts[i + 1])
                          for i, cd in enumerate(cds)}
        settlements = {_text(cd.get("settlement_id")) for cd in cds}
        part.settlement_names = {k: self.settlement_names[k] for k in settlements
                                 if k in self.settlement_names}
        points = {_text(cd.get("rd_code")) for cd in cds}
        part.points = {k: self.points[k] for k in points if k in self.points}
        part.records = cds
        return part

    def sheet(self, cd: dict[str, Any]) -> _CdSheet:
        """The sheet of one CD (a record of :attr:`records`)."""
        text, order, natural, lang = self.text, self.order, self.natural, self.lang
        code = str(cd["cd_code"])
        members = self.positions.get(code, np.zeros(0, dtype=np.intp)).tolist()
        if not members:
            logger.warning("sheets: counting district %s has no address units", code)
        visited_at = sorted((p for p in members if order[p] > 0),
                            key=lambda p: (order[p], natural[p]))
        # A follow-up plan lists only the addresses still to visit.
        unvisited_at = [] if self.followup else sorted((p for p in members if order[p] <= 0),
                                                       key=natural.__getitem__)
        expected = list(range(1, len(visited_at) + 1))
        if [int(order[p]) for p in visited_at] != expected:
            logger.warning("sheets: the visit order of counting district %s is not 1..%d; "
                           "numbering the units in that order", code, len(visited_at))
        visited = [self.rows.row(p, number=n) for n, p in enumerate(visited_at, start=1)]
        unvisited = [self.rows.row(p) for p in unvisited_at]
        everything = visited + unvisited
        workload = self.workload[members] if members else np.zeros(0)
        total = [
            TOTAL_LABEL[lang], text["units_total"].format(n=len(everything)), "", "",
            _int_sum(r.dwellings for r in everything), _int_sum(r.residents for r in everything),
            _int_sum(r.to_visit for r in everything),
            round(float(np.nansum(workload)), _WORKLOAD_DECIMALS),
        ]
        settlement = _text(cd.get("settlement_id"))
        rd_code = _text(cd.get("rd_code"))
        header = [
            (text["settlement"], self.settlement_names.get(settlement, settlement)),
            (text["cd"], code),
            (text["id"], _text(cd.get("id_code"))),
            (text["rd"], rd_code),
            (text["point"], self.points.get(rd_code, "")),
            (text["period"], self.period_text),
        ]
        geometry = cd.get("geometry")
        shape = geometry if isinstance(geometry, BaseGeometry) and not geometry.is_empty \
            else None
        return _CdSheet(
            code=code, id_code=_text(cd.get("id_code")), header=header,
            signers=(text["interviewer"], text["instructor"]),
            visited=visited, unvisited=unvisited, total=total,
            tour_km=_km(cd.get("tour_m")), naive_km=_km(cd.get("naive_m")), shape=shape,
        )


class _UnitRows:
    """The units' sheet rows, made on demand from the layer's columns."""

    def __init__(self, units: pd.DataFrame, text: dict[str, str]) -> None:
        if FOLLOWUP_COLUMN in units.columns:  # a follow-up plan: the households still to visit
            to_visit = pd.to_numeric(units[FOLLOWUP_COLUMN], errors="coerce").to_numpy(float)
        else:
            households = pd.to_numeric(units["households"], errors="coerce")
            if "online_share" in units.columns:
                share = pd.to_numeric(units["online_share"], errors="coerce").fillna(0.0)
            else:
                share = pd.Series(0.0, index=units.index)
            to_visit = (households * (1.0 - share)).to_numpy(dtype=float)
        self.to_visit = to_visit
        self.first = _optional_column(units, "dwelling_from")
        self.last = _optional_column(units, "dwelling_to")
        geometry = units.geometry
        self.xs = np.where(geometry.is_empty | geometry.isna(), np.nan, geometry.x)
        self.ys = np.where(geometry.is_empty | geometry.isna(), np.nan, geometry.y)
        self.columns = [units[name].to_numpy(dtype=object) for name in (
            "address", "unit_id", "dwellings", "residents", "workload")]
        self.flats = text["flats"]

    def part(self, members: np.ndarray) -> _UnitRows:
        """The rows of these units only, numbered from 0 in that order."""
        part = copy(self)
        part.to_visit, part.first, part.last = (self.to_visit[members], self.first[members],
                                                self.last[members])
        part.xs, part.ys = self.xs[members], self.ys[members]
        part.columns = [column[members] for column in self.columns]
        return part

    def row(self, i: int, *, number: int | None = None) -> _UnitRow:
        """Unit ``i``'s row (by position in the layer), numbered ``number`` on the route."""
        address, unit_id, dwellings, residents, workload = (c[i] for c in self.columns)
        flats = ""
        if self.first[i] > 0 and self.last[i] > 0:
            flats = self.flats.format(first=int(self.first[i]), last=int(self.last[i]))
        visit = self.to_visit[i]
        return _UnitRow(
            number=number, address=_text(address), unit_id=_text(unit_id), flats=flats,
            dwellings=_count(dwellings), residents=_count(residents),
            to_visit="" if math.isnan(visit) else round(visit),
            workload=_round_workload(workload),
            xy=None if math.isnan(self.xs[i]) else (float(self.xs[i]), float(self.ys[i])),
        )


def _require_parents(children: pd.DataFrame, field: str, codes: list[str], *, key: str,
                     what: str) -> None:
    """Refuse to write sheets when some rows name no existing parent district."""
    parent = children[field].astype("string")
    stray = children.loc[parent.isna() | ~parent.isin(codes)]
    if len(stray):
        sample = ", ".join(str(value) for value in stray[key].head(5))
        raise DistrictingError(f"{len(stray)} {what} of the plan (for example {sample}); "
                               "no sheets were written")


def _id_sheets(layers: PlanLayers, *, lang: str, period: str) -> list[_IdSheet]:
    """The content of every instructor sheet, in ID-code order."""
    text = _texts(lang)
    ids = layers.instructor_districts
    cds = pd.DataFrame(layers.counting_districts.drop(
        columns=layers.counting_districts.geometry.name))
    id_codes = _unique_codes(ids, "id_code", "instructor_districts")

    _require_parents(cds, "id_code", id_codes, key="cd_code",
                     what="counting district(s) have no instructor district")
    cds = cds.iloc[_natural_order(cds["cd_code"])]
    groups = {str(code): frame for code, frame in cds.groupby("id_code", sort=False)}
    id_settlement: dict[str, str] = {}
    if "settlement_id" in ids.columns:
        id_settlement = {str(code): _text(settlement) for code, settlement
                         in zip(ids["id_code"], ids["settlement_id"], strict=True)}
    settlement_names = _settlement_names(layers)
    period_text = format_period(period, lang) if period else ""

    sheets: list[_IdSheet] = []
    for code in sorted(id_codes, key=_natural_key):
        members = groups.get(code, cds.iloc[0:0])
        if len(members) == 0:
            logger.warning("sheets: instructor district %s has no counting districts", code)
        rows: list[list[Any]] = []
        totals = {"n_units": 0, "dwellings": 0, "residents": 0}
        total_workload = 0.0
        total_target = 0.0
        target_known = len(members) > 0
        for cd in members.to_dict("records"):
            counts = [_count(cd[name]) for name in ("n_units", "dwellings", "residents")]
            workload = _round_workload(cd["workload"])
            utilization = as_number(cd.get("utilization"))
            rows.append([
                _text(cd["cd_code"]), _text(cd["rd_code"]), *counts, workload,
                "" if utilization is None else round(utilization * 100, 1),
            ])
            for name, value in zip(("n_units", "dwellings", "residents"), counts, strict=True):
                totals[name] += value if isinstance(value, int) else 0
            raw_workload = as_number(cd["workload"])
            total_workload += raw_workload or 0.0
            if utilization is None or utilization <= 0 or raw_workload is None:
                target_known = False
            else:
                total_target += raw_workload / utilization
        overall: float | str = ""
        if target_known and total_target > 0:
            overall = round(total_workload / total_target * 100, 1)
        total = [
            TOTAL_LABEL[lang], text["cds_total"].format(n=len(rows)), totals["n_units"],
            totals["dwellings"], totals["residents"],
            round(total_workload, _WORKLOAD_DECIMALS), overall,
        ]
        settlement = id_settlement.get(code, "")
        header = [
            (text["settlement"], settlement_names.get(settlement, settlement)),
            (text["id"], code),
            (text["period"], period_text),
        ]
        sheets.append(_IdSheet(code=code, header=header, signers=(text["instructor"],),
                               rows=rows, total=total, cd_codes=[r[0] for r in rows]))
    return sheets


def _settlement_names(layers: PlanLayers) -> dict[str, str]:
    frame = layers.settlements
    if "settlement_name" not in frame.columns or len(frame) == 0:
        return {}
    return {
        _text(code): _text(name) or _text(code)
        for code, name in zip(frame["settlement_id"], frame["settlement_name"], strict=True)
    }


def _point_names(layers: PlanLayers) -> dict[str, str]:
    """The registration point's name of each RD (from the points, else the RDs)."""
    names: dict[str, str] = {}
    for frame in (layers.registration_points, layers.registration_districts):
        if "point_name" not in frame.columns or "rd_code" not in frame.columns:
            continue
        for code, name in zip(frame["rd_code"], frame["point_name"], strict=True):
            if _text(name):
                names.setdefault(_text(code), _text(name))
    return names


# ---------------------------------------------------------------- entry points


def write_field_sheets(
    layers: PlanLayers,
    out_dir: Path,
    *,
    lang: str = "ru",
    period: str,
    workers: int = 1,
) -> None:
    """Write every assignment sheet of a plan into ``out_dir`` (the plan's ``sheets/``).

    * ``<cd_code>.csv``: the CD sheet of each counting district;
    * ``instructors/<id_code>.csv``: the sheet of each instructor district;
    * ``xlsx/<id_code>.xlsx``: per instructor district, its sheet (titled with the
      ID code) and then one sheet per CD (titled with the CD code), each with a map;
    * ``html/<id_code>.html``: per instructor district, a self-contained page for A4
      printing: the instructor's page, then each CD on a page of its own.

    Parameters
    ----------
    layers
        The plan's layers.
    out_dir
        Output folder; created if needed.
    lang
        Language of the labels: ``"ru"`` or ``"en"``.
    period
        The census period, ``"YYYY-MM-DD/YYYY-MM-DD"`` (as in the config).
    workers
        Processes for the instructors' workbooks and pages (each is independent, so
        the files are the same with any number).

    Raises
    ------
    DistrictingError
        If ``lang`` is unknown, a code is duplicated or unusable as a file name, or a
        unit or CD has no parent district in the plan. Nothing is written then.
    """
    with writing_field_sheets(layers, out_dir, lang=lang, period=period, workers=workers):
        pass


@contextmanager
def writing_field_sheets(
    layers: PlanLayers,
    out_dir: Path,
    *,
    lang: str = "ru",
    period: str,
    workers: int = 1,
) -> Iterator[None]:
    """:func:`write_field_sheets`, beside the body of the ``with`` statement.

    The sheets are checked and prepared on entering. With ``workers`` > 1, their files
    are written on that many processes while the body runs, and waited for on leaving;
    otherwise they are written here after the body. Nothing is written if the body
    raises. The time the sheets took is logged (:mod:`districting.timing`): with
    workers, until they are all written; without, not counting the body.
    """
    started = time.monotonic()
    jobs = _instructor_jobs(layers, Path(out_dir), lang=lang, period=period)
    first = next(jobs, None)  # the sheets are checked and prepared here
    queued = itertools.chain([first] if first is not None else [], jobs)
    if workers > 1 and first is not None:
        # Each instructor's workbook and page is independent of the others. Each job
        # carries the data of its CDs' units, and the process makes their sheets. Once
        # the jobs are in their file, the data they were made from is let go (a national
        # plan's is over a gigabyte).
        with jobs_on_processes(queued, _write_instructor_files, processes=workers,
                               folder=Path(out_dir), what="field sheets"):
            yield
    else:
        prepared = time.monotonic() - started
        yield
        started = time.monotonic() - prepared
        for job in queued:
            _write_instructor_files(job)
    log_stage("field sheets", time.monotonic() - started)


def _instructor_jobs(layers: PlanLayers, out_dir: Path, *, lang: str,
                     period: str) -> Iterator[tuple[_IdSheet, _CdSheetMaker, Path, str]]:
    """Each instructor district's job: its sheet and the data its CDs' sheets are made
    from. Its sheets' CSVs and the folders are written at the first step."""
    maker = _CdSheetMaker(layers, lang=lang, period=period)
    id_sheets = _id_sheets(layers, lang=lang, period=period)
    _write_csvs(id_sheets, out_dir / "instructors", lang=lang, delimiter=",")
    (out_dir / "xlsx").mkdir(parents=True, exist_ok=True)
    (out_dir / "html").mkdir(parents=True, exist_ok=True)
    records: dict[str, list[dict[str, Any]]] = {}
    for cd in maker.records:
        records.setdefault(_text(cd.get("id_code")), []).append(cd)
    logger.debug("sheets: %d CD and %d instructor sheets for %s", len(maker.records),
                 len(id_sheets), out_dir)
    for id_sheet in id_sheets:
        yield id_sheet, maker.part(records.get(id_sheet.code, [])), out_dir, lang


def _write_instructor_files(job: tuple[_IdSheet, _CdSheetMaker, Path, str]) -> None:
    """One instructor district's CD sheets (CSV), workbook (``xlsx/``) and printable page
    (``html/``)."""
    id_sheet, maker, out_dir, lang = job
    members = [maker.sheet(cd) for cd in maker.records]
    _write_csvs(members, out_dir, lang=lang, delimiter=",")
    _write_workbook(id_sheet, members,
                    child(out_dir / "xlsx", id_sheet.code, what="ID code", suffix=".xlsx"),
                    lang=lang)
    page = _html_document(id_sheet, members, lang=lang)
    write_bytes_atomic(child(out_dir / "html", id_sheet.code, what="ID code", suffix=".html"),
                       page.encode("utf-8"))


def write_cd_sheets(
    layers: PlanLayers,
    directory: Path | str,
    *,
    lang: str = "ru",
    delimiter: str = ",",
    period: str = "",
) -> list[Path]:
    """Write one CSV assignment sheet per counting district.

    Each sheet ``directory/<cd_code>.csv`` has a header block (settlement, codes,
    registration point, period, blank name and signature fields), a blank line,
    the column labels, the units in route order (``visit_order``), the units that
    are not visited under their own title, a totals row and the route length.
    Workload is in minutes, rounded to 0.1.

    Parameters
    ----------
    layers
        The plan's layers.
    directory
        Folder for the sheets; created if needed.
    lang
        Language of the labels: ``"ru"`` or ``"en"``.
    delimiter
        Field separator. A Russian-locale Excel expects ``";"`` when a file is
        double-clicked; ``","`` is the portable default.
    period
        The census period (``"YYYY-MM-DD/YYYY-MM-DD"``); empty leaves it blank.

    Returns
    -------
    list[pathlib.Path]
        The sheets written, in CD-code order.

    Raises
    ------
    DistrictingError
        If ``lang`` is unknown, a CD code is duplicated or unusable as a file
        name, or some unit has no CD of the plan.
    """
    sheets = _cd_sheets(layers, lang=lang, period=period)
    return _write_csvs(sheets, Path(directory), lang=lang, delimiter=delimiter)


def write_instructor_sheets(
    layers: PlanLayers,
    directory: Path | str,
    *,
    lang: str = "ru",
    delimiter: str = ",",
    period: str = "",
) -> list[Path]:
    """Write one CSV sheet per instructor district, listing its counting districts.

    Each sheet ``directory/instructors/<id_code>.csv`` has a header block, then one
    row per CD (in code order) and a totals row. Utilization is the CD's workload as
    a percentage of its target; the total is the ID's overall percentage (total
    workload over total target), left blank when a CD has no utilization.

    Parameters
    ----------
    layers
        The plan's layers.
    directory
        Output folder; the sheets go to its ``instructors`` subfolder.
    lang
        Language of the labels: ``"ru"`` or ``"en"``.
    delimiter
        Field separator (see :func:`write_cd_sheets`).
    period
        The census period; empty leaves it blank.

    Returns
    -------
    list[pathlib.Path]
        The sheets written, in ID-code order.

    Raises
    ------
    DistrictingError
        If ``lang`` is unknown, an ID code is duplicated or unusable as a file
        name, or some CD has no instructor district of the plan.
    """
    sheets = _id_sheets(layers, lang=lang, period=period)
    return _write_csvs(sheets, Path(directory) / "instructors", lang=lang,
                          delimiter=delimiter)


# ---------------------------------------------------------------- CSV


def _header_rows(title: str, sheet: _CdSheet | _IdSheet, text: dict[str, str]) -> list[list[Any]]:
    rows: list[list[Any]] = [[title]]
    rows += [[label, value] for label, value in sheet.header]
    rows += [[label, "", text["signature"], ""] for label in sheet.signers]
    rows.append([])
    return rows


def _cd_table(sheet: _CdSheet, lang: str) -> list[list[Any]]:
    """The CD sheet as rows of cells: header block, table, totals and route length."""
    text = SHEET_TEXT[lang]
    rows = _header_rows(text["cd_title"], sheet, text)
    rows.append(list(CD_SHEET_COLUMNS[lang]))
    rows += [unit.cells() for unit in sheet.visited]
    if sheet.unvisited:
        rows.append([text["unvisited"]])
        rows += [unit.cells() for unit in sheet.unvisited]
    rows.append(list(sheet.total))
    rows.append([text["route"], sheet.tour_km, text["naive"], sheet.naive_km])
    return rows


def _id_table(sheet: _IdSheet, lang: str) -> list[list[Any]]:
    text = SHEET_TEXT[lang]
    rows = _header_rows(text["id_title"], sheet, text)
    rows.append(list(ID_SHEET_COLUMNS[lang]))
    rows += sheet.rows
    rows.append(list(sheet.total))
    return rows


def _write_csvs(sheets: Sequence[_CdSheet] | Sequence[_IdSheet], folder: Path, *, lang: str,
                delimiter: str) -> list[Path]:
    """One CSV per sheet, named by its code."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for sheet in sheets:
        path = child(folder, sheet.code, what="district code", suffix=".csv")
        table = _cd_table(sheet, lang) if isinstance(sheet, _CdSheet) else _id_table(sheet, lang)
        _write_csv(path, table, delimiter=delimiter)
        written.append(path)
    logger.debug("sheets: wrote %d sheets to %s", len(written), folder)
    return written


# ---------------------------------------------------------------- XLSX

_CD_WIDTHS = (6, 36, 16, 14, 10, 10, 13, 12)
_ID_WIDTHS = (19, 16, 12, 10, 10, 13, 12)
#: Excel's paper size code for A4.
_A4 = 9


class _Formats:
    """The cell formats of one workbook, each made the first time it is asked for."""

    def __init__(self, book: xlsxwriter.Workbook) -> None:
        self.book = book
        self.made: dict[tuple[tuple[str, Any], ...], Format] = {}
        #: The properties each format was made with, by its id: for :meth:`text`.
        self.properties: dict[int, tuple[tuple[str, Any], ...]] = {}
        #: Table cells' formats by (bold, one decimal, address column): looked up per cell.
        self.cells: dict[tuple[bool, bool, bool], Format] = {}

    def __call__(self, **properties: Any) -> Format:
        key = tuple(sorted(properties.items()))
        if key not in self.made:
            self.made[key] = self.book.add_format(properties)
            self.properties[id(self.made[key])] = key
        return self.made[key]

    def text(self, style: Format, text: str) -> Format:
        """``style`` for a cell holding ``text``; for a text that looks like a formula,
        its variant with Excel's quote prefix (the cell stays text when it is edited)."""
        if not looks_like_formula(text):
            return style
        return self(**dict(self.properties[id(style)]), quote_prefix=True)

    def cell(self, column: int, *, bold: bool = False, decimals: Sequence[int] = ()) -> Format:
        """A table cell (``column`` from 0): bordered, one decimal place in ``decimals``,
        the address column (1) wrapped."""
        key = (bold, column in decimals, column == 1)
        if key not in self.cells:
            properties: dict[str, Any] = {"border": 1}
            if key[1]:
                properties["num_format"] = "0.0"
            if bold:
                properties["bold"] = True
            if key[2]:
                properties.update(text_wrap=True, valign="top")
            self.cells[key] = self(**properties)
        return self.cells[key]


def _write_workbook(id_sheet: _IdSheet, cd_sheets: list[_CdSheet], path: Path, *,
                    lang: str) -> None:
    """One workbook: the instructor's sheet, then a sheet (with a map) per CD.

    XlsxWriter stamps every zip entry with one fixed date, and the document's creation
    date is :data:`XLSX_TIMESTAMP`, so the same sheets give the same bytes.
    """
    text = SHEET_TEXT[lang]
    buffer = io.BytesIO()
    # Text is written as text: never read as a formula or a link (addresses, names).
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False,
                                        "strings_to_urls": False})
    book.set_properties({"created": XLSX_TIMESTAMP})
    formats = _Formats(book)
    used: set[str] = set()
    first = book.add_worksheet(_sheet_title(id_sheet.code, used))
    cd_titles = {sheet.code: _sheet_title(sheet.code, used) for sheet in cd_sheets}

    row = _xlsx_header(first, text["id_title"], id_sheet, text, _ID_WIDTHS, formats)
    _xlsx_table_head(first, row, ID_SHEET_COLUMNS[lang], formats)
    first.repeat_rows(row)
    link = formats(border=1, font_color="#0563C1", underline=1)
    for values in id_sheet.rows:
        row += 1
        _xlsx_row(first, row, values, formats, decimals=(5, 6))
        title = cd_titles.get(str(values[0]))
        if title is not None:
            code = str(values[0])
            quoted = title.replace("'", "''")  # a quote in a sheet name is doubled
            first.write_url(row, 0, f"internal:'{quoted}'!A1", formats.text(link, code),
                            string=code)
    _xlsx_row(first, row + 1, id_sheet.total, formats, bold=True, decimals=(5, 6))
    _xlsx_page_setup(first, landscape=False)

    for sheet in cd_sheets:
        _xlsx_cd_sheet(book.add_worksheet(cd_titles[sheet.code]), sheet, lang, formats)
    book.close()
    write_bytes_atomic(path, buffer.getvalue())


def _xlsx_cd_sheet(ws: XlsxSheet, sheet: _CdSheet, lang: str, formats: _Formats) -> None:
    text = SHEET_TEXT[lang]
    last = len(_CD_WIDTHS) - 1
    row = _xlsx_header(ws, text["cd_title"], sheet, text, _CD_WIDTHS, formats)
    _xlsx_table_head(ws, row, CD_SHEET_COLUMNS[lang], formats)
    ws.repeat_rows(row)
    for unit in sheet.visited:
        row += 1
        _xlsx_row(ws, row, unit.cells(), formats, decimals=(7,))
    if sheet.unvisited:
        row += 1
        ws.merge_range(row, 0, row, last, text["unvisited"], formats(bold=True, italic=True))
        for unit in sheet.unvisited:
            row += 1
            _xlsx_row(ws, row, unit.cells(), formats, decimals=(7,))
    row += 1
    _xlsx_row(ws, row, sheet.total, formats, bold=True, decimals=(7,))
    row += 2
    km = formats(num_format="0.00")
    ws.merge_range(row, 0, row, 1, text["route"], formats(bold=True))
    _write_value(ws, row, 2, sheet.tour_km or None, km, formats)
    ws.merge_range(row, 3, row, 5, text["naive"], formats())
    _write_value(ws, row, 6, sheet.naive_km or None, km, formats)
    png = _map_png(sheet, text)
    if png is not None:
        ws.insert_image(0, len(_CD_WIDTHS) + 1, "map.png", {"image_data": io.BytesIO(png)})
    _xlsx_page_setup(ws, landscape=True)


def _xlsx_header(ws: XlsxSheet, title: str, sheet: _CdSheet | _IdSheet,
                 text: dict[str, str], widths: Sequence[int], formats: _Formats) -> int:
    """Title, label–value fields and blank name/signature fields; returns the table's row
    (rows and columns count from 0)."""
    last = len(widths) - 1
    for column, width in enumerate(widths):
        ws.set_column(column, column, width)
    ws.merge_range(0, 0, 0, last, title, formats(bold=True, font_size=14))
    bold = formats(bold=True)
    row = 1
    for label, value in sheet.header:
        ws.merge_range(row, 0, row, 1, label, bold)
        # The value (a settlement's or a point's name, a code) is written as text.
        ws.merge_range(row, 2, row, last, "", formats())
        if value != "":
            _write_value(ws, row, 2, value, formats(), formats)
        row += 1
    line = formats(bottom=1)
    for label in sheet.signers:
        row += 1
        ws.set_row(row, 24)
        ws.merge_range(row, 0, row, 1, label, bold)
        ws.merge_range(row, 2, row, last - 3, "", line)
        ws.write_string(row, last - 2, text["signature"], formats(align="right"))
        ws.merge_range(row, last - 1, row, last, "", line)
    return row + 2


def _xlsx_table_head(ws: XlsxSheet, row: int, labels: Sequence[str], formats: _Formats) -> None:
    head = formats(bold=True, bg_color="#E6E6E6", pattern=1, border=1, text_wrap=True,
                   valign="vcenter", align="center")
    for column, label in enumerate(labels):
        ws.write_string(row, column, label, head)
    ws.set_row(row, 30)


def _xlsx_row(ws: XlsxSheet, row: int, values: Sequence[Any], formats: _Formats, *,
              bold: bool = False, decimals: Sequence[int] = ()) -> None:
    """One table row with borders; columns (from 0) in ``decimals`` show one decimal."""
    for column, value in enumerate(values):
        _write_value(ws, row, column, None if value == "" else value,
                     formats.cell(column, bold=bold, decimals=decimals), formats)


def _write_value(ws: XlsxSheet, row: int, column: int, value: Any, style: Format,
                 formats: _Formats) -> None:
    """A number as a number, anything else as text (a string cell, never a formula: see
    :mod:`districting.outputs.cells`); nothing, or a number that is not one (NaN), as a
    blank cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        ws.write_blank(row, column, None, style)
    elif isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        ws.write_number(row, column, value, style)
    else:
        text = str(value)
        ws.write_string(row, column, text, formats.text(style, text))


def _xlsx_page_setup(ws: XlsxSheet, *, landscape: bool) -> None:
    ws.set_paper(_A4)
    if landscape:
        ws.set_landscape()
    else:
        ws.set_portrait()
    ws.fit_to_pages(1, 0)


def _sheet_title(code: str, used: set[str]) -> str:
    """The code as a worksheet title: at most 31 characters, no ``[]:*?/\\``, unique."""
    base = re.sub(r"[\[\]:*?/\\]", "_", code).strip("'") or "_"
    title = base[:_SHEET_TITLE_MAX]
    number = 1
    while title.casefold() in used:
        number += 1
        suffix = f"~{number}"
        title = base[:_SHEET_TITLE_MAX - len(suffix)] + suffix
    used.add(title.casefold())
    return title


# ---------------------------------------------------------------- maps


def _map_data(sheet: _CdSheet) -> MapData | None:
    rings: list[np.ndarray] = []
    if sheet.shape is not None:
        oriented = shapely.orient_polygons(sheet.shape)
        for polygon in shapely.get_parts(oriented):
            if not isinstance(polygon, shapely.Polygon):
                continue
            rings.append(np.asarray(polygon.exterior.coords)[:, :2])
            rings += [np.asarray(hole.coords)[:, :2] for hole in polygon.interiors]
    route = np.array([u.xy for u in sheet.visited if u.xy is not None], dtype=float)
    route = route.reshape(-1, 2)
    idle = np.array([u.xy for u in sheet.unvisited if u.xy is not None], dtype=float)
    idle = idle.reshape(-1, 2)
    everything = [*rings, route, idle]
    points = np.concatenate(everything) if everything else np.zeros((0, 2))
    if len(points) == 0:
        return None
    minx, miny = points.min(axis=0)
    maxx, maxy = points.max(axis=0)
    grouped: dict[tuple[float, float], list[int]] = {}
    for unit in sheet.visited:
        if unit.xy is not None and unit.number is not None:
            key = (round(unit.xy[0], 1), round(unit.xy[1], 1))
            grouped.setdefault(key, []).append(unit.number)
    labels = [(x, y, _number_label(numbers)) for (x, y), numbers in grouped.items()]
    first = (float(route[0, 0]), float(route[0, 1])) if len(route) else None
    spacing = None
    if len(grouped) > 1:
        places = np.array(list(grouped), dtype=float)
        distances, _ = cKDTree(places).query(places, k=2)
        spacing = float(np.median(distances[:, 1]))
    return MapData(rings, route, labels, first, idle,
                    (float(minx), float(miny), float(maxx), float(maxy)), spacing)


def _png_labels(labels: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """The labels the small PNG map draws: all of them, or on a dense CD (more than
    :data:`_PNG_MAX_LABELS` places) the first, the last and every k-th in route order,
    which keep the route readable (the sheet's table and the HTML map number every stop).
    """
    if len(labels) <= _PNG_MAX_LABELS:
        return labels
    step = math.ceil(len(labels) / _PNG_MAX_LABELS)
    last = len(labels) - 1
    return [label for i, label in enumerate(labels) if i % step == 0 or i == last]


def _number_label(numbers: list[int]) -> str:
    """``[3, 4, 5]`` as ``"3–5"``, ``[3, 7]`` as ``"3, 7"``: the visits at one place."""
    numbers = sorted(numbers)
    if len(numbers) > 2 and numbers[-1] - numbers[0] == len(numbers) - 1:
        return f"{numbers[0]}–{numbers[-1]}"
    return ", ".join(str(n) for n in numbers)


def _scale_bar(extent_m: float) -> float:
    """A round length (1, 2 or 5 × 10^k metres) near a fifth of the map's width."""
    target = max(extent_m / 5.0, 1.0)
    power = 10.0 ** math.floor(math.log10(target))
    for step in (5.0, 2.0, 1.0):
        if step * power <= target:
            return step * power
    return power


def _length_label(metres: float, text: dict[str, str]) -> str:
    if metres >= 1000:
        return f"{metres / 1000:g} {text['km']}"
    return f"{metres:g} {text['m']}"


def _svg_map(sheet: _CdSheet, text: dict[str, str]) -> str:
    """The CD as an inline SVG: territory, route, numbered dots and a scale bar."""
    data = sheet.map_data
    if data is None:
        return ""
    minx, miny, maxx, maxy = data.bounds
    dx, dy = max(maxx - minx, 1.0), max(maxy - miny, 1.0)
    width = _SVG_WIDTH
    inner = width - 2 * _SVG_PAD
    scale = inner / dx
    tallest = _SVG_WIDTH if len(data.route) + len(data.idle) > _DENSE_UNITS else _SVG_MAX_HEIGHT
    height = min(max(dy * scale + 2 * _SVG_PAD, _SVG_MIN_HEIGHT), tallest)
    scale = min(scale, (height - 2 * _SVG_PAD - 14) / dy)
    ox = (width - dx * scale) / 2 - minx * scale
    oy = (height - 14 - dy * scale) / 2 + maxy * scale

    # dense districts get smaller dots and labels, so that the numbers stay apart
    gap = math.inf if data.spacing is None else data.spacing * scale
    font = min(max(0.5 * gap, 7.5), 11.0)
    radius = min(max(0.16 * gap, 2.4), 3.6)

    def x_of(x: float) -> str:
        return f"{ox + x * scale:.1f}"

    def y_of(y: float) -> str:
        return f"{oy - y * scale:.1f}"

    parts = [
        f'<svg viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="{html.escape(sheet.code)}">',
        f'<rect x="0" y="0" width="{width:.0f}" height="{height:.0f}" fill="#fff"/>',
    ]
    if data.rings:
        path = " ".join(
            "M" + " L".join(f"{x_of(x)} {y_of(y)}" for x, y in ring) + " Z"
            for ring in data.rings
        )
        parts.append(f'<path d="{path}" fill="#fff4d6" stroke="#8a6d1f" stroke-width="1.6" '
                     'fill-rule="evenodd"/>')
    if len(data.route) > 1:
        points = " ".join(f"{x_of(x)},{y_of(y)}" for x, y in data.route)
        parts.append(f'<polyline points="{points}" fill="none" stroke="#1f4e9a" '
                     'stroke-width="1.4" stroke-linejoin="round" stroke-opacity="0.8"/>')
    for x, y in data.idle:
        parts.append(f'<circle cx="{x_of(x)}" cy="{y_of(y)}" r="{radius * 0.9:.1f}" '
                     'fill="#fff" stroke="#555" stroke-width="1"/>')
    for x, y in data.route:
        parts.append(f'<circle cx="{x_of(x)}" cy="{y_of(y)}" r="{radius:.1f}" fill="#c62828"/>')
    if data.first is not None:
        parts.append(f'<circle cx="{x_of(data.first[0])}" cy="{y_of(data.first[1])}" '
                     f'r="{radius * 1.4:.1f}" fill="#2e7d32" stroke="#fff" stroke-width="1"/>')
    parts.append(f'<g font-size="{font:.1f}" font-weight="bold" fill="#000" stroke="#fff" '
                 'stroke-width="3" paint-order="stroke" stroke-linejoin="round">')
    shift = radius + 1
    for x, y, label in data.labels:
        parts.append(f'<text x="{float(x_of(x)) + shift:.1f}" y="{float(y_of(y)) - shift:.1f}">'
                     f'{html.escape(label)}</text>')
    parts.append("</g>")
    bar = _scale_bar(dx)
    bar_px = bar * scale
    y0 = height - 8
    parts.append(
        f'<g stroke="#000" stroke-width="1.5"><line x1="{_SVG_PAD:.1f}" y1="{y0:.1f}" '
        f'x2="{_SVG_PAD + bar_px:.1f}" y2="{y0:.1f}"/>'
        f'<line x1="{_SVG_PAD:.1f}" y1="{y0 - 4:.1f}" x2="{_SVG_PAD:.1f}" y2="{y0:.1f}"/>'
        f'<line x1="{_SVG_PAD + bar_px:.1f}" y1="{y0 - 4:.1f}" x2="{_SVG_PAD + bar_px:.1f}" '
        f'y2="{y0:.1f}"/></g>'
        f'<text x="{_SVG_PAD + bar_px + 6:.1f}" y="{y0 + 3:.1f}" font-size="10">'
        f'{html.escape(_length_label(bar, text))}</text>'
    )
    parts.append(f'<text x="{width - _SVG_PAD:.1f}" y="{_SVG_PAD:.1f}" font-size="12" '
                 'text-anchor="end" font-weight="bold">N ↑</text>')
    parts.append("</svg>")
    return "".join(parts)


def _map_png(sheet: _CdSheet, text: dict[str, str]) -> bytes | None:
    """The CD's map as PNG bytes (see :mod:`districting.outputs.raster`)."""
    data = sheet.map_data
    if data is None:
        return None
    data = replace(data, labels=_png_labels(data.labels))
    bar = _scale_bar(max(data.bounds[2] - data.bounds[0], 1.0))
    return map_png(data, bar_m=bar, bar_label=_length_label(bar, text))


# ---------------------------------------------------------------- HTML

_CSS = """
@page { size: A4; margin: 12mm }
* { box-sizing: border-box }
html { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 9.5pt;
       color: #000; -webkit-print-color-adjust: exact; print-color-adjust: exact }
body { margin: 0 }
section.cd { page-break-before: always; break-before: page }
h1 { font-size: 13pt; margin: 0 0 2.5mm }
h1 .code { white-space: nowrap }
table { border-collapse: collapse; width: 100% }
table.fields td { padding: 0.7mm 2mm 0.7mm 0; vertical-align: top }
table.fields td.label { font-weight: bold; white-space: nowrap; width: 1% }
table.fields td.value { white-space: nowrap }
table.fields td.value.wrap { white-space: normal }
table.sign { margin: 2mm 0 1mm; table-layout: fixed }
table.sign td { padding: 0 2mm 0 0; vertical-align: bottom; height: 9mm }
table.sign td.label { font-weight: bold; white-space: nowrap }
table.sign td.blank { border-bottom: 0.6pt solid #000 }
table.sign col.who { width: 64mm }
table.sign col.name { width: auto }
table.sign col.sig { width: 25mm }
table.sign td.label + td.blank + td.label { padding-left: 3mm }
table.sign col.sign { width: 38mm }
table.grid { margin-top: 2mm }
table.grid th, table.grid td { border: 0.5pt solid #000; padding: 0.8mm 1.2mm }
table.grid th { background: #e6e6e6; font-size: 8pt; font-weight: bold; vertical-align: bottom }
table.grid th span.w { white-space: nowrap }
table.grid td.n { text-align: right; white-space: nowrap }
table.grid td.no { text-align: right; font-weight: bold; width: 7mm }
table.grid td.id, table.grid td.code { white-space: nowrap }
table.grid td.id { font-size: 8pt }
table.grid td.mark { width: 14mm }
table.grid th.who { width: 44mm }
section.id table.grid td { height: 8mm }
table.grid tr { page-break-inside: avoid; break-inside: avoid }
table.grid thead { display: table-header-group }
table.grid tr.section th { text-align: left; background: #f3f3f3; font-style: italic;
                           font-size: 9pt }
table.grid tbody.total td { font-weight: bold; border-top: 1.4pt solid #000 }
figure.map { margin: 2mm 0 1mm; break-inside: avoid }
figure.map svg { display: block; width: 100%; height: auto; border: 0.5pt solid #999 }
figure.map svg text { font-family: "DejaVu Sans", Arial, sans-serif }
figcaption { font-size: 7.5pt; color: #333; margin-top: 1mm }
p.route { margin: 2mm 0 0 }
a { color: inherit; text-decoration: none }
@media screen {
  html { background: #8c8c8c }
  section.page { width: 210mm; min-height: 297mm; margin: 6mm auto; padding: 12mm;
                 background: #fff; box-shadow: 0 1px 4px rgba(0, 0, 0, 0.4) }
}
""".strip()


def _html_document(id_sheet: _IdSheet, cd_sheets: list[_CdSheet], *, lang: str) -> str:
    text = SHEET_TEXT[lang]
    title = f"{text['id_title']} {id_sheet.code}"
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{lang}"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>\n{_CSS}\n</style></head><body>",
        _html_id_page(id_sheet, lang),
        *(_html_cd_page(sheet, lang) for sheet in cd_sheets),
        "</body></html>",
        "",
    ]
    return "\n".join(parts)


def _html_header(title: str, code: str, sheet: _CdSheet | _IdSheet, text: dict[str, str],
                 *, columns: int) -> str:
    esc = html.escape
    cells = [
        f'<td class="label">{esc(label)}:</td>'
        f'<td class="value{" wrap" if len(value) > 24 else ""}">{esc(value)}</td>'
        for label, value in sheet.header
    ]
    rows = ["".join(cells[i:i + columns]) for i in range(0, len(cells), columns)]
    fields = "".join(f"<tr>{row}</tr>" for row in rows)
    signers = "".join(
        f'<tr><td class="label">{esc(label)}:</td><td class="blank"></td>'
        f'<td class="label">{esc(text["signature"])}:</td><td class="blank"></td></tr>'
        for label in sheet.signers
    )
    return (f'<h1>{esc(title)} <span class="code">{esc(code)}</span></h1>'
            f'<table class="fields">{fields}</table>'
            '<table class="sign"><colgroup><col class="who"><col class="name">'
            f'<col class="sig"><col class="sign"></colgroup>{signers}</table>')


def _html_id_page(sheet: _IdSheet, lang: str) -> str:
    text = SHEET_TEXT[lang]
    esc = html.escape
    head = "".join(f"<th>{_html_label(label)}</th>" for label in ID_SHEET_COLUMNS[lang])
    head += f'<th class="who">{_html_label(text["interviewer_col"])}</th>'
    body = []
    for values in sheet.rows:
        code = str(values[0])
        cells = [f'<td class="code"><a href="#cd-{esc(code)}">{esc(code)}</a></td>',
                 f'<td class="code">{esc(str(values[1]))}</td>']
        cells += [f'<td class="n">{_html_number(v, lang)}</td>' for v in values[2:]]
        cells.append('<td class="blank"></td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    total = sheet.total
    total_cells = [f"<td>{esc(str(total[0]))}</td>", f"<td>{esc(str(total[1]))}</td>"]
    total_cells += [f'<td class="n">{_html_number(v, lang)}</td>' for v in total[2:]]
    total_cells.append("<td></td>")
    return (
        f'<section class="page id" id="id-{esc(sheet.code)}">'
        + _html_header(text["id_title"], sheet.code, sheet, text, columns=2)
        + f'<table class="grid"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody>"
        f'<tbody class="total"><tr>{"".join(total_cells)}</tr></tbody></table>'
        "</section>"
    )


def _html_unit_row(unit: _UnitRow, lang: str) -> str:
    esc = html.escape
    number = "" if unit.number is None else str(unit.number)
    numbers = (unit.dwellings, unit.residents, unit.to_visit, unit.workload)
    return (
        f'<tr><td class="no">{number}</td><td>{esc(unit.address)}</td>'
        f'<td class="id">{esc(unit.unit_id)}</td><td class="n">{esc(unit.flats)}</td>'
        + "".join(f'<td class="n">{_html_number(v, lang)}</td>' for v in numbers)
        + '<td class="mark"></td></tr>'
    )


def _html_cd_page(sheet: _CdSheet, lang: str) -> str:
    text = SHEET_TEXT[lang]
    esc = html.escape
    labels = [*CD_SHEET_COLUMNS[lang], text["mark"]]
    head = "".join(f"<th>{_html_label(label)}</th>" for label in labels)
    visited = "".join(_html_unit_row(unit, lang) for unit in sheet.visited)
    unvisited = ""
    if sheet.unvisited:
        unvisited = (
            f'<tbody class="unvisited"><tr class="section"><th colspan="{len(labels)}">'
            f'{esc(text["unvisited"])}</th></tr>'
            + "".join(_html_unit_row(unit, lang) for unit in sheet.unvisited)
            + "</tbody>"
        )
    total = sheet.total
    total_row = (
        f"<tr><td></td><td>{esc(str(total[0]))}. {esc(str(total[1]))}</td><td></td><td></td>"
        + "".join(f'<td class="n">{_html_number(v, lang)}</td>' for v in total[4:])
        + "<td></td></tr>"
    )
    svg = _svg_map(sheet, text)
    figure = (f'<figure class="map">{svg}<figcaption>{esc(text["legend"])}</figcaption></figure>'
              if svg else "")
    route = ""
    if sheet.tour_km != "":
        route = text["route_text"].format(
            route=_html_number(sheet.tour_km, lang, decimals=_KM_DECIMALS),
            naive=_html_number(sheet.naive_km, lang, decimals=_KM_DECIMALS),
        )
    empty = "" if sheet.visited or sheet.unvisited else f"<p>{esc(text['no_units'])}</p>"
    return (
        f'<section class="page cd" id="cd-{esc(sheet.code)}">'
        + _html_header(text["cd_title"], sheet.code, sheet, text, columns=2)
        + figure + empty
        + f'<table class="grid"><thead><tr>{head}</tr></thead>'
        f'<tbody class="visited">{visited}</tbody>{unvisited}'
        f'<tbody class="total">{total_row}</tbody></table>'
        + (f'<p class="route">{esc(route)}</p>' if route else "")
        + "</section>"
    )


def _html_label(label: str) -> str:
    """A column label that wraps between words only (not after "–" inside "(с–по)")."""
    return " ".join(f'<span class="w">{html.escape(word)}</span>' for word in label.split())


def _html_number(value: Any, lang: str, *, decimals: int | None = None) -> str:
    """A number for print: ``12 345,6`` in Russian, ``12,345.6`` in English."""
    if isinstance(value, str) or value is None:
        return html.escape(str(value or ""))
    if decimals is not None:
        shown = f"{float(value):.{decimals}f}"
    elif isinstance(value, float):
        shown = f"{value:.{_WORKLOAD_DECIMALS}f}"
    else:
        shown = str(value)
    whole, _, fraction = shown.partition(".")
    sign = "-" if whole.startswith("-") else ""
    digits = whole.lstrip("-")
    if len(digits) > 4:
        groups: list[str] = []
        while digits:
            groups.insert(0, digits[-3:])
            digits = digits[:-3]
        digits = ("\u00a0" if lang == "ru" else ",").join(groups)
    point = "," if lang == "ru" else "."
    return sign + digits + (point + fraction if fraction else "")


# ---------------------------------------------------------------- helpers


def _texts(lang: str) -> dict[str, str]:
    return pick_language(SHEET_TEXT, lang, what="sheet")


def _metric_pair(
    units: gpd.GeoDataFrame, cds: gpd.GeoDataFrame,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Units and CDs in one projected CRS (metres), for the maps."""
    crs = units.crs
    if crs is not None and not crs.is_projected and len(units):
        logger.info("sheets: the units are in geographic coordinates; using their UTM zone")
        crs = units.estimate_utm_crs()
        units = units.to_crs(crs)
    if crs is not None and cds.crs is not None and cds.crs != crs:
        cds = cds.to_crs(crs)
    return units, cds


def _optional_column(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.zeros(len(frame))
    return pd.to_numeric(frame[column], errors="coerce").fillna(0).to_numpy(dtype=float)


def _km(value: Any) -> float | str:
    metres = as_number(value)
    return "" if metres is None else round(metres / 1000, _KM_DECIMALS)


def _int_sum(values: Iterable[int | str]) -> int:
    return sum(v for v in values if isinstance(v, int))


def _unique_codes(frame: pd.DataFrame, column: str, layer: str) -> list[str]:
    codes = frame[column]
    if codes.isna().any():
        raise DistrictingError(f"the layer '{layer}' has a row without {column}")
    as_text = [str(c) for c in codes]
    repeated = pd.Series(as_text, dtype="object")
    duplicated = sorted(set(repeated[repeated.duplicated()]))
    if duplicated:
        raise DistrictingError(
            f"the layer '{layer}' repeats {column} {', '.join(duplicated[:5])}"
        )
    for code in as_text:
        safe_file_name(code, what="district code")
    return as_text


def _natural_key(value: Any) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders embedded numbers by value ("u2" before "u10")."""
    parts = re.split(r"(\d+)", str(value))
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts if p != "")


def _natural_order(values: pd.Series) -> list[int]:
    """Positions that sort ``values`` by :func:`_natural_key` (stable)."""
    keys = [_natural_key(v) for v in values]
    return sorted(range(len(keys)), key=keys.__getitem__)


def _count(value: Any) -> int | str:
    """A whole count, or "" when missing."""
    number = as_number(value)
    return "" if number is None else round(number)


def _round_workload(value: Any) -> float | str:
    number = as_number(value)
    return "" if number is None else round(number, _WORKLOAD_DECIMALS)


def _text(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _write_csv(path: Path, rows: list[list[Any]], *, delimiter: str) -> None:
    """Write a CSV table atomically, UTF-8 with a byte-order mark and CRLF; a text cell
    that a spreadsheet would read as a formula gets a ``'`` in front
    (:mod:`districting.outputs.cells`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerows(csv_row(row) for row in rows)  # text from data never a formula
    write_bytes_atomic(path, buffer.getvalue().encode(_ENCODING))
