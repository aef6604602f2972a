"""Read a districting graph from a file: networkx adjacency JSON, polygons, or a plan."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pyogrio
from networkx.readwrite import json_graph

from districting.errors import InputFileError


def read_graph(path: str | Path) -> nx.Graph:
    """A graph whose nodes carry the file's attributes.

    Accepted: networkx adjacency JSON (``.json``, ``.json.gz``; node-link JSON too);
    GeoPackage or GeoJSON polygons, joined by rook adjacency (nodes are numbered by
    row); the ``units`` and ``unit_adjacency`` layers of a ``plan.gpkg``. Nodes read
    from geometry also get ``x``/``y``: a point inside each shape, in metres.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"graph file not found: {path}")
    name = path.name.lower()
    if name.endswith((".json", ".json.gz")):
        return _read_json(path)
    if name.endswith((".gpkg", ".geojson")):
        layers = _layers(path)
        if "units" in layers and "unit_adjacency" in layers:
            return _read_plan(path)
        return _read_polygons(path)
    raise InputFileError(
        f"{path}: unsupported graph format (use .json, .json.gz, .gpkg or .geojson)"
    )


def _layers(path: Path) -> list[str]:
    try:
        return [str(n) for n in pyogrio.list_layers(path)[:, 0]]
    except Exception as exc:  # GDAL raises several error types for unreadable files
        raise InputFileError(f"{path}: cannot read ({exc})") from None


def _read_json(path: Path) -> nx.Graph:
    opener: Any = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(f"{path}: not a readable JSON graph ({exc})") from None
    if not isinstance(data, dict):
        raise InputFileError(f"{path}: a JSON graph must be an object")
    try:
        if "adjacency" in data:
            graph = json_graph.adjacency_graph(data)
        elif "links" in data or "edges" in data:
            graph = json_graph.node_link_graph(data, edges="links" if "links" in data else "edges")
        else:
            raise InputFileError(f"{path}: neither networkx adjacency nor node-link JSON")
    except (KeyError, TypeError, nx.NetworkXError) as exc:
        raise InputFileError(f"{path}: malformed networkx JSON ({exc})") from None
    return nx.Graph(graph)


def _positions(frame: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's representative point in metres (projected to UTM if geographic)."""
    if frame.crs is not None and frame.crs.is_geographic:
        frame = frame.to_crs(frame.estimate_utm_crs())
    points = frame.geometry.representative_point()
    return np.asarray(points.x, dtype=float), np.asarray(points.y, dtype=float)


def _read_plan(path: Path) -> nx.Graph:
    units = gpd.read_file(path, layer="units", engine="pyogrio")
    edges = gpd.read_file(path, layer="unit_adjacency", engine="pyogrio")
    graph = nx.Graph()
    xs, ys = _positions(units)
    for row, x, y in zip(units.drop(columns="geometry").to_dict("records"), xs, ys,
                         strict=True):
        graph.add_node(str(row["unit_id"]), **{"x": float(x), "y": float(y), **row})
    for u, v, length in zip(edges["u"].astype(str), edges["v"].astype(str),
                            edges["length_m"], strict=True):
        graph.add_edge(u, v, length=float(length))
    return graph


def _read_polygons(path: Path) -> nx.Graph:
    from districting.graph import polygon_contiguity

    frame = gpd.read_file(path, engine="pyogrio")
    if len(frame) == 0:
        raise InputFileError(f"{path}: no polygons")
    kinds = frame.geometry.geom_type.fillna("")
    if not kinds.isin(["Polygon", "MultiPolygon"]).all():
        raise InputFileError(f"{path}: every feature must be a polygon for rook adjacency")
    graph = nx.Graph()
    xs, ys = _positions(frame)
    for index, (row, x, y) in enumerate(zip(frame.drop(columns="geometry").to_dict("records"),
                                            xs, ys, strict=True)):
        graph.add_node(str(index), **{"x": float(x), "y": float(y), **row})
    pairs = polygon_contiguity(np.asarray(frame.geometry.make_valid()))
    graph.add_edges_from((str(u), str(v)) for u, v in pairs.tolist())
    return graph
