"""Contiguous partitions from random spanning trees: construction and merge-split recombination.

Construction (:func:`tree_bisection`) cuts a random spanning tree of the graph (Kruskal
on random edge weights: scipy for large regions, compiled with numba for small ones; see
:mod:`districting.partition.trees`) at the edge
whose subtree weight best fits the bounds of the part counts on each side, then splits
both sides the same way. Both sides of a tree edge are connected, so every part is
connected. The quick pass never backtracks: when no tree of a region offers a cut inside
the window, the nearest cut is taken and the part is left for repair; with ``search``,
small regions search their cuts depth-first first.

Repair works on :class:`Pieces`, which keeps each part's members:

* :meth:`Pieces.recombine` merges an out-of-bounds part with a neighbour and re-cuts the
  union along the best edge of a few random spanning trees, so excess weight flows from
  part to part until it meets slack;
* :meth:`Pieces.resplit` redraws a growing region of up to eight parts around a part the
  pairwise steps could not fix.

Each step touches only the parts involved, so its cost does not grow with the graph.

One heuristic start (:func:`construct`) is a seeded construction, the repairs it needs,
and boundary moves that lower the cut (:mod:`districting.partition.moves`). It is an
internal of the heuristic: :func:`~districting.partition.polish.best_start` runs many;
callers go through :func:`districting.partition.partition`.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components, depth_first_order, minimum_spanning_tree

from districting.errors import PartitionError
from districting.partition.arrays import cut_edges
from districting.partition.moves import Moves, NeighbourLists
from districting.partition.trees import best_pair_cut, best_window_cut, kruskal, preorder

#: Weight comparisons allow this much rounding.
EPS = 1e-9
#: Regions of at most this many parts try every split of the count, not only the halves.
ALL_SPLITS_UPTO = 12
#: Regions of at most this many nodes are split depth-first, with retries.
SEARCH_NODES = 2000
#: Cuts tried per region in the depth-first search.
RETRIES = 4
#: Cuts the depth-first search may make, per part of the region it starts from.
SEARCH_CUTS = 20
#: Regions of at most this many nodes draw their trees with the compiled Kruskal.
SMALL_REGION = 400
#: Independent seeded attempts of :func:`construct`, while none meets the bounds.
ATTEMPTS = 3
#: Recombination steps per part when construction leaves parts out of bounds.
RECOMBINE_STEPS = 40
#: Whether a construction's parts all lie within the bounds.
ConstructionStatus = Literal["within_bounds", "bounds_violated"]


# --------------------------------------------------------------------------- construction


def _split_orders(k: int) -> list[int]:
    """Part counts to try for one side of a cut: balanced first, then peeling one off."""
    half = k // 2
    orders = sorted(range(1, k), key=lambda k1: (abs(k1 - k / 2), k1 != half, k1))
    return orders if k <= ALL_SPLITS_UPTO else orders[:2]


def _windows(k: int, total: float, lower: float, upper: float) -> list[tuple[int, float, float]]:
    """For each part count ``k1`` of one side: the side weights that leave both sides divisible."""
    found = []
    for k1 in _split_orders(k):
        lo = max(k1 * lower, total - (k - k1) * upper)
        hi = min(k1 * upper, total - (k - k1) * lower)
        found.append((k1, lo, hi))
    return found


def _random_trees(graph: NeighbourLists, nodes: np.ndarray, rng: np.random.Generator,
                  ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Random spanning trees of region ``nodes`` as (preorder, parents), local positions.

    Small regions use the compiled Kruskal (no per-call scipy overhead); large ones
    scipy's minimum spanning tree on random edge weights.
    """
    if len(nodes) <= SMALL_REGION:
        eu, ev = _edge_arrays(graph.local_edges(nodes))
        while True:
            tree = _random_tree(len(nodes), eu, ev, rng)
            if tree is None:
                raise PartitionError("a region to split is not connected")
            yield tree
    tri = sp.triu(graph.adj[nodes][:, nodes], k=1).tocsr().astype(float)
    while True:
        tri.data = rng.random(tri.nnz) + EPS
        mst = minimum_spanning_tree(tri)
        root = int(rng.integers(len(nodes)))
        order, pred = depth_first_order(mst, root, directed=False, return_predecessors=True)
        if len(order) != len(nodes):
            raise PartitionError("a region to split is not connected")
        pred[root] = root
        yield order.astype(np.int64), pred.astype(np.int64)


