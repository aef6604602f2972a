"""The MIP solvers, by name, the way pulp names them (``pulp.getSolver`` / ``pulp.listSolvers``).

:func:`get_solver` makes a configured pulp solver: no optimality gap, a time limit, an
optional objective cutoff and an optional budget of branch-and-bound nodes (work that is
the same on any machine). :func:`solve_counted` solves a pulp problem quietly and counts
the work; :func:`dual_bound` reads the proven lower bound after a solve. The exact models
(:mod:`districting.partition.exact`) and the registration points
(:mod:`districting.registration`) solve through them.
"""

from __future__ import annotations

import io
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import highspy
import pulp

__all__ = ["SOLVERS", "Solved", "dual_bound", "get_solver", "list_solvers", "solve_counted"]


def _highs(time_limit: float, *, cutoff: float | None, mip: bool,
           max_nodes: int | None) -> pulp.LpSolver:
    options: dict[str, float | str] = {"mip_rel_gap": 0.0, "mip_abs_gap": 0.0}
    if cutoff is not None:
        options["objective_bound"] = cutoff
    if max_nodes is not None:
        options["mip_max_nodes"] = max(1, max_nodes)
    # One thread: plans run side by side on worker processes, one per core, and
    # HiGHS's extra threads only competed with the other worker's.
    return pulp.HiGHS(msg=False, mip=mip, timeLimit=max(1.0, time_limit), threads=1,
                      **options)


def _cbc(time_limit: float, *, cutoff: float | None, mip: bool,
         max_nodes: int | None) -> pulp.LpSolver:
    extra = [f"cutoff {cutoff}"] if cutoff is not None else []
    return pulp.PULP_CBC_CMD(msg=False, mip=mip, timeLimit=max(1, math.ceil(time_limit)),
                             threads=2, gapRel=0.0, gapAbs=0.0, options=extra,
                             maxNodes=None if max_nodes is None else max(1, max_nodes))


_MAKERS: dict[str, Callable[..., pulp.LpSolver]] = {"highs": _highs, "cbc": _cbc}
#: The solvers by name; the first is the default.
SOLVERS: tuple[str, ...] = tuple(_MAKERS)


def get_solver(name: str, *, time_limit: float, cutoff: float | None = None,
               mip: bool = True, max_nodes: int | None = None) -> pulp.LpSolver:
    """The solver ``name``, with no gap, a time limit, an optional objective cutoff and an
    optional limit on branch-and-bound nodes (work that is the same on any machine).

    Raises :class:`ValueError` for a name not in :data:`SOLVERS`.
    """
    make = _MAKERS.get(name)
    if make is None:
        raise ValueError(f"unknown solver {name!r} (choose from {', '.join(SOLVERS)})")
    return make(time_limit, cutoff=cutoff, mip=mip, max_nodes=max_nodes)


def list_solvers(only_available: bool = True) -> list[str]:
    """Names of :data:`SOLVERS`; with ``only_available``, those installed and usable here."""
    if not only_available:
        return list(SOLVERS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pulp's notice on CBC
        return [name for name in SOLVERS if get_solver(name, time_limit=1.0).available()]


@contextmanager
def _native_output_silenced() -> Iterator[None]:
    """Keep the solver library's banner off the terminal (it writes to file descriptor 1)."""
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        # A notebook's stdout is not a file, but the library still writes to descriptor 1.
        descriptor = 1
    sys.stdout.flush()
    saved = os.dup(descriptor)
    try:
        with open(os.devnull, "w", encoding="utf-8") as devnull:
            os.dup2(devnull.fileno(), descriptor)
            yield
    finally:
        os.dup2(saved, descriptor)
        os.close(saved)


@dataclass
class Solved:
    """How one solve ended: seconds spent outside the solver (pulp handing the model
    over), branch-and-bound nodes taken, and what stopped it short of a proof, if
    anything: ``"nodes"`` (the node budget) or ``"clock"`` (the time limit)."""

    overhead: float
    nodes: int
    stopped_by: str = ""

    @property
    def node_limit(self) -> bool:
        return self.stopped_by == "nodes"


def solve_counted(problem: pulp.LpProblem, solver: pulp.LpSolver) -> Solved:
    """Solve quietly and count the work.

    pulp has no status for HiGHS's node limit (it raises ``KeyError`` on
    ``kSolutionLimit``). Such a stop is read from the solver itself and recorded on
    ``problem`` as not solved, with the best plan found so far loaded into its variables
    (``sol_status`` integer feasible) if there is one.
    """
    clock = time.monotonic()
    statuses = highspy.HighsModelStatus
    with _native_output_silenced():
        try:
            problem.solve(solver)
        except KeyError:
            model = getattr(problem, "solverModel", None)
            if model is None or model.getModelStatus() != statuses.kSolutionLimit:
                raise
            found = model.getInfo().primal_solution_status == 2  # a feasible solution
            if found:
                values = model.getSolution().col_value
                for var in problem.variables():
                    var.varValue = values[var.index]
            problem.assignStatus(pulp.LpStatusNotSolved,
                                 pulp.LpSolutionIntegerFeasible if found
                                 else pulp.LpSolutionNoSolutionFound)
    wall = time.monotonic() - clock
    model = getattr(problem, "solverModel", None)
    if model is None:  # CBC runs as a command: its time is all outside pulp, and an
        # unproven end cannot be told apart, so it is put down to the clock.
        ended = problem.sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionInfeasible)
        return Solved(0.0, 0, "" if ended else "clock")
    stopped_by = {statuses.kSolutionLimit: "nodes",
                  statuses.kTimeLimit: "clock"}.get(model.getModelStatus(), "")
    try:
        nodes = int(model.getInfo().mip_node_count)
    except (AttributeError, TypeError, ValueError):
        nodes = 0
    return Solved(max(0.0, wall - float(model.getRunTime())), max(nodes, 0), stopped_by)


def dual_bound(problem: pulp.LpProblem, solver: str) -> float | None:
    """The solver's proven lower bound after a MIP solve, where it reports one."""
    if solver != "highs" or getattr(problem, "solverModel", None) is None:
        return None
    try:
        value = float(problem.solverModel.getInfo().mip_dual_bound)
    except (AttributeError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
