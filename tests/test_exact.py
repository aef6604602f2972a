"""The exact core and the partition API, proven against published optima where present."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import networkx as nx
import pytest
from click.testing import CliRunner

from districting.cli import main
from districting.errors import PartitionError
from districting.partition.api import partition, verify_assignment
from districting.partition.graphs import read_graph

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
    # The heuristic may miss bounds this tight (±0.5%), but never returns an invalid plan
    # and never beats a proven optimum.
    if heuristic.status == "feasible":
        assert heuristic.objective >= plan.objective
    else:
        assert heuristic.status == "no_plan_found" and heuristic.assignment == {}


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
    ({"objective": "inertia"}, "not implemented yet"),
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
