"""The scalable heuristic: construction, boundary moves, pair re-solves, k free and failures.

Every partition is checked for the invariants: each node in exactly one of k parts,
each part connected, each part within its bounds.
"""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from click.testing import CliRunner
from scipy.sparse.csgraph import connected_components
from scipy.spatial import Delaunay

from districting.cli import main
from districting.partition import adjacency_from_edges, cut_edges, partition, partition_arrays
from districting.partition.heuristic import construct, tree_bisection
from districting.partition.moves import Moves
from districting.partition.polish import _contract, _pair, polish_cut_edges


def city(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Delaunay edges of random points and lumpy weights (many small units, a few big)."""
    rng = np.random.default_rng(seed)
    points = rng.random((n, 2))
    triangles = Delaunay(points).simplices
    pairs = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [0, 2]]])
    edges = np.unique(np.sort(pairs, axis=1), axis=0).astype(np.int64)
    weights = np.round(rng.lognormal(3.0, 1.0, n)).clip(1, 400)
    return edges, weights


def assert_partition(adj: sp.csr_matrix, weights: np.ndarray, labels: np.ndarray, k: int,
                     lower: float, upper: float) -> None:
    """Each node once, parts 0..k-1, each connected and within [lower, upper]."""
    assert labels.shape == (adj.shape[0],)
    assert sorted(np.unique(labels).tolist()) == list(range(k))
    for part in range(k):
        members = np.flatnonzero(labels == part)
        pieces, _ = connected_components(adj[members][:, members], directed=False)
        assert pieces == 1, f"part {part} is in {pieces} pieces"
    totals = np.bincount(labels, weights=weights, minlength=k)
    assert (totals >= lower - 1e-6).all() and (totals <= upper + 1e-6).all(), totals


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_connectivity_check_agrees_with_a_full_search(seed: int) -> None:
    edges, weights = city(400, seed)
    adj = adjacency_from_edges(400, edges)
    labels, _ = tree_bisection(adj, weights, k=8, lower=0.0, upper=np.inf,
                               rng=np.random.default_rng(seed))
    moves = Moves(adj, weights, labels, lower=0.0, upper=np.inf)
    for u in range(400):
        members = np.flatnonzero((labels == labels[u]) & (np.arange(400) != u))
        pieces = connected_components(adj[members][:, members], directed=False)[0] \
            if len(members) else 1
        assert moves.stays_connected(u) == (pieces == 1), u


def test_refinement_lowers_the_cut_and_keeps_every_invariant() -> None:
    edges, weights = city(3000, 4)
    adj = adjacency_from_edges(3000, edges)
    mean = weights.sum() / 40
    lower, upper = 0.9 * mean, 1.1 * mean
    labels, misses = tree_bisection(adj, weights, k=40, lower=lower, upper=upper,
                                    rng=np.random.default_rng(4))
    assert misses == 0
    assert_partition(adj, weights, labels, 40, lower, upper)
    moves = Moves(adj, weights, labels, lower=lower, upper=upper)
    saved = moves.refine(deadline=np.inf, max_moves=10**6)
    refined = moves.array()
    assert_partition(adj, weights, refined, 40, lower, upper)
    assert saved > 0
    assert cut_edges(adj, refined) == cut_edges(adj, labels) - saved


def test_unit_moves_bring_parts_back_within_the_bounds() -> None:
    graph = nx.grid_2d_graph(20, 20)
    adj = nx.to_scipy_sparse_array(graph, nodelist=sorted(graph.nodes), format="csr")
    weights = np.ones(400)
    loose, _ = tree_bisection(adj, weights, k=8, lower=30, upper=70,
                              rng=np.random.default_rng(1))
    moves = Moves(adj, weights, loose, lower=48, upper=52)
    moves.balance(deadline=np.inf, max_moves=10**5)
    assert_partition(adj, weights, moves.array(), 8, 48, 52)


@pytest.mark.parametrize(("units", "k"), [(20_000, 400), (5_000, 100)])
def test_a_large_city_is_split_within_bounds(units: int, k: int) -> None:
    edges, weights = city(units, units)
    adj = adjacency_from_edges(units, edges)
    mean = weights.sum() / k
    result = construct(adj, weights, k=k, lower=0.9 * mean, upper=1.1 * mean, seed=0,
                       time_limit=120)
    assert result.status == "within_bounds"
    assert_partition(adj, weights, result.labels, k, 0.9 * mean, 1.1 * mean)


def test_lumpy_units_are_placed_by_the_search_and_repair() -> None:
    # Few units per part, some nearly a part's ceiling: cuts that fit are rare.
    edges, _ = city(600, 9)
    rng = np.random.default_rng(9)
    weights = np.where(rng.random(600) < 0.05, 700.0, rng.integers(5, 60, 600).astype(float))
    adj = adjacency_from_edges(600, edges)
    k = 40
    mean = weights.sum() / k
    result = construct(adj, weights, k=k, lower=0.7 * mean, upper=1.3 * mean, seed=2,
                       time_limit=120)
    assert result.status == "within_bounds", result.method
    assert_partition(adj, weights, result.labels, k, 0.7 * mean, 1.3 * mean)


def test_a_contracted_pair_keeps_weights_cut_and_connectivity() -> None:
    edges, weights = city(500, 3)
    adj = adjacency_from_edges(500, edges)
    labels, _ = tree_bisection(adj, weights, k=4, lower=0.0, upper=np.inf,
                               rng=np.random.default_rng(3))
    a, b = (int(x) for x in np.unique(labels[edges[labels[edges[:, 0]] != labels[edges[:, 1]]]])
            [:2])
    nodes = np.flatnonzero((labels == a) | (labels == b))
    if not (labels[edges[:, 0]] == a).any():
        pytest.skip("no border")
    pair = _pair(edges, np.ones(len(edges)), labels, nodes)
    free = pair.distance <= 1
    node_of, sub_edges, sub_cost, sub_w, before = _contract(pair, weights, free)
    assert sub_w.sum() == pytest.approx(weights[nodes].sum())
    # Every contracted node is a connected set of one part's nodes.
    for piece in np.unique(node_of):
        members = nodes[node_of == piece]
        assert len(np.unique(labels[members])) == 1
        assert connected_components(adj[members][:, members], directed=False)[0] == 1
    side = (labels[nodes] == b).astype(np.int64)
    sub_side = np.zeros(len(sub_w), dtype=np.int64)
    sub_side[node_of] = side
    assert sub_cost[sub_side[sub_edges[:, 0]] != sub_side[sub_edges[:, 1]]].sum() == before


def test_pair_re_solves_find_the_straight_cut_of_a_grid() -> None:
    graph = nx.grid_2d_graph(10, 10)
    nodes = sorted(graph.nodes)
    index = {v: i for i, v in enumerate(nodes)}
    edges = np.array([sorted((index[u], index[v])) for u, v in graph.edges])
    adj = adjacency_from_edges(100, edges)
    weights = np.ones(100)
    labels, misses = tree_bisection(adj, weights, k=2, lower=50, upper=50,
                                    rng=np.random.default_rng(0))
    assert misses == 0
    polished, log = polish_cut_edges(edges, weights, labels, lower=50, upper=50,
                                     time_limit=60)
    assert_partition(adj, weights, polished, 2, 50, 50)
    assert cut_edges(adj, polished) == 10, log


def test_the_same_seed_gives_the_same_plan() -> None:
    edges, weights = city(300, 5)
    mean = weights.sum() / 3
    first = partition_arrays(edges, weights, 3, lower=0.95 * mean, upper=1.05 * mean,
                             method="heuristic", seed=7, time_limit=120)
    second = partition_arrays(edges, weights, 3, lower=0.95 * mean, upper=1.05 * mean,
                              method="heuristic", seed=7, time_limit=120)
    assert first.status == "feasible" and not first.timed_out
    assert first.labels is not None and second.labels is not None
    assert np.array_equal(first.labels, second.labels)


def grid_graph(rows: int, cols: int, weight: float = 1.0) -> nx.Graph:
    graph = nx.convert_node_labels_to_integers(nx.grid_2d_graph(rows, cols))
    nx.set_node_attributes(graph, weight, "pop")
    return graph


def test_k_free_gives_the_fewest_parts_that_meet_the_bounds() -> None:
    graph = grid_graph(10, 10)
    plan = partition(graph, None, weight="pop", lower=20, upper=30, method="heuristic",
                     time_limit=30)
    assert plan.k == 4 and plan.status == "feasible"  # ceil(100 / 30) = 4
    assert len(set(plan.assignment.values())) == 4
    none_fit = partition(graph, None, weight="pop", lower=26, upper=30, method="heuristic",
                         time_limit=30)
    assert none_fit.status == "infeasible" and not none_fit.assignment
    assert "no number of parts" in none_fit.log[0]


def test_a_unit_above_the_ceiling_is_named() -> None:
    graph = grid_graph(4, 4)
    graph.nodes[5]["pop"] = 50.0
    plan = partition(graph, 4, weight="pop", lower=3, upper=10, method="heuristic")
    assert plan.status == "infeasible" and not plan.assignment
    assert plan.problems == ["unit 5 (50) alone exceeds the upper bound 10"]


def test_a_failed_search_names_the_parts_out_of_bounds_and_returns_no_plan() -> None:
    # A star: any part without the centre is one leaf of weight 1, so two parts of
    # 2.5 each cannot be drawn; the heuristic cannot prove it and must not pretend.
    graph = nx.star_graph(4)
    nx.set_node_attributes(graph, 1.0, "pop")
    plan = partition(graph, 2, weight="pop", lower=2.5, upper=2.5, method="heuristic",
                     time_limit=5)
    assert plan.status == "no_plan_found" and not plan.assignment
    assert plan.problems and all("part" in line and "units" in line for line in plan.problems)


def test_cli_leaves_k_free_and_reports_the_count(tmp_path) -> None:  # type: ignore[no-untyped-def]
    graph = grid_graph(6, 6)
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(nx.adjacency_data(graph)), encoding="utf-8")
    out = tmp_path / "RESULT.json"
    result = CliRunner().invoke(main, ["partition", str(path), "--weight", "pop",
                                       "--lower", "8", "--upper", "10", "--method",
                                       "heuristic", "--out", str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["k"] == 4 and record["status"] == "feasible"  # ceil(36 / 10) = 4
    assert "4 parts" in result.output
    assert "heuristic starts" in result.output  # the progress bar
    quiet = CliRunner().invoke(main, ["-q", "partition", str(path), "--weight", "pop",
                                      "--lower", "8", "--upper", "10", "--method",
                                      "heuristic", "--out", str(out)])
    assert quiet.exit_code == 0 and "heuristic starts" not in quiet.output
