"""Turn an OpenStreetMap extract into a Stage-1 register skeleton.

OpenStreetMap (OSM) has building footprints, addresses, streets, rivers and
railways, but no dwellings or residents. :func:`register_from_osm` reads an
extract offline and builds a register in the layout of :mod:`districting.synth`
(layers ``buildings``, ``settlements``, ``street_nodes``, ``street_edges``,
``barriers`` and ``crossings``), so ``districting plan`` accepts the file written
by :func:`write_osm_register` unchanged. Every count in it is an **estimate** from
the footprint (``estimated="yes"``, metadata ``estimated="true"``): the register
is a skeleton for the Stage-1 listers to correct, never a substitute for them.

Input
    ``.osm`` (OSM XML), ``.osm.gz``, ``.osm.bz2`` and ``.osm.pbf``. The format is
    recognised from the file's first bytes, not its name. Compressed files are
    decompressed and PBF files converted to XML with ``osmium`` (the optional
    pyosmium package) into a temporary folder; osmnx then reads the XML
    (:func:`osmnx.features_from_xml`, :func:`osmnx.graph_from_xml`). Nothing is
    downloaded.

Buildings
    Every closed way or multipolygon relation with ``building=*`` (except
    ``building=no``) becomes one row with its footprint polygon (repaired with
    :func:`shapely.make_valid` when OSM has it self-intersecting).
    ``building_id`` is ``osm-w<way id>`` or ``osm-r<relation id>``; rows are
    sorted by element type, then numeric id. Building nodes and
    ``building:part`` outlines are not buildings (parts only lend their
    ``building:levels``).

Addresses (column ``address_source``)
    ``tag``: the building's ``addr:street`` (or ``addr:place``) and
    ``addr:housenumber``, as ``f"{street}, {housenumber}"`` with the OSM street
    name kept as it is. ``node``: the same from the address nodes (nodes with
    ``addr:housenumber``) inside or on the footprint, several joined with
    ``"; "`` in node-id order. ``derived``: the name of the nearest named street
    edge of the street graph (footways, paths, cycleways, steps and tracks only
    when there is no other), plus the building's own house number when it has
    one, then ``" (derived)"``.

Kind (column ``kind``)
    - ``building=dormitory`` or ``barracks``: ``collective``.
    - residential building types (``apartments``, ``residential``, ``house``,
      ``detached``, ``semidetached_house``, ``terrace``, ``bungalow``, ``farm``,
      ``cabin``, ``static_caravan``, ``houseboat``, ``villa``): ``residential``,
      or ``mixed`` when the building has ``shop``, ``office``, ``craft`` or a
      service ``amenity`` tag, or such a point of interest (POI) node lies in its
      footprint.
    - generic buildings (``building=yes`` and values this module does not know):
      ``non_residential`` when the building has a ``shop``, ``amenity``,
      ``office``, ``craft``, ``tourism``, ``leisure``, ``healthcare``,
      ``man_made``, ``public_transport``, ``railway`` or ``power`` tag, when
      it stands in a non-residential area (``landuse`` industrial, commercial,
      retail, garages, railway, military, construction, ...; ``amenity`` school,
      kindergarten, hospital, university, parking, ... areas), or when its
      footprint is under :attr:`DensityNorms.min_generic_m2` (sheds, garages,
      kiosks) or over :attr:`DensityNorms.max_generic_m2` (factories, malls).
      Otherwise it is ``residential`` (``mixed`` with a POI node inside) **only
      if it has an address**: address tags, an address node or at least
      ``addr:housenumber``; an unaddressed
      generic building is counted ``non_residential`` (in OSM these are mostly
      outbuildings, garages and transformer boxes).
    - every other building type (``commercial``, ``retail``, ``office``,
      ``industrial``, ``school``, ``church``, ``garages``, ``shed``, ``roof``,
      ...): ``non_residential``.

Function (column ``function``)
    From the building's own tags, the POI nodes in its footprint and the area
    polygons around it, in this order of precedence: ``amenity=townhall`` or
    ``office=government`` → ``akimat``, or ``public_service_centre`` when the
    name, operator or description says so (ЦОН, МФЦ, "Мои документы", "public
    service", "Bürgerservice", ...); ``amenity=post_office`` → ``post_office``;
    ``amenity=school`` / ``building=school`` → ``school``; then ``clinic``,
    ``kindergarten``, ``office``, ``shop``, ``industrial``, ``dormitory``,
    ``hostel``; else ``""``.

Estimates (:class:`DensityNorms`)
    Non-residential buildings have 0 dwellings and 0 residents. Single-dwelling
    types (``house``, ``detached``, ...) and generic residential buildings with
    a footprint under :attr:`DensityNorms.house_max_m2` and at most two tagged
    levels have 1 dwelling. Every other residential, mixed or collective building
    has ``max(1, round(footprint m² × residential levels / m² per dwelling))``
    dwellings, with the footprint measured in the data's UTM zone; a mixed
    building's ground floor is not residential. Levels come from
    ``building:levels``, else from the highest ``building:part`` inside, else
    (for multi-dwelling buildings) from the median tagged level count of the
    file's multi-dwelling buildings when at least
    :attr:`DensityNorms.local_levels_min_tagged` have one, else from
    :attr:`DensityNorms.default_levels` (column ``floors_source``: tag, part,
    local, default). ``residents = round(dwellings × residents_per_dwelling ×
    occupancy)`` and ``households = round(dwellings × occupancy)`` (collective:
    households = residents), always rounding halves up, so a building with
    dwellings has residents and one without has none. ``entrances`` counts the
    ``entrance=*`` nodes on the outline, 1 when there is none.

Settlement
    One settlement, ``settlement_id="000000000"`` (illustrative) and the file
    name without its extensions as its name, unless given; its polygon is the
    convex hull of the buildings buffered by 100 m.

Streets
    The ``highway=*`` ways a person can walk (not motorways, construction,
    platforms, areas or ``foot=no``) as an undirected osmnx graph (every edge in
    both directions, simplified, every component kept), in the layers
    ``street_nodes`` (index ``osmid``) and ``street_edges`` (index ``u, v, key``)
    with the columns of :mod:`districting.synth`, so
    :func:`districting.streets.read_street_graph` reads them back.

Barriers and crossings
    Barriers (LineString, multi-part lines split into parts): ``waterway=river``
    and ``riverbank`` (kind ``river``), ``waterway=canal`` (``canal``), the
    outlines of ``natural=water`` polygons of at least
    :data:`MIN_WATER_AREA_M2` or tagged ``water=river/canal`` (``river``,
    ``canal`` or ``water``), ``railway=rail`` and ``light_rail`` (``railway``)
    and ``highway=motorway`` (``motorway``). Streams, trams and trunk roads are
    not barriers, nor are the parts of a barrier way in a tunnel, a culvert or on
    a bridge (they can be passed). Crossings (Point): ``railway=level_crossing``
    (``level_crossing``) and ``railway=crossing`` (``pedestrian_crossing``)
    nodes, and the points where a walkable ``highway=*`` way tagged ``bridge``
    (kind ``bridge``) or ``tunnel=yes`` (``tunnel``) crosses a barrier line (or
    ends within 5 m of it, snapped onto it). Railway bridges and tunnels are not
    crossings: people cannot walk them. Only crossings within
    :data:`CROSSING_TOLERANCE_M` of a barrier line are kept, each with the id of
    its barrier.

The same file and arguments always give the same rows in the same order.
"""

