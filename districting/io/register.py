"""Load a Stage-1 address register from GeoPackage, GeoJSON, Shapefile, GeoParquet or CSV."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS

from districting.errors import InputFileError, Problem

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = (
    "building_id", "settlement_id", "settlement_name", "address", "kind", "dwellings", "residents",
)
OPTIONAL_COLUMNS = ("households", "floors", "entrances", "function")
#: The columns that hold counts (whole numbers ≥ 0), checked by :mod:`districting.validate`.
COUNT_NAMES = ("dwellings", "residents", "households", "floors", "entrances")
KINDS = ("residential", "non_residential", "mixed", "collective")
#: Layers of a register GeoPackage that planning uses when present (see ``synth``/``osm``).
OPTIONAL_LAYERS = ("barriers", "crossings", "street_nodes", "street_edges")
SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".parquet", ".geoparquet", ".csv")

_LON_NAMES = ("lon", "longitude", "lng", "x")
_LAT_NAMES = ("lat", "latitude", "y")
_WKT_NAMES = ("wkt", "geometry", "geom")
# dBASE field names hold at most 10 characters; GDAL truncates the longer required names
# so (written in the documented column order), and reading a Shapefile restores them.
_SHAPEFILE_NAMES = {
    "building_i": "building_id", "settlement": "settlement_id", "settleme_1": "settlement_name",
}


@dataclass
class RawRegister:
    """A register as read from disk, before validation.

    ``load_problems`` holds problems found while reading (for example an
    unparseable coordinate in a CSV row); validation reports them with the rest.
    """

    buildings: gpd.GeoDataFrame
    source: Path
    settlements: gpd.GeoDataFrame | None = None
    load_problems: list[Problem] = field(default_factory=list)
    sha256: str = ""
    layers: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)


def check_input_file(path: Path, *, what: str, suffixes: tuple[str, ...]) -> str:
    """Stop unless ``path`` is an existing file with one of ``suffixes``; return its suffix
    in lower case. ``what`` names the file in the message (register, record, …)."""
    if not path.exists():
        raise InputFileError(f"{what} file not found: {path}")
    if path.is_dir():
        raise InputFileError(f"{what} path is a folder, not a file: {path}")
    suffix = path.suffix.lower()
    if suffix not in suffixes:
        raise InputFileError(
            f"{path}: unsupported {what} format '{suffix}' (use one of {', '.join(suffixes)})")
    return suffix


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, for the plan's provenance record."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_register(path: str | Path, *, settlements: str | Path | None = None) -> RawRegister:
    """Read a register file; settlement polygons come from ``settlements`` or a GPKG layer.

    Parameters
    ----------
    path
        The register: ``.gpkg`` (layer ``buildings``, or the first layer), ``.geojson``,
        ``.shp``, ``.parquet`` (GeoParquet) or ``.csv`` with ``lon``/``lat`` or ``wkt``
        columns in EPSG:4326.
    settlements
        Optional polygon file with ``settlement_id``; when omitted and the register is a
        GeoPackage with a ``settlements`` layer, that layer is used. The GeoPackage's
        :data:`OPTIONAL_LAYERS` (barriers, crossings, streets) are read too, if present.
    """
    path = Path(path)
    suffix = check_input_file(path, what="register", suffixes=SUFFIXES)
    problems: list[Problem] = []
    if suffix == ".csv":
        buildings = _read_csv(path, problems)
    elif suffix in (".parquet", ".geoparquet"):
        buildings = _read_parquet(path)
    elif suffix == ".gpkg":
        layer = _buildings_layer(path)
        buildings = _stored_counts(path, layer, _read_vector(path, layer=layer, fids=True))
    elif suffix == ".shp":
        buildings = _stored_dbf_counts(path, _read_vector(path, layer=None, fids=True))
    else:
        buildings = _read_vector(path, layer=None)
    settlement_frame = None
    extra: dict[str, gpd.GeoDataFrame] = {}
    present = _layers(path) if suffix == ".gpkg" else []
    if present:
        extra = {name: _read_vector(path, layer=name) for name in OPTIONAL_LAYERS
                 if name in present}
    if settlements is not None:
        settlement_path = Path(settlements)
        if not settlement_path.exists():
            raise InputFileError(f"settlements file not found: {settlement_path}")
        settlement_frame = _read_vector(settlement_path, layer=None)
    elif "settlements" in present:
        settlement_frame = _read_vector(path, layer="settlements")
    return RawRegister(
        buildings=buildings,
        source=path,
        settlements=settlement_frame,
        load_problems=problems,
        sha256=file_sha256(path),
        layers=extra,
    )


def _layers(path: Path) -> list[str]:
    try:
        return [str(name) for name in pyogrio.list_layers(path)[:, 0]]
    except Exception as exc:  # pyogrio raises several error types for unreadable files
        raise InputFileError(f"{path}: cannot read as a GeoPackage ({exc})") from None


def _buildings_layer(path: Path) -> str:
    names = _layers(path)
    if not names:
        raise InputFileError(f"{path}: the GeoPackage has no layers")
    return "buildings" if "buildings" in names else names[0]


def _read_vector(path: Path, *, layer: str | None, fids: bool = False) -> gpd.GeoDataFrame:
    """A layer as a GeoDataFrame; with ``fids``, indexed by its features' ids."""
    try:
        frame = gpd.read_file(path, layer=layer, engine="pyogrio", fid_as_index=fids)
    except Exception as exc:  # GDAL errors come in many types; report them as one
        raise InputFileError(f"{path}: cannot read vector data ({exc})") from None
    if not isinstance(frame, gpd.GeoDataFrame):
        raise InputFileError(f"{path}: {f'layer {layer!r}' if layer else 'the file'} "
                             "has no geometry column")
    if path.suffix.lower() == ".shp":
        frame = frame.rename(columns={
            short: name for short, name in _SHAPEFILE_NAMES.items()
            if short in frame.columns and name not in frame.columns
        })
    return frame


