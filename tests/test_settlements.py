"""Settlement territories: derived hulls that overlap, and given polygons with empty parts."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely
from click.testing import CliRunner
from conftest import ORIGIN, UTM41N, grid_buildings

from districting.check import check_plan
from districting.cli import main


def plan(tmp_path: Path, buildings: gpd.GeoDataFrame,
         settlements: gpd.GeoDataFrame | None = None) -> tuple[int, str, Path]:
    register = tmp_path / "register.gpkg"
    buildings.to_file(register, layer="buildings", engine="pyogrio")
    if settlements is not None:
        settlements.to_file(register, layer="settlements", engine="pyogrio")
    config = tmp_path / "norms.yaml"
    config.write_text("counting: {hours_per_day: 1.0, tolerance: 0.3}\n", encoding="utf-8")
    out = tmp_path / "plan"
    result = CliRunner().invoke(main, ["-q", "plan", str(register), "--config", str(config),
                                       "--out", str(out)])
    return result.exit_code, result.output, out


def test_a_settlement_inside_another_ones_hull_is_planned(tmp_path: Path) -> None:
    town = grid_buildings(settlement_id="431010000", name="Город", nx=10, ny=8, seed=5)
    town.loc[[33, 34, 43, 44], ["settlement_id", "settlement_name"]] = ["431099999", "Анклав"]
    code, output, out = plan(tmp_path, town)
    assert code == 0, output
    report = check_plan(out)
    assert report.ok, [str(v) for v in report.violations]


def test_an_uninhabited_part_of_a_given_polygon_is_left_out_and_said(tmp_path: Path) -> None:
    town = grid_buildings(settlement_id="431010000", name="Город", nx=6, ny=5, seed=6)
    box = shapely.box(*town.total_bounds).buffer(100)
    island = shapely.box(ORIGIN[0] + 2000, ORIGIN[1], ORIGIN[0] + 2200, ORIGIN[1] + 200)
    settlements = gpd.GeoDataFrame({"settlement_id": ["431010000"]},
                                   geometry=[shapely.MultiPolygon([box, island])], crs=UTM41N)
    code, output, out = plan(tmp_path, town, settlements)
    assert code == 0, output
    assert check_plan(out).ok
    summary = pd.read_json(out / "summary.json", typ="series")
    assert any("holds no building" in w for w in summary["warnings"])
