"""Exact districting: a mixed-integer model solved with HiGHS (or CBC) through pulp.

The model labels each node with one of ``k`` districts and minimises the number of cut
edges under hard weight bounds. Contiguity is enforced exactly, by separation: the
model is solved without it, each district of the solution is checked, and for every
piece cut off from its district an a,b-separator inequality is added
(``x[a,d] + x[b,d] − 1 ≤ Σ x[c,d]`` over the boundary nodes ``c`` of the piece), then
it is solved again. A solve of a model with only some of these inequalities is a
relaxation, so its bound stays a valid lower bound on the connected optimum.

Symmetry between district labels is broken completely: labels appear in the order of
their first node, so node ``i`` may take label ``d`` only if an earlier node holds
label ``d − 1``.
"""

from __future__ import annotations

import io
import logging
import math
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import pulp

logger = logging.getLogger(__name__)

SOLVERS = ("highs", "cbc")
#: At most this many "too far apart to share a district" rows are added to the model.
MAX_CONFLICT_ROWS = 200_000


@dataclass
class ExactResult:
    """What the exact model found: labels (``None`` if none), objective, bound and status."""

    labels: np.ndarray | None
    objective: float | None
    bound: float | None
    status: str
    rounds: int
    cuts: int
    log: list[str] = field(default_factory=list)


def _search_order(n: int, edges: np.ndarray) -> np.ndarray:
    """Breadth-first order from a peripheral node (the far end of a BFS from node 0)."""
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(map(tuple, edges.tolist()))
    if n == 0 or not nx.is_connected(graph):
        return np.arange(n)
    far = max(nx.single_source_shortest_path_length(graph, 0).items(),
              key=lambda item: (item[1], -item[0]))[0]
    order = [far, *(v for _, v in nx.bfs_edges(graph, far, sort_neighbors=sorted))]
    return np.array(order, dtype=np.int64)


def _conflicts(n: int, edges: np.ndarray, weights: np.ndarray, upper: float) -> np.ndarray:
    """Pairs ``i < j`` that no connected part within ``upper`` can hold together.

    A connected part holding both contains a path between them, so it weighs at least
    the lightest such path (counting node weights); above ``upper`` they must differ.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra

    if n == 0 or len(edges) == 0:
        return np.empty((0, 2), dtype=np.int64)
    rows = np.r_[edges[:, 0], edges[:, 1]]
    cols = np.r_[edges[:, 1], edges[:, 0]]
    arcs = csr_matrix((weights[cols] + 1e-9, (rows, cols)), shape=(n, n))
    lightest = dijkstra(arcs, directed=True) + weights[:, None]
    i, j = np.nonzero(np.triu(lightest > upper + 1e-6, k=1))
    return np.stack([i, j], axis=1).astype(np.int64)


def _solver(name: str, time_limit: float) -> pulp.LpSolver:
    if name == "highs":
        return pulp.HiGHS(msg=False, timeLimit=max(1.0, time_limit), threads=2)
    if name == "cbc":
        return pulp.PULP_CBC_CMD(msg=False, timeLimit=max(1, math.ceil(time_limit)),
                                 threads=2)
    raise ValueError(f"unknown solver {name!r} (choose from {', '.join(SOLVERS)})")


@contextmanager
def _native_output_silenced() -> Iterator[None]:
    """Keep the solver library's banner off the terminal (it writes to file descriptor 1)."""
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        yield
        return
    sys.stdout.flush()
    saved = os.dup(descriptor)
    try:
        with open(os.devnull, "w", encoding="utf-8") as devnull:
            os.dup2(devnull.fileno(), descriptor)
            yield
    finally:
        os.dup2(saved, descriptor)
        os.close(saved)


