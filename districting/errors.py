"""Every error the toolkit raises on purpose, in one small hierarchy.

A user sees ``str(error)``: one readable sentence per problem, never a traceback.
The command line catches :class:`DistrictingError` and exits non-zero.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


class DistrictingError(Exception):
    """Base class for every error the toolkit raises deliberately."""


class InputFileError(DistrictingError, OSError):
    """An input file is missing, unreadable or in an unsupported format."""


class ConfigError(DistrictingError, ValueError):
    """A configuration file or option is invalid."""


class FaultError(DistrictingError, OSError):
    """The system refused a read or a write: a full disk, a denied permission, a
    read-only folder. Not a bug, and not the data's fault: the message names the path
    and the cause."""


#: OS error numbers that are the system's refusal, not a bug (see :func:`as_fault`).
FAULT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES,
                          errno.EPERM, errno.EROFS, errno.EIO, errno.ENAMETOOLONG,
                          errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOTDIR,
                          errno.EISDIR})
#: How libraries that do not pass the OS error on (GDAL, SQLite) word a full disk.
_FULL_DISK_WORDS = ("no space left on device", "database or disk is full",
                    "disk quota exceeded", "file too large")


#: A failure with less than this much free space left where the command writes was
#: stopped by a full disk, whatever the library that wrote says (GDAL then reports
#: "no such table" or "Failed to commit transaction").
FULL_DISK_BYTES = 64 << 20


def as_fault(error: BaseException, *, path: str | Path | None = None,
             action: str = "write", near: Iterable[str | Path] = ()) -> FaultError | None:
    """The :class:`FaultError` that ``error`` (or what caused it) really is, naming
    ``path`` where the error names no file; ``None`` when it is no such fault.

    Besides OS errors and libraries' words for a full disk, an error of any kind is
    taken for a full disk when the disk of ``path`` or of a path in ``near`` has less
    than :data:`FULL_DISK_BYTES` free.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, FaultError):
            return current
        if isinstance(current, OSError) and current.errno in FAULT_ERRNOS:
            where = current.filename or path
            reason = current.strerror or errno.errorcode.get(current.errno or 0, "error")
            return FaultError(f"cannot {action} {where}: {reason}" if where
                              else f"cannot {action}: {reason}")
        text = str(current).lower()
        if any(words in text for words in _FULL_DISK_WORDS):
            where = f" {path}" if path else ""
            return FaultError(f"cannot {action}{where}: the disk is full ({current})")
        current = current.__cause__ or current.__context__
    for place in ([path] if path else []) + list(near):
        free = _free_bytes(Path(place))
        if free is not None and free < FULL_DISK_BYTES:
            return FaultError(f"cannot {action} {place}: the disk is full ({free // 1024:,} KB "
                              f"free; {type(error).__name__}: {error})")
    return None


def _free_bytes(path: Path) -> int | None:
    """Free bytes on the disk that holds ``path`` (or its nearest existing folder)."""
    for folder in (path, *path.parents):
        try:
            if folder.is_dir():
                return shutil.disk_usage(folder).free
        except OSError:
            return None
    return None


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
