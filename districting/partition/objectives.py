"""What a plan costs: cut edges, inertia or travel, read from a graph's attributes.

- ``cut_edges``: the number of edges between parts, or the sum of an edge
  attribute (for example a shared border's length) over those edges.
- ``inertia``: Σ weight × squared distance (km²) from each node to its part's
  centre, the centre chosen among the part's nodes (Hess et al.).
- ``travel``: Σ weight × distance (km) along the graph's edges to the centre.
  An edge's length is its ``length`` or ``length_m`` attribute in metres when
  present, else the straight line between its ends.

Coordinates come from node attributes: ``position`` names them, or the first
pair present of ``x``/``y``, ``C_X``/``C_Y``, ``lon``/``lat``, ``longitude``/``latitude``.
Values that all lie within ±180/±90 are taken as degrees and projected to a local
azimuthal equidistant plane (metres) with pyproj.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import scipy.sparse as sp
from pyproj import Transformer
from scipy.sparse.csgraph import dijkstra

from districting.errors import PartitionError
from districting.partition.arrays import cut_cost

OBJECTIVES = ("cut_edges", "inertia", "travel")
POSITION_PAIRS = (("x", "y"), ("C_X", "C_Y"), ("lon", "lat"), ("longitude", "latitude"))
EDGE_LENGTHS = ("length", "length_m")


@dataclass
class Score:
    """The objective of labellings: edge costs (cut edges) or a centre cost function."""

    objective: str
    edges: np.ndarray
    weights: np.ndarray
    edge_cost: np.ndarray | None = None
    positions: np.ndarray | None = None
    arcs: sp.csr_matrix | None = None
    _from: dict[int, np.ndarray] = field(default_factory=dict)

    def cost_to(self, centre: int, nodes: np.ndarray) -> np.ndarray:
        """Each of ``nodes``' cost when ``centre`` is its part's centre."""
        nodes = np.asarray(nodes, dtype=np.int64)
        if self.objective == "inertia":
            assert self.positions is not None
            delta = (self.positions[nodes] - self.positions[centre]) / 1000.0
            return self.weights[nodes] * (delta**2).sum(axis=1)
        if centre not in self._from:
            self._from[centre] = dijkstra(self.arcs, indices=centre) / 1000.0
        return self.weights[nodes] * self._from[centre][nodes]

    def value(self, labels: np.ndarray) -> float:
        """The objective of a complete labelling (best centre per part for centre objectives)."""
        if self.edge_cost is not None:
            return cut_cost(self.edges, labels, self.edge_cost)
        total = 0.0
        for part in np.unique(labels).tolist():
            members = np.flatnonzero(labels == part)
            total += min(float(self.cost_to(j, members).sum()) for j in members.tolist())
        return total


def _positions(graph: nx.Graph, nodes: Sequence[Hashable],
               position: tuple[str, str] | None) -> np.ndarray:
    first = graph.nodes[nodes[0]]
    pairs = [position] if position else [p for p in POSITION_PAIRS if p[0] in first
                                         and p[1] in first]
    if not pairs:
        raise PartitionError("this objective needs node coordinates; none of "
                             + ", ".join(f"{a}/{b}" for a, b in POSITION_PAIRS)
                             + " found (name them with --position X,Y)")
    xname, yname = pairs[0]
    try:
        xy = np.array([[float(graph.nodes[v][xname]), float(graph.nodes[v][yname])]
                       for v in nodes])
    except KeyError as missing:
        raise PartitionError(f"node coordinate {missing} is missing on some nodes") from None
    except (TypeError, ValueError):
        raise PartitionError(f"node coordinates {xname}/{yname} must be numbers") from None
    if not np.isfinite(xy).all():
        raise PartitionError(f"node coordinates {xname}/{yname} must be finite")
    if (np.abs(xy[:, 0]) <= 180).all() and (np.abs(xy[:, 1]) <= 90).all():
        lon0, lat0 = xy.mean(axis=0)
        to_plane = Transformer.from_crs(
            "EPSG:4326", f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +units=m", always_xy=True)
        px, py = to_plane.transform(xy[:, 0], xy[:, 1])
        xy = np.column_stack([px, py])
    return xy


def _edge_values(graph: nx.Graph, nodes: Sequence[Hashable], edges: np.ndarray,
                 name: str) -> np.ndarray:
    values = []
    for u, v in edges.tolist():
        data = graph.edges[nodes[u], nodes[v]]
        if name not in data:
            raise PartitionError(f"edge {nodes[u]}–{nodes[v]} has no attribute '{name}'")
        try:
            values.append(float(data[name]))
        except (TypeError, ValueError):
            raise PartitionError(f"edge attribute '{name}' must be numeric") from None
    out = np.array(values, dtype=float)
    if len(out) and (~np.isfinite(out) | (out < 0)).any():
        raise PartitionError(f"edge attribute '{name}' must be a finite number ≥ 0")
    return out


def build(graph: nx.Graph, nodes: Sequence[Hashable], edges: np.ndarray, weights: np.ndarray,
          *, objective: str, edge_weight: str | None,
          position: tuple[str, str] | None) -> Score:
    """The objective of ``graph`` partitions, nodes indexed as in ``nodes``."""
    if objective == "cut_edges":
        cost = (np.ones(len(edges)) if edge_weight is None
                else _edge_values(graph, nodes, edges, edge_weight))
        return Score(objective, edges, weights, edge_cost=cost)
    positions = _positions(graph, nodes, position)
    score = Score(objective, edges, weights, positions=positions)
    if objective == "travel":
        first = graph.edges[nodes[edges[0, 0]], nodes[edges[0, 1]]] if len(edges) else {}
        name = next((a for a in EDGE_LENGTHS if a in first), None)
        if name is not None:
            length = _edge_values(graph, nodes, edges, name)
        else:
            length = np.hypot(*(positions[edges[:, 0]] - positions[edges[:, 1]]).T)
        n = len(nodes)
        length = np.maximum(length, 1e-6)
        score.arcs = sp.csr_matrix((np.r_[length, length],
                                    (np.r_[edges[:, 0], edges[:, 1]],
                                     np.r_[edges[:, 1], edges[:, 0]])), shape=(n, n))
    return score
