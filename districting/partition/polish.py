"""Improve a valid plan by re-solving two neighbouring parts at a time with the exact model.

A large-neighbourhood search: the union of two adjacent parts is connected and its
edges to other parts stay cut whatever happens inside, so re-splitting it optimally
(the rooted model with ``k = 2``) can only lower the plan's cut. Passes repeat until
none improves or the time is spent. Every accepted step keeps all parts connected
and within bounds, because the sub-model enforces both.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from districting.partition import cut_cost, partition_graph
from districting.partition.exact import solve_cut_edges

#: Seconds allowed for one pair's sub-model, at most.
PAIR_SECONDS = 20.0
#: Seeded heuristic starts tried by :func:`best_start`, at most.
STARTS = 8
#: :func:`best_start` stops after this many starts in a row that improve nothing.
PATIENCE = 3


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
) -> tuple[np.ndarray, list[str]]:
    """A plan no worse than ``labels``, improved pair by pair; and a log of the steps."""
    start = time.monotonic()
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    cost = np.ones(len(edges)) if edge_cost is None else np.asarray(edge_cost, dtype=float)
    labels = np.asarray(labels, dtype=np.int64).copy()
    log: list[str] = []
    if len(np.unique(labels)) < 3:
        return labels, log
    settled: set[tuple[bytes, int, int]] = set()
    improved = True
    while improved:
        improved = False
        for a, b in _pairs(edges, labels, cost):
            left = time_limit - (time.monotonic() - start)
            if left <= 1.0:
                return labels, log
            nodes = np.flatnonzero((labels == a) | (labels == b))
            key = (nodes.tobytes(), a, b)
            if key in settled:
                continue
            index = np.full(len(labels), -1, dtype=np.int64)
            index[nodes] = np.arange(len(nodes))
            inside = (index[edges[:, 0]] >= 0) & (index[edges[:, 1]] >= 0)
            sub_edges = index[edges[inside]]
            sub_cost = cost[inside]
            current = (labels[nodes] == b).astype(np.int64)
            before = cut_cost(sub_edges, current, sub_cost)
            result = solve_cut_edges(len(nodes), sub_edges, weights[nodes], k=2, lower=lower,
                                     upper=upper, time_limit=min(PAIR_SECONDS, left - 0.5),
                                     solver=solver, edge_cost=sub_cost, start=current)
            if result.labels is not None and result.objective is not None \
                    and result.objective < before - 1e-9:
                labels[nodes] = np.where(result.labels == result.labels[0],
                                         labels[nodes[0]], a + b - labels[nodes[0]])
                log.append(f"parts {a}+{b}: {before:g} → {result.objective:g} cut between them")
                improved = True
            elif result.status == "optimal":
                settled.add(key)
    return labels, log


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
    solver: str = "highs",
) -> tuple[np.ndarray | None, list[str]]:
    """The best of several seeded heuristic plans, each polished; ``None`` if none is valid.

    Polishing ends in a local optimum that depends on the start, so the budget is
    spent on fresh starts (seeds ``seed``, ``seed + 1``, …) rather than on one,
    until :data:`PATIENCE` starts in a row bring nothing better.
    """
    clock = time.monotonic()
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    cost = np.ones(len(edges)) if edge_cost is None else np.asarray(edge_cost, dtype=float)
    best: tuple[float, np.ndarray] | None = None
    log: list[str] = []
    stale = 0
    for attempt in range(STARTS):
        left = time_limit - (time.monotonic() - clock)
        if attempt and (left <= 1.0 or k < 3 or stale >= PATIENCE):
            break  # the first start always runs: a plan beats none
        found = partition_graph(adjacency, weights, k=k, lower=lower, upper=upper,
                                seed=seed + attempt, time_limit=max(1.0, min(left, 10.0)))
        if found.status != "within_bounds":
            continue
        labels = found.labels
        before = cut_cost(edges, labels, cost)
        left = time_limit - (time.monotonic() - clock)
        labels, _ = polish_cut_edges(edges, weights, labels, lower=lower, upper=upper,
                                     time_limit=min(left, max(left / 2, 30.0)),
                                     edge_cost=cost, solver=solver)
        value = cut_cost(edges, labels, cost)
        log.append(f"start {seed + attempt}: heuristic {before:g}, polished {value:g}")
        if best is None or value < best[0]:
            best = (value, labels)
            stale = 0
        else:
            stale += 1
    return (None if best is None else best[1]), log
