"""Exact districting: mixed-integer models solved with HiGHS (or CBC) through pulp.

Nodes are first put in :func:`~districting.partition.fixing.root_order`; a part's
*root* is its first node in that order, so every partition has exactly one
representation and no symmetry between labels is left.

- **Labelled model** (cut edges, the default). ``p[i, d] = 1`` puts node ``i`` in
  part ``d``; ``r[j, d] = 1`` makes ``j`` the root of part ``d``; parts are numbered
  in the order of their roots. ``k × (n + |E|)`` variables.
- **Rooted model** (cut edges, for comparison). ``x[i, j] = 1`` when node ``i``
  joins the part rooted at ``j``; ``|E| × roots`` objective variables.
- **Centred model** (inertia, travel). ``x[i, j] = 1`` when ``i`` joins the part
  centred at ``j`` (``x[j, j]`` opens the centre); each node pays its cost to its centre.

Cut edges are counted in extended form, ``z[u, v, d] ≥ p[u, d] − p[v, d]`` summed over
parts, whose relaxation counts an edge by the total variation of its ends' labels.
Their contiguity is exact and compact: a single-commodity flow leaves each root,
every other node takes in one unit, and flow may cross only uncut edges; the big-M
is the most nodes a part can hold. Cover rows add that a tree heavier than
``t × upper`` has at least ``t`` cut edges.

The centred model's contiguity is enforced by separation: a member must have a
neighbour in its part (added up front), and for every piece cut off from its centre
in a solution the separator inequality ``x[a, j] ≤ Σ x[c, j]`` over the piece's
boundary ``c`` is added before solving again. A model holding only some of these
inequalities is a relaxation, so its bound stays valid.

All models drop every assignment ruled out by :mod:`~districting.partition.fixing`.
Given a valid starting plan, they use it twice: its value becomes a cutoff so only
strictly better plans are searched, and the LP relaxation's reduced costs fix every
assignment that could only lead to plans no better than it.

The solvers are made, and run, by :mod:`~districting.partition.solvers`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pulp

from districting.partition.arrays import cut_cost
from districting.partition.fixing import (
    Candidates,
    centre_candidates,
    largest_part_size,
    neighbour_lists,
    root_order,
    rooted_candidates,
)
from districting.partition.solvers import dual_bound, get_solver, solve_counted

logger = logging.getLogger(__name__)

#: Cut-edge models: labelled (one binary per node and part) or rooted (per possible root).
CUT_MODELS = ("labelled", "rooted")
#: ``cost_to(j, nodes)`` gives each node's cost when ``j`` is its centre.
CostFunction = Callable[[int, np.ndarray], np.ndarray]
#: Share of the time limit spent on the LP relaxation for reduced-cost fixing, at most.
LP_SHARE = 0.2
#: Above this many "root comes first" rows per part, they are aggregated into one per root.
AGGREGATE_ABOVE = 20_000
#: How an exact solve ended (see :class:`ExactResult`).
ExactStatus = Literal["optimal", "infeasible", "time_limit"]


@dataclass
class ExactResult:
    """What the exact model found: labels (``None`` if none), objective, bound and status.

    ``status`` is ``optimal``, ``infeasible`` or ``time_limit`` (with the best plan
    known, possibly the starting plan, or none; stopped by the clock or by the node
    budget). ``clock_cut`` tells that the clock, not the node budget, cut a step short:
    only then can the result depend on the machine's speed.
    """

    labels: np.ndarray | None
    objective: float | None
    bound: float | None
    status: ExactStatus
    rounds: int = 0
    cuts: int = 0
    log: list[str] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=dict)
    clock_cut: bool = False


@dataclass
class _Model:
    """A pulp problem with its assignment variables and what the solve loop needs."""

    problem: pulp.LpProblem
    x: dict[tuple[int, int], pulp.LpVariable]
    candidates: Candidates
    integral: bool
    rows: int = 0
    #: Each node's root in the current solution (by default read from ``x``).
    roots_of: Callable[[], np.ndarray] | None = None
    #: Seconds a solve spends outside the solver, kept off the time limit.
    overhead: float = 0.0
    #: The LP relaxation's value, a valid lower bound, once solved.
    relaxation: float | None = None


# --------------------------------------------------------------------------- models


def _assignment_rows(problem: pulp.LpProblem, x: dict[tuple[int, int], pulp.LpVariable],
                     candidates: Candidates, weights: np.ndarray, *, n: int, k: int,
                     lower: float, upper: float) -> int:
    """Each node in one part, ``k`` roots, each part in bounds, members only with a root."""
    by_node: list[list[pulp.LpVariable]] = [[] for _ in range(n)]
    for (i, _), var in x.items():
        by_node[i].append(var)
    for i in range(n):
        problem += pulp.lpSum(by_node[i]) == 1, f"one_{i}"
    problem += pulp.lpSum(x[j, j] for j in candidates.roots.tolist()) == k, "k_parts"
    rows = n + 1
    for j in candidates.roots.tolist():
        members = candidates.members[j].tolist()
        size = pulp.lpSum(float(weights[i]) * x[i, j] for i in members)
        problem += size - upper * x[j, j] <= 0, f"upper_{j}"
        problem += size - lower * x[j, j] >= 0, f"lower_{j}"
        rows += 2
        for i in members:
            if i != j:
                problem += x[i, j] <= x[j, j], f"with_root_{i}_{j}"
                rows += 1
    return rows


def _towards_root_rows(problem: pulp.LpProblem, x: dict[tuple[int, int], pulp.LpVariable],
                       candidates: Candidates, neighbours: list[list[int]]) -> int:
    """A member other than the root has a neighbour in the same part (it is not cut off alone)."""
    rows = 0
    for j in candidates.roots.tolist():
        for i in candidates.members[j].tolist():
            if i == j:
                continue
            near = [x[c, j] for c in neighbours[i] if (c, j) in x]
            problem += x[i, j] <= pulp.lpSum(near), f"near_{i}_{j}"
            rows += 1
    return rows


def _extended_cut(problem: pulp.LpProblem, edges: np.ndarray, edge_cost: np.ndarray,
                  x: dict[tuple[int, int], pulp.LpVariable]) -> tuple[list[list[pulp.LpVariable]],
                                                                    bool, int]:
    """The cut-edge objective in extended form, over the groups (roots or parts) of ``x``.

    ``z[u, v, g] ≥ x[u, g] − x[v, g]`` for every group either end may join; an edge's
    ``z`` sum to 1 when it is cut. Returns each edge's ``z``, whether the objective is
    integral (then ``z`` are integer, so the solver may prune at incumbent − 1) and
    the rows added.
    """
    integral = bool(np.all(edge_cost == np.round(edge_cost)))
    category = "Integer" if integral else "Continuous"
    groups_of: dict[int, set[int]] = {}
    for i, g in x:
        groups_of.setdefault(i, set()).add(g)
    objective = []
    across_by_edge: list[list[pulp.LpVariable]] = []
    for e, (u, v) in enumerate(edges.tolist()):
        across = []
        for g in sorted(groups_of.get(u, set()) | groups_of.get(v, set())):
            z = pulp.LpVariable(f"z_{u}_{v}_{g}", lowBound=0, upBound=1, cat=category)
            problem += z >= x.get((u, g), 0) - x.get((v, g), 0), f"cut_{u}_{v}_{g}"
            across.append(z)
        objective.append(float(edge_cost[e]) * pulp.lpSum(across))
        across_by_edge.append(across)
    problem += pulp.lpSum(objective)
    return across_by_edge, integral, sum(len(a) for a in across_by_edge)


def _flow_arcs(problem: pulp.LpProblem, n: int, edges: np.ndarray,
               across_by_edge: list[list[pulp.LpVariable]], big_m: int,
               ) -> tuple[list[list[pulp.LpVariable]], list[list[pulp.LpVariable]]]:
    """Flow variables both ways on each edge, allowed only when the edge is uncut.

    Returns each node's inflow and outflow variables; the caller writes the balances.
    """
    inflow: list[list[pulp.LpVariable]] = [[] for _ in range(n)]
    outflow: list[list[pulp.LpVariable]] = [[] for _ in range(n)]
    for (u, v), across in zip(edges.tolist(), across_by_edge, strict=True):
        forward = pulp.LpVariable(f"f_{u}_{v}", lowBound=0, upBound=big_m)
        backward = pulp.LpVariable(f"f_{v}_{u}", lowBound=0, upBound=big_m)
        problem += forward + backward + big_m * pulp.lpSum(across) <= big_m, f"flow_{u}_{v}"
        outflow[u].append(forward)
        inflow[v].append(forward)
        outflow[v].append(backward)
        inflow[u].append(backward)
    return inflow, outflow


def _rooted_model(n: int, edges: np.ndarray, weights: np.ndarray, edge_cost: np.ndarray, *,
                  k: int, lower: float, upper: float, cover: bool) -> _Model:
    """The rooted cut-edge model, for nodes already numbered in root order."""
    candidates = rooted_candidates(n, edges, weights, lower=lower, upper=upper)
    problem = pulp.LpProblem("districting_cut_edges", pulp.LpMinimize)
    x = {(int(i), j): pulp.LpVariable(f"x_{i}_{j}", cat="Binary")
         for j in candidates.roots.tolist() for i in candidates.members[j]}
    across_by_edge, integral, rows = _extended_cut(problem, edges, edge_cost, x)
    rows += _assignment_rows(problem, x, candidates, weights, n=n, k=k, lower=lower,
                             upper=upper)
    if cover:
        rows += _cover_rows(problem, edges, weights, across_by_edge, k=k, upper=upper)
    # Single-commodity flow: roots send, every node consumes one unit, uncut edges only.
    big_m = max(0, largest_part_size(weights, upper) - 1)
    inflow, outflow = _flow_arcs(problem, n, edges, across_by_edge, big_m)
    rows += len(edges)
    is_root = set(candidates.roots.tolist())
    for j in range(n):
        held = [x[i, j] for i in candidates.members[j].tolist()] if j in is_root else []
        problem += (pulp.lpSum(held) - pulp.lpSum(outflow[j]) + pulp.lpSum(inflow[j]) == 1,
                    f"balance_{j}")
        rows += 1
        if j in is_root:
            problem += pulp.lpSum(inflow[j]) + big_m * x[j, j] <= big_m, f"source_{j}"
            rows += 1
    return _Model(problem, x, candidates, integral, rows)


def _labelled_model(n: int, edges: np.ndarray, weights: np.ndarray, edge_cost: np.ndarray, *,
                    k: int, lower: float, upper: float, cover: bool) -> _Model | None:
    """The labelled cut-edge model, nodes numbered in root order; ``None`` if infeasible.

    ``p[i, d] = 1`` puts node ``i`` in part ``d``; ``r[j, d] = 1`` makes ``j`` the
    root (first node) of part ``d``, and parts are numbered in the order of their
    roots, so each partition has one labelling. Node 0 roots part 0. A node joins
    part ``d`` only if that part's root may hold it. The model has ``k × (n + |E|)``
    variables instead of the rooted model's ``|E| × roots``, and uses the same
    fixing, cover rows and flow contiguity.
    """
    candidates = rooted_candidates(n, edges, weights, lower=lower, upper=upper)
    roots = candidates.roots.tolist()
    if not roots or roots[0] != 0 or len(roots) < k:
        return None
    holders: list[list[int]] = [[] for _ in range(n)]
    for j in roots:
        for i in candidates.members[j].tolist():
            holders[i].append(j)
    if any(not h for h in holders):
        return None
    position_of_root = {j: q for q, j in enumerate(roots)}
    problem = pulp.LpProblem("districting_labelled", pulp.LpMinimize)
    # Part d's root is the d-th root or later, and leaves room for the k−1−d after it.
    r = {(j, d): pulp.LpVariable(f"r_{j}_{d}", cat="Binary")
         for j in roots for d in range(k)
         if d <= position_of_root[j] <= len(roots) - k + d}
    x = {(i, d): pulp.LpVariable(f"p_{i}_{d}", cat="Binary")
         for i in range(n) for d in range(k)
         if any((j, d) in r and j <= i for j in holders[i])}
    across_by_edge, integral, rows = _extended_cut(problem, edges, edge_cost, x)
    for i in range(n):
        problem += pulp.lpSum(x[i, d] for d in range(k) if (i, d) in x) == 1, f"one_{i}"
    for d in range(k):
        own = [key for key in r if key[1] == d]
        problem += pulp.lpSum(r[key] for key in own) == 1, f"root_of_{d}"
        size = pulp.lpSum(float(weights[i]) * x[i, e] for (i, e) in x if e == d)
        problem += size >= lower, f"lower_{d}"
        problem += size <= upper, f"upper_{d}"
        rows += 3
        for j, _ in own:
            problem += r[j, d] <= x[j, d], f"root_in_{j}_{d}"
            rows += 1
            before = [x[i, d] for i in range(j) if (i, d) in x]
            if len(before) * len(own) <= AGGREGATE_ABOVE:
                for i, var in enumerate(before):
                    problem += r[j, d] + var <= 1, f"root_first_{i}_{j}_{d}"
                rows += len(before)
            elif before:  # the same rule in one row: weaker relaxation, far smaller model
                problem += (pulp.lpSum(before) + len(before) * r[j, d] <= len(before),
                            f"root_first_{j}_{d}")
                rows += 1
            if d:
                earlier = [r[i, d - 1] for i in roots if i < j and (i, d - 1) in r]
                problem += r[j, d] <= pulp.lpSum(earlier), f"after_{j}_{d}"
                rows += 1
    for (i, d), var in x.items():
        able = [r[j, d] for j in holders[i] if (j, d) in r and j <= i]
        problem += var <= pulp.lpSum(able), f"held_{i}_{d}"
        rows += 1
    if cover:
        rows += _cover_rows(problem, edges, weights, across_by_edge, k=k, upper=upper)
    big_m = max(0, largest_part_size(weights, upper) - 1)
    inflow, outflow = _flow_arcs(problem, n, edges, across_by_edge, big_m)
    for i in range(n):
        # Non-roots take in one unit; a root may send up to big_m (room for its own unit).
        source = pulp.lpSum((big_m + 1) * r[i, d] for d in range(k) if (i, d) in r)
        problem += (pulp.lpSum(inflow[i]) - pulp.lpSum(outflow[i]) + source >= 1,
                    f"balance_{i}")
    rows += len(edges) + n

    def roots_of() -> np.ndarray:
        first = {d: j for (j, d), var in r.items() if (var.value() or 0.0) > 0.5}
        out = np.zeros(n, dtype=np.int64)
        for (i, d), var in x.items():
            if (var.value() or 0.0) > 0.5:
                out[i] = first.get(d, 0)
        return out

    return _Model(problem, {**x, **{(j, -1 - d): var for (j, d), var in r.items()}},
                  candidates, integral, rows, roots_of)


def _cover_rows(problem: pulp.LpProblem, edges: np.ndarray, weights: np.ndarray,
                across: list[list[pulp.LpVariable]], *, k: int, upper: float) -> int:
    """Heavy connected sets are cut inside: a tree over ``t × upper`` has ≥ ``t`` cut edges.

    If fewer of the tree's edges were cut, its nodes would fall into at most ``t``
    parts, too few to hold its weight. One tree per node: the breadth-first ball
    around it, grown until it outweighs ``t × upper`` for ``t = 1 … k − 1``.
    """
    n = len(weights)
    incident: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for e, (u, v) in enumerate(edges.tolist()):
        incident[u].append((v, e))
        incident[v].append((u, e))
    seen: set[tuple[int, ...]] = set()
    rows = 0
    for s in range(n):
        reached = {s}
        frontier = [s]
        tree: list[int] = []
        total = float(weights[s])
        level = 1
        while frontier and level < k:
            following = []
            for u in frontier:
                for v, e in sorted(incident[u]):
                    if v in reached:
                        continue
                    reached.add(v)
                    following.append(v)
                    tree.append(e)
                    total += float(weights[v])
                    while total > level * upper + 1e-9 and level < k:
                        key = (level, *sorted(tree))
                        if key not in seen:
                            seen.add(key)
                            problem += (pulp.lpSum(z for f in tree for z in across[f]) >= level,
                                        f"cover_{s}_{level}")
                            rows += 1
                        level += 1
            frontier = following
    return rows


def _centred_model(n: int, edges: np.ndarray, weights: np.ndarray,
                   cost: dict[tuple[int, int], float], candidates: Candidates, *, k: int,
                   lower: float, upper: float) -> _Model:
    """The centred model for inertia and travel; ``cost[i, j]`` is node i's cost at centre j."""
    neighbours = neighbour_lists(n, edges)
    problem = pulp.LpProblem("districting_centres", pulp.LpMinimize)
    x = {(int(i), j): pulp.LpVariable(f"x_{i}_{j}", cat="Binary")
         for j in candidates.roots.tolist() for i in candidates.members[j]}
    problem += pulp.lpSum(cost[key] * var for key, var in x.items())
    rows = _assignment_rows(problem, x, candidates, weights, n=n, k=k, lower=lower,
                            upper=upper)
    rows += _towards_root_rows(problem, x, candidates, neighbours)
    return _Model(problem, x, candidates, integral=False, rows=rows)


