"""End to end: the CLI plans a register, writes the output contract, and the plan checks out."""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner
from plan_fixtures import grid_plan

from districting import pipeline
from districting.check import check_plan
from districting.cli import main
from districting.config import load_config
from districting.io.register import RawRegister
from districting.layers import PlanLayers
from districting.outputs import writer
from districting.outputs.writer import write_geopackage
from districting.pipeline import plan_from_file

SMALL_CONFIG = """
name: test
seed: 7
counting: {hours_per_day: 1.0, tolerance: 0.3}
registration: {residents_per_point: 3000}
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "norms.yaml"
    path.write_text(SMALL_CONFIG, encoding="utf-8")
    return path


def run(*args: str) -> str:
    result = CliRunner().invoke(main, ["-q", *args])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result.output


def layer(plan: Path, name: str) -> gpd.GeoDataFrame:
    return gpd.read_file(plan / "plan.gpkg", layer=name, engine="pyogrio")


def test_plan_writes_the_output_contract_and_it_checks_out(
    register_file: Path, config_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "plan"
    run("plan", str(register_file), "--config", str(config_file), "--out", str(out))
    for name in ("plan.gpkg", "summary.json", "map.html", "staffing.csv"):
        assert (out / name).is_file(), name
    units = layer(out, "units")
    cds = layer(out, "counting_districts")
    ids = layer(out, "instructor_districts")
    # every unit exactly once, in a CD that exists
    assert units["unit_id"].is_unique and len(units) == 348
    assert set(units["cd_code"]) == set(cds["cd_code"])
    # nesting: CD code inside its ID code inside its settlement
    assert all(cd.startswith(idc + "-") for cd, idc in zip(cds["cd_code"], cds["id_code"],
                                                           strict=True))
    assert all(idc.startswith(s + "-") for idc, s in zip(ids["id_code"], ids["settlement_id"],
                                                         strict=True))
    # bounds hold, or the CD says why not
    inside = cds["workload"].between(cds["workload_floor"], cds["workload_ceiling"])
    assert (inside | (cds["bound_exception"].fillna("") != "")).all()
    # walking: units carry their walk in the workload; CDs report their walking tour
    assert (units["walk_min"] >= 0).all() and units["walk_min"].sum() > 0
    assert (cds.loc[cds["n_units"] > 1, "tour_m"] > 0).all()
    assert cds["walk_min"].sum() == pytest.approx(units["walk_min"].sum(), rel=1e-6)
    # ... and a CD's walking minutes are its tour at 4.5 km/h, over the round and callbacks
    tour_minutes = cds["tour_m"] / (4500 / 60) * 1.15
    assert (cds["walk_min"] - tour_minutes).abs().max() <= 1e-3 * cds["n_units"].max() + 0.1
    # one sheet per CD and the sheets list every unit once
    sheets = sorted((out / "sheets").glob("*.csv"))
    assert len(sheets) == len(cds)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["counts"]["counting_districts"] == len(cds)
    assert summary["counts"]["units"] == len(units)
    assert summary["residents"] == int(units["residents"].sum())
    staffing = pd.read_csv(out / "staffing.csv")
    total = staffing[staffing["settlement_id"] == "TOTAL"].iloc[0]
    assert total["interviewers"] == len(cds) and total["instructor_controllers"] == len(ids)
    # each adjacency edge is written as the line from its first unit's point to its second's
    edges = layer(out, "unit_adjacency")
    points = units.set_index("unit_id").geometry
    ends = np.stack([shapely.get_coordinates(points.loc[edges[end]].to_numpy())
                     for end in ("u", "v")], axis=1)
    assert len(edges) > len(units)
    assert np.array_equal(shapely.get_coordinates(edges.geometry.to_numpy()).reshape(-1, 2, 2),
                          ends)
    report = check_plan(out)
    assert report.ok, [str(v) for v in report.violations]
    assert "OK" in run("check", str(out))


def test_edge_lines_are_drawn_chunk_by_chunk_when_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layers = grid_plan(rows=6, cols=6)
    edges = gpd.GeoDataFrame(layers["unit_adjacency"].drop(columns="geometry"))
    without = PlanLayers(**{**layers, "unit_adjacency": edges})
    write_geopackage(PlanLayers(**layers), tmp_path / "lines.gpkg")
    write_geopackage(without, tmp_path / "one-chunk.gpkg")
    # one chunk: the very file the lines give
    assert (tmp_path / "lines.gpkg").read_bytes() == (tmp_path / "one-chunk.gpkg").read_bytes()
    monkeypatch.setattr(writer, "EDGE_CHUNK", 7)  # 60 edges: nine chunks, the last short
    write_geopackage(without, tmp_path / "a.gpkg")
    write_geopackage(without, tmp_path / "b.gpkg")
    assert (tmp_path / "a.gpkg").read_bytes() == (tmp_path / "b.gpkg").read_bytes()
    drawn = gpd.read_file(tmp_path / "a.gpkg", layer="unit_adjacency", engine="pyogrio")
    assert drawn.drop(columns="geometry").equals(edges.reset_index(drop=True))
    assert drawn.geometry.geom_equals_exact(layers["unit_adjacency"].geometry, 0).all()


def test_ctrl_c_while_the_edge_lines_are_written_stays_an_interruption(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Arrow turns whatever stops the batches into a RuntimeError; the command must still
    see the Ctrl-C (and say "interrupted"), not an internal error."""
    layers = grid_plan(rows=4, cols=4)
    without = PlanLayers(**{**layers, "unit_adjacency": gpd.GeoDataFrame(
        layers["unit_adjacency"].drop(columns="geometry"))})

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(writer.shapely, "linestrings", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_geopackage(without, tmp_path / "plan.gpkg")


def test_same_input_and_seed_give_byte_identical_plans(
    register_file: Path, config_file: Path, tmp_path: Path
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        run("plan", str(register_file), "--config", str(config_file), "--out", str(out))
    assert (first / "plan.gpkg").read_bytes() == (second / "plan.gpkg").read_bytes()
    for name in ("units", "counting_districts", "instructor_districts"):
        pd.testing.assert_frame_equal(layer(first, name), layer(second, name))
    assert (first / "map.html").read_bytes() == (second / "map.html").read_bytes()


def test_a_failed_write_leaves_the_previous_plan_untouched(
    register_file: Path, config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "plan"
    run("plan", str(register_file), "--config", str(config_file), "--out", str(out))
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def broken_map(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("districting.outputs.bundle.write_map", broken_map)
    result = CliRunner().invoke(main, ["-q", "plan", str(register_file), "--config",
                                       str(config_file), "--out", str(out), "--seed", "7"])
    assert result.exit_code != 0
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    # no staging folder is left; the settlements' checkpoints stay for --resume
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".plan")] == \
        [".plan.checkpoints"]
    assert len(list((tmp_path / ".plan.checkpoints").glob("*.pkl"))) == 2


def test_synthetic_register_is_reproducible_and_plans_cleanly(tmp_path: Path) -> None:
    first, second = tmp_path / "one.gpkg", tmp_path / "two.gpkg"
    for path in (first, second):
        run("synth", "--out", str(path), "--seed", "5", "--scale", "0.05")
    assert first.read_bytes() == second.read_bytes()
    out = tmp_path / "plan"
    config = Path(__file__).resolve().parents[1] / "configs" / "baikonur-2021.yaml"
    run("plan", str(first), "--config", str(config), "--out", str(out))
    assert check_plan(out).ok


@pytest.mark.slow
def test_demo_reproduces_the_seed_staffing(tmp_path: Path) -> None:
    out = tmp_path / "baikonur-2021"
    run("demo", "--out", str(out))
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    counts = summary["counts"]
    assert 152 <= counts["counting_districts"] <= 186      # 169 ± 10%
    assert 23 <= counts["instructor_districts"] <= 29      # 26 ± 3
    assert 75_000 <= summary["residents"] <= 77_000
    assert (out / "register.gpkg").is_file()
    report = check_plan(out)
    assert report.ok, [str(v) for v in report.violations]
    # The field organisation of issue 6: spans, balance, points and the staffing plan.
    spans = summary["instructor_spans"]["distribution"]
    assert all(5 <= int(span) <= 8 for span in spans)
    assert sum(spans.values()) == counts["instructor_districts"]
    assert summary["utilization"]["share_within_bounds"] == 1.0
    assert 0 < summary["registration_walk"]["mean_m"] <= summary["registration_walk"]["max_m"]
    staff = summary["staffing"]
    assert staff["interviewers"] == counts["counting_districts"]
    assert staff["instructor_controllers"] == counts["instructor_districts"]
    assert staff["vs_seed"]["interviewers"] == counts["counting_districts"] - 169
    table = pd.read_csv(out / "staffing.csv", dtype={"settlement_id": str})
    assert table.iloc[-1]["settlement_id"] == "TOTAL"
    assert int(table.iloc[-1]["interviewers"]) == counts["counting_districts"]
    assert (out / "staffing.xlsx").is_file()
    ids = layer(out, "instructor_districts")
    for code, group in ids.groupby("settlement_id"):
        mean = group["workload"].mean()
        assert ((group["workload"] - mean).abs() <= 0.15 * mean + 1e-6).all(), code


def test_an_internal_error_is_one_message_not_a_traceback(
    register_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr("districting.pipeline.plan_register", broken)
    result = CliRunner().invoke(main, ["-q", "plan", str(register_file), "--out",
                                       str(tmp_path / "plan")])
    assert result.exit_code == 3
    assert "internal error: ZeroDivisionError: boom" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "plan").exists()


@pytest.mark.parametrize("where", ["inputs inside", "not a plan", "working directory"])
def test_an_output_folder_that_would_lose_files_is_refused(
    register_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    register = folder / "register.gpkg"
    register.write_bytes(register_file.read_bytes())
    if where == "not a plan":
        (folder / "notes.txt").write_text("keep me", encoding="utf-8")
        register = register_file
    if where == "working directory":
        monkeypatch.chdir(folder)
        register = register_file
    result = CliRunner().invoke(main, ["-q", "plan", str(register), "--out", str(folder)])
    assert result.exit_code == 1, result.output
    assert "error:" in result.output and "Traceback" not in result.output
    assert (folder / "register.gpkg").is_file()
    if where == "not a plan":
        assert (folder / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_a_large_plan_logs_its_first_warnings_and_counts_the_rest(
        caplog: pytest.LogCaptureFixture) -> None:
    from districting.pipeline import LOGGED_WARNINGS, log_warnings

    lines = [f"CD {i}: below the floor" for i in range(LOGGED_WARNINGS + 12)]
    with caplog.at_level("WARNING", logger="districting.pipeline"):
        log_warnings(lines)
    messages = [record.getMessage() for record in caplog.records]
    assert messages[:LOGGED_WARNINGS] == lines[:LOGGED_WARNINGS]
    assert messages[LOGGED_WARNINGS:] == [
        f"… and 12 more warning(s); summary.json lists all {LOGGED_WARNINGS + 12}"]
    caplog.clear()
    with caplog.at_level("WARNING", logger="districting.pipeline"):
        log_warnings(lines[:3])
    assert [record.getMessage() for record in caplog.records] == lines[:3]


def test_the_register_is_let_go_before_the_settlements_are_planned(
    register_file: Path, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A national register holds gigabytes that no stage after the units needs.
    read, run = pipeline.read_register, pipeline.run_settlements
    registers: list[weakref.ref[RawRegister]] = []
    alive_when_planning: list[bool] = []

    def reading(*args: Any, **kwargs: Any) -> RawRegister:
        raw = read(*args, **kwargs)
        registers.append(weakref.ref(raw))
        return raw

    def planning(*args: Any, **kwargs: Any) -> Any:
        gc.collect()
        alive_when_planning.append(registers[0]() is not None)
        return run(*args, **kwargs)

    monkeypatch.setattr(pipeline, "read_register", reading)
    monkeypatch.setattr(pipeline, "run_settlements", planning)
    result, _ = plan_from_file(register_file, config=load_config(config_file), progress=False)
    assert alive_when_planning == [False]
    assert len(result.layers.units) == 348


@pytest.mark.parametrize("seed", ["-1", "4294967296"])
def test_a_seed_numpy_cannot_take_is_a_usage_error(register_file: Path, tmp_path: Path,
                                                    seed: str) -> None:
    result = CliRunner().invoke(main, ["-q", "plan", str(register_file), "--out",
                                       str(tmp_path / "plan"), "--seed", seed])
    assert result.exit_code == 2 and "--seed" in result.output
