"""Faults and interruptions: a full disk, a denied path, Ctrl-C and SIGTERM are each one
message and a clear exit code, never a traceback, a silent kill or a partial folder."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_pipeline import SMALL_CONFIG

from districting.cli import main
from districting.errors import FULL_DISK_BYTES, FaultError, as_fault

DISTRICTING = Path(sys.executable).with_name("districting")


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "norms.yaml"
    path.write_text(SMALL_CONFIG, encoding="utf-8")
    return path


def plan(register: Path, config: Path, out: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["-q", "plan", str(register), "--config", str(config),
                                       "--out", str(out), *extra])
    return result.exit_code, result.output


def leftovers(folder: Path, name: str) -> list[str]:
    """Staging or set-aside folders of ``name`` left in ``folder``."""
    return sorted(p.name for p in folder.iterdir()
                  if p.name.startswith(f".{name}.") and not p.name.endswith(".checkpoints"))


def test_the_system_s_refusals_are_faults_naming_the_path() -> None:
    denied = PermissionError(errno.EACCES, "Permission denied", "/srv/plans/x.csv")
    assert str(as_fault(denied)) == "cannot write /srv/plans/x.csv: Permission denied"
    full = OSError(errno.ENOSPC, "No space left on device")
    assert str(as_fault(full, path="/mnt/out")) == \
        "cannot write /mnt/out: No space left on device"
    try:  # a library that words it, with the OS error as its cause
        try:
            raise full
        except OSError as cause:
            raise RuntimeError("Failed to commit transaction") from cause
    except RuntimeError as wrapped:
        assert isinstance(as_fault(wrapped, path="/mnt/out"), FaultError)
    assert as_fault(ValueError("a bug")) is None
    assert as_fault(FileNotFoundError(errno.ENOENT, "No such file", "x")) is None


def test_a_full_disk_while_writing_is_exit_1_naming_the_folder(
        register_file: Path, config_file: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # What GDAL says when its disk fills up while it writes a GeoPackage.
    from pyogrio.errors import DataSourceError

    def full(*args: object, **kwargs: object) -> None:
        raise DataSourceError("Failed to commit transaction")

    class Usage:
        free = FULL_DISK_BYTES // 2

    monkeypatch.setattr("districting.outputs.bundle.write_geopackage", full)
    monkeypatch.setattr("districting.errors.shutil.disk_usage", lambda path: Usage)
    out = tmp_path / "plan"
    code, output = plan(register_file, config_file, out)
    assert code == 1, output
    assert f"error: cannot write {out}: the disk is full" in output
    assert "Traceback" not in output and "bug" not in output
    assert not out.exists() and leftovers(tmp_path, "plan") == []


def test_an_output_under_a_file_is_exit_1_naming_it(register_file: Path, config_file: Path,
                                                    tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    code, output = plan(register_file, config_file, blocker / "plan")
    assert code == 1, output
    assert str(blocker) in output and "Traceback" not in output


def can_mount_tmpfs(folder: Path) -> bool:
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(folder)],
                          capture_output=True)
    return done.returncode == 0


def test_a_really_full_disk(register_file: Path, config_file: Path, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    if not can_mount_tmpfs(disk):
        pytest.skip("a small tmpfs cannot be mounted here (needs root)")
    try:
        done = subprocess.run([str(DISTRICTING), "-q", "plan", str(register_file), "--config",
                               str(config_file), "--out", str(disk / "plan")],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 1, done.stderr
        assert f"cannot write {disk / 'plan'}" in done.stderr
        assert "Traceback" not in done.stderr
        assert leftovers(disk, "plan") == [] and not (disk / "plan").exists()
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def start_plan(register: Path, config: Path, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([str(DISTRICTING), "-q", "plan", str(register), "--config",
                             str(config), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_writing_leaves_no_partial_folder(
        register_file: Path, config_file: Path, tmp_path: Path, signum: int) -> None:
    out = tmp_path / "plan"
    process = start_plan(register_file, config_file, out)
    deadline = time.monotonic() + 300
    while not leftovers(tmp_path, "plan") and process.poll() is None:  # writing has begun
        assert time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    name = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
    assert f"interrupted ({name}): no output folder was left half-written" in stderr
    assert "Traceback" not in stderr
    assert leftovers(tmp_path, "plan") == [] and not out.exists()


def test_ctrl_c_in_the_last_second_is_still_answered(
        register_file: Path, config_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan"
    process = start_plan(register_file, config_file, out)
    assert process.stdout is not None
    assert process.stdout.readline().startswith("wrote ")  # the plan is in place
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode in (0, 130), (process.returncode, stderr)  # never a kill
    if process.returncode == 130:
        assert "interrupted (Ctrl-C)" in stderr and "Traceback" not in stderr
    assert (out / "manifest.json").is_file()
