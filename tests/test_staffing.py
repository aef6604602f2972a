"""The staffing table: one interviewer per CD, one instructor per ID, totals that add up."""

from __future__ import annotations

from plan_fixtures import grid_plan

from districting.layers import PlanLayers
from districting.staffing import STAFFING_COLUMNS, staffing_table


def test_staffing_counts_and_totals() -> None:
    layers = PlanLayers(**grid_plan())
    table = staffing_table(layers)
    assert list(table.columns) == STAFFING_COLUMNS
    rows, total = table.iloc[:-1], table.iloc[-1]
    assert total["settlement_id"] == "TOTAL"
    cds = layers.counting_districts
    assert total["interviewers"] == len(cds) == rows["interviewers"].sum()
    assert total["instructor_controllers"] == cds["id_code"].nunique()
    assert total["residents"] == cds["residents"].sum()
    assert str(table["residents"].dtype) == "int64"