def _tree_cut(
    graph: NeighbourLists,
    weights: np.ndarray,
    nodes: np.ndarray,
    k: int,
    *,
    lower: float,
    upper: float,
    rng: np.random.Generator,
    trees: int,
) -> tuple[np.ndarray, int, bool]:
    """One side of the best tree cut of region ``nodes`` into ``k`` parts.

    Returns the mask of the side, its part count and whether the cut lies inside the
    window that keeps both sides divisible within the bounds. Each tree's best cut is
    found by the compiled :func:`~districting.partition.trees.best_window_cut`.
    """
    local_w = np.ascontiguousarray(weights[nodes], dtype=np.float64)
    total = float(local_w.sum())
    windows = _windows(k, total, lower, upper)
    k1s = np.array([w[0] for w in windows], dtype=np.int64)
    lows = np.array([w[1] for w in windows], dtype=np.float64)
    highs = np.array([w[2] for w in windows], dtype=np.float64)
    unit = max(total / k, EPS)
    best: tuple[float, int, float] | None = None
    best_cut: tuple[np.ndarray, int, int, int] | None = None
    drawn = _random_trees(graph, nodes, rng)
    for _ in range(trees):
        order, pred = next(drawn)
        outside, rank, deviation, first, count, k1 = best_window_cut(
            order, pred, local_w, total, k, k1s, lows, highs, unit)
        key = (float(outside), int(rank), float(deviation))
        if best is None or key < best:
            best = key
            best_cut = (order, int(first), int(count), int(k1))
        if best[0] <= EPS:
            break
    assert best is not None and best_cut is not None
    order, first, count, k1 = best_cut
    mask = np.zeros(len(nodes), dtype=bool)
    mask[order[first:first + count]] = True
    return mask, k1, best[0] <= EPS


def tree_bisection(
    adj: sp.csr_matrix,
    weights: np.ndarray,
    *,
    k: int,
    lower: float,
    upper: float,
    rng: np.random.Generator,
    trees: int = 8,
    deadline: float = math.inf,
    search: bool = True,
) -> tuple[np.ndarray, int]:
    """Labels ``0..k-1`` of a connected partition, and how many splits missed their window.

    With no miss every part lies within ``[lower, upper]``; a miss leaves some parts for
    repair. Regions of more than :data:`SEARCH_NODES` nodes are cut once, on one
    random spanning tree when the windows are wide and up to ``trees`` when they are
    narrow. With ``search``, smaller regions search their cuts depth-first (:data:`RETRIES` cuts per
    region, :data:`SEARCH_CUTS` per part in all), so that a part that cannot be cut
    within the bounds sends the search back to redraw its parent; when the search
    gives up, the region is cut without it, taking the nearest cuts.
    """
    n = adj.shape[0]
    graph = NeighbourLists(adj)
    labels = np.empty(n, dtype=np.int64)
    stack: list[tuple[np.ndarray, int]] = [(np.arange(n), k)]
    label = 0
    misses = 0
    while stack:
        nodes, parts = stack.pop()
        if parts == 1:
            labels[nodes] = label
            label += 1
            continue
        if search and len(nodes) <= SEARCH_NODES:
            budget = [SEARCH_CUTS * parts]
            found = _search(graph, weights, nodes, parts, lower=lower, upper=upper, rng=rng,
                            trees=trees, deadline=deadline, budget=budget)
            if found is not None:
                for piece in found:
                    labels[piece] = label
                    label += 1
                continue
        mask, k1, inside = _tree_cut(graph, weights, nodes, parts, lower=lower, upper=upper,
                                     rng=rng, trees=trees)
        misses += not inside
        stack.append((nodes[~mask], parts - k1))
        stack.append((nodes[mask], k1))
    return labels, misses


