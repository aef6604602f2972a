"""The exact core and the partition API, proven against published optima where present."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from brute import connected_partitions
from click.testing import CliRunner

from districting.cli import main
from districting.errors import PartitionError
from districting.io.graphs import read_graph
from districting.partition import partition, partition_arrays, verify_assignment
from districting.partition.exact import solve_cut_edges

SMALL = ("county/county23.json.gz", "county/county35.json.gz", "county/county16.json.gz")


def optima(shared: Path) -> dict[str, dict[str, str]]:
    with (shared / "graphs" / "optima.csv").open(encoding="utf-8") as handle:
        return {row["file"]: row for row in csv.DictReader(handle)}


@pytest.mark.parametrize("name", SMALL)
def test_ilp_reaches_the_published_optimum(shared_data: Path, name: str) -> None:
    row = optima(shared_data)[name]
    graph = read_graph(shared_data / "graphs" / name)
    k, lower, upper = int(row["k"]), float(row["lower"]), float(row["upper"])
    plan = partition(graph, k, weight="TOTPOP", lower=lower, upper=upper, method="ilp",
                     time_limit=120)
    assert plan.status == "optimal"
    assert plan.objective == int(row["optimal_cut_edges"])
    assert plan.bound == pytest.approx(plan.objective) and plan.gap == 0
    assert verify_assignment(graph, plan.assignment, k=k, weight="TOTPOP", lower=lower,
                             upper=upper) == []
    heuristic = partition(graph, k, weight="TOTPOP", lower=lower, upper=upper,
                          method="heuristic", seed=1, time_limit=20)
    # Bounds this tight (±0.5%) are met; a heuristic plan never beats a proven optimum.
    assert heuristic.status == "feasible" and heuristic.method == "heuristic"
    assert heuristic.objective is not None and heuristic.objective >= plan.objective


def ladder(rungs: int) -> nx.Graph:
    graph = nx.ladder_graph(rungs)
    nx.set_node_attributes(graph, 1, "pop")
    return graph


def test_contiguity_cuts_are_needed_and_enforced() -> None:
    # A 2×6 ladder in 3 parts of exactly 4: the unconstrained optimum is not connected.
    graph = ladder(6)
    plan = partition(graph, 3, weight="pop", lower=4, upper=4, method="ilp", time_limit=60)
    assert plan.status == "optimal" and plan.objective == 4
    assert verify_assignment(graph, plan.assignment, k=3, weight="pop", lower=4, upper=4) == []


def test_proven_infeasible_bounds_are_reported() -> None:
    graph = nx.star_graph(4)  # a centre and 4 leaves: any 2 connected parts are 1 + 4
    nx.set_node_attributes(graph, 1, "pop")
    plan = partition(graph, 2, weight="pop", lower=2, upper=3, method="ilp", time_limit=30)
    assert plan.status == "infeasible" and plan.assignment == {}


def test_cbc_solves_the_same_instance() -> None:
    graph = ladder(4)
    plan = partition(graph, 2, weight="pop", lower=4, upper=4, method="ilp", solver="cbc",
                     time_limit=60)
    assert plan.status == "optimal" and plan.objective == 2


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"objective": "magic"}, "objective must be"),
    ({"objective": "inertia"}, "needs node coordinates"),
    ({"objective": "cut_edges", "edge_weight": "missing"}, "no attribute 'missing'"),
    ({"method": "magic"}, "method must be"),
    ({"weight": "missing"}, "no weight 'missing'"),
    ({"weight": "negative"}, "finite number ≥ 0"),
])
def test_bad_requests_are_clear_errors(kwargs: dict[str, str], message: str) -> None:
    options = {"weight": "pop", "lower": 1.0, "upper": 10.0, **kwargs}
    graph = ladder(3)
    nx.set_node_attributes(graph, {0: -3.0}, "negative")
    nx.set_node_attributes(graph, {n: 1.0 for n in graph.nodes if n != 0}, "negative")
    with pytest.raises(PartitionError, match=message):
        partition(graph, 2, **options)  # type: ignore[arg-type]


def small_instance(seed: int) -> nx.Graph:
    rng = random.Random(seed)
    graph = nx.grid_2d_graph(3, 3)
    graph.add_edge((0, 0), (1, 1))  # not planar-regular: a diagonal
    graph = nx.convert_node_labels_to_integers(graph, label_attribute="cell")
    for v in graph.nodes:
        row, col = graph.nodes[v].pop("cell")
        graph.nodes[v].update(pop=rng.randint(1, 9), x=100.0 * col + rng.random(),
                              y=100.0 * row + rng.random())
    for u, v in graph.edges:
        graph.edges[u, v]["length"] = float(rng.randint(1, 5))
    return graph


def brute_force(graph: nx.Graph, k: int, lower: float, upper: float, objective: str,
                edge_weight: str | None) -> float | None:
    from districting.partition import graph_arrays, objectives

    nodes, weights, edges = graph_arrays(graph, "pop")
    score = objectives.build(graph, nodes, edges, weights, objective=objective,
                             edge_weight=edge_weight, position=None)
    values = []
    for assignment in connected_partitions(graph, k, "pop", lower, upper):
        labels = np.array([assignment[v] for v in nodes])
        values.append(score.value(labels))
    return min(values) if values else None


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("objective", "edge_weight"), [
    ("cut_edges", None), ("cut_edges", "length"), ("inertia", None), ("travel", None)])
def test_ilp_matches_brute_force(seed: int, objective: str, edge_weight: str | None) -> None:
    graph = small_instance(seed)
    total = sum(graph.nodes[v]["pop"] for v in graph.nodes)
    k = 2 + seed % 2
    lower, upper = 0.8 * total / k, 1.2 * total / k
    best = brute_force(graph, k, lower, upper, objective, edge_weight)
    plan = partition(graph, k, weight="pop", lower=lower, upper=upper, objective=objective,
                     edge_weight=edge_weight, method="ilp", time_limit=60)
    if best is None:
        assert plan.status == "infeasible" and plan.assignment == {}
        return
    assert plan.status == "optimal"
    assert plan.objective == pytest.approx(best, rel=1e-6)
    assert plan.bound == pytest.approx(best, rel=1e-6) and plan.gap == 0
    assignment = {int(node): part for node, part in plan.assignment.items()}
    assert verify_assignment(graph, {str(v): d for v, d in assignment.items()}, k=k,
                             weight="pop", lower=lower, upper=upper) == []


def test_polishing_never_worsens_a_plan_and_keeps_it_valid() -> None:
    from districting.partition import adjacency_from_edges, cut_edges, graph_arrays
    from districting.partition.polish import polish_cut_edges

    graph = nx.grid_2d_graph(6, 6)
    graph = nx.convert_node_labels_to_integers(graph)
    nx.set_node_attributes(graph, 1, "pop")
    nodes, weights, edges = graph_arrays(graph, "pop")
    # Three vertical stripes of 12, cut awkwardly into a staircase.
    labels = np.array([min(2, (v % 6 + (v // 6) % 2) // 2) for v in nodes])
    totals = np.bincount(labels, weights=weights)
    lower, upper = float(totals.min()), float(totals.max())
    before = cut_edges(adjacency_from_edges(len(nodes), edges), labels)
    polished, log = polish_cut_edges(edges, weights, labels, lower=lower, upper=upper,
                                     time_limit=30)
    after = cut_edges(adjacency_from_edges(len(nodes), edges), polished)
    assert after <= before
    assignment = {str(v): int(polished[i]) for i, v in enumerate(nodes)}
    assert verify_assignment(graph, assignment, k=3, weight="pop", lower=lower,
                             upper=upper) == []
    assert (after < before) == bool(log)


def test_cli_writes_result_json_and_reports_infeasible_with_exit_0(tmp_path: Path) -> None:
    graph = nx.star_graph(4)
    nx.set_node_attributes(graph, 1, "pop")
    path = tmp_path / "star.json"
    path.write_text(json.dumps(nx.readwrite.json_graph.adjacency_data(graph)), encoding="utf-8")
    out = tmp_path / "result.json"
    runner = CliRunner()
    result = runner.invoke(main, ["partition", str(path), "--weight", "pop", "-k", "2",
                                  "--lower", "2", "--upper", "3", "--method", "ilp",
                                  "--time-limit", "30", "--out", str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["status"] == "infeasible"
    ok = runner.invoke(main, ["partition", str(path), "--weight", "pop", "-k", "2",
                              "--lower", "1", "--upper", "4", "--method", "auto",
                              "--time-limit", "30", "--out", str(out)])
    assert ok.exit_code == 0, ok.output
    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["status"] == "optimal" and set(record["assignment"]) == {"0", "1", "2", "3", "4"}
    assert {"objective", "bound", "gap", "seconds", "method", "solver"} <= set(record)
    bad = runner.invoke(main, ["partition", str(tmp_path / "nope.json"), "--weight", "pop",
                               "-k", "2", "--lower", "1", "--upper", "4", "--out", str(out)])
    assert bad.exit_code == 1 and "not found" in bad.output and "Traceback" not in bad.output


def test_a_plan_gpkg_is_a_graph(register_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan"
    assert CliRunner().invoke(main, ["-q", "plan", str(register_file), "--out",
                                     str(out)]).exit_code == 0
    graph = read_graph(out / "plan.gpkg")
    assert graph.number_of_nodes() == 348
    assert nx.number_connected_components(graph) == 2  # one per settlement
    assert "residents" in graph.nodes[next(iter(graph.nodes))]


def test_cli_centre_objectives_and_position_option(tmp_path: Path) -> None:
    graph = small_instance(3)
    nx.set_node_attributes(graph, {v: graph.nodes[v]["x"] for v in graph.nodes}, "east")
    nx.set_node_attributes(graph, {v: graph.nodes[v]["y"] for v in graph.nodes}, "north")
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(nx.readwrite.json_graph.adjacency_data(graph)), encoding="utf-8")
    total = sum(graph.nodes[v]["pop"] for v in graph.nodes)
    runner = CliRunner()
    for objective in ("inertia", "travel"):
        out = tmp_path / f"{objective}.json"
        result = runner.invoke(main, [
            "partition", str(path), "--weight", "pop", "-k", "2", "--lower", str(0.8 * total / 2),
            "--upper", str(1.2 * total / 2), "--objective", objective, "--position", "east,north",
            "--method", "ilp", "--time-limit", "30", "--out", str(out)])
        assert result.exit_code == 0, result.output
        record = json.loads(out.read_text(encoding="utf-8"))
        best = brute_force(graph, 2, 0.8 * total / 2, 1.2 * total / 2, objective, None)
        assert record["status"] == "optimal"
        assert record["objective"] == pytest.approx(best)
    bad = runner.invoke(main, ["partition", str(path), "--weight", "pop", "-k", "2",
                               "--lower", "1", "--upper", "99", "--objective", "inertia",
                               "--position", "east", "--out", str(tmp_path / "x.json")])
    assert bad.exit_code == 2 and "two attribute names" in bad.output


def test_auto_uses_the_heuristic_for_many_parts() -> None:
    graph = nx.convert_node_labels_to_integers(nx.grid_2d_graph(10, 12))
    nx.set_node_attributes(graph, 1.0, "pop")
    plan = partition(graph, 20, weight="pop", lower=5, upper=7, method="auto", time_limit=30)
    assert plan.method == "heuristic" and plan.status == "feasible"
    assert verify_assignment(graph, plan.assignment, k=20, weight="pop", lower=5,
                             upper=7) == []
    small = partition(graph, 4, weight="pop", lower=28, upper=32, method="auto", time_limit=3)
    assert small.method == "ilp" and small.assignment


def weighted_grid(rows: int, cols: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Edges and random weights (1–9) of a grid graph."""
    graph = nx.convert_node_labels_to_integers(nx.grid_2d_graph(rows, cols))
    weights = np.random.default_rng(seed).integers(1, 10, rows * cols).astype(float)
    return np.array(graph.edges()), weights


