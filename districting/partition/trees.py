"""Random spanning trees and their best cuts, compiled with numba.

The heuristic (:mod:`districting.partition.heuristic`) draws hundreds of thousands of
random spanning trees of small regions (two merged parts of a few hundred units). Each
tree is Kruskal's algorithm on a random order of the edges, with union-find by path
halving; the tree is then walked depth-first from a random root, so that every
subtree is one run of the preorder. Compiled, this is the same algorithm on the same
random draws (made by the caller with numpy), so the trees, and the plans, are exactly
those of the pure-Python version, only many times faster.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _find(parent: np.ndarray, a: int) -> int:
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


@njit(cache=True)
def kruskal(n: int, eu: np.ndarray, ev: np.ndarray,
            perm: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """The tree edges (in the order they joined) of Kruskal's algorithm taking the edges
    ``(eu[i], ev[i])`` in the order ``perm``, and whether they span all ``n`` nodes."""
    parent = np.arange(n)
    tu = np.empty(max(n - 1, 0), dtype=np.int64)
    tv = np.empty(max(n - 1, 0), dtype=np.int64)
    joined = 0
    if n <= 1:
        return tu, tv, True
    for index in perm:
        u, v = eu[index], ev[index]
        a, b = _find(parent, u), _find(parent, v)
        if a != b:
            parent[a] = b
            tu[joined] = u
            tv[joined] = v
            joined += 1
            if joined == n - 1:
                break
    return tu, tv, joined == n - 1


@njit(cache=True)
def preorder(n: int, tu: np.ndarray, tv: np.ndarray,
             root: int) -> tuple[np.ndarray, np.ndarray]:
    """Depth-first preorder and parents of a tree from ``root``; each node's neighbours
    are taken in the order their edges joined the tree, the last pushed first."""
    degree = np.zeros(n + 1, dtype=np.int64)
    for k in range(len(tu)):
        degree[tu[k] + 1] += 1
        degree[tv[k] + 1] += 1
    start = np.cumsum(degree)
    fill = start[:-1].copy()
    neighbours = np.empty(2 * len(tu), dtype=np.int64)
    for k in range(len(tu)):
        neighbours[fill[tu[k]]] = tv[k]
        fill[tu[k]] += 1
        neighbours[fill[tv[k]]] = tu[k]
        fill[tv[k]] += 1
    pred = np.full(n, -1, dtype=np.int64)
    order = np.empty(n, dtype=np.int64)
    stack = np.empty(n, dtype=np.int64)
    top = 0
    stack[0] = root
    top = 1
    pred[root] = root
    count = 0
    while top > 0:
        top -= 1
        u = stack[top]
        order[count] = u
        count += 1
        for j in range(start[u], start[u + 1]):
            v = neighbours[j]
            if pred[v] == -1:
                pred[v] = u
                stack[top] = v
                top += 1
    return order, pred


@njit(cache=True)
def subtree_sums(order: np.ndarray, pred: np.ndarray,
                 weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weight and node count of each node's subtree, for a tree given in preorder."""
    subtotal = weights.copy()
    size = np.ones(len(order), dtype=np.int64)
    for i in range(len(order) - 1, 0, -1):
        v = order[i]
        p = pred[v]
        subtotal[p] += subtotal[v]
        size[p] += size[v]
    return subtotal, size


@njit(cache=True)
def _excess_sq(value: float, lower: float, upper: float) -> float:
    below = lower - value
    above = value - upper
    gap = (below if below > 0.0 else 0.0) + (above if above > 0.0 else 0.0)
    return gap * gap


@njit(cache=True)
def best_pair_cut(n: int, eu: np.ndarray, ev: np.ndarray, weights: np.ndarray,
                  perms: np.ndarray, roots: np.ndarray, lower: float,
                  upper: float) -> tuple[bool, float, float, np.ndarray]:
    """The best tree-edge cut over the trees given by ``perms`` and ``roots``.

    Minimises the squared bound excess of the two sides, then their imbalance (the
    first such cut in tree order, and the first tree, win ties). Returns whether every
    tree spanned the nodes, the penalty, the imbalance and the nodes of one side.
    """
    total = 0.0
    for i in range(n):
        total += weights[i]
    best_penalty, best_imbalance = np.inf, np.inf
    best_side = np.empty(0, dtype=np.int64)
    found = False
    for t in range(perms.shape[0]):
        tu, tv, ok = kruskal(n, eu, ev, perms[t])
        if not ok:
            return False, 0.0, 0.0, best_side
        order, pred = preorder(n, tu, tv, roots[t])
        subtotal, size = subtree_sums(order, pred, weights)
        pick, pick_penalty, pick_imbalance = -1, np.inf, np.inf
        for k in range(1, n):
            side = subtotal[order[k]]
            penalty = _excess_sq(side, lower, upper) + _excess_sq(total - side, lower, upper)
            imbalance = abs(2 * side - total)
            if pick < 0 or penalty < pick_penalty or (
                    penalty == pick_penalty and imbalance < pick_imbalance):
                pick, pick_penalty, pick_imbalance = k, penalty, imbalance
        if pick < 0:
            continue
        if not found or pick_penalty < best_penalty or (
                pick_penalty == best_penalty and pick_imbalance < best_imbalance):
            found = True
            best_penalty, best_imbalance = pick_penalty, pick_imbalance
            v = order[pick]
            best_side = order[pick:pick + size[v]].copy()
    return found, best_penalty, best_imbalance, best_side


@njit(cache=True)
def best_window_cut(order: np.ndarray, pred: np.ndarray, weights: np.ndarray, total: float,
                    k: int, k1s: np.ndarray, lows: np.ndarray, highs: np.ndarray,
                    unit: float) -> tuple[float, int, float, int, int, int]:
    """The best cut of one tree (given by its preorder and parents) into a side of
    ``k1s[r]`` parts and the rest, for the windows ``r`` of side weights
    ``[lows[r], highs[r]]``; ``total`` is the weights' sum (as the caller has it, so
    that the shares are the same numbers to the last bit).

    A cut is scored by how far its side's weight lies outside the window (in ``unit``s;
    infinite when a side has fewer nodes than parts), then the window's rank, then the
    side's distance from its share ``k1 / k`` of the total; the first cut in preorder
    wins ties. Returns ``(outside, rank, distance, first, count, k1)``: the side is the
    run ``order[first:first + count]``.
    """
    n = len(order)
    subtotal, size = subtree_sums(order, pred, weights)
    best = (np.inf, 0, np.inf, 1, 0, 0)
    found = False
    for r in range(len(k1s)):
        k1, low, high = k1s[r], lows[r], highs[r]
        share = k1 * total / k
        pick, pick_out, pick_dev = -1, np.inf, np.inf
        for i in range(1, n):
            v = order[i]
            side = subtotal[v]
            below = low - side
            above = side - high
            out = (below if below > 0.0 else 0.0) + (above if above > 0.0 else 0.0)
            if size[v] < k1 or n - size[v] < k - k1:
                out = np.inf
            dev = abs(side - share)
            if pick < 0 or out < pick_out or (out == pick_out and dev < pick_dev):
                pick, pick_out, pick_dev = i, out, dev
        key = pick_out / unit
        if not found or key < best[0] or (key == best[0] and (
                r < best[1] or (r == best[1] and pick_dev < best[2]))):
            found = True
            best = (key, r, pick_dev, pick, size[order[pick]], k1)
    return best
