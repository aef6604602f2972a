"""Contiguous partitions with hard weight bounds: spanning-tree bisection, then repair.

Construction cuts random spanning trees (Kruskal on random edge weights) at an edge
whose subtree weight lets both sides be divided further within the bounds; both sides
of a tree edge are connected, so every district is connected by construction.
When no such cut is found within the budget, the bounds are widened step by step and a
local search moves boundary units back into the original bounds, never breaking
contiguity.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import depth_first_order, minimum_spanning_tree


class _Budget:
    def __init__(self, draws: int, deadline: float) -> None:
        self.draws = draws
        self.deadline = deadline

    def take(self) -> bool:
        if self.draws <= 0 or time.monotonic() > self.deadline:
            return False
        self.draws -= 1
        return True


def _split_orders(k: int) -> list[int]:
    """Part counts to try for one side of a cut: balanced first, then peeling one off."""
    half = k // 2
    return sorted(range(1, k), key=lambda k1: (abs(k1 - k / 2), k1 != half, k1))


def _bisect(
    adj: sp.csr_matrix,
    weights: np.ndarray,
    nodes: np.ndarray,
    k: int,
    lower: float,
    upper: float,
    rng: np.random.Generator,
    budget: _Budget,
    tries: int,
) -> list[np.ndarray] | None:
    total = float(weights[nodes].sum())
    if k == 1:
        return [nodes] if lower - 1e-9 <= total <= upper + 1e-9 else None
    if total < k * lower - 1e-9 or total > k * upper + 1e-9:
        return None
    sub = adj[nodes][:, nodes]
    sub = sp.triu(sub, k=1).tocsr()
    local_w = weights[nodes]
    for _ in range(tries):
        if not budget.take():
            return None
        random_sub = sub.copy()
        random_sub.data = rng.random(random_sub.nnz) + 1e-9
        tree = minimum_spanning_tree(random_sub)
        root = int(rng.integers(len(nodes)))
        order, pred = depth_first_order(tree, root, directed=False, return_predecessors=True)
        if len(order) != len(nodes):
            return None  # the node set is not connected: cannot happen from a tree cut
        subtotal, size = _subtree_sums(order.tolist(), pred.tolist(), local_w.tolist())
        cut = _choose_cut(subtotal, order, k, total, lower, upper, rng)
        if cut is None:
            continue
        v, k1 = cut
        position = np.empty(len(nodes), dtype=np.int64)
        position[order] = np.arange(len(order))
        inside = order[position[v]: position[v] + size[v]]
        mask = np.zeros(len(nodes), dtype=bool)
        mask[inside] = True
        left = _bisect(adj, weights, nodes[mask], k1, lower, upper, rng, budget, tries)
        if left is None:
            continue
        right = _bisect(adj, weights, nodes[~mask], k - k1, lower, upper, rng, budget, tries)
        if right is None:
            continue
        return left + right
    return None


def _subtree_sums(
    order: list[int], pred: list[int], weights: list[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Weight and node count of each node's subtree, for a tree given in preorder."""
    subtotal = list(weights)
    size = [1] * len(weights)
    for v in reversed(order[1:]):
        p = pred[v]
        subtotal[p] += subtotal[v]
        size[p] += size[v]
    return np.array(subtotal, dtype=float), np.array(size, dtype=np.int64)


def _edge_pairs(adj: sp.csr_matrix) -> np.ndarray:
    """One row ``(u, v)``, ``u < v``, per undirected edge."""
    coo = sp.triu(adj, k=1).tocoo()
    return np.stack([coo.row, coo.col], axis=1)


