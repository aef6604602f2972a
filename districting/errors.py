"""Every error the toolkit raises on purpose, in one small hierarchy.

A user sees ``str(error)``: one readable sentence per problem, never a traceback.
The command line catches :class:`DistrictingError` and exits non-zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class DistrictingError(Exception):
    """Base class for every error the toolkit raises deliberately."""


class InputFileError(DistrictingError, OSError):
    """An input file is missing, unreadable or in an unsupported format."""


class ConfigError(DistrictingError, ValueError):
    """A configuration file or option is invalid."""


@dataclass(frozen=True, order=True)
class Problem:
    """One problem found in an input: where it is and why it is wrong.

    ``row`` is the 1-based data row (``None`` for problems of the whole file),
    ``column`` the column name (``None`` when no single column is at fault).
    """

    severity: str  # "error" or "warning"
    row: int | None
    column: str | None
    message: str
    source: str = ""

    def __str__(self) -> str:
        where = []
        if self.source:
            where.append(self.source)
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        place = ", ".join(where)
        return f"{self.severity}: {place + ': ' if place else ''}{self.message}"


class RegisterValidationError(DistrictingError, ValueError):
    """The Stage-1 register has one or more errors; all of them are attached."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        lines = [f"the register has {len(errors)} error(s):"]
        lines += [f"  {p}" for p in errors]
        super().__init__("\n".join(lines))


class PlanCheckError(DistrictingError):
    """A written plan violates one or more invariants; all of them are attached."""

    def __init__(self, violations: Iterable[str]) -> None:
        self.violations = list(violations)
        lines = [f"the plan has {len(self.violations)} violation(s):"]
        lines += [f"  {v}" for v in self.violations]
        super().__init__("\n".join(lines))


class PartitionError(DistrictingError):
    """A partition could not be produced (for example, the graph is empty)."""


class SettlementError(DistrictingError):
    """A settlement could not be planned and the run was asked to stop (``--fail-fast``)."""
