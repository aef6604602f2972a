"""Ctrl-C and SIGTERM as one interruption, held off while a finished folder is swapped in.

The command line calls :func:`install`: from then on SIGINT and SIGTERM both raise
:class:`Interrupted` (a :class:`KeyboardInterrupt`) in the main thread, so the same
clean-up runs for either (staging folders removed, the earlier output kept) and the
command exits 130 with a message. Inside :func:`deferred`, a signal is remembered and
raised only when the block ends, so that moving a complete folder into place is never
cut in half. :func:`exit_now` ends the process once the command is over, so that a late
signal is still answered (see there).
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import NoReturn

#: The exit status of an interrupted command (128 + SIGINT, as shells report Ctrl-C).
EXIT_INTERRUPTED = 130


class Interrupted(KeyboardInterrupt):
    """The run was stopped by Ctrl-C (SIGINT) or SIGTERM."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def notice(error: BaseException | None = None, *, finished: bool = False) -> str:
    """What to tell the user of an interruption (``error``: the one raised, if any)."""
    signum = error.signum if isinstance(error, Interrupted) else signal.SIGINT
    how = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
    if finished:
        return f"interrupted ({how}) after the command had finished: its outputs are complete"
    return (f"interrupted ({how}): no output folder was left half-written; each is as it "
            "was before, or complete")


#: How many :func:`deferred` blocks are open, and the signals that arrived meanwhile.
_open = [0]
_pending: list[int] = []


def _handler(signum: int, frame: FrameType | None) -> None:
    if _open[0]:
        _pending.append(signum)
        return
    raise Interrupted(signum)


def install() -> None:
    """Make SIGINT and SIGTERM raise :class:`Interrupted` (only from the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _handler)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold an interruption off until the block ends, then raise it."""
    _open[0] += 1
    try:
        yield
    finally:
        _open[0] -= 1
        if not _open[0] and _pending:
            signum = _pending[0]
            _pending.clear()
            raise Interrupted(signum)


def exit_now(code: int) -> NoReturn:
    """End the process with ``code`` now that the command is over.

    Python's own shutdown first puts back the default handlers of SIGINT and SIGTERM,
    then frees every module, which takes seconds after a plan: an interruption then
    killed the process with no word. So the libraries' exit handlers (temporary files,
    child processes, log flushing) run here, with signals only noted, and the process
    ends without that last phase. A signal that came meanwhile is said, with exit 130.
    """
    _open[0] += 1  # from here on a signal is only noted
    atexit._run_exitfuncs()
    if _pending:
        print(notice(Interrupted(_pending[0]), finished=True), file=sys.stderr)
        code = EXIT_INTERRUPTED
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):  # a closed pipe: nothing more can be said
            stream.flush()
    os._exit(code)
