"""Build each settlement's unit graph: territory tiles and their adjacency, cut at barriers.

Every unit gets a tile (its Voronoi cell, clipped to the settlement polygon); two units
are adjacent when their tiles share a stretch of border. An edge is removed when the
straight walk between the two units crosses a barrier (river, railway) away from any
crossing. A district connected in this graph therefore has a single-polygon territory.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components
from scipy.spatial import Delaunay, QhullError

from districting.network import StreetNetwork
from districting.partition import adjacency_from_edges
from districting.units import spread_duplicate_points

logger = logging.getLogger(__name__)


@dataclass
class ComponentNote:
    """A part of a settlement cut off by barriers, and what was done about it."""

    size: int
    residents: int
    action: str
    node: int = -1  # one of the part's local nodes, to find it again


@dataclass
class SettlementGraph:
    """The unit graph of one settlement, in local node numbers ``0..n-1``.

    ``positions`` maps local nodes to rows of the units frame. ``edges`` has one row
    per undirected edge; ``edge_kind`` is ``"adjacent"`` or ``"bridged"`` (re-added to
    join a part cut off by a barrier).
    """

    settlement_id: str
    positions: np.ndarray
    tiles: np.ndarray
    edges: np.ndarray
    lengths: np.ndarray
    edge_kind: np.ndarray
    cut_by_barrier: int = 0
    cut_by_detour: int = 0
    components: list[ComponentNote] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.positions)

    def nearest_walk(self) -> np.ndarray:
        """Each node's shortest edge length (its walk from the nearest neighbour), metres."""
        out = np.full(self.n, np.inf)
        if len(self.edges):
            np.minimum.at(out, self.edges[:, 0], self.lengths)
            np.minimum.at(out, self.edges[:, 1], self.lengths)
        return np.where(np.isfinite(out), out, 0.0)

    def adjacency(self, *, kinds: tuple[str, ...] = ("adjacent", "bridged")) -> sp.csr_matrix:
        """Symmetric CSR adjacency matrix of the edges of the given kinds."""
        keep = np.isin(self.edge_kind, kinds) if len(self.edges) else np.zeros(0, dtype=bool)
        return adjacency_from_edges(self.n, self.edges[keep])


def voronoi_tiles(points: np.ndarray, polygon: shapely.Geometry) -> np.ndarray:
    """The Voronoi cell of each point clipped to ``polygon``, in input order.

    A cell that the clip cuts into pieces keeps the piece holding its point; the
    other pieces join the neighbouring tile with which they share the longest border,
    so the tiles cover the polygon with no gaps or overlaps.
    """
    n = len(points)
    if n == 1:
        return np.array([polygon], dtype=object)
    cells = shapely.voronoi_polygons(
        shapely.multipoints(points), extend_to=polygon, ordered=True
    )
    parts = np.asarray(shapely.get_parts(cells))
    if len(parts) != n:
        raise RuntimeError("Voronoi cells do not match the points (coincident points?)")
    tiles = shapely.intersection(parts, polygon)
    multi = np.flatnonzero(shapely.get_num_geometries(tiles) > 1)
    orphans: list[shapely.Geometry] = []
    for i in multi:
        pieces = shapely.get_parts(tiles[i])
        pieces = pieces[shapely.get_type_id(pieces) == 3]
        own = shapely.covers(pieces, points[i])
        keep = int(np.argmax(own)) if own.any() else int(np.argmax(shapely.area(pieces)))
        tiles[i] = pieces[keep]
        orphans.extend(p for j, p in enumerate(pieces) if j != keep)
    for piece in orphans:
        tree = shapely.STRtree(tiles)
        near = tree.query(piece, predicate="intersects")
        if len(near) == 0:
            continue
        shared = shapely.length(shapely.intersection(shapely.boundary(tiles[near]),
                                                     piece.boundary))
        target = int(near[int(np.argmax(shared))])
        tiles[target] = shapely.union(tiles[target], piece)
    return tiles


def polygon_tiles(
    points: np.ndarray, footprints: np.ndarray, building_ids: np.ndarray
) -> np.ndarray:
    """Each unit's own polygon as its tile; sub-units of one building share it out."""
    tiles = np.array(footprints, dtype=object)
    ids = np.asarray(building_ids).astype(str)
    _, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    for group in np.flatnonzero(counts > 1):
        members = np.flatnonzero(inverse == group)
        tiles[members] = voronoi_tiles(points[members], footprints[members[0]])
    return tiles


def polygon_contiguity(tiles: np.ndarray) -> np.ndarray:
    """Pairs of tiles sharing a stretch of border (rook contiguity)."""
    tree = shapely.STRtree(tiles)
    left, right = tree.query(tiles, predicate="intersects")
    keep = left < right
    pairs = np.stack([left[keep], right[keep]], axis=1).astype(np.int64)
    if len(pairs) == 0:
        return pairs
    return pairs[_shared_border(tiles, pairs)]