def _choose_cut(
    subtotal: np.ndarray,
    order: np.ndarray,
    k: int,
    total: float,
    lower: float,
    upper: float,
    rng: np.random.Generator,
) -> tuple[int, int] | None:
    candidates = order[1:]
    sums = subtotal[candidates]
    for k1 in _split_orders(k):
        lo = max(k1 * lower, total - (k - k1) * upper) - 1e-9
        hi = min(k1 * upper, total - (k - k1) * lower) + 1e-9
        if lo > hi:
            continue
        ok = np.flatnonzero((sums >= lo) & (sums <= hi))
        if len(ok) == 0:
            continue
        ideal = k1 * total / k
        gap = np.abs(sums[ok] - ideal)
        best = ok[gap <= gap.min() + 1e-9]
        return int(candidates[int(rng.choice(best))]), k1
    return None


def tree_partition(
    adj: sp.csr_matrix,
    weights: np.ndarray,
    *,
    k: int,
    lower: float,
    upper: float,
    rng: np.random.Generator,
    deadline: float,
    draws: int | None = None,
) -> np.ndarray | None:
    """Labels ``0..k-1`` of a contiguous partition within ``[lower, upper]``, or ``None``."""
    n = adj.shape[0]
    budget = _Budget(draws if draws is not None else 2000 + 400 * k, deadline)
    parts = _bisect(adj, weights, np.arange(n), k, lower, upper, rng, budget, tries=30)
    if parts is None:
        return None
    labels = np.empty(n, dtype=np.int64)
    for index, part in enumerate(parts):
        labels[part] = index
    return labels


def _connected_without(
    adj: sp.csr_matrix,
    labels: np.ndarray,
    node: int,
    indptr: np.ndarray,
    indices: np.ndarray,
) -> bool:
    """Whether ``node``'s district stays connected when ``node`` leaves it.

    The district was connected, so every piece left after removing ``node`` holds one
    of its neighbours: it stays connected exactly when a search from one neighbour
    reaches all the others. The search stops as soon as it has.
    """
    district = labels[node]
    members = [int(u) for u in indices[indptr[node]:indptr[node + 1]]
               if labels[u] == district]
    if len(members) <= 1:
        return True
    wanted = set(members[1:])
    seen = {members[0]}
    queue = deque([members[0]])
    while queue:
        u = queue.popleft()
        for w in indices[indptr[u]:indptr[u + 1]].tolist():
            if w != node and w not in seen and labels[w] == district:
                seen.add(w)
                wanted.discard(w)
                if not wanted:
                    return True
                queue.append(w)
    return not wanted


def _excess(total: float, lower: float, upper: float) -> float:
    return max(0.0, lower - total) + max(0.0, total - upper)


def repair(
    adj: sp.csr_matrix,
    weights: np.ndarray,
    labels: np.ndarray,
    *,
    lower: float,
    upper: float,
    deadline: float,
) -> np.ndarray:
    """Move single boundary units between districts until the bounds hold or no move helps.

    A move is taken when it lowers the total bound violation, or keeps it and lowers
    the sum of squared deviations from the mean weight; this second rule lets weight
    flow from heavy to light districts through the ones between them. The source
    district must stay connected and non-empty; the target gains a unit next to it.
    """
    labels = labels.copy()
    k = int(labels.max()) + 1
    totals = np.bincount(labels, weights=weights, minlength=k).astype(float)
    sizes = np.bincount(labels, minlength=k)
    mean = float(totals.sum()) / k
    indptr, indices = adj.indptr, adj.indices
    pairs = _edge_pairs(adj)

    def excess(total: float) -> float:
        return max(0.0, lower - total) + max(0.0, total - upper)

    moved = True
    while moved and time.monotonic() < deadline:
        moved = False
        if all(excess(t) <= 1e-9 for t in totals):
            break
        boundary = pairs[labels[pairs[:, 0]] != labels[pairs[:, 1]]]
        candidates = np.concatenate([boundary, boundary[:, ::-1]])
        for u, v in candidates.tolist():
            source, target = int(labels[u]), int(labels[v])
            if source == target or sizes[source] == 1:
                continue
            w = float(weights[u])
            old_s, old_t = totals[source], totals[target]
            new_s, new_t = old_s - w, old_t + w
            d_violation = excess(new_s) + excess(new_t) - excess(old_s) - excess(old_t)
            d_spread = ((new_s - mean) ** 2 + (new_t - mean) ** 2
                        - (old_s - mean) ** 2 - (old_t - mean) ** 2)
            if d_violation > 1e-9 or (d_violation > -1e-9 and d_spread >= -1e-9):
                continue
            if not _connected_without(adj, labels, u, indptr, indices):
                continue
            labels[u] = target
            totals[source], totals[target] = new_s, new_t
            sizes[source] -= 1
            sizes[target] += 1
            moved = True
            if time.monotonic() > deadline:
                break
    return labels


