"""Tests of the OpenStreetMap importer (districting.io.osm)."""

from __future__ import annotations

import bz2
import functools
import gzip
import math
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from districting.errors import InputFileError
from districting.io.osm import (
    CROSSING_TOLERANCE_M,
    DEFAULT_SETTLEMENT_ID,
    DensityNorms,
    OsmRegister,
    register_from_osm,
    write_osm_register,
)
from districting.io.register import read_register
from districting.streets import read_street_graph
from districting.synth import LAYER_NAMES, read_register_metadata
from districting.validate import validate_register

# --- a small handmade OSM extract ---------------------------------------------------------
# Around 48.0°N 15.0°E: 0.0001° of latitude is about 11 m, of longitude about 7.4 m.
LAT0, LON0 = 48.0, 15.0


class _Osm:
    """Builds OSM XML: nodes, ways (closed rectangles for buildings) and relations."""

    def __init__(self) -> None:
        self.nodes: dict[int, tuple[float, float, dict[str, str]]] = {}
        self.ways: dict[int, tuple[list[int], dict[str, str]]] = {}
        self.relations: dict[int, tuple[list[tuple[str, int, str]], dict[str, str]]] = {}
        self._next = 10_000

    def node(self, lat: float, lon: float, tags: dict[str, str] | None = None,
             node_id: int | None = None) -> int:
        if node_id is None:
            self._next += 1
            node_id = self._next
        self.nodes[node_id] = (lat, lon, tags or {})
        return node_id

    def way(self, way_id: int, refs: list[int], tags: dict[str, str]) -> None:
        self.ways[way_id] = (refs, tags)

    def rect(self, way_id: int, south: float, west: float, dlat: float, dlon: float,
             tags: dict[str, str]) -> None:
        """A closed rectangular way; offsets in units of 0.0001°."""
        corners = [(south, west), (south, west + dlon), (south + dlat, west + dlon),
                   (south + dlat, west)]
        refs = [self.node(LAT0 + a * 1e-4, LON0 + b * 1e-4) for a, b in corners]
        self.way(way_id, [*refs, refs[0]], tags)

    def xml(self) -> str:
        def tags(t: dict[str, str]) -> str:
            return "".join(f'<tag k="{k}" v="{v}"/>' for k, v in t.items())

        lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">']
        for nid, (lat, lon, t) in self.nodes.items():
            lines.append(f'<node id="{nid}" lat="{lat:.7f}" lon="{lon:.7f}">{tags(t)}</node>')
        for wid, (refs, t) in self.ways.items():
            nds = "".join(f'<nd ref="{r}"/>' for r in refs)
            lines.append(f'<way id="{wid}">{nds}{tags(t)}</way>')
        for rid, (members, t) in self.relations.items():
            mem = "".join(f'<member type="{ty}" ref="{ref}" role="{role}"/>'
                          for ty, ref, role in members)
            lines.append(f'<relation id="{rid}">{mem}{tags(t)}</relation>')
        lines.append("</osm>")
        return "\n".join(lines) + "\n"


