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


def island_register(path: Path) -> Path:
    """A town of 12×8 buildings, and across a river with no bridge a hamlet of 6 cottages."""
    town = grid_buildings(settlement_id="431030100", name="Село", nx=12, ny=8, seed=3)
    hamlet = grid_buildings(settlement_id="431030100", name="Село", nx=3, ny=2, seed=4,
                            origin=(ORIGIN[0] + 200, ORIGIN[1] - 400), prefix="H")
    hamlet[["kind", "dwellings", "residents", "function"]] = ["residential", 1, 3, ""]
    buildings = gpd.GeoDataFrame(pd.concat([town, hamlet], ignore_index=True), crs=UTM41N)
    buildings["function"] = ""
    river_y = ORIGIN[1] - 200
    river = gpd.GeoDataFrame({"barrier_id": ["r1"], "kind": ["river"], "name": ["Река"]},
                             geometry=[shapely.LineString([(ORIGIN[0] - 500, river_y),
                                                           (ORIGIN[0] + 1500, river_y)])],
                             crs=UTM41N)
    buildings.to_file(path, layer="buildings", engine="pyogrio")
    river.to_file(path, layer="barriers", engine="pyogrio")
    return path


@pytest.mark.parametrize("policy", ["separate", "bridge"])
def test_a_hamlet_across_a_river_is_reported_and_planned_by_policy(
    tmp_path: Path, policy: str
) -> None:
    register = island_register(tmp_path / "register.gpkg")
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
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    parts = summary["settlements"][0]["parts_bridged"]
    assert len(parts) == 1 and parts[0]["size"] == 6
    assert any("cut off by a barrier" in w for w in summary["warnings"])
    units = gpd.read_file(out / "plan.gpkg", layer="units")
    edges = gpd.read_file(out / "plan.gpkg", layer="unit_adjacency")
    assert (edges["kind"] == "bridged").sum() == 1
    hamlet_cds = set(units.loc[units["unit_id"].str.startswith("H"), "cd_code"])
    town_cds = set(units.loc[~units["unit_id"].str.startswith("H"), "cd_code"])
    if policy == "separate":
        assert hamlet_cds.isdisjoint(town_cds)  # no CD crosses the river
        cds = gpd.read_file(out / "plan.gpkg", layer="counting_districts")
        reason = cds.loc[cds["cd_code"].isin(hamlet_cds), "bound_exception"].iloc[0]
        assert "cut off by barriers" in reason
    cd_of = dict(zip(units["unit_id"], units["cd_code"], strict=True))
    inside = edges[[cd_of[u] == cd_of[v] for u, v in zip(edges["u"], edges["v"], strict=True)]]
    if policy == "separate":
        assert (inside["kind"] == "adjacent").all()
