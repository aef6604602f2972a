"""Dissolve unit tiles into district territories."""

from __future__ import annotations

import numpy as np
import shapely


def dissolve(tiles: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """The union of the tiles of each label ``0..k-1``.

    Tiles of units adjacent in the unit graph share a border, so a district that is
    connected in the graph dissolves to a single polygon.
    """
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(k + 1))
    out = np.empty(k, dtype=object)
    for d in range(k):
        group = tiles[order[bounds[d]:bounds[d + 1]]]
        merged = shapely.union_all(group, grid_size=None)
        out[d] = _clean(merged)
    return out


def _clean(geometry: shapely.Geometry) -> shapely.Geometry:
    """Drop slivers left by floating-point noise from a dissolved polygon."""
    if geometry.geom_type != "MultiPolygon":
        return geometry
    parts = shapely.get_parts(geometry)
    areas = shapely.area(parts)
    keep = parts[areas > 1e-3]
    if len(keep) == 1:
        return keep[0]
    return shapely.multipolygons(keep)
