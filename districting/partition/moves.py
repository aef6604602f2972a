"""Single-unit boundary moves that keep every part connected: bound repair and cut refinement.

A :class:`Moves` object holds a partition as flat Python lists (CSR neighbour lists,
labels, part totals and sizes), so that the inner loops run without numpy overhead.
A unit may leave its part only when the rest of the part stays connected; the check
is a search from one of the unit's neighbours in the part that stops as soon as it
has reached all the others, so it usually looks at a handful of units.

Two passes use it:

* :meth:`Moves.balance` moves units out of parts above the ceiling and into parts
  below the floor, lowering the total bound violation at every step;
* :meth:`Moves.refine` makes Fiduccia–Mattheyses-style moves that lower the cut
  (summed edge cost between parts) while every part stays within the bounds.

Both process units in a fixed order from a work queue, so the result depends only on
the input partition.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np
import scipy.sparse as sp

#: Weight comparisons allow this much rounding.
EPS = 1e-9


class NeighbourLists:
    """A graph's CSR neighbour lists as Python lists, for the per-unit loops of the heuristic."""

    def __init__(self, adj: sp.csr_matrix) -> None:
        self.adj = adj
        self.ptr: list[int] = adj.indptr.tolist()
        self.nbr: list[int] = adj.indices.tolist()

    def local_edges(self, nodes: np.ndarray) -> list[tuple[int, int]]:
        """Edges among ``nodes``, as pairs of positions in ``nodes``."""
        ptr, nbr = self.ptr, self.nbr
        node_list = nodes.tolist()
        local = {u: i for i, u in enumerate(node_list)}
        edges = []
        for i, x in enumerate(node_list):
            for y in nbr[ptr[x]:ptr[x + 1]]:
                j = local.get(y, -1)
                if j > i:
                    edges.append((i, j))
        return edges


