"""The register's building rows: footprints, their addresses, kinds, functions and estimates."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS

from districting.errors import InputFileError
from districting.io.osm.source import WGS84, _osm_ids
from districting.io.osm.tags import (
    _COLLECTIVE_TYPES,
    _MINOR_PATHS,
    _NON_RESIDENTIAL_AREA_AMENITIES,
    _NON_RESIDENTIAL_KEYS,
    _NON_RESIDENTIAL_LANDUSE,
    _NON_RESIDENTIAL_TYPES,
    _RESIDENTIAL_TYPES,
    _SINGLE_DWELLING_TYPES,
    DensityNorms,
    _activity,
    _address,
    _best_function,
    _functions,
    _levels,
    _obj,
    _tag,
)

_ENTRANCE_TOLERANCE_M = 1.0


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


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


def _containing(points: np.ndarray, polygons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(point index, polygon index)`` with the point in or on the polygon."""
    if len(points) == 0 or len(polygons) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    tree = shapely.STRtree(polygons)
    hits = tree.query(points, predicate="intersects")
    return hits[0], hits[1]


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
    """The building rows of the register, one per footprint, sorted as ``features`` is."""
    frame, wgs = _footprints(features, source, report)
    n = len(frame)
    projected = gpd.GeoSeries(wgs, crs=WGS84).to_crs(metric).to_numpy()
    area = shapely.area(projected)
    inside = shapely.point_on_surface(projected)

    btype = _tag(frame, "building")
    hn = _tag(frame, "addr:housenumber")
    tag_address = [_address(s, p, h) for s, p, h in zip(
        _tag(frame, "addr:street"), _tag(frame, "addr:place"), hn, strict=True)]
    node_address = _node_addresses(context, projected, report)
    poi_activity, poi_functions = _pois_inside(context, projected)
    entrances = _entrances(context, projected)
    levels, source_of_levels = _building_levels(frame, context, projected)
    in_nonres, area_functions = _areas_around(context, inside)
    kind, profile = _kinds(frame, btype, hn, tag_address, node_address, poi_activity, in_nonres,
                           area, levels, norms)
    local_levels = _local_levels(levels, source_of_levels, profile, norms, report)
    floors, dwellings, residents, households = _estimates(
        btype, kind, profile, levels, source_of_levels, local_levels, area, norms)
    address, address_source = _addresses(context, inside, tag_address, node_address, hn)
    function = _building_functions(frame, kind, poi_functions, area_functions)

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


def _footprints(
    features: gpd.GeoDataFrame, source: Path, report: dict[str, int]
) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """The building ways and relations with a usable polygon, and those polygons (EPSG:4326).

    A self-intersecting footprint is repaired; one that cannot be is dropped.
    """
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
    return frame, wgs


def _node_addresses(
    context: _Context, projected: np.ndarray, report: dict[str, int]
) -> list[list[str]]:
    """Each building's addresses from the address nodes in or on its footprint."""
    n = len(projected)
    node_address: list[list[str]] = [[] for _ in range(n)]
    point_idx, bld_idx = _containing(context.address_points, projected)
    matched: set[int] = set()
    for p, b in sorted(zip(point_idx.tolist(), bld_idx.tolist(), strict=True)):
        text = context.address_text[p]
        matched.add(p)
        if text not in node_address[b]:
            node_address[b].append(text)
    report["address_nodes_matched"] = len(matched)
    return node_address


def _pois_inside(context: _Context, projected: np.ndarray) -> tuple[np.ndarray, list[list[str]]]:
    """Whether a POI node with an activity lies in each footprint, and those POIs' functions."""
    n = len(projected)
    poi_activity = np.zeros(n, dtype=bool)
    poi_functions: list[list[str]] = [[] for _ in range(n)]
    point_idx, bld_idx = _containing(context.poi_points, projected)
    for p, b in zip(point_idx.tolist(), bld_idx.tolist(), strict=True):
        poi_activity[b] |= bool(context.poi_activity[p])
        poi_functions[b].append(context.poi_function[p])
    return poi_activity, poi_functions


