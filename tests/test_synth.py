"""Tests of the synthetic Baikonur register generator (districting.synth)."""

from __future__ import annotations

import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy.spatial import cKDTree

from districting.errors import ConfigError, InputFileError
from districting.synth import (
    BUILDING_KINDS,
    CANDIDATE_FUNCTIONS,
    LAYER_NAMES,
    SyntheticRegister,
    read_register,
    read_register_metadata,
    synthesize_baikonur,
    write_register,
)

UTM = "EPSG:32641"
CITY, TORETAM, AKAY = "431010000", "431030100", "431030200"
BUILDING_COLUMNS = [
    "building_id", "settlement_id", "settlement_name", "address", "kind", "dwellings",
    "residents", "households", "floors", "entrances", "function", "geometry",
]
INT_COLUMNS = ["dwellings", "residents", "households", "floors", "entrances"]
STR_COLUMNS = ["building_id", "settlement_id", "settlement_name", "address", "kind", "function"]


@pytest.fixture(scope="module")
def small() -> SyntheticRegister:
    return synthesize_baikonur(seed=7, scale=0.05)


@pytest.fixture(scope="module")
def full() -> SyntheticRegister:
    return synthesize_baikonur()


def assert_registers_equal(a: SyntheticRegister, b: SyntheticRegister) -> None:
    for name in LAYER_NAMES:
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert a.metadata == b.metadata


def test_same_seed_gives_identical_data_and_bytes(tmp_path: Path) -> None:
    a = synthesize_baikonur(seed=11, scale=0.05)
    b = synthesize_baikonur(seed=11, scale=0.05)
    assert_registers_equal(a, b)
    pa = write_register(a, tmp_path / "a.gpkg")
    pb = write_register(b, tmp_path / "sub" / "b.gpkg")
    assert pa.read_bytes() == pb.read_bytes()
    # rewriting over an existing file leaves no temporary file behind
    write_register(a, pa)
    assert pa.read_bytes() == pb.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gpkg", "sub"]


def test_different_seed_gives_different_data() -> None:
    a = synthesize_baikonur(seed=1, scale=0.05).buildings
    b = synthesize_baikonur(seed=2, scale=0.05).buildings
    assert not a.equals(b)
    assert not np.allclose(a.geometry.x.to_numpy()[:20], b.geometry.x.to_numpy()[:20])


def test_buildings_schema(small: SyntheticRegister) -> None:
    b = small.buildings
    assert list(b.columns) == BUILDING_COLUMNS
    assert b.crs.to_epsg() == 4326
    assert (b.geom_type == "Point").all()
    for col in INT_COLUMNS:
        assert b[col].dtype == np.int64, col
    for col in STR_COLUMNS:
        assert b[col].dtype == object, col
        assert b[col].map(type).eq(str).all(), col
    assert not b.drop(columns="geometry").isna().any().any()
    assert b["building_id"].is_unique
    assert b["building_id"].str.fullmatch(r"B\d{6}").all()
    assert set(b["kind"]) <= set(BUILDING_KINDS)
    assert set(b["settlement_id"]) == {CITY, TORETAM, AKAY}
    names = b.groupby("settlement_id")["settlement_name"].agg(set).to_dict()
    assert names == {CITY: {"Байконур"}, TORETAM: {"Торетам"}, AKAY: {"Акай"}}
    assert not b.duplicated(["settlement_id", "address"]).any()
    assert b["address"].str.fullmatch(r"(мкр\. \d+, д\. \d+)|(\S+\. .+, \d+)").all()


