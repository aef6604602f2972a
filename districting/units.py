"""Turn a validated register into planning units in a metric CRS, with settlement polygons."""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from districting.config import Config
from districting.io.register import RawRegister, metric_crs
from districting.workload import (
    SETTLEMENT_TYPE_COLUMN,
    district_target,
    expected_households,
    online_shares,
    unit_workload,
)

logger = logging.getLogger(__name__)

UNIT_COLUMNS = [
    "unit_id", "building_id", "settlement_id", "settlement_name", "address", "kind",
    "function", "dwellings", "residents", "households", "floors", "entrances", "online_share",
    "workload", "dwelling_from", "dwelling_to",
]
#: Sub-units of a split building sit this far from its point, evenly around it.
SPLIT_RADIUS_M = 1.0


def _text(series: pd.Series) -> pd.Series:
    return series.fillna("").astype(str).str.strip()


def units_from_register(raw: RawRegister, *, config: Config) -> gpd.GeoDataFrame:
    """One planning unit per building, located at a point inside the building.

    The register must already be valid (see :mod:`districting.validate`). Counts become
    integers, text is stripped, geometry is projected to the data's UTM zone.
    """
    frame = raw.buildings
    crs = metric_crs(frame)
    projected = frame.to_crs(crs)
    units = pd.DataFrame({
        "unit_id": _text(frame["building_id"]),
        "building_id": _text(frame["building_id"]),
        "settlement_id": _text(frame["settlement_id"]),
        "settlement_name": _text(frame["settlement_name"]),
        "address": _text(frame["address"]),
        "kind": _text(frame["kind"]),
        "function": _text(frame["function"]) if "function" in frame.columns else "",
    })
    for column in ("dwellings", "residents"):
        units[column] = pd.to_numeric(frame[column]).astype(np.int64).to_numpy()
    for column in ("households", "floors", "entrances"):
        if column in frame.columns:
            units[column] = pd.to_numeric(frame[column], errors="coerce").to_numpy()
        else:
            units[column] = np.nan
    units["households"] = expected_households(
        units, household_size=config.workload.household_size
    )
    units["online_share"] = online_shares(
        frame, norms=config.workload, settlement_types=_settlement_types(raw),
        source=raw.source.name,
    )
    for column in ("floors", "entrances"):
        units[column] = units[column].fillna(0).astype(np.int64)
    units["workload"] = unit_workload(units, norms=config.workload)
    units["dwelling_from"] = 0
    units["dwelling_to"] = 0
    footprints = shapely.make_valid(projected.geometry.to_numpy())
    points = shapely.point_on_surface(footprints)
    units["footprint"] = footprints
    result = gpd.GeoDataFrame(units, geometry=points, crs=crs)
    target = district_target(workload=config.workload, counting=config.counting)
    ceiling = target * (1 + config.counting.tolerance)
    result = split_oversized(result, ceiling=ceiling, target=target, config=config)
    # Units at one point (two buildings geocoded alike) are moved a few centimetres apart
    # here, so that the points written out are the ones their tiles were built around.
    result = result.set_geometry(spread_duplicate_points(result.geometry.to_numpy()),
                                 crs=crs)
    return result[[*UNIT_COLUMNS, "footprint", "geometry"]].reset_index(drop=True)


def _settlement_types(raw: RawRegister) -> dict[str, str] | None:
    """Settlement type by settlement_id, from the settlements layer where it has them."""
    given = raw.settlements
    if given is None or SETTLEMENT_TYPE_COLUMN not in given.columns:
        return None
    return dict(zip(given["settlement_id"].astype(str).str.strip(),
                    given[SETTLEMENT_TYPE_COLUMN].fillna("").astype(str).str.strip(),
                    strict=True))


def _shares(total: int, parts: int) -> list[int]:
    """Split a whole number into ``parts`` whole numbers as equal as possible."""
    base, extra = divmod(int(total), parts)
    return [base + (1 if j < extra else 0) for j in range(parts)]


def split_oversized(
    units: gpd.GeoDataFrame, *, ceiling: float, target: float, config: Config
) -> gpd.GeoDataFrame:
    """Split each building whose workload exceeds the CD ceiling by dwelling ranges.

    A building needing more than one interviewer's ceiling becomes
    ``ceil(workload / target)`` sub-units with consecutive dwelling ranges
    (``dwelling_from``–``dwelling_to``, e.g. кв. 1–120 and 121–240); residents and
    households are shared out in proportion. Sub-units keep the building's
    ``building_id``, get ``unit_id`` ``<building_id>/<n>``, and sit on a 1 m circle
    around the building's point, so their tiles meet in the middle and they stay
    adjacent in the unit graph. They keep the building's ``footprint``.
    """
    heavy = np.flatnonzero(units["workload"].to_numpy() > ceiling + 1e-9)
    splittable = {int(i) for i in heavy if int(units["dwellings"].iloc[i]) >= 2}
    for i in heavy:
        if int(units["dwellings"].iloc[i]) < 2:
            logger.warning("building %s needs %.0f, above the ceiling %.0f, but has fewer than "
                           "two dwellings to split by", units["building_id"].iloc[i],
                           units["workload"].iloc[i], ceiling)
    if not splittable:
        return units
    rows = []
    for position in range(len(units)):
        row = units.iloc[position]
        if position not in splittable:
            rows.append(row.to_dict())
            continue
        parts = min(int(np.ceil(row["workload"] / target)), int(row["dwellings"]))
        dwellings = _shares(int(row["dwellings"]), parts)
        residents = _shares(int(row["residents"]), parts)
        households = _shares(int(row["households"]), parts)
        first = 1
        for j in range(parts):
            piece = row.to_dict()
            angle = 2 * np.pi * j / parts
            piece.update(
                unit_id=f"{row['building_id']}/{j + 1}",
                dwellings=dwellings[j], residents=residents[j], households=households[j],
                dwelling_from=first, dwelling_to=first + dwellings[j] - 1,
                geometry=shapely.Point(row.geometry.x + SPLIT_RADIUS_M * np.cos(angle),
                                       row.geometry.y + SPLIT_RADIUS_M * np.sin(angle)),
            )
            first += dwellings[j]
            rows.append(piece)
        logger.info("building %s (%.0f, above the ceiling %.0f) split into %d sub-units by "
                    "dwelling ranges", row["building_id"], row["workload"], ceiling, parts)
    split = gpd.GeoDataFrame(rows, geometry="geometry", crs=units.crs)
    split["workload"] = unit_workload(split, norms=config.workload)
    for column in ("dwellings", "residents", "households", "dwelling_from", "dwelling_to"):
        split[column] = split[column].astype(np.int64)
    return split


