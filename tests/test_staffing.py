"""The staffing plan: one interviewer per CD, one instructor per ID, reserve, points,
person-days and utilisation per settlement, totals that add up, and the workbook."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
from plan_fixtures import SETTLEMENT, grid_plan

from districting.config import Config, CountingNorms, StaffingNorms
from districting.errors import DistrictingError
from districting.layers import PlanLayers
from districting.staffing import (
    INTEGER_COLUMNS,
    SEED_BAIKONUR_2021_INSTRUCTORS,
    SEED_BAIKONUR_2021_INTERVIEWERS,
    STAFFING_COLUMNS,
    staffing_summary,
    staffing_table,
    write_staffing_xlsx,
)

OTHER = "431020000"


def relabelled(layers: dict[str, gpd.GeoDataFrame], settlement: str,
               name: str) -> dict[str, gpd.GeoDataFrame]:
    """A grid plan moved to another settlement: its id and every code start with it."""
    out = {}
    for key, frame in layers.items():
        frame = frame.copy()
        for column in ("settlement_id", "cd_code", "id_code", "rd_code"):
            if column in frame.columns:
                frame[column] = frame[column].str.replace(SETTLEMENT, settlement, regex=False)
        if key == "settlements":
            frame["settlement_name"] = name
        out[key] = frame
    return out


def two_settlements() -> PlanLayers:
    """Settlement OTHER (6 CDs, 3 IDs, 2 RDs) listed first, then SETTLEMENT (4, 2, 2)."""
    first = grid_plan()
    second = relabelled(grid_plan(rows=6), OTHER, "Second town")
    layers = {
        name: gpd.GeoDataFrame(pd.concat([second[name], first[name]], ignore_index=True),
                               crs=first[name].crs)
        for name in first
    }
    return PlanLayers(**layers)


def varied(layers: PlanLayers) -> PlanLayers:
    """Spread the CDs' utilisation and flag two of them outside their bounds."""
    cds = layers.counting_districts.copy()
    cds["utilization"] = np.linspace(0.7, 1.3, len(cds)) ** 2
    cds.loc[cds.index[[0, -1]], "bound_exception"] = "too few units"
    return replace(layers, counting_districts=cds)