def _excess_sq(totals: np.ndarray, lower: float, upper: float) -> np.ndarray:
    return np.square(np.maximum(lower - totals, 0.0) + np.maximum(totals - upper, 0.0))


def _random_tree(n: int, edges: list[tuple[int, int]], rng: np.random.Generator,
                 ) -> tuple[list[int], list[int]] | None:
    """Preorder and parents of a random spanning tree (Kruskal on shuffled edges).

    Pure Python: for the few dozen nodes of two merged districts this is several
    times faster than building scipy matrices for each tree.
    """
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    neighbours: list[list[int]] = [[] for _ in range(n)]
    joined = 0
    for index in rng.permutation(len(edges)).tolist():
        u, v = edges[index]
        a, b = find(u), find(v)
        if a != b:
            parent[a] = b
            neighbours[u].append(v)
            neighbours[v].append(u)
            joined += 1
            if joined == n - 1:
                break
    if joined != n - 1:
        return None
    root = int(rng.integers(n))
    order, pred = [], [-1] * n
    stack = [root]
    pred[root] = root
    while stack:
        u = stack.pop()
        order.append(u)
        for v in neighbours[u]:
            if pred[v] == -1:
                pred[v] = u
                stack.append(v)
    return order, pred


def _best_split(
    n: int,
    edges: list[tuple[int, int]],
    local_w: np.ndarray,
    *,
    lower: float,
    upper: float,
    rng: np.random.Generator,
    trees: int,
) -> tuple[float, float, np.ndarray] | None:
    """The best cut of a few random spanning trees of a connected two-district union.

    Returns ``(penalty, imbalance, mask of one side)`` minimising the squared bound
    excess of the two sides, then the imbalance between them.
    """
    total = float(local_w.sum())
    weights = local_w.tolist()
    best: tuple[float, float, np.ndarray] | None = None
    for _ in range(trees):
        tree = _random_tree(n, edges, rng)
        if tree is None:
            return None
        order, pred = tree
        subtotal, size = _subtree_sums(order, pred, weights)
        cuts = np.array(order[1:], dtype=np.int64)
        side = subtotal[cuts]
        penalty = _excess_sq(side, lower, upper) + _excess_sq(total - side, lower, upper)
        imbalance = np.abs(2 * side - total)
        pick = int(np.lexsort((imbalance, penalty))[0])
        if best is None or (penalty[pick], imbalance[pick]) < (best[0], best[1]):
            v = int(cuts[pick])
            first = order.index(v)  # in preorder, v's subtree is the run that starts at v
            mask = np.zeros(n, dtype=bool)
            mask[order[first:first + size[v]]] = True
            best = (float(penalty[pick]), float(imbalance[pick]), mask)
    return best


