"""Walking distances and walking tours on the street network, in metres.

Each unit is snapped to the nearest point of the nearest street segment. A walk
between two units is the straight access leg to that point, the way along the
segment to one of its ends, the shortest path along the streets, and the same
back out to the other unit; two units on one segment walk along it directly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import scipy.sparse as sp
import shapely
from numba import njit
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from districting.errors import InputFileError

logger = logging.getLogger(__name__)

#: Distances are computed from at most this many street nodes at a time (memory bound).
SOURCE_CHUNK = 256


@dataclass
class StreetNetwork:
    """An undirected street graph in a metric CRS, with edge lengths in metres.

    ``segments`` holds each street segment's geometry and ``segment_ends`` its two
    node numbers, for snapping points onto the streets.
    """

    node_xy: np.ndarray
    lengths: sp.csr_matrix
    segments: np.ndarray
    segment_ends: np.ndarray

    def __post_init__(self) -> None:
        self._tree = cKDTree(self.node_xy)
        self._segment_tree = shapely.STRtree(self.segments)

    def snap_to_segments(
        self, xy: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Nearest segment of each point: its index, the access leg, and the way to each end."""
        points = shapely.points(np.asarray(xy, dtype=float).reshape(-1, 2))
        index = self._segment_tree.nearest(points)
        lines = self.segments[index]
        along = shapely.line_locate_point(lines, points)
        access = shapely.distance(lines, points)
        return index, access, along, shapely.length(lines) - along

    @property
    def n_nodes(self) -> int:
        return len(self.node_xy)

    def within(self, bounds: tuple[float, float, float, float] | np.ndarray, *,
               margin: float) -> StreetNetwork | None:
        """The streets whose both ends lie in ``bounds`` (minx, miny, maxx, maxy) widened
        by ``margin`` metres, renumbered; ``None`` when no street segment is left."""
        x0, y0, x1, y1 = (float(b) for b in bounds)
        x, y = self.node_xy[:, 0], self.node_xy[:, 1]
        keep = (x >= x0 - margin) & (x <= x1 + margin) & (y >= y0 - margin) & (y <= y1 + margin)
        if keep.all():
            return self
        segments = keep[self.segment_ends[:, 0]] & keep[self.segment_ends[:, 1]]
        if not segments.any():
            return None
        number = np.full(self.n_nodes, -1, dtype=np.int64)
        number[keep] = np.arange(int(keep.sum()))
        lengths = self.lengths[keep][:, keep].tocsr()
        return StreetNetwork(node_xy=self.node_xy[keep], lengths=lengths,
                             segments=self.segments[segments],
                             segment_ends=number[self.segment_ends[segments]])

    def snap(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The nearest street node of each point, and the straight distance to it."""
        access, nodes = self._tree.query(np.asarray(xy, dtype=float).reshape(-1, 2))
        return np.asarray(nodes, dtype=np.int64), np.asarray(access, dtype=float)

    def node_distances(self, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Shortest street distance from ``sources[i]`` to ``targets[i]``, for each ``i``.

        Unreachable pairs get ``inf``.
        """
        sources = np.asarray(sources, dtype=np.int64)
        targets = np.asarray(targets, dtype=np.int64)
        out = np.full(len(sources), np.inf)
        unique = np.unique(sources)
        for start in range(0, len(unique), SOURCE_CHUNK):
            chunk = unique[start:start + SOURCE_CHUNK]
            table = dijkstra(self.lengths, directed=False, indices=chunk)
            row_of = {int(node): row for row, node in enumerate(chunk)}
            mine = np.isin(sources, chunk)
            rows = np.array([row_of[int(s)] for s in sources[mine]], dtype=np.int64)
            out[mine] = table[rows, targets[mine]]
        return out

    def walking_distances(self, xy_from: np.ndarray, xy_to: np.ndarray) -> np.ndarray:
        """Walk from each point in ``xy_from`` to the matching point in ``xy_to``."""
        seg_a, access_a, to_start_a, to_end_a = self.snap_to_segments(xy_from)
        seg_b, access_b, to_start_b, to_end_b = self.snap_to_segments(xy_to)
        best = np.full(len(seg_a), np.inf)
        for side_a, off_a in ((0, to_start_a), (1, to_end_a)):
            for side_b, off_b in ((0, to_start_b), (1, to_end_b)):
                street = self.node_distances(self.segment_ends[seg_a, side_a],
                                             self.segment_ends[seg_b, side_b])
                best = np.minimum(best, off_a + street + off_b)
        same = seg_a == seg_b
        best[same] = np.minimum(best[same], np.abs(to_start_a[same] - to_start_b[same]))
        return access_a + best + access_b

    def distance_matrix(self, xy: np.ndarray) -> np.ndarray:
        """All walking distances between the points (for tours of a few hundred units)."""
        nodes, access = self.snap(xy)
        unique, inverse = np.unique(nodes, return_inverse=True)
        table = np.vstack([
            dijkstra(self.lengths, directed=False, indices=unique[s:s + SOURCE_CHUNK])
            for s in range(0, len(unique), SOURCE_CHUNK)
        ])
        street = table[inverse][:, nodes]
        matrix = access[:, None] + street + access[None, :]
        np.fill_diagonal(matrix, 0.0)
        same_node = nodes[:, None] == nodes[None, :]
        direct = np.linalg.norm(xy[:, None, :] - xy[None, :, :], axis=2)
        return np.where(same_node, np.minimum(matrix, direct), matrix)


    def distances_to(self, xy_from: np.ndarray, xy_to: np.ndarray) -> np.ndarray:
        """Walking distances from many points to a few (for example candidate buildings),
        as a ``len(xy_from) × len(xy_to)`` matrix; unreachable pairs get ``inf``."""
        nodes_from, access_from = self.snap(xy_from)
        nodes_to, access_to = self.snap(xy_to)
        unique, inverse = np.unique(nodes_to, return_inverse=True)
        table = np.vstack([
            dijkstra(self.lengths, directed=False, indices=unique[s:s + SOURCE_CHUNK])
            for s in range(0, len(unique), SOURCE_CHUNK)
        ])
        street = table[inverse][:, nodes_from].T
        matrix = access_from[:, None] + street + access_to[None, :]
        # Two points at one street node walk straight across, as in distance_matrix.
        same_node = nodes_from[:, None] == nodes_to[None, :]
        direct = np.linalg.norm(xy_from[:, None, :] - xy_to[None, :, :], axis=2)
        return np.where(same_node, np.minimum(matrix, direct), matrix)


class Walks:
    """Walking among one settlement's units: along the streets where a network is
    given, in straight lines otherwise (and where the network does not connect)."""

    def __init__(self, xy: np.ndarray, network: StreetNetwork | None) -> None:
        self.xy = np.asarray(xy, dtype=float)
        self.network = network
        self._routes: dict[bytes, tuple[np.ndarray, np.ndarray, float]] = {}

    def among(self, members: np.ndarray) -> np.ndarray:
        """All walking distances between the given units, in metres."""
        here = self.xy[members]
        straight = np.linalg.norm(here[:, None] - here[None, :], axis=2)
        if self.network is None:
            return straight
        walked = self.network.distance_matrix(here)
        return np.where(np.isfinite(walked), walked, straight)

    def between(self, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Walking distances from each source unit to each target unit, in metres."""
        a, b = self.xy[sources], self.xy[targets]
        straight = np.linalg.norm(a[:, None] - b[None, :], axis=2)
        if self.network is None:
            return straight
        walked = self.network.distances_to(a, b)
        return np.where(np.isfinite(walked), walked, straight)

    def tour(self, members: np.ndarray) -> tuple[float, np.ndarray]:
        """A short walking tour through the given units (see :func:`walking_tour`): its
        length, and each unit's share, half the legs that touch it, so that the shares
        add up to the tour. In metres."""
        order, legs, _ = self._route(members)
        share = np.zeros(len(members))
        np.add.at(share, order[:-1], legs / 2.0)
        np.add.at(share, order[1:], legs / 2.0)
        return float(legs.sum()), share

    def route(self, members: np.ndarray) -> tuple[np.ndarray, float, float]:
        """The walking order through the given units (positions into ``members``), its
        length, and the length of walking them in the order given (the register's), in
        metres."""
        order, legs, naive = self._route(members)
        return order, float(legs.sum()), naive

    def _route(self, members: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Order, legs along it, and the given order's length; remembered per set of units,
        so a CD walked once (for its workload) is not walked again (for its sheet)."""
        key = np.asarray(members, dtype=np.int64).tobytes()
        if key not in self._routes:
            if len(members) < 2:
                self._routes[key] = (np.arange(len(members)), np.zeros(0), 0.0)
            else:
                matrix = self.among(members)
                order, _ = walking_tour(matrix)
                self._routes[key] = (order, matrix[order[:-1], order[1:]],
                                     tour_length(matrix, np.arange(len(members))))
        return self._routes[key]


def street_network_from_layers(
    nodes: gpd.GeoDataFrame, edges: gpd.GeoDataFrame, *, crs: object
) -> StreetNetwork:
    """A :class:`StreetNetwork` from osmnx-style node and edge layers, projected to ``crs``.

    Edge lengths are measured on the projected geometry; both directions of a
    two-way street become one undirected edge.
    """
    for frame, columns, name in ((nodes, ("osmid",), "street_nodes"),
                                 (edges, ("u", "v"), "street_edges")):
        missing = [c for c in columns if c not in frame.columns and c not in frame.index.names]
        if missing:
            raise InputFileError(f"layer {name} has no {', '.join(missing)} column")
    nodes = nodes.reset_index() if "osmid" in nodes.index.names else nodes
    edges = edges.reset_index() if "u" in edges.index.names else edges
    projected_nodes = nodes.to_crs(crs)
    node_xy = shapely.get_coordinates(projected_nodes.geometry.to_numpy())
    index = {int(osmid): i for i, osmid in enumerate(nodes["osmid"])}
    try:
        u = np.array([index[int(x)] for x in edges["u"]], dtype=np.int64)
        v = np.array([index[int(x)] for x in edges["v"]], dtype=np.int64)
    except KeyError as exc:
        raise InputFileError(f"street edge refers to unknown node {exc.args[0]}") from None
    geometry = edges.to_crs(crs).geometry.to_numpy()
    length = np.maximum(shapely.length(geometry), 0.01)
    n = len(node_xy)
    both = sp.coo_matrix((np.r_[length, length], (np.r_[u, v], np.r_[v, u])), shape=(n, n))
    symmetric = _min_duplicates(both)
    logger.debug("street network: %d nodes, %d edges", n, symmetric.nnz // 2)
    # One segment per street piece, not one per direction of a two-way street.
    pairs = np.stack([np.minimum(u, v), np.maximum(u, v)], axis=1)
    _, first = np.unique(np.c_[pairs, np.round(length, 2)], axis=0, return_index=True)
    first = np.sort(first)
    return StreetNetwork(node_xy=node_xy, lengths=symmetric, segments=geometry[first],
                         segment_ends=np.stack([u[first], v[first]], axis=1))


def _min_duplicates(matrix: sp.coo_matrix) -> sp.csr_matrix:
    """CSR keeping the shortest of parallel edges (scipy would sum them)."""
    order = np.lexsort((matrix.data, matrix.col, matrix.row))
    row, col, data = matrix.row[order], matrix.col[order], matrix.data[order]
    first = np.ones(len(row), dtype=bool)
    first[1:] = (row[1:] != row[:-1]) | (col[1:] != col[:-1])
    return sp.csr_matrix((data[first], (row[first], col[first])), shape=matrix.shape)


def walking_tour(matrix: np.ndarray, *, start: int = 0) -> tuple[np.ndarray, float]:
    """A short open walk through every point: nearest neighbour, then 2-opt.

    Returns the visiting order and its length in metres (the sum of the legs). Compiled
    with numba (:func:`_nearest_then_two_opt`).
    """
    n = len(matrix)
    if n <= 1:
        return np.arange(n), 0.0
    tour = _nearest_then_two_opt(np.ascontiguousarray(matrix, dtype=np.float64), start)
    return tour, tour_length(matrix, tour)


@njit(cache=True)
def _nearest_then_two_opt(matrix: np.ndarray, start: int) -> np.ndarray:
    """The nearest-neighbour walk from ``start`` (ties to the lower index), improved by
    2-opt reversals (first improving move, scanning ``i`` then ``j``) until none helps."""
    n = matrix.shape[0]
    tour = np.empty(n, dtype=np.int64)
    seen = np.zeros(n, dtype=np.bool_)
    tour[0] = start
    seen[start] = True
    for k in range(1, n):
        here = tour[k - 1]
        best, pick = np.inf, -1
        for j in range(n):
            if not seen[j] and (pick < 0 or matrix[here, j] < best):
                best, pick = matrix[here, j], j
        tour[k] = pick
        seen[pick] = True
    improved = True
    while improved:
        improved = False
        for i in range(1, n - 1):
            for j in range(i + 1, n):
                a, b, c = tour[i - 1], tour[i], tour[j]
                if j + 1 < n:
                    d = tour[j + 1]
                    before = matrix[a, b] + matrix[c, d]
                    after = matrix[a, c] + matrix[b, d]
                else:
                    before = matrix[a, b] + 0.0
                    after = matrix[a, c] + 0.0
                if after < before - 1e-9:
                    lo, hi = i, j
                    while lo < hi:
                        tour[lo], tour[hi] = tour[hi], tour[lo]
                        lo += 1
                        hi -= 1
                    improved = True
    return tour


def tour_length(matrix: np.ndarray, order: np.ndarray) -> float:
    """Length of walking the points in the given order."""
    if len(order) < 2:
        return 0.0
    return float(matrix[order[:-1], order[1:]].sum())