def handmade_xml() -> str:
    osm = _Osm()
    # Main Street along 48.0000 N, with the level crossing node on it
    main = [osm.node(LAT0, LON0 + d * 1e-4) for d in (-10, 0, 30)]
    crossing = osm.node(LAT0, LON0 + 55e-4, {"railway": "level_crossing"}, node_id=450)
    main += [crossing, osm.node(LAT0, LON0 + 80e-4)]
    osm.way(1, main, {"highway": "residential", "name": "Main Street"})
    # Side Street south from Main Street, then a bridge over the river, then on
    side_end = osm.node(LAT0 - 10e-4, LON0 + 30e-4)
    bridge_end = osm.node(LAT0 - 30e-4, LON0 + 30e-4)
    osm.way(2, [main[2], side_end], {"highway": "residential", "name": "Side Street"})
    osm.way(301, [side_end, bridge_end], {"highway": "residential", "bridge": "yes",
                                          "layer": "1"})
    osm.way(3, [bridge_end, osm.node(LAT0 - 40e-4, LON0 + 30e-4)],
            {"highway": "residential", "name": "South Road"})
    # the river along 47.9980 N
    osm.way(300, [osm.node(LAT0 - 20e-4, LON0 + d * 1e-4) for d in (-20, 10, 50, 90)],
            {"waterway": "river", "name": "Test River"})
    # a railway north-south at 15.0055 E through the level crossing
    osm.way(400, [osm.node(LAT0 + 40e-4, LON0 + 55e-4), crossing,
                  osm.node(LAT0 - 10e-4, LON0 + 55e-4)], {"railway": "rail"})
    # a footway tunnel under the railway at 48.0020 N
    osm.way(302, [osm.node(LAT0 + 20e-4, LON0 + 50e-4), osm.node(LAT0 + 20e-4, LON0 + 60e-4)],
            {"highway": "footway", "tunnel": "yes"})
    # a stream: not a barrier
    osm.way(303, [osm.node(LAT0 + 30e-4, LON0 - 10e-4), osm.node(LAT0 + 30e-4, LON0 + 20e-4)],
            {"waterway": "stream"})
    # buildings north of Main Street
    osm.rect(101, 2, 0, 2, 5, {"building": "apartments", "building:levels": "5",
                               "addr:street": "Main Street", "addr:housenumber": "1"})
    osm.rect(102, 2, 7, 2, 3, {"building": "yes"})
    osm.node(LAT0 + 3e-4, LON0 + 8.5e-4, {"addr:street": "Main Street",
                                          "addr:housenumber": "3"}, node_id=900)
    osm.rect(103, 2, 12, 1, 1.5, {"building": "house"})
    osm.rect(104, 6, 0, 3, 6, {"building": "school", "amenity": "school",
                               "addr:street": "School Lane", "addr:housenumber": "2"})
    osm.rect(105, 6, 8, 2, 4, {"building": "yes", "shop": "supermarket",
                               "addr:street": "Main Street", "addr:housenumber": "5"})
    osm.rect(106, 2, 15, 0.4, 0.6, {"building": "yes"})
    osm.rect(107, 6, 14, 2, 4, {"building": "apartments", "shop": "bakery",
                                "addr:street": "Main Street", "addr:housenumber": "7"})
    osm.rect(108, 10, 0, 2, 4, {"building": "dormitory", "addr:street": "School Lane",
                                "addr:housenumber": "4"})
    osm.rect(109, 10, 6, 2, 4, {"building": "yes", "addr:street": "Main Street",
                                "addr:housenumber": "9"})
    osm.node(LAT0 + 11e-4, LON0 + 8e-4, {"amenity": "post_office", "name": "Post"},
             node_id=901)
    osm.rect(110, 10, 12, 2, 4, {})
    osm.relations[200] = ([("way", 110, "outer")], {
        "type": "multipolygon", "building": "residential", "addr:street": "Main Street",
        "addr:housenumber": "11"})
    return osm.xml()


EXPECTED = {  # building_id: (kind, address_source, function)
    "osm-r200": ("residential", "tag", ""),
    "osm-w101": ("residential", "tag", ""),
    "osm-w102": ("residential", "node", ""),
    "osm-w103": ("residential", "derived", ""),
    "osm-w104": ("non_residential", "tag", "school"),
    "osm-w105": ("non_residential", "tag", "shop"),
    "osm-w106": ("non_residential", "derived", ""),
    "osm-w107": ("mixed", "tag", "shop"),
    "osm-w108": ("collective", "tag", "dormitory"),
    "osm-w109": ("mixed", "tag", "post_office"),
}


