"""Objectives read from graph attributes: cut edges, inertia in km², travel in km."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from districting.errors import PartitionError
from districting.partition import graph_arrays, objectives


def path(coordinates: list[tuple[float, float]], names: tuple[str, str]) -> nx.Graph:
    graph = nx.path_graph(len(coordinates))
    for v, (x, y) in enumerate(coordinates):
        graph.nodes[v].update({"pop": 2.0, names[0]: x, names[1]: y})
    return graph


def score(graph: nx.Graph, objective: str) -> objectives.Score:
    nodes, weights, edges = graph_arrays(graph, "pop")
    return objectives.build(graph, nodes, edges, weights, objective=objective,
                            edge_weight=None, position=None)


def test_degrees_are_projected_to_kilometres() -> None:
    # 0.01° of latitude is about 1.11 km anywhere.
    graph = path([(63.3, 45.6), (63.3, 45.61), (63.3, 45.62)], ("C_X", "C_Y"))
    inertia = score(graph, "inertia").cost_to(0, np.array([1, 2]))
    assert inertia == pytest.approx([2.0 * 1.112**2, 2.0 * 2.224**2], rel=0.01)
    travel = score(graph, "travel").cost_to(0, np.array([1, 2]))
    assert travel == pytest.approx([2.0 * 1.112, 2.0 * 2.224], rel=0.01)


def test_metres_stay_metres_and_edge_lengths_drive_travel() -> None:
    graph = path([(0.0, 0.0), (3000.0, 4000.0), (3000.0, 9000.0)], ("x", "y"))
    graph.edges[0, 1]["length"] = 10_000.0  # a detour: the street is longer than the line
    graph.edges[1, 2]["length"] = 5_000.0
    assert score(graph, "inertia").cost_to(0, np.array([1])) == pytest.approx([2.0 * 25.0])
    assert score(graph, "travel").cost_to(0, np.array([1, 2])) == pytest.approx([20.0, 30.0])
    labels = np.array([0, 0, 1])
    # Best centre of {0, 1}: either end, 2 × 25 km²; the other part alone costs nothing.
    assert score(graph, "inertia").value(labels) == pytest.approx(50.0)


def test_missing_coordinates_are_a_clear_error() -> None:
    graph = nx.path_graph(3)
    nx.set_node_attributes(graph, 1.0, "pop")
    with pytest.raises(PartitionError, match="needs node coordinates"):
        score(graph, "travel")
