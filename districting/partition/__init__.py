"""Partition a graph into ``k`` connected parts with hard weight bounds.

This is the generic optimisation core: it knows nothing of censuses. The census
hierarchy (:mod:`districting.hierarchy`) calls it once per settlement and level.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from districting.errors import PartitionError
from districting.partition.heuristic import (
    even_out,
    recombine,
    repair,
    resplit_regions,
    tree_partition,
)

__all__ = ["Partition", "adjacency_from_edges", "cut_cost", "cut_edges", "partition_graph"]

#: Independent seeded attempts before the best partition is returned.
ATTEMPTS = 3


@dataclass(frozen=True)
class Partition:
    """The result of :func:`partition_graph`.

    ``status`` is ``"within_bounds"`` when every part's weight lies in
    ``[lower, upper]`` and ``"bounds_violated"`` otherwise; ``method`` says which
    construction and improvement steps produced it. Search effort is counted in
    steps, so the same seed gives the same partition on any machine; ``timed_out``
    says the time limit cut the search short, and then that promise no longer holds.
    """

    labels: np.ndarray
    k: int
    lower: float
    upper: float
    status: str
    method: str
    seconds: float
    cut_edges: int
    timed_out: bool = False

    def part_weights(self, weights: np.ndarray) -> np.ndarray:
        """Summed weight of each part."""
        return np.bincount(self.labels, weights=weights, minlength=self.k)


def adjacency_from_edges(n: int, edges: np.ndarray) -> sp.csr_matrix:
    """Symmetric CSR adjacency of ``n`` nodes from one row ``(u, v)`` per undirected edge."""
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    u, v = edges[:, 0], edges[:, 1]
    data = np.ones(2 * len(u), dtype=np.int8)
    return sp.csr_matrix((data, (np.r_[u, v], np.r_[v, u])), shape=(n, n))


def cut_cost(edges: np.ndarray, labels: np.ndarray, cost: np.ndarray) -> float:
    """Summed ``cost`` of the edges (one row ``(u, v)`` each) whose ends lie in different parts."""
    return float(cost[labels[edges[:, 0]] != labels[edges[:, 1]]].sum())


def cut_edges(adj: sp.csr_matrix, labels: np.ndarray) -> int:
    """Number of undirected edges whose ends lie in different parts."""
    coo = sp.triu(adj, k=1).tocoo()
    return int(np.count_nonzero(labels[coo.row] != labels[coo.col]))


def partition_graph(
    adj: sp.csr_matrix,
    weights: np.ndarray,
    *,
    k: int,
    lower: float,
    upper: float,
    seed: int,
    time_limit: float = 10.0,
    even_steps: int = 20,
) -> Partition:
    """Split a connected graph into ``k`` connected parts with weights in ``[lower, upper]``.

    Parameters
    ----------
    adj
        Symmetric adjacency matrix of a connected graph.
    weights
        Non-negative weight of each node.
    k
        Number of parts, ``1 ≤ k ≤ n``.
    lower, upper
        Hard bounds on each part's summed weight.
    seed
        Seed of the random spanning trees; the same seed gives the same partition.
    time_limit
        Safety cap in seconds; effort is otherwise counted in steps.
    even_steps
        Pairwise re-cuts per part, after construction, that make the parts' weights
        more even without leaving the bounds (0 to skip).

    Every part is always connected. When the bounds cannot be met in time the
    partition still covers the graph and ``status`` says ``"bounds_violated"``.
    """
    start = time.monotonic()
    n = adj.shape[0]
    weights = np.asarray(weights, dtype=float)
    if n == 0:
        raise PartitionError("cannot partition an empty graph")
    if not 1 <= k <= n:
        raise PartitionError(f"k={k} parts requested for a graph of {n} nodes")
    if (weights < 0).any():
        raise PartitionError("node weights must be non-negative")
    count, _ = connected_components(adj, directed=False)
    if count != 1:
        raise PartitionError(f"the graph has {count} separate parts; connect it first")
    deadline = start + time_limit
    method = "tree-bisection"
    if k == 1:
        labels = np.zeros(n, dtype=np.int64)
    else:
        best: tuple[int, int, np.ndarray, str] | None = None
        for attempt in range(ATTEMPTS):
            rng = np.random.default_rng([seed, attempt])
            labels, method = _attempt(adj, weights, k=k, lower=lower, upper=upper, rng=rng,
                                      deadline=deadline)
            totals = np.bincount(labels, weights=weights, minlength=k)
            bad = int(((totals < lower - 1e-9) | (totals > upper + 1e-9)).sum())
            score = (bad, cut_edges(adj, labels))
            if best is None or score < best[:2]:
                best = (*score, labels, method)
            if bad == 0 or time.monotonic() > deadline:
                break
        assert best is not None
        labels, method = best[2], best[3]
        if even_steps:
            labels = even_out(adj, weights, labels, lower=lower, upper=upper,
                              rng=np.random.default_rng([seed, ATTEMPTS]),
                              deadline=deadline, steps=even_steps * k)
            method += " + evening out"
    timed_out = time.monotonic() > deadline
    totals = np.bincount(labels, weights=weights, minlength=k)
    ok = bool(((totals >= lower - 1e-9) & (totals <= upper + 1e-9)).all())
    return Partition(
        labels=labels,
        k=k,
        lower=lower,
        upper=upper,
        status="within_bounds" if ok else "bounds_violated",
        method=method,
        timed_out=timed_out,
        seconds=time.monotonic() - start,
        cut_edges=cut_edges(adj, labels),
    )


def _attempt(
    adj: sp.csr_matrix,
    weights: np.ndarray,
    *,
    k: int,
    lower: float,
    upper: float,
    rng: np.random.Generator,
    deadline: float,
) -> tuple[np.ndarray, str]:
    """One seeded construction, and the improvement steps when it misses the bounds."""
    labels = tree_partition(adj, weights, k=k, lower=lower, upper=upper, rng=rng,
                            deadline=deadline, draws=100 + 5 * k)
    if labels is not None:
        return labels, "tree-bisection"
    labels = _relaxed(adj, weights, k=k, lower=lower, upper=upper, rng=rng, deadline=deadline)
    labels = recombine(adj, weights, labels, lower=lower, upper=upper, rng=rng,
                       deadline=deadline, max_steps=40 * k)
    labels = resplit_regions(adj, weights, labels, lower=lower, upper=upper, rng=rng,
                             deadline=deadline)
    labels = repair(adj, weights, labels, lower=lower, upper=upper, deadline=deadline)
    return labels, "tree-bisection (widened bounds) + recombination + regional re-split + repair"


def _relaxed(
    adj: sp.csr_matrix,
    weights: np.ndarray,
    *,
    k: int,
    lower: float,
    upper: float,
    rng: np.random.Generator,
    deadline: float,
) -> np.ndarray:
    """A connected k-partition under bounds widened until construction succeeds."""
    mean = float(weights.sum()) / k
    for widen in (0.1, 0.25, 0.5, 1.0):
        labels = tree_partition(
            adj, weights, k=k, lower=max(0.0, lower - widen * mean), upper=upper + widen * mean,
            rng=rng, deadline=deadline, draws=10 * k,
        )
        if labels is not None:
            return labels
    labels = tree_partition(adj, np.ones_like(weights), k=k, lower=1, upper=math.inf, rng=rng,
                            deadline=math.inf, draws=10_000 * k)
    if labels is None:
        raise PartitionError(f"could not split the graph into {k} connected parts")
    return labels
