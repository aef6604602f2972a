"""The follow-up after online self-response, end to end on a plan the pipeline made.

One real plan (the two-settlement register of ``conftest``) is planned and written once
per module; every test runs ``districting followup`` on it through the command line
with responses generated from the plan or built by hand for one scenario.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result
from conftest import small_norms, two_settlement_register

from districting.check import check_plan
from districting.cli import main
from districting.fieldops.generate import generate_records, read_plan_units, write_records
from districting.fieldops.records import household_keys
from districting.outputs.bundle import write_plan
from districting.pipeline import plan_from_file

ONLINE = ("web", "egov", "aitu")
AS_OF_DAY = "2021-09-15"


# ---------------------------------------------------------------- helpers


def run_cli(*args: str | Path) -> Result:
    """``districting -q ARGS`` in-process."""
    return CliRunner().invoke(main, ["-q", *(str(a) for a in args)])


def run_followup(plan: Path, responses: Iterable[Path], out: Path, *extra: str) -> Result:
    """``districting followup`` with English outputs; the options follow ``extra``."""
    args: list[str | Path] = ["followup", plan]
    for path in responses:
        args += ["--responses", path]
    return run_cli(*args, "--out", out, "--lang", "en", *extra)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def error_lines(result: Result) -> list[str]:
    """The lines of the command's error output that report an error."""
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def summary_of(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "summary.json").read_text(encoding="utf-8"))


def layer(folder: Path, name: str) -> gpd.GeoDataFrame:
    return gpd.read_file(folder / "plan.gpkg", layer=name, engine="pyogrio")


def texts(values: Iterable[Any]) -> list[str]:
    return [str(v) for v in values]


def one_record_per_household(units: pd.DataFrame, answered: dict[str, int], *,
                             channel: str = "web",
                             submitted_at: str = "2021-09-10T10:00:00+06:00",
                             prefix: str = "R") -> pd.DataFrame:
    """One record for each of the first ``answered[unit_id]`` households of those units."""
    building = dict(zip(texts(units["unit_id"]), texts(units["building_id"]), strict=True))
    rows = [
        {"record_id": f"{prefix}{unit}-{k}", "building_id": building[unit],
         "household_id": f"HH-{unit}-{k}", "channel": channel, "submitted_at": submitted_at}
        for unit, count in answered.items() for k in range(count)
    ]
    return pd.DataFrame(rows, columns=["record_id", "building_id", "household_id", "channel",
                                       "submitted_at"])


def planned_share_answers(units: pd.DataFrame, *, skip_id: str = "") -> dict[str, int]:
    """Households per unit answering in the planned online share (outside ``skip_id``)."""
    return {
        str(u): round(int(h) * float(s))
        for u, h, s, i in zip(units["unit_id"], units["households"], units["online_share"],
                              units["id_code"], strict=True)
        if str(i) != skip_id and round(int(h) * float(s)) > 0
    }