from __future__ import annotations

import bz2
import gzip
import json
import logging
import math
import re
import shutil
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from districting.errors import ConfigError, InputFileError
from districting.register import file_sha256
from districting.synth import LAYER_NAMES, write_layers

logger = logging.getLogger(__name__)

__all__ = [
    "CROSSING_TOLERANCE_M",
    "DEFAULT_SETTLEMENT_ID",
    "MIN_WATER_AREA_M2",
    "DensityNorms",
    "OsmRegister",
    "register_from_osm",
    "write_osm_register",
]

WGS84 = "EPSG:4326"
#: Settlement code used when none is given (illustrative, not an official KATO code).
DEFAULT_SETTLEMENT_ID = "000000000"
#: Buffer around the convex hull of the buildings that gives the settlement polygon.
SETTLEMENT_MARGIN_M = 100.0
#: Crossings farther than this from every barrier line are dropped.
CROSSING_TOLERANCE_M = 5.0
#: ``natural=water`` polygons smaller than this (ponds, pools) are not barriers.
MIN_WATER_AREA_M2 = 10_000.0
#: Attribution required by the ODbL.
OSM_ATTRIBUTION = "© OpenStreetMap contributors, ODbL 1.0"

_ENTRANCE_TOLERANCE_M = 1.0

# --- building types ------------------------------------------------------------------------
_COLLECTIVE_TYPES = frozenset({"dormitory", "barracks"})
_SINGLE_DWELLING_TYPES = frozenset({
    "house", "detached", "semidetached_house", "bungalow", "farm", "cabin", "static_caravan",
    "houseboat", "villa",
})
_RESIDENTIAL_TYPES = _SINGLE_DWELLING_TYPES | {"apartments", "residential", "terrace"}
_NON_RESIDENTIAL_TYPES = frozenset({
    "commercial", "retail", "office", "industrial", "warehouse", "supermarket", "kiosk",
    "school", "kindergarten", "university", "college", "hospital", "public", "civic",
    "government", "church", "chapel", "cathedral", "mosque", "temple", "synagogue", "shrine",
    "monastery", "religious", "train_station", "transportation", "garage", "garages",
    "carport", "parking", "shed", "hut", "roof", "greenhouse", "barn", "stable", "cowshed",
    "sty", "farm_auxiliary", "service", "transformer_tower", "water_tower", "storage_tank",
    "silo", "bunker", "hangar", "sports_hall", "sports_centre", "stadium", "grandstand",
    "pavilion", "hotel", "fire_station", "toilets", "boathouse", "construction", "ruins",
    "tech_cab", "gatehouse", "bridge", "manufacture", "digester", "tower", "museum",
    "conservatory", "riding_hall", "slurry_tank", "power", "container", "mall",
})
# building values for which `default_levels` is looked up as "yes"
_GENERIC_KEY = "yes"

# amenities that are street furniture or parking, not an activity inside a building
_MINOR_AMENITIES = frozenset({
    "bench", "waste_basket", "waste_disposal", "vending_machine", "atm", "parking",
    "parking_entrance", "parking_space", "bicycle_parking", "motorcycle_parking", "post_box",
    "telephone", "recycling", "drinking_water", "charging_station", "shelter", "clock",
    "fountain", "grit_bin", "hunting_stand", "emergency_phone", "bbq", "letter_box",
    "loading_dock", "water_point", "watering_place", "smoking_area",
})
# any of these tags on a generic building makes it non-residential
_NON_RESIDENTIAL_KEYS = (
    "amenity", "shop", "office", "craft", "tourism", "leisure", "healthcare", "man_made",
    "public_transport", "railway", "aeroway", "power", "military", "industrial",
)
_NON_RESIDENTIAL_LANDUSE = frozenset({
    "industrial", "commercial", "retail", "garages", "railway", "military", "construction",
    "cemetery", "religious", "depot", "port", "quarry", "landfill", "brownfield",
})
_NON_RESIDENTIAL_AREA_AMENITIES = frozenset({
    "school", "kindergarten", "college", "university", "hospital", "clinic", "parking",
    "fuel", "prison", "fire_station", "police", "townhall", "place_of_worship", "marketplace",
    "bus_station", "grave_yard",
})
_PUBLIC_SERVICE_HINT = re.compile(
    r"public[ -]service|цон|центр обслуживания населения|мфц|мои документы|многофункциональн"
    r"|госуслуг|халыққа қызмет|bürgerservice|bürgerbüro|servicecenter",
    re.IGNORECASE,
)
_FUNCTION_PRECEDENCE = (
    "akimat", "public_service_centre", "post_office", "school", "clinic", "kindergarten",
    "office", "shop", "industrial", "dormitory", "hostel",
)

# --- streets and barriers ------------------------------------------------------------------
_NOT_WALKABLE = frozenset({
    "motorway", "motorway_link", "construction", "proposed", "abandoned", "platform",
    "raceway", "razed", "bus_guideway", "escape", "rest_area", "services", "disused",
})
_MINOR_PATHS = frozenset({
    "footway", "path", "cycleway", "steps", "track", "bridleway", "corridor", "elevator",
})
_BARRIER_RAILWAYS = frozenset({"rail", "light_rail"})
_FEATURE_TAGS: dict[str, bool | str | list[str]] = {
    "building": True, "building:part": True, "addr:housenumber": True, "entrance": True,
    "shop": True, "amenity": True, "office": True, "craft": True, "landuse": True,
    "waterway": True, "natural": "water", "railway": True, "highway": True,
}

_NODE_COLUMNS = ["y", "x", "street_count", "settlement_id"]
_EDGE_COLUMNS = ["osmid", "name", "highway", "oneway", "reversed", "length", "settlement_id"]


def _default_m2_per_dwelling() -> dict[str, float]:
    return {
        "apartments": 70.0, "residential": 70.0, "yes": 70.0, "terrace": 110.0,
        "dormitory": 30.0, "barracks": 30.0,
    }


def _default_levels() -> dict[str, int]:
    return {
        "apartments": 5, "residential": 3, "yes": 3, "terrace": 2, "dormitory": 4,
        "barracks": 2, "house": 1, "detached": 1, "semidetached_house": 1, "bungalow": 1,
        "farm": 1, "cabin": 1, "static_caravan": 1, "houseboat": 1, "villa": 2,
    }


