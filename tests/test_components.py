"""Parts of a settlement cut off by a barrier: reported, and planned by the chosen policy."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner
from conftest import ORIGIN, UTM41N, grid_buildings

from districting.check import check_plan
from districting.cli import main


def river_register(path: Path, *, far_bank: str) -> Path:
    """A town of 12×8 buildings and, across a river with no bridge, either a hamlet of
    6 cottages (too small for a CD) or a quarter of 8×4 buildings (several CDs)."""
    town = grid_buildings(settlement_id="431030100", name="Село", nx=12, ny=8, seed=3)
    if far_bank == "hamlet":
        other = grid_buildings(settlement_id="431030100", name="Село", nx=3, ny=2, seed=4,
                               origin=(ORIGIN[0] + 200, ORIGIN[1] - 400), prefix="H")
        other[["kind", "dwellings", "residents", "function"]] = ["residential", 1, 3, ""]
    else:
        other = grid_buildings(settlement_id="431030100", name="Село", nx=8, ny=4, seed=4,
                               origin=(ORIGIN[0] + 100, ORIGIN[1] - 500), prefix="H")
    buildings = gpd.GeoDataFrame(pd.concat([town, other], ignore_index=True), crs=UTM41N)
    river_y = ORIGIN[1] - 200 if far_bank == "hamlet" else ORIGIN[1] - 150
    river = gpd.GeoDataFrame({"barrier_id": ["r1"], "kind": ["river"], "name": ["Река"]},
                             geometry=[shapely.LineString([(ORIGIN[0] - 500, river_y),
                                                           (ORIGIN[0] + 1500, river_y)])],
                             crs=UTM41N)
    buildings.to_file(path, layer="buildings", engine="pyogrio")
    river.to_file(path, layer="barriers", engine="pyogrio")
    return path


def plan(tmp_path: Path, *, far_bank: str, policy: str) -> Path:
    register = river_register(tmp_path / "register.gpkg", far_bank=far_bank)
    config = tmp_path / "norms.yaml"
    config.write_text(
        f"counting: {{hours_per_day: 0.5, tolerance: 0.3}}\ngraph: {{components: {policy}}}\n",
        encoding="utf-8",
    )
    out = tmp_path / "plan"
    result = CliRunner().invoke(main, ["-q", "plan", str(register), "--config", str(config),
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert check_plan(out).ok
    return out


def cds_of(out: Path) -> tuple[set[str], set[str], gpd.GeoDataFrame]:
    units = gpd.read_file(out / "plan.gpkg", layer="units")
    far = units["unit_id"].str.startswith("H")
    edges = gpd.read_file(out / "plan.gpkg", layer="unit_adjacency")
    cd_of = dict(zip(units["unit_id"], units["cd_code"], strict=True))
    edges["inside"] = [cd_of[u] == cd_of[v] for u, v in zip(edges["u"], edges["v"], strict=True)]
    return set(units.loc[far, "cd_code"]), set(units.loc[~far, "cd_code"]), edges


@pytest.mark.parametrize(("far_bank", "policy"), [
    ("quarter", "separate"), ("hamlet", "separate"), ("quarter", "bridge"),
])
def test_a_part_across_a_river_is_reported_and_planned_by_policy(
    tmp_path: Path, far_bank: str, policy: str
) -> None:
    out = plan(tmp_path, far_bank=far_bank, policy=policy)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    parts = summary["settlements"][0]["parts_bridged"]
    assert len(parts) == 1 and parts[0]["units"] == (6 if far_bank == "hamlet" else 32)
    assert any("cut off by a barrier" in w for w in summary["warnings"])
    far_cds, town_cds, edges = cds_of(out)
    assert (edges["kind"] == "bridged").sum() == 1
    if policy == "separate" and far_bank == "quarter":
        assert far_cds.isdisjoint(town_cds)  # no CD crosses the river
        assert edges.loc[edges["inside"], "kind"].eq("adjacent").all()
        assert "gets its own CDs" in parts[0]["action"]
    if policy == "separate" and far_bank == "hamlet":
        assert far_cds <= town_cds  # six cottages share a CD across the river
        assert "shares a CD across the barrier" in parts[0]["action"]