def recombine(
    adj: sp.csr_matrix,
    weights: np.ndarray,
    labels: np.ndarray,
    *,
    lower: float,
    upper: float,
    rng: np.random.Generator,
    deadline: float,
    trees: int = 8,
    max_steps: int = 20_000,
    wander: float = 0.4,
) -> np.ndarray:
    """Rebalance out-of-bounds districts by merging each with a neighbour and re-splitting.

    Each step merges a district outside the bounds with a random neighbour and re-cuts
    the union along the best edge of a few random spanning trees. A step is kept when
    it lowers the squared bound excess of the pair (or keeps it and evens the pair out),
    so excess flows from district to district until it meets slack. Both halves of a
    tree cut are connected, so contiguity always holds.
    """
    labels = labels.copy()
    k = int(labels.max()) + 1
    totals = np.bincount(labels, weights=weights, minlength=k).astype(float)
    pairs = _edge_pairs(adj)
    stale = 0
    for _ in range(max_steps):
        if time.monotonic() > deadline:
            break
        bad = np.flatnonzero(_excess_sq(totals, lower, upper) > 1e-12)
        if len(bad) == 0 or stale > 200 + 50 * len(bad):
            break
        d = int(rng.choice(bad))
        neighbours = _neighbours_of(pairs, labels, d)
        if len(neighbours) == 0:
            stale += 1
            continue
        if rng.random() < wander:
            # Even out a pair next to the trouble, so that slack drifts towards it.
            d = int(rng.choice(neighbours))
            neighbours = _neighbours_of(pairs, labels, d)
        e = _partner(d, neighbours, totals, upper, rng)
        outcome = _recombine_pair(labels, totals, weights, pairs, d, e, lower=lower,
                                  upper=upper, rng=rng, trees=trees)
        stale = 0 if outcome == "fixed" else stale + 1
    return labels


def _recombine_pair(
    labels: np.ndarray,
    totals: np.ndarray,
    weights: np.ndarray,
    pairs: np.ndarray,
    d: int,
    e: int,
    *,
    lower: float,
    upper: float,
    rng: np.random.Generator,
    trees: int,
) -> str:
    """Merge districts ``d`` and ``e`` and re-cut them if that helps; update in place.

    Returns ``"fixed"`` when the pair's squared bound excess fell, ``"evened"`` when it
    stayed and the pair became more even, and ``"kept"`` when nothing changed.
    """
    inside = (labels == d) | (labels == e)
    members = np.flatnonzero(inside)
    local_w = weights[members]
    local = np.full(len(labels), -1, dtype=np.int64)
    local[members] = np.arange(len(members))
    union_edges = pairs[inside[pairs[:, 0]] & inside[pairs[:, 1]]]
    edge_list = list(zip(local[union_edges[:, 0]].tolist(),
                         local[union_edges[:, 1]].tolist(), strict=True))
    union = totals[d] + totals[e]
    hopeful = 2 * lower - 1e-9 <= union <= 2 * upper + 1e-9
    found = _best_split(len(members), edge_list, local_w, lower=lower, upper=upper,
                        rng=rng, trees=3 * trees if hopeful else trees)
    if found is None:
        return "kept"
    penalty, imbalance, mask = found
    current = float(_excess_sq(totals[[d, e]], lower, upper).sum())
    fixed = penalty < current - 1e-9
    if not fixed and not (penalty <= current + 1e-9
                          and imbalance < abs(totals[d] - totals[e]) - 1e-9):
        return "kept"
    labels[members[mask]] = d
    labels[members[~mask]] = e
    totals[d] = float(local_w[mask].sum())
    totals[e] = float(local_w[~mask].sum())
    return "fixed" if fixed else "evened"


def even_out(
    adj: sp.csr_matrix,
    weights: np.ndarray,
    labels: np.ndarray,
    *,
    lower: float,
    upper: float,
    rng: np.random.Generator,
    deadline: float,
    steps: int,
    trees: int = 4,
) -> np.ndarray:
    """Make workloads more even without leaving the bounds: pairwise re-cuts.

    Each step re-cuts two neighbouring districts (picked through a random boundary
    edge) when that makes the pair more even and keeps both within the bounds.
    """
    labels = labels.copy()
    k = int(labels.max()) + 1
    totals = np.bincount(labels, weights=weights, minlength=k).astype(float)
    pairs = _edge_pairs(adj)
    for _ in range(steps):
        if time.monotonic() > deadline:
            break
        boundary = pairs[labels[pairs[:, 0]] != labels[pairs[:, 1]]]
        if len(boundary) == 0:
            break
        u, v = boundary[int(rng.integers(len(boundary)))]
        _recombine_pair(labels, totals, weights, pairs, int(labels[u]), int(labels[v]),
                        lower=lower, upper=upper, rng=rng, trees=trees)
    return labels