@dataclass(frozen=True)
class DensityNorms:
    """Norms that turn a footprint into dwellings and residents.

    Attributes
    ----------
    m2_per_dwelling
        Gross floor area per dwelling (flat plus its share of stairs, walls and
        corridors) by ``building`` value, for multi-dwelling buildings: apartments
        70 m², a generic residential building (``yes``, ``residential``) 70 m², a
        terrace row 110 m², a dormitory or barracks room 30 m². Values missing here
        use the ``yes`` entry.
    residents_per_dwelling
        Residents of an occupied dwelling.
    occupancy
        Share of dwellings that are occupied.
    default_levels
        Levels of a building without ``building:levels`` by ``building`` value
        (apartments 5, generic 3, houses 1, ...); missing values use ``yes``.
        Non-residential buildings without levels get 1 floor.
    house_max_m2
        A generic residential building with a smaller footprint and at most two
        levels is one house with one dwelling.
    min_generic_m2
        A generic building with a smaller footprint is non-residential.
    max_generic_m2
        A generic building with a larger footprint is non-residential.
    local_levels_min_tagged
        When at least this many multi-dwelling buildings of the file have
        ``building:levels``, their median replaces ``default_levels`` for the
        others; 0 turns this off.

    Raises
    ------
    ConfigError
        If a number is not positive, ``occupancy`` exceeds 1 or the ``yes``
        entries are missing.
    """

    m2_per_dwelling: dict[str, float] = field(default_factory=_default_m2_per_dwelling)
    residents_per_dwelling: float = 2.7
    occupancy: float = 0.95
    default_levels: dict[str, int] = field(default_factory=_default_levels)
    house_max_m2: float = 200.0
    min_generic_m2: float = 30.0
    max_generic_m2: float = 5_000.0
    local_levels_min_tagged: int = 10

    def __post_init__(self) -> None:
        for name in ("residents_per_dwelling", "occupancy", "house_max_m2", "max_generic_m2"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"DensityNorms.{name} must be a positive number, got {value!r}")
        if self.occupancy > 1:
            raise ConfigError(f"DensityNorms.occupancy must be at most 1, got {self.occupancy!r}")
        if _GENERIC_KEY not in self.m2_per_dwelling or _GENERIC_KEY not in self.default_levels:
            raise ConfigError("DensityNorms needs a 'yes' entry in m2_per_dwelling and "
                             "default_levels")
        if any(not (math.isfinite(v) and v > 0) for v in self.m2_per_dwelling.values()):
            raise ConfigError("DensityNorms.m2_per_dwelling values must be positive")
        if any(int(v) < 1 for v in self.default_levels.values()):
            raise ConfigError("DensityNorms.default_levels values must be at least 1")

    def m2(self, building: str) -> float:
        """Gross floor area per dwelling of a ``building`` value."""
        return float(self.m2_per_dwelling.get(building, self.m2_per_dwelling[_GENERIC_KEY]))

    def levels(self, building: str) -> int:
        """Default number of levels of a ``building`` value."""
        return int(self.default_levels.get(building, self.default_levels[_GENERIC_KEY]))


@dataclass
class OsmRegister:
    """A Stage-1 register skeleton imported from OSM, with an import report.

    Every layer is in EPSG:4326; ``street_nodes`` is indexed by ``osmid`` and
    ``street_edges`` by ``(u, v, key)``, as in :class:`districting.synth.SyntheticRegister`.

    Attributes
    ----------
    buildings
        One row per building footprint (Polygon or MultiPolygon) with the register
        columns plus ``address_source``, ``estimated``, ``osm_building``,
        ``floors_source`` and ``footprint_m2``.
    settlements
        One polygon: the convex hull of the buildings buffered by 100 m.
    street_nodes
        Street graph nodes.
    street_edges
        Street graph edges, both directions of every way.
    barriers
        Rivers, canals, large water bodies, railways and motorways (LineString).
    crossings
        Level crossings, bridges and tunnels (Point on a barrier line).
    metadata
        Source file, attribution and ``estimated="true"``, ``synthetic="false"``.
    report
        Counts of what was read and how it was used.
    """

    buildings: gpd.GeoDataFrame
    settlements: gpd.GeoDataFrame
    street_nodes: gpd.GeoDataFrame
    street_edges: gpd.GeoDataFrame
    barriers: gpd.GeoDataFrame
    crossings: gpd.GeoDataFrame
    metadata: dict[str, str]
    report: dict[str, int]

    def layers(self) -> dict[str, gpd.GeoDataFrame]:
        """Return the layers by name, in the order they are written."""
        return {name: getattr(self, name) for name in LAYER_NAMES}


# ---------------------------------------------------------------------------------------
# Reading the file
# ---------------------------------------------------------------------------------------


@dataclass
class _Scan:
    """What one pass over the XML found: node coordinates and walkable highway ways."""

    nodes: dict[int, tuple[str, str]] = field(default_factory=dict)
    ways: list[tuple[int, list[int], dict[str, str]]] = field(default_factory=list)
    n_nodes: int = 0
    n_ways: int = 0
    n_relations: int = 0


def _prepare_xml(path: Path, workdir: Path) -> Path:
    """An uncompressed OSM XML file with the data of ``path``, decompressing if needed."""
    if not path.exists():
        raise InputFileError(f"OSM file not found: {path}")
    if path.is_dir():
        raise InputFileError(f"OSM path is a folder, not a file: {path}")
    if path.stat().st_size == 0:
        raise InputFileError(f"OSM file is empty: {path}")
    with path.open("rb") as handle:
        head = handle.read(64)
    target = workdir / "extract.osm"
    if head.startswith(b"\x1f\x8b"):
        _decompress(gzip.open, path, target, "gzip")
    elif head.startswith(b"BZh"):
        _decompress(bz2.open, path, target, "bzip2")
    elif b"OSMHeader" in head:
        _pbf_to_xml(path, target)
    elif path.suffix.lower() in (".gz", ".bz2", ".pbf"):
        raise InputFileError(f"{path}: the file is not {path.suffix.lower()[1:]}-compressed "
                             "OSM data")
    else:
        return path
    if target.stat().st_size == 0:
        raise InputFileError(f"OSM file is empty once decompressed: {path}")
    return target


