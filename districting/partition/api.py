"""The partition API: a graph, k, weight bounds and an objective in; a verified Plan out."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import scipy.sparse as sp

from districting.errors import PartitionError
from districting.partition import adjacency_from_edges, objectives, partition_graph
from districting.partition.exact import SOLVERS, solve_centred, solve_cut_edges
from districting.partition.polish import best_start

logger = logging.getLogger(__name__)

OBJECTIVES = objectives.OBJECTIVES
METHODS = ("ilp", "heuristic", "auto")
#: Share of the time limit the exact method spends on its starting plan (cut edges).
START_SHARE = 0.3
#: ``method="auto"`` uses the exact model up to this many nodes.
AUTO_EXACT_NODES = 200
#: ... and up to this many parts (the exact model's size grows with k × (n + |E|)).
AUTO_EXACT_PARTS = 8


@dataclass
class Plan:
    """A partition and what is known of its quality.

    ``status`` is ``optimal`` (proven), ``feasible`` (valid, optimality not proven),
    ``infeasible`` (proven: no partition meets the bounds), ``time_limit`` (the
    limit came first; ``assignment`` is the best valid plan found, or empty) or
    ``no_plan_found`` (the heuristic found none, and nothing is proven).
    ``gap`` is ``(objective − bound) / objective`` where a bound is known.
    """

    assignment: dict[str, int]
    objective: float | None
    bound: float | None
    gap: float | None
    status: str
    seconds: float
    method: str
    solver: str
    log: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The RESULT.json record."""
        return {
            "status": self.status, "objective": self.objective, "bound": self.bound,
            "gap": self.gap, "seconds": round(self.seconds, 3), "method": self.method,
            "solver": self.solver, "assignment": self.assignment, "log": self.log,
        }


def graph_arrays(graph: nx.Graph, weight: str) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """Nodes (sorted as text), their ``weight`` and one row ``(u, v)``, ``u < v``, per edge.

    Raises :class:`PartitionError` with one line for a missing, non-numeric, negative
    or non-finite weight, or for node ids that collide as text.
    """
    nodes = sorted(graph.nodes, key=str)
    index = {node: i for i, node in enumerate(nodes)}
    missing = [str(n) for n in nodes if weight not in graph.nodes[n]]
    if missing:
        known = sorted({key for n in nodes[:50] for key in graph.nodes[n]})
        raise PartitionError(
            f"{len(missing)} node(s) have no weight '{weight}' (first: {missing[0]}); "
            f"node attributes include: {', '.join(map(str, known[:12]))}"
        )
    try:
        weights = np.array([float(graph.nodes[n][weight]) for n in nodes])
    except (TypeError, ValueError):
        raise PartitionError(f"node weight '{weight}' must be numeric") from None
    bad = np.flatnonzero(~np.isfinite(weights) | (weights < 0))
    if len(bad):
        raise PartitionError(
            f"node weight '{weight}' must be a finite number ≥ 0; {len(bad)} node(s) are not "
            f"(first: node {nodes[bad[0]]} = {weights[bad[0]]})"
        )
    names = [str(n) for n in nodes]
    if len(set(names)) != len(names):
        raise PartitionError("two nodes have the same name as text (e.g. 1 and '1'); "
                             "node ids must stay distinct as strings")
    edges = np.array(sorted({tuple(sorted((index[u], index[v]))) for u, v in graph.edges
                             if u != v}), dtype=np.int64).reshape(-1, 2)
    return nodes, weights, edges


def verify_assignment(
    graph: nx.Graph, assignment: dict[str, int], *, k: int, weight: str,
    lower: float, upper: float,
) -> list[str]:
    """Every violation of the plan's invariants, checked from scratch on the graph."""
    problems = []
    names = {str(n): n for n in graph.nodes}
    if set(assignment) != set(names):
        problems.append(f"{len(set(names) - set(assignment))} node(s) unassigned, "
                        f"{len(set(assignment) - set(names))} unknown")
        return problems
    parts = sorted(set(assignment.values()))
    if parts != list(range(k)):
        problems.append(f"parts are {parts[:10]}, expected 0..{k - 1}")
    for part in range(k):
        members = [names[n] for n, d in assignment.items() if d == part]
        total = sum(float(graph.nodes[m][weight]) for m in members)
        if not lower - 1e-6 <= total <= upper + 1e-6:
            problems.append(f"part {part} weighs {total:g}, outside [{lower:g}, {upper:g}]")
        if members and not nx.is_connected(graph.subgraph(members)):
            problems.append(f"part {part} is not connected")
    return problems