# --------------------------------------------------------------------------- solve loop


def _labels(model: _Model, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each node's root in the current solution, and the roots in use."""
    if model.roots_of is not None:
        root = model.roots_of()
        return root, np.unique(root)
    root = np.full(n, -1, dtype=np.int64)
    for (i, j), var in model.x.items():
        if (var.value() or 0.0) > 0.5:
            root[i] = j
    return root, np.unique(root)


def _reach(start: int, allowed: set[int], neighbours: list[list[int]]) -> set[int]:
    """Nodes of ``allowed`` reachable from ``start`` through ``allowed``."""
    reached = {start}
    stack = [start]
    while stack:
        u = stack.pop()
        for v in neighbours[u]:
            if v in allowed and v not in reached:
                reached.add(v)
                stack.append(v)
    return reached


def _cut_off_pieces(root: np.ndarray, neighbours: list[list[int]]) -> list[tuple[int, list[int]]]:
    """Pieces of a part not connected to its root: ``(root, piece)``."""
    pieces = []
    for j in np.unique(root).tolist():
        members = set(np.flatnonzero(root == j).tolist())
        rest = members - _reach(j, members, neighbours)
        while rest:
            piece = _reach(min(rest), rest, neighbours)
            rest -= piece
            pieces.append((j, sorted(piece)))
    return pieces


def _add_separators(model: _Model, pieces: list[tuple[int, list[int]]],
                    neighbours: list[list[int]], round_no: int) -> int:
    """``x[a, j] ≤ Σ x[c, j]`` over the boundary of each cut-off piece, for each of its nodes."""
    added = 0
    for j, piece in pieces:
        inside = set(piece)
        boundary = sorted({v for u in piece for v in neighbours[u] if v not in inside})
        border = [model.x[c, j] for c in boundary if (c, j) in model.x]
        for a in piece:
            if (a, j) in model.x:
                model.problem += model.x[a, j] <= pulp.lpSum(border), f"sep_{round_no}_{a}_{j}"
                added += 1
    return added


def _reduced_cost_fixing(model: _Model, solver: str, cutoff: float, time_limit: float,
                         log: list[str]) -> int | None:
    """Fix to 0 every assignment whose reduced cost lifts the LP bound past ``cutoff``;
    ``None`` when the clock stopped the LP first."""
    if solver != "highs":
        return 0
    if time_limit <= 0:
        log.append("no time left for the LP relaxation; no reduced-cost fixing")
        return None
    model.overhead = solve_counted(model.problem,
                                   get_solver(solver, time_limit=time_limit, mip=False)).overhead
    if model.problem.status != pulp.LpStatusOptimal:
        log.append("LP relaxation not solved in time; no reduced-cost fixing")
        return None
    relaxed = float(pulp.value(model.problem.objective) or 0.0)
    model.relaxation = relaxed
    fixed = 0
    for var in model.x.values():
        value = var.value() or 0.0
        reduced = float(getattr(var, "dj", 0.0) or 0.0)
        if value < 1e-9 and relaxed + reduced > cutoff + 1e-7:
            var.upBound = 0
            fixed += 1
    log.append(f"LP relaxation {relaxed:.3f}; reduced-cost fixing set {fixed} of "
               f"{len(model.x)} assignments to 0")
    return fixed


def _solve(model: _Model, n: int, neighbours: list[list[int]], *, k: int, solver: str,
           time_limit: float, start: float, incumbent: tuple[np.ndarray, float] | None,
           evaluate: Callable[[np.ndarray], float], log: list[str],
           max_nodes: int | None) -> ExactResult:
    """Solve, add separators for cut-off pieces, repeat; keep the best valid plan.

    ``max_nodes`` is a budget of branch-and-bound nodes for all rounds together.
    """
    stats: dict[str, float] = {"variables": float(len(model.problem.variables())),
                               "rows": float(model.rows), "assignments": float(len(model.x)),
                               "roots": float(model.candidates.roots.size)}
    best_labels = None if incumbent is None else incumbent[0]
    best_value = math.inf if incumbent is None else incumbent[1]
    cutoff = None
    clock_cut = False
    if incumbent is not None:
        cutoff = best_value - 0.5 if model.integral else best_value - 1e-6 * max(1.0, best_value)
        left = time_limit - (time.monotonic() - start)
        fixed = _reduced_cost_fixing(model, solver, cutoff, LP_SHARE * left, log)
        clock_cut = fixed is None
        stats["fixed_by_lp"] = float(fixed or 0)
    bound: float | None = model.relaxation
    rounds = cuts = 0
    nodes_left = max_nodes
    while True:
        rounds += 1
        left = time_limit - (time.monotonic() - start) - model.overhead
        if left <= 0:
            log.append(f"round {rounds}: no time left")
            clock_cut = True
            break
        if nodes_left is not None and nodes_left <= 0:
            log.append(f"round {rounds}: the budget of {max_nodes} nodes is spent")
            break
        solved = solve_counted(model.problem, get_solver(solver, time_limit=left, cutoff=cutoff,
                                                         max_nodes=nodes_left))
        model.overhead = solved.overhead
        if nodes_left is not None:
            nodes_left -= solved.nodes
        status = pulp.LpStatus[model.problem.status]
        round_bound = dual_bound(model.problem, solver)
        has_solution = model.problem.sol_status in (pulp.LpSolutionOptimal,
                                                    pulp.LpSolutionIntegerFeasible)
        if status == "Infeasible" or (not has_solution and model.problem.sol_status
                                      == pulp.LpSolutionInfeasible):
            if best_labels is None:
                log.append(f"round {rounds}: proven infeasible")
                return ExactResult(None, None, None, "infeasible", rounds, cuts, log, stats)
            log.append(f"round {rounds}: nothing better than {best_value:g} exists")
            return ExactResult(best_labels, best_value, best_value, "optimal", rounds, cuts,
                               log, stats, clock_cut)
        proven = model.problem.sol_status == pulp.LpSolutionOptimal
        clock_cut = clock_cut or solved.stopped_by == "clock"
        if not has_solution:
            log.append(f"round {rounds}: "
                       f"{'node budget' if solved.node_limit else 'time limit'}, "
                       "no better plan found")
            if round_bound is not None:
                bound = round_bound if bound is None else max(bound, round_bound)
            break
        if proven:
            round_value = float(pulp.value(model.problem.objective) or 0.0)
            round_bound = round_value if round_bound is None else max(round_bound, round_value)
        if round_bound is not None:
            bound = round_bound if bound is None else max(bound, round_bound)
        root, _ = _labels(model, n)
        pieces = _cut_off_pieces(root, neighbours)
        added = _add_separators(model, pieces, neighbours, rounds) if pieces else 0
        cuts += added
        if not pieces:
            labels = _canonical(root)
            value = evaluate(labels)
            if value < best_value - 1e-9:
                best_labels, best_value = labels, value
        log.append(f"round {rounds}: {status}, objective "
                   f"{float(pulp.value(model.problem.objective) or 0.0):g}, bound "
                   f"{bound if bound is not None else float('nan'):.3f}, {added} separator(s) "
                   f"added, {time.monotonic() - start:.1f} s")
        if not pieces:
            if proven:
                return ExactResult(best_labels, best_value, best_value, "optimal", rounds,
                                   cuts, log, stats, clock_cut)
            break
        if not proven:
            break
    if bound is not None and incumbent is not None:
        bound = min(bound, best_value)
    if bound is not None and model.integral:
        bound = math.ceil(bound - 1e-6)
    if best_labels is None:
        return ExactResult(None, None, bound, "time_limit", rounds, cuts, log, stats,
                           clock_cut)
    if bound is not None and bound >= best_value - 1e-9:
        return ExactResult(best_labels, best_value, best_value, "optimal", rounds, cuts, log,
                           stats, clock_cut)
    return ExactResult(best_labels, best_value, bound, "time_limit", rounds, cuts, log, stats,
                       clock_cut)


def _canonical(root: np.ndarray) -> np.ndarray:
    """Part labels 0..k−1 in order of each part's first node."""
    mapping: dict[int, int] = {}
    out = np.empty(len(root), dtype=np.int64)
    for i, r in enumerate(root.tolist()):
        out[i] = mapping.setdefault(r, len(mapping))
    return out


# --------------------------------------------------------------------------- public


def solve_cut_edges(
    n: int,
    edges: np.ndarray,
    weights: np.ndarray,
    *,
    k: int,
    lower: float,
    upper: float,
    time_limit: float,
    solver: str = "highs",
    edge_cost: np.ndarray | None = None,
    start: np.ndarray | None = None,
    model_kind: str = "labelled",
    cover: bool = True,
    max_nodes: int | None = None,
) -> ExactResult:
    """Minimum (weighted) cut edges over partitions into ``k`` connected parts in bounds.

    ``edges`` holds one row ``(u, v)`` per undirected edge; ``edge_cost`` is each
    edge's cost when cut (1 if ``None``). ``start`` is an optional valid plan (labels
    0..k−1) whose value the solver must beat. ``model_kind`` picks the labelled
    (default) or rooted model; ``cover`` adds the cover rows. ``max_nodes`` caps the
    branch-and-bound nodes of all solves together (work that is the same on any
    machine); ``time_limit`` still applies.
    """
    clock = time.monotonic()
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    cost = np.ones(len(edges)) if edge_cost is None else np.asarray(edge_cost, dtype=float)
    neighbours = neighbour_lists(n, edges)
    order = root_order(neighbours, weights, lower)
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    inner_edges = np.sort(position[edges], axis=1)
    inner_weights = weights[order]
    kind = model_kind
    if kind not in CUT_MODELS:
        raise ValueError(f"unknown model {kind!r} (choose from {', '.join(CUT_MODELS)})")
    if kind == "labelled":
        labelled = _labelled_model(n, inner_edges, inner_weights, cost, k=k, lower=lower,
                                   upper=upper, cover=cover)
        if labelled is None:
            return ExactResult(None, None, None, "infeasible", 0, 0,
                               [f"fewer than {k} nodes can root a part within the bounds, "
                                "or some node can join none"])
        model = labelled
    else:
        model = _rooted_model(n, inner_edges, inner_weights, cost, k=k, lower=lower,
                              upper=upper, cover=cover)
    log = [f"{kind} model: "
           f"{model.candidates.roots.size} possible roots, "
           f"{len(model.x)} assignments, {len(model.problem.variables())} variables, "
           f"{model.rows} rows, built in {time.monotonic() - clock:.1f} s"]
    def evaluate(labels: np.ndarray) -> float:
        return cut_cost(inner_edges, labels, cost)

    incumbent = None
    if start is not None:
        inner_start = _canonical(np.asarray(start)[order])
        incumbent = (inner_start, evaluate(inner_start))
        log.append(f"starting plan: {incumbent[1]:g}")
    if kind != "labelled" and any(not any((i, j) in model.x
                                          for j in model.candidates.roots.tolist())
                      for i in range(n)):
        log.append("some node cannot join any part within the bounds")
        return ExactResult(None, None, None, "infeasible", 0, 0, log)
    result = _solve(model, n, neighbour_lists(n, inner_edges), k=k, solver=solver,
                    time_limit=time_limit, start=clock, incumbent=incumbent,
                    evaluate=evaluate, log=log, max_nodes=max_nodes)
    if result.labels is not None:
        result.labels = _canonical(result.labels[position])
    return result


def solve_centred(
    n: int,
    edges: np.ndarray,
    weights: np.ndarray,
    cost_to: CostFunction,
    value: Callable[[np.ndarray], float],
    *,
    k: int,
    lower: float,
    upper: float,
    time_limit: float,
    solver: str = "highs",
    start: np.ndarray | None = None,
    max_nodes: int | None = None,
) -> ExactResult:
    """Minimum Σ cost to centre over partitions into ``k`` connected parts in bounds.

    ``cost_to(j, nodes)`` returns the cost of each of ``nodes`` when ``j`` is its
    centre (for inertia: weight × squared distance; for travel: weight × network
    distance), and ``value(labels)`` a whole plan's objective with the best centre of
    each part. Centres are chosen among the nodes. ``max_nodes`` is as in
    :func:`solve_cut_edges`.
    """
    clock = time.monotonic()
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    candidates = centre_candidates(n, edges, weights, lower=lower, upper=upper)
    cost: dict[tuple[int, int], float] = {}
    for j in candidates.roots.tolist():
        members = candidates.members[j]
        values = cost_to(j, members)
        for i, c in zip(members.tolist(), np.asarray(values, dtype=float).tolist(), strict=True):
            cost[i, j] = c
    model = _centred_model(n, edges, weights, cost, candidates, k=k, lower=lower, upper=upper)
    log = [f"centred model: {candidates.roots.size} possible centres, {len(model.x)} "
           f"assignments, {model.rows} rows, built in {time.monotonic() - clock:.1f} s"]
    incumbent = None
    if start is not None:
        labels = _canonical(np.asarray(start))
        incumbent = (labels, value(labels))
        log.append(f"starting plan: {incumbent[1]:g}")
    if any(not any((i, j) in model.x for j in candidates.roots.tolist()) for i in range(n)):
        log.append("some node cannot join any part within the bounds")
        return ExactResult(None, None, None, "infeasible", 0, 0, log)
    return _solve(model, n, neighbour_lists(n, edges), k=k, solver=solver,
                  time_limit=time_limit, start=clock, incumbent=incumbent, evaluate=value,
                  log=log, max_nodes=max_nodes)
