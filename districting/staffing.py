"""The staffing plan: interviewers, instructor-controllers and points per settlement.

:func:`staffing_table` gives one row per settlement and a ``TOTAL`` row (written as
``staffing.csv``), :func:`staffing_summary` the totals for ``summary.json``, and
:func:`write_staffing_xlsx` the same table as a formatted workbook (``staffing.xlsx``)
with a second sheet listing the norms it was computed with.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from districting.config import Config
from districting.errors import DistrictingError
from districting.layers import PlanLayers
from districting.outputs.cells import openpyxl_text
from districting.outputs.writer import XLSX_TIMESTAMP as XLSX_TIMESTAMP  # re-exported
from districting.outputs.writer import save_workbook

STAFFING_COLUMNS = [
    "settlement_id", "settlement_name", "residents", "dwellings", "workload",
    "interviewers", "instructor_controllers", "registration_points", "point_staff",
    "reserve_interviewers", "reserve_instructors", "staff_total", "person_days",
    "utilization_mean", "utilization_min", "utilization_p10", "utilization_p90",
    "utilization_max", "cds_within_bounds", "cd_bound_exceptions",
    "interviewers_per_instructor",
]

#: Columns holding whole numbers (int64): counts of people, districts, dwellings, days.
INTEGER_COLUMNS = [
    "residents", "dwellings", "interviewers", "instructor_controllers", "registration_points",
    "point_staff", "reserve_interviewers", "reserve_instructors", "staff_total", "person_days",
    "cd_bound_exceptions",
]

#: Columns that are shares (0–1), shown as percentages in the workbook.
SHARE_COLUMNS = [
    "utilization_mean", "utilization_min", "utilization_p10", "utilization_p90",
    "utilization_max", "cds_within_bounds",
]

#: The 2021 census of Baikonur: interviewers (one per counting district) ...
SEED_BAIKONUR_2021_INTERVIEWERS = 169
#: ... and instructor-controllers (one per instructor district), the figures we compare to.
SEED_BAIKONUR_2021_INSTRUCTORS = 26

#: Column headers of the staffing workbook, by language.
STAFFING_LABELS: dict[str, dict[str, str]] = {
    "ru": {
        "settlement_id": "Код населённого пункта",
        "settlement_name": "Населённый пункт",
        "residents": "Жителей",
        "dwellings": "Квартир",
        "workload": "Нагрузка, мин",
        "interviewers": "Интервьюеры",
        "instructor_controllers": "Инструкторы-контролёры",
        "registration_points": "Стационарные участки",
        "point_staff": "Персонал стационарных участков",
        "reserve_interviewers": "Резерв интервьюеров",
        "reserve_instructors": "Резерв инструкторов-контролёров",
        "staff_total": "Всего персонала",
        "person_days": "Человеко-дни",
        "utilization_mean": "Загрузка средняя",
        "utilization_min": "Загрузка мин.",
        "utilization_p10": "Загрузка 10-й процентиль",
        "utilization_p90": "Загрузка 90-й процентиль",
        "utilization_max": "Загрузка макс.",
        "cds_within_bounds": "Счётные участки в пределах нормы",
        "cd_bound_exceptions": "Счётные участки вне нормы",
        "interviewers_per_instructor": "Интервьюеров на инструктора",
    },
    "en": {
        "settlement_id": "Settlement ID",
        "settlement_name": "Settlement",
        "residents": "Residents",
        "dwellings": "Dwellings",
        "workload": "Workload, min",
        "interviewers": "Interviewers",
        "instructor_controllers": "Instructor-controllers",
        "registration_points": "Registration points",
        "point_staff": "Registration-point staff",
        "reserve_interviewers": "Reserve interviewers",
        "reserve_instructors": "Reserve instructor-controllers",
        "staff_total": "Total staff",
        "person_days": "Person-days",
        "utilization_mean": "Utilization, mean",
        "utilization_min": "Utilization, min",
        "utilization_p10": "Utilization, 10th percentile",
        "utilization_p90": "Utilization, 90th percentile",
        "utilization_max": "Utilization, max",
        "cds_within_bounds": "CDs within bounds",
        "cd_bound_exceptions": "CDs outside bounds",
        "interviewers_per_instructor": "Interviewers per instructor",
    },
}

#: Sheet titles, the totals label and the norms sheet headers, by language.
XLSX_TEXT: dict[str, dict[str, str]] = {
    "ru": {"staffing": "Штат", "norms": "Нормативы", "total": "ИТОГО",
           "norm": "Норматив", "value": "Значение"},
    "en": {"staffing": "Staffing", "norms": "Norms", "total": "TOTAL",
           "norm": "Norm", "value": "Value"},
}

#: The norms listed on the workbook's second sheet, as ``section.field`` of :class:`Config`.
NORMS_LISTED = (
    "counting.working_days", "counting.hours_per_day", "counting.target_utilization",
    "counting.tolerance", "instructor.span_min", "instructor.span_max",
    "staffing.reserve_share", "staffing.staff_per_point", "staffing.point_days",
    "staffing.instructor_days", "workload.basis", "workload.interview_minutes",
    "workload.online_share",
)


def _reserve(count: int, share: float) -> int:
    """``ceil(count × share)``, ignoring float noise (30 × 0.1 is 3, not 4)."""
    return math.ceil(round(count * share, 9))


def _settlement_figures(cds: pd.DataFrame, config: Config) -> list[dict[str, Any]]:
    """The staffing figures of each group of CDs by ``settlement_id``, all groups at once
    (a country has thousands of settlements; the total is one group of all CDs)."""
    staffing = config.staffing
    frame = cds.assign(exception=cds["bound_exception"].fillna("").astype(str) != "",
                       utilization=cds["utilization"].astype(float))
    groups = frame.groupby("settlement_id", sort=True)
    utilization = groups["utilization"]
    table = pd.concat({
        "residents": groups["residents"].sum(),
        "dwellings": groups["dwellings"].sum(),
        "workload": groups["workload"].sum().astype(float),
        "interviewers": groups["cd_code"].nunique(),
        "instructor_controllers": groups["id_code"].nunique(),
        "registration_points": groups["rd_code"].nunique(),
        "utilization_mean": utilization.mean(),
        "utilization_min": utilization.min(),
        "utilization_p10": utilization.quantile(0.1),
        "utilization_p90": utilization.quantile(0.9),
        "utilization_max": utilization.max(),
        "cds_within_bounds": 1.0 - groups["exception"].mean(),
        "cd_bound_exceptions": groups["exception"].sum(),
    }, axis=1)
    table["point_staff"] = table["registration_points"] * staffing.staff_per_point
    table["person_days"] = (table["interviewers"] * config.counting.working_days
                            + table["instructor_controllers"] * staffing.instructor_days
                            + table["point_staff"] * staffing.point_days)
    records = table.rename_axis("settlement_id").reset_index().to_dict("records")
    return [{str(key): value for key, value in row.items()} for row in records]


def staffing_table(layers: PlanLayers, *, config: Config) -> pd.DataFrame:
    """The staffing plan: one row per settlement (by ``settlement_id``) and a ``TOTAL`` row.

    * one interviewer per counting district (CD), one instructor-controller per
      instructor district (ID), one registration point per registration district
      (RD) staffed by ``staffing.staff_per_point`` people;
    * a reserve of ``ceil(share × interviewers)`` interviewers and
      ``ceil(share × instructor-controllers)`` instructors per settlement
      (``staffing.reserve_share``); the reserve is held locally, so the ``TOTAL``
      reserve is the sum of the settlements' (not the ceiling of the total);
    * person-days of the interviewers (``counting.working_days``), the instructors
      (``staffing.instructor_days``) and the point staff (``staffing.point_days``).
      The reserve is on standby and is **not** counted in the person-days;
    * the spread of the CDs' ``utilization`` (mean, min, 10th and 90th percentile,
      max) and the share of CDs within their workload bounds (no
      ``bound_exception``). For ``TOTAL`` these are computed over all CDs, not
      averaged over settlements; so is the total workload.

    Counts are int64; workload has 1 decimal, shares 3, the span ratio 2. The
    ``TOTAL`` row's ``settlement_name`` is empty.
    """
    cds = pd.DataFrame(layers.counting_districts.drop(columns="geometry"))
    names = dict(zip(layers.settlements["settlement_id"], layers.settlements["settlement_name"],
                     strict=True))
    share = config.staffing.reserve_share
    rows = _settlement_figures(cds, config)
    for row in rows:
        row["settlement_name"] = names.get(row["settlement_id"], "")
        row["reserve_interviewers"] = _reserve(row["interviewers"], share)
        row["reserve_instructors"] = _reserve(row["instructor_controllers"], share)
    # The total is computed over all CDs, not summed or averaged over the settlements.
    whole = _settlement_figures(cds.assign(settlement_id="TOTAL"), config)
    total = whole[0] if whole else {  # a plan without CDs
        **dict.fromkeys(["residents", "dwellings", "workload", "interviewers",
                         "instructor_controllers", "registration_points", "point_staff",
                         "person_days", "cd_bound_exceptions"], 0),
        **dict.fromkeys(SHARE_COLUMNS, math.nan)}
    for column in ("reserve_interviewers", "reserve_instructors"):
        total[column] = sum(row[column] for row in rows)
    rows.append({"settlement_id": "TOTAL", "settlement_name": "", **total})
    table = pd.DataFrame(rows)
    table["staff_total"] = (
        table["interviewers"] + table["instructor_controllers"] + table["point_staff"]
        + table["reserve_interviewers"] + table["reserve_instructors"]
    )
    table[INTEGER_COLUMNS] = table[INTEGER_COLUMNS].astype("int64")
    table["workload"] = table["workload"].astype(float).round(1)
    table[SHARE_COLUMNS] = table[SHARE_COLUMNS].astype(float).round(3)
    table["interviewers_per_instructor"] = (
        table["interviewers"] / table["instructor_controllers"].replace(0, np.nan)
    ).round(2)
    return table[STAFFING_COLUMNS]


def _total_row(table: pd.DataFrame) -> pd.Series:
    totals = table[table["settlement_id"] == "TOTAL"]
    if len(totals) != 1:
        raise DistrictingError("the staffing table has no single TOTAL row")
    return totals.iloc[0]


def _plain(value: Any) -> float | None:
    """A float for JSON: ``None`` instead of NaN."""
    number = float(value)
    return None if math.isnan(number) else number


def staffing_summary(table: pd.DataFrame) -> dict[str, Any]:
    """The totals of a :func:`staffing_table`, as plain JSON-ready numbers.

    ``reserve`` is interviewers plus instructors in reserve; ``vs_seed`` is ours
    minus the 2021 census of Baikonur (positive: we plan more staff).
    """
    total = _total_row(table)
    interviewers = int(total["interviewers"])
    instructors = int(total["instructor_controllers"])
    return {
        "interviewers": interviewers,
        "instructor_controllers": instructors,
        "registration_points": int(total["registration_points"]),
        "point_staff": int(total["point_staff"]),
        "reserve": int(total["reserve_interviewers"]) + int(total["reserve_instructors"]),
        "staff_total": int(total["staff_total"]),
        "person_days": int(total["person_days"]),
        "utilization": {
            "mean": _plain(total["utilization_mean"]),
            "min": _plain(total["utilization_min"]),
            "max": _plain(total["utilization_max"]),
        },
        "seed_baikonur_2021": {
            "interviewers": SEED_BAIKONUR_2021_INTERVIEWERS,
            "instructor_controllers": SEED_BAIKONUR_2021_INSTRUCTORS,
        },
        "vs_seed": {
            "interviewers": interviewers - SEED_BAIKONUR_2021_INTERVIEWERS,
            "instructor_controllers": instructors - SEED_BAIKONUR_2021_INSTRUCTORS,
        },
    }


def _cell(value: Any) -> Any:
    """A value openpyxl writes as a number or text: plain Python, blank for NaN."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    return value