@pytest.fixture(scope="module")
def handmade_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("osm") / "handmade.osm"
    path.write_text(handmade_xml(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def handmade(handmade_path: Path) -> OsmRegister:
    return register_from_osm(handmade_path)


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


def _metric(frame: gpd.GeoDataFrame) -> gpd.GeoSeries:
    return frame.geometry.to_crs(frame.estimate_utm_crs())


def assert_crossings_on_barriers(register: OsmRegister) -> None:
    crs = register.buildings.estimate_utm_crs()
    lines = dict(zip(register.barriers["barrier_id"],
                     register.barriers.geometry.to_crs(crs), strict=True))
    points = register.crossings.geometry.to_crs(crs)
    for barrier_id, point in zip(register.crossings["barrier_id"], points, strict=True):
        assert barrier_id in lines
        assert point.distance(lines[barrier_id]) <= CROSSING_TOLERANCE_M


def assert_valid_gpkg(register: OsmRegister, path: Path) -> None:
    write_osm_register(register, path)
    problems = validate_register(read_register(path))
    errors = [str(p) for p in problems if p.severity == "error"]
    assert errors == []
    graph = read_street_graph(path)
    assert graph.number_of_nodes() == len(register.street_nodes)
    assert graph.number_of_edges() == len(register.street_edges)


# --- handmade extract ---------------------------------------------------------------------


def test_handmade_report(handmade: OsmRegister) -> None:
    r = handmade.report
    assert r["buildings_read"] == r["buildings"] == 10
    assert (r["address_tag"], r["address_node"], r["address_derived"]) == (7, 1, 2)
    assert r["address_nodes"] == 1 and r["address_nodes_matched"] == 1
    assert (r["residential"], r["mixed"], r["collective"], r["non_residential"]) == (4, 2, 1, 3)
    assert r["estimated_buildings"] == 7
    assert r["estimated_residents"] == int(handmade.buildings["residents"].sum())
    assert (r["barriers"], r["crossings"]) == (2, 3)
    assert (r["crossings_level_crossing"], r["crossings_bridge"], r["crossings_tunnel"]) == (
        1, 1, 1)
    assert r["street_edges"] == len(handmade.street_edges) > 0


def test_handmade_buildings(handmade: OsmRegister) -> None:
    b = handmade.buildings
    assert list(b["building_id"]) == sorted(EXPECTED)  # relations first, then ways by id
    assert b.crs.to_epsg() == 4326
    assert set(b.geom_type) <= {"Polygon", "MultiPolygon"}
    got = {row.building_id: (row.kind, row.address_source, row.function)
           for row in b.itertuples()}
    assert got == EXPECTED
    address = dict(zip(b["building_id"], b["address"], strict=True))
    assert address["osm-w101"] == "Main Street, 1"
    assert address["osm-w102"] == "Main Street, 3"
    assert address["osm-w103"] == "Main Street (derived)"
    assert address["osm-r200"] == "Main Street, 11"
    assert (b["settlement_id"] == DEFAULT_SETTLEMENT_ID).all()
    assert (b["settlement_name"] == "handmade").all()
    assert (b["estimated"] == "yes").all()


def test_handmade_estimates(handmade: OsmRegister) -> None:
    b = handmade.buildings.set_index("building_id")
    norms = DensityNorms()
    housing = b["kind"] != "non_residential"
    assert (b.loc[housing, "dwellings"] > 0).all() and (b.loc[housing, "residents"] > 0).all()
    assert (b.loc[~housing, ["dwellings", "residents", "households"]] == 0).all().all()
    assert not ((b["dwellings"] == 0) & (b["residents"] > 0)).any()
    for col in ("dwellings", "residents", "households", "floors", "entrances"):
        assert b[col].dtype == np.int64 and (b[col] >= 0).all()
    # apartments: footprint × tagged levels / 70 m², residents by the documented rounding
    area = _metric(handmade.buildings).area.to_numpy()[list(b.index).index("osm-w101")]
    apartments = b.loc["osm-w101"]
    assert apartments["floors"] == 5 and apartments["floors_source"] == "tag"
    assert apartments["dwellings"] == _round_half_up(area * 5 / 70.0)
    assert apartments["residents"] == _round_half_up(
        apartments["dwellings"] * norms.residents_per_dwelling * norms.occupancy)
    # a house is one dwelling; a mixed building loses its ground floor
    assert b.loc["osm-w103", "dwellings"] == 1
    assert b.loc["osm-w103", "residents"] == _round_half_up(2.7 * 0.95)
    assert b.loc["osm-w107", "floors"] == norms.default_levels["apartments"]
    area107 = _metric(handmade.buildings).area.to_numpy()[list(b.index).index("osm-w107")]
    assert b.loc["osm-w107", "dwellings"] == _round_half_up(area107 * 4 / 70.0)
    # collective quarters count every resident as a household
    assert b.loc["osm-w108", "households"] == b.loc["osm-w108", "residents"]


def test_density_norms_change_estimates(handmade_path: Path, handmade: OsmRegister) -> None:
    dense = DensityNorms(m2_per_dwelling={"apartments": 35.0, "yes": 35.0},
                         residents_per_dwelling=2.0)
    other = register_from_osm(handmade_path, density=dense, settlement_name="Town",
                              settlement_id="431010000")
    a = handmade.buildings.set_index("building_id")
    b = other.buildings.set_index("building_id")
    assert b.loc["osm-w101", "dwellings"] > a.loc["osm-w101", "dwellings"]
    assert b.loc["osm-w103", "dwellings"] == 1  # houses stay one dwelling
    assert (other.buildings["settlement_name"] == "Town").all()
    assert other.settlements["settlement_id"].tolist() == ["431010000"]
    with pytest.raises(ValueError, match="occupancy"):
        DensityNorms(occupancy=1.5)
    with pytest.raises(ValueError, match="'yes'"):
        DensityNorms(default_levels={"apartments": 5})


def test_handmade_barriers_and_crossings(handmade: OsmRegister) -> None:
    barriers = handmade.barriers
    assert sorted(zip(barriers["barrier_id"], barriers["kind"], strict=True)) == [
        ("osm-w300", "river"), ("osm-w400", "railway")]
    assert set(barriers.geom_type) == {"LineString"}
    crossings = handmade.crossings
    got = sorted(zip(crossings["crossing_id"], crossings["kind"], crossings["barrier_id"],
                     strict=True))
    assert got == [("osm-n450", "level_crossing", "osm-w400"),
                   ("osm-w301-1", "bridge", "osm-w300"),
                   ("osm-w302-1", "tunnel", "osm-w400")]
    assert_crossings_on_barriers(handmade)
    bridge = crossings.geometry[crossings["kind"] == "bridge"].iloc[0]
    assert bridge.y == pytest.approx(LAT0 - 20e-4) and bridge.x == pytest.approx(LON0 + 30e-4)


def test_handmade_settlement_and_streets(handmade: OsmRegister) -> None:
    polygon = handmade.settlements.geometry.iloc[0]
    assert handmade.settlements["settlement_name"].tolist() == ["handmade"]
    assert all(polygon.covers(g.representative_point()) for g in handmade.buildings.geometry)
    nodes, edges = handmade.street_nodes, handmade.street_edges
    assert nodes.index.name == "osmid" and list(edges.index.names) == ["u", "v", "key"]
    assert list(nodes.columns) == ["y", "x", "street_count", "settlement_id", "geometry"]
    assert list(edges.columns) == ["osmid", "name", "highway", "oneway", "reversed",
                                   "length", "settlement_id", "geometry"]
    assert "Main Street" in set(edges["name"])
    # every street is walkable both ways
    pairs = set(zip(edges.index.get_level_values("u"), edges.index.get_level_values("v"),
                    strict=True))
    assert all((v, u) in pairs for u, v in pairs)


def test_handmade_gpkg_validates(handmade: OsmRegister, tmp_path: Path) -> None:
    path = tmp_path / "osm.gpkg"
    assert_valid_gpkg(handmade, path)
    metadata = read_register_metadata(path)
    assert metadata["source"] == "handmade.osm"
    assert metadata["osm"] == "© OpenStreetMap contributors, ODbL 1.0"
    assert metadata["estimated"] == "true" and metadata["synthetic"] == "false"
    import pyogrio

    assert [str(n) for n in pyogrio.list_layers(path)[:, 0]] == list(LAYER_NAMES)


def test_deterministic(handmade_path: Path, handmade: OsmRegister, tmp_path: Path) -> None:
    again = register_from_osm(handmade_path)
    for name in LAYER_NAMES:
        pd.testing.assert_frame_equal(getattr(handmade, name), getattr(again, name))
    assert handmade.report == again.report
    a = write_osm_register(handmade, tmp_path / "a.gpkg")
    b = write_osm_register(again, tmp_path / "b.gpkg")
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("suffix", [".osm.bz2", ".osm.gz"])
def test_compressed_input(handmade: OsmRegister, tmp_path: Path, suffix: str) -> None:
    data = handmade_xml().encode()
    path = tmp_path / f"handmade{suffix}"
    path.write_bytes(bz2.compress(data) if suffix.endswith("bz2") else gzip.compress(data))
    register = register_from_osm(path)
    pd.testing.assert_frame_equal(register.buildings, handmade.buildings)
    pd.testing.assert_frame_equal(register.crossings, handmade.crossings)
    assert register.metadata["source"] == path.name


def test_pbf_input(handmade_path: Path, handmade: OsmRegister, tmp_path: Path) -> None:
    osmium = pytest.importorskip("osmium")
    pbf = tmp_path / "handmade.osm.pbf"
    with osmium.SimpleWriter(str(pbf)) as writer:
        for obj in osmium.FileProcessor(str(handmade_path)):
            writer.add(obj)
    register = register_from_osm(pbf)
    pd.testing.assert_frame_equal(register.buildings, handmade.buildings)
    assert register.report["crossings"] == handmade.report["crossings"]


def _no_buildings_xml() -> str:
    osm = _Osm()
    osm.way(1, [osm.node(LAT0, LON0), osm.node(LAT0, LON0 + 1e-3)],
            {"highway": "residential", "name": "Main Street"})
    return osm.xml()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.osm", b"", "empty"),
        ("page.osm", b"<html><body>not osm</body></html>", "not OSM XML"),
        ("garbage.osm", b"\x00\x01 this is not xml at all", "OSM XML"),
        ("truncated.osm", b'<osm version="0.6"><node id="1" lat="1" lon="1">', "OSM XML"),
        ("nothing.osm", b'<osm version="0.6"></osm>', "no nodes or ways"),
        ("roads.osm", _no_buildings_xml().encode(), "no buildings"),
        ("fake.osm.gz", b"plain text, not gzip", "not gz"),
        ("broken.osm.gz", b"\x1f\x8b\x08\x00garbage", "decompress"),
        ("empty.osm.bz2", bz2.compress(b""), "empty"),
    ],
)
def test_bad_files_raise(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputFileError, match=message) as info:
        register_from_osm(path)
    assert name in str(info.value) and "\n" not in str(info.value)


