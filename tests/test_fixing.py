"""Variable fixing is safe: it never rules out a connected partition within bounds."""

from __future__ import annotations

import itertools
import random

import networkx as nx
import numpy as np
import pytest

from districting.partition.fixing import (
    back_set,
    largest_part_size,
    neighbour_lists,
    root_order,
    rooted_candidates,
)


def instance(seed: int) -> tuple[int, np.ndarray, np.ndarray]:
    rng = random.Random(seed)
    graph = nx.convert_node_labels_to_integers(nx.grid_2d_graph(3, 4))
    edges = np.array(sorted(tuple(sorted(e)) for e in graph.edges), dtype=np.int64)
    weights = np.array([float(rng.randint(1, 9)) for _ in graph.nodes])
    return graph.number_of_nodes(), edges, weights


@pytest.mark.parametrize("seed", range(5))
def test_back_set_pieces_are_lighter_than_lower(seed: int) -> None:
    n, edges, weights = instance(seed)
    lower = weights.sum() / 3
    back = back_set(neighbour_lists(n, edges), weights, lower)
    graph = nx.Graph(edges.tolist())
    for piece in nx.connected_components(graph.subgraph(np.flatnonzero(back).tolist())):
        assert weights[list(piece)].sum() < lower
    order = root_order(neighbour_lists(n, edges), weights, lower)
    assert sorted(order.tolist()) == list(range(n))
    assert not back[order[: n - back.sum()]].any() and back[order[n - back.sum():]].all()


@pytest.mark.parametrize("seed", range(5))
def test_every_valid_part_keeps_its_root_and_members(seed: int) -> None:
    n, edges, weights = instance(seed)
    total = weights.sum()
    lower, upper = 0.85 * total / 3, 1.15 * total / 3
    order = root_order(neighbour_lists(n, edges), weights, lower)
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    inner_edges = np.sort(position[edges], axis=1)
    inner_weights = weights[order]
    candidates = rooted_candidates(n, inner_edges, inner_weights, lower=lower, upper=upper)
    graph = nx.Graph(inner_edges.tolist())
    checked = 0
    # Every connected node set within bounds could be a part: its first node must be a
    # possible root that may hold all of it.
    for size in range(1, n + 1):
        for subset in itertools.combinations(range(n), size):
            weight = inner_weights[list(subset)].sum()
            if not lower <= weight <= upper or not nx.is_connected(graph.subgraph(subset)):
                continue
            root = min(subset)
            assert root in candidates.members, f"{subset} has no possible root"
            assert set(subset) <= set(candidates.members[root].tolist())
            checked += 1
    assert checked > 0


def test_largest_part_size_counts_the_lightest_nodes() -> None:
    assert largest_part_size(np.array([5.0, 1.0, 2.0, 3.0]), 6.0) == 3
    assert largest_part_size(np.array([5.0, 1.0]), 0.5) == 0
