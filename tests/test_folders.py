"""Output folders: replaced only when the tool wrote every file in them, unchanged."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from districting.cli import main
from districting.errors import DistrictingError, InputFileError
from districting.interrupts import Interrupted
from districting.outputs.folders import (
    MANIFEST,
    atomic_directory,
    child,
    read_manifest,
    safe_file_name,
    why_not_ours,
)


def write_output(target: Path, files: dict[str, str], *, kind: str = "plan") -> None:
    with atomic_directory(target, kind=kind) as staging:
        for name, text in files.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_text(text, encoding="utf-8")


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_an_output_lists_every_file_it_wrote_in_its_manifest(tmp_path: Path) -> None:
    out = tmp_path / "plan"
    write_output(out, {"plan.gpkg": "layers", "sheets/a.csv": "x"})
    manifest = read_manifest(out)
    assert manifest is not None and manifest.kind == "plan"
    assert sorted(manifest.files) == ["plan.gpkg", "sheets/a.csv"]
    raw = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert raw["files"]["plan.gpkg"]["bytes"] == len("layers")
    assert why_not_ours(out, kind="plan") is None


def test_an_earlier_output_of_the_same_kind_is_replaced(tmp_path: Path) -> None:
    out = tmp_path / "plan"
    write_output(out, {"plan.gpkg": "first", "old.csv": "gone"})
    write_output(out, {"plan.gpkg": "second"})
    assert tree(out) == {"manifest.json": (out / MANIFEST).read_bytes(), "plan.gpkg": b"second"}
    assert [p.name for p in tmp_path.iterdir()] == ["plan"]  # nothing aside, no staging


def test_a_folder_with_a_copied_plan_and_documents_is_refused_before_planning(
        register_file: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "plan.gpkg").write_bytes(b"a copied plan")
    (home / "thesis.docx").write_bytes(b"years of work")
    before = tree(home)
    result = CliRunner().invoke(main, ["-q", "plan", str(register_file), "--out", str(home)])
    assert result.exit_code == 1
    assert "not written by districting" in result.output
    assert "Traceback" not in result.output
    assert tree(home) == before
    assert not (tmp_path / ".home.checkpoints").exists()  # refused before any work


def test_an_earlier_output_with_a_file_added_by_hand_is_refused_naming_it(
        tmp_path: Path) -> None:
    out = tmp_path / "plan"
    write_output(out, {"plan.gpkg": "layers"})
    (out / "signed-scan.pdf").write_bytes(b"%PDF signed")
    (out / "scans").mkdir()
    (out / "scans" / "page-2.pdf").write_bytes(b"%PDF")
    before = tree(out)
    with pytest.raises(InputFileError, match=r"did not write: scans/page-2\.pdf, "
                                             r"signed-scan\.pdf"):
        write_output(out, {"plan.gpkg": "new"})
    assert tree(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["plan"]


def test_an_earlier_output_edited_by_hand_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "plan"
    write_output(out, {"plan.gpkg": "layers"})
    (out / "plan.gpkg").write_text("layerz", encoding="utf-8")  # same size, other bytes
    with pytest.raises(InputFileError, match=r"changed after districting wrote them: "
                                             r"plan\.gpkg"):
        write_output(out, {"plan.gpkg": "new"})
    assert (out / "plan.gpkg").read_text(encoding="utf-8") == "layerz"


def test_an_output_of_another_kind_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "plan"
    write_output(out, {"plan.gpkg": "layers"}, kind="plan")
    with pytest.raises(InputFileError, match="holds a plan written by districting, not a "
                                             "dedup"):
        write_output(out, {"accepted.csv": "x"}, kind="dedup")
    assert (out / "plan.gpkg").is_file()


def test_a_forged_or_missing_manifest_is_not_ours(tmp_path: Path) -> None:
    out = tmp_path / "documents"
    out.mkdir()
    (out / "notes.txt").write_text("keep me", encoding="utf-8")
    (out / MANIFEST).write_text("not json", encoding="utf-8")
    with pytest.raises(InputFileError, match="not written by districting"):
        write_output(out, {"plan.gpkg": "x"})
    (out / MANIFEST).unlink()
    with pytest.raises(InputFileError, match="not written by districting"):
        write_output(out, {"plan.gpkg": "x"})
    assert (out / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_a_symbolic_link_in_an_output_is_never_followed_or_deleted(tmp_path: Path) -> None:
    out = tmp_path / "plan"
    write_output(out, {"plan.gpkg": "layers"})
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "data.txt").write_text("keep", encoding="utf-8")
    (out / "link").symlink_to(precious, target_is_directory=True)
    with pytest.raises(InputFileError, match="did not write: link"):
        write_output(out, {"plan.gpkg": "new"})
    assert (precious / "data.txt").read_text(encoding="utf-8") == "keep"


def test_a_file_added_while_writing_keeps_the_earlier_folder_aside(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "plan"
    write_output(out, {"plan.gpkg": "first"})
    with caplog.at_level(logging.WARNING), atomic_directory(out, kind="plan") as staging:
        (staging / "plan.gpkg").write_text("second", encoding="utf-8")
        (out / "added-meanwhile.txt").write_text("mine", encoding="utf-8")
    assert (out / "plan.gpkg").read_text(encoding="utf-8") == "second"
    kept = [p for p in tmp_path.glob(".plan.old-*/plan/added-meanwhile.txt")]
    assert [p.read_text(encoding="utf-8") for p in kept] == ["mine"]
    assert "kept the earlier plan" in caplog.text


@pytest.mark.parametrize("stop", [RuntimeError("a bug"), Interrupted(15), KeyboardInterrupt()])
def test_a_stopped_write_leaves_the_earlier_output_and_no_staging(
        tmp_path: Path, stop: BaseException) -> None:
    out = tmp_path / "plan"
    write_output(out, {"plan.gpkg": "first"})
    before = tree(out)
    with pytest.raises(type(stop)), atomic_directory(out, kind="plan") as staging:
        (staging / "plan.gpkg").write_text("half", encoding="utf-8")
        raise stop
    assert tree(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["plan"]


def test_an_output_folder_may_not_hold_an_input_or_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "plan"
    write_output(out, {"plan.gpkg": "x"})
    with pytest.raises(InputFileError, match="holds the input"), \
            atomic_directory(out, kind="plan", protect=(out / "plan.gpkg",)):
        pass
    monkeypatch.chdir(out)
    with pytest.raises(InputFileError, match="working directory"):
        write_output(out, {"plan.gpkg": "y"})


@pytest.mark.parametrize("name", ["../X", "a/b", "..", ".hidden", "-rf", "", " ", "a\x00b",
                                  "x" * 200, "C:evil", "a\\b"])
def test_a_name_from_data_never_leaves_its_folder(tmp_path: Path, name: str) -> None:
    with pytest.raises(DistrictingError, match="cannot be used as a file name"):
        child(tmp_path, name, what="district code", suffix=".csv")


@pytest.mark.parametrize("name", ["431010000-01-001", "Байконур.001", "osm-w123", "A_1"])
def test_codes_and_ids_make_file_names(tmp_path: Path, name: str) -> None:
    assert safe_file_name(name, what="code") == name
    assert child(tmp_path, name, what="code", suffix=".csv").parent == tmp_path
