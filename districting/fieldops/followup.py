"""Re-plan the door-to-door round after online self-response, moving as few units as can be.

From the online answers per building and dwelling, each address unit gets the
households still to visit (``households_remaining``). Each CD's workload is
recomputed from them: interviews with their callbacks, the per-building overhead
where someone is still to visit, and a new walking tour through those units only.

Where a CD's workload now falls far below its floor (below ``floor × (1 − slack)``)
or above its ceiling, the counting districts are rebalanced with the fewest units
moved:

* Moves stay inside one instructor district and one registration district. Every
  unit keeps its ID and RD, so the codes still nest, IDs and RDs keep their
  territories and each RD keeps its point.
* An ID whose remaining work can no longer keep all its CDs above that line gives
  up whole CDs: their interviewers are released. The units of a released CD join
  the neighbouring CDs of its ID and RD, the least loaded first, and a CD is only
  released when none of them then passes its ceiling.
* Then single units move between neighbouring CDs, the largest first, until every
  CD lies within ``[floor × (1 − slack), ceiling]`` or no move helps (the repair
  planning uses for walking tours, :func:`districting.hierarchy.repair_walks`).

CDs that stay keep their codes, so interviewers keep their assignments. Walking
distances follow the plan's unit graph (the ``unit_adjacency`` edges, whose
lengths are walks along the streets when the plan was made with a street network),
because a plan folder does not hold the street layers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components
from tqdm import tqdm

from districting import __version__
from districting.check import check_layers, read_plan_layers
from districting.config import Config, config_from_dict
from districting.errors import ConfigError, DistrictingError, InputFileError, PlanCheckError
from districting.fieldops.records import (
    ONLINE_CHANNELS,
    cell_texts,
    household_keys,
    locate_units,
    read_table,
    unit_keys,
    wall_clock,
)
from districting.graph import voronoi_tiles
from districting.hierarchy import (
    MoveRule,
    TourWalk,
    id_exceptions,
    repair_walks,
    tour_walk,
    walking_routes,
)
from districting.layers import LAYER_FIELDS, PlanLayers
from districting.network import StreetNetwork, Walks
from districting.outputs.bundle import write_plan
from districting.outputs.folders import check_output_folder
from districting.partition import adjacency_from_edges
from districting.pipeline import PlanResult, district_statistics
from districting.territory import dissolve
from districting.units import spread_duplicate_points
from districting.workload import unit_workload

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_SLACK",
    "FORMAT",
    "RESPONSE_COLUMNS",
    "Coverage",
    "followup",
    "online_coverage",
    "read_followup_plan",
    "read_responses",
    "run_followup",
]

FORMAT = "districting-followup/1"
#: How far below its floor a CD may fall before the CDs are rebalanced, as a share of
#: the floor (0.10: below 90 % of the floor).
DEFAULT_SLACK = 0.10
#: Columns a responses file must have (Stage-2 records or deduplication's accepted.csv);
#: ``dwelling`` and ``submitted_at`` are used when present.
RESPONSE_COLUMNS = ("record_id", "building_id", "household_id", "channel")
TITLES = {
    "ru": "План обхода после онлайн-переписи",
    "en": "Door-to-door plan after online self-response",
}
_EPS = 1e-6


# ---------------------------------------------------------------- reading


def read_responses(paths: Sequence[str | Path]) -> pd.DataFrame:
    """Read responses files (Stage-2 records or ``accepted.csv``, CSV or Parquet) as text.

    Only the columns :func:`online_coverage` uses are kept, so a raw ``iin`` column
    is dropped on reading.

    Raises
    ------
    InputFileError
        If a file is missing or unreadable.
    DistrictingError
        If no file is given or a file lacks a column of :data:`RESPONSE_COLUMNS`.
    """
    if not paths:
        raise DistrictingError("give at least one responses file")
    frames = []
    for raw in paths:
        path = Path(raw)
        frame = read_table(path)
        frame.columns = [str(c).strip().lower() for c in frame.columns]
        missing = [c for c in RESPONSE_COLUMNS if c not in frame.columns]
        if missing:
            raise DistrictingError(
                f"{path}: no column(s) {', '.join(missing)}; give Stage-2 records or the "
                "accepted.csv of deduplication")
        keep = [c for c in (*RESPONSE_COLUMNS, "dwelling", "submitted_at") if c in frame.columns]
        frames.append(frame[keep].assign(source=path.name))
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def read_followup_plan(plan_dir: str | Path) -> tuple[PlanLayers, dict[str, Any], Config]:
    """A written plan's layers, its summary and the config it was made with.

    Raises
    ------
    InputFileError
        If ``plan.gpkg`` or ``summary.json`` is missing or unreadable, or a layer is absent.
    """
    found = read_plan_layers(plan_dir)
    missing = [name for name in LAYER_FIELDS if name not in found]
    if missing:
        raise InputFileError(f"the plan in {plan_dir} has no layer(s) {', '.join(missing)}")
    path = Path(plan_dir) / "summary.json"
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFileError(f"there is no summary.json in {plan_dir}; is it a plan "
                             "directory?") from None
    except (OSError, ValueError) as exc:
        raise InputFileError(f"cannot read {path}: {exc}") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("config"), dict):
        raise InputFileError(f"{path} does not record the config the plan was made with")
    try:
        config = config_from_dict(summary["config"], source=f"{path} (config)")
    except ConfigError as exc:
        raise InputFileError(str(exc)) from None
    return PlanLayers(**found), summary, config


# ---------------------------------------------------------------- coverage


@dataclass
class Coverage:
    """Households that answered online, per unit of the plan, and how the records fared."""

    responded: np.ndarray
    counts: dict[str, int] = field(default_factory=dict)


def online_coverage(responses: pd.DataFrame, units: pd.DataFrame, *,
                    as_of: date | None = None) -> Coverage:
    """Households of each unit that answered online (web, eGov or Aitu).

    Records of one household count once (see
    :func:`~districting.fieldops.records.household_keys`). A record goes to the unit
    whose dwelling range holds its dwelling, else to its building's first unit. Tablet
    records are not answers of this kind and are left out; so are records at a building
    the plan does not have, and (with ``as_of``) records submitted after that day or
    with no readable time.
    """
    channel = np.char.lower(cell_texts(responses["channel"]).astype(str))
    online = np.isin(channel, ONLINE_CHANNELS)
    counts = {"records": len(responses), "online_records": int(online.sum())}
    frame = responses.loc[online].reset_index(drop=True)
    if as_of is not None:
        if "submitted_at" not in frame.columns:
            raise DistrictingError("--as-of needs a submitted_at column in the responses")
        times = wall_clock(frame["submitted_at"]).reset_index(drop=True)
        unreadable = times.isna().to_numpy()
        late = ~unreadable & (times >= pd.Timestamp(as_of + timedelta(days=1))).to_numpy()
        counts["unreadable_time"] = int(unreadable.sum())
        counts["after_as_of"] = int(late.sum())
        frame = frame.loc[~unreadable & ~late].reset_index(drop=True)
    building = cell_texts(frame["building_id"])
    household = cell_texts(frame["household_id"])
    dwelling = (cell_texts(frame["dwelling"]) if "dwelling" in frame.columns
                else np.full(len(frame), "", dtype=object))
    key = household_keys(building, household, dwelling, cell_texts(frame["record_id"]))
    table = pd.DataFrame({
        "building_id": building,
        "dwelling": pd.to_numeric(pd.Series(dwelling, dtype=object), errors="coerce")
        .to_numpy(dtype=float),
    })
    unit = locate_units(table, unit_keys(units))
    counts["unknown_building"] = int((unit < 0).sum())
    known = pd.DataFrame({"key": key, "unit": unit}).loc[unit >= 0]
    # One unit per household: the lowest its records point to (a stable choice).
    first = known.sort_values(["key", "unit"], kind="stable").drop_duplicates("key")
    responded = np.bincount(first["unit"].to_numpy(dtype=np.int64), minlength=len(units))
    counts["households_responded"] = len(first)
    if counts["unknown_building"]:
        logger.warning("follow-up: %d online record(s) name a building the plan does not "
                       "have; they are not counted", counts["unknown_building"])
    return Coverage(responded=responded.astype(np.int64), counts=counts)


def remaining_workload(units: pd.DataFrame, remaining: np.ndarray, *,
                       config: Config) -> np.ndarray:
    """Each unit's workload without walking, for its households still to visit.

    With ``basis: residents`` it is the residents in the same share as the households
    still to visit."""
    norms = config.workload
    residents = pd.to_numeric(units["residents"], errors="coerce").fillna(0).to_numpy(float)
    if norms.basis == "residents":
        households = (pd.to_numeric(units["households"], errors="coerce").fillna(0)
                      .to_numpy(dtype=float))
        share = np.divide(remaining, households, out=np.zeros(len(units)),
                          where=households > 0)
        return np.round(residents * share, 3)
    frame = pd.DataFrame({"households": remaining.astype(float), "online_share": 0.0,
                          "residents": residents})
    return unit_workload(frame, norms=norms)


# ---------------------------------------------------------------- rebalancing


@dataclass
class _Replan:
    """One settlement after the follow-up: labels index ``codes`` (the CDs that stay)."""

    codes: list[str]
    labels: np.ndarray
    walk_min: np.ndarray
    tour_m: np.ndarray
    visit_order: np.ndarray
    naive_m: np.ndarray
    released: list[str]
    moved: int
    #: Each planned CD's workload after the answers, with its new tour, before rebalancing.
    before: dict[str, float] = field(default_factory=dict)
    #: Mean (by residents) and longest walk to the point of each RD whose units changed.
    rd_walks: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: The settlement's units among the plan's.
    positions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def _unit_graph_walks(xy: np.ndarray, edges: np.ndarray, lengths: np.ndarray) -> Walks:
    """Walks along the plan's unit graph (straight lines where it does not connect)."""
    if len(edges) == 0:
        return Walks(xy, None)
    pairs = np.sort(edges, axis=1)
    frame = pd.DataFrame({"u": pairs[:, 0], "v": pairs[:, 1], "m": np.maximum(lengths, 0.01)})
    frame = frame.groupby(["u", "v"], sort=True)["m"].min().reset_index()
    u, v, m = (frame[c].to_numpy() for c in ("u", "v", "m"))
    n = len(xy)
    matrix = sp.csr_matrix((np.r_[m, m], (np.r_[u, v], np.r_[v, u])), shape=(n, n))
    segments = shapely.linestrings(np.stack([xy[u], xy[v]], axis=1))
    network = StreetNetwork(node_xy=xy, lengths=matrix, segments=segments,
                            segment_ends=np.stack([u, v], axis=1).astype(np.int64))
    return Walks(xy, network)


