"""Dissolve unit tiles into district territories."""

from __future__ import annotations

import numpy as np
import shapely
from shapely.errors import GEOSException


def dissolve(tiles: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """The union of the tiles of each label ``0..k-1``.

    Tiles of units adjacent in the unit graph share a border, so a district that is
    connected in the graph dissolves to a single polygon.
    """
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(k + 1))
    out = np.empty(k, dtype=object)
    for d in range(k):
        out[d] = _clean(merge(tiles[order[bounds[d]:bounds[d + 1]]]))
    return out


def merge(tiles: np.ndarray) -> shapely.Geometry:
    """The union of polygons that should tile without overlaps (Voronoi tiles, and the
    districts made of them): a coverage union, an order of magnitude faster than a full
    one. Where the tiles do overlap (a register's own footprints may), the coverage
    union counts the overlap twice and is not a valid polygon; where its area is not
    theirs, it lost or added something. Then the full union is made instead."""
    merged = coverage_union(tiles)
    return merged if merged is not None else shapely.union_all(tiles)


def coverage_union(tiles: np.ndarray) -> shapely.Geometry | None:
    """The coverage union of polygons that should tile without overlaps, or ``None`` where
    it cannot be trusted (see :func:`merge`): GEOS refused it, it is not a valid polygon,
    or its area is not the tiles' total."""
    try:
        merged = shapely.coverage_union_all(tiles)
    except GEOSException:
        return None
    total = float(shapely.area(tiles).sum())
    if abs(merged.area - total) > 1e-9 * max(total, 1.0) or not merged.is_valid:
        return None
    return merged


def district_territories(
    tiles: np.ndarray, cd_of_node: np.ndarray, id_of_cd: np.ndarray, rd_of_cd: np.ndarray, *,
    ids: int, rds: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The territories of a settlement's CDs (from its units' tiles), and of its ``ids``
    IDs and ``rds`` RDs (from their CDs')."""
    cds = dissolve(tiles, cd_of_node, len(id_of_cd))
    return cds, dissolve(cds, id_of_cd, ids), dissolve(cds, rd_of_cd, rds)


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