def _entrances(context: _Context, projected: np.ndarray) -> np.ndarray:
    """The ``entrance=*`` nodes on each outline, at least 1."""
    n = len(projected)
    entrances = np.ones(n, dtype=np.int64)
    if len(context.entrance_points):
        tree = shapely.STRtree(context.entrance_points)
        b_idx = tree.query(shapely.boundary(projected), predicate="dwithin",
                           distance=_ENTRANCE_TOLERANCE_M)[0]
        counts = np.bincount(b_idx, minlength=n)
        entrances = np.maximum(entrances, counts.astype(np.int64))
    return entrances


def _building_levels(
    frame: gpd.GeoDataFrame, context: _Context, projected: np.ndarray
) -> tuple[list[int | None], list[str]]:
    """Levels from ``building:levels``, else from the highest building part inside.

    Also returns where each count came from: ``tag``, ``part`` or ``""`` (none yet).
    """
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
    return levels, source_of_levels


def _areas_around(context: _Context, inside: np.ndarray) -> tuple[np.ndarray, list[list[str]]]:
    """Whether each building stands in a non-residential area, and the areas' functions."""
    n = len(inside)
    in_nonres = np.zeros(n, dtype=bool)
    in_nonres[_containing(inside, context.nonres_areas)[0]] = True
    area_functions: list[list[str]] = [[] for _ in range(n)]
    point_idx, area_idx = _containing(inside, context.area_polygons)
    for b, a in zip(point_idx.tolist(), area_idx.tolist(), strict=True):
        area_functions[b].append(context.area_function[a])
    return in_nonres, area_functions


def _kinds(
    frame: gpd.GeoDataFrame,
    btype: np.ndarray,
    hn: np.ndarray,
    tag_address: list[str],
    node_address: list[list[str]],
    poi_activity: np.ndarray,
    in_nonres: np.ndarray,
    area: np.ndarray,
    levels: list[int | None],
    norms: DensityNorms,
) -> tuple[list[str], list[str]]:
    """Each building's kind and estimate profile (``none``, ``single`` or ``multi``)."""
    n = len(frame)
    own_activity = _activity(frame)
    generic_nonres_tags = own_activity.copy()
    for key in _NON_RESIDENTIAL_KEYS:
        generic_nonres_tags |= _tag(frame, key) != ""
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
    return kind, profile


def _local_levels(
    levels: list[int | None],
    source_of_levels: list[str],
    profile: list[str],
    norms: DensityNorms,
    report: dict[str, int],
) -> int | None:
    """The median tagged level count of the multi-dwelling buildings, when enough have one."""
    n = len(levels)
    tagged_multi = [levels[i] for i in range(n)
                    if profile[i] == "multi" and source_of_levels[i] == "tag"]
    local_levels: int | None = None
    if norms.local_levels_min_tagged and len(tagged_multi) >= norms.local_levels_min_tagged:
        local_levels = _round_half_up(float(np.median(np.array(tagged_multi, dtype=float))))
    report["local_levels"] = local_levels or 0
    return local_levels


def _estimates(
    btype: np.ndarray,
    kind: list[str],
    profile: list[str],
    levels: list[int | None],
    source_of_levels: list[str],
    local_levels: int | None,
    area: np.ndarray,
    norms: DensityNorms,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Floors, dwellings, residents and households of each building.

    Fills in ``source_of_levels`` (``local`` or ``default``) where the levels were not
    tagged.
    """
    n = len(btype)
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
    return floors, dwellings, residents, households


def _addresses(
    context: _Context,
    inside: np.ndarray,
    tag_address: list[str],
    node_address: list[list[str]],
    hn: np.ndarray,
) -> tuple[list[str], list[str]]:
    """Each building's address and its source: ``tag``, ``node`` or ``derived``."""
    n = len(inside)
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
    return address, address_source


def _building_functions(
    frame: gpd.GeoDataFrame,
    kind: list[str],
    poi_functions: list[list[str]],
    area_functions: list[list[str]],
) -> list[str]:
    """Each building's function: its own tags, then the POIs inside, then the areas around."""
    n = len(frame)
    own_function = _functions(frame)
    function = [
        _best_function([own_function[i], *poi_functions[i], *area_functions[i]])
        for i in range(n)
    ]
    for i in range(n):
        if function[i] == "dormitory" and kind[i] != "collective":
            function[i] = ""
    return function