def _neighbours_of(pairs: np.ndarray, labels: np.ndarray, d: int) -> np.ndarray:
    """Districts sharing an edge with district ``d``."""
    crossing = pairs[(labels[pairs[:, 0]] == d) ^ (labels[pairs[:, 1]] == d)]
    return np.unique(np.where(labels[crossing[:, 0]] == d,
                              labels[crossing[:, 1]], labels[crossing[:, 0]]))


def _partner(
    d: int, neighbours: np.ndarray, totals: np.ndarray, upper: float, rng: np.random.Generator
) -> int:
    """A neighbour to merge with: usually the one that best offsets ``d``'s excess."""
    if rng.random() < 0.3:
        return int(rng.choice(neighbours))
    weights = totals[neighbours]
    pick = np.argmin(weights) if totals[d] > upper else np.argmax(weights)
    return int(neighbours[pick])


def _district_graph(adj: sp.csr_matrix, labels: np.ndarray, k: int) -> list[list[int]]:
    coo = adj.tocoo()
    a, b = labels[coo.row], labels[coo.col]
    keep = a != b
    pairs = np.unique(np.stack([a[keep], b[keep]], axis=1), axis=0)
    neighbours: list[list[int]] = [[] for _ in range(k)]
    for x, y in pairs.tolist():
        neighbours[x].append(y)
    return neighbours




def resplit_regions(
    adj: sp.csr_matrix,
    weights: np.ndarray,
    labels: np.ndarray,
    *,
    lower: float,
    upper: float,
    rng: np.random.Generator,
    deadline: float,
    max_region: int = 8,
    rounds: int = 3,
) -> np.ndarray:
    """Re-split growing regions of districts around each out-of-bounds district.

    For a district outside the bounds, the region of the ``m`` districts nearest to it
    in the district graph (``m = 2 … max_region``) is merged and cut again into ``m``
    districts on random spanning trees, all within the bounds. Lumpy units that pairwise
    moves cannot shift often fit once several districts are redrawn together.
    """
    labels = labels.copy()
    k = int(labels.max()) + 1
    for _ in range(rounds):
        if time.monotonic() > deadline:
            break
        progress = False
        totals = np.bincount(labels, weights=weights, minlength=k)
        bad = np.flatnonzero((totals < lower - 1e-9) | (totals > upper + 1e-9))
        if len(bad) == 0:
            break
        quotient = _district_graph(adj, labels, k)
        for d in rng.permutation(bad).tolist():
            if time.monotonic() > deadline:
                break
            totals = np.bincount(labels, weights=weights, minlength=k)
            if lower - 1e-9 <= totals[d] <= upper + 1e-9:
                continue
            region = [d]
            frontier = deque([d])
            while frontier and len(region) < max_region:
                x = frontier.popleft()
                for y in rng.permutation(quotient[x]).tolist():
                    if y not in region and len(region) < max_region:
                        region.append(int(y))
                        frontier.append(int(y))
                m = len(region)
                if m < 2:
                    continue
                union = float(totals[region].sum())
                if not m * lower - 1e-9 <= union <= m * upper + 1e-9:
                    continue
                members = np.flatnonzero(np.isin(labels, region))
                budget = _Budget(30 * m, deadline)
                parts = _bisect(adj, weights, members, m, lower, upper, rng, budget, tries=6)
                if parts is None:
                    continue
                for district, part in zip(region, parts, strict=True):
                    labels[part] = district
                progress = True
                quotient = _district_graph(adj, labels, k)
                break
        if not progress:
            break
    return labels