class Moves:
    """A connected partition open to single-unit moves."""

    def __init__(
        self,
        adj: sp.csr_matrix,
        weights: np.ndarray,
        labels: np.ndarray,
        *,
        lower: float,
        upper: float,
        edge_cost: sp.csr_matrix | None = None,
    ) -> None:
        adj = adj.tocsr()
        graph = NeighbourLists(adj)
        self.ptr, self.nbr = graph.ptr, graph.nbr
        if edge_cost is None:
            self.cost: list[float] | None = None
        else:
            self.cost = _aligned_costs(adj, edge_cost)
        self.w: list[float] = np.asarray(weights, dtype=float).tolist()
        self.labels: list[int] = np.asarray(labels, dtype=np.int64).tolist()
        k = int(max(self.labels)) + 1
        self.totals: list[float] = np.bincount(labels, weights=weights, minlength=k).tolist()
        self.sizes: list[int] = np.bincount(labels, minlength=k).tolist()
        self.lower = lower
        self.upper = upper

    # ------------------------------------------------------------------ basics

    def array(self) -> np.ndarray:
        """The current labels."""
        return np.array(self.labels, dtype=np.int64)

    def excess(self, total: float) -> float:
        """How far ``total`` lies outside ``[lower, upper]``."""
        return max(0.0, self.lower - total) + max(0.0, total - self.upper)

    def stays_connected(self, u: int) -> bool:
        """Whether ``u``'s part stays connected when ``u`` leaves it.

        The part was connected, so every piece left after removing ``u`` holds one of
        ``u``'s neighbours in the part: it stays connected exactly when a search from one
        of them reaches the others.
        """
        labels, ptr, nbr = self.labels, self.ptr, self.nbr
        part = labels[u]
        same = [v for v in nbr[ptr[u]:ptr[u + 1]] if labels[v] == part]
        if len(same) <= 1:
            return True
        wanted = set(same[1:])
        seen = {u, same[0]}
        queue = deque([same[0]])
        while queue:
            x = queue.popleft()
            for y in nbr[ptr[x]:ptr[x + 1]]:
                if y not in seen and labels[y] == part:
                    if y in wanted:
                        wanted.discard(y)
                        if not wanted:
                            return True
                    seen.add(y)
                    queue.append(y)
        return False

    def links(self, u: int) -> dict[int, float]:
        """Summed edge cost from ``u`` to each part next to it (its own included)."""
        labels, ptr, nbr, cost = self.labels, self.ptr, self.nbr, self.cost
        found: dict[int, float] = {}
        if cost is None:
            for v in nbr[ptr[u]:ptr[u + 1]]:
                part = labels[v]
                found[part] = found.get(part, 0.0) + 1.0
        else:
            for j in range(ptr[u], ptr[u + 1]):
                part = labels[nbr[j]]
                found[part] = found.get(part, 0.0) + cost[j]
        return found

    def move(self, u: int, target: int) -> None:
        source = self.labels[u]
        self.labels[u] = target
        self.totals[source] -= self.w[u]
        self.totals[target] += self.w[u]
        self.sizes[source] -= 1
        self.sizes[target] += 1

    def boundary(self, parts: set[int] | None = None) -> list[int]:
        """Units with a neighbour in another part (in ``parts`` only, if given), in order."""
        labels, ptr, nbr = self.labels, self.ptr, self.nbr
        units = range(len(labels)) if parts is None else sorted(
            u for u in range(len(labels)) if labels[u] in parts)
        return [u for u in units
                if any(labels[v] != labels[u] for v in nbr[ptr[u]:ptr[u + 1]])]

    # ------------------------------------------------------------------ passes

    def balance(self, *, deadline: float, max_moves: int,
                active: set[int] | None = None) -> int:
        """Move units until every part is within the bounds or no move helps.

        A move is taken when it lowers the summed bound violation of the two parts, or
        keeps it and lowers their squared deviation from the mean weight (so that weight
        drifts from heavy parts to light ones through the parts between them), and among
        those the one that cuts the fewest edges. ``active`` limits the moves to units
        and targets in those parts. Returns the number of moves made.
        """
        totals, w, labels = self.totals, self.w, self.labels
        mean = sum(totals) / len(totals)
        moves = 0
        while moves < max_moves and time.monotonic() < deadline:
            if all(self.excess(t) <= EPS for t in totals):
                break
            moved = False
            for u in self.boundary(active):
                source = labels[u]
                if self.sizes[source] == 1:
                    continue
                links = self.links(u)
                best: tuple[float, float, float, int] | None = None
                old_s = totals[source]
                for target, link in sorted(links.items()):
                    if target == source or (active is not None and target not in active):
                        continue
                    old_t = totals[target]
                    new_s, new_t = old_s - w[u], old_t + w[u]
                    d_violation = (self.excess(new_s) + self.excess(new_t)
                                   - self.excess(old_s) - self.excess(old_t))
                    d_spread = ((new_s - mean) ** 2 + (new_t - mean) ** 2
                                - (old_s - mean) ** 2 - (old_t - mean) ** 2)
                    if d_violation > EPS or (d_violation > -EPS and d_spread >= -EPS):
                        continue
                    key = (round(d_violation, 9), -link, d_spread, target)
                    if best is None or key < best:
                        best = key
                if best is None or not self.stays_connected(u):
                    continue
                self.move(u, best[3])
                moves += 1
                moved = True
                if moves >= max_moves or time.monotonic() > deadline:
                    break
            if not moved:
                break
        return moves

    def refine(self, *, deadline: float, max_moves: int) -> float:
        """Move boundary units to the part they share most edges with, while it helps.

        Each move lowers the cut strictly and keeps both parts within the bounds and
        connected, so the pass ends in a local optimum. Returns the cut saved.
        """
        labels, totals, w = self.labels, self.totals, self.w
        lower, upper = self.lower, self.upper
        queue = deque(self.boundary())
        queued = [False] * len(labels)
        for u in queue:
            queued[u] = True
        saved = 0.0
        moves = 0
        while queue and moves < max_moves:
            u = queue.popleft()
            queued[u] = False
            source = labels[u]
            if self.sizes[source] == 1 or totals[source] - w[u] < lower - EPS:
                continue
            links = self.links(u)
            own = links.get(source, 0.0)
            best_gain, best_target = EPS, -1
            for target, link in sorted(links.items()):
                if target != source and link - own > best_gain \
                        and totals[target] + w[u] <= upper + EPS:
                    best_gain, best_target = link - own, target
            if best_target < 0 or not self.stays_connected(u):
                continue
            self.move(u, best_target)
            saved += best_gain
            moves += 1
            if moves % 4096 == 0 and time.monotonic() > deadline:
                break
            for v in self.nbr[self.ptr[u]:self.ptr[u + 1]]:
                if not queued[v]:
                    queued[v] = True
                    queue.append(v)
        return saved


def _aligned_costs(adj: sp.csr_matrix, edge_cost: sp.csr_matrix) -> list[float]:
    """``edge_cost``'s value at each stored entry of ``adj``, in ``adj``'s order."""
    rows = np.repeat(np.arange(adj.shape[0]), np.diff(adj.indptr))
    return np.asarray(edge_cost.tocsr()[rows, adj.indices]).ravel().astype(float).tolist()
