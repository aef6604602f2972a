"""Contract tests of the partition core: every part connected, within bounds, every node once."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from districting.errors import PartitionError
from districting.partition import cut_edges
from districting.partition.heuristic import construct


def grid_adjacency(rows: int, cols: int) -> sp.csr_matrix:
    graph = nx.grid_2d_graph(rows, cols)
    return nx.to_scipy_sparse_array(graph, nodelist=sorted(graph.nodes), format="csr")


def assert_valid(adj: sp.csr_matrix, labels: np.ndarray, k: int) -> None:
    """Every node in exactly one of k parts, and every part connected."""
    assert labels.shape == (adj.shape[0],)
    assert set(np.unique(labels)) == set(range(k))
    for part in range(k):
        members = np.flatnonzero(labels == part)
        count, _ = connected_components(adj[members][:, members], directed=False)
        assert count == 1, f"part {part} has {count} pieces"


@pytest.mark.parametrize(("rows", "cols", "k", "tolerance"), [
    (10, 10, 4, 0.05), (20, 15, 12, 0.10), (8, 30, 5, 0.02), (25, 25, 25, 0.10),
])
def test_uniform_grid_is_split_within_bounds(rows: int, cols: int, k: int,
                                             tolerance: float) -> None:
    adj = grid_adjacency(rows, cols)
    weights = np.ones(rows * cols)
    target = weights.sum() / k
    lower, upper = target * (1 - tolerance), target * (1 + tolerance)
    result = construct(adj, weights, k=k, lower=lower, upper=upper, seed=3)
    assert_valid(adj, result.labels, k)
    totals = result.part_weights(weights)
    assert result.status == "within_bounds"
    assert (totals >= lower).all() and (totals <= upper).all()
    assert result.cut_edges == cut_edges(adj, result.labels) > 0


def test_lumpy_weights_still_meet_the_bounds() -> None:
    rng = np.random.default_rng(5)
    adj = grid_adjacency(20, 20)
    weights = rng.choice([1.0, 1.0, 1.0, 8.0, 15.0], size=400)
    k = 16
    target = weights.sum() / k
    result = construct(adj, weights, k=k, lower=0.8 * target, upper=1.2 * target, seed=1)
    assert_valid(adj, result.labels, k)
    totals = result.part_weights(weights)
    assert result.status == "within_bounds", totals


def test_same_seed_same_partition_and_other_seed_differs() -> None:
    adj = grid_adjacency(15, 15)
    weights = np.ones(225)
    args = {"k": 9, "lower": 22.0, "upper": 28.0}
    first = construct(adj, weights, seed=11, **args)
    second = construct(adj, weights, seed=11, **args)
    other = construct(adj, weights, seed=12, **args)
    assert np.array_equal(first.labels, second.labels)
    assert not np.array_equal(first.labels, other.labels)


def test_unreachable_bounds_are_reported_not_hidden() -> None:
    adj = grid_adjacency(4, 4)
    weights = np.ones(16)
    weights[0] = 50.0  # one node heavier than the ceiling
    result = construct(adj, weights, k=4, lower=3.0, upper=10.0, seed=0, time_limit=5)
    assert_valid(adj, result.labels, 4)
    assert result.status == "bounds_violated"


def test_one_part_is_the_whole_graph() -> None:
    adj = grid_adjacency(3, 3)
    result = construct(adj, np.ones(9), k=1, lower=0, upper=100, seed=0)
    assert (result.labels == 0).all() and result.cut_edges == 0


@pytest.mark.parametrize(("k", "message"), [(0, "k=0"), (10, "k=10")])
def test_impossible_k_is_a_clear_error(k: int, message: str) -> None:
    with pytest.raises(PartitionError, match=message):
        construct(grid_adjacency(3, 3), np.ones(9), k=k, lower=0, upper=9, seed=0)


def test_disconnected_graph_is_refused() -> None:
    adj = sp.block_diag([grid_adjacency(2, 2), grid_adjacency(2, 2)]).tocsr()
    with pytest.raises(PartitionError, match="2 separate parts"):
        construct(adj, np.ones(8), k=2, lower=3, upper=5, seed=0)
