"""Tests for the interviewer and instructor assignment sheets (districting.outputs.sheets)."""

from __future__ import annotations

import csv
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box
from shapely.ops import unary_union

from districting.errors import DistrictingError
from districting.layers import LAYER_FIELDS, PlanLayers
from districting.outputs.sheets import (
    CD_SHEET_COLUMNS,
    ID_SHEET_COLUMNS,
    TOTAL_LABEL,
    walking_order,
    write_cd_sheets,
    write_instructor_sheets,
)

CRS = "EPSG:32641"
X0, Y0 = 524_000.0, 5_052_000.0  # near 45.62N 63.31E in UTM zone 41N
TILE = 100.0
SETTLEMENT = "431010000"


def make_layers() -> PlanLayers:
    """6x4 tiles of 100 m, 4 CDs of 3x2 tiles, 2 IDs (left, right), 2 RDs (bottom, top)."""
    units, tiles = [], []
    for row in range(4):
        for col in range(6):
            id_code = f"{SETTLEMENT}-{1 + col // 3:02d}"
            cd = f"{id_code}-{1 + col // 3 + 2 * (row // 2):03d}"
            tile = box(X0 + col * TILE, Y0 + row * TILE, X0 + (col + 1) * TILE,
                       Y0 + (row + 1) * TILE)
            tiles.append({"cd_code": cd, "geometry": tile})
            parts = 2 if (col, row) == (2, 3) else 1  # one building split by dwelling ranges
            for part in range(parts):
                n = len(units) + 1
                units.append({
                    "unit_id": f"U{n}", "building_id": f"B{row}{col}",
                    "settlement_id": SETTLEMENT,
                    "address": f"ул. Гагарина, д. {row * 6 + col + 1}"
                               + (f", кв. {1 + 60 * part}-{60 + 60 * part}" if parts > 1 else ""),
                    "dwellings": 10 + col, "residents": 20 + row + col, "households": 9 + col,
                    "workload": 100.04 + 7.27 * col + row,
                    "cd_code": cd, "id_code": id_code,
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
            "workload_floor": 630.0, "workload_ceiling": 770.0, "utilization": workload / 700.0,
            "bound_exception": "", "geometry": unary_union(list(group.geometry)),
        })
    cds = gpd.GeoDataFrame(cd_rows, crs=CRS)
    id_rows = [
        {"id_code": code, "settlement_id": SETTLEMENT, "n_cd": len(group),
         "residents": int(group["residents"].sum()), "workload": float(group["workload"].sum()),
         "span_exception": "", "geometry": unary_union(list(group.geometry))}
        for code, group in cds.groupby("id_code")
    ]

    def empty(name: str) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame({f: [] for f in LAYER_FIELDS[name]}, geometry=[], crs=CRS)

    return PlanLayers(
        units=units_gdf, counting_districts=cds,
        instructor_districts=gpd.GeoDataFrame(id_rows, crs=CRS),
        registration_districts=empty("registration_districts"),
        registration_points=empty("registration_points"),
        unit_adjacency=empty("unit_adjacency"), settlements=empty("settlements"),
    )