def _dual_bound(problem: pulp.LpProblem, solver: str) -> float | None:
    """The solver's proven lower bound after a solve, where it reports one."""
    if solver != "highs" or getattr(problem, "solverModel", None) is None:
        return None
    try:
        value = float(problem.solverModel.getInfo().mip_dual_bound)
    except (AttributeError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


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
    _ordered: bool = False,
) -> ExactResult:
    """Minimum cut edges over partitions of ``0..n-1`` into ``k`` connected parts in bounds.

    ``edges`` holds one row ``(u, v)`` per undirected edge. Nodes are first renumbered
    in breadth-first order from a peripheral node, so that the labels' first nodes,
    which the symmetry breaking relies on, lie next to each other.
    """
    start = time.monotonic()
    order = np.arange(n) if _ordered else _search_order(n, edges)
    if not np.array_equal(order, np.arange(n)):
        position = np.empty(n, dtype=np.int64)
        position[order] = np.arange(n)
        inner = solve_cut_edges(n, position[edges], weights[order], k=k, lower=lower,
                                upper=upper, time_limit=time_limit, solver=solver,
                                _ordered=True)
        if inner.labels is not None:
            inner.labels = inner.labels[position]
        return inner
    problem = pulp.LpProblem("districting_cut_edges", pulp.LpMinimize)
    x = {(i, d): pulp.LpVariable(f"x_{i}_{d}", cat="Binary")
         for i in range(n) for d in range(min(i + 1, k))}
    cut = {(int(u), int(v)): pulp.LpVariable(f"c_{u}_{v}", lowBound=0, upBound=1)
           for u, v in edges}
    problem += pulp.lpSum(cut.values())
    for i in range(n):
        problem += pulp.lpSum(x[i, d] for d in range(min(i + 1, k))) == 1
    # Labels appear in order of their first node: node i may open label d only if an
    # earlier node already holds label d − 1 (this removes all k! relabellings).
    for d in range(1, k):
        for i in range(d, n):
            problem += x[i, d] <= pulp.lpSum(x[j, d - 1] for j in range(d - 1, i))
    for d in range(k):
        size = pulp.lpSum(float(weights[i]) * x[i, d] for i in range(d, n))
        problem += size >= lower
        problem += size <= upper
    for (u, v), var in cut.items():
        for d in range(k):
            xu, xv = x.get((u, d), 0), x.get((v, d), 0)
            problem += var >= xu - xv
            problem += var >= xv - xu
    conflicts = _conflicts(n, edges, weights, upper)
    if len(conflicts) * k <= MAX_CONFLICT_ROWS:
        for i, j in conflicts:
            for d in range(min(i + 1, k)):
                if (j, d) in x:
                    problem += x[i, d] + x[j, d] <= 1
    adjacency: list[list[int]] = [[] for _ in range(n)]
    for u, v in cut:
        adjacency[u].append(v)
        adjacency[v].append(u)
    rounds = cuts = 0
    log: list[str] = []
    bound: float | None = None
    while True:
        rounds += 1
        left = time_limit - (time.monotonic() - start)
        if left <= 0:
            log.append(f"round {rounds}: no time left")
            return ExactResult(None, None, bound, "time_limit", rounds, cuts, log)
        with _native_output_silenced():
            problem.solve(_solver(solver, left))
        status = pulp.LpStatus[problem.status]
        round_bound = _dual_bound(problem, solver)
        if status == "Infeasible":
            log.append(f"round {rounds}: infeasible")
            return ExactResult(None, None, None, "infeasible", rounds, cuts, log)
        if problem.sol_status not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
            log.append(f"round {rounds}: {status}, no solution")
            return ExactResult(None, None, bound, "time_limit", rounds, cuts, log)
        proven = problem.sol_status == pulp.LpSolutionOptimal
        objective = float(pulp.value(problem.objective))
        if proven:
            round_bound = objective if round_bound is None else max(round_bound, objective)
        if round_bound is not None:
            bound = round_bound if bound is None else max(bound, round_bound)
        labels = _labels(x, n, k)
        added = _separate(problem, x, labels, adjacency, weights, k)
        cuts += added
        log.append(f"round {rounds}: {status}, objective {objective:.0f}, "
                   f"bound {bound if bound is not None else float('nan'):.2f}, "
                   f"{added} separator cut(s) added, {time.monotonic() - start:.1f} s")
        if added == 0:
            final = "optimal" if proven else "time_limit"
            return ExactResult(labels, round(objective, 6), bound, final, rounds, cuts, log)
        if not proven:
            # The time limit stopped a relaxed solve: its solution is not connected.
            return ExactResult(None, None, bound, "time_limit", rounds, cuts, log)


def _labels(x: dict[tuple[int, int], pulp.LpVariable], n: int, k: int) -> np.ndarray:
    """The district of each node in the current solution."""
    out = np.zeros(n, dtype=np.int64)
    for i in range(n):
        values = [float(x[i, d].value() or 0.0) for d in range(min(i + 1, k))]
        out[i] = int(np.argmax(values))
    return out


def _separate(
    problem: pulp.LpProblem,
    x: dict[tuple[int, int], pulp.LpVariable],
    labels: np.ndarray,
    adjacency: list[list[int]],
    weights: np.ndarray,
    k: int,
) -> int:
    """Add an a,b-separator inequality for every piece cut off from its district."""
    added = 0
    for d in range(k):
        members = [int(i) for i in np.flatnonzero(labels == d)]
        graph = nx.Graph()
        graph.add_nodes_from(members)
        graph.add_edges_from((u, v) for u in members for v in adjacency[u] if labels[v] == d)
        pieces = sorted(nx.connected_components(graph),
                        key=lambda c: (-sum(weights[i] for i in c), min(c)))
        if len(pieces) <= 1:
            continue
        main = max(pieces[0], key=lambda i: (weights[i], -i))
        for piece in pieces[1:]:
            a = max(piece, key=lambda i: (weights[i], -i))
            boundary = sorted({w for u in piece for w in adjacency[u] if w not in piece})
            for label in range(k):
                if (a, label) in x and (main, label) in x:
                    problem += (x[a, label] + x[main, label] - 1
                                <= pulp.lpSum(x[c, label] for c in boundary if (c, label) in x))
                    added += 1
    return added
