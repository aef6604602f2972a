"""The census hierarchy of one settlement: counting, instructor and registration districts.

Counting districts (CDs) partition the unit graph within hard workload bounds;
instructor districts (IDs) group contiguous whole CDs within a span of control;
registration districts (RDs) gather whole CDs around chosen stationary points.
Codes read ``<settlement>-<ID>-<CD>``, for example ``431010000-07-045``.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely

from districting.config import Config
from districting.errors import PartitionError
from districting.graph import SettlementGraph
from districting.network import Walks
from districting.partition import adjacency_from_edges, partition_arrays
from districting.registration import capacitated_p_median, point_capacity, point_count
from districting.workload import district_target, tour_minutes

logger = logging.getLogger(__name__)

#: Walks one CD's tour: given its units (local positions), the tour's length in metres
#: and each unit's walking minutes (its share of the tour).
TourWalk = Callable[[np.ndarray], tuple[float, np.ndarray]]
#: Whether a unit may move between two CDs: (labels, unit, its CD, the CD it would join).
MoveRule = Callable[[np.ndarray, int, int, int], bool]

FUNCTION_LABELS = {
    "public_service_centre": "ЦОН",
    "akimat": "акимат",
    "school": "школа",
    "post_office": "почта",
}


@dataclass
class SettlementPlan:
    """Districts of one settlement; CDs, IDs and RDs are numbered in code order."""

    settlement_id: str
    cd_of_node: np.ndarray
    id_of_cd: np.ndarray
    rd_of_cd: np.ndarray
    cd_exception: list[str]
    id_exception: list[str]
    rd_point_position: list[int]
    rd_point_name: list[str]
    #: Residents' mean (weighted by residents) and longest walk to each RD's point, metres.
    rd_mean_walk_m: list[float]
    rd_max_walk_m: list[float]
    floor: float
    ceiling: float
    #: How good the registration points are known to be (see :class:`PointPlan`).
    rd_status: str = ""
    notes: list[str] = field(default_factory=list)
    #: Each CD's walking tour in metres, and each unit's walking minutes (its share of
    #: its CD's tour); zeros when the plan was made without walking tours.
    tour_m: np.ndarray = field(default_factory=lambda: np.zeros(0))
    walk_min: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: Units moved between CDs to bring a CD's workload with its tour within bounds.
    walk_moves: int = 0
    #: Each unit's place in its CD's walking route (1, 2, …; 0 for a unit with no
    #: households, which is not visited), and each CD's length walked in register order.
    visit_order: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    naive_m: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: The CDs', IDs' and RDs' territories, when dissolved where the plan was made (a
    #: worker process); ``None`` leaves them to be dissolved when the layers are built.
    territories: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def cd_code(self, cd: int) -> str:
        return f"{self.id_code(int(self.id_of_cd[cd]))}-{cd + 1:03d}"

    def id_code(self, index: int) -> str:
        return f"{self.settlement_id}-{index + 1:02d}"

    def rd_code(self, index: int) -> str:
        return f"{self.settlement_id}-R{index + 1:02d}"


def settlement_seed(seed: int, settlement_id: str) -> int:
    """A per-settlement seed that does not depend on the order settlements are planned."""
    return (seed * 1_000_003 + zlib.crc32(settlement_id.encode("utf-8"))) % (2**32)


def count_range(total: float, lower: float, upper: float) -> tuple[int, int]:
    """The smallest and largest number of parts whose mean weight fits the bounds."""
    smallest = max(1, math.ceil(total / upper - 1e-9)) if upper > 0 else 1
    largest = math.floor(total / lower + 1e-9) if lower > 0 else smallest
    return smallest, largest


def choose_count(total: float, target: float, lower: float, upper: float) -> tuple[int, bool]:
    """Number of parts nearest ``total / target`` that the bounds allow, and whether any does."""
    smallest, largest = count_range(total, lower, upper)
    if smallest > largest:
        return smallest, False
    return min(max(round(total / target), smallest), largest), True


def reading_order(xy: np.ndarray, *, band_m: float = 300.0) -> np.ndarray:
    """Indices ordering points north to south in bands, then west to east."""
    if len(xy) == 0:
        return np.empty(0, dtype=np.int64)
    band = np.floor((xy[:, 1].max() - xy[:, 1]) / band_m)
    return np.lexsort((xy[:, 1] * -1, xy[:, 0], band))


def quotient_adjacency(adj: sp.csr_matrix, labels: np.ndarray, k: int) -> sp.csr_matrix:
    """Adjacency between parts: two parts touch when an edge joins them."""
    coo = adj.tocoo()
    a, b = labels[coo.row], labels[coo.col]
    keep = a != b
    matrix = sp.csr_matrix((np.ones(int(keep.sum())), (a[keep], b[keep])), shape=(k, k))
    matrix.data[:] = 1
    return matrix


def plan_settlement(
    graph: SettlementGraph,
    units: pd.DataFrame,
    *,
    config: Config,
    seed: int,
    walk_proxy: np.ndarray | None = None,
    walks: Walks | None = None,
) -> SettlementPlan:
    """Counting, instructor and registration districts of one settlement.

    ``units["workload"]`` is each unit's workload without walking. CDs are drawn with
    ``walk_proxy`` added (each unit's walk from its nearest neighbour); when ``walks``
    is given, each CD's own walking tour through its inhabited units then replaces
    the proxy, units are moved between CDs where the tour puts a CD outside its
    bounds, and registration points are chosen on walking distances.
    """
    sid = graph.settlement_id
    rng_seed = settlement_seed(seed, sid)
    local = units.iloc[graph.positions]
    base = local["workload"].to_numpy(dtype=float)
    workload = base + (walk_proxy if walk_proxy is not None else 0.0)
    xy = shapely.get_coordinates(local.geometry.to_numpy())
    adj = graph.adjacency()
    target = district_target(workload=config.workload, counting=config.counting)
    tol = config.counting.tolerance
    floor, ceiling = target * (1 - tol), target * (1 + tol)
    notes: list[str] = []

    capped = np.minimum(workload, ceiling)
    cd_adj_units = adj
    if config.graph.components == "separate" and graph.components:
        cd_adj_units = _separate_parts(graph, workload, floor)
    else:
        for note in graph.components:
            note.action += "; its CDs may cross the barrier (graph.components: bridge)"
    regions = _planning_regions(cd_adj_units)
    labels = np.empty(graph.n, dtype=np.int64)
    region_total: list[float] = []
    region_feasible: list[bool] = []
    k = 0
    for region in np.unique(regions).tolist():
        members = np.flatnonzero(regions == region)
        part, part_k, feasible, timed_out = _split_region(
            cd_adj_units[members][:, members], capped[members], target=target, floor=floor,
            ceiling=ceiling, tol=tol, seed=rng_seed + region, time_limit=config.time_limit,
        )
        labels[members] = part + k
        k += part_k
        region_total += [float(workload[members].sum())] * part_k
        region_feasible += [feasible] * part_k
        if not feasible:
            notes.append(
                f"settlement {sid}: workload {workload[members].sum():.0f} cannot be divided "
                f"into whole CDs within [{floor:.0f}, {ceiling:.0f}]; planned {part_k} CD(s) "
                "under the ceiling"
            )
        if timed_out:
            notes.append(f"settlement {sid}: the CD search hit the {config.time_limit:.0f} s "
                         "time limit; the plan may differ on a faster or slower machine")

    tour_m, walk_min, moves = np.zeros(k), np.zeros(graph.n), 0
    if walks is not None:
        walk = tour_walk(walks, local["households"].to_numpy() > 0, config=config)
        for c in range(k):
            members = np.flatnonzero(labels == c)
            tour_m[c], walk_min[members] = walk(members)
        moves = repair_walks(cd_adj_units, labels, base, walk_min, tour_m, walk,
                              floor=floor, ceiling=ceiling)
        workload = base + walk_min
        if moves:
            notes.append(f"settlement {sid}: {moves} unit(s) moved between CDs to keep each "
                         "CD's workload with its walking tour within bounds")
    cd_workload = np.bincount(labels, weights=workload, minlength=k)
    cd_adj = quotient_adjacency(adj, labels, k)
    id_labels, id_exception, id_late = _instructor_districts(cd_adj, cd_workload,
                                                             config=config, seed=rng_seed)
    if id_late:
        notes.append(f"settlement {sid}: the ID search hit the {config.time_limit:.0f} s time "
                     "limit; the IDs may differ on a faster or slower machine")
    n_id = int(id_labels.max()) + 1

    # Number IDs in reading order, then CDs in reading order within each ID.
    cd_xy = np.vstack([xy[labels == c].mean(axis=0) for c in range(k)])
    id_xy = np.vstack([cd_xy[id_labels == i].mean(axis=0) for i in range(n_id)])
    id_rank = np.empty(n_id, dtype=np.int64)
    id_rank[reading_order(id_xy)] = np.arange(n_id)
    within = np.empty(k, dtype=np.int64)
    within[reading_order(cd_xy)] = np.arange(k)
    cd_order = np.lexsort((within, id_rank[id_labels]))
    cd_rank = np.empty(k, dtype=np.int64)
    cd_rank[cd_order] = np.arange(k)
    id_exception = [id_exception[i] for i in np.argsort(id_rank)]

    cd_of_node = cd_rank[labels]
    id_of_cd = id_rank[id_labels][cd_order]
    cd_xy, cd_workload = cd_xy[cd_order], cd_workload[cd_order]
    cd_adj = quotient_adjacency(adj, cd_of_node, k)
    residents = np.bincount(cd_of_node, weights=local["residents"].to_numpy(float), minlength=k)

    walks = walks or Walks(xy, None)
    visit_order, naive_m = walking_routes(walks, cd_of_node, k,
                                   inhabited=local["households"].to_numpy() > 0)
    points = _registration_districts(
        cd_adj, residents, local, cd_of_node, walks, config=config, sid=sid
    )
    notes.extend(points.notes)
    tour_m = tour_m[cd_order]
    exceptions = _cd_exceptions(
        cd_workload, floor, ceiling, local, workload, cd_of_node,
        np.array(region_feasible)[cd_order], np.array(region_total)[cd_order],
        split_by_barriers=len(np.unique(regions)) > 1, tour_m=tour_m,
    )
    return SettlementPlan(
        settlement_id=sid,
        cd_of_node=cd_of_node,
        id_of_cd=id_of_cd,
        rd_of_cd=points.rd_of_cd,
        cd_exception=exceptions,
        id_exception=id_exception,
        rd_point_position=[int(graph.positions[p]) for p in points.nodes],
        rd_point_name=points.names,
        rd_mean_walk_m=points.mean_walk_m,
        rd_max_walk_m=points.max_walk_m,
        rd_status=points.status,
        floor=floor,
        ceiling=ceiling,
        notes=notes,
        tour_m=tour_m,
        walk_min=walk_min,
        walk_moves=moves,
        visit_order=visit_order,
        naive_m=naive_m,
    )


def _planning_regions(adj: sp.csr_matrix) -> np.ndarray:
    """The connected parts of the graph CDs are drawn on (one, unless barriers separate)."""
    from scipy.sparse.csgraph import connected_components

    _, labels = connected_components(adj, directed=False)
    return np.asarray(labels, dtype=np.int64)


def _separate_parts(
    graph: SettlementGraph, workload: np.ndarray, floor: float
) -> sp.csr_matrix:
    """The graph CDs are drawn on when parts cut off by barriers are planned separately.

    Bridged edges are dropped, except those that join a part too small to fill one CD
    (below the floor, for example a few houses or only non-residential buildings) to
    its neighbour: such a part shares a CD across the barrier instead of getting an
    empty one. Each part's note says which way it went.
    """
    own = _planning_regions(graph.adjacency(kinds=("adjacent",)))
    part_workload = np.bincount(own, weights=workload)
    small = part_workload < floor - 1e-9
    for note in graph.components:
        part = own[note.node]
        if small[part]:
            note.action += (f"; needing only {part_workload[part]:.0f} of the {floor:.0f} "
                            "minimum for a CD, it shares a CD across the barrier")
        else:
            note.action += "; it gets its own CDs, none crossing the barrier"
    bridged = graph.edge_kind == "bridged"
    keep = ~bridged | small[own[graph.edges[:, 0]]] | small[own[graph.edges[:, 1]]]
    return adjacency_from_edges(graph.n, graph.edges[keep])


def walking_routes(walks: Walks, cd_of_node: np.ndarray, k: int, *,
            inhabited: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each unit's place in its CD's walking route through the inhabited units, and
    each CD's length walked in register order instead (for comparison)."""
    order = np.zeros(len(cd_of_node), dtype=np.int64)
    naive = np.zeros(k)
    for cd in range(k):
        members = np.flatnonzero((cd_of_node == cd) & inhabited)
        route, _, naive[cd] = walks.route(members)
        order[members[route]] = np.arange(1, len(members) + 1)
    return order, naive


def tour_walk(walks: Walks, inhabited: np.ndarray, *, config: Config) -> TourWalk:
    """The tour of a CD through its inhabited units, in metres, and each unit's minutes."""

    def walk(members: np.ndarray) -> tuple[float, np.ndarray]:
        minutes = np.zeros(len(members))
        visited = np.flatnonzero(inhabited[members])
        length, share = walks.tour(members[visited])
        minutes[visited] = tour_minutes(share, norms=config.workload)
        return length, minutes

    return walk


def _stays_connected(adj: sp.csr_matrix, labels: np.ndarray, part: int, unit: int) -> bool:
    """Whether ``part`` stays connected, and not empty, without ``unit``."""
    members = set(np.flatnonzero(labels == part).tolist()) - {unit}
    if not members:
        return False
    start = min(members)
    seen, stack = {start}, [start]
    while stack:
        here = stack.pop()
        for there in adj.indices[adj.indptr[here]:adj.indptr[here + 1]].tolist():
            if there in members and there not in seen:
                seen.add(there)
                stack.append(there)
    return len(seen) == len(members)


#: Most unit moves the walking-tour repair makes in one settlement, and candidate moves
#: it walks (two tours each) per step.
WALK_MOVES = 200
WALK_TRIES = 12


def repair_walks(
    adj: sp.csr_matrix,
    labels: np.ndarray,
    base: np.ndarray,
    walk_min: np.ndarray,
    tour_m: np.ndarray,
    walk: TourWalk,
    *,
    floor: float,
    ceiling: float,
    largest_first: bool = False,
    max_moves: int = WALK_MOVES,
    allowed: MoveRule | None = None,
) -> int:
    """Move single units between neighbouring CDs until every CD's workload with its
    own walking tour lies within ``[floor, ceiling]``, or no move helps.

    A move takes a unit from one CD to a neighbouring CD; the CD it leaves must stay
    connected and not empty. Moves are tried smallest unit first (``largest_first``:
    largest first, for the fewest moves); the first few that fit by estimate are
    re-walked, and one is kept when both CDs end within bounds. Units without workload
    never move, nor does a move that ``allowed`` (given the labels before the move, the
    unit, its CD and the CD it would join) refuses. ``labels``, ``walk_min`` and
    ``tour_m`` are updated in place; returns the number of moves (at most ``max_moves``).
    """
    k = len(tour_m)
    indptr, indices = adj.indptr, adj.indices
    totals = np.bincount(labels, weights=base + walk_min, minlength=k)

    def inside(value: float) -> bool:
        return floor - 1e-6 <= value <= ceiling + 1e-6

    moves = 0
    for cd in range(k):
        while not inside(totals[cd]) and moves < max_moves:
            over = totals[cd] > ceiling
            weight = base + walk_min
            # Only the CD's own units (to give) or its neighbours' units (to take) can move.
            options = []
            for unit in np.flatnonzero(labels == cd).tolist():
                outside = [int(v) for v in indices[indptr[unit]:indptr[unit + 1]]
                           if labels[v] != cd]
                if over:
                    options += [(unit, cd, int(labels[v])) for v in outside]
                else:
                    options += [(v, int(labels[v]), cd) for v in outside]
            options = sorted(set(options))
            options = [
                (u, a, b) for u, a, b in options
                if weight[u] > 0 and inside(totals[a] - weight[u]) and inside(totals[b] + weight[u])
            ]
            sign = -1.0 if largest_first else 1.0
            options.sort(key=lambda o: (sign * weight[o[0]], o[0], o[2]))
            accepted = False
            for unit, source, sink in options[:WALK_TRIES]:
                if not _stays_connected(adj, labels, source, unit):
                    continue
                if allowed is not None and not allowed(labels, unit, source, sink):
                    continue
                labels[unit] = sink
                trial = {}
                for part in (source, sink):
                    members = np.flatnonzero(labels == part)
                    length, minutes = walk(members)
                    trial[part] = (members, length, minutes, float((base[members] + minutes).sum()))
                if inside(trial[source][3]) and inside(trial[sink][3]):
                    for part, (members, length, minutes, total) in trial.items():
                        tour_m[part], walk_min[members], totals[part] = length, minutes, total
                    moves += 1
                    accepted = True
                    break
                labels[unit] = source
            if not accepted:
                break
    return moves


def _split_region(
    adj: sp.csr_matrix,
    capped: np.ndarray,
    *,
    target: float,
    floor: float,
    ceiling: float,
    tol: float,
    seed: int,
    time_limit: float,
) -> tuple[np.ndarray, int, bool, bool]:
    """CDs of one connected region: labels, count, whether the bounds allow any count,
    and whether the time limit cut the search short."""
    k, feasible = choose_count(float(capped.sum()), target, floor, ceiling)
    k = min(k, adj.shape[0])
    lower = floor if feasible else min(floor, float(capped.sum()) / k * (1 - tol))
    labels, timed_out = _districts(adj, capped, k=k, lower=lower, upper=ceiling, seed=seed,
                                   time_limit=time_limit)
    return labels, k, feasible, timed_out


#: Heuristic starts per split (each one connected, within bounds where it can be, and
#: refined); the best is kept. Pair re-solves are left out to keep planning quick.
STARTS = 4
#: Small splits (see ``AUTO_EXACT_NODES``) get this many branch-and-bound nodes for a
#: proven optimum; a plan without the proof is not kept. Work, not seconds, so the plan
#: does not depend on the machine's speed or load (about 5 s on the largest splits).
EXACT_NODES = 200


def _districts(adj: sp.csr_matrix, weights: np.ndarray, *, k: int, lower: float, upper: float,
               seed: int, time_limit: float) -> tuple[np.ndarray, bool]:
    """Labels of ``k`` contiguous districts from the partition core (``method="auto"``:
    proven optimal for small splits, the heuristic's best start otherwise), and whether
    its time limit cut the search short.

    When no plan meets the bounds, the core's best attempt is kept (or, if the exact
    model proved the bounds impossible, a best-effort heuristic plan), so that each
    district outside the bounds can be reported with its reason.
    """
    if k == 1:
        return np.zeros(adj.shape[0], dtype=np.int64), False
    edges = np.stack(sp.triu(adj, k=1).nonzero(), axis=1)
    plan = partition_arrays(edges, weights, k, lower=lower, upper=upper, method="auto",
                            time_limit=time_limit, seed=seed, starts=STARTS, polish=False,
                            exact_nodes=EXACT_NODES, keep_unproven=False, best_effort=True)
    assert plan.labels is not None  # best_effort: a plan, or the heuristic's best attempt
    return plan.labels, plan.timed_out


def _cd_exceptions(
    cd_workload: np.ndarray,
    floor: float,
    ceiling: float,
    local: pd.DataFrame,
    workload: np.ndarray,
    cd_of_node: np.ndarray,
    feasible: np.ndarray,
    region_total: np.ndarray,
    *,
    split_by_barriers: bool,
    tour_m: np.ndarray,
) -> list[str]:
    """For each CD, an empty string or the reason its workload is outside the bounds."""
    reasons = []
    heavy = workload > ceiling
    for cd, value in enumerate(cd_workload):
        if floor - 1e-6 <= value <= ceiling + 1e-6:
            reasons.append("")
            continue
        members = np.flatnonzero(cd_of_node == cd)
        oversized = members[heavy[members]]
        if len(oversized):
            ids = ", ".join(local["building_id"].iloc[oversized].astype(str))
            reasons.append(
                f"building {ids} alone needs {workload[oversized].max():.0f} min, above the "
                f"ceiling {ceiling:.0f}, and has too few dwellings to split"
            )
        elif region_total[cd] < floor:
            where = ("the part of the settlement cut off by barriers" if split_by_barriers
                     else "the whole settlement")
            reasons.append(
                f"{where} needs only {region_total[cd]:.0f} min, below the floor {floor:.0f}"
            )
        elif not feasible[cd]:
            where = "its part of the settlement" if split_by_barriers else "the settlement"
            reasons.append(
                f"{where} needs {region_total[cd]:.0f} min, which cannot be divided into whole "
                f"CDs within [{floor:.0f}, {ceiling:.0f}]"
            )
        else:
            walked = (f" with its walking tour of {tour_m[cd]:,.0f} m" if tour_m[cd] > 0
                      else "")
            reasons.append(
                f"workload {value:.0f}{walked} outside [{floor:.0f}, {ceiling:.0f}]: no "
                "contiguous split within bounds was found by the search"
            )
    return reasons


def _instructor_districts(
    cd_adj: sp.csr_matrix, cd_workload: np.ndarray, *, config: Config, seed: int
) -> tuple[np.ndarray, list[str], bool]:
    """Group contiguous CDs into IDs balanced on workload, with spans in the range.

    The number of IDs follows from the span target. Each ID's workload must lie within
    ``instructor.tolerance`` of the mean ID's: the partition core draws them (proven
    optimal on the CD graph when it is small), then single CD moves bring any span
    outside ``span_min``–``span_max`` back, keeping the workload bounds. If no grouping
    meets the workload bounds, IDs are drawn on spans alone and said so. Returns the
    ID of each CD, each ID's exception ("" for none), and whether the time limit cut
    the search short.
    """
    norms = config.instructor
    n = cd_adj.shape[0]
    k, feasible = choose_count(n, norms.span_target, norms.span_min, norms.span_max)
    k = min(k, n)
    mean = float(cd_workload.sum()) / k
    lower, upper = mean * (1 - norms.tolerance), mean * (1 + norms.tolerance)
    labels, timed_out = _districts(cd_adj, cd_workload, k=k, lower=lower, upper=upper,
                                   seed=seed + 1, time_limit=config.time_limit)
    totals = np.bincount(labels, weights=cd_workload, minlength=k)
    balanced = bool(((totals >= lower - 1e-6) & (totals <= upper + 1e-6)).all())
    if not balanced:
        labels, late = _districts(cd_adj, np.ones(n), k=k,
                                  lower=norms.span_min if feasible else 1,
                                  upper=norms.span_max, seed=seed + 1,
                                  time_limit=config.time_limit)
        timed_out = timed_out or late
    elif feasible:
        _repair_spans(cd_adj, labels, cd_workload, span=(norms.span_min, norms.span_max),
                      bounds=(lower, upper))
    exceptions = id_exceptions(np.bincount(labels, minlength=k),
                               np.bincount(labels, weights=cd_workload, minlength=k),
                               bounds=(lower, upper), config=config, n_cds=n)
    return labels, exceptions, timed_out


def id_exceptions(spans: np.ndarray, totals: np.ndarray, *, bounds: tuple[float, float],
                  config: Config, n_cds: int) -> list[str]:
    """For each ID, an empty string or why its span or workload is outside the norms
    (``bounds``: the ID workload range; ``n_cds``: the settlement's CDs)."""
    norms = config.instructor
    lower, upper = bounds
    exceptions = []
    for span, total in zip(spans.tolist(), totals.tolist(), strict=True):
        problems = []
        if not norms.span_min <= span <= norms.span_max:
            why = f": the settlement has only {n_cds} CD(s)" if n_cds < norms.span_min else ""
            problems.append(f"span {span} CD(s) outside {norms.span_min}–{norms.span_max}{why}")
        if not lower - 1e-6 <= total <= upper + 1e-6:
            problems.append(f"workload {total:.0f} outside [{lower:.0f}, {upper:.0f}] "
                            f"(±{norms.tolerance:.0%} of the mean ID)")
        exceptions.append("; ".join(problems))
    return exceptions


def _repair_spans(
    adj: sp.csr_matrix,
    labels: np.ndarray,
    weights: np.ndarray,
    *,
    span: tuple[int, int],
    bounds: tuple[float, float],
) -> None:
    """Move single CDs between neighbouring IDs until every span lies in ``span``,
    keeping each ID's workload within ``bounds`` and each ID connected."""
    low, high = span
    k = int(labels.max()) + 1
    for _ in range(len(labels)):
        spans = np.bincount(labels, minlength=k)
        totals = np.bincount(labels, weights=weights, minlength=k)
        wrong = [i for i in range(k) if not low <= spans[i] <= high]
        if not wrong:
            return
        options = []
        for node in range(len(labels)):
            source = int(labels[node])
            for sink in sorted(set(labels[adj.indices[adj.indptr[node]:adj.indptr[node + 1]]]
                                   .tolist()) - {source}):
                helps = spans[source] > high or spans[sink] < low
                keeps = spans[source] - 1 >= low or spans[source] > high
                fits = (spans[sink] + 1 <= high
                        and bounds[0] - 1e-6 <= totals[source] - weights[node]
                        and totals[sink] + weights[node] <= bounds[1] + 1e-6)
                if helps and keeps and fits:
                    spread = abs(totals[source] - weights[node] - totals[sink] - weights[node])
                    options.append((spread, node, sink))
        for _, node, sink in sorted(options):
            if _stays_connected(adj, labels, int(labels[node]), node):
                labels[node] = sink
                break
        else:
            return


@dataclass
class _Points:
    """Registration districts of one settlement, numbered in reading order of points."""

    rd_of_cd: np.ndarray
    nodes: list[int]
    names: list[str]
    mean_walk_m: list[float]
    max_walk_m: list[float]
    notes: list[str]
    status: str


def _registration_districts(
    cd_adj: sp.csr_matrix,
    residents: np.ndarray,
    local: pd.DataFrame,
    cd_of_node: np.ndarray,
    walks: Walks,
    *,
    config: Config,
    sid: str,
) -> _Points:
    """Choose registration points among the candidate buildings and give each whole CD
    to one (a capacitated p-median on the residents' walk; see :mod:`registration`).

    Where the settlement has no candidate building, its most central building stands
    in, and a note says so.
    """
    norms = config.registration
    notes: list[str] = []
    k = len(residents)
    function = [str(f) for f in local["function"]]
    priority = {name: rank for rank, name in enumerate(norms.functions)}
    candidates = [i for i in range(len(local)) if function[i] in priority]
    people = local["residents"].to_numpy(dtype=float)
    xy = shapely.get_coordinates(local.geometry.to_numpy())
    if not candidates:
        centre = np.average(xy, axis=0, weights=people + 1e-9)
        candidates = [int(np.argmin(np.linalg.norm(xy - centre, axis=1)))]
        notes.append(
            f"settlement {sid}: no candidate registration-point building; the most central "
            f"building {local['building_id'].iloc[candidates[0]]} stands in as the point"
        )
    wanted = point_count(float(residents.sum()), points=norms.points,
                         residents_per_point=norms.residents_per_point)
    # A point serves its own CD, so two points never share one: at most one per CD.
    p = min(wanted, len(set(cd_of_node[candidates].tolist())))
    if p < wanted:
        notes.append(f"settlement {sid}: {wanted} registration points wanted, only {p} "
                     "CD(s) hold a candidate building")
    inhabited = np.flatnonzero(people > 0)
    walk = walks.between(inhabited, np.array(candidates))
    to_cd = sp.csr_matrix((people[inhabited], (cd_of_node[inhabited], np.arange(len(inhabited)))),
                          shape=(k, len(inhabited)))
    cost = np.asarray(to_cd @ walk)
    home = cd_of_node[candidates]
    capacity = point_capacity(residents, p, share=norms.capacity_share)
    try:
        solution = capacitated_p_median(cost, residents, p=p, capacity=capacity,
                                        adjacency=cd_adj, home=home,
                                        time_limit=norms.time_limit)
    except PartitionError as error:
        notes.append(f"settlement {sid}: {error}; points chosen without the capacity")
        solution = capacitated_p_median(cost, residents, p=p, capacity=float(residents.sum()),
                                        adjacency=cd_adj, home=home,
                                        time_limit=norms.time_limit)
    if solution.status == "feasible":
        notes.append(f"settlement {sid}: the registration-point model hit its "
                     f"{norms.time_limit:.0f} s limit (registration.time_limit); the points "
                     "may differ on a faster or slower machine")
    elif solution.status == "relaxed":
        notes.append(f"settlement {sid}: no {p} registration districts that grow outward "
                     f"from their points keep each within {capacity:,.0f} residents; a point "
                     f"may serve up to {solution.capacity:,.0f} "
                     "(raise registration.capacity_share or add candidate buildings)")
    elif solution.status == "repaired":
        notes.append(f"settlement {sid}: the registration-point model did not give connected "
                     f"districts in {solution.rounds} rounds; pieces were joined to a "
                     "neighbouring district, which may exceed its capacity")
    nodes = [candidates[j] for j in solution.chosen]
    order = reading_order(xy[nodes])
    rank = np.empty(len(nodes), dtype=np.int64)
    rank[order] = np.arange(len(nodes))
    rd_of_cd = rank[solution.assignment]
    nodes = [nodes[i] for i in order]
    point_of_unit = np.array(solution.chosen)[solution.assignment[cd_of_node[inhabited]]]
    unit_walk = walk[np.arange(len(inhabited)), point_of_unit]
    unit_rd = rd_of_cd[cd_of_node[inhabited]]
    mean_walk, max_walk = [], []
    for r in range(len(nodes)):
        mine = unit_rd == r
        weight = people[inhabited][mine]
        mean_walk.append(float(np.average(unit_walk[mine], weights=weight)) if weight.sum()
                         else 0.0)
        max_walk.append(float(unit_walk[mine].max()) if mine.any() else 0.0)
    names = [f"{FUNCTION_LABELS.get(function[node], 'здание')}, {local['address'].iloc[node]}"
             for node in nodes]
    return _Points(rd_of_cd, nodes, names, mean_walk, max_walk, notes, solution.status)