def _norm_value(config: Config, name: str) -> Any:
    section, key = name.split(".")
    return getattr(getattr(config, section), key)


def write_staffing_xlsx(
    table: pd.DataFrame, path: Path, *, config: Config, lang: str = "ru",
) -> None:
    """Write a :func:`staffing_table` as a workbook: the table, then the norms used.

    The first sheet has headers in ``lang`` (``"ru"`` or ``"en"``), a frozen header
    row, an autofilter over the settlement rows and a bold totals row below it;
    shares are percentages. The second sheet lists the norms by their config name.
    The workbook's timestamps are fixed (2000-01-01), so equal tables give equal files.
    Names from the register are string cells, never formulas
    (:mod:`districting.outputs.cells`).

    Raises
    ------
    DistrictingError
        If ``lang`` is unknown.
    """
    if lang not in STAFFING_LABELS:
        raise DistrictingError(
            f"unknown sheet language '{lang}'; choose one of {', '.join(sorted(STAFFING_LABELS))}"
        )
    labels, text = STAFFING_LABELS[lang], XLSX_TEXT[lang]
    bold = Font(bold=True)
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = text["staffing"]
    sheet.append([labels[column] for column in STAFFING_COLUMNS])
    for cell in sheet[1]:
        cell.font = bold
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    formats = {column: "0.0%" for column in SHARE_COLUMNS}
    formats.update(workload="0.0", interviewers_per_instructor="0.00")
    # Rows are counted here: openpyxl finds ``max_row`` by scanning every cell, which
    # made a country's 6,000 settlements take 23 s.
    for number, row in enumerate(table[STAFFING_COLUMNS].to_dict("records"), start=2):
        is_total = row["settlement_id"] == "TOTAL"
        values = [_cell(row[column]) for column in STAFFING_COLUMNS]
        if is_total:
            values[STAFFING_COLUMNS.index("settlement_name")] = text["total"]
        sheet.append(values)
        for index, value in enumerate(values, start=1):
            if isinstance(value, str):  # a name from the register: text, never a formula
                openpyxl_text(sheet.cell(row=number, column=index))
        for index, column in enumerate(STAFFING_COLUMNS, start=1):
            if column in formats or is_total:
                cell = sheet.cell(row=number, column=index)
                if column in formats:
                    cell.number_format = formats[column]
                if is_total:
                    cell.font = bold
    last = get_column_letter(len(STAFFING_COLUMNS))
    settlements = int((table["settlement_id"] != "TOTAL").sum())
    sheet.auto_filter.ref = f"A1:{last}{1 + settlements}"  # the totals row stays put
    sheet.freeze_panes = "A2"
    for index, column in enumerate(STAFFING_COLUMNS, start=1):
        longest = max((len(str(_cell(v))) for v in table[column]), default=0)
        width = max(10, min(max(longest + 2, len(labels[column]) // 2 + 2), 40))
        sheet.column_dimensions[get_column_letter(index)].width = width

    norms = workbook.create_sheet(text["norms"])
    norms.append([text["norm"], text["value"]])
    for cell in norms[1]:
        cell.font = bold
    for number, name in enumerate(NORMS_LISTED, start=2):
        norms.append([name, _norm_value(config, name)])
        openpyxl_text(norms.cell(row=number, column=2))
    norms.column_dimensions["A"].width = max(len(name) for name in NORMS_LISTED) + 2
    norms.column_dimensions["B"].width = 14

    save_workbook(workbook, path)