def _decompress(opener: Any, path: Path, target: Path, name: str) -> None:
    try:
        with opener(path, "rb") as source, target.open("wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
    except (OSError, EOFError) as exc:
        raise InputFileError(f"{path}: cannot decompress the {name} file ({exc})") from None


def _pbf_to_xml(path: Path, target: Path) -> None:
    try:
        import osmium
    except ImportError:
        raise InputFileError(
            f"{path}: reading .osm.pbf needs the 'osmium' package (pip install osmium)"
        ) from None
    try:
        with osmium.SimpleWriter(str(target), overwrite=True) as writer:
            for obj in osmium.FileProcessor(str(path)):
                writer.add(obj)
    except RuntimeError as exc:
        raise InputFileError(f"{path}: cannot read the PBF file ({exc})") from None


def _walkable(tags: Mapping[str, str]) -> bool:
    highway = tags.get("highway", "")
    return bool(highway) and highway not in _NOT_WALKABLE and tags.get("area") != "yes" \
        and tags.get("foot") != "no"


def _scan(xml_path: Path, source: Path) -> _Scan:
    """Check that the file is OSM XML; collect node coordinates and walkable ways."""
    scan = _Scan()
    try:
        context = ET.iterparse(xml_path, events=("start", "end"))
        _, root = next(context)
        if root.tag != "osm":
            raise InputFileError(
                f"{source}: not OSM XML (the root element is <{root.tag}>, not <osm>)"
            )
        for event, elem in context:
            if event != "end":
                continue
            if elem.tag == "node":
                scan.n_nodes += 1
                lat, lon = elem.get("lat"), elem.get("lon")
                if lat is not None and lon is not None:
                    scan.nodes[int(elem.get("id", "0"))] = (lat, lon)
                root.clear()
            elif elem.tag == "way":
                scan.n_ways += 1
                tags = {t.get("k", ""): t.get("v", "") for t in elem.iter("tag")}
                if _walkable(tags):
                    refs = [int(nd.get("ref", "0")) for nd in elem.iter("nd")]
                    scan.ways.append((int(elem.get("id", "0")), refs, tags))
                root.clear()
            elif elem.tag == "relation":
                scan.n_relations += 1
                root.clear()
    except ET.ParseError as exc:
        raise InputFileError(f"{source}: not valid OSM XML ({exc})") from None
    except StopIteration:
        raise InputFileError(f"{source}: not OSM XML (no root element)") from None
    except ValueError as exc:
        raise InputFileError(f"{source}: malformed OSM XML ({exc})") from None
    if scan.n_nodes == 0 and scan.n_ways == 0:
        raise InputFileError(f"{source}: the OSM file contains no nodes or ways")
    return scan


def _write_street_xml(scan: _Scan, target: Path) -> int:
    """Write the walkable ways and their nodes as OSM XML; return the number of ways."""
    used: set[int] = set()
    ways: list[tuple[int, list[int], dict[str, str]]] = []
    for way_id, refs, tags in scan.ways:
        present = [r for r in refs if r in scan.nodes]
        if len(present) >= 2:
            ways.append((way_id, present, tags))
            used.update(present)
    with target.open("w", encoding="utf-8") as out:
        out.write("<?xml version='1.0' encoding='UTF-8'?>\n")
        out.write("<osm version='0.6' generator='districting.osm'>\n")
        for node_id in sorted(used):
            lat, lon = scan.nodes[node_id]
            out.write(f"<node id='{node_id}' lat={quoteattr(lat)} lon={quoteattr(lon)}/>\n")
        for way_id, refs, tags in sorted(ways, key=lambda w: w[0]):
            out.write(f"<way id='{way_id}'>")
            out.writelines(f"<nd ref='{r}'/>" for r in refs)
            out.writelines(f"<tag k={quoteattr(k)} v={quoteattr(v)}/>"
                           for k, v in sorted(tags.items()))
            out.write("</way>\n")
        out.write("</osm>\n")
    return len(ways)


def _read_features(xml_path: Path, source: Path) -> gpd.GeoDataFrame:
    import osmnx

    try:
        frame = osmnx.features_from_xml(xml_path, tags=_FEATURE_TAGS)
    except Exception as exc:  # osmnx raises InsufficientResponseError, ValueError, ...
        raise InputFileError(f"{source}: no usable OSM features ({exc})") from None
    if len(frame) == 0:
        raise InputFileError(f"{source}: no usable OSM features")
    if frame.crs is None:
        frame = frame.set_crs(WGS84)
    elements = np.asarray(frame.index.get_level_values(0), dtype=object)
    ids = np.asarray(frame.index.get_level_values(1), dtype=np.int64)
    rank = np.select([elements == "node", elements == "relation"], [0, 1], 2)
    order = np.lexsort((ids, rank))
    return frame.iloc[order]


# ---------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


def _tag(frame: pd.DataFrame, key: str) -> np.ndarray:
    """A tag's values as an object array of stripped ``str`` ("" where missing)."""
    if key not in frame.columns:
        return np.full(len(frame), "", dtype=object)
    return np.array(
        ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip()
         for v in frame[key]],
        dtype=object,
    )


def _levels(text: str) -> int | None:
    """``building:levels`` as a whole number ≥ 1 (the largest of "5;9", "2.5" → 2)."""
    numbers = [float(m) for m in re.findall(r"\d+(?:\.\d+)?", text.replace(",", "."))]
    if not numbers:
        return None
    value = int(max(numbers))
    return value if 1 <= value <= 200 else None


def _osm_ids(frame: pd.DataFrame) -> list[str]:
    letters = {"node": "n", "way": "w", "relation": "r"}
    return [f"osm-{letters.get(str(e), str(e)[:1])}{int(i)}" for e, i in frame.index]


def _polygonal(geometry: Any) -> tuple[Any, bool]:
    """A valid Polygon/MultiPolygon for ``geometry`` and whether it had to be repaired."""
    if geometry is None or geometry.is_empty:
        return None, False
    if geometry.is_valid and geometry.geom_type in ("Polygon", "MultiPolygon"):
        return geometry, False
    fixed = shapely.make_valid(geometry)
    polygons = [g for g in shapely.get_parts(fixed) if g.geom_type in ("Polygon",
                                                                      "MultiPolygon")]
    if not polygons:
        return None, True
    merged = shapely.union_all(polygons)
    if merged.geom_type not in ("Polygon", "MultiPolygon") or merged.is_empty:
        return None, True
    return merged, True


def _address(street: str, place: str, housenumber: str) -> str:
    where = street or place
    return f"{where}, {housenumber}" if where and housenumber else ""


def _obj(values: Iterable[Any]) -> pd.Series:
    return pd.Series(list(values), dtype=object)


def _first(value: Any, default: Any) -> Any:
    """A single value from an osmnx attribute that may be a list (sorted, then first)."""
    if isinstance(value, list):
        values = sorted((v for v in value if v is not None), key=str)
        return values[0] if values else default
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return default
    return value


def _poi_function(
    amenity: str, office: str, shop: str, building: str, tourism: str, names: str
) -> str:
    """The register function of one OSM object from its tags ("" when none)."""
    if amenity == "townhall" or office == "government":
        return "public_service_centre" if _PUBLIC_SERVICE_HINT.search(names) else "akimat"
    if _PUBLIC_SERVICE_HINT.search(names) and (amenity or office):
        return "public_service_centre"
    if amenity == "post_office":
        return "post_office"
    if amenity == "school" or building == "school":
        return "school"
    if amenity in ("clinic", "doctors", "hospital") or building == "hospital":
        return "clinic"
    if amenity == "kindergarten" or building == "kindergarten":
        return "kindergarten"
    if office:
        return "office"
    if shop:
        return "shop"
    if building in ("industrial", "warehouse", "manufacture"):
        return "industrial"
    if building == "dormitory":
        return "dormitory"
    if tourism == "hostel":
        return "hostel"
    return ""


def _best_function(candidates: Iterable[str]) -> str:
    present = {c for c in candidates if c}
    return next((f for f in _FUNCTION_PRECEDENCE if f in present), "")


def _functions(frame: pd.DataFrame) -> list[str]:
    amenity, office, shop = _tag(frame, "amenity"), _tag(frame, "office"), _tag(frame, "shop")
    building, tourism = _tag(frame, "building"), _tag(frame, "tourism")
    names = [" ".join(parts) for parts in zip(
        _tag(frame, "name"), _tag(frame, "official_name"), _tag(frame, "operator"),
        _tag(frame, "description"), strict=True)]
    return [
        _poi_function(a, o, s, b, t, n)
        for a, o, s, b, t, n in zip(amenity, office, shop, building, tourism, names, strict=True)
    ]


def _activity(frame: pd.DataFrame) -> np.ndarray:
    """True where an object has a shop, office, craft or service-amenity tag."""
    amenity = _tag(frame, "amenity")
    service = np.array([bool(a) and a not in _MINOR_AMENITIES for a in amenity], dtype=bool)
    return (service | (_tag(frame, "shop") != "") | (_tag(frame, "office") != "")
            | (_tag(frame, "craft") != ""))


