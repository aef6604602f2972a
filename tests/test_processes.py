"""Output jobs on worker processes that need nothing from the planning process."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest

from districting.errors import DistrictingError
from districting.outputs.processes import jobs_on_processes


def test_every_job_runs_once_and_the_job_file_goes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    jobs = [out / f"{number:02d}" for number in range(40)]
    # mkdir fails on a folder that is there: a job run twice would raise
    with jobs_on_processes(jobs, Path.mkdir, processes=2, folder=tmp_path, what="tests"):
        pass
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in jobs]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_failing_job_raises_its_own_error_here(tmp_path: Path) -> None:
    jobs = [tmp_path / "a", tmp_path / "missing" / "b"]
    with pytest.raises(FileNotFoundError, match="missing"), \
            jobs_on_processes(jobs, Path.mkdir, processes=2, folder=tmp_path, what="tests"):
        pass
    assert not list(tmp_path.glob(".jobs-*"))


def test_a_process_that_dies_is_said(tmp_path: Path) -> None:
    with pytest.raises(DistrictingError, match="a process writing the tests stopped with "
                       "exit code 3"), \
            jobs_on_processes([3], os._exit, processes=1, folder=tmp_path, what="tests"):
        pass


def test_leaving_early_stops_the_processes(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="stopped"), \
            jobs_on_processes([60, 60], time.sleep, processes=2, folder=tmp_path,
                              what="tests"):
        raise RuntimeError("stopped")
    assert time.monotonic() - started < 30
    assert not [p for p in multiprocessing.active_children() if p.name == "districting-tests"]
    assert not list(tmp_path.glob(".jobs-*"))
