"""Estimate each unit's door-to-door workload, in interviewer minutes, from the norms."""

from __future__ import annotations

import numpy as np
import pandas as pd

from districting.config import CountingNorms, WorkloadNorms


def expected_households(units: pd.DataFrame, *, household_size: float) -> np.ndarray:
    """Households expected in each unit.

    The ``households`` column wins where given. Otherwise a collective quarter counts
    each resident as a household (people in dormitories are interviewed one by one),
    and other buildings count occupied dwellings, estimated as
    ``min(dwellings, ceil(residents / household_size))``.
    """
    residents = units["residents"].to_numpy(dtype=float)
    dwellings = units["dwellings"].to_numpy(dtype=float)
    estimate = np.minimum(dwellings, np.ceil(residents / household_size))
    estimate = np.where(units["kind"].to_numpy() == "collective", residents, estimate)
    if "households" in units.columns:
        given = pd.to_numeric(units["households"], errors="coerce").to_numpy(dtype=float)
        estimate = np.where(np.isnan(given), estimate, given)
    return estimate.astype(np.int64)


def unit_workload(units: pd.DataFrame, *, norms: WorkloadNorms) -> np.ndarray:
    """Workload of each unit under the norms.

    With ``basis="workload"``: interview minutes for the households expected to need a
    visit, plus the callback allowance, plus a fixed overhead for each inhabited
    building. With ``basis="residents"``: the residents themselves.
    """
    if norms.basis == "residents":
        return units["residents"].to_numpy(dtype=float)
    households = units["households"].to_numpy(dtype=float)
    visits = households * (1.0 - norms.online_share)
    minutes = visits * norms.interview_minutes * (1.0 + norms.callback_share)
    overhead = np.where(households > 0, norms.minutes_per_building, 0.0)
    return np.round(minutes + overhead, 3)


def district_target(*, workload: WorkloadNorms, counting: CountingNorms) -> float:
    """The workload one counting district should carry: one interviewer's capacity."""
    if workload.basis == "residents":
        return counting.target_residents
    return counting.capacity_minutes * counting.target_utilization


def walking_minutes(
    nearest_walk_m: np.ndarray, households: np.ndarray, *, norms: WorkloadNorms
) -> np.ndarray:
    """Minutes spent walking to each inhabited unit over the door-to-door round.

    A walking tour enters each building once per visit round; the leg into a building
    is taken as the walk from its nearest neighbour in the unit graph (along the streets
    where a network is given). There are ``1 + callback_share`` rounds.
    """
    if norms.basis == "residents":
        return np.zeros(len(households))
    metres_per_minute = norms.walking_speed_kmh * 1000.0 / 60.0
    legs = np.where(np.asarray(households) > 0, nearest_walk_m, 0.0)
    return np.round(legs / metres_per_minute * (1.0 + norms.callback_share), 3)