def _search(
    graph: NeighbourLists,
    weights: np.ndarray,
    nodes: np.ndarray,
    k: int,
    *,
    lower: float,
    upper: float,
    rng: np.random.Generator,
    trees: int,
    deadline: float,
    budget: list[int],
) -> list[np.ndarray] | None:
    """Parts of region ``nodes``, all within the bounds, by depth-first tree cuts; or ``None``.

    ``budget`` holds the number of cuts left to the whole search; it gives up when they
    are spent.
    """
    if k == 1:
        total = float(weights[nodes].sum())
        return [nodes] if lower - EPS <= total <= upper + EPS else None
    for _ in range(RETRIES):
        if budget[0] <= 0 or time.monotonic() > deadline:
            return None
        budget[0] -= 1
        mask, k1, inside = _tree_cut(graph, weights, nodes, k, lower=lower, upper=upper,
                                     rng=rng, trees=trees)
        if not inside:
            return None  # no tree offered a cut inside the window: another is unlikely to
        first = _search(graph, weights, nodes[mask], k1, lower=lower, upper=upper, rng=rng,
                        trees=trees, deadline=deadline, budget=budget)
        if first is None:
            continue
        second = _search(graph, weights, nodes[~mask], k - k1, lower=lower, upper=upper,
                         rng=rng, trees=trees, deadline=deadline, budget=budget)
        if second is not None:
            return first + second
    return None


# --------------------------------------------------------------------------- recombination


def _excess_sq(totals: np.ndarray, lower: float, upper: float) -> np.ndarray:
    return np.square(np.maximum(lower - totals, 0.0) + np.maximum(totals - upper, 0.0))


