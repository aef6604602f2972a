"""Run settlement tasks in this process, on local worker processes or on a Dask cluster,
checkpointing each finished settlement so that an interrupted run resumes.

Each settlement's plan depends only on its own task (see :mod:`districting.settlement`),
so the order the tasks finish in changes nothing: the same inputs give the same plan
serially, with ``workers`` local processes (a Dask ``LocalCluster``) or on an existing
cluster (``scheduler``). Larger settlements are sent first, so that one big city does
not start last and keep the others waiting.

Each finished settlement is checkpointed (see :mod:`districting.checkpoints`: signed,
with its task's fingerprint), so ``resume`` only reuses a settlement planned from the
very same inputs, norms, seed and version, by this user's own runs.
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from districting.checkpoints import Checkpoints
from districting.errors import DistrictingError, SettlementError
from districting.settlement import SPLIT_UNITS, SettlementOutcome, SettlementTask, plan_task

logger = logging.getLogger(__name__)

#: Batches of tasks sent to the cluster ahead, per worker thread (see ``_run_on_dask``).
IN_FLIGHT_PER_THREAD = 2
#: Small settlements go to the cluster together, this much planning effort at a time
#: (in blocks' worth, see :attr:`SettlementTask.effort`; villages plan at about a
#: quarter of a second per block's worth): one hamlet takes milliseconds, and sent one
#: by one, or a few dozen milliseconds' worth at a time, the round trips through the
#: planning process took its CPU from the workers at the end of a run.
BATCH_EFFORT = 1.0
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

    @property
    def parallel(self) -> bool:
        """Whether the settlements go to Dask workers, not one after another here."""
        return self.workers > 1 or self.scheduler is not None

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise DistrictingError(f"--workers must be at least 1, got {self.workers}")
        if self.resume and self.checkpoints is None:
            raise DistrictingError("--resume needs a checkpoint folder")


def run_settlements(tasks: Sequence[SettlementTask], *, execution: Execution,
                    cluster: Cluster | None = None) -> list[SettlementOutcome]:
    """Plan every task and return the outcomes in the order of ``tasks``.

    A parallel run uses ``cluster`` when given (see :func:`cluster_for`), or starts its
    own; either way its workers are let go once the settlements are planned.

    Raises
    ------
    SettlementError
        With ``fail_fast``, at the first settlement that fails (finished ones are
        checkpointed).
    """
    store = Checkpoints(execution.checkpoints) if execution.checkpoints else None
    done: dict[str, SettlementOutcome] = {}
    if store is not None:
        for task in tasks:  # every checkpoint's name is safe, before any planning
            store.path(task.key)
        store.claim()
    if store is not None and execution.resume:
        done = store.load(tasks)
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
            store.save(outcome)
        places.update(1)
        units.update(outcome.units)
        if not outcome.ok:
            logger.warning("settlement %s failed: %s", outcome.key, outcome.error)
            if execution.fail_fast:
                raise SettlementError(f"settlement {outcome.key}: {outcome.error} "
                                      "(--fail-fast: the other settlements were stopped)")

    # The tasks' fingerprints (for the checkpoints) are taken where they are planned.
    fingerprints = store is not None
    try:
        if execution.parallel:
            cluster = cluster or Cluster(execution)
            try:
                if pending:
                    _run_on_dask(cluster.client(), pending, finish, fingerprints=fingerprints)
            finally:
                cluster.close()
        else:
            for task in pending:
                finish(plan_batch([task], fingerprints=fingerprints)[0])
    finally:
        places.close()
        units.close()
    return [done[t.key] for t in tasks]


@contextmanager
def cluster_for(execution: Execution) -> Iterator[Cluster | None]:
    """The run's Dask workers, started now in the background so that they are ready
    (and have imported the planner) once the tasks are; none for a serial run. They are
    closed on the way out, whatever happened."""
    if not execution.parallel:
        yield None
        return
    cluster = Cluster(execution)
    try:
        yield cluster
    finally:
        cluster.close()


class Cluster:
    """The Dask workers of one run, reached in a background thread: a ``LocalCluster`` of
    ``execution.workers`` processes, or the existing cluster at ``execution.scheduler``.

    :meth:`client` waits until they are there (and raises what went wrong on the way);
    :meth:`close` lets them go. Both may be called again.
    """

    def __init__(self, execution: Execution) -> None:
        cores = _cores()
        if execution.scheduler is None and execution.workers > cores:
            # Measured on 2 cores, a tenth of the country: 48 s of planning with 2
            # workers, 55 s with 4.
            logger.warning("--workers %d on %d CPU core(s): the workers share the cores, "
                           "which is slower than --workers %d", execution.workers, cores,
                           cores)
        self._execution = execution
        self._client: Any = None
        self._local: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._connect, name="districting-cluster",
                                        daemon=True)
        self._thread.start()

    def _connect(self) -> None:
        try:
            self._client, self._local = _connect(self._execution)
        except BaseException as error:  # raised again by client(), in the planning thread
            self._error = error

    def client(self) -> Any:
        """The connected ``distributed.Client``."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._client

    def close(self) -> None:
        """Close the client, and the local cluster if this run started one."""
        self._thread.join()
        client, local, self._client, self._local = self._client, self._local, None, None
        if client is not None:
            client.close()
        if local is not None:
            local.close()


