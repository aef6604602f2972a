"""Estimate each unit's door-to-door workload, in interviewer minutes, from the norms."""

from __future__ import annotations

import numpy as np
import pandas as pd

from districting.config import CountingNorms, WorkloadNorms
from districting.errors import ConfigError, Problem, RegisterValidationError

#: Optional buildings column naming each building's settlement type (e.g. city, village).
SETTLEMENT_TYPE_COLUMN = "settlement_type"


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


def online_shares(
    buildings: pd.DataFrame,
    *,
    norms: WorkloadNorms,
    settlement_types: dict[str, str] | None = None,
    source: str = "register",
) -> np.ndarray:
    """The expected online self-response share of each building, in [0, 1).

    By precedence: the building's own value in ``norms.online_share_column`` (blank
    cells fall through), the share of its settlement type in
    ``norms.online_share_by_type`` (the type is the buildings' ``settlement_type``
    column, else ``settlement_types`` keyed by settlement_id, for example from the
    settlements layer), then the global ``norms.online_share``.
    """
    n = len(buildings)
    shares = np.full(n, norms.online_share, dtype=float)
    if norms.online_share_by_type:
        from_layer = (buildings["settlement_id"].astype(str).str.strip().map(settlement_types)
                      if settlement_types else None)
        if SETTLEMENT_TYPE_COLUMN in buildings.columns:
            kinds = buildings[SETTLEMENT_TYPE_COLUMN].fillna("").astype(str).str.strip()
            if from_layer is not None:  # a blank cell takes the settlements layer's type
                kinds = kinds.where(kinds != "", from_layer)
        elif from_layer is not None:
            kinds = from_layer
        else:
            raise ConfigError(
                f"workload.online_share_by_type needs a '{SETTLEMENT_TYPE_COLUMN}' column in "
                f"the buildings or the settlements layer of {source}; neither has one"
            )
        by_type = kinds.map(norms.online_share_by_type).to_numpy(dtype=float)
        shares = np.where(np.isnan(by_type), shares, by_type)
    column = norms.online_share_column
    if column is not None:
        if column not in buildings.columns:
            raise ConfigError(
                f"workload.online_share_column: the column {column!r} is not in {source}"
            )
        raw = buildings[column]
        blank = raw.isna() | (raw.astype(str).str.strip() == "")
        values = pd.to_numeric(raw.where(~blank), errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~blank.to_numpy() & ~((values >= 0) & (values < 1)))
        if len(bad):
            problems = [
                Problem("error", int(i) + 1, column,
                        f"online share must be a number in [0, 1), got {raw.iloc[i]!r}", source)
                for i in bad
            ]
            raise RegisterValidationError(problems)
        shares = np.where(np.isnan(values), shares, values)
    return shares


def unit_workload(units: pd.DataFrame, *, norms: WorkloadNorms) -> np.ndarray:
    """Workload of each unit under the norms.

    With ``basis="workload"``: interview minutes for the households expected to need a
    visit, plus the callback allowance, plus a fixed overhead for each inhabited
    building. The online share is the units' ``online_share`` column where present
    (see :func:`online_shares`), else the global norm. With ``basis="residents"``:
    the residents themselves. The walk is added per district (:func:`tour_minutes`).
    """
    if norms.basis == "residents":
        return units["residents"].to_numpy(dtype=float)
    households = units["households"].to_numpy(dtype=float)
    share = (units["online_share"].to_numpy(dtype=float) if "online_share" in units.columns
             else norms.online_share)
    visits = households * (1.0 - share)
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


def tour_minutes(tour_m: np.ndarray | float, *, norms: WorkloadNorms) -> np.ndarray:
    """Minutes of walking a district's tour takes over the round and its callbacks."""
    if norms.basis == "residents":
        return np.zeros_like(np.asarray(tour_m, dtype=float))
    metres_per_minute = norms.walking_speed_kmh * 1000.0 / 60.0
    return np.round(np.asarray(tour_m, dtype=float) / metres_per_minute
                    * (1.0 + norms.callback_share), 3)