def read(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM, for Excel
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


@pytest.fixture(scope="module")
def layers() -> PlanLayers:
    return make_layers()


# ------------------------------------------------------------ walking order


def test_walking_order_on_a_line_is_the_obvious_order() -> None:
    xs = np.array([5.0, 0.0, 9.0, 3.0, 1.0, 7.0, 2.0, 8.0, 4.0, 6.0])
    points = np.column_stack([xs, np.zeros_like(xs)])
    order = walking_order(points)
    assert xs[order].tolist() == sorted(xs.tolist())


def test_walking_order_is_a_permutation_and_deterministic() -> None:
    rng = np.random.default_rng(7)
    points = rng.uniform(0, 500, size=(60, 2))
    points[10] = points[11]  # two units of one building
    order = walking_order(points)
    assert sorted(order.tolist()) == list(range(60))
    assert np.array_equal(order, walking_order(points.copy()))
    where = order.tolist()
    assert abs(where.index(10) - where.index(11)) == 1  # same building, visited together
    assert where.index(10) < where.index(11)  # tie goes to the lower index


def test_walking_order_starts_near_the_north_west_corner() -> None:
    points = np.array([[100.0, 0.0], [0.0, 100.0], [100.0, 100.0], [0.0, 0.0]])
    assert walking_order(points)[0] == 1
    assert walking_order(points, start=(100.0, 0.0))[0] == 0


def test_walking_order_edge_cases() -> None:
    assert walking_order(np.zeros((0, 2))).tolist() == []
    assert walking_order(np.array([[3.0, 4.0]])).tolist() == [0]
    with pytest.raises(ValueError):
        walking_order(np.zeros((3, 3)))
    with pytest.raises(ValueError):
        walking_order(np.array([[0.0, np.nan]]))


# ------------------------------------------------------------ CD sheets


def test_one_cd_sheet_per_cd(layers: PlanLayers, tmp_path: Path) -> None:
    paths = write_cd_sheets(layers, tmp_path)
    codes = sorted(layers.counting_districts["cd_code"])
    assert [p.name for p in paths] == [f"{c}.csv" for c in codes]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{c}.csv" for c in codes]


def test_every_unit_appears_exactly_once(layers: PlanLayers, tmp_path: Path) -> None:
    seen: list[str] = []
    for path in write_cd_sheets(layers, tmp_path):
        rows = read(path)[1:-1]
        assert [r[0] for r in rows] == [str(i) for i in range(1, len(rows) + 1)]
        seen += [r[1] for r in rows]
        code = path.stem
        expected = set(layers.units.loc[layers.units["cd_code"] == code, "unit_id"])
        assert {r[1] for r in rows} == expected
    assert sorted(seen) == sorted(layers.units["unit_id"])


def test_cd_totals_row_equals_sums(layers: PlanLayers, tmp_path: Path) -> None:
    for path in write_cd_sheets(layers, tmp_path):
        table = read(path)
        body, total = table[1:-1], table[-1]
        assert total[0] == "ИТОГО"
        for col in (5, 6, 7):
            assert int(total[col]) == sum(int(r[col]) for r in body)
        assert float(total[8]) == pytest.approx(sum(float(r[8]) for r in body), abs=1e-9)
        units = layers.units[layers.units["cd_code"] == path.stem]
        assert int(total[6]) == units["residents"].sum()
        assert float(total[8]) == pytest.approx(units["workload"].sum(), abs=0.05 * len(units))


def test_cd_sheet_is_in_walking_order_from_the_north_west(
    layers: PlanLayers, tmp_path: Path
) -> None:
    code = f"{SETTLEMENT}-01-003"  # top-left CD: columns 0-2, rows 2-3
    sheets = {p.stem: p for p in write_cd_sheets(layers, tmp_path)}
    addresses = [r[3].removeprefix("ул. Гагарина, д. ") for r in read(sheets[code])[1:-1]]
    # Starts at the north-west tile (row 3, col 0: house 19); equal steps go to the lower
    # unit id (U13 before U20); the split building's units follow each other.
    assert addresses == ["19", "13", "14", "15", "21, кв. 1-60", "21, кв. 61-120", "20"]


def test_cd_sheets_headers_ru_by_default_en_on_request(layers: PlanLayers, tmp_path: Path) -> None:
    ru = read(write_cd_sheets(layers, tmp_path / "ru")[0])
    assert ru[0] == CD_SHEET_COLUMNS["ru"]
    assert ru[0][0] == "№ п/п" and "Адрес" in ru[0] and "Нагрузка, мин" in ru[0]
    en = read(write_cd_sheets(layers, tmp_path / "en", lang="en")[0])
    assert en[0] == CD_SHEET_COLUMNS["en"]
    assert en[-1][0] == TOTAL_LABEL["en"] == "TOTAL"
    assert [r[1:] for r in en[1:]] == [r[1:] for r in ru[1:]]
    with pytest.raises(DistrictingError):
        write_cd_sheets(layers, tmp_path / "xx", lang="kk")


def test_cd_sheets_use_crlf_and_are_deterministic(layers: PlanLayers, tmp_path: Path) -> None:
    first = [p.read_bytes() for p in write_cd_sheets(layers, tmp_path / "a")]
    second = [p.read_bytes() for p in write_cd_sheets(layers, tmp_path / "b")]
    assert first == second
    assert b"\r\n" in first[0]
    path = write_cd_sheets(layers, tmp_path / "c", delimiter=";")[0]
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    assert rows == read(tmp_path / "a" / path.name)


def test_unit_without_a_cd_is_an_error(layers: PlanLayers, tmp_path: Path) -> None:
    units = layers.units.copy()
    units.loc[0, "cd_code"] = "431010000-09-999"
    broken = PlanLayers(**{**layers.as_dict(), "units": units})
    with pytest.raises(DistrictingError, match="no counting district"):
        write_cd_sheets(broken, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unsafe_code_is_an_error(layers: PlanLayers, tmp_path: Path) -> None:
    cds = layers.counting_districts.copy()
    units = layers.units.copy()
    old = cds.loc[0, "cd_code"]
    cds.loc[0, "cd_code"] = "../evil"
    units.loc[units["cd_code"] == old, "cd_code"] = "../evil"
    broken = PlanLayers(**{**layers.as_dict(), "units": units, "counting_districts": cds})
    with pytest.raises(DistrictingError, match="file name"):
        write_cd_sheets(broken, tmp_path / "out")


# ------------------------------------------------------------ instructor sheets


def test_instructor_sheets(layers: PlanLayers, tmp_path: Path) -> None:
    paths = write_instructor_sheets(layers, tmp_path)
    ids = sorted(layers.instructor_districts["id_code"])
    assert paths == [tmp_path / "instructors" / f"{c}.csv" for c in ids]
    listed: list[str] = []
    cds = layers.counting_districts.set_index("cd_code")
    for path in paths:
        table = read(path)
        assert table[0] == ID_SHEET_COLUMNS["ru"]
        body, total = table[1:-1], table[-1]
        assert total[0] == "ИТОГО"
        for row in body:
            assert cds.loc[row[0], "id_code"] == path.stem
            assert row[1] == cds.loc[row[0], "rd_code"]
            assert float(row[6]) == pytest.approx(cds.loc[row[0], "utilization"] * 100, abs=0.05)
        for col in (2, 3, 4):
            assert int(total[col]) == sum(int(r[col]) for r in body)
        assert float(total[5]) == pytest.approx(sum(float(r[5]) for r in body), abs=1e-9)
        members = cds[cds["id_code"] == path.stem]
        # All CDs have the same target here, so the overall % is the workload over the target.
        assert float(total[6]) == pytest.approx(members["workload"].sum() / (700 * len(members))
                                                * 100, abs=0.05)
        listed += [r[0] for r in body]
    assert sorted(listed) == sorted(cds.index)


def test_instructor_sheets_in_english(layers: PlanLayers, tmp_path: Path) -> None:
    table = read(write_instructor_sheets(layers, tmp_path, lang="en")[0])
    assert table[0] == ID_SHEET_COLUMNS["en"]
    assert table[-1][0] == "TOTAL"
