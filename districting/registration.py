"""Choose registration points and assign whole CDs to them: a capacitated p-median ILP.

Each counting district (CD) goes to one of ``p`` chosen candidate buildings. The
model minimises the residents' total walk to their point, keeps each point's
residents within its capacity, and keeps every registration district (RD) connected
on the CD graph. It is solved in two steps:

1. **Star model.** A CD may join a point only if one of its neighbours nearer the
   point (in CD steps) joins it too, so each RD grows outward from its point and is
   connected by construction. This is compact and solves at once.
2. **Exact model.** Without that restriction, connectivity is added lazily: a
   solution whose RD falls apart gets, for each piece cut off from the point, the
   constraint that a CD of the piece joins the point only if a CD around the piece
   does; then it is solved again, for at most ``MAX_ROUNDS`` rounds, with the star
   optimum as a cutoff. If it finishes, its plan is optimal over all connected RDs;
   if it finds nothing better than the cutoff, the star plan is.

The star plan is kept when the rounds run out (status ``star``). A round count and a
budget of branch-and-bound nodes for all rounds together (``ROUND_NODES``), not a
clock, bound the work, so the same input gives the same plan on any machine; the
clock (``time_limit``, for the star model and all rounds together) only stops a model
too large for them, and the plan then says so (status ``feasible``).

When no star plan meets the capacity in a settlement (or block) of more than
``EXACT_CDS`` CDs, the exact model is not tried: without a plan to beat it can run for
minutes and still stop on the clock. The star model is solved again with the capacity
raised by the steps of ``RELAXED_CAPACITY`` instead (status ``relaxed``), which is
quick and the same on every machine.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import partial

import numpy as np
import pulp
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components, shortest_path

from districting.errors import PartitionError
from districting.partition.solvers import get_solver, solve_counted

#: Rounds of adding connectivity constraints to the exact model. In a synthetic tenth of
#: the country, every solve that ended connected did so within 8 rounds (829 of 830);
#: the one that did not ran 25 rounds for 17 s, each slower than the last, and kept
#: its star plan.
MAX_ROUNDS = 10
#: Branch-and-bound nodes (HiGHS) for all rounds of a settlement together. The demo's
#: rounds need under 10; a dense city block of 78 CDs needed about 4,000 a round and
#: still had disconnected districts after ten rounds, when the clock stopped it.
ROUND_NODES = 20_000
#: Without a star plan within the capacity, the exact model is tried up to this many CDs.
EXACT_CDS = 40
#: Capacity multiples tried, in order, in the star model when the capacity itself fails.
RELAXED_CAPACITY = (1.25, 1.5, 2.0, 3.0)
#: Above this many CD × candidate pairs, each CD may only go to its nearest candidates.
FULL_PAIRS = 40_000
NEAREST = 15


@dataclass
class PointPlan:
    """The chosen points (candidate indices, ascending), each CD's point (an index into
    ``chosen``), the total person-metres, and how good it is known to be: ``optimal``
    (over all connected RDs), ``star`` (optimal over RDs that grow outward from their
    point), ``improved`` (connected and better than the star plan, but the node
    budget ran out before it was proven optimal), ``relaxed`` (a star plan within
    ``capacity``, raised above the one asked for), ``feasible`` (a solve was cut
    short by the time limit, so the plan may differ on another machine) or
    ``repaired`` (pieces joined to a neighbouring RD
    after the rounds ran out, where no star plan meets the capacity; the capacity may
    then be exceeded)."""

    chosen: list[int]
    assignment: np.ndarray
    objective: float
    status: str
    rounds: int
    #: The capacity the plan keeps (the one asked for unless ``relaxed``).
    capacity: float = math.inf


class _Model:
    """The p-median core shared by both steps: choose, assign, capacity, own CD."""

    def __init__(self, cost: np.ndarray, demand: np.ndarray, *, p: int, capacity: float,
                 home: np.ndarray, pairs: list[tuple[int, int]]) -> None:
        n, m = cost.shape
        self.cost, self.home, self.p = cost, home, p
        self.nodes = 0  # branch-and-bound nodes of the last solve
        self.problem = pulp.LpProblem("registration_points", pulp.LpMinimize)
        self.y = {j: pulp.LpVariable(f"y_{j}", cat="Binary") for j in range(m)}
        self.x = {(i, j): pulp.LpVariable(f"x_{i}_{j}", cat="Binary") for i, j in pairs}
        # Person-metres can be large: scale them so the LP stays well conditioned.
        self.scale = max(float(cost.max()), 1.0)
        self.problem += pulp.lpSum(float(cost[i, j]) / self.scale * var
                                   for (i, j), var in self.x.items())
        by_cd: dict[int, list[pulp.LpVariable]] = {i: [] for i in range(n)}
        by_point: dict[int, list[tuple[int, pulp.LpVariable]]] = {j: [] for j in range(m)}
        for (i, j), var in self.x.items():
            by_cd[i].append(var)
            by_point[j].append((i, var))
            self.problem += var <= self.y[j]
        for i, row in by_cd.items():
            self.problem += pulp.lpSum(row) == 1, f"assign_{i}"
        self.problem += pulp.lpSum(self.y.values()) == p, "points"
        for j, row in by_point.items():
            self.problem += (pulp.lpSum(float(demand[i]) * var for i, var in row)
                             <= capacity * self.y[j]), f"capacity_{j}"
            self.problem += self.x[int(home[j]), j] >= self.y[j], f"home_{j}"

    def solve(self, solver: str, time_limit: float, cutoff: float | None = None,
              max_nodes: int | None = None) -> tuple[str, _Solution | None]:
        """``("optimal" | "feasible", plan)`` (proven, or stopped by the time limit),
        ``("limit", plan or None)`` (stopped by ``max_nodes``), ``("infeasible", None)``
        (nothing meets the constraints and the cutoff) or ``("none", None)`` (the time
        limit came before any plan). :attr:`nodes` then holds the nodes it took."""
        bound = None if cutoff is None else cutoff / self.scale * (1 + 1e-9) + 1e-9
        solved = solve_counted(self.problem, get_solver(solver, time_limit=time_limit,
                                                        cutoff=bound, max_nodes=max_nodes))
        self.nodes = solved.nodes
        solution = self.problem.sol_status
        if solved.node_limit:
            return "limit", self._plan() if solution == pulp.LpSolutionIntegerFeasible else None
        if (pulp.LpStatus[self.problem.status] == "Infeasible"
                or solution == pulp.LpSolutionInfeasible):
            return "infeasible", None
        if solution not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
            return "none", None
        plan = self._plan()
        if plan is None:
            return "none", None
        return ("optimal" if solution == pulp.LpSolutionOptimal else "feasible"), plan

    def _plan(self) -> _Solution | None:
        """The solution's points and assignment, if it gives every CD exactly one point."""
        chosen = sorted(j for j, var in self.y.items() if (var.value() or 0) > 0.5)
        assignment = np.full(self.cost.shape[0], -1, dtype=np.int64)
        for (i, j), var in self.x.items():
            if (var.value() or 0) > 0.5:
                if assignment[i] >= 0 or j not in chosen:
                    return None
                assignment[i] = chosen.index(j)
        if len(chosen) != self.p or (assignment < 0).any():
            return None
        objective = float(self.cost[np.arange(len(assignment)),
                                    np.array(chosen)[assignment]].sum())
        return chosen, assignment, objective


