"""Tests of reading a Stage-1 register: every supported format gives the same buildings."""

from __future__ import annotations

import sqlite3
import warnings
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from conftest import two_settlement_register

from districting.errors import InputFileError
from districting.io.register import metric_crs, read_register
from districting.validate import validate_register

Writer = Callable[[gpd.GeoDataFrame, Path], Path]


@pytest.fixture(scope="module")
def register() -> gpd.GeoDataFrame:
    """The two-settlement register in EPSG:4326 (348 buildings)."""
    return two_settlement_register()


def _settlement_polygons(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    hulls = frame.to_crs("EPSG:32641").dissolve("settlement_id").convex_hull.buffer(50)
    return gpd.GeoDataFrame({"settlement_id": list(hulls.index)},
                            geometry=list(hulls), crs="EPSG:32641").to_crs(frame.crs)


def _gpkg(frame: gpd.GeoDataFrame, folder: Path) -> Path:
    path = folder / "register.gpkg"
    frame.to_file(path, layer="buildings", engine="pyogrio")
    return path


def _geojson(frame: gpd.GeoDataFrame, folder: Path) -> Path:
    path = folder / "register.geojson"
    frame.to_file(path, driver="GeoJSON", engine="pyogrio")
    return path


def _shapefile(frame: gpd.GeoDataFrame, folder: Path) -> Path:
    path = folder / "register.shp"
    with warnings.catch_warnings():  # GDAL truncates settlement_id etc. to 10 characters
        warnings.simplefilter("ignore")
        frame.to_file(path, engine="pyogrio")
    return path


def _parquet(frame: gpd.GeoDataFrame, folder: Path) -> Path:
    path = folder / "register.parquet"
    frame.to_parquet(path)
    return path


def _csv_lonlat(frame: gpd.GeoDataFrame, folder: Path) -> Path:
    path = folder / "register.csv"
    table = pd.DataFrame(frame.drop(columns="geometry"))
    table["lon"] = frame.geometry.x
    table["lat"] = frame.geometry.y
    table.to_csv(path, index=False, encoding="utf-8")
    return path


def _csv_wkt(frame: gpd.GeoDataFrame, folder: Path) -> Path:
    path = folder / "register.csv"
    table = pd.DataFrame(frame.drop(columns="geometry"))
    table["wkt"] = shapely.to_wkt(frame.geometry.to_numpy(), rounding_precision=9)
    table.to_csv(path, index=False, encoding="utf-8")
    return path


WRITERS: dict[str, Writer] = {
    "gpkg": _gpkg,
    "geojson": _geojson,
    "shapefile": _shapefile,
    "geoparquet": _parquet,
    "csv-lonlat": _csv_lonlat,
    "csv-wkt": _csv_wkt,
}


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_every_format_reads_the_same_register(
    fmt: str, register: gpd.GeoDataFrame, tmp_path: Path
) -> None:
    path = WRITERS[fmt](register, tmp_path)
    raw = read_register(path)
    frame = raw.buildings

    assert raw.source == path
    assert len(raw.sha256) == 64
    assert frame.crs is not None and frame.crs.to_epsg() == 4326
    assert [str(v) for v in frame["building_id"]] == list(register["building_id"])
    assert [str(v) for v in frame["settlement_id"]] == list(register["settlement_id"])
    assert [str(v) for v in frame["settlement_name"]] == list(register["settlement_name"])
    for column in ("dwellings", "residents"):
        assert [int(v) for v in frame[column]] == [int(v) for v in register[column]]
    assert frame.geometry.geom_equals_exact(register.geometry, tolerance=1e-7).all()
    assert raw.load_problems == []
    assert validate_register(raw) == []


def test_shapefile_restores_truncated_required_names(
    register: gpd.GeoDataFrame, tmp_path: Path
) -> None:
    raw = read_register(_shapefile(register, tmp_path))
    assert {"building_id", "settlement_id", "settlement_name"} <= set(raw.buildings.columns)
    assert not {"building_i", "settlement", "settleme_1"} & set(raw.buildings.columns)


def test_gpkg_picks_up_settlements_layer(register: gpd.GeoDataFrame, tmp_path: Path) -> None:
    path = _gpkg(register, tmp_path)
    assert read_register(path).settlements is None

    _settlement_polygons(register).to_file(path, layer="settlements", engine="pyogrio")
    raw = read_register(path)
    assert raw.settlements is not None
    assert sorted(raw.settlements["settlement_id"]) == ["431010000", "431030100"]
    assert len(raw.buildings) == len(register)  # the buildings layer, not the settlements
    assert validate_register(raw) == []


def test_gpkg_without_buildings_layer_uses_first_layer(
    register: gpd.GeoDataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "other.gpkg"
    register.to_file(path, layer="houses", engine="pyogrio")
    raw = read_register(path)
    assert list(raw.buildings["building_id"]) == list(register["building_id"])


def test_separate_settlements_file(register: gpd.GeoDataFrame, tmp_path: Path) -> None:
    polygons = tmp_path / "settlements.geojson"
    _settlement_polygons(register).to_file(polygons, driver="GeoJSON", engine="pyogrio")
    raw = read_register(_csv_lonlat(register, tmp_path), settlements=polygons)
    assert raw.settlements is not None and len(raw.settlements) == 2

    missing = tmp_path / "nowhere.geojson"
    with pytest.raises(InputFileError, match="settlements file not found") as info:
        read_register(_csv_lonlat(register, tmp_path), settlements=missing)
    assert str(missing) in str(info.value)


def test_csv_keeps_leading_zeros_and_reports_bad_coordinates(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(
        "building_id,settlement_id,settlement_name,address,kind,dwellings,residents,lon,lat\n"
        "0001,431010000,Город,\"ул. Ленина, 1\",residential,10,25,63.31,45.62\n"
        "0002,431010000,Город,\"ул. Ленина, 2\",residential,10,25,east,45.62\n",
        encoding="utf-8",
    )
    raw = read_register(path)
    assert list(raw.buildings["building_id"]) == ["0001", "0002"]
    assert raw.buildings.geometry.iloc[1] is None
    [problem] = raw.load_problems
    assert (problem.severity, problem.row, problem.column) == ("error", 2, "lon/lat")
    assert "not numbers" in problem.message


def test_csv_with_bom_reads(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_text("building_id,lon,lat\nA,63.3,45.6\n", encoding="utf-8-sig")
    raw = read_register(path)
    assert list(raw.buildings.columns[:1]) == ["building_id"]


# --- unreadable inputs --------------------------------------------------------------


def test_unsupported_suffix(tmp_path: Path) -> None:
    path = tmp_path / "register.xlsx"
    path.write_bytes(b"not really a spreadsheet")
    with pytest.raises(InputFileError, match=r"unsupported register format '\.xlsx'") as info:
        read_register(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.gpkg"
    with pytest.raises(InputFileError, match="not found") as info:
        read_register(path)
    assert str(path) in str(info.value)


def test_folder_is_not_a_register(tmp_path: Path) -> None:
    folder = tmp_path / "register.gpkg"
    folder.mkdir()
    with pytest.raises(InputFileError, match="folder") as info:
        read_register(folder)
    assert str(folder) in str(info.value)


def test_csv_without_coordinates(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("building_id,settlement_id,dwellings\nA,1,2\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"'lon' and 'lat' columns or a 'wkt' column") as info:
        read_register(path)
    assert str(path) in str(info.value)


def test_csv_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "cp1251.csv"
    path.write_bytes("building_id,address,lon,lat\nA,ул. Ленина 1,63.3,45.6\n".encode("cp1251"))
    with pytest.raises(InputFileError, match="not UTF-8") as info:
        read_register(path)
    assert str(path) in str(info.value)


def test_empty_csv(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(InputFileError, match="cannot parse the CSV") as info:
        read_register(path)
    assert str(path) in str(info.value)


def test_corrupt_geopackage(tmp_path: Path) -> None:
    path = tmp_path / "broken.gpkg"
    path.write_bytes(b"this is not a GeoPackage")
    with pytest.raises(InputFileError) as info:
        read_register(path)
    assert str(path) in str(info.value)


def test_corrupt_geoparquet(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 not really")
    with pytest.raises(InputFileError, match="GeoParquet") as info:
        read_register(path)
    assert str(path) in str(info.value)


def test_table_without_geometry(register: gpd.GeoDataFrame, tmp_path: Path) -> None:
    import pyogrio

    path = tmp_path / "table.gpkg"
    pyogrio.write_dataframe(pd.DataFrame(register.drop(columns="geometry")), path,
                            layer="buildings")
    with pytest.raises(InputFileError, match="no geometry column") as info:
        read_register(path)
    assert str(path) in str(info.value)


# --- metric CRS ----------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:GeoSeries.notna:UserWarning")
def test_metric_crs_baikonur_is_utm_41n() -> None:
    frame = gpd.GeoDataFrame(
        geometry=[shapely.Point(63.3, 45.6), shapely.Point(63.32, 45.62), shapely.Point()],
        crs="EPSG:4326",
    )
    assert metric_crs(frame).to_epsg() == 32641


def test_metric_crs_keeps_a_utm_crs(register: gpd.GeoDataFrame) -> None:
    assert metric_crs(register.to_crs("EPSG:32641")).to_epsg() == 32641
    assert metric_crs(register).to_epsg() == 32641


# --- counts as stored: GDAL reads TEXT in an INTEGER column as 0 -----------------------


def _sql(path: Path, *statements: str) -> None:
    """Run SQL on a GeoPackage; the R-tree triggers call GeoPackage functions that plain
    sqlite3 does not have, so stand-ins are registered (no geometry is changed)."""
    connection = sqlite3.connect(path)
    for name in ("ST_IsEmpty", "ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY"):
        connection.create_function(name, 1, lambda geometry: None)
    for statement in statements:
        connection.execute(statement)
    connection.commit()
    connection.close()


def test_gpkg_text_in_an_integer_column_is_an_error(
        register: gpd.GeoDataFrame, tmp_path: Path) -> None:
    """residents stored as TEXT 'abc' were read as 0 and the plan was made for them."""
    frame = register.iloc[:20].copy()
    frame["floors"] = 2
    frame["households"] = frame["dwellings"]
    path = _gpkg(frame, tmp_path)
    _sql(path,
         "DELETE FROM buildings WHERE fid = 2",  # fids need not be the row numbers
         "UPDATE buildings SET residents = 'abc' WHERE fid = 5",
         "UPDATE buildings SET dwellings = 12.5 WHERE fid = 7",
         "UPDATE buildings SET floors = x'3132' WHERE fid = 9",
         "UPDATE buildings SET households = '7' WHERE fid = 11")  # stored as the integer 7
    raw = read_register(path)
    assert list(raw.buildings.index) == list(range(19))
    assert raw.buildings.loc[3, "residents"] == "abc"
    errors = [p for p in validate_register(raw) if p.severity == "error"]
    assert [(p.row, p.column) for p in errors] == [(6, "dwellings"), (4, "residents"),
                                                   (8, "floors")]
    assert "dwellings 12.5 is not a whole number" in errors[0].message
    assert "residents 'abc' is not a number" in errors[1].message
    assert "floors is binary data (a BLOB), not a number" in errors[2].message
    assert raw.buildings.loc[9, "households"] == 7


def test_gpkg_clean_counts_keep_their_integer_type(
        register: gpd.GeoDataFrame, tmp_path: Path) -> None:
    raw = read_register(_gpkg(register, tmp_path))
    assert raw.buildings["residents"].dtype == "int64"
    assert list(raw.buildings.index) == list(range(len(register)))


def test_csv_and_geojson_text_counts_are_errors(
        register: gpd.GeoDataFrame, tmp_path: Path) -> None:
    frame = register.iloc[:10].reset_index(drop=True)
    frame["residents"] = frame["residents"].astype(object)
    frame.loc[3, "residents"] = "abc"
    for writer in (_csv_lonlat, _geojson):
        folder = tmp_path / writer.__name__
        folder.mkdir()
        with warnings.catch_warnings():  # pyogrio: the column stays text
            warnings.simplefilter("ignore")
            raw = read_register(writer(frame, folder))
        errors = [p for p in validate_register(raw) if p.severity == "error"]
        assert [(p.row, p.column) for p in errors] == [(4, "residents")], writer.__name__
        assert "'abc' is not a number" in errors[0].message


def _dbf_cells(path: Path, cells: dict[tuple[int, str], bytes]) -> None:
    """Overwrite DBF cells (0-based record, field name) with raw text, right-aligned."""
    data = bytearray(path.read_bytes())
    header = int.from_bytes(data[8:10], "little")
    size = int.from_bytes(data[10:12], "little")
    fields, offset, start = {}, 32, 1
    while data[offset] != 0x0D:
        fields[data[offset:offset + 11].split(b"\0")[0].decode()] = (start, data[offset + 16])
        start, offset = start + data[offset + 16], offset + 32
    for (record, name), text in cells.items():
        first, width = fields[name]
        at = header + record * size + first
        data[at:at + width] = text.rjust(width)
    path.write_bytes(bytes(data))


def test_shapefile_text_in_a_numeric_field_is_an_error(
        register: gpd.GeoDataFrame, tmp_path: Path) -> None:
    """GDAL reads a DBF numeric cell 'abc' as 0 and '12.5' (no decimals) as 12."""
    path = _shapefile(register.iloc[:10], tmp_path)
    _dbf_cells(path.with_suffix(".dbf"), {(1, "residents"): b"abc", (3, "dwellings"): b"12.5",
                                          (5, "residents"): b"1 2", (6, "residents"): b"7"})
    raw = read_register(path)
    errors = [p for p in validate_register(raw) if p.severity == "error"]
    assert [(p.row, p.column) for p in errors] == [
        (4, "dwellings"), (2, "residents"), (6, "residents")]
    assert "dwellings '12.5' is not a whole number" in errors[0].message
    assert "residents 'abc' is not a number" in errors[1].message
    assert "residents '1 2' is not a number" in errors[2].message
    assert raw.buildings.loc[6, "residents"] == 7
