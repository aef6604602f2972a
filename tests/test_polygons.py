"""Registers of polygons that tile the ground (blocks, parcels): rook and queen contiguity."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from click.testing import CliRunner
from conftest import ORIGIN, UTM41N

from districting.check import check_plan
from districting.cli import main
from districting.graph import polygon_contiguity


def block_register(path: Path, *, nx: int = 8, ny: int = 6) -> Path:
    """Square blocks of 100 m, each with a few dozen dwellings."""
    rng = np.random.default_rng(2)
    rows = []
    for j in range(ny):
        for i in range(nx):
            dwellings = int(rng.integers(20, 60))
            rows.append({
                "building_id": f"K{j:02d}{i:02d}", "settlement_id": "431010000",
                "settlement_name": "Город", "address": f"квартал {j * nx + i + 1}",
                "kind": "residential", "dwellings": dwellings, "residents": 2 * dwellings,
                "geometry": shapely.box(ORIGIN[0] + 100 * i, ORIGIN[1] + 100 * j,
                                        ORIGIN[0] + 100 * (i + 1), ORIGIN[1] + 100 * (j + 1)),
            })
    gpd.GeoDataFrame(rows, crs=UTM41N).to_file(path, layer="buildings", engine="pyogrio")
    return path


def test_rook_adjacency_of_a_grid_ignores_corners() -> None:
    tiles = np.array([shapely.box(i, j, i + 1, j + 1) for j in range(3) for i in range(3)],
                     dtype=object)
    rook = polygon_contiguity(tiles)
    assert len(rook) == 12  # 3×3 grid: 6 horizontal + 6 vertical neighbours, no diagonals
    assert (0, 4) not in {tuple(p) for p in rook.tolist()}


def test_a_block_register_plans_on_its_own_polygons(tmp_path: Path) -> None:
    register = block_register(tmp_path / "blocks.gpkg")
    config = tmp_path / "norms.yaml"
    config.write_text("counting: {hours_per_day: 1.0, tolerance: 0.3}\n"
                      "graph: {contiguity: rook}\n", encoding="utf-8")
    out = tmp_path / "plan"
    result = CliRunner().invoke(main, ["-q", "plan", str(register), "--config", str(config),
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = check_plan(out)
    assert report.ok, [str(v) for v in report.violations]
    cds = gpd.read_file(out / "plan.gpkg", layer="counting_districts")
    settlement = gpd.read_file(out / "plan.gpkg", layer="settlements").geometry.iloc[0]
    assert settlement.area == pytest.approx(8 * 6 * 100 * 100)
    assert cds.geometry.area.sum() == pytest.approx(settlement.area)
    # every territory is a union of whole blocks
    assert np.allclose(np.round(cds.geometry.area / 10_000), cds.geometry.area / 10_000)


def test_queen_contiguity_is_refused_with_the_reason(register_file: Path,
                                                    tmp_path: Path) -> None:
    config = tmp_path / "norms.yaml"
    config.write_text("graph: {contiguity: queen}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["-q", "plan", str(register_file), "--config", str(config),
                                       "--out", str(tmp_path / "plan")])
    assert result.exit_code == 1 and "not one polygon" in result.output


def test_rook_contiguity_refuses_a_point_register(register_file: Path, tmp_path: Path) -> None:
    config = tmp_path / "norms.yaml"
    config.write_text("graph: {contiguity: rook}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["-q", "plan", str(register_file), "--config", str(config),
                                       "--out", str(tmp_path / "plan")])
    assert result.exit_code == 1
    assert "needs polygon buildings" in result.output and "Traceback" not in result.output
