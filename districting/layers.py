"""The in-memory form of a finished plan: one GeoDataFrame per layer of ``plan.gpkg``.

Every layer is in the plan's local metric CRS (a UTM zone); writers reproject
where a format needs longitude/latitude.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import pandas as pd

#: Field order of each layer in ``plan.gpkg`` (the output contract; geometry comes last).
LAYER_FIELDS: dict[str, list[str]] = {
    "units": [
        "unit_id", "building_id", "settlement_id", "address", "dwellings", "residents",
        "households", "online_share", "workload", "walk_min", "cd_code", "id_code", "rd_code",
        "dwelling_from", "dwelling_to", "visit_order",
    ],
    "counting_districts": [
        "cd_code", "id_code", "rd_code", "settlement_id", "n_units", "dwellings", "residents",
        "workload", "workload_floor", "workload_ceiling", "utilization", "bound_exception",
        "walk_min", "tour_m", "naive_m",
    ],
    "instructor_districts": [
        "id_code", "settlement_id", "n_cd", "residents", "workload", "span_exception",
    ],
    "registration_districts": [
        "rd_code", "settlement_id", "point_name", "point_building_id", "n_cd", "residents",
        "mean_walk_m", "max_walk_m",
    ],
    "registration_points": ["rd_code", "point_name", "building_id", "function"],
    "unit_adjacency": ["u", "v", "length_m", "kind"],
    "settlements": [
        "settlement_id", "settlement_name", "n_units", "residents", "workload",
    ],
}


@dataclass
class PlanLayers:
    """All layers of a plan, each a GeoDataFrame in the plan's metric CRS.

    ``unit_adjacency`` may come without geometry: each edge's line is the segment
    between its two units' points, drawn when the layer is written (a national plan's
    eight million lines would take gigabytes of memory for nothing else).
    """

    units: gpd.GeoDataFrame
    counting_districts: gpd.GeoDataFrame
    instructor_districts: gpd.GeoDataFrame
    registration_districts: gpd.GeoDataFrame
    registration_points: gpd.GeoDataFrame
    unit_adjacency: gpd.GeoDataFrame
    settlements: gpd.GeoDataFrame

    def as_dict(self) -> dict[str, gpd.GeoDataFrame]:
        """Layers by name, in the order they are written."""
        return {name: getattr(self, name) for name in LAYER_FIELDS}


def has_geometry(frame: pd.DataFrame) -> bool:
    """True when ``frame`` is a GeoDataFrame with its geometry column."""
    return isinstance(frame, gpd.GeoDataFrame) and frame._geometry_column_name in frame