def test_missing_file_and_folder_raise(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="not found"):
        register_from_osm(tmp_path / "absent.osm")
    with pytest.raises(InputFileError, match="folder"):
        register_from_osm(tmp_path)


# --- shared real extracts -------------------------------------------------------------------


@functools.cache
def _imported(path: Path) -> tuple[OsmRegister, float]:
    started = time.monotonic()
    register = register_from_osm(path)
    return register, time.monotonic() - started


@pytest.fixture
def krems(shared_data: Path) -> tuple[OsmRegister, float]:
    return _imported(shared_data / "osm" / "krems.osm.gz")


@pytest.fixture
def moscow(shared_data: Path) -> tuple[OsmRegister, float]:
    return _imported(shared_data / "osm" / "moscow-butyrsky.osm.gz")


@pytest.mark.shared_data
def test_krems_import(krems: tuple[OsmRegister, float], tmp_path: Path) -> None:
    register, seconds = krems
    r = register.report
    assert seconds < 30
    assert r["buildings"] == 1195
    assert r["address_tag"] + r["address_node"] + r["address_derived"] == r["buildings"]
    assert r["address_tag"] >= 200 and r["address_node"] >= 30
    assert r["residential"] + r["mixed"] >= 150
    assert r["estimated_residents"] > 1000
    # the Danube, its bridges and the railways
    barriers = register.barriers
    assert (barriers["name"] == "Donau").any()
    assert {"river", "railway"} <= set(barriers["kind"])
    danube = set(barriers.loc[barriers["name"] == "Donau", "barrier_id"])
    crossings = register.crossings
    assert crossings["barrier_id"].isin(danube).any()
    assert {"level_crossing", "bridge"} <= set(crossings["kind"])
    assert_crossings_on_barriers(register)
    assert_valid_gpkg(register, tmp_path / "krems.gpkg")