def files_under(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` by its relative path."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def digest(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in files_under(folder).items()}


@dataclass
class Sheet:
    """The numbered unit rows and the totals row of one CD sheet CSV."""

    rows: list[list[str]]
    total: list[str]
    unnumbered: list[list[str]]


def read_sheet(path: Path) -> Sheet:
    """Parse a CD sheet: header block, column labels (``No.``), unit rows, ``TOTAL``."""
    table = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))
    start = next(i for i, row in enumerate(table) if row and row[0] == "No.")
    end = next(i for i, row in enumerate(table) if row and row[0] == "TOTAL")
    assert start < end, path
    body = [row for row in table[start + 1:end] if row]
    numbered = [row for row in body if row[0].isdigit()]
    return Sheet(rows=numbered, total=table[end],
                 unnumbered=[row for row in body if not row[0].isdigit()])


def twelve_digit_windows(data: bytes) -> set[bytes]:
    """Every 12-digit substring of the digit runs in ``data``."""
    found: set[bytes] = set()
    for match in re.finditer(rb"\d{12,}", data):
        run = match.group()
        found.update(run[i:i + 12] for i in range(len(run) - 11))
    return found


def readable_contents(path: Path) -> list[bytes]:
    """A file's bytes, and for a zip container (xlsx) the bytes of each member too."""
    data = path.read_bytes()
    out = [data]
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            out += [archive.read(name) for name in archive.namelist()]
    return out


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def plan_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plan the pipeline made from the two-settlement register, written in English."""
    folder = tmp_path_factory.mktemp("followup-plan")
    register = folder / "register.gpkg"
    two_settlement_register().to_file(register, layer="buildings", engine="pyogrio")
    result, _ = plan_from_file(register, config=small_norms(), progress=False)
    return write_plan(result, folder / "plan", title="t", lang="en")


@pytest.fixture(scope="module")
def plan_units(plan_dir: Path) -> pd.DataFrame:
    units = read_plan_units(plan_dir)
    # The register has no split buildings: a building is one unit (tests rely on it).
    assert units["building_id"].is_unique
    return units


@pytest.fixture(scope="module")
def plan_cds(plan_dir: Path) -> gpd.GeoDataFrame:
    return layer(plan_dir, "counting_districts")


@pytest.fixture(scope="module")
def generated(plan_units: pd.DataFrame,
              tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """Synthetic Stage-2 records for the plan (with IINs, tablets, unknown buildings)."""
    records = generate_records(plan_units, seed=11).records
    path = write_records(records, tmp_path_factory.mktemp("records") / "stage2.csv")
    return path, records


@pytest.fixture(scope="module")
def generated_run(plan_dir: Path, generated: tuple[Path, pd.DataFrame],
                  tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result]:
    """The follow-up on the generated records, through the command line."""
    out = tmp_path_factory.mktemp("generated-run") / "followup"
    result = run_followup(plan_dir, [generated[0]], out)
    return out, result


# ---------------------------------------------------------------- 1. end to end


def test_followup_on_generated_records_keeps_every_invariant(
        plan_dir: Path, plan_units: pd.DataFrame, plan_cds: gpd.GeoDataFrame,
        generated: tuple[Path, pd.DataFrame], generated_run: tuple[Path, Result]) -> None:
    out, result = generated_run
    ok(result)
    assert "households still to visit" in result.output
    report = check_plan(out)
    assert report.ok, [f"{v.kind}: {v.message}" for v in report.violations]
    section = summary_of(out)["followup"]
    units = layer(out, "units")
    cds = layer(out, "counting_districts")

    # Every unit exactly once, same ids.
    assert units["unit_id"].is_unique
    assert set(texts(units["unit_id"])) == set(texts(plan_units["unit_id"]))
    assert section["units_total"] == len(plan_units) == len(units)
    old = plan_units.set_index("unit_id")
    new = units.set_index("unit_id").loc[old.index]

    # households_remaining = max(0, households - online households located to the unit),
    # counted here independently of the library: one household per (building, household).
    records = generated[1]
    online = records.loc[records["channel"].str.lower().isin(ONLINE)]
    unit_of_building = dict(zip(texts(plan_units["building_id"]), texts(plan_units["unit_id"]),
                                strict=True))
    known = online.loc[online["building_id"].isin(unit_of_building)]
    households_seen = known.drop_duplicates(["building_id", "household_id"])
    answered = (households_seen["building_id"].map(unit_of_building).value_counts()
                .reindex(old.index, fill_value=0))
    households = old["households"].astype(int)
    expected = (households - answered).clip(lower=0)
    remaining = new["households_remaining"].astype(int)
    assert (remaining.to_numpy() == expected.to_numpy()).all()
    assert (remaining <= households).all() and (remaining >= 0).all()
    assert int(remaining.sum()) == section["households"]["remaining"]
    assert section["households"]["expected"] == int(households.sum())
    assert section["households"]["responded_online"] == int(np.minimum(answered,
                                                                       households).sum())
    assert 0 < section["households"]["remaining"] < section["households"]["expected"]
    assert section["responses"]["records"] == len(records)
    assert section["responses"]["online_records"] == len(online)
    assert section["responses"]["unknown_building"] == len(online) - len(known) > 0

    # ID nesting is kept: every unit keeps its ID; every code nests in its ID.
    assert (new["id_code"].astype(str) == old["id_code"].astype(str)).all()
    assert all(str(c).startswith(f"{i}-") for c, i in zip(new["cd_code"], new["id_code"],
                                                            strict=True))
    assert all(str(c).startswith(f"{i}-") for c, i in zip(cds["cd_code"], cds["id_code"],
                                                            strict=True))
    assert set(texts(new["cd_code"])) == set(texts(cds["cd_code"]))

    # The counts of the summary agree with the layers.
    moved = int((new["cd_code"].astype(str) != old["cd_code"].astype(str)).sum())
    assert section["units_moved"] == moved
    assert section["counting_districts_before"] == len(plan_cds)
    assert section["counting_districts_after"] == len(cds)
    assert section["interviewers_released"] == (section["counting_districts_before"]
                                                - section["counting_districts_after"])
    assert set(section["released_cds"]) == set(texts(plan_cds["cd_code"])) - set(
        texts(cds["cd_code"]))
    per_cd = units.groupby("cd_code")
    sizes = per_cd.size().reindex(cds["cd_code"]).to_numpy()
    assert (cds["n_units"].to_numpy() == sizes).all()
    sums = per_cd["workload"].sum().reindex(cds["cd_code"]).to_numpy()
    assert np.allclose(cds["workload"].to_numpy(float), sums, atol=0.01)

    # A CD outside its bounds says why; one inside has no exception.
    value = cds["workload"].to_numpy(float)
    outside = (value < cds["workload_floor"].to_numpy(float) - 1e-6) | (
        value > cds["workload_ceiling"].to_numpy(float) + 1e-6)
    reason = cds["bound_exception"].fillna("").astype(str).str.strip()
    assert (reason[outside] != "").all()
    assert (reason[~outside] == "").all()
    assert section["cds_outside_bounds"] == int(outside.sum())
    above = value > cds["workload_ceiling"].to_numpy(float) + 1e-6
    assert section["cds_above_ceiling_after"] == int(above.sum())
    far_below = value < cds["workload_floor"].to_numpy(float) * (1 - section["slack"]) - 1e-6
    assert section["cds_far_below_floor_after"] == int(far_below.sum())

    # Each CD sheet lists exactly its units still to visit, numbered 1..n in route order.
    sheets = out / "sheets"
    assert {p.stem for p in sheets.glob("*.csv")} == set(texts(cds["cd_code"]))
    rows_listed = 0
    for code, members in units.groupby("cd_code"):
        sheet = read_sheet(sheets / f"{code}.csv")
        rows_listed += len(sheet.rows)
        to_visit = members.loc[members["households_remaining"] > 0]
        assert [row[0] for row in sheet.rows] == [str(n) for n in range(1, len(sheet.rows) + 1)]
        assert sheet.unnumbered == []
        listed = {row[2]: int(row[6]) for row in sheet.rows}
        assert listed == dict(zip(texts(to_visit["unit_id"]),
                                  to_visit["households_remaining"].astype(int), strict=True))
        assert sheet.total[1] == f"Address units: {len(to_visit)}"
        assert int(sheet.total[6]) == int(to_visit["households_remaining"].sum())
        order = to_visit.sort_values("visit_order")["unit_id"].astype(str).tolist()
        assert [row[2] for row in sheet.rows] == order
    assert rows_listed == int((units["households_remaining"] > 0).sum()) > 0
    assert (units["households_remaining"] == 0).any()  # some units are left off the sheets


# ---------------------------------------------------------------- 2. releasing CDs


def _target_id(plan_cds: gpd.GeoDataFrame) -> str:
    """The instructor district of the town with the most CDs (the first such)."""
    town = plan_cds.loc[plan_cds["settlement_id"].astype(str) == "431010000"]
    counts = town.groupby("id_code").size()
    return str(counts.sort_index().idxmax())


def test_an_id_whose_households_answered_online_releases_whole_cds(
        plan_dir: Path, plan_units: pd.DataFrame, plan_cds: gpd.GeoDataFrame,
        tmp_path: Path) -> None:
    target = _target_id(plan_cds)
    mine = plan_units.loc[plan_units["id_code"].astype(str) == target]
    assert mine["cd_code"].nunique() >= 3
    # Everyone of the target ID answers online but one household of its largest unit;
    # elsewhere the households answer in the planned share, so their load stays as planned.
    largest = str(mine.sort_values(["households", "unit_id"])["unit_id"].iloc[-1])
    answered = {str(u): int(h) - (str(u) == largest)
                for u, h in zip(mine["unit_id"], mine["households"], strict=True) if int(h)}
    baseline = planned_share_answers(plan_units, skip_id=target)
    responses = tmp_path / "responses.csv"
    pd.concat([one_record_per_household(plan_units, answered),
               one_record_per_household(plan_units, baseline, prefix="B")]).to_csv(
        responses, index=False)
    out = tmp_path / "released"
    ok(run_followup(plan_dir, [responses], out))
    assert check_plan(out).ok
    section = summary_of(out)["followup"]
    units = layer(out, "units")
    cds = layer(out, "counting_districts")

    old_codes = set(texts(plan_cds["cd_code"]))
    new_codes = set(texts(cds["cd_code"]))
    released = set(section["released_cds"])
    assert section["interviewers_released"] >= 1
    assert len(released) == section["interviewers_released"] == len(old_codes - new_codes)
    assert released == old_codes - new_codes
    assert released <= set(texts(mine["cd_code"]))  # only CDs of the target ID go
    assert new_codes <= old_codes  # the CDs that stay keep their codes
    assert not released & set(texts(units["cd_code"]))
    assert {p.stem for p in (out / "sheets").glob("*.csv")} == new_codes
    assert section["households"]["remaining"] == int(units["households_remaining"].sum())

    old = plan_units.set_index("unit_id")
    new = units.set_index("unit_id").loc[old.index]
    old_cd, new_cd = old["cd_code"].astype(str), new["cd_code"].astype(str)
    of_released = old_cd.isin(released)
    cd_id = dict(zip(texts(cds["cd_code"]), texts(cds["id_code"]), strict=True))
    assert (new_cd[of_released].map(cd_id) == target).all()
    assert (new["id_code"].astype(str) == old["id_code"].astype(str)).all()
    assert section["units_moved"] == int((old_cd != new_cd).sum())
    assert section["units_moved"] >= int(of_released.sum())
    ours = cds.loc[cds["id_code"].astype(str) == target]
    assert len(ours) < mine["cd_code"].nunique()

    # Moves stay inside an ID, and the other IDs rebalance exactly as they would without
    # the target ID's answers (the same responses elsewhere, the planned share in it).
    outside = old["id_code"].astype(str) != target
    base_out = tmp_path / "baseline"
    base_responses = tmp_path / "baseline.csv"
    one_record_per_household(plan_units, planned_share_answers(plan_units)).to_csv(
        base_responses, index=False)
    ok(run_followup(plan_dir, [base_responses], base_out))
    base_section = summary_of(base_out)["followup"]
    assert base_section["interviewers_released"] == 0
    base_cd = (layer(base_out, "units").set_index("unit_id").loc[old.index, "cd_code"]
               .astype(str))
    assert (new_cd[outside] == base_cd[outside]).all()
    assert base_section["units_moved"] < section["units_moved"]


# ---------------------------------------------------------------- 3. determinism


def test_the_same_inputs_give_the_same_outputs(
        plan_dir: Path, generated: tuple[Path, pd.DataFrame],
        generated_run: tuple[Path, Result], tmp_path: Path) -> None:
    first, result = generated_run
    ok(result)
    second = tmp_path / "again"
    ok(run_followup(plan_dir, [generated[0]], second))
    assert (first / "plan.gpkg").read_bytes() == (second / "plan.gpkg").read_bytes()
    sheets_a, sheets_b = files_under(first / "sheets"), files_under(second / "sheets")
    assert sheets_a.keys() == sheets_b.keys() and len(sheets_a) > 0
    assert [n for n in sheets_a if sheets_a[n] != sheets_b[n]] == []
    a, b = summary_of(first), summary_of(second)
    a.pop("runtime_seconds")
    b.pop("runtime_seconds")
    assert a == b


# ---------------------------------------------------------------- 4. --as-of


def test_as_of_counts_only_answers_up_to_that_day(
        plan_dir: Path, plan_units: pd.DataFrame, tmp_path: Path) -> None:
    big = plan_units.loc[plan_units["households"] >= 12].sort_values("unit_id")
    first, second = (str(u) for u in big["unit_id"].iloc[:2])
    early = one_record_per_household(plan_units, {first: 5},
                                     submitted_at="2021-09-10T10:00:00+06:00", prefix="E")
    # Late on the day itself (wall clock, its own offset) still counts.
    edge = one_record_per_household(plan_units, {second: 2},
                                    submitted_at="2021-09-15T23:59:59+06:00", prefix="D")
    late = one_record_per_household(plan_units, {second: 7},
                                    submitted_at="2021-09-16T00:00:01+06:00", prefix="L")
    late["household_id"] = late["household_id"] + "-late"
    broken = one_record_per_household(plan_units, {first: 1}, submitted_at="someday",
                                      prefix="X")
    broken["household_id"] = "HH-broken"
    responses = tmp_path / "responses.csv"
    pd.concat([early, edge, late, broken]).to_csv(responses, index=False)

    dated = tmp_path / "as-of"
    ok(run_followup(plan_dir, [responses], dated, "--as-of", AS_OF_DAY))
    undated = tmp_path / "all"
    ok(run_followup(plan_dir, [responses], undated))
    counts = summary_of(dated)["followup"]
    assert counts["as_of"] == AS_OF_DAY
    assert counts["responses"]["after_as_of"] == 7
    assert counts["responses"]["unreadable_time"] == 1
    assert counts["households"]["responded_online"] == 5 + 2
    every = summary_of(undated)["followup"]
    assert every["as_of"] is None
    assert "after_as_of" not in every["responses"]
    assert every["households"]["responded_online"] == 5 + 2 + 7 + 1

    h = dict(zip(texts(plan_units["unit_id"]), plan_units["households"].astype(int),
                 strict=True))
    left = layer(dated, "units").set_index("unit_id")["households_remaining"]
    assert int(left[first]) == h[first] - 5
    assert int(left[second]) == h[second] - 2
    left_all = layer(undated, "units").set_index("unit_id")["households_remaining"]
    assert int(left_all[first]) == h[first] - 6
    assert int(left_all[second]) == h[second] - 9


def one_unit_without(plan_units: pd.DataFrame, folder: Path, column: str) -> Path:
    """Responses for one household of the first inhabited unit, without ``column``."""
    unit = str(plan_units.loc[plan_units["households"] > 0, "unit_id"].iloc[0])
    responses = folder / f"no-{column}.csv"
    one_record_per_household(plan_units, {unit: 1}).drop(columns=column).to_csv(
        responses, index=False)
    return responses


def test_as_of_without_submission_times_is_a_readable_error(
        plan_dir: Path, plan_units: pd.DataFrame, tmp_path: Path) -> None:
    responses = one_unit_without(plan_units, tmp_path, "submitted_at")
    out = tmp_path / "out"
    result = run_followup(plan_dir, [responses], out, "--as-of", AS_OF_DAY)
    assert result.exit_code == 1, result.output
    errors = error_lines(result)
    assert len(errors) == 1 and "submitted_at" in errors[0], result.output
    assert "Traceback" not in result.output
    assert not out.exists()


# ---------------------------------------------------------------- 5. what does not count


def test_tablet_records_and_unknown_buildings_do_not_count(
        plan_dir: Path, plan_units: pd.DataFrame, tmp_path: Path) -> None:
    big = plan_units.loc[plan_units["households"] >= 5].sort_values("unit_id")
    mixed, tablets, over = (str(u) for u in big["unit_id"].iloc[:3])
    h = dict(zip(texts(plan_units["unit_id"]), plan_units["households"].astype(int),
                 strict=True))
    parts = [
        # Household 0 of ``mixed`` is visited by tablet, household 1 answers on the web,
        # with a second person of the household (one household still), household 2 on
        # eGov spelt in capitals.
        one_record_per_household(plan_units, {mixed: 1}, channel="tablet", prefix="T"),
        one_record_per_household(plan_units, {mixed: 2}, prefix="W").iloc[1:],
        one_record_per_household(plan_units, {mixed: 2}, prefix="P").iloc[1:],
        one_record_per_household(plan_units, {mixed: 3}, channel="EGOV", prefix="G").iloc[2:],
        one_record_per_household(plan_units, {tablets: h[tablets]}, channel="tablet",
                                 prefix="A"),
        # More households answer than the register has: the unit has none left.
        one_record_per_household(plan_units, {over: h[over] + 2}, channel="aitu", prefix="O"),
    ]
    frame = pd.concat(parts, ignore_index=True)
    nope = pd.DataFrame([
        {"record_id": "N1", "building_id": "NOPE", "household_id": "HH-N1", "channel": "web",
         "submitted_at": "2021-09-10T10:00:00+06:00"},
        {"record_id": "N2", "building_id": "NOPE", "household_id": "HH-N2",
         "channel": "tablet", "submitted_at": "2021-10-10T10:00:00+06:00"},
    ])
    frame = pd.concat([frame, nope], ignore_index=True)
    responses = tmp_path / "responses.csv"
    frame.to_csv(responses, index=False)
    out = tmp_path / "out"
    ok(run_followup(plan_dir, [responses], out))
    section = summary_of(out)["followup"]
    left = layer(out, "units").set_index("unit_id")["households_remaining"].astype(int)
    assert left[mixed] == h[mixed] - 2  # web and eGov, not the tablet visit
    assert left[tablets] == h[tablets]  # tablet visits only: everyone still to visit
    assert left[over] == 0
    others = left.drop([mixed, tablets, over])
    expected = pd.Series(h).drop([mixed, tablets, over]).reindex(others.index)
    assert (others == expected).all()

    tablet_records = 1 + h[tablets] + 1
    assert section["responses"]["records"] == len(frame)
    assert section["responses"]["online_records"] == len(frame) - tablet_records
    assert section["responses"]["unknown_building"] == 1
    assert section["responses"]["households_responded"] == 2 + h[over] + 2
    assert section["households"]["responded_online"] == 2 + h[over]
    assert section["households"]["beyond_register"] == 2
    assert section["households"]["remaining"] == int(left.sum())


# ---------------------------------------------------------------- 6. errors


def test_a_responses_file_without_channel_is_one_error_line(
        plan_dir: Path, plan_units: pd.DataFrame, tmp_path: Path) -> None:
    responses = one_unit_without(plan_units, tmp_path, "channel")
    out = tmp_path / "out"
    result = run_followup(plan_dir, [responses], out)
    assert result.exit_code == 1, result.output
    errors = error_lines(result)
    assert len(errors) == 1, result.output
    assert "no-channel.csv" in errors[0] and "channel" in errors[0].split("no-channel.csv")[1]
    assert result.stderr.strip() == errors[0]
    assert "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.parametrize("inside", ["", "sub"])
def test_the_plan_folder_is_not_an_output_folder(plan_dir: Path, plan_units: pd.DataFrame,
                                                 tmp_path: Path, inside: str) -> None:
    unit = str(plan_units.loc[plan_units["households"] > 0, "unit_id"].iloc[0])
    responses = tmp_path / "responses.csv"
    one_record_per_household(plan_units, {unit: 1}).to_csv(responses, index=False)
    before = digest(plan_dir)
    siblings = sorted(p.name for p in plan_dir.parent.iterdir())
    result = run_followup(plan_dir, [responses], plan_dir / inside if inside else plan_dir)
    assert result.exit_code == 1, result.output
    errors = error_lines(result)
    assert len(errors) == 1 and "choose a folder outside it" in errors[0], result.output
    assert "Traceback" not in result.output
    assert "CD " not in result.output  # refused before any re-planning (no CD warnings)
    assert digest(plan_dir) == before
    assert sorted(p.name for p in plan_dir.parent.iterdir()) == siblings  # no staging left


def test_a_folder_without_summary_is_not_a_plan(plan_dir: Path, plan_units: pd.DataFrame,
                                                tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(plan_dir / "plan.gpkg", bare / "plan.gpkg")
    unit = str(plan_units.loc[plan_units["households"] > 0, "unit_id"].iloc[0])
    responses = tmp_path / "responses.csv"
    one_record_per_household(plan_units, {unit: 1}).to_csv(responses, index=False)
    out = tmp_path / "out"
    result = run_followup(bare, [responses], out)
    assert result.exit_code == 1, result.output
    errors = error_lines(result)
    assert len(errors) == 1 and "summary.json" in errors[0], result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_slack_outside_its_range_is_a_usage_error(plan_dir: Path, tmp_path: Path) -> None:
    responses = tmp_path / "responses.csv"
    responses.write_text("record_id,building_id,household_id,channel\n", encoding="utf-8")
    out = tmp_path / "out"
    result = run_followup(plan_dir, [responses], out, "--slack", "1.5")
    assert result.exit_code == 2, result.output
    assert "--slack" in result.output and "1.5" in result.output
    assert not out.exists()


# ---------------------------------------------------------------- 7. no raw IIN


def test_no_raw_iin_in_any_output_file(generated: tuple[Path, pd.DataFrame],
                                       generated_run: tuple[Path, Result]) -> None:
    out, result = generated_run
    ok(result)
    records = generated[1]
    iins = {v.encode() for v in records["iin"].astype(str) if re.fullmatch(r"\d{12}", v)}
    assert len(iins) > 1000  # the responses did carry raw IINs
    # The check sees an IIN where there is one (also inside a longer digit run).
    sample = next(iter(sorted(iins)))
    assert sample in twelve_digit_windows(b"x7" + sample + b"3y")
    leaks: dict[str, int] = {}
    files = [p for p in sorted(out.rglob("*")) if p.is_file()]
    assert any(p.name == "plan.gpkg" for p in files)
    assert any(p.suffix == ".xlsx" for p in files)
    for path in files:
        for data in readable_contents(path):
            hits = twelve_digit_windows(data) & iins
            if hits:
                leaks[path.relative_to(out).as_posix()] = len(hits)
    assert leaks == {}


def test_a_household_named_once_and_unnamed_once_counts_once() -> None:
    keys = household_keys(
        np.array(["B1", "B1", "B1", "B2", "B2"], dtype=object),
        np.array(["h1", "", "", "", ""], dtype=object),
        np.array(["45", "45", "46", "", ""], dtype=object),
        np.array(["r1", "r2", "r3", "r4", "r5"], dtype=object),
    )
    assert keys[0] == keys[1]  # dwelling 45 is household h1, named or not
    assert len({keys[0], keys[2]}) == 2  # dwelling 46 is another household
    assert keys[3] != keys[4]  # no household and no dwelling: each record alone
