"""Checkpoints: only this user's own signed runs are ever unpickled; their folder is ours."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_parallel import NORMS, SETTLEMENTS, norms, three_villages_and_a_town

from districting import parallel
from districting.checkpoints import (
    CHECKPOINT_FORMAT,
    MARKER,
    Checkpoints,
    load_or_create_key,
)
from districting.cli import main
from districting.errors import DistrictingError, InputFileError
from districting.parallel import Execution
from districting.pipeline import plan_from_file
from districting.settlement import SettlementOutcome, SettlementTask, plan_task


@pytest.fixture(scope="module")
def register(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("register") / "register.gpkg"
    three_villages_and_a_town().to_file(path, layer="buildings", engine="pyogrio")
    return path


class Planted:
    """A pickle that runs a command when loaded: what a planted checkpoint would hold."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The settlements planned from now on (not taken from a checkpoint)."""
    planned: list[str] = []

    def counted(task: SettlementTask) -> SettlementOutcome:
        planned.append(task.key)
        return plan_task(task)

    monkeypatch.setattr(parallel, "plan_task", counted)
    return planned


def resume(register: Path, folder: Path) -> None:
    plan_from_file(register, config=norms(),
                   execution=Execution(checkpoints=folder, resume=True, progress=False))


def test_a_planted_checkpoint_is_never_unpickled(register: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "checkpoints"
    plan_from_file(register, config=norms(), execution=Execution(checkpoints=folder,
                                                                 progress=False))
    marker = tmp_path / "pwned"
    store = Checkpoints(folder)
    # the earlier format: a bare pickle
    store.path(SETTLEMENTS[0]).write_bytes(pickle.dumps(
        {"format": "districting-checkpoint/2", "fingerprint": "x", "outcome": Planted(marker)}))
    # the current header, with the real fingerprint, but a signature of someone else's key
    path = store.path(SETTLEMENTS[1])
    lines = path.read_bytes().split(b"\n", 2)
    header = json.loads(lines[1])
    payload = pickle.dumps(Planted(marker))
    header.update(bytes=len(payload), hmac="0" * 64)
    path.write_bytes(lines[0] + b"\n" + json.dumps(header).encode() + b"\n" + payload)
    planned = counting(monkeypatch)
    resume(register, folder)
    assert not marker.exists()
    assert sorted(planned) == sorted(SETTLEMENTS[:2])  # planned again, the others reused


def test_a_checkpoint_signed_with_another_key_is_planned_again(
        register: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "checkpoints"
    plan_from_file(register, config=norms(), execution=Execution(checkpoints=folder,
                                                                 progress=False))
    monkeypatch.setenv("DISTRICTING_CHECKPOINT_KEY", str(tmp_path / "another.key"))
    planned = counting(monkeypatch)
    resume(register, folder)
    assert sorted(planned) == sorted(SETTLEMENTS)


def test_a_checkpoint_names_its_task_and_is_not_reused_for_another(
        register: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "checkpoints"
    plan_from_file(register, config=norms(), execution=Execution(checkpoints=folder,
                                                                 progress=False))
    store = Checkpoints(folder)
    store.path(SETTLEMENTS[1]).write_bytes(store.path(SETTLEMENTS[2]).read_bytes())
    planned = counting(monkeypatch)
    resume(register, folder)
    assert planned == [SETTLEMENTS[1]]


def test_a_key_others_can_read_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "checkpoint.key"
    assert len(load_or_create_key(key)) == 32
    assert key.stat().st_mode & 0o777 == 0o600
    key.chmod(0o644)
    with pytest.raises(InputFileError, match="chmod 600"):
        load_or_create_key(key)


def test_a_foreign_checkpoint_folder_is_refused_and_left_alone(
        register: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "results.pkl").write_bytes(b"someone's pickle")
    (folder / "notes.txt").write_text("keep", encoding="utf-8")
    config = tmp_path / "norms.yaml"
    config.write_text(NORMS, encoding="utf-8")
    result = CliRunner().invoke(main, ["-q", "plan", str(register), "--config", str(config),
                                       "--out", str(tmp_path / "plan"),
                                       "--checkpoints", str(folder)])
    assert result.exit_code == 1
    assert "did not write" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt", "results.pkl"]
    assert not (tmp_path / "plan").exists()


def test_clearing_removes_only_our_checkpoints(register: Path, tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    plan_from_file(register, config=norms(), execution=Execution(checkpoints=folder,
                                                                 progress=False))
    (folder / "notes.pkl").write_bytes(b"added by hand")
    Checkpoints(folder).clear()
    assert sorted(p.name for p in folder.iterdir()) == [MARKER, "notes.pkl"]
    (folder / "notes.pkl").unlink()
    Checkpoints(folder).clear()
    assert not folder.exists()


def test_checkpoints_start_with_their_format_and_a_signed_header(
        register: Path, tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    plan_from_file(register, config=norms(), execution=Execution(checkpoints=folder,
                                                                 progress=False))
    first, header, _ = Checkpoints(folder).path(SETTLEMENTS[0]).read_bytes().split(b"\n", 2)
    assert first.decode() == CHECKPOINT_FORMAT
    assert set(json.loads(header)) == {"key", "fingerprint", "bytes", "hmac"}


@pytest.mark.parametrize("key", ["../../X", "a/b", ".hidden", "x" * 300])
def test_a_task_key_that_would_leave_the_folder_is_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(DistrictingError, match="cannot be used as a file name"):
        Checkpoints(tmp_path / "checkpoints").path(key)