def rows_and_total(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    assert (table["settlement_id"] == "TOTAL").sum() == 1
    assert table["settlement_id"].iloc[-1] == "TOTAL"
    return table.iloc[:-1], table.iloc[-1]


def test_staffing_counts_and_totals() -> None:
    layers = PlanLayers(**grid_plan())
    table = staffing_table(layers, config=Config())
    assert list(table.columns) == STAFFING_COLUMNS
    rows, total = rows_and_total(table)
    cds = layers.counting_districts
    assert total["interviewers"] == len(cds) == rows["interviewers"].sum() == 4
    assert total["instructor_controllers"] == cds["id_code"].nunique() == 2
    assert total["registration_points"] == cds["rd_code"].nunique() == 2
    assert total["residents"] == cds["residents"].sum()
    assert total["workload"] == pytest.approx(round(float(cds["workload"].sum()), 1))
    assert total["interviewers_per_instructor"] == 2.0
    for column in INTEGER_COLUMNS:
        assert str(table[column].dtype) == "int64", column


def test_total_row_is_the_sum_of_the_settlement_rows() -> None:
    layers = two_settlements()
    table = staffing_table(layers, config=Config())
    rows, total = rows_and_total(table)
    assert list(rows["settlement_id"]) == [SETTLEMENT, OTHER]  # sorted, not in layer order
    assert list(rows["settlement_name"]) == ["Baikonur (synthetic test grid)", "Second town"]
    assert list(rows["interviewers"]) == [4, 6]
    assert list(rows["instructor_controllers"]) == [2, 3]
    for column in INTEGER_COLUMNS:
        assert total[column] == rows[column].sum(), column
    assert total["staff_total"] == (
        total["interviewers"] + total["instructor_controllers"] + total["point_staff"]
        + total["reserve_interviewers"] + total["reserve_instructors"]
    )
    assert total["interviewers_per_instructor"] == round(10 / 5, 2)


def test_reserve_is_rounded_up_in_each_settlement() -> None:
    table = staffing_table(two_settlements(), config=Config())
    rows, total = rows_and_total(table)
    # 10% of 4 and of 6 interviewers round up to 1 each: 2 in all, not ceil(10 × 10%) = 1
    assert list(rows["reserve_interviewers"]) == [1, 1]
    assert list(rows["reserve_instructors"]) == [1, 1]
    assert total["reserve_interviewers"] == 2 and total["reserve_instructors"] == 2
    half = Config(staffing=StaffingNorms(reserve_share=0.5))
    rows, _ = rows_and_total(staffing_table(two_settlements(), config=half))
    assert list(rows["reserve_interviewers"]) == [math.ceil(4 * 0.5), math.ceil(6 * 0.5)]
    assert list(rows["reserve_instructors"]) == [1, 2]


def test_reserve_ignores_float_noise() -> None:
    # 30 CDs in 10 IDs: 30 × 0.1 is 3.0000000000000004 in floating point, still 3 people
    layers = PlanLayers(**grid_plan(rows=10, cols=9, cd_rows=1, cd_cols=3))
    _, total = rows_and_total(staffing_table(layers, config=Config()))
    assert total["interviewers"] == 30 and total["instructor_controllers"] == 10
    assert total["reserve_interviewers"] == 3 and total["reserve_instructors"] == 1


def test_point_staff_and_person_days_follow_the_norms() -> None:
    config = Config(
        counting=CountingNorms(working_days=25),
        staffing=StaffingNorms(reserve_share=0.2, staff_per_point=3, point_days=12,
                               instructor_days=20),
    )
    table = staffing_table(two_settlements(), config=config)
    rows, total = rows_and_total(table)
    assert list(rows["point_staff"]) == [2 * 3, 2 * 3]
    expected = rows["interviewers"] * 25 + rows["instructor_controllers"] * 20 \
        + rows["point_staff"] * 12
    assert list(rows["person_days"]) == list(expected)
    assert rows["person_days"].iloc[0] == 4 * 25 + 2 * 20 + 6 * 12  # the reserve is excluded
    assert total["person_days"] == 10 * 25 + 5 * 20 + 12 * 12
    assert list(rows["staff_total"]) == [4 + 2 + 6 + 1 + 1, 6 + 3 + 6 + 2 + 1]


def test_utilization_statistics_match_numpy() -> None:
    layers = varied(two_settlements())
    table = staffing_table(layers, config=Config())
    cds = layers.counting_districts
    groups = [(sid, cds[cds["settlement_id"] == sid]) for sid in (SETTLEMENT, OTHER)]
    groups.append(("TOTAL", cds))  # over all CDs, not an average of the settlements
    for settlement_id, group in groups:
        row = table.set_index("settlement_id").loc[settlement_id]
        values = group["utilization"].to_numpy()
        assert row["utilization_mean"] == pytest.approx(round(values.mean(), 3), abs=1e-12)
        assert row["utilization_min"] == pytest.approx(round(values.min(), 3), abs=1e-12)
        assert row["utilization_p10"] == pytest.approx(
            round(np.percentile(values, 10), 3), abs=1e-12)
        assert row["utilization_p90"] == pytest.approx(
            round(np.percentile(values, 90), 3), abs=1e-12)
        assert row["utilization_max"] == pytest.approx(round(values.max(), 3), abs=1e-12)
        within = (group["bound_exception"] == "").mean()
        assert row["cds_within_bounds"] == pytest.approx(round(within, 3), abs=1e-12)
        assert row["cd_bound_exceptions"] == (group["bound_exception"] != "").sum()
    _, total = rows_and_total(table)
    assert total["cd_bound_exceptions"] == 2
    assert total["cds_within_bounds"] == pytest.approx(round(8 / 10, 3))
    assert total["utilization_mean"] != pytest.approx(
        table.iloc[:-1]["utilization_mean"].mean(), abs=1e-4)


def test_staffing_summary_is_plain_json_with_the_seed_comparison() -> None:
    table = staffing_table(varied(two_settlements()), config=Config())
    summary = staffing_summary(table)
    assert json.loads(json.dumps(summary)) == summary
    for key in ("interviewers", "instructor_controllers", "registration_points", "point_staff",
                "reserve", "staff_total", "person_days"):
        assert type(summary[key]) is int, key
    assert all(type(v) is float for v in summary["utilization"].values())
    assert summary["interviewers"] == 10 and summary["instructor_controllers"] == 5
    assert summary["reserve"] == 2 + 2
    assert summary["staff_total"] == int(table["staff_total"].iloc[-1])
    assert summary["utilization"]["min"] == table["utilization_min"].iloc[-1]
    assert summary["seed_baikonur_2021"] == {"interviewers": 169, "instructor_controllers": 26}
    assert SEED_BAIKONUR_2021_INTERVIEWERS == 169 and SEED_BAIKONUR_2021_INSTRUCTORS == 26
    assert summary["vs_seed"] == {"interviewers": 10 - 169, "instructor_controllers": 5 - 26}
    assert all(type(v) is int for v in summary["vs_seed"].values())


def test_staffing_xlsx_in_russian(tmp_path: Path) -> None:
    config = Config(staffing=StaffingNorms(staff_per_point=3))
    table = staffing_table(varied(two_settlements()), config=config)
    path = tmp_path / "staffing.xlsx"
    write_staffing_xlsx(table, path, config=config)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Штат", "Нормативы"]
    sheet = book["Штат"]
    headers = [cell.value for cell in sheet[1]]
    assert len(headers) == len(STAFFING_COLUMNS)
    labels = dict(zip(STAFFING_COLUMNS, headers, strict=True))
    assert labels["interviewers"] == "Интервьюеры"
    assert labels["instructor_controllers"] == "Инструкторы-контролёры"
    assert labels["point_staff"] == "Персонал стационарных участков"
    assert labels["reserve_interviewers"] == "Резерв интервьюеров"
    assert labels["person_days"] == "Человеко-дни"
    assert all(labels[c].startswith("Загрузка") for c in STAFFING_COLUMNS
               if c.startswith("utilization_"))
    assert all(cell.font.b for cell in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref is not None and sheet.auto_filter.ref.startswith("A1:")
    assert sheet.max_row == 1 + len(table)
    total = [cell.value for cell in sheet[sheet.max_row]]
    expected = table.iloc[-1]
    for column, value in zip(STAFFING_COLUMNS, total, strict=True):
        if column == "settlement_name":
            assert value == "ИТОГО"
        elif isinstance(value, float):
            assert value == pytest.approx(expected[column]), column
        else:
            assert value == expected[column], column
    assert all(cell.font.b for cell in sheet[sheet.max_row])
    assert not sheet.cell(row=2, column=1).font.b
    for row in range(2, sheet.max_row + 1):
        for column in ("utilization_mean", "utilization_p90", "cds_within_bounds"):
            cell = sheet.cell(row=row, column=STAFFING_COLUMNS.index(column) + 1)
            assert cell.number_format == "0.0%", (row, column)
    norms = {name: value for name, value in book["Нормативы"].iter_rows(min_row=2,
                                                                         values_only=True)}
    assert norms["staffing.staff_per_point"] == 3
    assert norms["staffing.reserve_share"] == pytest.approx(0.1)
    assert norms["counting.working_days"] == 30
    assert norms["workload.basis"] == "workload"
    assert len(norms) == 13
    assert book.properties.created.year == 2000 and book.properties.modified.year == 2000


def test_staffing_xlsx_in_english_and_stable(tmp_path: Path) -> None:
    table = staffing_table(two_settlements(), config=Config())
    first, second = tmp_path / "a.xlsx", tmp_path / "b.xlsx"
    for path in (first, second):
        write_staffing_xlsx(table, path, config=Config(), lang="en")
    assert first.read_bytes() == second.read_bytes()
    book = openpyxl.load_workbook(first)
    assert book.sheetnames == ["Staffing", "Norms"]
    headers = [cell.value for cell in book["Staffing"][1]]
    assert headers[STAFFING_COLUMNS.index("interviewers")] == "Interviewers"
    assert headers[STAFFING_COLUMNS.index("instructor_controllers")] == "Instructor-controllers"
    assert headers[STAFFING_COLUMNS.index("point_staff")] == "Registration-point staff"
    last = book["Staffing"][book["Staffing"].max_row]
    assert last[0].value == "TOTAL" and last[1].value == "TOTAL"
    with pytest.raises(DistrictingError, match="language"):
        write_staffing_xlsx(table, tmp_path / "c.xlsx", config=Config(), lang="kk")


def test_write_plan_writes_both_staffing_files(tmp_path: Path) -> None:
    from districting.outputs.bundle import OUTPUT_FILES, write_plan
    from districting.pipeline import PlanResult

    config = Config(staffing=StaffingNorms(staff_per_point=4))
    result = PlanResult(layers=two_settlements(), summary={"name": "test"})
    out = write_plan(result, tmp_path / "plan", title="test", config=config, lang="en")
    assert "staffing.xlsx" in OUTPUT_FILES
    csv = pd.read_csv(out / "staffing.csv", dtype={"settlement_id": str})
    assert list(csv.columns) == STAFFING_COLUMNS
    assert csv["point_staff"].iloc[-1] == 4 * 4
    book = openpyxl.load_workbook(out / "staffing.xlsx")
    assert book.sheetnames == ["Staffing", "Norms"]
    default = write_plan(result, tmp_path / "default", title="test")
    assert pd.read_csv(default / "staffing.csv")["point_staff"].iloc[-1] == 4 * 2