def partition(
    graph: nx.Graph,
    k: int,
    *,
    weight: str,
    lower: float,
    upper: float,
    objective: str = "cut_edges",
    method: str = "auto",
    time_limit: float = 60.0,
    seed: int = 0,
    solver: str = "highs",
    edge_weight: str | None = None,
    position: tuple[str, str] | None = None,
    exact_model: str = "labelled",
) -> Plan:
    """Partition ``graph`` into ``k`` connected parts whose ``weight`` lies in ``[lower, upper]``.

    Objectives (see :mod:`districting.partition.objectives`): ``cut_edges`` counts
    cut edges, or sums the ``edge_weight`` attribute of cut edges when given;
    ``inertia`` sums weight × squared distance to each part's centre and
    ``travel`` weight × distance along the graph's edges, centres chosen among the
    nodes. ``position`` names the node attributes holding coordinates (found
    automatically when ``None``). ``exact_model`` picks the cut-edge ILP
    (``labelled`` or ``rooted``, see :mod:`districting.partition.exact`).

    ``method="ilp"`` proves optimality when it can, ``"heuristic"`` is fast and
    scales, ``"auto"`` uses the exact model up to :data:`AUTO_EXACT_NODES` nodes and
    :data:`AUTO_EXACT_PARTS` parts, and the heuristic beyond. The exact model starts
    from the heuristic's plan, first
    improved pair of parts by pair of parts (cut edges). A returned plan with status
    ``optimal``, ``feasible`` or ``time_limit`` and a non-empty assignment has
    passed :func:`verify_assignment`.
    """
    if objective not in OBJECTIVES:
        raise PartitionError(f"objective must be one of {', '.join(OBJECTIVES)}, "
                             f"got '{objective}'")
    if method not in METHODS:
        raise PartitionError(f"method must be one of {', '.join(METHODS)}, got '{method}'")
    if solver not in SOLVERS:
        raise PartitionError(f"solver must be one of {', '.join(SOLVERS)}, got '{solver}'")
    if graph.number_of_nodes() == 0:
        raise PartitionError("the graph has no nodes")
    if not 1 <= k <= graph.number_of_nodes():
        raise PartitionError(f"k={k} parts requested for a graph of "
                             f"{graph.number_of_nodes()} nodes")
    if lower > upper:
        raise PartitionError(f"lower bound {lower:g} is above the upper bound {upper:g}")
    if time_limit <= 0:
        raise PartitionError(f"time limit must be positive, got {time_limit:g}")
    start = time.monotonic()
    nodes, weights, edges = graph_arrays(graph, weight)
    n = len(nodes)
    if not nx.is_connected(graph):
        raise PartitionError(f"the graph has {nx.number_connected_components(graph)} "
                             "separate parts; every part must be connected")
    score = objectives.build(graph, nodes, edges, weights, objective=objective,
                             edge_weight=edge_weight, position=position)
    total = float(weights.sum())
    if total < k * lower - 1e-9 or total > k * upper + 1e-9:
        return Plan({}, None, None, None, "infeasible", time.monotonic() - start, method,
                    "-", [f"total weight {total:g} cannot make {k} parts within "
                          f"[{lower:g}, {upper:g}]"])
    adjacency = adjacency_from_edges(n, edges)
    use_exact = method == "ilp" or (method == "auto" and n <= AUTO_EXACT_NODES
                                     and k <= AUTO_EXACT_PARTS)
    log: list[str] = []
    labels: np.ndarray | None
    if use_exact and score.edge_cost is not None:
        labels, steps = best_start(adjacency, edges, weights, k=k, lower=lower, upper=upper,
                                   seed=seed, time_limit=START_SHARE * time_limit,
                                   edge_cost=score.edge_cost, solver=solver)
        log.extend(steps)
    else:
        found, ok = _heuristic(adjacency, weights, k, lower, upper, seed,
                               max(1.0, (0.1 if use_exact else 1.0) * time_limit))
        labels = found if ok else None
        if ok:
            log.append(f"heuristic plan: {score.value(found):g}")
    if labels is None:
        log.append("the heuristic found no partition within the bounds"
                   + ("" if use_exact else " (none is proven impossible; try --method ilp)"))
    used, used_solver = "heuristic", "tree-bisection"
    status = "feasible" if labels is not None else "no_plan_found"
    bound: float | None = None
    if use_exact:
        used, used_solver = "ilp", solver
        left = max(1.0, time_limit - (time.monotonic() - start))
        if score.edge_cost is not None:
            result = solve_cut_edges(n, edges, weights, k=k, lower=lower, upper=upper,
                                     time_limit=left, solver=solver,
                                     edge_cost=score.edge_cost, start=labels,
                                     model_kind=exact_model)
        else:
            result = solve_centred(n, edges, weights, score.cost_to, score.value, k=k,
                                   lower=lower,
                                   upper=upper, time_limit=left, solver=solver, start=labels)
        log.extend(result.log)
        if result.status == "infeasible":
            return Plan({}, None, None, None, "infeasible", time.monotonic() - start, "ilp",
                        solver, log)
        bound = result.bound
        if result.labels is not None:
            labels = result.labels
        status = "optimal" if result.status == "optimal" else "time_limit"
    if labels is None:
        return Plan({}, None, bound, None, status, time.monotonic() - start, used, used_solver,
                    log)
    assignment = {str(node): int(labels[i]) for i, node in enumerate(nodes)}
    problems = verify_assignment(graph, assignment, k=k, weight=weight, lower=lower,
                                 upper=upper)
    if problems:
        raise PartitionError("internal check failed: " + "; ".join(problems))
    value = score.value(labels)
    gap = None
    if bound is not None:
        gap = 0.0 if status == "optimal" or value <= 0 else max(0.0, (value - bound) / value)
    return Plan(assignment, value, bound,
                None if gap is None else round(gap, 6), status, time.monotonic() - start,
                used, used_solver, log)


def _heuristic(
    adjacency: sp.csr_matrix, weights: np.ndarray, k: int, lower: float, upper: float,
    seed: int, time_limit: float,
) -> tuple[np.ndarray, bool]:
    result = partition_graph(adjacency, weights, k=k, lower=lower, upper=upper, seed=seed,
                             time_limit=time_limit)
    return result.labels, result.status == "within_bounds"
