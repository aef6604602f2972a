"""Run independent output jobs on worker processes that, once started, need nothing from
this one.

The jobs are pickled into one file first; each process then takes the next job from it
(a shared counter says which) until none is left. This process only waits for them. A
process pool fed from here would stall while this process runs a long call that holds
the GIL, such as writing ``plan.gpkg`` (measured on a tenth of the country: the two
field-sheet processes were idle for the 7 s it took).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from districting.errors import DistrictingError


@contextmanager
def jobs_on_processes(jobs: Iterable[Any], run: Callable[[Any], None], *, processes: int,
                      folder: Path, what: str) -> Iterator[None]:
    """``run(job)`` for every job on ``processes`` worker processes, while the body of the
    ``with`` statement runs here; on leaving it, wait for them.

    ``run`` must be a module-level function and the jobs picklable. They are kept in a
    temporary file in ``folder`` until the processes are done. ``what`` names the jobs
    in the error when a process dies.

    Raises
    ------
    Exception
        The first error a job raised (the processes stop taking new jobs then).
    DistrictingError
        If a process died without one (for example, killed for lack of memory).
    """
    fd, name = tempfile.mkstemp(prefix=".jobs-", dir=folder)
    try:
        offsets = [0]
        with os.fdopen(fd, "wb") as handle:
            for job in jobs:
                pickle.dump(job, handle, protocol=pickle.HIGHEST_PROTOCOL)
                offsets.append(handle.tell())
        # A fresh server process, not a fork of this one, which may be running threads.
        context = multiprocessing.get_context("forkserver")
        taken = context.Value("q", 0)
        errors = context.SimpleQueue()
        workers = [context.Process(target=_take_jobs, args=(name, offsets, run, taken, errors),
                                   name=f"districting-{what}", daemon=True)
                   for _ in range(max(1, min(processes, len(offsets) - 1)))]
        for worker in workers:
            worker.start()
        try:
            yield
            for worker in workers:
                worker.join()
        finally:
            for worker in workers:  # left early (an error here, Ctrl-C): stop them
                if worker.is_alive():
                    worker.terminate()
                    worker.join()
        if not errors.empty():
            raise errors.get()
        for worker in workers:
            if worker.exitcode != 0:
                raise DistrictingError(f"a process writing the {what} stopped with exit "
                                       f"code {worker.exitcode}")
    finally:
        Path(name).unlink(missing_ok=True)


def _take_jobs(path: str, offsets: Sequence[int], run: Callable[[Any], None], taken: Any,
               errors: Any) -> None:
    """A worker process: run the next job from the file until none is left or one
    fails. Ctrl-C is left to the process that started it, which stops this one."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    count = len(offsets) - 1
    with open(path, "rb") as handle:
        while True:
            with taken.get_lock():
                index = taken.value
                taken.value = index + 1
            if index >= count:
                return
            handle.seek(offsets[index])
            job = pickle.loads(handle.read(offsets[index + 1] - offsets[index]))  # ours
            try:
                run(job)
            except Exception as error:
                with taken.get_lock():
                    taken.value = count  # the others stop after their current job
                try:
                    errors.put(error)
                except Exception:  # an error that cannot be pickled: its words
                    errors.put(DistrictingError(f"{type(error).__name__}: {error}"))
                return