def test_a_node_budget_stops_the_exact_search_without_blaming_the_clock() -> None:
    # This 4×5 grid's optimum (8 cut edges) needs branching to prove.
    edges, weights = weighted_grid(4, 5, seed=1)
    mean = weights.sum() / 3
    bounds = {"k": 3, "lower": mean * 0.95, "upper": mean * 1.05, "time_limit": 60}
    proven = solve_cut_edges(20, edges, weights, **bounds)
    assert proven.status == "optimal" and proven.objective == 8 and not proven.clock_cut
    first, second = (solve_cut_edges(20, edges, weights, max_nodes=1, **bounds)
                     for _ in range(2))
    assert first.status == "time_limit" and not first.clock_cut
    assert first.labels is not None and second.labels is not None
    assert np.array_equal(first.labels, second.labels)


def test_the_clock_cutting_the_exact_search_is_flagged() -> None:
    # A 5×5 grid in 4 parts takes HiGHS several seconds to prove; one second is not enough.
    edges, weights = weighted_grid(5, 5, seed=7)
    mean = weights.sum() / 4
    cut = solve_cut_edges(25, edges, weights, k=4, lower=mean * 0.95, upper=mean * 1.05,
                          time_limit=1)
    assert cut.status == "time_limit" and cut.clock_cut


def test_an_unproven_exact_plan_gives_way_to_the_heuristic_one() -> None:
    edges, weights = weighted_grid(4, 5, seed=1)
    mean = weights.sum() / 3
    bounds = {"lower": mean * 0.95, "upper": mean * 1.05, "method": "auto", "seed": 3,
              "time_limit": 60, "keep_unproven": False, "starts": 4}
    exact = partition_arrays(edges, weights, 3, **bounds)
    assert exact.method == "ilp" and exact.status == "optimal" and exact.objective == 8
    budgeted = [partition_arrays(edges, weights, 3, exact_nodes=1, **bounds) for _ in range(2)]
    heuristic = partition_arrays(edges, weights, 3, **{**bounds, "method": "heuristic"})
    for plan in budgeted:
        assert plan.method == "heuristic" and plan.status == "feasible"
        assert not plan.timed_out  # the budget, not the clock, ended the search
        assert plan.labels is not None and heuristic.labels is not None
        assert np.array_equal(plan.labels, heuristic.labels)
        assert any("within 1 branch-and-bound nodes" in line for line in plan.log)
