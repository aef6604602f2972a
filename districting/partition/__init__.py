"""Partition a graph into ``k`` connected parts with hard weight bounds.

This is the generic optimisation core: it knows nothing of censuses. The census
hierarchy (:mod:`districting.hierarchy`) calls it once per settlement and level.

The front door is :func:`partition` (a networkx graph) and :func:`partition_arrays`
(arrays); both return a :class:`Partition`, whose ``status`` is a :data:`Status`.
The modules behind it: :mod:`~districting.partition.api` (the front door itself),
:mod:`~districting.partition.heuristic`, :mod:`~districting.partition.moves`,
:mod:`~districting.partition.trees` and :mod:`~districting.partition.polish` (the
heuristic), :mod:`~districting.partition.exact` and :mod:`~districting.partition.fixing`
(the exact models), :mod:`~districting.partition.solvers` (the MIP solvers by name),
:mod:`~districting.partition.objectives` and :mod:`~districting.partition.arrays` (a graph
as arrays). It reads no files: :func:`districting.io.graphs.read_graph` reads a graph file.
"""

from __future__ import annotations

from districting.partition.api import (
    Partition,
    Status,
    graph_arrays,
    partition,
    partition_arrays,
    verify_assignment,
)
from districting.partition.arrays import adjacency_from_edges, cut_edges

__all__ = [
    "Partition",
    "Status",
    "adjacency_from_edges",
    "cut_edges",
    "graph_arrays",
    "partition",
    "partition_arrays",
    "verify_assignment",
]