def settlement_polygons(
    units: gpd.GeoDataFrame,
    given: gpd.GeoDataFrame | None,
    *,
    margin_m: float,
) -> gpd.GeoDataFrame:
    """A polygon per settlement: the given one, or the convex hull of its units plus a margin.

    Derived polygons never overlap given ones. Where derived hulls overlap each
    other, the overlap is shared out by nearest unit (Voronoi cells of the units), so
    every unit stays inside its own settlement's polygon.
    """
    by_settlement = units.groupby("settlement_id", sort=True)
    names = by_settlement["settlement_name"].first()
    polygons: dict[str, shapely.Geometry] = {}
    if given is not None:
        projected = given.to_crs(units.crs)
        for code, geom in zip(projected["settlement_id"].astype(str), projected.geometry,
                              strict=True):
            polygons[code] = shapely.make_valid(geom)
    given_area = shapely.union_all(list(polygons.values())) if polygons else None
    hulls: dict[str, shapely.Geometry] = {}
    points = units.geometry.to_numpy()
    rows_of = by_settlement.indices
    for code in names.index:
        if code in polygons:
            continue
        mine = points[rows_of[code]]
        hull = shapely.convex_hull(shapely.multipoints(mine)).buffer(margin_m, quad_segs=4)
        if given_area is not None and not given_area.is_empty:
            hull = hull.difference(given_area)
        hulls[code] = hull
        logger.debug("settlement %s: no polygon given, using the hull of its units + %.0f m",
                     code, margin_m)
    if hulls:
        first = ", ".join(list(hulls)[:3]) + (", …" if len(hulls) > 3 else "")
        logger.info("%d settlement(s) have no polygon given (%s); each uses the hull of its "
                    "units + %.0f m", len(hulls), first, margin_m)
    polygons.update(_share_out_overlaps(units, hulls))
    codes = list(names.index)
    return gpd.GeoDataFrame(
        {"settlement_id": codes, "settlement_name": [names[c] for c in codes]},
        geometry=[polygons[c] for c in codes],
        crs=units.crs,
    )


def _share_out_overlaps(
    units: gpd.GeoDataFrame, hulls: dict[str, shapely.Geometry]
) -> dict[str, shapely.Geometry]:
    """The hulls, with any area claimed by two of them given to the nearest unit's settlement."""
    codes = list(hulls)
    if len(codes) < 2:
        return hulls
    tree = shapely.STRtree([hulls[c] for c in codes])
    left, right = tree.query([hulls[c] for c in codes], predicate="intersects")
    clash = [(a, b) for a, b in zip(left.tolist(), right.tolist(), strict=True)
             if a < b and shapely.intersection(hulls[codes[a]], hulls[codes[b]]).area > 1e-6]
    if not clash:
        return hulls
    involved = sorted({codes[i] for pair in clash for i in pair})
    mine = units[units["settlement_id"].isin(involved)]
    domain = shapely.union_all([hulls[c] for c in involved])
    points = spread_duplicate_points(mine.geometry.to_numpy())
    cells = shapely.intersection(
        shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(points),
                                                   extend_to=domain, ordered=True)),
        domain,
    )
    out = dict(hulls)
    codes_of_cells = mine["settlement_id"].to_numpy()
    for code in involved:
        out[code] = shapely.union_all(cells[codes_of_cells == code])
    logger.warning("settlements %s: their derived areas overlapped; the overlap was shared "
                   "out by nearest building", ", ".join(involved))
    return out


def spread_duplicate_points(points: np.ndarray) -> np.ndarray:
    """Move coincident points apart by a few centimetres so each unit gets its own tile."""
    coords = shapely.get_coordinates(points)
    keys = np.round(coords, 2)
    _, _first, counts = np.unique(keys, axis=0, return_index=True, return_counts=True)
    if (counts == 1).all():
        return points
    coords = coords.copy()
    seen: dict[tuple[float, float], int] = {}
    for i, key in enumerate(map(tuple, keys)):
        j = seen.get(key, 0)
        if j:
            angle = 2.3999632 * j  # golden angle: a small deterministic spiral
            radius = 0.05 * np.sqrt(j)
            coords[i] += (radius * np.cos(angle), radius * np.sin(angle))
        seen[key] = j + 1
    return shapely.points(coords)
