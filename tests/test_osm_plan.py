"""Real OSM extracts (../shared/data/osm): import → plan → check, and barriers respected.

Skipped when the shared data folder is absent.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from click.testing import CliRunner

from districting.check import check_plan
from districting.cli import main

RADIUS_M = 120.0  # graph.crossing_radius_m of the default config


@pytest.fixture(scope="module", params=["krems", "moscow-butyrsky"])
def osm_plan(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    source = Path(__file__).resolve().parents[2] / "shared" / "data" / "osm"
    if not source.exists():
        pytest.skip("../shared/data is not present")
    folder = tmp_path_factory.mktemp(request.param)
    register = folder / "register.gpkg"
    runner = CliRunner()
    result = runner.invoke(main, ["-q", "import-osm", str(source / f"{request.param}.osm.gz"),
                                  "--out", str(register), "--settlement-name", request.param])
    assert result.exit_code == 0, result.output
    out = folder / "plan"
    result = runner.invoke(main, ["-q", "plan", str(register), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return request.param, register, out


def test_imported_register_plans_and_checks_out(osm_plan) -> None:
    _, _, out = osm_plan
    report = check_plan(out)
    assert report.ok, [str(v) for v in report.violations]
    cds = gpd.read_file(out / "plan.gpkg", layer="counting_districts")
    assert len(cds) >= 5
    assert (shapely.get_num_geometries(cds.geometry.to_numpy()) == 1).all()


def test_no_plain_edge_crosses_a_barrier_away_from_a_crossing(osm_plan) -> None:
    name, register, out = osm_plan
    edges = gpd.read_file(out / "plan.gpkg", layer="unit_adjacency")
    units = gpd.read_file(out / "plan.gpkg", layer="units")
    barriers = gpd.read_file(register, layer="barriers").to_crs(edges.crs)
    crossings = gpd.read_file(register, layer="crossings").to_crs(edges.crs)
    if name == "krems":
        assert barriers["name"].fillna("").str.contains("Donau").any()
        assert (barriers["kind"] == "railway").any()
    lines = barriers.geometry.to_numpy()
    lines = np.where(np.isin(shapely.get_type_id(lines), (3, 6)), shapely.boundary(lines), lines)
    tree = shapely.STRtree(lines)
    seg, bar = tree.query(edges.geometry.to_numpy(), predicate="intersects")
    hits = shapely.intersection(edges.geometry.to_numpy()[seg], lines[bar])
    near = shapely.distance(hits, crossings.geometry.union_all()) <= RADIUS_M
    away = np.unique(seg[~near])
    assert len(np.unique(seg[near])) > 0  # some edges do cross, at bridges or level crossings
    kinds = edges["kind"].to_numpy()[away]
    assert (kinds == "bridged").all(), "an unflagged edge crosses a barrier away from a crossing"
    # A flagged edge inside a CD only ever joins a part too small to fill a CD.
    cd_of = dict(zip(units["unit_id"], units["cd_code"], strict=True))
    inside = [i for i in away if cd_of[edges["u"].iloc[i]] == cd_of[edges["v"].iloc[i]]]
    summary = (out / "summary.json").read_text(encoding="utf-8")
    assert not inside or "shares a CD across the barrier" in summary