_Solution = tuple[list[int], np.ndarray, float]


def capacitated_p_median(
    cost: np.ndarray,
    demand: np.ndarray,
    *,
    p: int,
    capacity: float,
    adjacency: sp.csr_matrix,
    home: np.ndarray,
    time_limit: float,
    solver: str = "highs",
) -> PointPlan:
    """Choose ``p`` of the candidates and assign every CD to one of them.

    ``cost[i, j]`` is the walk of CD ``i``'s residents to candidate ``j`` (person-
    metres), ``demand[i]`` its residents, ``home[j]`` the CD candidate ``j`` stands
    in (a chosen point serves its own CD, so two chosen points never share a CD).
    ``time_limit`` caps all the solves together; a plan it cut short has status
    ``feasible`` and may differ on another machine. Raises :class:`PartitionError` when
    no assignment meets the capacity, or the time limit came before any plan.
    """
    n = cost.shape[0]
    if not 1 <= p <= len(np.unique(home)):
        raise PartitionError(f"cannot choose {p} point(s) from candidates in "
                             f"{len(np.unique(home))} CD(s); a point serves its own CD")
    steps = _steps_from_homes(adjacency, home)
    pairs = _allowed_pairs(cost, home, steps, p=p)
    solve = partial(_solve, cost, demand, p=p, capacity=capacity, adjacency=adjacency,
                    home=home, steps=steps, time_limit=time_limit, solver=solver)
    try:
        return solve(pairs=pairs)
    except PartitionError:
        full = [(i, j) for i in range(n) for j in range(cost.shape[1])]
        if len(pairs) == len(full):
            raise
        # Each CD was limited to its nearest candidates; that may be what made it fail.
        return solve(pairs=full)