@pytest.mark.shared_data
def test_moscow_import(moscow: tuple[OsmRegister, float], tmp_path: Path) -> None:
    register, seconds = moscow
    r = register.report
    b = register.buildings
    assert seconds < 30
    assert r["buildings"] == 628
    assert r["address_tag"] >= 360
    assert r["levels_tagged"] >= 100
    assert r["local_levels"] >= 3  # median of the tagged multi-dwelling buildings
    assert r["candidate_points"] >= 3
    # Russian house numbers kept as they are
    assert b["address"].str.contains(r"\d+[А-Яа-я]? ?[кс]\d", regex=True).any()
    housing = b["kind"] != "non_residential"
    assert (b.loc[housing, "residents"] > 0).all()
    assert (b.loc[~housing, "residents"] == 0).all()
    assert (register.barriers["kind"] == "railway").any()
    assert len(register.crossings) > 0
    assert_crossings_on_barriers(register)
    assert shapely.get_num_geometries(b.geometry.to_numpy()).min() >= 1
    assert_valid_gpkg(register, tmp_path / "moscow.gpkg")


def test_lone_building_has_empty_context_layers(tmp_path: Path) -> None:
    osm = _Osm()
    osm.rect(1, 0, 0, 2, 3, {"building": "house", "addr:street": "Lane",
                             "addr:housenumber": "1"})
    path = tmp_path / "lone.osm"
    path.write_text(osm.xml(), encoding="utf-8")
    register = register_from_osm(path, settlement_name="Хутор")
    assert register.report["buildings"] == 1
    assert register.buildings["address"].tolist() == ["Lane, 1"]
    assert len(register.street_nodes) == len(register.street_edges) == 0
    assert len(register.barriers) == len(register.crossings) == 0
    assert_valid_gpkg(register, tmp_path / "lone.gpkg")
    assert read_register(tmp_path / "lone.gpkg").buildings["settlement_name"].tolist() == [
        "Хутор"]


def test_an_unsafe_settlement_id_is_refused_before_import(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from districting.cli import main

    source = tmp_path / "empty.osm"
    source.write_text("<osm version='0.6'></osm>", encoding="utf-8")
    result = CliRunner().invoke(main, ["import-osm", str(source), "--out",
                                       str(tmp_path / "r.gpkg"), "--settlement-id", "../../X"])
    assert result.exit_code == 2
    assert "--settlement-id" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.osm"]