def _containing(points: np.ndarray, polygons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(point index, polygon index)`` with the point in or on the polygon."""
    if len(points) == 0 or len(polygons) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    tree = shapely.STRtree(polygons)
    hits = tree.query(points, predicate="intersects")
    return hits[0], hits[1]


# ---------------------------------------------------------------------------------------
# Buildings
# ---------------------------------------------------------------------------------------


@dataclass
class _Context:
    """Features other than buildings, in the metric CRS, that buildings are matched with."""

    address_points: np.ndarray
    address_text: list[str]
    poi_points: np.ndarray
    poi_activity: np.ndarray
    poi_function: list[str]
    entrance_points: np.ndarray
    part_polygons: np.ndarray
    part_levels: list[int | None]
    nonres_areas: np.ndarray
    area_polygons: np.ndarray
    area_function: list[str]
    streets: np.ndarray  # named street lines
    street_names: list[str]
    minor_streets: np.ndarray
    minor_street_names: list[str]


def _context(features: gpd.GeoDataFrame, metric: CRS, edges: gpd.GeoDataFrame,
             report: dict[str, int]) -> _Context:
    elements = np.asarray(features.index.get_level_values(0), dtype=object)
    geoms = features.geometry.to_numpy()
    kinds = shapely.get_type_id(geoms)
    polygonal = np.isin(kinds, (3, 6))
    is_node = elements == "node"
    building = _tag(features, "building")
    has_building = (building != "") & (building != "no")
    projected = features.geometry.to_crs(metric).to_numpy()

    addr_mask = is_node & (_tag(features, "addr:housenumber") != "")
    addr_frame = features[addr_mask]
    addr_text = [
        _address(s, p, h) for s, p, h in zip(
            _tag(addr_frame, "addr:street"), _tag(addr_frame, "addr:place"),
            _tag(addr_frame, "addr:housenumber"), strict=True)
    ]
    keep = np.array([bool(t) for t in addr_text], dtype=bool)
    report["address_nodes"] = int(addr_mask.sum())

    poi_mask = is_node  # every tagged node, address nodes included
    poi_frame = features[poi_mask]
    poi_activity = _activity(poi_frame)
    poi_function = _functions(poi_frame)

    entrance_mask = is_node & (_tag(features, "entrance") != "")

    part_mask = polygonal & ~has_building & (_tag(features, "building:part") != "")
    part_frame = features[part_mask]
    part_levels = [_levels(v) for v in _tag(part_frame, "building:levels")]

    area_mask = polygonal & ~has_building
    landuse = _tag(features, "landuse")
    amenity = _tag(features, "amenity")
    nonres = area_mask & (np.isin(landuse, list(_NON_RESIDENTIAL_LANDUSE))
                          | np.isin(amenity, list(_NON_RESIDENTIAL_AREA_AMENITIES)))
    func_area_mask = area_mask & (amenity != "")
    area_frame = features[func_area_mask]

    names = edges["name"].to_numpy(dtype=object) if len(edges) else np.empty(0, dtype=object)
    highway = edges["highway"].to_numpy(dtype=object) if len(edges) else names
    edge_geoms = (edges.geometry.to_crs(metric).to_numpy() if len(edges)
                  else np.empty(0, dtype=object))
    named = np.array([bool(n) for n in names], dtype=bool)
    major = named & ~np.isin(highway, list(_MINOR_PATHS))
    return _Context(
        address_points=projected[addr_mask][keep],
        address_text=[t for t in addr_text if t],
        poi_points=projected[poi_mask],
        poi_activity=poi_activity,
        poi_function=poi_function,
        entrance_points=projected[entrance_mask],
        part_polygons=projected[part_mask],
        part_levels=part_levels,
        nonres_areas=projected[nonres],
        area_polygons=projected[func_area_mask],
        area_function=_functions(area_frame),
        streets=edge_geoms[major],
        street_names=[str(n) for n in names[major]],
        minor_streets=edge_geoms[named],
        minor_street_names=[str(n) for n in names[named]],
    )


def _nearest_names(points: np.ndarray, lines: np.ndarray, names: list[str]) -> list[str]:
    if len(lines) == 0:
        return [""] * len(points)
    tree = shapely.STRtree(lines)
    pairs = tree.query_nearest(points, all_matches=True)
    best: dict[int, int] = {}
    for p, line in zip(pairs[0].tolist(), pairs[1].tolist(), strict=True):
        if p not in best or line < best[p]:
            best[p] = line
    return [names[best[i]] if i in best else "" for i in range(len(points))]


def _buildings(
    features: gpd.GeoDataFrame,
    metric: CRS,
    context: _Context,
    *,
    settlement_id: str,
    settlement_name: str,
    norms: DensityNorms,
    source: Path,
    report: dict[str, int],
) -> gpd.GeoDataFrame:
    elements = np.asarray(features.index.get_level_values(0), dtype=object)
    building_tag = _tag(features, "building")
    candidate = (elements != "node") & (building_tag != "") & (building_tag != "no")
    kinds = shapely.get_type_id(features.geometry.to_numpy())
    polygonal = np.isin(kinds, (3, 6))
    report["buildings_read"] = int(candidate.sum())
    report["buildings_not_polygons"] = int((candidate & ~polygonal).sum())
    frame = features[candidate & polygonal]
    repaired = 0
    geoms: list[Any] = []
    keep: list[bool] = []
    for geometry in frame.geometry:
        fixed, was_repaired = _polygonal(geometry)
        repaired += int(was_repaired)
        geoms.append(fixed)
        keep.append(fixed is not None)
    report["buildings_repaired"] = repaired
    report["buildings_invalid_dropped"] = keep.count(False)
    mask = np.array(keep, dtype=bool)
    frame = frame[mask]
    wgs = np.array([g for g, k in zip(geoms, keep, strict=True) if k], dtype=object)
    if len(frame) == 0:
        raise InputFileError(f"{source}: the OSM file has no building footprints")
    n = len(frame)
    projected = gpd.GeoSeries(wgs, crs=WGS84).to_crs(metric).to_numpy()
    area = shapely.area(projected)
    inside = shapely.point_on_surface(projected)

    btype = _tag(frame, "building")
    hn = _tag(frame, "addr:housenumber")
    tag_address = [_address(s, p, h) for s, p, h in zip(
        _tag(frame, "addr:street"), _tag(frame, "addr:place"), hn, strict=True)]

    # address nodes in footprints
    node_address: list[list[str]] = [[] for _ in range(n)]
    point_idx, bld_idx = _containing(context.address_points, projected)
    matched: set[int] = set()
    for p, b in sorted(zip(point_idx.tolist(), bld_idx.tolist(), strict=True)):
        text = context.address_text[p]
        matched.add(p)
        if text not in node_address[b]:
            node_address[b].append(text)
    report["address_nodes_matched"] = len(matched)

    # POIs in footprints
    poi_activity = np.zeros(n, dtype=bool)
    poi_functions: list[list[str]] = [[] for _ in range(n)]
    point_idx, bld_idx = _containing(context.poi_points, projected)
    for p, b in zip(point_idx.tolist(), bld_idx.tolist(), strict=True):
        poi_activity[b] |= bool(context.poi_activity[p])
        poi_functions[b].append(context.poi_function[p])

    # entrances on outlines
    entrances = np.ones(n, dtype=np.int64)
    if len(context.entrance_points):
        tree = shapely.STRtree(context.entrance_points)
        b_idx = tree.query(shapely.boundary(projected), predicate="dwithin",
                           distance=_ENTRANCE_TOLERANCE_M)[0]
        counts = np.bincount(b_idx, minlength=n)
        entrances = np.maximum(entrances, counts.astype(np.int64))

    # levels from tags, then from building parts
    levels: list[int | None] = [_levels(v) for v in _tag(frame, "building:levels")]
    source_of_levels = ["tag" if v is not None else "" for v in levels]
    part_pts = shapely.point_on_surface(context.part_polygons) if len(
        context.part_polygons) else np.empty(0, dtype=object)
    point_idx, bld_idx = _containing(part_pts, projected)
    part_max: dict[int, int] = {}
    for p, b in zip(point_idx.tolist(), bld_idx.tolist(), strict=True):
        value = context.part_levels[p]
        if value is not None:
            part_max[b] = max(part_max.get(b, 0), value)
    for b, value in part_max.items():
        if levels[b] is None:
            levels[b] = value
            source_of_levels[b] = "part"

    # areas around buildings
    in_nonres = np.zeros(n, dtype=bool)
    in_nonres[_containing(inside, context.nonres_areas)[0]] = True
    area_functions: list[list[str]] = [[] for _ in range(n)]
    point_idx, area_idx = _containing(inside, context.area_polygons)
    for b, a in zip(point_idx.tolist(), area_idx.tolist(), strict=True):
        area_functions[b].append(context.area_function[a])

    own_activity = _activity(frame)
    generic_nonres_tags = own_activity.copy()
    for key in _NON_RESIDENTIAL_KEYS:
        generic_nonres_tags |= _tag(frame, key) != ""
    own_function = _functions(frame)

    # kind and estimate profile per building
    kind: list[str] = []
    profile: list[str] = []  # "none", "single", "multi"
    for i in range(n):
        t = str(btype[i])
        has_address = bool(tag_address[i] or node_address[i] or hn[i])
        if t in _COLLECTIVE_TYPES:
            kind.append("collective")
            profile.append("multi")
        elif t in _RESIDENTIAL_TYPES:
            kind.append("mixed" if own_activity[i] or poi_activity[i] else "residential")
            profile.append("single" if t in _SINGLE_DWELLING_TYPES else "multi")
        elif (t in _NON_RESIDENTIAL_TYPES or generic_nonres_tags[i] or in_nonres[i]
              or not has_address or area[i] < norms.min_generic_m2
              or area[i] > norms.max_generic_m2):
            kind.append("non_residential")
            profile.append("none")
        else:
            kind.append("mixed" if poi_activity[i] else "residential")
            profile.append("multi")
        tagged = levels[i]
        if (profile[i] == "multi" and t not in _COLLECTIVE_TYPES | {"apartments", "terrace"}
                and area[i] < norms.house_max_m2 and (tagged is None or tagged <= 2)):
            profile[i] = "single"

    # local median of tagged levels for multi-dwelling buildings
    tagged_multi = [levels[i] for i in range(n)
                    if profile[i] == "multi" and source_of_levels[i] == "tag"]
    local_levels: int | None = None
    if norms.local_levels_min_tagged and len(tagged_multi) >= norms.local_levels_min_tagged:
        local_levels = _round_half_up(float(np.median(np.array(tagged_multi, dtype=float))))
    report["local_levels"] = local_levels or 0

    floors = np.ones(n, dtype=np.int64)
    dwellings = np.zeros(n, dtype=np.int64)
    residents = np.zeros(n, dtype=np.int64)
    households = np.zeros(n, dtype=np.int64)
    for i in range(n):
        t = str(btype[i])
        value = levels[i]
        if value is None:
            if profile[i] == "none":
                value = 1
            elif profile[i] == "multi" and local_levels is not None:
                value, source_of_levels[i] = local_levels, "local"
            elif profile[i] == "single" and t not in norms.default_levels:
                value = norms.levels("house")
            else:
                value = norms.levels(t)
            if not source_of_levels[i]:
                source_of_levels[i] = "default"
        floors[i] = value
        if profile[i] == "none":
            continue
        if profile[i] == "single":
            d = 1
        else:
            residential_floors = value - 1 if kind[i] == "mixed" and value >= 2 else value
            d = max(1, _round_half_up(float(area[i]) * residential_floors / norms.m2(t)))
        dwellings[i] = d
        residents[i] = _round_half_up(d * norms.residents_per_dwelling * norms.occupancy)
        households[i] = (residents[i] if kind[i] == "collective"
                         else max(1, _round_half_up(d * norms.occupancy)))

    # addresses
    street_name = _nearest_names(inside, context.streets, context.street_names)
    fallback = _nearest_names(inside, context.minor_streets, context.minor_street_names)
    address: list[str] = []
    address_source: list[str] = []
    for i in range(n):
        if tag_address[i]:
            address.append(tag_address[i])
            address_source.append("tag")
        elif node_address[i]:
            address.append("; ".join(node_address[i]))
            address_source.append("node")
        else:
            street = street_name[i] or fallback[i] or "unnamed street"
            number = f", {hn[i]}" if hn[i] else ""
            address.append(f"{street}{number} (derived)")
            address_source.append("derived")

    function = [
        _best_function([own_function[i], *poi_functions[i], *area_functions[i]])
        for i in range(n)
    ]
    for i in range(n):
        if function[i] == "dormitory" and kind[i] != "collective":
            function[i] = ""

    result = gpd.GeoDataFrame(
        {
            "building_id": _obj(_osm_ids(frame)),
            "settlement_id": _obj([settlement_id] * n),
            "settlement_name": _obj([settlement_name] * n),
            "address": _obj(address),
            "kind": _obj(kind),
            "dwellings": dwellings,
            "residents": residents,
            "households": households,
            "floors": floors,
            "entrances": entrances,
            "function": _obj(function),
            "address_source": _obj(address_source),
            "estimated": _obj(["yes"] * n),
            "osm_building": _obj(btype),
            "floors_source": _obj(source_of_levels),
            "footprint_m2": np.round(area.astype(float), 1),
        },
        geometry=wgs,
        crs=WGS84,
    )
    for name in ("tag", "node", "derived"):
        report[f"address_{name}"] = address_source.count(name)
    for name in ("residential", "mixed", "collective", "non_residential"):
        report[name] = kind.count(name)
    report["levels_tagged"] = source_of_levels.count("tag")
    report["levels_from_parts"] = source_of_levels.count("part")
    report["estimated_buildings"] = int((dwellings > 0).sum())
    report["estimated_dwellings"] = int(dwellings.sum())
    report["estimated_residents"] = int(residents.sum())
    report["candidate_points"] = sum(
        f in ("school", "post_office", "public_service_centre", "akimat") for f in function)
    return result


# ---------------------------------------------------------------------------------------
# Streets
# ---------------------------------------------------------------------------------------


def _empty_streets() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    nodes = gpd.GeoDataFrame(
        {"y": pd.Series(dtype=float), "x": pd.Series(dtype=float),
         "street_count": pd.Series(dtype=np.int64), "settlement_id": pd.Series(dtype=object)},
        geometry=gpd.GeoSeries([], crs=WGS84), crs=WGS84,
    )
    nodes.index = pd.Index(np.empty(0, dtype=np.int64), name="osmid")
    edges = gpd.GeoDataFrame(
        {"osmid": pd.Series(dtype=np.int64), "name": pd.Series(dtype=object),
         "highway": pd.Series(dtype=object), "oneway": pd.Series(dtype=bool),
         "reversed": pd.Series(dtype=bool), "length": pd.Series(dtype=float),
         "settlement_id": pd.Series(dtype=object)},
        geometry=gpd.GeoSeries([], crs=WGS84), crs=WGS84,
    )
    edges.index = pd.MultiIndex.from_arrays(
        [np.empty(0, dtype=np.int64)] * 3, names=["u", "v", "key"])
    return nodes, edges


def _streets(
    scan: _Scan, workdir: Path, settlement_id: str
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The walkable street graph as osmnx-style node and edge layers (synth's columns)."""
    street_xml = workdir / "streets.osm"
    if _write_street_xml(scan, street_xml) == 0:
        return _empty_streets()
    import osmnx

    graph = osmnx.graph_from_xml(street_xml, bidirectional=True, simplify=True,
                                 retain_all=True)
    if graph.number_of_edges() == 0:
        return _empty_streets()
    counts = osmnx.stats.count_streets_per_node(graph)
    raw_nodes, raw_edges = osmnx.graph_to_gdfs(graph)
    raw_nodes = raw_nodes.sort_index()
    raw_nodes["street_count"] = [int(counts.get(node, 0)) for node in raw_nodes.index]
    nodes = gpd.GeoDataFrame(
        {
            "y": raw_nodes["y"].to_numpy(dtype=float),
            "x": raw_nodes["x"].to_numpy(dtype=float),
            "street_count": raw_nodes["street_count"].to_numpy(dtype=np.int64),
            "settlement_id": _obj([settlement_id] * len(raw_nodes)),
        },
        geometry=raw_nodes.geometry.to_numpy(),
        crs=WGS84,
    )
    nodes.index = pd.Index(raw_nodes.index.to_numpy(dtype=np.int64), name="osmid")

    def column(name: str, default: Any) -> list[Any]:
        if name not in raw_edges.columns:
            return [default] * len(raw_edges)
        return [_first(v, default) for v in raw_edges[name]]

    edges = gpd.GeoDataFrame(
        {
            "osmid": np.array(column("osmid", 0), dtype=np.int64),
            "name": _obj(str(v) for v in column("name", "")),
            "highway": _obj(str(v) for v in column("highway", "")),
            "oneway": np.zeros(len(raw_edges), dtype=bool),
            "reversed": np.array([bool(v) for v in column("reversed", False)], dtype=bool),
            "length": np.round(np.array(column("length", 0.0), dtype=float), 3),
            "settlement_id": _obj([settlement_id] * len(raw_edges)),
        },
        geometry=raw_edges.geometry.to_numpy(),
        crs=WGS84,
    )
    edges.index = pd.MultiIndex.from_arrays(
        [raw_edges.index.get_level_values(level).to_numpy(dtype=np.int64)
         for level in ("u", "v", "key")],
        names=["u", "v", "key"],
    )
    u = edges.index.get_level_values("u").to_numpy()
    v = edges.index.get_level_values("v").to_numpy()
    k = edges.index.get_level_values("key").to_numpy()
    order = np.lexsort((edges["osmid"].to_numpy(), k, v, u))
    return nodes, edges.iloc[order]


# ---------------------------------------------------------------------------------------
# Barriers and crossings
# ---------------------------------------------------------------------------------------


def _barriers(
    features: gpd.GeoDataFrame, metric: CRS
) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Barrier lines in EPSG:4326 and the same lines in the metric CRS."""
    elements = np.asarray(features.index.get_level_values(0), dtype=object)
    waterway, natural = _tag(features, "waterway"), _tag(features, "natural")
    water, railway = _tag(features, "water"), _tag(features, "railway")
    highway, tunnel, bridge = (_tag(features, "highway"), _tag(features, "tunnel"),
                               _tag(features, "bridge"))
    names = _tag(features, "name")
    ids = _osm_ids(features)
    geoms = features.geometry.to_numpy()
    projected = features.geometry.to_crs(metric).to_numpy()
    types = shapely.get_type_id(geoms)
    lines_type = np.isin(types, (1, 5))
    polygon_type = np.isin(types, (3, 6))
    passable = ((tunnel != "") & (tunnel != "no")) | ((bridge != "") & (bridge != "no"))

    rows: list[tuple[str, str, str, Any]] = []
    for i in range(len(features)):
        if elements[i] == "node":
            continue
        kind = ""
        outline = False
        if lines_type[i] and not passable[i]:
            if waterway[i] == "river":
                kind = "river"
            elif waterway[i] == "canal":
                kind = "canal"
            elif railway[i] in _BARRIER_RAILWAYS:
                kind = "railway"
            elif highway[i] == "motorway":
                kind = "motorway"
        elif polygon_type[i]:
            if waterway[i] == "riverbank":
                kind, outline = "river", True
            elif natural[i] == "water" and (
                    water[i] in ("river", "canal", "riverbank")
                    or shapely.area(projected[i]) >= MIN_WATER_AREA_M2):
                kind = "canal" if water[i] == "canal" else (
                    "river" if water[i] in ("river", "riverbank") else "water")
                outline = True
        if not kind:
            continue
        geometry = shapely.boundary(geoms[i]) if outline else geoms[i]
        for part in shapely.get_parts(shapely.line_merge(geometry) if outline else geometry):
            if part.geom_type == "LineString" and not part.is_empty and part.length > 0:
                rows.append((ids[i], kind, str(names[i]), part))
    multi = {bid for bid, *_ in rows}
    counts = {bid: sum(1 for r in rows if r[0] == bid) for bid in multi}
    seen: dict[str, int] = {}
    barrier_ids = []
    for bid, *_ in rows:
        seen[bid] = seen.get(bid, 0) + 1
        barrier_ids.append(bid if counts[bid] == 1 else f"{bid}-{seen[bid]}")
    frame = gpd.GeoDataFrame(
        {
            "barrier_id": _obj(barrier_ids),
            "kind": _obj(r[1] for r in rows),
            "name": _obj(r[2] for r in rows),
        },
        geometry=gpd.GeoSeries([r[3] for r in rows], crs=WGS84).values,
        crs=WGS84,
    )
    metric_lines = (frame.geometry.to_crs(metric).to_numpy() if len(frame)
                    else np.empty(0, dtype=object))
    return frame, metric_lines


def _crossings(
    features: gpd.GeoDataFrame, barriers: gpd.GeoDataFrame, lines: np.ndarray, metric: CRS
) -> gpd.GeoDataFrame:
    """Level crossings and bridge/tunnel crossings on the barrier lines."""
    rows: list[tuple[str, str, str, Any]] = []  # id, kind, barrier_id, metric point
    if len(lines):
        elements = np.asarray(features.index.get_level_values(0), dtype=object)
        railway, highway = _tag(features, "railway"), _tag(features, "highway")
        bridge, tunnel = _tag(features, "bridge"), _tag(features, "tunnel")
        ids = _osm_ids(features)
        projected = features.geometry.to_crs(metric).to_numpy()
        types = shapely.get_type_id(projected)
        barrier_ids = barriers["barrier_id"].tolist()
        tree = shapely.STRtree(lines)
        for i in np.flatnonzero((elements == "node")
                                & np.isin(railway, ["level_crossing", "crossing"])):
            point = projected[i]
            near = tree.query(point, predicate="dwithin", distance=CROSSING_TOLERANCE_M)
            if len(near) == 0:
                continue
            distances = shapely.distance(point, lines[near])
            j = int(near[np.lexsort((near, distances))[0]])
            kind = "level_crossing" if railway[i] == "level_crossing" else "pedestrian_crossing"
            rows.append((ids[i], kind, barrier_ids[j], point))
        is_bridge = (bridge != "") & (bridge != "no")
        is_tunnel = tunnel == "yes"
        walkable = (highway != "") & ~np.isin(highway, list(_NOT_WALKABLE))
        for i in np.flatnonzero((elements == "way") & walkable & (is_bridge | is_tunnel)
                                & (types == 1)):
            way = projected[i]
            kind = "bridge" if is_bridge[i] else "tunnel"
            points: list[tuple[float, str, Any]] = []
            for j in sorted(tree.query(way, predicate="dwithin",
                                       distance=CROSSING_TOLERANCE_M).tolist()):
                line = lines[j]
                hits = [g if g.geom_type == "Point" else g.interpolate(0.5, normalized=True)
                        for g in shapely.get_parts(shapely.intersection(way, line))
                        if not g.is_empty]
                if not hits:
                    for end in shapely.get_parts(shapely.boundary(way)):
                        if shapely.distance(end, line) <= CROSSING_TOLERANCE_M:
                            hits.append(line.interpolate(line.project(end)))
                points.extend((way.project(p), barrier_ids[j], p) for p in hits)
            seen: set[tuple[str, float, float]] = set()
            k = 0
            for _, barrier_id, point in sorted(points, key=lambda t: (t[0], t[1])):
                key = (barrier_id, round(point.x, 2), round(point.y, 2))
                if key in seen:
                    continue
                seen.add(key)
                k += 1
                rows.append((f"{ids[i]}-{k}", kind, barrier_id, point))
    points_wgs = (gpd.GeoSeries([r[3] for r in rows], crs=metric).to_crs(WGS84).values
                  if rows else gpd.GeoSeries([], crs=WGS84).values)
    return gpd.GeoDataFrame(
        {
            "crossing_id": _obj(r[0] for r in rows),
            "kind": _obj(r[1] for r in rows),
            "barrier_id": _obj(r[2] for r in rows),
        },
        geometry=points_wgs,
        crs=WGS84,
    )


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".bz2", ".pbf", ".osm", ".xml"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return name


def register_from_osm(
    path: str | Path,
    *,
    settlement_name: str | None = None,
    settlement_id: str | None = None,
    density: DensityNorms | None = None,
) -> OsmRegister:
    """Build a Stage-1 register skeleton from an OpenStreetMap extract.

    The rules (addresses, kinds, functions, estimates, barriers, crossings) are
    described in the module docstring.

    Parameters
    ----------
    path
        An ``.osm``, ``.osm.gz``, ``.osm.bz2`` or ``.osm.pbf`` file (recognised by
        content). ``.osm.pbf`` needs the ``osmium`` package.
    settlement_name
        Name of the one settlement; default: the file name without extensions.
    settlement_id
        Code of the settlement; default :data:`DEFAULT_SETTLEMENT_ID`
        (illustrative).
    density
        Norms for the dwelling and resident estimates; default :class:`DensityNorms`.

    Returns
    -------
    OsmRegister
        The layers in EPSG:4326, the metadata and an import report.

    Raises
    ------
    InputFileError
        If the file is missing, empty, not OSM data or has no building footprints.
    """
    started = time.monotonic()
    source = Path(path)
    norms = density or DensityNorms()
    code = DEFAULT_SETTLEMENT_ID if settlement_id is None else str(settlement_id).strip()
    name = _stem(source) if settlement_name is None else str(settlement_name).strip()
    if not code:
        raise ConfigError("settlement_id must not be empty")
    if not name:
        raise ConfigError("settlement_name must not be empty")
    report: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="districting-osm-") as tmp:
        workdir = Path(tmp)
        xml_path = _prepare_xml(source, workdir)
        scan = _scan(xml_path, source)
        report.update(osm_nodes=scan.n_nodes, osm_ways=scan.n_ways,
                      osm_relations=scan.n_relations)
        features = _read_features(xml_path, source)
        building_tag = _tag(features, "building")
        elements = np.asarray(features.index.get_level_values(0), dtype=object)
        if not ((building_tag != "") & (building_tag != "no") & (elements != "node")).any():
            raise InputFileError(f"{source}: the OSM file has no buildings")
        street_nodes, street_edges = _streets(scan, workdir, code)
    buildings_area = features[(building_tag != "") & (building_tag != "no")]
    metric = CRS(buildings_area.estimate_utm_crs())
    context = _context(features, metric, street_edges, report)
    buildings = _buildings(
        features, metric, context, settlement_id=code, settlement_name=name, norms=norms,
        source=source, report=report,
    )
    projected = buildings.geometry.to_crs(metric).to_numpy()
    hull = shapely.multipoints(shapely.get_coordinates(projected)).convex_hull
    polygon = gpd.GeoSeries([hull.buffer(SETTLEMENT_MARGIN_M)], crs=metric).to_crs(WGS84)
    settlements = gpd.GeoDataFrame(
        {"settlement_id": _obj([code]), "settlement_name": _obj([name]),
         "kind": _obj(["settlement"])},
        geometry=polygon.values, crs=WGS84,
    )
    barriers, lines = _barriers(features, metric)
    crossings = _crossings(features, barriers, lines, metric)
    report["street_nodes"] = len(street_nodes)
    report["street_edges"] = len(street_edges)
    report["barriers"] = len(barriers)
    report["crossings"] = len(crossings)
    for kind in ("level_crossing", "pedestrian_crossing", "bridge", "tunnel"):
        report[f"crossings_{kind}"] = int((crossings["kind"] == kind).sum())
    report["buildings"] = len(buildings)
    metadata = {
        "synthetic": "false",
        "estimated": "true",
        "generator": "districting.osm",
        "generator_version": "1",
        "source": source.name,
        "source_sha256": file_sha256(source),
        "osm": OSM_ATTRIBUTION,
        "crs": WGS84,
        "metric_crs": metric.to_string(),
        "settlement_id": code,
        "settlement_name": name,
        "total_residents": str(report["estimated_residents"]),
        "density_norms": json.dumps(asdict(norms), sort_keys=True, ensure_ascii=False),
        "description": (
            f"Stage-1 register SKELETON imported from OpenStreetMap ({source.name}; "
            f"{OSM_ATTRIBUTION}). Buildings, addresses, streets and barriers come from OSM; "
            "dwellings, residents and households are ESTIMATES from footprint area and "
            "levels, to be replaced by the Stage-1 address listing. The settlement code "
            "is illustrative unless one was given."
        ),
    }
    logger.info(
        "imported %s: %d buildings (%d tag, %d node, %d derived addresses), %d residential "
        "or mixed, %d estimated residents, %d barriers, %d crossings in %.1f s",
        source.name, report["buildings"], report["address_tag"], report["address_node"],
        report["address_derived"], report["residential"] + report["mixed"],
        report["estimated_residents"], report["barriers"], report["crossings"],
        time.monotonic() - started,
    )
    return OsmRegister(
        buildings=buildings, settlements=settlements, street_nodes=street_nodes,
        street_edges=street_edges, barriers=barriers, crossings=crossings,
        metadata=metadata, report=report,
    )


def write_osm_register(register: OsmRegister, path: str | Path) -> Path:
    """Write an imported register as a GeoPackage in the layout of ``districting.synth``.

    The write is atomic and byte-reproducible (see :func:`districting.synth.write_layers`).

    Parameters
    ----------
    register
        The register from :func:`register_from_osm`.
    path
        Destination ``.gpkg`` file; replaced if it exists.

    Returns
    -------
    Path
        The path written.
    """
    written = write_layers(register.layers(), register.metadata, path)
    logger.debug("wrote OSM register to %s", written)
    return written
