"""Partition a graph into ``k`` connected parts with hard weight bounds.

This is the generic optimisation core: it knows nothing of censuses. The census
hierarchy (:mod:`districting.hierarchy`) calls it once per settlement and level.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from districting.errors import PartitionError
from districting.partition.heuristic import Pieces, tree_bisection
from districting.partition.moves import Moves

__all__ = ["Partition", "adjacency_from_edges", "cut_cost", "cut_edges", "partition_graph"]

#: Independent seeded attempts, while none meets the bounds.
ATTEMPTS = 3
#: Recombination steps per part when construction leaves parts out of bounds.
RECOMBINE_STEPS = 40


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
    #: How many parts weigh less than ``lower`` or more than ``upper``.
    parts_outside: int = 0

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
    edge_cost: sp.csr_matrix | None = None,
    attempts: int = ATTEMPTS,
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
    edge_cost
        Cost of each edge (same pattern as ``adj``) for the cut; 1 per edge when ``None``.
    attempts
        Seeded constructions tried while none meets the bounds.

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
    steps = ["tree bisection"]
    if k == 1:
        labels = np.zeros(n, dtype=np.int64)
    else:
        best: tuple[int, np.ndarray, list[str]] | None = None
        for attempt in range(attempts):
            rng = np.random.default_rng([seed, attempt])
            labels, steps = _attempt(adj, weights, k=k, lower=lower, upper=upper, rng=rng,
                                     deadline=deadline)
            bad = _outside(labels, weights, k, lower, upper)
            if best is None or bad < best[0]:
                best = (bad, labels, steps)
            if bad == 0 or time.monotonic() > deadline:
                break
        assert best is not None
        _, labels, steps = best
        # Boundary moves lower the cut, within the bounds.
        moves = Moves(adj, weights, labels, lower=lower, upper=upper, edge_cost=edge_cost)
        moves.refine(deadline=deadline, max_moves=50 * n)
        labels = moves.array()
        steps = [*steps, "boundary refinement"]
    timed_out = time.monotonic() > deadline
    outside = _outside(labels, weights, k, lower, upper)
    return Partition(
        labels=labels,
        k=k,
        lower=lower,
        upper=upper,
        status="within_bounds" if outside == 0 else "bounds_violated",
        method=" + ".join(steps),
        timed_out=timed_out,
        seconds=time.monotonic() - start,
        cut_edges=cut_edges(adj, labels),
        parts_outside=outside,
    )


def _outside(labels: np.ndarray, weights: np.ndarray, k: int, lower: float,
             upper: float) -> int:
    """How many parts weigh less than ``lower`` or more than ``upper``."""
    totals = np.bincount(labels, weights=weights, minlength=k)
    return int(((totals < lower - 1e-9) | (totals > upper + 1e-9)).sum())


def _attempt(
    adj: sp.csr_matrix,
    weights: np.ndarray,
    *,
    k: int,
    lower: float,
    upper: float,
    rng: np.random.Generator,
    deadline: float,
) -> tuple[np.ndarray, list[str]]:
    """One seeded construction, and the repair steps when it leaves parts out of bounds.

    The quick construction (one cut per region), then pairwise recombination, regional
    re-splits and unit moves around the parts left out of bounds; when parts are still
    out of bounds, all four are redone with the construction's depth-first search, and
    unit moves anywhere come last.
    """
    for search in (False, True):
        labels, misses = tree_bisection(adj, weights, k=k, lower=lower, upper=upper, rng=rng,
                                        deadline=deadline, search=search)
        steps = ["tree bisection with search" if search else "tree bisection"]
        if misses == 0 or _outside(labels, weights, k, lower, upper) == 0:
            return labels, steps
        pieces = Pieces(adj, weights, labels, lower=lower, upper=upper)
        pieces.recombine(rng=rng, deadline=deadline, max_steps=RECOMBINE_STEPS * k)
        steps.append("recombination")
        if not pieces.out_of_bounds():
            return pieces.array(), steps
        pieces.resplit(adj, weights, rng=rng, deadline=deadline)
        steps.append("regional re-split")
        bad = pieces.out_of_bounds()
        if not bad:
            return pieces.array(), steps
        moves = Moves(adj, weights, pieces.array(), lower=lower, upper=upper)
        near = set(bad).union(*(pieces.neighbours(d) for d in bad))
        moves.balance(deadline=deadline, max_moves=10 * len(labels), active=near)
        steps.append("unit moves")
        labels = moves.array()
        if _outside(labels, weights, k, lower, upper) == 0:
            return labels, steps
    moves.balance(deadline=deadline, max_moves=10 * len(labels))
    return moves.array(), steps
