"""Stage-2 commands end to end: synthetic records for a plan, then dedup by IIN."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from click.testing import CliRunner
from plan_fixtures import grid_plan, write_plan

from districting.cli import main
from districting.fieldops.records import CENSUS_WINDOW, parse_window


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


def _bad_rows(records: Path) -> dict[str, str]:
    """Append a row of each kind the dedup command must quarantine; their ids and reasons."""
    frame = pd.read_csv(records, dtype=str, keep_default_na=False)
    web = frame[frame["channel"] == "web"].iloc[0]
    tablet = frame[(frame["channel"] == "tablet") & (frame["status"] == "completed")].iloc[0]
    changes = {
        "BAD-P1": (web, {"persons": "-3"}), "BAD-P2": (web, {"persons": "three"}),
        "BAD-P3": (web, {"persons": "2.5"}), "BAD-P4": (web, {"persons": "1000000000"}),
        "BAD-CD": (tablet, {"cd_code": "999999999-99-999"}),
        "BAD-T1": (web, {"submitted_at": "2099-09-03T10:00:00+06:00"}),
        "BAD-T2": (web, {"submitted_at": "1900-09-03T10:00:00+06:00"}),
        "BAD-ID": (web, {"household_id": "H-ONE"}),
    }
    lines = []
    for record_id, (base, change) in changes.items():
        lines.append(",".join(dict(base.to_dict(), record_id=record_id, **change).values()))
    lines.append(",".join(dict(web.to_dict(), record_id="BAD-ID", household_id="H-TWO")
                          .values()))
    lines.append(",".join(dict(web.to_dict(), record_id="").values()))
    lines.append(",".join(dict(web.to_dict(), record_id="BAD-WIDE").values()) + ",surplus")
    lines.append("BAD-SHORT,," + str(web["building_id"]))
    with records.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return {"BAD-P1": "bad persons", "BAD-P2": "bad persons", "BAD-P3": "bad persons",
            "BAD-P4": "bad persons", "BAD-CD": "unknown CD",
            "BAD-T1": "outside census window", "BAD-T2": "outside census window",
            "BAD-ID": "repeated record_id", "": "missing record_id",
            "BAD-WIDE": "malformed row", "BAD-SHORT": "malformed row"}


def test_dedup_quarantines_every_bad_row_and_counts_them(tmp_path: Path) -> None:
    """Before: bad household sizes, unknown CDs and times from 2099 or 1900 reached
    accepted.csv, and one row with a surplus cell or a repeated id stopped the run."""
    plan = write_plan(grid_plan(rows=6, cols=6), tmp_path / "plan")
    records = tmp_path / "records.csv"
    run("stage2-synth", str(plan), "--out", str(records), "--seed", "3", "--no-truth")
    run("dedup", str(records), "--plan", str(plan), "--out", str(tmp_path / "good"))
    good = json.loads((tmp_path / "good" / "summary.json").read_text(encoding="utf-8"))
    expected = _bad_rows(records)
    result = CliRunner().invoke(main, ["-q", "dedup", str(records), "--plan", str(plan),
                                       "--out", str(tmp_path / "dedup"), "--salt",
                                       str(tmp_path / "good.salt")])
    assert result.exit_code == 0, result.output
    out = tmp_path / "dedup"
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    tables = {name: pd.read_csv(out / f"{name}.csv", dtype=str, keep_default_na=False)
              for name in ("accepted", "duplicates", "quarantined", "conflicts")}
    for name in ("accepted", "duplicates", "conflicts"):
        assert not tables[name]["record_id"].str.startswith("BAD").any(), name
        assert len(tables[name]) == good[name] == summary[name]
    quarantined = tables["quarantined"]
    bad = quarantined[quarantined["record_id"].str.startswith("BAD")
                      | (quarantined["record_id"] == "")]
    assert dict(zip(bad["record_id"], bad["reason"], strict=True)) == expected
    assert len(bad) == len(expected) + 1  # both copies of BAD-ID
    assert summary["inputs"] == good["inputs"] + len(bad)
    assert summary["quarantined"] == good["quarantined"] + len(bad) == len(quarantined)
    assert f"{summary['inputs']} records = {good['accepted']} accepted" in result.output
    assert "4 bad persons" in result.output and "2 malformed row" in result.output
    raw = pd.read_csv(records, dtype=str, keep_default_na=False, usecols=["iin"])["iin"]
    written = b"".join(path.read_bytes() for path in out.iterdir()) + result.output.encode()
    assert not any(iin.encode() in written for iin in raw if len(iin) == 12)


def test_dedup_refuses_a_salt_others_can_read_and_a_bad_window(tmp_path: Path) -> None:
    plan = write_plan(grid_plan(rows=4, cols=6), tmp_path / "plan")
    records = tmp_path / "records.csv"
    run("stage2-synth", str(plan), "--out", str(records), "--no-truth")
    salt = tmp_path / "shared.salt"
    salt.write_text("ab" * 32 + "\n", encoding="ascii")
    salt.chmod(0o644)
    result = CliRunner().invoke(main, ["dedup", str(records), "--out", str(tmp_path / "out"),
                                       "--salt", str(salt)])
    assert result.exit_code == 1, result.output
    assert f"chmod 600 {salt}" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
    salt.chmod(0o600)
    result = CliRunner().invoke(main, ["dedup", str(records), "--out", str(tmp_path / "out"),
                                       "--salt", str(salt), "--window", "2021-10-30/2021-09-01"])
    assert result.exit_code == 2 and "ends before it begins" in result.output
    window = next(p for p in main.commands["dedup"].params if p.name == "window")
    assert parse_window(str(window.default)) == CENSUS_WINDOW  # one default, not two
    out = run("dedup", str(records), "--out", str(tmp_path / "out"), "--salt", str(salt),
              "--window", "2021-10-01/2021-10-30")  # the door-to-door round only
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    online = pd.read_csv(records, dtype=str, keep_default_na=False)["channel"] != "tablet"
    assert summary["quarantine_reasons"]["outside census window"] > 0
    assert summary["quarantine_reasons"]["outside census window"] <= online.sum()
    assert "outside census window" in out
