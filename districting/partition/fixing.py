"""Rule out assignments before solving: node order, possible roots, reach under the upper bound.

Everything here is a safe reduction: no partition into connected parts within
``[lower, upper]`` is lost.

- **Root order.** The rooted model lets only the first node of a part (in a fixed
  order) be its root. A "back" set ``B`` is chosen whose connected pieces each
  weigh less than ``lower``; its nodes go last. A part rooted in ``B`` would lie
  inside one such piece and be too light, so no node of ``B`` is a root.
- **Reach.** A connected part holding nodes ``i`` and ``j`` holds a path between
  them, so it weighs at least the lightest such path (node weights summed). When
  that exceeds ``upper``, ``i`` and ``j`` never share a part. For a root ``j`` the
  path must also stay among the nodes from ``j`` onwards in the order.
- **Too light to root.** A root ``j`` whose reachable nodes from ``j`` onwards weigh
  less than ``lower`` in total cannot root a part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

#: Added to every arc length so that zero-weight nodes still count as reached.
_EPS = 1e-9


@dataclass(frozen=True)
class Candidates:
    """Who may join whom: ``members[j]`` may join the part rooted (or centred) at ``j``."""

    roots: np.ndarray
    members: dict[int, np.ndarray]

    @property
    def pairs(self) -> int:
        return int(sum(len(m) for m in self.members.values()))


def neighbour_lists(n: int, edges: np.ndarray) -> list[list[int]]:
    """Sorted neighbours of each node."""
    out: list[list[int]] = [[] for _ in range(n)]
    for u, v in edges.tolist():
        out[u].append(v)
        out[v].append(u)
    return [sorted(a) for a in out]


def back_set(neighbours: list[list[int]], weights: np.ndarray, lower: float) -> np.ndarray:
    """A large set of nodes whose connected pieces each weigh less than ``lower``.

    Greedy: nodes join from the lightest up while the piece they would form stays
    below ``lower``.
    """
    n = len(weights)
    parent = np.arange(n)
    piece = weights.astype(float).copy()
    inside = np.zeros(n, dtype=bool)

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = int(parent[a])
        return a

    for i in np.argsort(weights, kind="stable").tolist():
        pieces = {find(j) for j in neighbours[i] if inside[j]}
        total = float(weights[i]) + sum(float(piece[r]) for r in pieces)
        if total < lower:
            inside[i] = True
            for r in pieces:
                parent[r] = i
            piece[i] = total
    return inside


def root_order(neighbours: list[list[int]], weights: np.ndarray, lower: float) -> np.ndarray:
    """Node order for the rooted model: heavy possible roots first, the back set last."""
    back = back_set(neighbours, weights, lower)
    key = np.lexsort((np.arange(len(weights)), -weights, back))
    return key.astype(np.int64)


def _arcs(n: int, edges: np.ndarray, weights: np.ndarray, keep: np.ndarray | None = None
          ) -> sp.csr_matrix:
    rows = np.r_[edges[:, 0], edges[:, 1]]
    cols = np.r_[edges[:, 1], edges[:, 0]]
    if keep is not None:
        mask = keep[rows] & keep[cols]
        rows, cols = rows[mask], cols[mask]
    return sp.csr_matrix((weights[cols] + _EPS, (rows, cols)), shape=(n, n))


def rooted_candidates(n: int, edges: np.ndarray, weights: np.ndarray, *, lower: float,
                      upper: float) -> Candidates:
    """For nodes numbered in root order: the possible roots and the members each may hold."""
    roots: list[int] = []
    members: dict[int, np.ndarray] = {}
    slack = upper + 1e-6 * max(1.0, upper)
    for j in range(n):
        keep = np.arange(n) >= j
        arcs = _arcs(n, edges, weights, keep)
        reach = dijkstra(arcs, indices=j, limit=slack) + weights[j]
        found = np.flatnonzero(np.isfinite(reach) & keep & (reach <= slack))
        if float(weights[found].sum()) < lower - 1e-9:
            continue
        roots.append(j)
        members[j] = found.astype(np.int64)
    return Candidates(np.array(roots, dtype=np.int64), members)


def centre_candidates(n: int, edges: np.ndarray, weights: np.ndarray, *, lower: float,
                      upper: float) -> Candidates:
    """Every node may be a centre; its members are the nodes within reach under ``upper``."""
    arcs = _arcs(n, edges, weights)
    slack = upper + 1e-6 * max(1.0, upper)
    roots: list[int] = []
    members: dict[int, np.ndarray] = {}
    for j in range(n):
        reach = dijkstra(arcs, indices=j, limit=slack) + weights[j]
        found = np.flatnonzero(np.isfinite(reach) & (reach <= slack))
        if float(weights[found].sum()) < lower - 1e-9:
            continue
        roots.append(j)
        members[j] = found.astype(np.int64)
    return Candidates(np.array(roots, dtype=np.int64), members)


def largest_part_size(weights: np.ndarray, upper: float) -> int:
    """The most nodes any part within ``upper`` can hold (its lightest nodes)."""
    cumulative = np.cumsum(np.sort(weights))
    return int(np.searchsorted(cumulative, upper + 1e-9, side="right"))
