"""Workload norms: interviewer minutes per unit, and units from a register."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from districting.config import CountingNorms, WorkloadNorms
from districting.territory import dissolve
from districting.workload import district_target, expected_households, unit_workload


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