def _edge_arrays(edges: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    pairs = np.array(edges, dtype=np.int64).reshape(-1, 2)
    return np.ascontiguousarray(pairs[:, 0]), np.ascontiguousarray(pairs[:, 1])


def _random_tree(n: int, eu: np.ndarray, ev: np.ndarray, rng: np.random.Generator,
                 ) -> tuple[np.ndarray, np.ndarray] | None:
    """Preorder and parents of a random spanning tree (Kruskal on shuffled edges, from a
    random root; compiled, see :mod:`districting.partition.trees`), or ``None`` when the
    edges ``(eu[i], ev[i])`` do not connect the ``n`` nodes."""
    tu, tv, ok = kruskal(n, eu, ev, rng.permutation(len(eu)))
    if not ok:
        return None
    return preorder(n, tu, tv, int(rng.integers(n)))


def _best_split(
    n: int,
    edges: list[tuple[int, int]],
    local_w: list[float],
    *,
    lower: float,
    upper: float,
    rng: np.random.Generator,
    trees: int,
) -> tuple[float, float, list[int]] | None:
    """The best cut of a few random spanning trees of a connected two-part union.

    Returns ``(penalty, imbalance, local nodes of one side)`` minimising the squared
    bound excess of the two sides, then the imbalance between them.
    """
    eu, ev = _edge_arrays(edges)
    perms = np.empty((trees, len(eu)), dtype=np.int64)
    roots = np.empty(trees, dtype=np.int64)
    for t in range(trees):  # the draws of the trees one after another
        perms[t] = rng.permutation(len(eu))
        roots[t] = rng.integers(n)
    spans, penalty, imbalance, side = best_pair_cut(
        n, eu, ev, np.asarray(local_w, dtype=np.float64), perms, roots, lower, upper)
    if not spans:
        return None
    return float(penalty), float(imbalance), side.tolist()


class Pieces:
    """A connected partition with each part's members, open to merge-split steps."""

    def __init__(self, adj: sp.csr_matrix, weights: np.ndarray, labels: np.ndarray, *,
                 lower: float, upper: float) -> None:
        self.graph = NeighbourLists(adj.tocsr())
        self.ptr, self.nbr = self.graph.ptr, self.graph.nbr
        self.w: list[float] = np.asarray(weights, dtype=float).tolist()
        self.labels: list[int] = np.asarray(labels, dtype=np.int64).tolist()
        k = int(max(self.labels)) + 1
        self.members: list[list[int]] = [[] for _ in range(k)]
        for u, part in enumerate(self.labels):
            self.members[part].append(u)
        self.totals: list[float] = np.bincount(labels, weights=weights, minlength=k).tolist()
        self.lower = lower
        self.upper = upper
        self.bad = {d for d in range(k) if self._outside(d)}

    def array(self) -> np.ndarray:
        """The current labels."""
        return np.array(self.labels, dtype=np.int64)

    def _outside(self, d: int) -> bool:
        return self.totals[d] < self.lower - EPS or self.totals[d] > self.upper + EPS

    def out_of_bounds(self) -> list[int]:
        """Parts outside the bounds, in order (kept up to date step by step)."""
        return sorted(self.bad)

    def neighbours(self, d: int) -> list[int]:
        """Parts sharing an edge with part ``d``, in order."""
        labels, ptr, nbr = self.labels, self.ptr, self.nbr
        found = {labels[y] for x in self.members[d] for y in nbr[ptr[x]:ptr[x + 1]]}
        found.discard(d)
        return sorted(found)

    def _union(self, parts: list[int]) -> tuple[list[int], list[tuple[int, int]]]:
        nodes = [u for d in parts for u in self.members[d]]
        return nodes, self.graph.local_edges(np.array(nodes, dtype=np.int64))

    def _assign(self, d: int, nodes: list[int]) -> None:
        self.members[d] = sorted(nodes)
        for u in nodes:
            self.labels[u] = d
        self.totals[d] = float(sum(self.w[u] for u in nodes))
        if self._outside(d):
            self.bad.add(d)
        else:
            self.bad.discard(d)

    def recut_pair(self, d: int, e: int, *, rng: np.random.Generator, trees: int) -> str:
        """Merge parts ``d`` and ``e`` and re-cut them if that helps.

        Returns ``"fixed"`` when the pair's squared bound excess fell, ``"evened"`` when
        it stayed and the pair became more even, and ``"kept"`` when nothing changed.
        """
        nodes, edges = self._union([d, e])
        local_w = [self.w[u] for u in nodes]
        found = _best_split(len(nodes), edges, local_w, lower=self.lower, upper=self.upper,
                            rng=rng, trees=trees)
        if found is None:
            return "kept"
        penalty, imbalance, side = found
        pair = np.array([self.totals[d], self.totals[e]])
        current = float(_excess_sq(pair, self.lower, self.upper).sum())
        fixed = penalty < current - EPS
        if not fixed and not (penalty <= current + EPS
                              and imbalance < abs(pair[0] - pair[1]) - EPS):
            return "kept"
        chosen = set(side)
        self._assign(d, [nodes[i] for i in side])
        self._assign(e, [u for i, u in enumerate(nodes) if i not in chosen])
        return "fixed" if fixed else "evened"

    def recombine(self, *, rng: np.random.Generator, deadline: float, max_steps: int,
                  trees: int = 8, wander: float = 0.4) -> None:
        """Re-cut out-of-bounds parts with their neighbours until none is left or none helps.

        Each step merges a part outside the bounds with a neighbour (usually the one that
        best offsets its excess) and re-cuts the union; with probability ``wander`` it
        re-cuts a pair next to the trouble instead, so that slack drifts towards it.
        """
        bad = self.out_of_bounds()
        patience = min(200 + 50 * len(bad), 30 * len(self.members))
        stale = 0
        for _ in range(max_steps):
            if not bad or stale > patience or time.monotonic() > deadline:
                break
            d = bad[int(rng.integers(len(bad)))]
            around = self.neighbours(d)
            if not around:
                stale += 1
                continue
            if rng.random() < wander:
                d = around[int(rng.integers(len(around)))]
                around = self.neighbours(d)
            e = self._partner(d, around, rng)
            hopeful = (2 * self.lower - EPS <= self.totals[d] + self.totals[e]
                       <= 2 * self.upper + EPS)
            outcome = self.recut_pair(d, e, rng=rng, trees=3 * trees if hopeful else trees)
            stale = 0 if outcome == "fixed" else stale + 1
            if outcome != "kept":
                bad = self.out_of_bounds()

    def _partner(self, d: int, around: list[int], rng: np.random.Generator) -> int:
        """A neighbour to merge with: usually the one that best offsets ``d``'s excess."""
        if rng.random() < 0.3:
            return around[int(rng.integers(len(around)))]
        weights = [self.totals[e] for e in around]
        pick = weights.index(min(weights) if self.totals[d] > self.upper else max(weights))
        return around[pick]

    def resplit(self, adj: sp.csr_matrix, weights: np.ndarray, *, rng: np.random.Generator,
                deadline: float, max_region: int = 8, rounds: int = 3) -> None:
        """Redraw growing regions of parts around each out-of-bounds part.

        For a part outside the bounds, the ``m`` parts nearest to it in the part graph
        (``m = 2 … max_region``) are merged and cut again into ``m`` parts on random
        spanning trees, all within the bounds. Lumpy units that pairwise steps cannot
        shift often fit once several parts are redrawn together.
        """
        for _ in range(rounds):
            bad = self.out_of_bounds()
            if not bad or time.monotonic() > deadline:
                break
            progress = False
            for d in rng.permutation(bad).tolist():
                if time.monotonic() > deadline:
                    break
                if self.lower - EPS <= self.totals[d] <= self.upper + EPS:
                    continue
                region = [d]
                frontier = deque([d])
                done = False
                while frontier and len(region) < max_region and not done:
                    x = frontier.popleft()
                    for y in rng.permutation(self.neighbours(x)).tolist():
                        if y in region or len(region) >= max_region:
                            continue
                        region.append(int(y))
                        frontier.append(int(y))
                        done = self._redraw(adj, weights, region, rng=rng, deadline=deadline)
                        if done:
                            break
                progress |= done
            if not progress:
                break

    def _redraw(self, adj: sp.csr_matrix, weights: np.ndarray, region: list[int], *,
                rng: np.random.Generator, deadline: float) -> bool:
        m = len(region)
        union = sum(self.totals[d] for d in region)
        if not m * self.lower - EPS <= union <= m * self.upper + EPS:
            return False
        members = np.array(sorted(u for d in region for u in self.members[d]), dtype=np.int64)
        found = _search(self.graph, weights, members, m, lower=self.lower, upper=self.upper,
                        rng=rng, trees=8, deadline=deadline, budget=[SEARCH_CUTS * m])
        if found is None:
            return False
        for d, piece in zip(region, found, strict=True):
            self._assign(d, piece.tolist())
        return True


# --------------------------------------------------------------------------- one heuristic start


@dataclass(frozen=True)
class Construction:
    """The result of :func:`construct`: one seeded heuristic partition.

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
    status: ConstructionStatus
    method: str
    seconds: float
    cut_edges: int
    timed_out: bool = False
    #: How many parts weigh less than ``lower`` or more than ``upper``.
    parts_outside: int = 0

    def part_weights(self, weights: np.ndarray) -> np.ndarray:
        """Summed weight of each part."""
        return np.bincount(self.labels, weights=weights, minlength=self.k)


def construct(
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
) -> Construction:
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
            bad = _parts_outside(labels, weights, k, lower, upper)
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
    outside = _parts_outside(labels, weights, k, lower, upper)
    return Construction(
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


def _parts_outside(labels: np.ndarray, weights: np.ndarray, k: int, lower: float,
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
        if misses == 0 or _parts_outside(labels, weights, k, lower, upper) == 0:
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
        if _parts_outside(labels, weights, k, lower, upper) == 0:
            return labels, steps
    moves.balance(deadline=deadline, max_moves=10 * len(labels))
    return moves.array(), steps
