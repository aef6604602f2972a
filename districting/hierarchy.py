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
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import dijkstra

from districting.config import Config
from districting.graph import SettlementGraph
from districting.partition import adjacency_from_edges, partition_graph
from districting.partition.api import partition_arrays
from districting.workload import district_target

logger = logging.getLogger(__name__)

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
    floor: float
    ceiling: float
    notes: list[str] = field(default_factory=list)

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
) -> SettlementPlan:
    """Counting, instructor and registration districts of one settlement."""
    sid = graph.settlement_id
    rng_seed = settlement_seed(seed, sid)
    local = units.iloc[graph.positions]
    workload = local["workload"].to_numpy(dtype=float)
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

    cd_workload = np.bincount(labels, weights=workload, minlength=k)
    cd_adj = quotient_adjacency(adj, labels, k)
    id_labels, id_exception = _instructor_districts(cd_adj, config=config, seed=rng_seed)
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

    rd_of_cd, points, names, rd_notes = _registration_districts(
        cd_adj, cd_xy, residents, local, cd_of_node, config=config, sid=sid
    )
    notes.extend(rd_notes)
    exceptions = _cd_exceptions(
        cd_workload, floor, ceiling, local, workload, cd_of_node,
        np.array(region_feasible)[cd_order], np.array(region_total)[cd_order],
        split_by_barriers=len(np.unique(regions)) > 1,
    )
    return SettlementPlan(
        settlement_id=sid,
        cd_of_node=cd_of_node,
        id_of_cd=id_of_cd,
        rd_of_cd=rd_of_cd,
        cd_exception=exceptions,
        id_exception=id_exception,
        rd_point_position=[int(graph.positions[p]) for p in points],
        rd_point_name=names,
        floor=floor,
        ceiling=ceiling,
        notes=notes,
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
#: Small splits (see ``AUTO_EXACT_NODES``) get this long for a proven optimum; a plan
#: without the proof is not kept, so the plan never depends on the machine's speed.
EXACT_SECONDS = 5.0


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
                            exact_seconds=EXACT_SECONDS, keep_unproven=False)
    if plan.labels is not None:
        return plan.labels, plan.timed_out
    draft = partition_graph(adj, weights, k=k, lower=lower, upper=upper, seed=seed,
                            time_limit=time_limit)
    return draft.labels, draft.timed_out


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
            reasons.append(
                f"workload {value:.0f} outside [{floor:.0f}, {ceiling:.0f}]: no contiguous "
                "split within bounds was found by the search"
            )
    return reasons


def _instructor_districts(
    cd_adj: sp.csr_matrix, *, config: Config, seed: int
) -> tuple[np.ndarray, list[str]]:
    """Group contiguous CDs into IDs whose span lies in the configured range."""
    norms = config.instructor
    n = cd_adj.shape[0]
    k, feasible = choose_count(n, norms.span_target, norms.span_min, norms.span_max)
    k = min(k, n)
    lower = norms.span_min if feasible else 1
    labels, _ = _districts(cd_adj, np.ones(n), k=k, lower=lower, upper=norms.span_max,
                           seed=seed + 1, time_limit=config.time_limit)
    spans = np.bincount(labels, minlength=k)
    exceptions = [
        "" if norms.span_min <= s <= norms.span_max
        else f"span {s} CD(s) outside {norms.span_min}–{norms.span_max}: the settlement has "
             f"only {n} CD(s)" if n < norms.span_min
        else f"span {s} CD(s) outside {norms.span_min}–{norms.span_max}"
        for s in spans
    ]
    return labels, exceptions


def _registration_districts(
    cd_adj: sp.csr_matrix,
    cd_xy: np.ndarray,
    residents: np.ndarray,
    local: pd.DataFrame,
    cd_of_node: np.ndarray,
    *,
    config: Config,
    sid: str,
) -> tuple[np.ndarray, list[int], list[str], list[str]]:
    """Choose registration points (greedy p-median) and grow RDs from them on the CD graph.

    Each CD joins the point nearest along the CD graph, so every RD is connected.
    Returns the RD of each CD (numbered in reading order of the points), the local node
    of each point, the point names, and notes.
    """
    norms = config.registration
    notes: list[str] = []
    function = [str(f) for f in local["function"]]
    priority = {name: rank for rank, name in enumerate(norms.functions)}
    candidates = [i for i in range(len(local)) if function[i] in priority]
    if not candidates:
        centre = np.average(cd_xy, axis=0, weights=residents + 1e-9)
        xy = shapely.get_coordinates(local.geometry.to_numpy())
        chosen_nodes = [int(np.argmin(np.linalg.norm(xy - centre, axis=1)))]
        notes.append(
            f"settlement {sid}: no candidate registration-point building; the most central "
            f"building {local['building_id'].iloc[chosen_nodes[0]]} stands in as the point"
        )
    else:
        best_per_cd: dict[int, int] = {}
        for i in sorted(candidates, key=lambda i: (priority[function[i]], i)):
            best_per_cd.setdefault(int(cd_of_node[i]), i)
        options = sorted(best_per_cd.values())
        wanted = norms.points or max(1, round(float(residents.sum()) / norms.residents_per_point))
        p = min(wanted, len(options))
        if p < wanted:
            notes.append(f"settlement {sid}: {wanted} registration points wanted, only {p} "
                         "candidate building(s) in distinct CDs")
        xy = shapely.get_coordinates(local.geometry.to_numpy())
        dist = np.linalg.norm(cd_xy[:, None, :] - xy[options][None, :, :], axis=2)
        chosen_nodes = []
        current = np.full(len(cd_xy), np.inf)
        for _ in range(p):
            costs = [
                (float((residents * np.minimum(current, dist[:, j])).sum()),
                 priority[function[node]], node, j)
                for j, node in enumerate(options) if node not in chosen_nodes
            ]
            _, _, node, j = min(costs)
            chosen_nodes.append(node)
            current = np.minimum(current, dist[:, j])
    point_xy = shapely.get_coordinates(local.geometry.to_numpy()[chosen_nodes])
    order = reading_order(point_xy)
    chosen_nodes = [chosen_nodes[i] for i in order]
    sources = [int(cd_of_node[node]) for node in chosen_nodes]
    weighted = cd_adj.tocoo()
    lengths = np.linalg.norm(cd_xy[weighted.row] - cd_xy[weighted.col], axis=1) + 1e-6
    graph = sp.csr_matrix((lengths, (weighted.row, weighted.col)), shape=cd_adj.shape)
    _, _, nearest = dijkstra(graph, directed=False, indices=sources, min_only=True,
                             return_predecessors=True)
    rd_of_cd = np.array([sources.index(int(s)) for s in nearest], dtype=np.int64)
    names = []
    for node in chosen_nodes:
        label = FUNCTION_LABELS.get(str(function[node]), "здание")
        names.append(f"{label}, {local['address'].iloc[node]}")
    return rd_of_cd, chosen_nodes, names, notes