def _delaunay_edges(coords: np.ndarray) -> np.ndarray:
    n = len(coords)
    if n < 2:
        return np.empty((0, 2), dtype=np.int64)
    try:
        simplices = Delaunay(coords).simplices
    except (QhullError, ValueError):
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)] if n <= 50 else [
            (int(a), int(b)) for a, b in zip(np.argsort(coords[:, 0])[:-1],
                                             np.argsort(coords[:, 0])[1:], strict=True)]
        return np.array(pairs, dtype=np.int64).reshape(-1, 2)
    edges = np.vstack([simplices[:, [0, 1]], simplices[:, [1, 2]], simplices[:, [0, 2]]])
    edges.sort(axis=1)
    return np.unique(edges, axis=0)


def _shared_border(tiles: np.ndarray, edges: np.ndarray) -> np.ndarray:
    boundaries = shapely.boundary(tiles)
    shared = shapely.intersection(boundaries[edges[:, 0]], boundaries[edges[:, 1]])
    return np.asarray(shapely.length(shared) > 1e-6)


def _barrier_cuts(
    coords: np.ndarray,
    edges: np.ndarray,
    barriers: np.ndarray,
    crossings: np.ndarray,
    radius: float,
) -> np.ndarray:
    """True for each edge whose straight segment crosses a barrier away from a crossing."""
    cut = np.zeros(len(edges), dtype=bool)
    if len(edges) == 0 or len(barriers) == 0:
        return cut
    segments = shapely.linestrings(
        np.stack([coords[edges[:, 0]], coords[edges[:, 1]]], axis=1)
    )
    tree = shapely.STRtree(barriers)
    seg_index, barrier_index = tree.query(segments, predicate="intersects")
    if len(seg_index) == 0:
        return cut
    hits = shapely.intersection(segments[seg_index], barriers[barrier_index])
    if len(crossings):
        near = shapely.distance(hits, shapely.multipoints(crossings)) <= radius
    else:
        near = np.zeros(len(hits), dtype=bool)
    cut[np.unique(seg_index[~near])] = True
    return cut


def _detour_cuts(
    coords: np.ndarray,
    edges: np.ndarray,
    network: StreetNetwork,
    *,
    max_detour: float,
    slack_m: float,
) -> np.ndarray:
    """True for each edge whose walk along the streets is a long detour (or impossible)."""
    straight = np.linalg.norm(coords[edges[:, 0]] - coords[edges[:, 1]], axis=1)
    walk = network.walking_distances(coords[edges[:, 0]], coords[edges[:, 1]])
    return np.asarray(walk > max_detour * straight + slack_m)


