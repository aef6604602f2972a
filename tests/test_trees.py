"""The compiled spanning trees draw exactly the trees and cuts of the plain algorithm."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from districting.partition.trees import best_pair_cut, best_window_cut, kruskal, preorder


def reference_tree(n: int, edges: list[tuple[int, int]], perm: np.ndarray,
                   root: int) -> tuple[list[int], list[int]] | None:
    """Kruskal on the edges in ``perm`` order (path halving), then a depth-first preorder."""
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    neighbours: list[list[int]] = [[] for _ in range(n)]
    joined = 0
    for index in perm.tolist():
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


def random_graph(rng: np.random.Generator, n: int) -> list[tuple[int, int]]:
    """A connected random graph: a random path plus extra random edges."""
    path = rng.permutation(n)
    edges = {tuple(sorted((int(path[i]), int(path[i + 1])))) for i in range(n - 1)}
    for _ in range(2 * n):
        u, v = (int(x) for x in rng.integers(n, size=2))
        if u != v:
            edges.add((min(u, v), max(u, v)))
    return sorted(edges)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [2, 3, 17, 120])
def test_the_compiled_tree_is_the_reference_tree(n: int) -> None:
    rng = np.random.default_rng(n)
    for _ in range(20):
        edges = random_graph(rng, n)
        eu = np.array([e[0] for e in edges], dtype=np.int64)
        ev = np.array([e[1] for e in edges], dtype=np.int64)
        perm = rng.permutation(len(edges))
        root = int(rng.integers(n))
        tu, tv, ok = kruskal(n, eu, ev, perm)
        expected = reference_tree(n, edges, perm, root)
        assert ok and expected is not None
        order, pred = preorder(n, tu, tv, root)
        assert order.tolist() == expected[0]
        assert pred.tolist() == expected[1]


def test_a_disconnected_graph_spans_nothing() -> None:
    eu, ev = np.array([0, 2], dtype=np.int64), np.array([1, 3], dtype=np.int64)
    _, _, ok = kruskal(4, eu, ev, np.array([1, 0]))
    assert not ok
    spans, _, _, _ = best_pair_cut(4, eu, ev, np.ones(4), np.array([[0, 1]]), np.array([0]),
                                   1.0, 3.0)
    assert not spans


def test_the_best_cut_is_the_reference_cut() -> None:
    rng = np.random.default_rng(7)
    n = 60
    edges = random_graph(rng, n)
    eu = np.array([e[0] for e in edges], dtype=np.int64)
    ev = np.array([e[1] for e in edges], dtype=np.int64)
    weights = rng.integers(1, 40, size=n).astype(float)
    total = float(weights.sum())
    lower, upper = 0.45 * total, 0.55 * total
    perms = np.stack([rng.permutation(len(edges)) for _ in range(6)])
    roots = rng.integers(n, size=6)
    spans, penalty, imbalance, side = best_pair_cut(n, eu, ev, weights, perms, roots,
                                                    lower, upper)
    best = None
    for perm, root in zip(perms, roots, strict=True):
        found = reference_tree(n, edges, perm, int(root))
        assert found is not None
        order, pred = found
        sub = weights.copy()
        size = np.ones(n, dtype=np.int64)
        for v in reversed(order[1:]):
            sub[pred[v]] += sub[v]
            size[pred[v]] += size[v]
        for k, v in enumerate(order[1:], start=1):
            excess = [max(lower - s, 0.0) + max(s - upper, 0.0) for s in (sub[v], total - sub[v])]
            key = (excess[0] ** 2 + excess[1] ** 2, abs(2 * sub[v] - total))
            if best is None or key < best[0]:
                best = (key, order[k:k + int(size[v])])
    assert spans and best is not None
    assert (penalty, imbalance) == best[0]
    assert side.tolist() == best[1]
    assert lower <= weights[side].sum() <= upper or penalty > 0


def reference_window_cut(order: list[int], pred: list[int], weights: np.ndarray, k: int,
                         windows: list[tuple[int, float, float]]) -> tuple[Any, ...]:
    """The heuristic's plain tree cut: per window, the cut least outside it (nearest its
    share, then first in preorder); over windows, least outside, then rank."""
    n = len(order)
    total = float(weights.sum())
    sub = weights.copy()
    size = np.ones(n, dtype=np.int64)
    for v in reversed(order[1:]):
        sub[pred[v]] += sub[v]
        size[pred[v]] += size[v]
    cuts = np.array(order[1:])
    best = None
    for rank, (k1, lo, hi) in enumerate(windows):
        sums, sizes = sub[cuts], size[cuts]
        outside = np.maximum(lo - sums, 0.0) + np.maximum(sums - hi, 0.0)
        outside[(sizes < k1) | (n - sizes < k - k1)] = np.inf
        deviation = np.abs(sums - k1 * total / k)
        pick = int(np.lexsort((deviation, outside))[0])
        key = (float(outside[pick]) / (total / k), rank, float(deviation[pick]))
        if best is None or key < best[0]:
            v = int(cuts[pick])
            best = (key, sorted(order[order.index(v):order.index(v) + int(size[v])]), k1)
    assert best is not None
    return best


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_the_window_cut_is_the_reference_cut(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = 80, 5
    edges = random_graph(rng, n)
    weights = rng.integers(1, 30, size=n).astype(float)
    weights[rng.integers(n, size=3)] = 200.0  # lumpy units make some cuts impossible
    total = float(weights.sum())
    windows = [(k1, k1 * total / k * 0.95, k1 * total / k * 1.05) for k1 in (2, 3, 1, 4)]
    found = reference_tree(n, edges, rng.permutation(len(edges)), int(rng.integers(n)))
    assert found is not None
    order, pred = found
    outside, rank, deviation, first, count, k1 = best_window_cut(
        np.array(order), np.array(pred), weights, total, k,
        np.array([w[0] for w in windows]), np.array([w[1] for w in windows]),
        np.array([w[2] for w in windows]), total / k)
    key, side, k1_ref = reference_window_cut(order, pred, weights, k, windows)
    assert (outside, rank, deviation) == key
    assert sorted(order[first:first + count]) == side and k1 == k1_ref