def _solve(
    cost: np.ndarray,
    demand: np.ndarray,
    *,
    p: int,
    capacity: float,
    adjacency: sp.csr_matrix,
    home: np.ndarray,
    steps: np.ndarray,
    pairs: list[tuple[int, int]],
    time_limit: float,
    solver: str,
) -> PointPlan:
    """The star model, then the exact model with lazy connectivity cuts (see module)."""
    n = cost.shape[0]
    clock = time.monotonic()

    def left() -> float:
        return max(1.0, time_limit - (time.monotonic() - clock))

    def star(limit: float) -> tuple[str, _Solution | None]:
        """The star model (see the module docstring) with ``limit`` residents per point."""
        model = _Model(cost, demand, p=p, capacity=limit, home=home, pairs=pairs)
        _star_rows(model, adjacency, steps)
        return model.solve(solver, left())

    state, best = star(capacity)
    star_state = state
    if best is None and state == "infeasible" and n > EXACT_CDS:
        # Raised capacities, in order, until the star model allows a plan (``relaxed``).
        for factor in RELAXED_CAPACITY:
            state, found = star(capacity * factor)
            if found is not None:
                return PointPlan(*found, status="relaxed" if state == "optimal" else "feasible",
                                 rounds=0, capacity=capacity * factor)
        raise PartitionError(
            f"no assignment of CDs to {p} point(s) keeps each within "
            f"{capacity * RELAXED_CAPACITY[-1]:,.0f} residents, even growing outward from "
            "their points; raise registration.capacity_share or the number of points"
        )
    exact = _Model(cost, demand, p=p, capacity=capacity, home=home, pairs=pairs)
    nodes = ROUND_NODES
    for rounds in range(1, MAX_ROUNDS + 1):
        state, found = exact.solve(solver, left(), cutoff=None if best is None else best[2],
                                   max_nodes=nodes)
        nodes -= exact.nodes
        if state == "infeasible":
            if best is None:
                break
            # Nothing connected or not beats the star plan: it is optimal if it was proven.
            return PointPlan(*best, status="optimal" if star_state == "optimal" else "feasible",
                             rounds=rounds, capacity=capacity)
        if found is None:
            break
        chosen, assignment, objective = found
        roots = [int(home[j]) for j in chosen]
        pieces = _cut_off(adjacency, assignment, roots)
        if not pieces:
            status = {"optimal": "optimal", "limit": "improved"}.get(state, "feasible")
            return PointPlan(chosen, assignment, objective, status, rounds, capacity)
        spent = (state in ("feasible", "limit") or nodes <= 0
                 or time.monotonic() - clock >= time_limit)
        if spent and best is not None:
            break  # the node budget or the clock ran out; more rounds would cost as much
        if best is None and (rounds == MAX_ROUNDS or spent):
            _join_pieces(adjacency, assignment, roots, cost[:, chosen])
            objective = float(cost[np.arange(n), np.array(chosen)[assignment]].sum())
            return PointPlan(chosen, assignment, objective, "repaired", rounds, capacity)
        for point, piece in pieces:
            j = chosen[point]
            around = _neighbours(adjacency, piece)
            for i in piece:
                if (i, j) in exact.x:
                    exact.problem += (exact.x[i, j]
                                      <= pulp.lpSum(exact.x[v, j] for v in around
                                                    if (v, j) in exact.x))
    if best is not None:
        return PointPlan(*best, status="star" if star_state == "optimal" else "feasible",
                         rounds=MAX_ROUNDS, capacity=capacity)
    if "none" in (star_state, state):
        raise PartitionError(f"the registration-point model found no plan within "
                             f"{time_limit:.0f} s; raise registration.time_limit")
    if state == "limit":
        raise PartitionError(f"the registration-point model found no plan within "
                             f"{ROUND_NODES:,} branch-and-bound nodes; raise "
                             "registration.capacity_share or the number of points")
    raise PartitionError(
        f"no assignment of CDs to {p} point(s) keeps each within {capacity:,.0f} "
        "residents; raise registration.capacity_share or the number of points"
    )


