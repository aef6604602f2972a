"""Workload norms: interviewer minutes per unit, and units from a register."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from districting.config import CountingNorms, WorkloadNorms
from districting.errors import ConfigError, RegisterValidationError
from districting.territory import dissolve
from districting.workload import (
    district_target,
    expected_households,
    online_shares,
    tour_minutes,
    unit_workload,
)


def frame(**columns: list[object]) -> pd.DataFrame:
    return pd.DataFrame(columns)


def test_households_come_from_the_column_or_an_estimate() -> None:
    units = frame(kind=["residential", "collective", "residential", "non_residential"],
                  dwellings=[10, 40, 60, 0], residents=[30, 120, 10, 0])
    assert expected_households(units, household_size=2.5).tolist() == [10, 120, 4, 0]
    units["households"] = [7, np.nan, 9, 0]
    assert expected_households(units, household_size=2.5).tolist() == [7, 120, 9, 0]


def test_minutes_follow_the_documented_formula() -> None:
    norms = WorkloadNorms(interview_minutes=20, online_share=0.25, callback_share=0.2,
                          minutes_per_building=5)
    units = frame(households=[100, 0], residents=[250, 0])
    minutes = unit_workload(units, norms=norms)
    assert minutes.tolist() == pytest.approx([100 * 0.75 * 20 * 1.2 + 5, 0.0])


def test_population_norm_uses_residents() -> None:
    norms = WorkloadNorms(basis="residents")
    units = frame(households=[3], residents=[8])
    assert unit_workload(units, norms=norms).tolist() == [8.0]
    assert district_target(workload=norms, counting=CountingNorms(target_residents=450)) == 450


def test_target_is_one_interviewers_capacity() -> None:
    counting = CountingNorms(working_days=30, hours_per_day=2.5, target_utilization=1.0)
    assert district_target(workload=WorkloadNorms(), counting=counting) == 30 * 2.5 * 60


def test_dissolve_gives_one_polygon_per_connected_label() -> None:
    tiles = np.array([shapely.box(x, 0, x + 1, 1) for x in range(4)], dtype=object)
    merged = dissolve(tiles, np.array([0, 0, 1, 1]), 2)
    assert [g.geom_type for g in merged] == ["Polygon", "Polygon"]
    assert [g.area for g in merged] == [2.0, 2.0]


def test_walking_minutes_cover_every_round_to_inhabited_buildings() -> None:
    from districting.workload import walking_minutes

    norms = WorkloadNorms(walking_speed_kmh=4.5, callback_share=0.5)
    minutes = walking_minutes(np.array([150.0, 300.0]), np.array([10, 0]), norms=norms)
    assert minutes.tolist() == pytest.approx([150 / 75 * 1.5, 0.0])
    assert walking_minutes(np.array([150.0]), np.array([3]),
                           norms=WorkloadNorms(basis="residents")).tolist() == [0.0]


def test_online_share_precedence_column_then_type_then_global() -> None:
    norms = WorkloadNorms(online_share=0.3, online_share_by_type={"city": 0.4, "village": 0.1},
                          online_share_column="web")
    buildings = frame(settlement_id=["1", "1", "2", "3"],
                      settlement_type=["city", "city", "village", "hamlet"],
                      web=[0.55, "", None, " "])
    assert online_shares(buildings, norms=norms).tolist() == [0.55, 0.4, 0.1, 0.3]


def test_settlement_types_may_come_from_the_settlements_layer() -> None:
    norms = WorkloadNorms(online_share=0.3, online_share_by_type={"village": 0.1})
    buildings = frame(settlement_id=["1", "2"])
    shares = online_shares(buildings, norms=norms, settlement_types={"1": "city", "2": "village"})
    assert shares.tolist() == [0.3, 0.1]
    with pytest.raises(ConfigError, match="needs a 'settlement_type' column"):
        online_shares(buildings, norms=norms)
    buildings["settlement_type"] = ["", "city"]  # a blank cell takes the layer's type
    shares = online_shares(buildings, norms=norms, settlement_types={"1": "village", "2": "x"})
    assert shares.tolist() == [0.1, 0.3]


def test_bad_online_share_cells_are_named_by_row() -> None:
    norms = WorkloadNorms(online_share_column="web")
    buildings = frame(settlement_id=["1", "1", "1"], web=[0.2, 1.5, "lots"])
    with pytest.raises(RegisterValidationError) as info:
        online_shares(buildings, norms=norms, source="reg.csv")
    rows = [(p.row, p.column) for p in info.value.problems]
    assert rows == [(2, "web"), (3, "web")]
    with pytest.raises(ConfigError, match=r"'visits' is not in reg\.csv"):
        online_shares(buildings, norms=WorkloadNorms(online_share_column="visits"),
                      source="reg.csv")


def test_per_unit_shares_drive_the_minutes() -> None:
    norms = WorkloadNorms(interview_minutes=20, online_share=0.5, callback_share=0.0,
                          minutes_per_building=0)
    units = frame(households=[10, 10], residents=[25, 25], online_share=[0.0, 0.9])
    assert unit_workload(units, norms=norms).tolist() == pytest.approx([200.0, 20.0])


def test_tour_minutes_cover_the_round_and_callbacks() -> None:
    norms = WorkloadNorms(walking_speed_kmh=6.0, callback_share=0.5)
    assert tour_minutes(np.array([1000.0, 0.0]), norms=norms).tolist() == [15.0, 0.0]
    assert tour_minutes(np.array([1000.0]),
                        norms=WorkloadNorms(basis="residents")).tolist() == [0.0]
