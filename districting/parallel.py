"""Run settlement tasks in this process, on local worker processes or on a Dask cluster,
checkpointing each finished settlement so that an interrupted run resumes.

Each settlement's plan depends only on its own task (see :mod:`districting.settlement`),
so the order the tasks finish in changes nothing: the same inputs give the same plan
serially, with ``workers`` local processes (a Dask ``LocalCluster``) or on an existing
cluster (``scheduler``). Larger settlements are sent first, so that one big city does
not start last and keep the others waiting.

A checkpoint is one pickle per settlement in the checkpoint folder, written atomically
and named after the settlement; it records the task's fingerprint, so ``resume`` only
reuses a settlement planned from the very same inputs, norms, seed and version.
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from districting.errors import DistrictingError, InputFileError, SettlementError
from districting.settlement import SPLIT_UNITS, SettlementOutcome, SettlementTask, plan_task

logger = logging.getLogger(__name__)

#: Raised whenever a checkpoint's outcome changes shape (2: with the district territories).
CHECKPOINT_FORMAT = "districting-checkpoint/2"
CHECKPOINT_SUFFIX = ".pkl"
#: Batches of tasks sent to the cluster ahead, per worker thread (see ``_dask_client``).
IN_FLIGHT_PER_THREAD = 2
#: Small settlements go to the cluster together, this much planning effort at a time
#: (in blocks' worth, see :attr:`SettlementTask.effort`; about half a second): one
#: hamlet takes milliseconds, and sent one by one the round trips kept the workers
#: waiting for work at the end of a run.
BATCH_EFFORT = 0.1
#: ... and at most this many settlements in one batch.
BATCH_TASKS = 64


@dataclass(frozen=True)
class Execution:
    """How to run the settlements: where, with which checkpoints, and what a failure does.

    ``workers`` > 1 starts that many local worker processes; ``scheduler`` (a Dask
    scheduler address such as ``tcp://10.0.0.5:8786``) uses an existing cluster instead.
    ``checkpoints`` is the folder of per-settlement checkpoints (none: no checkpoints);
    ``resume`` reuses the ones that match. A settlement that fails is reported and the
    others go on, unless ``fail_fast``.
    """

    workers: int = 1
    scheduler: str | None = None
    checkpoints: Path | None = None
    resume: bool = False
    fail_fast: bool = False
    progress: bool = True
    #: Seconds to wait for the ``scheduler`` to answer.
    connect_timeout: float = 30.0
    #: Settlements of more units are planned in blocks of whole IDs (``None``: never).
    split_units: int | None = SPLIT_UNITS

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise DistrictingError(f"--workers must be at least 1, got {self.workers}")
        if self.resume and self.checkpoints is None:
            raise DistrictingError("--resume needs a checkpoint folder")


def run_settlements(tasks: Sequence[SettlementTask], *,
                    execution: Execution) -> list[SettlementOutcome]:
    """Plan every task and return the outcomes in the order of ``tasks``.

    Raises
    ------
    SettlementError
        With ``fail_fast``, at the first settlement that fails (finished ones are
        checkpointed).
    """
    fingerprints = {t.key: t.fingerprint() for t in tasks}
    store = Checkpoints(execution.checkpoints) if execution.checkpoints else None
    done: dict[str, SettlementOutcome] = {}
    if store is not None and execution.resume:
        done = store.load(fingerprints)
        if done:
            logger.info("resuming: %d of %d settlement(s) already planned", len(done),
                        len(tasks))
    pending = sorted((t for t in tasks if t.key not in done), key=lambda t: (-t.effort, t.key))
    total_units = sum(t.size for t in tasks)
    places = tqdm(total=len(tasks), desc="settlements", unit="settlement",
                  disable=not execution.progress, leave=False, position=0,
                  initial=len(done))
    units = tqdm(total=total_units, desc="units", unit="unit", disable=not execution.progress,
                 leave=False, position=1, initial=sum(o.units for o in done.values()))

    def finish(outcome: SettlementOutcome) -> None:
        done[outcome.key] = outcome
        if store is not None and outcome.ok:
            store.save(outcome, fingerprints[outcome.key])
        places.update(1)
        units.update(outcome.units)
        if not outcome.ok:
            logger.warning("settlement %s failed: %s", outcome.key, outcome.error)
            if execution.fail_fast:
                raise SettlementError(f"settlement {outcome.key}: {outcome.error} "
                                      "(--fail-fast: the other settlements were stopped)")

    try:
        if pending and (execution.workers > 1 or execution.scheduler):
            with _dask_client(execution) as submit:
                submit(pending, finish)
        else:
            for task in pending:
                finish(plan_task(task))
    finally:
        places.close()
        units.close()
    return [done[t.key] for t in tasks]


@contextmanager
def _dask_client(execution: Execution) -> Iterator[Callable[..., None]]:
    """A function that runs tasks on Dask and hands each outcome to a callback as it
    finishes; the local cluster (if one was started) is closed afterwards."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:  # pragma: no cover - dask is a dependency
        raise DistrictingError("parallel runs need dask[distributed]; "
                               "pip install 'dask[distributed]'") from exc
    # Dask logs every worker start and stop; only its warnings are of use here.
    logging.getLogger("distributed").setLevel(max(logging.WARNING, logger.getEffectiveLevel()))
    cluster: Any = None
    if execution.scheduler:
        try:
            client = Client(execution.scheduler, timeout=f"{execution.connect_timeout}s")
        except (OSError, TimeoutError) as exc:
            raise DistrictingError(f"cannot reach the Dask scheduler at "
                                   f"{execution.scheduler}: {exc}") from None
    else:
        cluster = LocalCluster(n_workers=execution.workers, threads_per_worker=1,
                               processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
        client = Client(cluster)

    def submit(tasks: Sequence[SettlementTask],
               finish: Callable[[SettlementOutcome], None]) -> None:
        # A few batches per worker thread are in flight at a time, the longest first:
        # the scheduler then holds a few settlements' units, not the whole country's.
        # Each batch's outcomes are let go on the cluster once they are here (kept, the
        # finished settlements filled the workers' memory).
        window = max(4, IN_FLIGHT_PER_THREAD * sum(client.nthreads().values()))
        queue = iter(batches(tasks))
        finished = as_completed()
        pending: dict[Any, Any] = {}

        def top_up() -> None:
            while len(pending) < window and (batch := next(queue, None)) is not None:
                effort, group = batch
                # Pickled here, so that the scheduler passes bytes on: given the tasks
                # themselves, it unpickled and pickled again every unit's geometry.
                payload = pickle.dumps(group, protocol=pickle.HIGHEST_PROTOCOL)
                future = client.submit(plan_pickled, payload, pure=False,
                                       key=f"settlements-{group[0].key}-{len(group)}",
                                       priority=round(1000 * effort))
                pending[future.key] = future
                finished.add(future)

        try:
            top_up()
            for future in finished:
                outcomes = future.result()
                del pending[future.key]
                future.release()
                for outcome in outcomes:
                    finish(outcome)
                top_up()
        except BaseException:
            client.cancel(list(pending.values()))
            raise

    try:
        yield submit
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def batches(tasks: Sequence[SettlementTask]) -> Iterator[tuple[float, list[SettlementTask]]]:
    """``tasks`` in order, in runs of at least :data:`BATCH_EFFORT` (the last run may have
    less) and at most :data:`BATCH_TASKS` tasks, each with its effort."""
    group: list[SettlementTask] = []
    effort = 0.0
    for task in tasks:
        group.append(task)
        effort += task.effort
        if effort >= BATCH_EFFORT or len(group) >= BATCH_TASKS:
            yield effort, group
            group, effort = [], 0.0
    if group:
        yield effort, group


def plan_batch(tasks: Sequence[SettlementTask]) -> list[SettlementOutcome]:
    """:func:`~districting.settlement.plan_task` for each task, on a worker."""
    return [plan_task(task) for task in tasks]


def plan_pickled(payload: bytes) -> list[SettlementOutcome]:
    """:func:`plan_batch` of tasks pickled by this package's own client."""
    return plan_batch(pickle.loads(payload))  # our own bytes, from submit()


class Checkpoints:
    """A folder of per-settlement checkpoints (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        """The checkpoint of a task (see :attr:`SettlementTask.key`)."""
        return self.folder / f"{key}{CHECKPOINT_SUFFIX}"

    def save(self, outcome: SettlementOutcome, fingerprint: str) -> None:
        """Write one settlement's outcome atomically."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputFileError(f"cannot create the checkpoint folder {self.folder}: "
                                 f"{exc.strerror}") from None
        target = self.path(outcome.key)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as handle:
                pickle.dump({"format": CHECKPOINT_FORMAT, "fingerprint": fingerprint,
                             "outcome": outcome}, handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(name, target)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise

    def load(self, fingerprints: dict[str, str]) -> dict[str, SettlementOutcome]:
        """The checkpointed outcomes (by task key) whose fingerprint matches the task's now.

        A checkpoint that cannot be read, or was made from other inputs, is ignored
        (and said so): that settlement is planned again.
        """
        found: dict[str, SettlementOutcome] = {}
        if not self.folder.is_dir():
            return found
        for key, fingerprint in fingerprints.items():
            path = self.path(key)
            if not path.is_file():
                continue
            try:
                with path.open("rb") as handle:
                    record = pickle.load(handle)  # our own files, written by save()
            except Exception as exc:
                logger.warning("checkpoint %s cannot be read (%s); planning it again", path,
                               type(exc).__name__)
                continue
            if (not isinstance(record, dict) or record.get("format") != CHECKPOINT_FORMAT
                    or record.get("fingerprint") != fingerprint):
                logger.warning("checkpoint %s was made from other inputs, norms or version; "
                               "planning it again", path)
                continue
            found[key] = record["outcome"]
        return found

    def clear(self) -> None:
        """Remove the checkpoints (after the plan is written) and the folder if empty."""
        if not self.folder.is_dir():
            return
        for path in self.folder.glob(f"*{CHECKPOINT_SUFFIX}"):
            path.unlink(missing_ok=True)
        with suppress(OSError):  # not empty: someone else's files are left alone
            self.folder.rmdir()