def _steps_from_homes(adjacency: sp.csr_matrix, home: np.ndarray) -> np.ndarray:
    """CD steps from each candidate's CD to every CD (``len(home) × n``)."""
    homes, inverse = np.unique(home, return_inverse=True)
    table = shortest_path(adjacency, unweighted=True, directed=False, indices=homes)
    return np.asarray(table)[inverse]


def _star_rows(model: _Model, adjacency: sp.csr_matrix, steps: np.ndarray) -> None:
    """A CD joins a point only if a neighbour fewer CD steps from the point's CD does."""
    for (i, j), var in model.x.items():
        if i == int(model.home[j]):
            continue
        closer = [model.x[v, j] for v in adjacency.indices[adjacency.indptr[i]:
                                                              adjacency.indptr[i + 1]]
                  if steps[j, v] < steps[j, i] and (v, j) in model.x]
        model.problem += var <= pulp.lpSum(closer)


def _join_pieces(
    adjacency: sp.csr_matrix, assignment: np.ndarray, roots: list[int], cost: np.ndarray
) -> None:
    """Join pieces cut off from their point to a neighbouring RD, until every RD is
    connected: each step takes a piece that touches another RD's connected part (its
    point's component) and gives it to the cheapest such RD. That part only grows, so
    this ends."""
    while pieces := _cut_off(adjacency, assignment, roots):
        cut = {i for _, piece in pieces for i in piece}
        for _, piece in pieces:
            around = {int(assignment[v]) for v in _neighbours(adjacency, piece) if v not in cut}
            if around:
                assignment[piece] = min(around, key=lambda t: (float(cost[piece, t].sum()), t))
                break


def _allowed_pairs(cost: np.ndarray, home: np.ndarray, steps: np.ndarray, *,
                   p: int) -> list[tuple[int, int]]:
    """Every CD × candidate pair, or for large models each CD's nearest candidates in
    CD steps (ties by cost; at least ``NEAREST`` and three times as many as there are
    candidates per point), and each candidate's own CD."""
    n, m = cost.shape
    if n * m <= FULL_PAIRS:
        return [(i, j) for i in range(n) for j in range(m)]
    keep = min(m, max(NEAREST, 3 * -(-m // p)))
    pairs: set[tuple[int, int]] = set()
    for i in range(n):
        order = np.lexsort((np.arange(m), cost[i], steps[:, i]))[:keep]
        pairs.update((i, int(j)) for j in order)
    pairs.update((int(home[j]), j) for j in range(m))
    return sorted(pairs)


def _cut_off(
    adjacency: sp.csr_matrix, assignment: np.ndarray, roots: list[int]
) -> list[tuple[int, list[int]]]:
    """Pieces of each district not connected to its point's CD: (district, CDs)."""
    out = []
    for point, root in enumerate(roots):
        members = np.flatnonzero(assignment == point)
        sub = adjacency[members][:, members]
        _, labels = connected_components(sub, directed=False)
        own = labels[np.searchsorted(members, root)]
        for label in sorted(set(labels.tolist()) - {int(own)}):
            out.append((point, members[labels == label].tolist()))
    return out


def _neighbours(adjacency: sp.csr_matrix, piece: list[int]) -> list[int]:
    inside = set(piece)
    around = {int(v) for i in piece
              for v in adjacency.indices[adjacency.indptr[i]:adjacency.indptr[i + 1]]}
    return sorted(around - inside)


def point_count(residents: float, *, points: int | None, residents_per_point: float) -> int:
    """How many points to open: the configured number, or one per ``residents_per_point``."""
    if points is not None:
        return points
    return max(1, round(residents / residents_per_point))


def point_capacity(residents: np.ndarray, p: int, *, share: float) -> float:
    """Most residents one point serves: ``share`` × the mean point's, and at least the
    largest CD (a CD is never split between points)."""
    return max(share * float(residents.sum()) / p, float(residents.max()), 1.0)
