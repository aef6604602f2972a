"""The street graph, barriers and crossings of an OSM extract, as register layers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from districting.io.osm.source import WGS84, _osm_ids, _Scan
from districting.io.osm.tags import _NOT_WALKABLE, _obj, _tag

#: Crossings farther than this from every barrier line are dropped.
CROSSING_TOLERANCE_M = 5.0
#: ``natural=water`` polygons smaller than this (ponds, pools) are not barriers.
MIN_WATER_AREA_M2 = 10_000.0

_BARRIER_RAILWAYS = frozenset({"rail", "light_rail"})


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


def _first(value: Any, default: Any) -> Any:
    """A single value from an osmnx attribute that may be a list (sorted, then first)."""
    if isinstance(value, list):
        values = sorted((v for v in value if v is not None), key=str)
        return values[0] if values else default
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return default
    return value


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
