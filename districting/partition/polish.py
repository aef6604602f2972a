"""Improve a valid plan by re-solving two neighbouring parts at a time with the exact model.

A large-neighbourhood search: the union of two adjacent parts is connected and its
edges to other parts stay cut whatever happens inside, so re-splitting it optimally
(the rooted model with ``k = 2``) can only lower the plan's cut. Passes repeat until
none improves or the time is spent. Every accepted step keeps all parts connected
and within bounds, because the sub-model enforces both.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components, dijkstra
from tqdm import tqdm

from districting.partition.arrays import adjacency_from_edges, cut_cost
from districting.partition.exact import solve_cut_edges
from districting.partition.heuristic import construct

#: Seconds allowed for one pair's sub-model, at most.
PAIR_SECONDS = 5.0
#: Band radii (in edges from the border) tried for each pair; ``None`` opens the whole pair.
RADII: tuple[int | None, ...] = (1, 2, 4, None)
#: Sub-models with more open nodes than this are not attempted.
MAX_FREE = 100
#: :func:`best_start` makes about this many units' worth of starts ...
START_UNITS = 20_000
#: ... and at most this many.
MAX_STARTS = 100
#: Distinct best starts polished by :func:`best_start`.
POLISHED = 4
#: Plans of more parts than this are not polished (there are too many pairs).
POLISH_MAX_PARTS = 16


@dataclass
class Start:
    """What :func:`best_start` found."""

    labels: np.ndarray
    #: Whether ``labels`` meets the bounds.
    valid: bool
    log: list[str]
    #: Whether the time limit stopped the search before its planned effort.
    timed_out: bool


def _pairs(edges: np.ndarray, labels: np.ndarray, cost: np.ndarray) -> list[tuple[int, int]]:
    """Adjacent part pairs, those sharing the costliest border first."""
    a, b = labels[edges[:, 0]], labels[edges[:, 1]]
    crossing = a != b
    shared: dict[tuple[int, int], float] = {}
    for p, q, c in zip(a[crossing].tolist(), b[crossing].tolist(), cost[crossing].tolist(),
                       strict=True):
        key = (min(p, q), max(p, q))
        shared[key] = shared.get(key, 0.0) + c
    return sorted(shared, key=lambda key: (-shared[key], key))


@dataclass
class _Pair:
    """Two neighbouring parts: their nodes, the edges among them and each node's distance
    (in edges) to their border."""

    nodes: np.ndarray
    #: Labels of ``nodes``.
    part: np.ndarray
    #: Edges among ``nodes`` as positions in ``nodes``, and their costs.
    local: np.ndarray
    local_cost: np.ndarray
    distance: np.ndarray


def _pair(edges: np.ndarray, cost: np.ndarray, labels: np.ndarray, nodes: np.ndarray) -> _Pair:
    index = np.full(len(labels), -1, dtype=np.int64)
    index[nodes] = np.arange(len(nodes))
    inside = (index[edges[:, 0]] >= 0) & (index[edges[:, 1]] >= 0)
    local = index[edges[inside]]
    part = labels[nodes]
    border = np.unique(local[part[local[:, 0]] != part[local[:, 1]]])
    if len(border) == 0:
        distance = np.full(len(nodes), np.inf)
    else:
        widest = max(r for r in RADII if r is not None)
        distance = dijkstra(adjacency_from_edges(len(nodes), local), indices=border,
                            unweighted=True, min_only=True, limit=widest + 0.5)
    return _Pair(nodes, part, local, cost[inside], distance)


def _contract(
    pair: _Pair, weights: np.ndarray, free: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """The two-part sub-problem on the pair with only the ``free`` nodes open to change.

    Each connected piece of fixed nodes of one part becomes a single node carrying their
    weight; parallel edges merge, their costs added. Any connected split of the result
    expands to a connected split of the pair, with the same cut. Returns the node of the
    sub-problem for each of the pair's nodes, its edges, costs and weights, and the
    current cut.
    """
    n, local, part = len(pair.nodes), pair.local, pair.part
    # Pieces of fixed nodes: fixed-fixed edges within one part.
    keep = ~free[local[:, 0]] & ~free[local[:, 1]] & (part[local[:, 0]] == part[local[:, 1]])
    glue = sp.csr_matrix((np.ones(int(keep.sum())), (local[keep, 0], local[keep, 1])),
                         shape=(n, n))
    _, piece = connected_components(glue, directed=False)
    # Free nodes keep their own ids; every fixed piece gets one id after them.
    free_ids = np.cumsum(free) - 1
    pieces = np.unique(piece[~free])
    piece_id = np.full(piece.max() + 1, -1, dtype=np.int64)
    piece_id[pieces] = int(free.sum()) + np.arange(len(pieces))
    node_of = np.where(free, free_ids, piece_id[piece])
    m = int(free.sum()) + len(pieces)
    sub_w = np.bincount(node_of, weights=weights[pair.nodes], minlength=m)
    ends = np.sort(node_of[local], axis=1)
    open_edge = ends[:, 0] != ends[:, 1]
    merged = sp.coo_matrix((pair.local_cost[open_edge],
                            (ends[open_edge, 0], ends[open_edge, 1])), shape=(m, m)).tocsr()
    merged.sum_duplicates()
    coo = merged.tocoo()
    sub_edges = np.stack([coo.row, coo.col], axis=1).astype(np.int64)
    current = float(pair.local_cost[part[local[:, 0]] != part[local[:, 1]]].sum())
    return node_of, sub_edges, coo.data.astype(float), sub_w, current


def polish_cut_edges(
    edges: np.ndarray,
    weights: np.ndarray,
    labels: np.ndarray,
    *,
    lower: float,
    upper: float,
    time_limit: float,
    edge_cost: np.ndarray | None = None,
    solver: str = "highs",
    max_free: int = MAX_FREE,
) -> tuple[np.ndarray, list[str]]:
    """A plan no worse than ``labels``, improved pair by pair; and a log of the steps.

    Each pair of neighbouring parts is re-solved exactly on a band of nodes around
    their border (radius 2, then 4, 8, then the whole union), the rest of each part
    contracted; a wider band is tried only when the narrower one is proven to hold no
    improvement, and only while it has at most ``max_free`` open nodes.
    """
    start = time.monotonic()
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    cost = np.ones(len(edges)) if edge_cost is None else np.asarray(edge_cost, dtype=float)
    labels = np.asarray(labels, dtype=np.int64).copy()
    log: list[str] = []
    if len(np.unique(labels)) < 2:
        return labels, log
    settled: set[tuple[bytes, int, int]] = set()
    deadline = start + time_limit
    improved = True
    while improved:
        improved = False
        for a, b in _pairs(edges, labels, cost):
            nodes = np.flatnonzero((labels == a) | (labels == b))
            key = (nodes.tobytes(), a, b)
            if key in settled:
                continue
            if deadline - time.monotonic() <= 1.0:
                return labels, log
            found, done = _improve_pair(edges, cost, weights, labels, nodes, a, b,
                                        lower=lower, upper=upper, solver=solver,
                                        deadline=deadline, max_free=max_free)
            if found is not None:
                labels[nodes] = found
                log.append(done)
                improved = True
            elif done:
                settled.add(key)
    return labels, log


def _improve_pair(
    edges: np.ndarray, cost: np.ndarray, weights: np.ndarray, labels: np.ndarray,
    nodes: np.ndarray, a: int, b: int, *, lower: float, upper: float, solver: str,
    deadline: float, max_free: int,
) -> tuple[np.ndarray | None, str]:
    """New labels of ``nodes`` with a lower cut between ``a`` and ``b`` and a log line;
    or ``None`` and ``"settled"`` when every band tried was solved with nothing better
    (``""`` when a solve stopped at its time limit)."""
    pair = _pair(edges, cost, labels, nodes)
    for radius in RADII:
        left = deadline - time.monotonic()
        if left <= 1.0:
            return None, ""
        free = (np.ones(len(nodes), dtype=bool) if radius is None
                else pair.distance <= radius)
        if not free.any():
            return None, "settled"
        if free.sum() > max_free:
            break
        node_of, sub_edges, sub_cost, sub_w, before = _contract(pair, weights, free)
        sub_start = np.zeros(len(sub_w), dtype=np.int64)
        sub_start[node_of] = labels[nodes] == b
        result = solve_cut_edges(len(sub_w), sub_edges, sub_w, k=2, lower=lower,
                                 upper=upper, time_limit=min(PAIR_SECONDS, left - 0.5),
                                 solver=solver, edge_cost=sub_cost, start=sub_start)
        if result.labels is not None and result.objective is not None \
                and result.objective < before - 1e-9:
            side = result.labels[node_of]
            found = np.where(side == side[0], labels[nodes[0]], a + b - labels[nodes[0]])
            return found, (f"parts {a}+{b}: {before:g} → {result.objective:g} cut between "
                           f"them ({int(free.sum())} of {len(nodes)} nodes open)")
        if result.status != "optimal":
            return None, ""
        if free.all():
            break
    return None, "settled"


def best_start(
    adjacency: sp.csr_matrix,
    edges: np.ndarray,
    weights: np.ndarray,
    *,
    k: int,
    lower: float,
    upper: float,
    seed: int,
    time_limit: float,
    edge_cost: np.ndarray | None = None,
    value: Callable[[np.ndarray], float] | None = None,
    solver: str = "highs",
    starts: int | None = None,
    polish: bool = True,
    progress: bool = False,
) -> Start:
    """The best of several seeded heuristic plans, the best few polished.

    Starts use seeds ``seed``, ``seed + 1``, …: ``starts`` of them, or by default about
    :data:`START_UNITS` units in all, between 1 and :data:`MAX_STARTS` starts. Plans are
    ranked by ``value`` (by their cut, ``edge_cost`` per edge, when ``None``). For the
    cut with at most :data:`POLISH_MAX_PARTS` parts, the :data:`POLISHED` best distinct
    plans are then improved pair by pair (:func:`polish_cut_edges`), unless ``polish``
    is false: polishing ends in a local optimum that depends on the start. Effort is
    counted in starts and sub-models, so the result depends on the seed only, unless
    ``time_limit`` cuts it short.

    When no plan meets the bounds, the one with the fewest parts outside them is
    returned, marked as not valid. ``progress`` shows a bar of the starts and polishes.
    """
    clock = time.monotonic()
    n = adjacency.shape[0]
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    cost = np.ones(len(edges)) if edge_cost is None else np.asarray(edge_cost, dtype=float)
    cost_matrix = None if edge_cost is None else sp.csr_matrix(
        (np.r_[cost, cost], (np.r_[edges[:, 0], edges[:, 1]], np.r_[edges[:, 1], edges[:, 0]])),
        shape=(n, n))

    def score(labels: np.ndarray) -> float:
        return cut_cost(edges, labels, cost) if value is None else value(labels)

    if starts is None:
        starts = min(MAX_STARTS, max(1, START_UNITS // max(n, 1)))
    valid: list[tuple[float, int, np.ndarray]] = []
    draft: tuple[int, int, np.ndarray] | None = None
    with tqdm(total=starts, desc="heuristic starts", unit="start", disable=not progress,
              leave=False) as bar:
        for attempt in range(starts):
            left = time_limit - (time.monotonic() - clock)
            if attempt and left <= 0:
                break  # the first start always runs: a plan beats none
            found = construct(adjacency, weights, k=k, lower=lower, upper=upper,
                              seed=seed + attempt, time_limit=max(1.0, left),
                              edge_cost=cost_matrix, attempts=1)
            if found.status == "within_bounds":
                valid.append((score(found.labels), attempt, found.labels))
            elif draft is None or found.parts_outside < draft[0]:
                draft = (found.parts_outside, attempt, found.labels)
            bar.update(1)
    timed_out = attempt + 1 < starts
    log = [f"{attempt + 1} heuristic start(s) from seed {seed}: {len(valid)} within the bounds"]
    if not valid:
        assert draft is not None
        return Start(draft[2], False, log, timed_out)
    valid.sort(key=lambda item: item[:2])
    best_value, best_attempt, best = valid[0]
    log.append(f"best start (seed {seed + best_attempt}): {best_value:g}")
    if not polish or value is not None or k > POLISH_MAX_PARTS:
        return Start(best, True, log, timed_out)
    distinct = [item for index, item in enumerate(valid)
                if all(item[0] != other[0] or not np.array_equal(item[2], other[2])
                       for other in valid[:index])][:POLISHED]
    polishing = tqdm(distinct, desc="exact pair re-solves", unit="plan", disable=not progress,
                     leave=False)
    for index, (before, attempt, labels) in enumerate(polishing):
        left = time_limit - (time.monotonic() - clock)
        if left <= 1.0:
            timed_out = True
            break
        polished, _ = polish_cut_edges(edges, weights, labels, lower=lower, upper=upper,
                                       time_limit=left / (len(distinct) - index),
                                       edge_cost=cost, solver=solver)
        after = cut_cost(edges, polished, cost)
        log.append(f"start {seed + attempt}: heuristic {before:g}, polished {after:g}")
        if after < best_value - 1e-9:
            best_value, best = after, polished
    polishing.close()
    timed_out |= time.monotonic() - clock > time_limit - 1.0
    if timed_out:
        log.append(f"the {time_limit:.0f} s time limit cut the search short; the plan may "
                   "differ on a faster or slower machine")
    return Start(best, True, log, timed_out)
