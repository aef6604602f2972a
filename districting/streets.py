"""Street graphs: osmnx-style node/edge layers to a :class:`networkx.MultiDiGraph` and back.

A GeoPackage cannot store a pandas MultiIndex, so a register stores the street
layers ``street_nodes`` (with an ``osmid`` column) and ``street_edges`` (with
``u``, ``v``, ``key`` columns). The functions here restore the osmnx indexes and
call :func:`osmnx.graph_from_gdfs`. osmnx is imported inside the functions
because it is slow to import.
"""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import networkx as nx
import pyogrio

from districting.errors import InputFileError

logger = logging.getLogger(__name__)

__all__ = ["EDGE_LAYER", "NODE_LAYER", "read_street_graph", "street_graph_from_gdfs"]

#: Layer of street nodes in a register GeoPackage.
NODE_LAYER = "street_nodes"
#: Layer of street edges in a register GeoPackage.
EDGE_LAYER = "street_edges"

_EDGE_INDEX = ["u", "v", "key"]


def street_graph_from_gdfs(nodes: gpd.GeoDataFrame, edges: gpd.GeoDataFrame) -> nx.MultiDiGraph:
    """Build a street graph from osmnx-style node and edge GeoDataFrames.

    The indexes are restored first when they are plain columns (as read from a
    GeoPackage): ``osmid`` for nodes, ``(u, v, key)`` for edges.

    Parameters
    ----------
    nodes
        Street nodes with ``x`` and ``y`` columns, indexed by ``osmid`` or with an
        ``osmid`` column.
    edges
        Street edges indexed by ``(u, v, key)`` or with those three columns.

    Returns
    -------
    networkx.MultiDiGraph
        The graph; ``graph.graph["crs"]`` is the edges' CRS.

    Raises
    ------
    InputFileError
        If the layers lack the columns needed to rebuild the graph.
    """
    import osmnx

    if nodes.index.name != "osmid":
        if "osmid" not in nodes.columns:
            raise InputFileError("street nodes have no 'osmid' index or column")
        nodes = nodes.set_index("osmid")
    if list(edges.index.names) != _EDGE_INDEX:
        missing = [c for c in _EDGE_INDEX if c not in edges.columns]
        if missing:
            raise InputFileError(f"street edges have no {missing} column(s)")
        edges = edges.set_index(_EDGE_INDEX)
    missing_xy = [c for c in ("x", "y") if c not in nodes.columns]
    if missing_xy:
        raise InputFileError(f"street nodes have no {missing_xy} column(s)")
    if edges.crs is None:
        raise InputFileError("street edges have no CRS")
    graph = osmnx.graph_from_gdfs(nodes, edges)
    logger.debug(
        "street graph: %d nodes, %d edges", graph.number_of_nodes(), graph.number_of_edges()
    )
    return graph


def read_street_graph(path: str | Path) -> nx.MultiDiGraph:
    """Read the street graph stored in a register GeoPackage.

    Parameters
    ----------
    path
        A GeoPackage with the layers ``street_nodes`` and ``street_edges``.

    Returns
    -------
    networkx.MultiDiGraph
        The street graph, with ``graph.graph["crs"]`` set.

    Raises
    ------
    InputFileError
        If the file is missing or unreadable, or the street layers are absent.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"street file not found: {path}")
    try:
        layers = {str(row[0]) for row in pyogrio.list_layers(path)}
    except Exception as exc:  # pyogrio raises several DataSourceError subclasses
        raise InputFileError(f"cannot read {path}: {exc}") from exc
    missing = [name for name in (NODE_LAYER, EDGE_LAYER) if name not in layers]
    if missing:
        raise InputFileError(
            f"{path} has no street graph: layer(s) {', '.join(missing)} not found"
        )
    nodes = pyogrio.read_dataframe(path, layer=NODE_LAYER)
    edges = pyogrio.read_dataframe(path, layer=EDGE_LAYER)
    return street_graph_from_gdfs(nodes, edges)