def _cores() -> int:
    """The CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _connect(execution: Execution) -> tuple[Any, Any]:
    """A client of the run's cluster, and the ``LocalCluster`` started for it (if any)."""
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - dask is a dependency
        raise DistrictingError("parallel runs need dask[distributed]; "
                               "pip install 'dask[distributed]'") from exc
    # Dask logs every worker start and stop; only its warnings are of use here.
    logging.getLogger("distributed").setLevel(max(logging.WARNING, logger.getEffectiveLevel()))
    if execution.scheduler:
        try:
            return Client(execution.scheduler,
                          timeout=f"{execution.connect_timeout}s"), None
        except (OSError, TimeoutError) as exc:
            raise DistrictingError(f"cannot reach the Dask scheduler at "
                                   f"{execution.scheduler}: {exc}") from None
    # The workers import the planner as they start, not on their first task. They keep
    # glibc's own rule for handing freed memory back to the system (Dask's
    # MALLOC_TRIM_THRESHOLD_=65536 cost the planning thread 3 % more CPU), and they do
    # not sample their stacks every 10 ms for Dask's profile (no dashboard shows it
    # here; it was half of the worker's own CPU beside the planning). Measured on a
    # quarter of the tenth of the country, in one worker: 27.0-27.1 s of planning-thread
    # CPU and 0.65 s beside it with Dask's defaults; 25.7-26.3 s and 0.3 s with these
    # (25.8 s in a plain process).
    # Dask's event loops wake every 20 ms (its tick), 100 ms (the memory monitor) and
    # 500 ms (the system monitor), each time taking the GIL from the planning: once a
    # second, once a second and every 5 s do here (on the tenth of the country, with 2
    # workers, their loops' CPU fell from 0.55-0.66 s to 0.16-0.24 s each, the planning
    # process's from 1.17 s to 0.58 s). Each worker holds one batch at a time, so that
    # none waits behind a long one while another worker is idle (Dask's default of 1.1
    # gives each worker two).
    settings = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
                "distributed.worker.profile.enabled": False,
                "distributed.admin.tick.interval": "1s",
                "distributed.worker.memory.monitor-interval": "1s",
                "distributed.admin.system-monitor.interval": "5s",
                "distributed.scheduler.worker-saturation": 1.0}
    with dask.config.set(settings):
        local = LocalCluster(n_workers=execution.workers, threads_per_worker=1,
                             processes=True, dashboard_address=None,
                             silence_logs=logging.ERROR, preload=[__name__])
    try:
        return Client(local), local
    except BaseException:
        local.close()
        raise


def _run_on_dask(client: Any, tasks: Sequence[SettlementTask],
                 finish: Callable[[SettlementOutcome], None], *, fingerprints: bool) -> None:
    """Plan ``tasks`` on the cluster, handing each outcome to ``finish`` as it arrives."""
    from distributed import as_completed

    # A few batches per worker thread are in flight at a time, the longest first: the
    # scheduler then holds a few settlements' units, not the whole country's. Each
    # batch's outcomes are let go on the cluster once they are here (kept, the finished
    # settlements filled the workers' memory).
    window = max(4, IN_FLIGHT_PER_THREAD * sum(client.nthreads().values()))
    queue = enumerate(batches(tasks))
    finished = as_completed()
    pending: dict[Any, Any] = {}

    def top_up() -> None:
        while len(pending) < window and (batch := next(queue, None)) is not None:
            number, (_, group) = batch
            # Pickled here, so that the scheduler passes bytes on: given the tasks
            # themselves, it unpickled and pickled again every unit's geometry. The
            # batches start in the order they are sent (the longest tasks first). Ranked
            # by their own effort instead, a batch of one city block (4-6 s) and one of
            # sixty villages (a quarter of a second) were level, and three blocks ran
            # last: on a tenth of the country, one worker finished 3.6 s before the other.
            future = client.submit(plan_pickled, packed(group, fingerprints=fingerprints),
                                   pure=False,
                                   key=f"settlements-{group[0].key}-{len(group)}",
                                   priority=-number)
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


def plan_batch(tasks: Sequence[SettlementTask], *,
               fingerprints: bool = False) -> list[SettlementOutcome]:
    """:func:`~districting.settlement.plan_task` for each task, with the task's
    fingerprint in its outcome when ``fingerprints`` (for the checkpoints)."""
    outcomes = []
    for task in tasks:
        outcome = plan_task(task)
        if fingerprints:
            outcome.fingerprint = task.fingerprint()
        outcomes.append(outcome)
    return outcomes


def packed(tasks: Sequence[SettlementTask], *, fingerprints: bool) -> bytes:
    """A batch for :func:`plan_pickled`."""
    return pickle.dumps((list(tasks), fingerprints), protocol=pickle.HIGHEST_PROTOCOL)


def plan_pickled(payload: bytes) -> list[SettlementOutcome]:
    """:func:`plan_batch` of a batch :func:`packed` here, on a worker."""
    tasks, fingerprints = pickle.loads(payload)  # our own bytes, from packed()
    return plan_batch(tasks, fingerprints=fingerprints)
