"""Ground truth for small graphs: every partition into k connected parts within bounds."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import networkx as nx


def connected_partitions(graph: nx.Graph, k: int, weight: str, lower: float,
                         upper: float) -> Iterator[dict[int, int]]:
    """Each partition once, parts numbered in the order of their first node."""
    nodes = sorted(graph.nodes)
    for rest in itertools.product(range(k), repeat=len(nodes) - 1):
        labels = (0, *rest)
        if len(set(labels)) != k or any(labels.index(d) > labels.index(d + 1)
                                        for d in range(k - 1)):
            continue
        assignment = dict(zip(nodes, labels, strict=True))
        if all(_valid([v for v in nodes if assignment[v] == d], graph, weight, lower, upper)
               for d in range(k)):
            yield assignment


def _valid(members: list[int], graph: nx.Graph, weight: str, lower: float,
           upper: float) -> bool:
    total = sum(graph.nodes[v][weight] for v in members)
    # The same 1e-6 tolerance as the API's check, which absorbs float rounding of bounds.
    return (lower - 1e-6 <= total <= upper + 1e-6
            and nx.is_connected(graph.subgraph(members)))