def test_buildings_counts_are_consistent(small: SyntheticRegister) -> None:
    b = small.buildings
    assert (b[INT_COLUMNS[:3]] >= 0).all().all()
    assert (b[["floors", "entrances"]] >= 1).all().all()
    assert not ((b["residents"] > 0) & (b["dwellings"] == 0)).any()
    dwelling = b[b["kind"].isin(["residential", "mixed"])]
    assert (dwelling["households"] <= dwelling["dwellings"]).all()
    assert (dwelling["dwellings"] > 0).all()
    assert ((dwelling["households"] > 0) == (dwelling["residents"] > 0)).all()
    collective = b[b["kind"] == "collective"]
    assert len(collective) >= 1
    assert (collective["households"] == collective["residents"]).all()
    assert (collective["dwellings"] > 0).all()
    non_res = b[b["kind"] == "non_residential"]
    assert (non_res[["dwellings", "residents", "households"]] == 0).all().all()
    assert (non_res["function"] != "").all()
    assert (b.loc[b["kind"].isin(["residential", "mixed"]), "function"] == "").all()


def test_small_scale_has_every_feature(small: SyntheticRegister) -> None:
    b = small.buildings
    candidates = b[b["function"].isin(CANDIDATE_FUNCTIONS)]
    assert candidates.groupby("settlement_id").size().reindex([CITY, TORETAM, AKAY]).ge(3).all()
    assert set(small.settlements["settlement_type"]) == {"city", "village"}
    assert sorted(small.barriers["kind"]) == ["railway", "river"]
    assert (small.crossings["kind"] == "level_crossing").sum() >= 2
    assert (small.crossings["kind"] == "bridge").sum() == 1
    assert small.metadata["synthetic"] == "true"


def test_full_scale_totals(full: SyntheticRegister) -> None:
    b = full.buildings
    residents = b.groupby("settlement_id")["residents"].sum()
    assert 75_000 <= residents.sum() <= 77_000
    assert 68_000 <= residents[CITY] <= 70_000
    assert 4_000 <= residents[TORETAM] <= 5_000
    assert 2_000 <= residents[AKAY] <= 3_000
    assert b["function"].isin(CANDIDATE_FUNCTIONS).sum() >= 10
    kinds = b.groupby("kind").size()
    assert 3 <= kinds["collective"] <= 4
    assert kinds["mixed"] > 0
    blocks = b[b["kind"].isin(["residential", "mixed"]) & (b["dwellings"] > 1)]
    occupancy = blocks["households"].sum() / blocks["dwellings"].sum()
    assert 0.90 <= occupancy <= 0.97
    assert 2.2 <= blocks["residents"].sum() / blocks["households"].sum() <= 3.2
    assert set(blocks["floors"]) == {5, 9}
    houses = b[(b["kind"] == "residential") & (b["dwellings"] == 1)]
    assert houses["residents"].between(1, 7).all()
    assert (houses["settlement_id"] == CITY).any()


def test_full_scale_is_fast() -> None:
    start = time.perf_counter()
    synthesize_baikonur(seed=3)
    assert time.perf_counter() - start < 3.0


def test_settlement_polygons(small: SyntheticRegister) -> None:
    b = small.buildings.to_crs(UTM)
    s = small.settlements.to_crs(UTM).set_index("settlement_id")
    assert (s.geom_type == "Polygon").all()
    assert (s.geometry.convex_hull.area - s.geometry.area).abs().max() < 1.0
    for sid, poly in s.geometry.items():
        mine = b[b["settlement_id"] == sid]
        assert mine.within(poly).all(), sid
        assert mine.distance(poly.exterior).min() >= 100.0, sid
    polys = list(s.geometry)
    for i in range(len(polys)):
        for j in range(i + 1, len(polys)):
            assert not polys[i].intersects(polys[j])
    centre = s.geometry.centroid
    assert 6_000 <= centre[CITY].distance(centre[TORETAM]) <= 8_000
    assert 18_000 <= centre[CITY].distance(centre[AKAY]) <= 22_000


def test_buildings_keep_clear_of_barriers_and_each_other(full: SyntheticRegister) -> None:
    b = full.buildings.to_crs(UTM)
    barriers = full.barriers.to_crs(UTM).set_index("kind")
    assert b.distance(barriers.geometry["railway"]).min() >= 30.0
    assert b.distance(barriers.geometry["river"]).min() >= 30.0
    xy = np.column_stack([b.geometry.x, b.geometry.y])
    nearest, _ = cKDTree(xy).query(xy, k=2)
    assert nearest[:, 1].min() >= 15.0


