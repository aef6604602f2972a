"""Tests for the interactive plan map (districting.outputs.maps)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import folium
import geopandas as gpd
import pytest
from shapely.geometry import LineString, Point, box
from shapely.ops import unary_union

from districting.layers import PlanLayers
from districting.outputs.maps import (
    CD_PALETTE,
    CLASS_NAMES,
    ID_PALETTE,
    LAYER_NAMES,
    RD_PALETTE,
    SEARCH_PLACEHOLDER,
    build_map,
    colour_counting_districts,
    colour_districts,
    write_map,
)

CRS = "EPSG:32641"
X0, Y0 = 524_000.0, 5_052_000.0  # near 45.62N 63.31E in UTM zone 41N
TILE = 100.0
SETTLEMENT = "431010000"


def _cd_of(col: int, row: int) -> str:
    """4 CDs of 3x2 tiles in a 6x4 grid: 01 bottom-left, 02 bottom-right, 03/04 above."""
    return f"{SETTLEMENT}-{1 + col // 3:02d}-{1 + col // 3 + 2 * (row // 2):03d}"


def make_layers() -> PlanLayers:
    """A small hand-made plan: 6x4 tiles of 100 m, 4 CDs, 2 IDs, 2 RDs, 1 settlement."""
    tiles: list[dict] = []
    units: list[dict] = []
    for row in range(4):
        for col in range(6):
            cd = _cd_of(col, row)
            tile = box(X0 + col * TILE, Y0 + row * TILE, X0 + (col + 1) * TILE,
                       Y0 + (row + 1) * TILE)
            tiles.append({"cd_code": cd, "geometry": tile})
            parts = 2 if (col, row) == (0, 0) else 1  # one building split in two units
            for part in range(parts):
                n = len(units) + 1
                units.append({
                    "unit_id": f"U{n:03d}", "building_id": f"B{row}{col}",
                    "settlement_id": SETTLEMENT,
                    "address": f"ул. Ленина, д. {row * 6 + col + 1}" + (f", кв. {part}" if parts > 1
                                                                      else ""),
                    "dwellings": 10 + col, "residents": 20 + row + col, "households": 9 + col,
                    "workload": 100.0 + 7.25 * col + row,
                    "cd_code": cd, "id_code": cd[:12],
                    "rd_code": f"{SETTLEMENT}-R{1 + row // 2:02d}",
                    "geometry": tile.centroid,
                })
    units_gdf = gpd.GeoDataFrame(units, crs=CRS)
    tiles_gdf = gpd.GeoDataFrame(tiles, crs=CRS)
    cd_rows = []
    for cd, group in tiles_gdf.groupby("cd_code"):
        members = units_gdf[units_gdf["cd_code"] == cd]
        workload = float(members["workload"].sum())
        cd_rows.append({
            "cd_code": cd, "id_code": cd[:12], "rd_code": members["rd_code"].iloc[0],
            "settlement_id": SETTLEMENT, "n_units": len(members),
            "dwellings": int(members["dwellings"].sum()),
            "residents": int(members["residents"].sum()), "workload": workload,
            "workload_floor": 600.0, "workload_ceiling": 800.0,
            "utilization": workload / 700.0,
            "bound_exception": "above ceiling" if len(members) > 6 else "",
            "geometry": unary_union(list(group.geometry)),
        })
    cds = gpd.GeoDataFrame(cd_rows, crs=CRS)
    id_rows = []
    for code, group in cds.groupby("id_code"):
        id_rows.append({
            "id_code": code, "settlement_id": SETTLEMENT, "n_cd": len(group),
            "residents": int(group["residents"].sum()), "workload": float(group["workload"].sum()),
            "span_exception": "", "geometry": unary_union(list(group.geometry)),
        })
    rd_rows, point_rows = [], []
    for code, group in cds.groupby("rd_code"):
        geom = unary_union(list(group.geometry))
        name = f"ЦОН №{code[-1]}"
        rd_rows.append({
            "rd_code": code, "settlement_id": SETTLEMENT, "point_name": name,
            "point_building_id": "B00", "n_cd": len(group),
            "residents": int(group["residents"].sum()), "geometry": geom,
        })
        point_rows.append({"rd_code": code, "point_name": name, "building_id": "B00",
                           "function": "public-service centre",
                           "geometry": geom.representative_point()})
    adjacency = gpd.GeoDataFrame(
        [{"u": "U002", "v": "U003", "length_m": 100.0, "kind": "street",
          "geometry": LineString([units[1]["geometry"], units[2]["geometry"]])}], crs=CRS)
    settlements = gpd.GeoDataFrame([{
        "settlement_id": SETTLEMENT, "settlement_name": "Байконур",
        "n_units": len(units_gdf), "residents": int(units_gdf["residents"].sum()),
        "workload": float(units_gdf["workload"].sum()),
        "geometry": box(X0, Y0, X0 + 6 * TILE, Y0 + 4 * TILE),
    }], crs=CRS)
    return PlanLayers(
        units=units_gdf, counting_districts=cds,
        instructor_districts=gpd.GeoDataFrame(id_rows, crs=CRS),
        registration_districts=gpd.GeoDataFrame(rd_rows, crs=CRS),
        registration_points=gpd.GeoDataFrame(point_rows, crs=CRS),
        unit_adjacency=adjacency, settlements=settlements,
    )


def render(layers: PlanLayers, **kwargs) -> str:
    kwargs.setdefault("title", "Test plan")
    return build_map(layers, **kwargs).get_root().render()


@pytest.fixture(scope="module")
def layers() -> PlanLayers:
    return make_layers()


@pytest.fixture(scope="module")
def page(layers: PlanLayers) -> str:
    return render(layers)


def test_map_contains_every_cd_and_id_code(layers: PlanLayers, page: str) -> None:
    for code in layers.counting_districts["cd_code"]:
        assert f"CD {code}" in page
    for code in layers.instructor_districts["id_code"]:
        assert f"ID {code}" in page
    for code in layers.registration_districts["rd_code"]:
        assert f"RD {code}" in page


def test_map_has_all_layer_names_and_a_layer_control(page: str) -> None:
    for name in LAYER_NAMES.values():
        assert f'"{name}"' in page  # listed in the layer control
    assert "L.control.layers" in page


def test_map_has_no_tile_server(page: str) -> None:
    assert "tile.openstreetmap" not in page
    assert "L.tileLayer" not in page
    assert "{z}" not in page


def test_map_is_deterministic(layers: PlanLayers, page: str) -> None:
    assert render(layers) == page
    assert re.search(r"[0-9a-f]{32}", page) is None  # no random folium ids left


def test_cd_tooltip_shows_figures_and_exception(layers: PlanLayers, page: str) -> None:
    row = layers.counting_districts.iloc[0]
    assert f"Workload: {round(row['workload']):,} min" in page
    assert f"Utilization: {round(row['utilization'] * 100)}%" in page
    exceptions = layers.counting_districts["bound_exception"]
    assert (exceptions != "").any()
    assert page.count("Exception: above ceiling") == int((exceptions != "").sum())


def test_map_title_is_the_callers_and_escaped(layers: PlanLayers) -> None:
    page = render(layers, title="Plan <A&B>")
    assert "Plan &lt;A&amp;B&gt;" in page
    assert "<A&B>" not in page
    assert "synthetic" not in render(layers, title="Plan").lower()  # never invented
    assert "Synthetic demo" in render(layers, title="Synthetic demo")


def test_map_coordinates_are_rounded(page: str) -> None:
    assert re.search(r"\d+\.\d{7,}", page) is None


def test_adjacent_cds_get_different_colours(layers: PlanLayers, page: str) -> None:
    cds = layers.counting_districts
    colours = colour_counting_districts(cds)
    assert set(colours) == set(cds["cd_code"])
    assert set(colours.values()) <= set(CD_PALETTE)
    for i, a in cds.iterrows():
        for j, b in cds.iterrows():
            if i < j and a.geometry.distance(b.geometry) < 0.5:  # touching, corners included
                assert colours[a["cd_code"]] != colours[b["cd_code"]]
    assert len(set(colours.values())) == 4  # all four CDs touch (two only at a corner)
    for colour in set(colours.values()):
        assert colour in page
    assert colour_counting_districts(cds.iloc[::-1]) == colours


def test_colouring_reuses_colours_on_a_chain() -> None:
    chain = gpd.GeoDataFrame(
        {"cd_code": [f"C{i:02d}" for i in range(10)],
         "geometry": [box(X0 + i * TILE, Y0, X0 + (i + 1) * TILE, Y0 + TILE) for i in range(10)]},
        crs=CRS,
    )
    colours = colour_counting_districts(chain)
    for i in range(9):
        assert colours[f"C{i:02d}"] != colours[f"C{i + 1:02d}"]
    assert len(set(colours.values())) == 2


def test_units_layer_omitted_above_max_units(
    layers: PlanLayers, page: str, caplog: pytest.LogCaptureFixture
) -> None:
    address = layers.units["address"].iloc[3]
    assert f'"{LAYER_NAMES["units"]}"' in page  # listed in the layer control
    assert json.dumps(address)[1:-1] in page  # embedded as JSON (non-ASCII escaped)
    with caplog.at_level(logging.INFO, logger="districting.outputs.maps"):
        small = render(layers, max_units=len(layers.units) - 1)
    assert f'"{LAYER_NAMES["units"]}"' not in small
    assert "Address units not shown" in small
    assert "units layer is left out" in caplog.text
    assert "CircleMarker" in small  # registration points are still drawn


def test_registration_points_have_popup_with_name(page: str) -> None:
    assert "bindPopup" in page
    assert "public-service centre" in page


def test_write_map_writes_file_atomically(layers: PlanLayers, tmp_path: Path) -> None:
    target = tmp_path / "maps" / "plan.html"
    write_map(layers, target, title="Test plan")
    text = target.read_text(encoding="utf-8")
    assert text == render(layers)
    assert [p.name for p in target.parent.iterdir()] == ["plan.html"]
    write_map(layers, target, title="Test plan")  # overwriting is fine
    assert target.read_text(encoding="utf-8") == text


def test_map_size_is_small(page: str) -> None:
    assert len(page.encode("utf-8")) < 200_000


def test_map_of_a_large_plan_stays_under_5_mb() -> None:
    """~2,500 units and ~170 CDs (a Baikonur-sized plan) give less than 5 MB of HTML."""
    units, cds = [], []
    n_side, cd_side = 50, 4  # 2,500 units; CDs of 4x4 tiles -> 13x13 = 169 CDs
    for row in range(n_side):
        for col in range(n_side):
            number = (row // cd_side) * 13 + col // cd_side
            cd = f"{SETTLEMENT}-{col // cd_side // 7 + 1:02d}-{number:03d}"
            units.append({
                "unit_id": f"U{row * n_side + col:05d}", "building_id": f"B{row}-{col}",
                "settlement_id": SETTLEMENT, "address": f"мкр. {row}, д. {col}",
                "dwellings": 60, "residents": 120, "households": 55, "workload": 44.0,
                "cd_code": cd, "id_code": cd[:12], "rd_code": f"{SETTLEMENT}-R01",
                "geometry": Point(X0 + col * 30 + 15, Y0 + row * 30 + 15),
            })
    units_gdf = gpd.GeoDataFrame(units, crs=CRS)
    for cd, group in units_gdf.groupby("cd_code"):
        cds.append({
            "cd_code": cd, "id_code": cd[:12], "rd_code": f"{SETTLEMENT}-R01",
            "settlement_id": SETTLEMENT, "n_units": len(group), "dwellings": 960,
            "residents": 1920, "workload": 704.0, "workload_floor": 630.0,
            "workload_ceiling": 770.0, "utilization": 1.0057, "bound_exception": "",
            "geometry": unary_union([p.buffer(15, cap_style="square") for p in group.geometry]),
        })
    cds_gdf = gpd.GeoDataFrame(cds, crs=CRS)
    small = make_layers()
    big = PlanLayers(
        units=units_gdf, counting_districts=cds_gdf,
        instructor_districts=small.instructor_districts.iloc[0:0],
        registration_districts=small.registration_districts.iloc[0:0],
        registration_points=small.registration_points.iloc[0:0],
        unit_adjacency=small.unit_adjacency.iloc[0:0], settlements=small.settlements,
    )
    assert len(cds_gdf) >= 160
    page = render(big)
    assert len(page.encode("utf-8")) < 5_000_000
    colours = colour_counting_districts(cds_gdf)
    assert len(set(colours.values())) <= len(CD_PALETTE)


def _geojson_layers(fmap: folium.Map) -> list[folium.GeoJson]:
    found: list[folium.GeoJson] = []

    def visit(element) -> None:
        if isinstance(element, folium.GeoJson):
            found.append(element)
        for child in element._children.values():
            visit(child)

    visit(fmap)
    return found


def test_every_layer_has_its_css_class(page: str) -> None:
    for class_name in CLASS_NAMES.values():
        assert f'"className": "{class_name}"' in page
    small = render(make_layers(), max_units=0)
    assert f'"className": "{CLASS_NAMES["units"]}"' not in small
    assert f'"className": "{CLASS_NAMES["counting_districts"]}"' in small


def test_every_layer_has_tooltips_and_popups(layers: PlanLayers) -> None:
    geojsons = _geojson_layers(build_map(layers, title="Test plan"))
    assert len(geojsons) == 6  # CDs, RDs, points, IDs, settlements, units
    for layer in geojsons:
        kinds = {type(child) for child in layer._children.values()}
        assert {folium.GeoJsonTooltip, folium.GeoJsonPopup} <= kinds


def test_features_carry_only_tip_and_label(layers: PlanLayers) -> None:
    """No raw attribute reaches the page: only the tooltip HTML and the search label."""
    for layer in _geojson_layers(build_map(layers, title="Test plan")):
        for feature in layer.data["features"]:
            assert set(feature["properties"]) <= {"tip", "label"}


def test_rd_and_id_tooltips_show_walks_and_span(layers: PlanLayers, page: str) -> None:
    rds = layers.registration_districts.assign(mean_walk_m=[150.0, 210.4], max_walk_m=[400, 980])
    with_walks = PlanLayers(**{**layers.__dict__, "registration_districts": rds})
    text = render(with_walks)
    assert "Walk to the point: mean 150 m, max 400 m" in text
    assert "Walk to the point: mean 210 m, max 980 m" in text
    assert "Walk to the point: mean n/a m" in page  # the hand-made layers have no walks
    for n_cd in layers.instructor_districts["n_cd"]:
        assert f"Span: {n_cd} CDs" in page


def test_map_has_a_search_over_codes_and_addresses(layers: PlanLayers, page: str) -> None:
    assert "new L.Control.Search(" in page
    assert "leaflet-search@2.9.7/dist/leaflet-search.min.js" in page
    assert json.dumps(SEARCH_PLACEHOLDER) in page
    for code in layers.counting_districts["cd_code"]:
        assert f'"label": "CD {code}"' in page
    for code in layers.instructor_districts["id_code"]:
        assert f'"label": "ID {code}"' in page
    unit = layers.units.iloc[5]
    label = json.dumps(f"{unit['address']} · CD {unit['cd_code']}")
    assert f'"label": {label}' in page
    small = render(layers, max_units=0)  # units left out: codes only
    assert "new L.Control.Search(" in small
    assert label not in small
    assert "addresses not searchable" in small


def test_map_fits_the_data_on_opening(layers: PlanLayers, page: str) -> None:
    assert ".fitBounds(" in page
    bounds = layers.settlements.to_crs("EPSG:4326").total_bounds
    match = re.search(r"\.fitBounds\(\s*\[\[([\d.]+), ([\d.]+)\], \[([\d.]+), ([\d.]+)\]\]", page)
    assert match is not None
    south, west, north, east = (float(v) for v in match.groups())
    assert south == pytest.approx(bounds[1], abs=1e-5)
    assert west == pytest.approx(bounds[0], abs=1e-5)
    assert north == pytest.approx(bounds[3], abs=1e-5)
    assert east == pytest.approx(bounds[2], abs=1e-5)


def test_tiles_only_on_request(layers: PlanLayers, page: str) -> None:
    assert "L.tileLayer" not in page
    online = render(layers, tiles="OpenStreetMap")
    assert online.count("L.tileLayer(") == 1
    assert "tile.openstreetmap.org" in online


def test_write_map_passes_tiles(layers: PlanLayers, tmp_path: Path) -> None:
    write_map(layers, tmp_path / "online.html", title="Test plan", tiles="OpenStreetMap")
    assert "L.tileLayer(" in (tmp_path / "online.html").read_text(encoding="utf-8")


def test_same_plan_gives_byte_identical_files(tmp_path: Path) -> None:
    write_map(make_layers(), tmp_path / "a.html", title="Test plan")
    write_map(make_layers(), tmp_path / "b.html", title="Test plan")
    assert (tmp_path / "a.html").read_bytes() == (tmp_path / "b.html").read_bytes()


def test_neighbouring_ids_and_rds_get_different_colours(layers: PlanLayers, page: str) -> None:
    for frame, field, palette in (
        (layers.instructor_districts, "id_code", ID_PALETTE),
        (layers.registration_districts, "rd_code", RD_PALETTE),
    ):
        colours = colour_districts(frame, field, palette=palette)
        assert set(colours) == set(frame[field])
        for i, a in frame.iterrows():
            for j, b in frame.iterrows():
                if i < j and a.geometry.distance(b.geometry) < 0.5:
                    assert colours[a[field]] != colours[b[field]]
        assert len(set(colours.values())) == len(frame)  # the two touch
        for colour in colours.values():
            assert f'"color": "{colour}"' in page


COLOUR_IN_A_FRESH_PROCESS = """
import json, sys
import geopandas as gpd
from shapely.geometry import box
from districting.outputs.maps import colour_counting_districts
tiles = []
for town, (x0, size) in enumerate([(0.0, 8), (10_000.0, 3)]):  # a big town and a small one
    for i in range(size):
        for j in range(size):
            square = box(x0 + 100 * i, 100 * j, x0 + 100 * (i + 1), 100 * (j + 1))
            tiles.append({"cd_code": f"T{town}-{i}-{j}", "geometry": square})
frame = gpd.GeoDataFrame(tiles, crs="EPSG:32641")
print(json.dumps(colour_counting_districts(frame), sort_keys=True))
"""


def test_colours_do_not_depend_on_the_processes_hash_seed() -> None:
    """Each process hashes strings with its own seed, so anything that follows a set's
    order changes from run to run; the colouring must not (a small town's part of the
    district graph once did)."""
    import os
    import subprocess
    import sys

    runs = set()
    for seed in ("1", "2", "3", "4"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", COLOUR_IN_A_FRESH_PROCESS], env=env,
                              capture_output=True, text=True, check=True)
        runs.add(done.stdout)
    assert len(runs) == 1
    colours = json.loads(runs.pop())
    assert len(colours) == 64 + 9
