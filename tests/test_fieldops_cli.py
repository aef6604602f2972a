"""Stage-2 commands end to end: synthetic records for a plan, then dedup by IIN."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from click.testing import CliRunner
from plan_fixtures import grid_plan, write_plan

from districting.cli import main


def run(*args: str) -> str:
    result = CliRunner().invoke(main, ["-q", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_synthetic_records_then_dedup_lose_nothing_and_hide_iins(tmp_path: Path) -> None:
    plan = write_plan(grid_plan(rows=12, cols=12), tmp_path / "plan")
    records = tmp_path / "records.csv"
    out = run("stage2-synth", str(plan), "--out", str(records), "--seed", "5")
    assert "records" in out and records.is_file()
    truth = pd.read_csv(tmp_path / "records.csv.truth.csv", dtype=str)
    out = run("dedup", str(records), "--plan", str(plan), "--out", str(tmp_path / "dedup"))
    summary = json.loads((tmp_path / "dedup" / "summary.json").read_text(encoding="utf-8"))
    ids: list[str] = []
    for name in ("accepted", "duplicates", "quarantined", "conflicts"):
        table = pd.read_csv(tmp_path / "dedup" / f"{name}.csv", dtype=str)
        assert len(table) == summary[name]
        ids += table["record_id"].tolist()
    assert sorted(ids) == sorted(truth["record_id"])  # every record exactly once
    assert f"{summary['inputs']} records = {summary['accepted']} accepted" in out
    raw = pd.read_csv(records, dtype=str)["iin"].dropna()
    written = b"".join(path.read_bytes() for path in (tmp_path / "dedup").iterdir())
    assert not any(iin.encode() in written for iin in raw if len(iin) >= 10)
    assert (tmp_path / "dedup.salt").is_file()  # beside the folder, not inside it
    # progress on the accepted records: per-CD figures that nest, and no IIN hash anywhere
    out = run("progress", str(plan), "--records", str(tmp_path / "dedup" / "accepted.csv"),
              "--as-of", "2021-10-20", "--out", str(tmp_path / "progress"))
    assert "as of 2021-10-20" in out
    cds = pd.read_csv(tmp_path / "progress" / "cd_progress.csv", dtype={"cd_code": str})
    settlements = pd.read_csv(tmp_path / "progress" / "settlement_progress.csv")
    assert cds["done_households"].sum() == settlements["done_households"].sum()
    assert cds["expected_persons"].sum() == settlements["expected_persons"].sum()
    hashes = pd.read_csv(tmp_path / "dedup" / "accepted.csv", dtype=str)["iin_hash"].dropna()
    shown = b"".join(path.read_bytes() for path in (tmp_path / "progress").iterdir())
    assert not any(value.encode() in shown for value in hashes)


def test_dedup_of_a_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["dedup", str(tmp_path / "none.csv"), "--out",
                                       str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "none.csv" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