def test_barriers_and_crossings(full: SyntheticRegister) -> None:
    barriers = full.barriers.to_crs(UTM).set_index("barrier_id")
    crossings = full.crossings.to_crs(UTM)
    city = full.settlements.to_crs(UTM).set_index("settlement_id").geometry[CITY]
    river = barriers[barriers["kind"] == "river"].geometry.iloc[0]
    railway = barriers[barriers["kind"] == "railway"].geometry.iloc[0]
    assert list(full.barriers["name"]) == ["Сырдарья", "железная дорога"]
    # the river runs along the south edge of the city, the railway through its east
    assert not river.intersects(city)
    cx = full.buildings.to_crs(UTM).query("settlement_id == @CITY").geometry.x
    assert river.interpolate(river.project(city.centroid)).y < city.bounds[1]
    assert railway.intersects(city)
    assert (cx > railway.centroid.x).sum() > 0.03 * len(cx)
    for _, row in crossings.iterrows():
        assert barriers.geometry[row["barrier_id"]].distance(row.geometry) < 0.01
    level = crossings[crossings["kind"] == "level_crossing"]
    assert len(level) >= 2
    assert level.within(city.buffer(1.0)).all()
    assert (barriers.loc[level["barrier_id"], "kind"] == "railway").all()
    bridge = crossings[crossings["kind"] == "bridge"]
    assert len(bridge) == 1
    assert barriers.loc[bridge["barrier_id"].iloc[0], "kind"] == "river"


def test_metadata_round_trip(tmp_path: Path, small: SyntheticRegister) -> None:
    path = write_register(small, tmp_path / "register.gpkg")
    meta = read_register_metadata(path)
    assert meta["synthetic"] == "true"
    assert meta["generator"] == "districting.synth"
    assert meta["seed"] == "7"
    assert "synthetic" in meta["description"].lower()
    assert "not real census data" in meta["description"]
    assert meta == small.metadata
    # reading does not leave GDAL sidecar files behind
    assert [p.name for p in tmp_path.iterdir()] == ["register.gpkg"]


def test_register_round_trip(tmp_path: Path, small: SyntheticRegister) -> None:
    back = read_register(write_register(small, tmp_path / "r.gpkg"))
    assert back.metadata == small.metadata
    for name in LAYER_NAMES:
        ours, theirs = getattr(small, name), getattr(back, name)
        assert list(theirs.columns) == list(ours.columns), name
        assert list(theirs.index.names) == list(ours.index.names), name
        assert len(theirs) == len(ours), name
        assert shapely.equals_exact(theirs.geometry.values, ours.geometry.values, 1e-12).all()
        assert list(theirs.index) == list(ours.index), name
    pd.testing.assert_series_equal(
        back.buildings["residents"], small.buildings["residents"], check_names=True
    )
    assert list(back.buildings["address"]) == list(small.buildings["address"])


def test_read_metadata_errors(tmp_path: Path) -> None:
    with pytest.raises(InputFileError):
        read_register_metadata(tmp_path / "missing.gpkg")
    other = tmp_path / "other.gpkg"
    gpd.GeoDataFrame({"a": [1]}, geometry=gpd.points_from_xy([0], [0]), crs=4326).to_file(
        other, layer="something"
    )
    with pytest.raises(InputFileError):
        read_register_metadata(other)


@pytest.mark.parametrize("scale", [0, -1.0, float("nan"), 100.0])
def test_bad_scale(scale: float) -> None:
    with pytest.raises(ConfigError):
        synthesize_baikonur(scale=scale)


def test_write_restores_gdal_date_option(tmp_path: Path, small: SyntheticRegister) -> None:
    import pyogrio

    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "2000-01-01T00:00:00.000Z"})
    try:
        write_register(small, tmp_path / "r.gpkg")
        assert pyogrio.get_gdal_config_option("OGR_CURRENT_DATE") == "2000-01-01T00:00:00.000Z"
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})
    write_register(small, tmp_path / "r.gpkg")
    assert pyogrio.get_gdal_config_option("OGR_CURRENT_DATE") is None
