"""Planning units: one per building, and oversized buildings split by dwelling ranges."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import UTM41N, grid_buildings

from districting.check import check_plan
from districting.cli import main
from districting.config import config_from_dict
from districting.io.register import RawRegister
from districting.units import units_from_register

NORMS = {"counting": {"hours_per_day": 1.0, "tolerance": 0.3}}  # target 1,800 min


def register_with_big_block() -> gpd.GeoDataFrame:
    """A grid village plus one 160-flat block with 400 residents.

    Its 149 households (400 / 2.7) need 149 × 0.7 × 22 × 1.15 + 5 ≈ 2,644 min, above the
    ceiling of 1,800 × 1.3 = 2,340 min, so it is split in ceil(2,644 / 1,800) = 2.
    """
    frame = grid_buildings(settlement_id="431030100", name="Село", nx=12, ny=10, seed=4)
    frame.loc[55, ["kind", "dwellings", "residents", "function"]] = ["residential", 160, 400, ""]
    return frame


def test_a_400_resident_block_becomes_sub_units_with_dwelling_ranges() -> None:
    config = config_from_dict(NORMS)
    raw = RawRegister(buildings=register_with_big_block(), source=Path("r.gpkg"))
    units = units_from_register(raw, config=config)
    block = units[units["building_id"] == "B00055"]
    assert block["unit_id"].tolist() == ["B00055/1", "B00055/2"]
    assert block["dwellings"].sum() == 160 and block["residents"].sum() == 400
    assert block["households"].sum() == 149
    assert block["dwelling_from"].tolist() == [1, 81]
    assert block["dwelling_to"].tolist() == [80, 160]
    assert (block["workload"] <= 1800 * 1.3).all()
    whole = units[units["building_id"] != "B00055"]
    assert (whole["unit_id"] == whole["building_id"]).all()
    assert (whole["dwelling_from"] == 0).all()


def test_a_plan_with_a_split_block_checks_out_and_sheets_show_the_ranges(
    tmp_path: Path,
) -> None:
    register = tmp_path / "register.gpkg"
    register_with_big_block().to_crs("EPSG:4326").to_file(register, layer="buildings",
                                                           engine="pyogrio")
    config = tmp_path / "norms.yaml"
    config.write_text("counting: {hours_per_day: 1.0, tolerance: 0.3}\n", encoding="utf-8")
    out = tmp_path / "plan"
    result = CliRunner().invoke(main, ["-q", "plan", str(register), "--config", str(config),
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert check_plan(out).ok
    units = gpd.read_file(out / "plan.gpkg", layer="units")
    parts = units[units["building_id"] == "B00055"]
    assert len(parts) == 2 and parts["dwelling_to"].max() == 160
    edges = gpd.read_file(out / "plan.gpkg", layer="unit_adjacency")
    ids = set(parts["unit_id"])
    inner = edges[edges["u"].isin(ids) & edges["v"].isin(ids)]
    assert len(inner) == 1  # the two halves of the building touch each other
    cds = gpd.read_file(out / "plan.gpkg", layer="counting_districts")
    assert (cds["bound_exception"].fillna("") == "").all()
    text = "".join(p.read_text(encoding="utf-8-sig") for p in (out / "sheets").glob("*.csv"))
    assert "1–80" in text and "81–160" in text
    assert units.crs == UTM41N


@pytest.mark.parametrize("dwellings", [1])
def test_a_heavy_building_with_one_dwelling_is_kept_whole(dwellings: int) -> None:
    frame = register_with_big_block()
    frame.loc[55, ["kind", "dwellings", "residents"]] = ["collective", dwellings, 400]
    raw = RawRegister(buildings=frame, source=Path("r.gpkg"))
    units = units_from_register(raw, config=config_from_dict(NORMS))
    assert (units["building_id"] == "B00055").sum() == 1
    assert np.isclose(units.loc[units["building_id"] == "B00055", "workload"].iloc[0],
                      400 * 0.7 * 22 * 1.15 + 5)


def test_two_buildings_at_one_point_plan_and_check_out(tmp_path: Path) -> None:
    frame = grid_buildings(settlement_id="431030100", name="Село", nx=6, ny=5, seed=9)
    frame.loc[[7, 8], ["kind", "dwellings", "residents"]] = ["residential", 120, 300]
    frame.loc[8, "geometry"] = frame.loc[7, "geometry"]  # geocoded to the same point
    register = tmp_path / "register.gpkg"
    frame.to_file(register, layer="buildings", engine="pyogrio")
    out = tmp_path / "plan"
    result = CliRunner().invoke(main, ["-q", "plan", str(register), "--config",
                                       str(_norms(tmp_path)), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert check_plan(out).ok


def _norms(tmp_path: Path) -> Path:
    path = tmp_path / "norms.yaml"
    path.write_text("counting: {hours_per_day: 1.0, tolerance: 0.3}\n", encoding="utf-8")
    return path
