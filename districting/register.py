"""Load a Stage-1 address register from GeoPackage, GeoJSON, Shapefile, GeoParquet or CSV."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
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
    else:
        buildings = _read_vector(path, layer=_buildings_layer(path) if suffix == ".gpkg" else None)
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


def _read_vector(path: Path, *, layer: str | None) -> gpd.GeoDataFrame:
    try:
        frame = gpd.read_file(path, layer=layer, engine="pyogrio")
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
