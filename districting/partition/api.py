"""The partition API: a graph, k, weight bounds and an objective in; a verified Partition out."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import networkx as nx
import numpy as np

from districting.errors import PartitionError
from districting.partition import objectives
from districting.partition.arrays import adjacency_from_edges
from districting.partition.exact import solve_centred, solve_cut_edges
from districting.partition.heuristic import construct
from districting.partition.polish import best_start
from districting.partition.solvers import SOLVERS

logger = logging.getLogger(__name__)

OBJECTIVES = objectives.OBJECTIVES
METHODS = ("ilp", "heuristic", "auto")
#: Share of the time limit the exact method spends on its starting plan (cut edges).
START_SHARE = 0.3
#: ``method="auto"`` uses the exact model up to this many nodes.
AUTO_EXACT_NODES = 200
#: ... and up to this many parts (the exact model's size grows with k × (n + |E|)).
AUTO_EXACT_PARTS = 8
#: Heuristic starts for the exact model's starting plan (the model does the rest).
EXACT_STARTS = 16
#: With ``k`` free, this many counts are tried at most, from the fewest up.
FREE_TRIES = 5
#: Heuristic starts are ranked by a centre objective up to this many nodes (by cut above:
#: evaluating a centre objective grows with the square of a part's size).
RANK_BY_VALUE_UPTO = 5_000

#: How a :func:`partition` ended (see :class:`Partition`); written as is to RESULT.json.
Status = Literal["optimal", "feasible", "time_limit", "infeasible", "no_plan_found"]


@dataclass
class Partition:
    """A partition and what is known of its quality: the result of :func:`partition`
    and :func:`partition_arrays`.

    ``status`` (a :data:`Status`) is ``optimal`` (proven), ``feasible`` (valid,
    optimality not proven), ``infeasible`` (proven: no partition meets the bounds),
    ``time_limit`` (the limit came first; ``assignment`` is the best valid plan found,
    or empty) or ``no_plan_found`` (the heuristic found none, and nothing is proven).
    ``gap`` is ``(objective − bound) / objective`` where a bound is known. ``k`` is
    the number of parts (chosen when it was left free); ``problems`` names the units
    or parts that broke the bounds when there is no plan.
    """

    assignment: dict[str, int]
    objective: float | None
    bound: float | None
    gap: float | None
    status: Status
    seconds: float
    method: str
    solver: str
    log: list[str] = field(default_factory=list)
    k: int | None = None
    problems: list[str] = field(default_factory=list)
    #: Whether the time limit stopped the heuristic before its planned effort (the plan
    #: may then differ on a faster or slower machine).
    timed_out: bool = False
    #: Node labels in the order of the input arrays: the plan, or when there is none,
    #: the heuristic's best attempt (not a valid plan; kept for diagnosis), if any (see
    #: ``best_effort`` of :func:`partition_arrays`).
    labels: np.ndarray | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The RESULT.json record."""
        return {
            "status": self.status, "k": self.k, "objective": self.objective,
            "bound": self.bound, "gap": self.gap, "seconds": round(self.seconds, 3),
            "method": self.method, "solver": self.solver, "problems": self.problems,
            "assignment": self.assignment, "log": self.log,
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
    k: int | None,
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
    progress: bool = False,
) -> Partition:
    """Partition ``graph`` into ``k`` connected parts whose ``weight`` lies in ``[lower, upper]``.

    ``k=None`` asks for the fewest parts that meet the bounds: counts from
    ``ceil(total / upper)`` upwards are tried in turn (at most :data:`FREE_TRIES`),
    and the first that yields a plan is kept.

    Objectives (see :mod:`districting.partition.objectives`): ``cut_edges`` counts
    cut edges, or sums the ``edge_weight`` attribute of cut edges when given;
    ``inertia`` sums weight × squared distance to each part's centre and
    ``travel`` weight × distance along the graph's edges, centres chosen among the
    nodes. ``position`` names the node attributes holding coordinates (found
    automatically when ``None``). ``exact_model`` picks the cut-edge ILP
    (``labelled`` or ``rooted``, see :mod:`districting.partition.exact`).

    ``method="ilp"`` proves optimality when it can, ``"heuristic"`` is fast and
    scales (seeded starts, boundary moves, and exact re-solves of pairs of parts
    for the cut with few parts), ``"auto"`` uses the exact model up to
    :data:`AUTO_EXACT_NODES` nodes and :data:`AUTO_EXACT_PARTS` parts, starting
    from the heuristic's plan, and the heuristic beyond. A returned plan with
    status ``optimal``, ``feasible`` or ``time_limit`` and a non-empty assignment
    has passed :func:`verify_assignment`; any other status comes with an empty
    assignment and, in ``problems``, the units or parts that broke the bounds.
    ``progress`` shows a progress bar of the heuristic's starts and polishing.
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
    if k is not None and not 1 <= k <= graph.number_of_nodes():
        raise PartitionError(f"k={k} parts requested for a graph of "
                             f"{graph.number_of_nodes()} nodes")
    if lower > upper:
        raise PartitionError(f"lower bound {lower:g} is above the upper bound {upper:g}")
    if time_limit <= 0:
        raise PartitionError(f"time limit must be positive, got {time_limit:g}")
    start = time.monotonic()
    nodes, weights, edges = graph_arrays(graph, weight)
    if not nx.is_connected(graph):
        raise PartitionError(f"the graph has {nx.number_connected_components(graph)} "
                             "separate parts; every part must be connected")
    score = objectives.build(graph, nodes, edges, weights, objective=objective,
                             edge_weight=edge_weight, position=position)
    plan = partition_arrays(edges, weights, k, lower=lower, upper=upper, score=score,
                            names=[str(node) for node in nodes], method=method,
                            time_limit=time_limit - (time.monotonic() - start), seed=seed,
                            solver=solver, exact_model=exact_model, progress=progress)
    if plan.assignment:
        assert plan.k is not None
        problems = verify_assignment(graph, plan.assignment, k=plan.k, weight=weight,
                                     lower=lower, upper=upper)
        if problems:
            raise PartitionError("internal check failed: " + "; ".join(problems))
    plan.seconds = time.monotonic() - start
    return plan


def partition_arrays(
    edges: np.ndarray,
    weights: np.ndarray,
    k: int | None,
    *,
    lower: float,
    upper: float,
    score: objectives.Score | None = None,
    names: list[str] | None = None,
    method: str = "auto",
    time_limit: float = 60.0,
    seed: int = 0,
    solver: str = "highs",
    exact_model: str = "labelled",
    starts: int | None = None,
    polish: bool = True,
    exact_nodes: int | None = None,
    keep_unproven: bool = True,
    progress: bool = False,
    best_effort: bool = False,
) -> Partition:
    """:func:`partition` on a connected graph given as arrays: one row ``(u, v)`` per edge.

    ``score`` is the objective (cut edges when ``None``); ``names`` name the nodes in
    ``assignment`` and in messages (their index as text when ``None``). ``labels`` of
    the returned plan follow the order of ``weights``. ``starts`` and ``polish`` set the
    heuristic's effort (see :func:`~districting.partition.polish.best_start`).
    ``exact_nodes`` caps the exact model's work in branch-and-bound nodes, the same on
    any machine. With ``keep_unproven`` false, an exact solve that ends without a proof
    of optimality gives way to the heuristic's plan, which depends on the seed only.
    Together they make the plan independent of the machine's speed, unless the clock
    still cuts a step short first: the plan's ``timed_out`` then says so.

    With ``best_effort``, a result without labels (no plan meets the bounds, and the
    heuristic left no attempt, e.g. because the bounds were proven impossible) gets, as
    ``labels``, one heuristic start (:func:`~districting.partition.heuristic.construct`
    with ``seed`` and the whole ``time_limit``, counting cut edges): connected parts
    covering the graph, some of them out of bounds, so that each can be reported. Its
    status stays what it was, and ``timed_out`` is the start's.
    """
    start = time.monotonic()
    weights = np.asarray(weights, dtype=float)
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    if names is None:
        names = [str(i) for i in range(len(weights))]
    if score is None:
        score = objectives.Score("cut_edges", edges, weights, edge_cost=np.ones(len(edges)))
    heavy = np.flatnonzero(weights > upper + 1e-9)
    counts = ([] if len(heavy) else [k] if k is not None
              else _free_counts(float(weights.sum()), len(weights), lower, upper))
    plan: Partition | None = None
    if len(heavy):
        listed = _listed([f"{names[i]} ({weights[i]:g})" for i in heavy])
        plan = Partition({}, None, None, None, "infeasible", time.monotonic() - start, method,
                         "-", [f"{len(heavy)} unit(s) weigh more than the upper bound {upper:g}"],
                         k=k, problems=[f"unit {listed} alone exceeds the upper bound {upper:g}"])
    elif not counts:
        plan = Partition({}, None, None, None, "infeasible", time.monotonic() - start, method,
                         "-", [f"no number of parts fits a total weight of {weights.sum():g} "
                               f"into [{lower:g}, {upper:g}] each"])
    for count in counts:
        left = time_limit - (time.monotonic() - start)
        if plan is not None and left <= 0:
            break
        plan = _plan_for(names, edges, weights, score, k=count, lower=lower, upper=upper,
                         method=method, time_limit=max(left, 1.0), seed=seed, solver=solver,
                         exact_model=exact_model, starts=starts, polish=polish,
                         exact_nodes=exact_nodes, keep_unproven=keep_unproven,
                         progress=progress)
        if k is None:
            plan.log.insert(0, f"k free: {count} part(s)")
        if plan.assignment:
            break
    assert plan is not None
    if best_effort and plan.labels is None and plan.k is not None:
        draft = construct(adjacency_from_edges(len(weights), edges), weights, k=plan.k,
                          lower=lower, upper=upper, seed=seed, time_limit=time_limit)
        plan.labels, plan.timed_out = draft.labels, draft.timed_out
        plan.log.append(f"best effort: one heuristic start, {draft.parts_outside} part(s) "
                        "outside the bounds")
    plan.seconds = time.monotonic() - start
    return plan


def _free_counts(total: float, n: int, lower: float, upper: float) -> list[int]:
    """Part counts whose bounds can hold ``total``, fewest first (at most :data:`FREE_TRIES`)."""
    fewest = max(1, math.ceil(total / upper - 1e-9)) if upper > 0 else n
    most = n if lower <= 0 else min(n, math.floor(total / lower + 1e-9))
    return list(range(fewest, min(most, fewest + FREE_TRIES - 1) + 1))


def _plan_for(
    names: list[str], edges: np.ndarray, weights: np.ndarray, score: objectives.Score, *,
    k: int, lower: float, upper: float, method: str, time_limit: float, seed: int,
    solver: str, exact_model: str, starts: int | None, polish: bool,
    exact_nodes: int | None, keep_unproven: bool, progress: bool,
) -> Partition:
    """The plan for one count of parts, ``k``."""
    start = time.monotonic()
    n = len(names)
    total = float(weights.sum())
    if total < k * lower - 1e-9 or total > k * upper + 1e-9:
        return Partition({}, None, None, None, "infeasible", time.monotonic() - start, method,
                         "-", [f"total weight {total:g} cannot make {k} parts within "
                               f"[{lower:g}, {upper:g}]"], k=k)
    adjacency = adjacency_from_edges(n, edges)
    use_exact = method == "ilp" or (method == "auto" and n <= AUTO_EXACT_NODES
                                     and k <= AUTO_EXACT_PARTS)
    share = START_SHARE if use_exact else 1.0
    found_start = best_start(
        adjacency, edges, weights, k=k, lower=lower, upper=upper, seed=seed,
        time_limit=share * time_limit, edge_cost=score.edge_cost,
        value=None if score.edge_cost is not None or n > RANK_BY_VALUE_UPTO else score.value,
        solver=solver, starts=EXACT_STARTS if use_exact and starts is None else starts,
        polish=polish, progress=progress)
    labels, valid, log = found_start.labels, found_start.valid, found_start.log
    timed_out = found_start.timed_out
    problems = [] if valid else _outside_bounds(names, weights, labels, lower, upper)
    found: np.ndarray | None = labels if valid else None
    if not valid:
        log.append("the heuristic found no partition within the bounds"
                   + ("" if use_exact else " (none is proven impossible; try --method ilp)"))
    used, used_solver = "heuristic", "tree-bisection"
    status: Status = "feasible" if valid else "no_plan_found"
    bound: float | None = None
    if use_exact:
        used, used_solver = "ilp", solver
        left = max(1.0, time_limit - (time.monotonic() - start))
        if score.edge_cost is not None:
            result = solve_cut_edges(n, edges, weights, k=k, lower=lower, upper=upper,
                                     time_limit=left, solver=solver,
                                     edge_cost=score.edge_cost, start=found,
                                     model_kind=exact_model, max_nodes=exact_nodes)
        else:
            result = solve_centred(n, edges, weights, score.cost_to, score.value, k=k,
                                   lower=lower, upper=upper, time_limit=left, solver=solver,
                                   start=found, max_nodes=exact_nodes)
        timed_out = timed_out or result.clock_cut
        log.extend(result.log)
        if result.status == "infeasible":
            return Partition({}, None, None, None, "infeasible", time.monotonic() - start,
                             "ilp", solver, log, k=k)
        bound = result.bound
        if result.status != "optimal" and not keep_unproven and found is not None:
            spent = ("the time limit" if result.clock_cut
                     else f"{exact_nodes} branch-and-bound nodes")
            log.append(f"no proof of optimality within {spent}: kept the heuristic's plan")
            used, used_solver = "heuristic", "tree-bisection"
            bound = None
        else:
            if result.labels is not None:
                found, problems = result.labels, []
            status = "optimal" if result.status == "optimal" else "time_limit"
    if found is None:
        return Partition({}, None, bound, None, status, time.monotonic() - start, used,
                         used_solver, log, k=k, problems=problems, labels=labels,
                         timed_out=timed_out)
    assignment = {name: int(found[i]) for i, name in enumerate(names)}
    value = score.value(found)
    gap = None
    if bound is not None:
        gap = 0.0 if status == "optimal" or value <= 0 else max(0.0, (value - bound) / value)
    return Partition(assignment, value, bound, None if gap is None else round(gap, 6), status,
                     time.monotonic() - start, used, used_solver, log, k=k, labels=found,
                     timed_out=timed_out)


def _outside_bounds(names: list[str], weights: np.ndarray, labels: np.ndarray,
                    lower: float, upper: float) -> list[str]:
    """One line per part of ``labels`` outside the bounds, naming its units."""
    totals = np.bincount(labels, weights=weights)
    lines = []
    for part in np.flatnonzero((totals < lower - 1e-9) | (totals > upper + 1e-9)).tolist():
        members = np.flatnonzero(labels == part)
        side = (f"below the lower bound {lower:g}" if totals[part] < lower
                else f"above the upper bound {upper:g}")
        lines.append(f"best attempt's part {part} weighs {totals[part]:g}, {side}: "
                     f"units {_listed([names[i] for i in members])}")
    return lines


def _listed(items: list[str], shown: int = 10) -> str:
    """The first ``shown`` items, comma-separated, and how many more there are."""
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more