def _bridge_components(
    n: int,
    edges: np.ndarray,
    removed: np.ndarray,
    coords: np.ndarray,
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Edges to add so that the graph becomes connected, shortest first (Kruskal)."""
    count, labels = connected_components(adjacency_from_edges(n, edges), directed=False)
    if count <= 1:
        return labels, []
    parent = list(range(count))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    candidates = removed
    if len(candidates):
        lengths = np.linalg.norm(coords[candidates[:, 0]] - coords[candidates[:, 1]], axis=1)
        candidates = candidates[np.lexsort((candidates[:, 1], candidates[:, 0], lengths))]
    added: list[tuple[int, int]] = []
    for u, v in candidates:
        a, b = find(int(labels[u])), find(int(labels[v]))
        if a != b:
            parent[a] = b
            added.append((int(u), int(v)))
    roots = {find(c) for c in range(count)}
    while len(roots) > 1:  # parts with no shared border at all: join nearest points
        groups = sorted(roots)
        first = np.flatnonzero(np.isin([find(int(x)) for x in labels], [groups[0]]))
        rest = np.setdiff1d(np.arange(n), first)
        dist = np.linalg.norm(coords[first][:, None, :] - coords[rest][None, :, :], axis=2)
        i, j = np.unravel_index(int(np.argmin(dist)), dist.shape)
        u, v = int(first[i]), int(rest[j])
        parent[find(int(labels[u]))] = find(int(labels[v]))
        added.append((min(u, v), max(u, v)))
        roots = {find(c) for c in range(count)}
    return labels, added


def build_settlement_graph(
    settlement_id: str,
    positions: np.ndarray,
    points: np.ndarray,
    residents: np.ndarray,
    polygon: shapely.Geometry,
    *,
    barriers: np.ndarray,
    crossings: np.ndarray,
    crossing_radius_m: float,
    network: StreetNetwork | None = None,
    max_detour: float | None = None,
    detour_slack_m: float = 150.0,
    contiguity: str = "tiles",
    footprints: np.ndarray | None = None,
    building_ids: np.ndarray | None = None,
    tiles: np.ndarray | None = None,
) -> SettlementGraph:
    """Tiles and adjacency for the units of one settlement (see the module docstring).

    With a street ``network``, each edge's length is the walking distance along the
    streets (access legs included); otherwise, and where the network does not join
    the two units, it is the straight-line distance. With ``max_detour`` as well, an
    edge is also cut when the walk along the streets is longer than ``max_detour`` times
    the straight line plus ``detour_slack_m`` (a fence, a motorway or an unmapped
    barrier in between): units are adjacent only where people can walk between them.

    ``contiguity="rook"`` is for registers whose units are polygons that tile the
    ground (blocks, parcels): each unit's tile is its own polygon (a split building's
    polygon is shared out among its sub-units), and two units are adjacent when their
    polygons share a stretch of border.

    ``tiles`` gives the units' tiles instead of their Voronoi cells in ``polygon``: a
    block of a large city keeps the tiles its units have in the whole city.
    """
    points = spread_duplicate_points(points)
    coords = shapely.get_coordinates(points)
    if contiguity == "tiles":
        tiles = voronoi_tiles(points, polygon) if tiles is None else tiles
        candidates = _delaunay_edges(coords)
        if len(candidates):
            candidates = candidates[_shared_border(tiles, candidates)]
    else:
        if footprints is None or building_ids is None:
            raise ValueError("rook contiguity needs the units' footprints")
        tiles = polygon_tiles(points, footprints, building_ids)
        candidates = polygon_contiguity(tiles)
    cut = _barrier_cuts(coords, candidates, barriers, crossings, crossing_radius_m)
    detour_cut = np.zeros(len(candidates), dtype=bool)
    if network is not None and max_detour is not None and len(candidates):
        detour_cut = _detour_cuts(coords, candidates, network, max_detour=max_detour,
                                  slack_m=detour_slack_m) & ~cut
    cut |= detour_cut
    kept, removed = candidates[~cut], candidates[cut]
    labels, bridges = _bridge_components(len(points), kept, removed, coords)
    notes: list[ComponentNote] = []
    if bridges:
        sizes = np.bincount(labels)
        main = int(np.argmax(sizes))
        for c in range(len(sizes)):
            if c == main:
                continue
            members = labels == c
            notes.append(ComponentNote(
                size=int(members.sum()),
                residents=int(residents[members].sum()),
                action="joined to the nearest part by a flagged edge",
                node=int(np.flatnonzero(members)[0]),
            ))
        logger.warning(
            "settlement %s: %d part(s) cut off by barriers were bridged with %d flagged edge(s)",
            settlement_id, len(notes), len(bridges),
        )
    bridge_array = np.array(bridges, dtype=np.int64).reshape(-1, 2)
    edges = np.vstack([kept, bridge_array]) if len(bridge_array) else kept
    kinds = np.array(["adjacent"] * len(kept) + ["bridged"] * len(bridge_array), dtype=object)
    lengths = (np.linalg.norm(coords[edges[:, 0]] - coords[edges[:, 1]], axis=1)
               if len(edges) else np.empty(0))
    if network is not None and len(edges):
        walk = network.walking_distances(coords[edges[:, 0]], coords[edges[:, 1]])
        lengths = np.where(np.isfinite(walk), np.maximum(walk, lengths), lengths)
    return SettlementGraph(
        settlement_id=settlement_id,
        positions=positions,
        tiles=tiles,
        edges=edges.astype(np.int64),
        lengths=np.round(lengths, 2),
        edge_kind=kinds,
        cut_by_barrier=int((cut & ~detour_cut).sum()),
        cut_by_detour=int(detour_cut.sum()),
        components=notes,
    )


def barrier_geometries(
    barriers: gpd.GeoDataFrame | None, crossings: gpd.GeoDataFrame | None, crs: object
) -> tuple[np.ndarray, np.ndarray]:
    """Barrier lines and crossing points as arrays in the plan's CRS.

    A barrier drawn as a polygon (a lake, a river bank) is crossed where its outline is.
    """
    lines = np.empty(0, dtype=object)
    if barriers is not None and len(barriers):
        geoms = np.asarray(barriers.to_crs(crs).geometry)
        polygonal = np.isin(shapely.get_type_id(geoms), (3, 6))
        lines = np.where(polygonal, shapely.boundary(geoms), geoms)
    points = np.empty(0, dtype=object)
    if crossings is not None and len(crossings):
        points = np.asarray(crossings.to_crs(crs).geometry)
    return lines, points