def _stored_counts(path: Path, layer: str, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The buildings with each count cell as the GeoPackage stores it, indexed 0, 1, ….

    SQLite keeps any value in any column, and GDAL reads a TEXT value in an INTEGER
    column as 0 and a REAL one as its whole part ("abc" → 0, 12.5 → 12). Such cells
    are put back as stored (text, a float, bytes), so that validation reports them
    instead of planning for 0 residents. ``frame`` is indexed by feature id (the
    table's rowid).
    """
    fids = frame.index.to_numpy()
    frame = frame.reset_index(drop=True)
    numeric = _count_columns(frame)
    if not numeric or len(frame) == 0:
        return frame
    table = '"' + layer.replace('"', '""') + '"'
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        logger.debug("%s: counts not checked as stored (%s)", path, exc)
        return frame
    try:
        for column in numeric:
            name = '"' + column.replace('"', '""') + '"'
            odd = ("'text', 'blob', 'real'" if pd.api.types.is_integer_dtype(frame[column])
                   else "'text', 'blob'")
            stored = connection.execute(
                f"SELECT rowid, {name} FROM {table} WHERE typeof({name}) IN ({odd})"
            ).fetchall()
            if not stored:
                continue
            positions = pd.Index(fids).get_indexer([fid for fid, _ in stored])
            values = frame[column].astype(object).to_numpy(copy=True)
            for position, (_, value) in zip(positions, stored, strict=True):
                if position >= 0:
                    values[position] = value
            frame[column] = pd.Series(values, index=frame.index, dtype=object)
    except sqlite3.Error as exc:  # e.g. the layer is a view GDAL reads but we cannot
        logger.debug("%s: counts not checked as stored (%s)", path, exc)
    finally:
        connection.close()
    return frame


def _count_columns(frame: pd.DataFrame) -> list[str]:
    """The count columns that GDAL read as numbers (and so may have coerced)."""
    return [c for c in COUNT_NAMES if c in frame.columns
            and pd.api.types.is_numeric_dtype(frame[c].dtype)
            and not pd.api.types.is_bool_dtype(frame[c].dtype)]


def _stored_dbf_counts(path: Path, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The buildings with each count cell as the Shapefile's DBF stores it, indexed
    0, 1, ….

    A DBF numeric field is text, and GDAL reads one that is not a number as 0 and
    12.5 in a field with no decimals as 12. Cells whose text does not read as the value
    GDAL gave are put back as their text, so that validation reports them. ``frame``
    is indexed by feature id (the DBF record number).
    """
    fids = frame.index.to_numpy()
    frame = frame.reset_index(drop=True)
    numeric = _count_columns(frame)
    dbf = next((p for p in (path.with_suffix(".dbf"), path.with_suffix(".DBF")) if p.exists()),
               None)
    if not numeric or len(frame) == 0 or dbf is None:
        return frame
    data = dbf.read_bytes()
    if len(data) < 32 or data[0] & 0x07 != 0x03:  # dBASE III layout only (GDAL writes it)
        return frame
    records = int.from_bytes(data[4:8], "little")
    header = int.from_bytes(data[8:10], "little")
    size = int.from_bytes(data[10:12], "little")
    fields: dict[str, tuple[int, int]] = {}
    offset, start = 32, 1  # each record begins with its deletion flag
    while offset + 32 <= header and data[offset] != 0x0D:
        name = data[offset:offset + 11].split(b"\0")[0].decode("latin-1")
        width = data[offset + 16]
        fields[name] = (start, width)
        start, offset = start + width, offset + 32
    records = min(records, max(0, (len(data) - header) // size) if size else 0)
    if not records:
        return frame
    table = np.frombuffer(data, dtype=np.uint8, count=records * size,
                          offset=header).reshape(records, size)
    inside = (fids >= 0) & (fids < records)
    positions, wanted = np.flatnonzero(inside), fids[inside]
    for column in numeric:
        if column not in fields:
            continue
        first, width = fields[column]
        maybe = np.concatenate([
            chunk + _odd_integer_cells(table[wanted[chunk:chunk + _DBF_CHUNK],
                                             first:first + width])
            for chunk in range(0, len(wanted), _DBF_CHUNK)])
        if not len(maybe):
            continue
        text = pd.Series([bytes(table[wanted[i], first:first + width]).decode("latin-1")
                          .strip(" \x00") for i in maybe], dtype=object)
        read = frame[column].to_numpy(dtype=float, na_value=np.nan)[positions[maybe]]
        number = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            same = (number == read) | (np.isnan(number) & np.isnan(read) & (text == ""))
        odd = ~np.asarray(same, dtype=bool)
        if not odd.any():
            continue
        values = frame[column].astype(object).to_numpy(copy=True)
        values[positions[maybe[odd]]] = text.to_numpy()[odd]
        frame[column] = pd.Series(values, index=frame.index, dtype=object)
    return frame


_DBF_CHUNK = 1 << 20
_INTEGER_BYTES = np.zeros(256, dtype=bool)
_INTEGER_BYTES[list(b"0123456789+- ")] = True


def _odd_integer_cells(cells: np.ndarray) -> np.ndarray:
    """The rows of fixed-width DBF cells (bytes, one row each) that are neither blank
    nor a plain integer such as "  -12": those GDAL may have read as something else."""
    if cells.shape[1] == 0:
        return np.zeros(0, dtype=np.int64)
    width = cells.shape[1]
    filled = cells != 0x20
    count = filled.sum(axis=1)
    lead = filled.argmax(axis=1)
    trail = width - 1 - filled[:, ::-1].argmax(axis=1)
    signs = (cells == 0x2B) | (cells == 0x2D)
    sign_count = signs.sum(axis=1)
    plain = (_INTEGER_BYTES[cells].all(axis=1) & (trail - lead + 1 == count)
             & ((sign_count == 0) | ((sign_count == 1) & signs[np.arange(len(cells)), lead]
                                     & (count > 1))))
    return np.flatnonzero((count > 0) & ~plain)


def _read_parquet(path: Path) -> gpd.GeoDataFrame:
    try:
        return gpd.read_parquet(path)
    except Exception as exc:
        raise InputFileError(f"{path}: cannot read as GeoParquet ({exc})") from None


def _read_csv(path: Path, problems: list[Problem]) -> gpd.GeoDataFrame:
    """Read a CSV with lon/lat or WKT columns in EPSG:4326; bad cells become problems."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputFileError(f"{path}: the CSV is not UTF-8 encoded") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputFileError(f"{path}: cannot parse the CSV ({exc})") from None
    columns = {c.lower(): c for c in frame.columns}
    lon = next((columns[n] for n in _LON_NAMES if n in columns), None)
    lat = next((columns[n] for n in _LAT_NAMES if n in columns), None)
    wkt = next((columns[n] for n in _WKT_NAMES if n in columns), None)
    geometries: list[shapely.Geometry | None] = []
    if lon is not None and lat is not None:
        for row, (x, y) in enumerate(zip(frame[lon], frame[lat], strict=True), start=1):
            try:
                geometries.append(shapely.Point(float(x), float(y)))
            except ValueError:
                geometries.append(None)
                problems.append(Problem("error", row, f"{lon}/{lat}",
                                        f"coordinates {x!r}, {y!r} are not numbers",
                                        path.name))
        frame = frame.drop(columns=[lon, lat])
    elif wkt is not None:
        for row, text in enumerate(frame[wkt], start=1):
            try:
                geometries.append(shapely.from_wkt(text) if text.strip() else None)
            except shapely.errors.GEOSException:
                geometries.append(None)
                problems.append(Problem("error", row, wkt, f"cannot parse WKT {text[:40]!r}",
                                        path.name))
        frame = frame.drop(columns=[wkt])
    else:
        raise InputFileError(
            f"{path}: a CSV register needs 'lon' and 'lat' columns or a 'wkt' column (EPSG:4326)"
        )
    return gpd.GeoDataFrame(frame, geometry=geometries, crs="EPSG:4326")


def metric_crs(frame: gpd.GeoDataFrame) -> CRS:
    """The UTM zone of the data, chosen with pyproj from the data's extent."""
    if frame.crs is not None and frame.crs.is_projected and frame.crs.axis_info[0].unit_name in (
        "metre", "meter"
    ):
        utm = frame.crs.utm_zone if hasattr(frame.crs, "utm_zone") else None
        if utm:
            return CRS(frame.crs)
    geoms = frame.geometry.to_numpy()
    valid = frame[~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)]
    return CRS(valid.estimate_utm_crs())