def _connected(adj: sp.csr_matrix, members: np.ndarray) -> bool:
    """Whether the given units form one connected piece of the graph (or none)."""
    if len(members) <= 1:
        return True
    count, _ = connected_components(adj[members][:, members], directed=False)
    return int(count) == 1


def _replan_settlement(
    *,
    xy: np.ndarray,
    edges: np.ndarray,
    lengths: np.ndarray,
    base: np.ndarray,
    inhabited: np.ndarray,
    residents: np.ndarray,
    start: np.ndarray,
    codes: list[str],
    cd_id: list[str],
    cd_rd: list[str],
    points: dict[str, int],
    floor: float,
    ceiling: float,
    slack: float,
    config: Config,
) -> _Replan:
    """Tours through the units still to visit, then the rebalancing (module docstring).

    ``start`` gives each unit's planned CD (an index into ``codes``); ``cd_id`` and
    ``cd_rd`` each CD's ID and RD; ``points`` each RD's point unit.
    """
    n, k = len(start), len(codes)
    walks = _unit_graph_walks(xy, edges, lengths)
    walk = tour_walk(walks, inhabited, config=config)
    labels = start.copy()
    tour_m, walk_min = np.zeros(k), np.zeros(n)
    for c in range(k):
        members = np.flatnonzero(labels == c)
        tour_m[c], walk_min[members] = walk(members)
    rd_names = sorted(set(cd_rd))
    rd_of = np.array([rd_names.index(r) for r in cd_rd], dtype=np.int64)
    id_of = pd.factorize(pd.Series(cd_id), sort=True)[0]
    full = adjacency_from_edges(n, edges)
    within_id = (id_of[labels[edges[:, 0]]] == id_of[labels[edges[:, 1]]]) if len(edges) \
        else np.zeros(0, dtype=bool)
    adj = adjacency_from_edges(n, edges[within_id])
    point_units = set(points.values())

    def rule(rd_of_cd: np.ndarray) -> MoveRule:
        """A unit may join a CD of another RD if it is not a point and its RD stays whole."""
        def allowed(current: np.ndarray, unit: int, source: int, sink: int) -> bool:
            if rd_of_cd[source] == rd_of_cd[sink]:
                return True
            if unit in point_units:
                return False
            current[unit] = sink
            whole = _connected(full, np.flatnonzero(rd_of_cd[current] == rd_of_cd[source]))
            current[unit] = source
            return whole
        return allowed

    low = floor * (1.0 - slack)
    loads = np.bincount(labels, weights=base + walk_min, minlength=k)
    before = {code: float(loads[c]) for c, code in enumerate(codes)}
    alive = np.ones(k, dtype=bool)
    released: list[str] = []
    for instructor in sorted(set(cd_id)):
        mine = [c for c in range(k) if cd_id[c] == instructor]
        if all(low - _EPS <= loads[c] <= ceiling + _EPS for c in mine):
            continue
        while True:
            live = [c for c in mine if alive[c]]
            total = float(loads[live].sum())
            if len(live) <= 1 or len(live) <= math.floor(total / low + 1e-9):
                break
            sizes = np.bincount(labels, minlength=k)
            candidates = sorted(live, key=lambda c: (loads[c] >= low - _EPS, sizes[c],
                                                     loads[c], c))
            for c in candidates:
                if _release(c, adj, full, labels, base, walk_min, tour_m, loads, walk,
                            rd_of=rd_of, point_units=point_units, ceiling=ceiling):
                    alive[c] = False
                    released.append(codes[c])
                    break
            else:
                break
    keep = np.flatnonzero(alive)
    remap = np.full(k, -1, dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    compact = remap[labels]
    tours = tour_m[keep]
    repair_walks(adj, compact, base, walk_min, tours, walk, floor=low, ceiling=ceiling,
                 largest_first=True, max_moves=n, allowed=rule(rd_of[keep]))
    order, naive = walking_routes(walks, compact, len(keep), inhabited=inhabited)
    # The walk to the point of each RD that gained or lost units, along the unit graph.
    unit_rd, planned_rd = rd_of[keep][compact], rd_of[start]
    changed = sorted(set(unit_rd[unit_rd != planned_rd].tolist())
                     | set(planned_rd[unit_rd != planned_rd].tolist()))
    rd_walks: dict[str, tuple[float, float]] = {}
    for r in changed:
        members = np.flatnonzero((unit_rd == r) & (residents > 0))
        if not len(members):
            rd_walks[rd_names[r]] = (0.0, 0.0)
            continue
        metres = walks.between(members, np.array([points[rd_names[r]]]))[:, 0]
        rd_walks[rd_names[r]] = (float(np.average(metres, weights=residents[members])),
                                 float(metres.max()))
    return _Replan(
        codes=[codes[c] for c in keep], labels=compact, walk_min=walk_min, tour_m=tours,
        visit_order=order, naive_m=naive, released=released,
        moved=int((keep[compact] != start).sum()), before=before, rd_walks=rd_walks,
    )


def _release(cd: int, adj: sp.csr_matrix, full: sp.csr_matrix, labels: np.ndarray,
             base: np.ndarray, walk_min: np.ndarray, tour_m: np.ndarray, loads: np.ndarray,
             walk: TourWalk, *, rd_of: np.ndarray, point_units: set[int],
             ceiling: float) -> bool:
    """Give every unit of ``cd`` to neighbouring CDs of its ID (edges of ``adj``), the
    least loaded first; keep this only if none of them then passes the ceiling and the
    CD's RD stays whole (a point unit only joins a CD of its own RD). Updates ``labels``,
    ``walk_min``, ``tour_m`` and ``loads`` in place when kept."""
    saved = labels.copy(), walk_min.copy(), tour_m.copy(), loads.copy()

    def undo() -> bool:
        labels[:], walk_min[:], tour_m[:], loads[:] = saved
        return False

    pending = set(np.flatnonzero(labels == cd).tolist())
    weight = base + walk_min
    estimate = loads.copy()
    takers: set[int] = set()
    while pending:
        best: tuple[float, int, int] | None = None
        for unit in sorted(pending):
            for there in adj.indices[adj.indptr[unit]:adj.indptr[unit + 1]].tolist():
                if there in pending:
                    continue
                sink = int(labels[there])
                if unit in point_units and rd_of[sink] != rd_of[cd]:
                    continue
                option = (float(estimate[sink] + weight[unit]), unit, sink)
                if best is None or option < best:
                    best = option
        if best is None:  # nothing left borders a CD that may take it
            return undo()
        _, unit, sink = best
        labels[unit] = sink
        estimate[sink] += weight[unit]
        pending.discard(unit)
        takers.add(sink)
    if not _connected(full, np.flatnonzero(rd_of[labels] == rd_of[cd])):
        return undo()
    for sink in sorted(takers):
        members = np.flatnonzero(labels == sink)
        tour_m[sink], walk_min[members] = walk(members)
        loads[sink] = float((base[members] + walk_min[members]).sum())
    if any(loads[sink] > ceiling + _EPS for sink in takers):
        return undo()
    tour_m[cd], loads[cd] = 0.0, 0.0
    return True


# ---------------------------------------------------------------- the new plan


def followup(
    layers: PlanLayers,
    responses: pd.DataFrame,
    *,
    config: Config,
    summary: dict[str, Any],
    slack: float = DEFAULT_SLACK,
    as_of: date | None = None,
    progress: bool = False,
) -> PlanResult:
    """The door-to-door plan after online self-response (see the module docstring).

    Parameters
    ----------
    layers, summary, config
        The plan as written (see :func:`read_followup_plan`).
    responses
        Stage-2 records (see :func:`read_responses`); only online answers count.
    slack
        A CD is rebalanced when its workload falls below ``floor × (1 − slack)`` or
        rises above its ceiling.
    as_of
        Count only online answers submitted up to the end of this day.

    Returns
    -------
    PlanResult
        The new plan: the units layer has ``households_remaining``; the summary has a
        ``followup`` section with ``units_moved``, ``interviewers_released`` and
        ``interviewers_short``.

    Raises
    ------
    DistrictingError
        If ``slack`` is outside [0, 1), or the plan does not pass ``check``.
    """
    if not 0.0 <= slack < 1.0:
        raise DistrictingError(f"slack must be in [0, 1), got {slack}")
    started = time.monotonic()
    report = check_layers(layers.as_dict())
    if not report.ok:
        first = report.violations[0]
        raise DistrictingError(f"the plan does not pass check ({len(report.violations)} "
                               f"violation(s), first: {first.kind}: {first.message}); "
                               "a follow-up needs a valid plan")
    units = layers.units.reset_index(drop=True)
    cds = layers.counting_districts.reset_index(drop=True)
    coverage = online_coverage(responses, units, as_of=as_of)
    households = np.round(pd.to_numeric(units["households"], errors="coerce").fillna(0)
                          .to_numpy(dtype=float)).astype(np.int64)
    remaining = np.maximum(households - coverage.responded, 0)
    base = remaining_workload(units, remaining, config=config)
    replans = _replan(layers, units, cds, base=base, inhabited=remaining > 0, slack=slack,
                      config=config, progress=progress)
    new_layers, notes = _new_layers(layers, units, cds, replans, base=base,
                                    remaining=remaining, slack=slack, config=config)
    check = check_layers(new_layers.as_dict())
    if not check.ok:
        raise PlanCheckError(f"{v.kind}: {v.message}" for v in check.violations)
    before, after = len(cds), len(new_layers.counting_districts)
    short = _interviewers_short(new_layers.counting_districts)
    moved = sum(r.moved for r in replans.values())
    share = (pd.to_numeric(units["online_share"], errors="coerce").fillna(0).to_numpy(float)
             if "online_share" in units.columns else np.zeros(len(units)))
    new_cds = new_layers.counting_districts
    low = cds["workload_floor"].to_numpy(float) * (1 - slack)
    planned = {code: load for r in replans.values() for code, load in r.before.items()}
    loads = np.array([planned[c] for c in cell_texts(cds["cd_code"])])
    section = {
        "format": FORMAT,
        "as_of": as_of.isoformat() if as_of else None,
        "slack": slack,
        "responses": coverage.counts,
        "households": {
            "expected": int(households.sum()),
            "planned_visits": round(float((households * (1 - share)).sum()), 1),
            "responded_online": int(np.minimum(coverage.responded, households).sum()),
            "beyond_register": int(np.maximum(coverage.responded - households, 0).sum()),
            "remaining": int(remaining.sum()),
        },
        "workload_total": {
            "planned": round(float(cds["workload"].sum()), 1),
            "followup": round(float(new_cds["workload"].sum()), 1),
        },
        "cds_far_below_floor_before": int((loads < low - _EPS).sum()),
        "cds_above_ceiling_before": int(
            (loads > cds["workload_ceiling"].to_numpy(float) + _EPS).sum()),
        "units_total": len(units),
        "units_moved": moved,
        "units_moved_share": round(moved / max(len(units), 1), 4),
        "counting_districts_before": before,
        "counting_districts_after": after,
        "interviewers_released": before - after,
        "interviewers_short": short,
        "released_cds": sorted(code for r in replans.values() for code in r.released),
        "cds_outside_bounds": int((new_cds["bound_exception"] != "").sum()),
        "cds_above_ceiling_after": int(
            (new_cds["workload"] > new_cds["workload_ceiling"] + _EPS).sum()),
        "cds_far_below_floor_after": int(
            (new_cds["workload"] < new_cds["workload_floor"] * (1 - slack) - _EPS).sum()),
    }
    record = dict(summary)
    record.update({
        "software": {"name": "districting", "version": __version__},
        **district_statistics(new_layers, config=config),
    })
    for entry in record.get("settlements", []):
        mine = new_cds[new_cds["settlement_id"].astype(str) == str(entry.get("settlement_id"))]
        entry["counting_districts"] = len(mine)
    record["followup"] = section
    record["warnings"] = notes
    record["runtime_seconds"] = round(time.monotonic() - started, 2)
    for line in notes:
        logger.warning(line)
    return PlanResult(layers=new_layers, summary=record, warnings=notes, config=config)


def _replan(layers: PlanLayers, units: pd.DataFrame, cds: pd.DataFrame, *, base: np.ndarray,
            inhabited: np.ndarray, slack: float, config: Config,
            progress: bool) -> dict[str, _Replan]:
    """:func:`_replan_settlement` for each settlement, by settlement_id."""
    unit_sid = cell_texts(units["settlement_id"])
    unit_cd = cell_texts(units["cd_code"])
    position = {u: i for i, u in enumerate(cell_texts(units["unit_id"]))}
    adjacency = layers.unit_adjacency
    ends = np.array([[position.get(u, -1), position.get(v, -1)] for u, v in
                     zip(cell_texts(adjacency["u"]), cell_texts(adjacency["v"]), strict=True)],
                    dtype=np.int64).reshape(-1, 2)
    lengths = pd.to_numeric(adjacency["length_m"], errors="coerce").fillna(0).to_numpy(float)
    xy = shapely.get_coordinates(units.geometry.to_numpy())
    cd_sid = cell_texts(cds["settlement_id"])
    residents = pd.to_numeric(units["residents"], errors="coerce").fillna(0).to_numpy(float)
    buildings = cell_texts(units["building_id"])
    rds = layers.registration_districts
    point_building = dict(zip(cell_texts(rds["rd_code"]), cell_texts(rds["point_building_id"]),
                              strict=True))
    # Each settlement's units, CDs and edges, found once (not by a scan per settlement).
    rows_of = pd.Series(np.arange(len(units))).groupby(unit_sid, sort=True).indices
    local = np.zeros(len(units), dtype=np.int64)  # a unit's number in its settlement
    for pos in rows_of.values():
        local[pos] = np.arange(len(pos))
    known = (ends >= 0).all(axis=1)
    edge_sid = np.where(known, unit_sid[np.maximum(ends[:, 0], 0)], "")
    edge_sid = np.where(known & (unit_sid[np.maximum(ends[:, 1], 0)] == edge_sid), edge_sid, "")
    edges_of = pd.Series(np.arange(len(ends))).groupby(edge_sid).indices
    cds_of = pd.Series(np.arange(len(cds))).groupby(cd_sid).indices
    none = np.zeros(0, dtype=np.int64)
    out: dict[str, _Replan] = {}
    for sid in tqdm(list(rows_of), desc="follow-up", unit="settlement", disable=not progress,
                    leave=False):
        pos = np.asarray(rows_of[sid], dtype=np.int64)
        inside = np.asarray(edges_of.get(sid, none), dtype=np.int64)
        rows = cds.iloc[np.asarray(cds_of.get(sid, none), dtype=np.int64)].sort_values(
            "cd_code", kind="stable")
        codes = cell_texts(rows["cd_code"]).tolist()
        index = {code: i for i, code in enumerate(codes)}
        points = {}
        for rd in sorted(set(cell_texts(rows["rd_code"]).tolist())):
            at = np.flatnonzero(buildings[pos] == point_building.get(rd, ""))
            if not len(at):
                raise DistrictingError(f"RD {rd}: its point building "
                                       f"{point_building.get(rd, '')!r} is not among the "
                                       f"units of settlement {sid}")
            points[rd] = int(at[0])
        out[sid] = replace(_replan_settlement(
            xy=xy[pos], edges=local[ends[inside]], lengths=lengths[inside], base=base[pos],
            inhabited=inhabited[pos], residents=residents[pos], points=points,
            start=np.array([index[c] for c in unit_cd[pos]], dtype=np.int64), codes=codes,
            cd_id=cell_texts(rows["id_code"]).tolist(), cd_rd=cell_texts(rows["rd_code"]).tolist(),
            floor=float(rows["workload_floor"].iloc[0]),
            ceiling=float(rows["workload_ceiling"].iloc[0]), slack=slack, config=config,
        ), positions=pos)
    return out


def _interviewers_short(cds: pd.DataFrame) -> int:
    """Interviewers missing where an ID's work no longer fits its CDs under the ceiling."""
    short = 0
    for _, group in cds.groupby("id_code", sort=True):
        ceiling = float(group["workload_ceiling"].iloc[0])
        need = math.ceil(float(group["workload"].sum()) / ceiling - 1e-9) if ceiling > 0 else 0
        short += max(0, need - len(group))
    return short


def _new_layers(layers: PlanLayers, units: pd.DataFrame, cds: pd.DataFrame,
                replans: dict[str, _Replan], *, base: np.ndarray, remaining: np.ndarray,
                slack: float, config: Config) -> tuple[PlanLayers, list[str]]:
    """The plan's layers with the follow-up's units, CDs and the totals above them."""
    n, crs = len(units), units.crs
    unit_sid = cell_texts(units["settlement_id"])
    old_cd = cell_texts(units["cd_code"])
    new_cd = old_cd.copy()
    walk_min, visit = np.zeros(n), np.zeros(n, dtype=np.int64)
    tour: dict[str, float] = {}
    naive: dict[str, float] = {}
    for replan in replans.values():
        pos = replan.positions
        new_cd[pos] = np.array(replan.codes, dtype=object)[replan.labels]
        walk_min[pos], visit[pos] = replan.walk_min, replan.visit_order
        tour.update(zip(replan.codes, replan.tour_m.tolist(), strict=True))
        naive.update(zip(replan.codes, replan.naive_m.tolist(), strict=True))
    workload = np.round(base + walk_min, 3)
    rd_of_cd = dict(zip(cell_texts(cds["cd_code"]), cell_texts(cds["rd_code"]), strict=True))
    new_rd = np.array([rd_of_cd[c] for c in new_cd], dtype=object)
    fields = list(LAYER_FIELDS["units"])
    fields.insert(fields.index("households") + 1, "households_remaining")
    frame = units.assign(households_remaining=remaining.astype(np.int64), workload=workload,
                         walk_min=np.round(walk_min, 3), cd_code=new_cd, rd_code=new_rd,
                         visit_order=visit)
    new_units = gpd.GeoDataFrame(frame[fields], geometry=units.geometry.to_numpy(), crs=crs)

    # Territories: a CD that gained or lost units is the union of its units' tiles.
    moved = old_cd != new_cd
    touched = sorted(set(old_cd[moved].tolist()) | set(new_cd[moved].tolist()))
    tiles = _unit_tiles(layers, units, sorted(set(unit_sid[moved].tolist())), old_cd,
                        touched=touched, config=config)
    released = {code for replan in replans.values() for code in replan.released}
    capacity = (config.counting.capacity_minutes if config.workload.basis == "workload"
                else config.counting.target_residents)
    groups = pd.Series(np.arange(n)).groupby(new_cd).indices
    notes = [f"follow-up: CD {code} is released; its units joined neighbouring CDs of its "
             "instructor and registration district" for code in sorted(released)]
    rows, shapes = [], []
    for row in cds.to_dict("records"):
        code = str(row["cd_code"])
        if code in released:
            continue
        members = np.asarray(groups.get(code, []), dtype=np.int64)
        value = round(float(workload[members].sum()), 3)
        reason = _cd_exception(value, floor=float(row["workload_floor"]),
                               ceiling=float(row["workload_ceiling"]), slack=slack,
                               planned=str(row.get("bound_exception") or ""))
        if reason:
            notes.append(f"CD {code}: {reason}")
        rows.append({
            **{f: row[f] for f in LAYER_FIELDS["counting_districts"]},
            "n_units": len(members),
            "dwellings": int(units["dwellings"].to_numpy()[members].sum()),
            "residents": int(units["residents"].to_numpy()[members].sum()),
            "workload": value,
            "utilization": round(value / capacity, 4),
            "bound_exception": reason,
            "walk_min": round(float(walk_min[members].sum()), 3),
            "tour_m": round(tour.get(code, 0.0), 1),
            "naive_m": round(naive.get(code, 0.0), 1),
        })
        shapes.append(dissolve(tiles[members], np.zeros(len(members), dtype=np.int64), 1)[0]
                      if code in touched else row["geometry"])
    new_cds = gpd.GeoDataFrame(pd.DataFrame(rows, columns=LAYER_FIELDS["counting_districts"]),
                               geometry=shapes, crs=crs)
    new_ids, id_notes = _instructor_rows(layers.instructor_districts, new_cds, config=config)
    notes += id_notes
    rds = _registration_rows(layers.registration_districts, new_cds,
                             {code: w for r in replans.values() for code, w in r.rd_walks.items()})
    settlements = layers.settlements.copy()
    sums = pd.Series(workload).groupby(unit_sid).sum()
    settlements["workload"] = (pd.Series(cell_texts(settlements["settlement_id"]))
                               .map(sums).fillna(0.0).round(3).to_numpy())
    return PlanLayers(
        units=new_units, counting_districts=new_cds, instructor_districts=new_ids,
        registration_districts=rds, registration_points=layers.registration_points,
        unit_adjacency=layers.unit_adjacency, settlements=settlements,
    ), notes


def _unit_tiles(layers: PlanLayers, units: pd.DataFrame, settlements: list[str],
                old_cd: np.ndarray, *, touched: list[str], config: Config) -> np.ndarray:
    """The territory tile of each unit of the given settlements (``None`` elsewhere).

    With ``graph.contiguity: tiles`` these are the planner's own tiles: the Voronoi
    cells of the units' points within the settlement's territory. With ``rook`` the
    footprints are not in the plan, so each unit of a ``touched`` CD gets its Voronoi
    cell within that CD's planned territory instead.
    """
    tiles = np.empty(len(units), dtype=object)
    points = units.geometry.to_numpy()
    unit_sid = cell_texts(units["settlement_id"])
    if config.graph.contiguity == "tiles":
        shape = dict(zip(cell_texts(layers.settlements["settlement_id"]),
                         layers.settlements.geometry.to_numpy(), strict=True))
        for sid in settlements:
            pos = np.flatnonzero(unit_sid == sid)
            tiles[pos] = voronoi_tiles(np.asarray(spread_duplicate_points(points[pos])),
                                       shape[sid])
        return tiles
    cds = layers.counting_districts
    planned = dict(zip(cell_texts(cds["cd_code"]), cds.geometry.to_numpy(), strict=True))
    for code in touched:
        members = np.flatnonzero(old_cd == code)
        tiles[members] = voronoi_tiles(np.asarray(spread_duplicate_points(points[members])),
                                       planned[code])
    return tiles


def _registration_rows(rds: gpd.GeoDataFrame, cds: gpd.GeoDataFrame,
                       walks: dict[str, tuple[float, float]]) -> gpd.GeoDataFrame:
    """RDs with their CDs' counts and residents; an RD whose units changed (``walks``
    names it) gets its territory from its CDs and its walks to the point anew."""
    out = rds.copy()
    per_rd = cds.groupby("rd_code")
    out["n_cd"] = out["rd_code"].map(per_rd.size()).fillna(0).astype(int)
    out["residents"] = out["rd_code"].map(per_rd["residents"].sum()).fillna(0).astype(int)
    codes = cell_texts(out["rd_code"])
    geometry = out.geometry.to_numpy().copy()
    for i, code in enumerate(codes):
        if code not in walks:
            continue
        out.loc[out.index[i], "mean_walk_m"] = round(walks[code][0], 1)
        out.loc[out.index[i], "max_walk_m"] = round(walks[code][1], 1)
        mine = cds.geometry.to_numpy()[cell_texts(cds["rd_code"]) == code]
        geometry[i] = dissolve(mine, np.zeros(len(mine), dtype=np.int64), 1)[0]
    return out.set_geometry(gpd.GeoSeries(geometry, index=out.index, crs=out.crs))


def _cd_exception(value: float, *, floor: float, ceiling: float, slack: float,
                  planned: str) -> str:
    """Why a CD's workload after the answers is outside its bounds ("" when inside)."""
    if floor - _EPS <= value <= ceiling + _EPS:
        return ""
    if value > ceiling:
        text = (f"after online self-response its workload {value:.0f} is above the ceiling "
                f"{ceiling:.0f}, and no unit can move to a neighbouring CD of its instructor "
                "district within bounds")
    elif value >= floor * (1 - slack) - _EPS:
        text = (f"after online self-response its workload {value:.0f} is below the floor "
                f"{floor:.0f}, but within the follow-up slack ({slack:.0%} of the floor); "
                "left as planned")
    else:
        text = (f"after online self-response its workload {value:.0f} is far below the floor "
                f"{floor:.0f}, and neither releasing a CD of its instructor district nor moving "
                "units to it keeps the other CDs within bounds")
    return f"{text} (as planned: {planned})" if planned else text


def _instructor_rows(ids: gpd.GeoDataFrame, cds: gpd.GeoDataFrame, *,
                     config: Config) -> tuple[gpd.GeoDataFrame, list[str]]:
    """IDs with their CDs' counts and totals, and their exceptions against the norms."""
    out = ids.copy()
    per_id = cds.groupby("id_code")
    out["n_cd"] = out["id_code"].map(per_id.size()).fillna(0).astype(int)
    out["residents"] = out["id_code"].map(per_id["residents"].sum()).fillna(0).astype(int)
    out["workload"] = out["id_code"].map(per_id["workload"].sum()).fillna(0.0).round(3)
    notes: list[str] = []
    exceptions = np.empty(len(out), dtype=object)
    sid = cell_texts(out["settlement_id"])
    for settlement in sorted(set(sid.tolist())):
        rows = np.flatnonzero(sid == settlement)
        totals = out["workload"].to_numpy(float)[rows]
        mean = float(totals.sum()) / len(rows)
        tolerance = config.instructor.tolerance
        found = id_exceptions(out["n_cd"].to_numpy()[rows], totals,
                              bounds=(mean * (1 - tolerance), mean * (1 + tolerance)),
                              config=config,
                              n_cds=int((cell_texts(cds["settlement_id"]) == settlement).sum()))
        exceptions[rows] = found
    out["span_exception"] = exceptions
    for code, reason in zip(out["id_code"], out["span_exception"], strict=True):
        if reason:
            notes.append(f"ID {code}: {reason}")
    return out, notes


# ---------------------------------------------------------------- running


def run_followup(
    plan_dir: str | Path,
    response_paths: Sequence[str | Path],
    *,
    out_dir: str | Path,
    slack: float = DEFAULT_SLACK,
    as_of: date | None = None,
    lang: str = "ru",
    title: str | None = None,
    tiles: str | None = None,
    progress: bool = False,
) -> PlanResult:
    """Read a plan and the responses, re-plan the door-to-door round and write a new plan
    folder under the same output contract (``districting check`` passes on it).

    The output folder must not be the plan's own folder or hold a responses file.
    """
    gpkg = Path(plan_dir) / "plan.gpkg"
    inputs = (Path(plan_dir), *(Path(p) for p in response_paths))
    check_output_folder(Path(out_dir), inputs, kind="plan")  # before re-planning: refuse early
    layers, summary, config = read_followup_plan(plan_dir)
    responses = read_responses(response_paths)
    result = followup(layers, responses, config=config, summary=summary, slack=slack,
                      as_of=as_of, progress=progress)
    result.summary["followup"]["plan_sha256"] = hashlib.sha256(gpkg.read_bytes()).hexdigest()
    result.summary["followup"]["response_files"] = [Path(p).name for p in response_paths]
    write_plan(result, out_dir, title=title or TITLES.get(lang, TITLES["en"]), lang=lang,
               inputs=inputs, config=config, tiles=tiles)
    return result
