"""Hand-built valid plans on a grid of square tiles, for tests that need plan layers.

The grid has ``rows`` x ``cols`` tiles, one unit at each tile's centre. CDs are
blocks of ``cd_rows`` x ``cd_cols`` tiles; an ID is one row of blocks, an RD one
column of blocks; the single settlement is the whole grid. Adjacency is rook
adjacency between neighbouring tiles.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from districting.layers import LAYER_FIELDS

SETTLEMENT = "431010000"
CRS = "EPSG:32641"
ORIGIN = (500_000.0, 5_050_000.0)


def unit_id(row: int, col: int) -> str:
    """The unit_id of the unit in tile (row, col)."""
    return f"U{row:03d}{col:03d}"


def cd_code(block_row: int, number: int) -> str:
    """The cd_code of the ``number``-th CD (1-based), which lies in block row ``block_row``."""
    return f"{SETTLEMENT}-{block_row + 1:02d}-{number:03d}"


def id_code(block_row: int) -> str:
    """The id_code of the ID made of block row ``block_row``."""
    return f"{SETTLEMENT}-{block_row + 1:02d}"


def rd_code(block_col: int) -> str:
    """The rd_code of the RD made of block column ``block_col``."""
    return f"{SETTLEMENT}-R{block_col + 1:02d}"


def tile_box(
    row0: int, col0: int, row1: int, col1: int, *, tile: float = 100.0,
) -> shapely.Polygon:
    """The rectangle covering tiles ``row0..row1-1`` x ``col0..col1-1``."""
    x0, y0 = ORIGIN
    return shapely.box(x0 + col0 * tile, y0 + row0 * tile, x0 + col1 * tile, y0 + row1 * tile)


def tile_centre(row: int, col: int, *, tile: float = 100.0) -> shapely.Point:
    """The centre of tile (row, col), where its unit stands."""
    x0, y0 = ORIGIN
    return shapely.Point(x0 + (col + 0.5) * tile, y0 + (row + 0.5) * tile)


def grid_plan(
    *, rows: int = 4, cols: int = 6, cd_rows: int = 2, cd_cols: int = 3, tile: float = 100.0,
) -> dict[str, gpd.GeoDataFrame]:
    """A valid plan on a grid, as layers named and ordered as in ``LAYER_FIELDS``.

    Parameters
    ----------
    rows, cols
        Grid size in tiles; multiples of ``cd_rows`` and ``cd_cols``.
    cd_rows, cd_cols
        CD size in tiles.
    tile
        Tile side in metres.

    Returns
    -------
    dict
        Layer name to GeoDataFrame in EPSG:32641.
    """
    units = _grid_units(rows=rows, cols=cols, cd_rows=cd_rows, cd_cols=cd_cols, tile=tile)
    cds = _grid_cds(units, cd_rows=cd_rows, cd_cols=cd_cols, tile=tile)
    ids = _grid_parents(cds, units, by="id_code")
    rds = _grid_parents(cds, units, by="rd_code")
    layers = {
        "units": units,
        "counting_districts": cds,
        "instructor_districts": ids,
        "registration_districts": rds,
        "registration_points": _grid_points(units),
        "unit_adjacency": _grid_edges(rows=rows, cols=cols, tile=tile),
        "settlements": _grid_settlement(units, rows=rows, cols=cols, tile=tile),
    }
    return {
        name: gpd.GeoDataFrame(
            frame[LAYER_FIELDS[name]], geometry=frame.geometry.to_numpy(), crs=CRS,
        )
        for name, frame in layers.items()
    }


def write_plan(layers: dict[str, gpd.GeoDataFrame], directory: Path) -> Path:
    """Write layers to ``directory/plan.gpkg`` and return the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "plan.gpkg"
    path.unlink(missing_ok=True)
    for name, frame in layers.items():
        pyogrio.write_dataframe(frame, path, layer=name)
    return directory


def _grid_units(
    *, rows: int, cols: int, cd_rows: int, cd_cols: int, tile: float,
) -> gpd.GeoDataFrame:
    """One unit per tile with small deterministic attributes."""
    row, col = (a.ravel() for a in np.mgrid[0:rows, 0:cols])
    block_row, block_col = row // cd_rows, col // cd_cols
    number = block_row * (cols // cd_cols) + block_col + 1
    dwellings = 1 + (row + col) % 3
    x0, y0 = ORIGIN
    return gpd.GeoDataFrame(
        {
            "unit_id": [unit_id(r, c) for r, c in zip(row, col, strict=True)],
            "building_id": [f"B{r:03d}{c:03d}" for r, c in zip(row, col, strict=True)],
            "settlement_id": SETTLEMENT,
            "address": [f"street {r + 1}, house {c + 1}" for r, c in zip(row, col, strict=True)],
            "dwellings": dwellings,
            "residents": 2 * dwellings + col % 2,
            "households": dwellings,
            "online_share": 0.3,
            "workload": 10.0 + 0.25 * (row % 4),
            "cd_code": [cd_code(b, n) for b, n in zip(block_row, number, strict=True)],
            "id_code": [id_code(b) for b in block_row],
            "rd_code": [rd_code(b) for b in block_col],
            "dwelling_from": 0,
            "dwelling_to": 0,
            "visit_order": (row % cd_rows) * cd_cols + col % cd_cols + 1,
            "walk_min": 0.0,
            "block_row": block_row,
            "block_col": block_col,
        },
        geometry=shapely.points(x0 + (col + 0.5) * tile, y0 + (row + 0.5) * tile),
        crs=CRS,
    )


def _grid_cds(
    units: gpd.GeoDataFrame, *, cd_rows: int, cd_cols: int, tile: float,
) -> gpd.GeoDataFrame:
    """CDs as blocks of tiles, with totals and ±15% bounds around the mean workload."""
    groups = units.groupby("cd_code", sort=True)
    cds = groups.agg(
        id_code=("id_code", "first"), rd_code=("rd_code", "first"),
        settlement_id=("settlement_id", "first"), n_units=("unit_id", "size"),
        dwellings=("dwellings", "sum"), residents=("residents", "sum"),
        workload=("workload", "sum"), block_row=("block_row", "first"),
        block_col=("block_col", "first"),
    ).reset_index()
    norm = float(cds["workload"].mean())
    cds["workload_floor"] = 0.85 * norm
    cds["workload_ceiling"] = 1.15 * norm
    cds["utilization"] = cds["workload"] / norm
    cds["bound_exception"] = ""
    cds["walk_min"] = 0.0
    cds["tour_m"] = 0.0
    cds["naive_m"] = 0.0
    geometry = [
        tile_box(r * cd_rows, c * cd_cols, (r + 1) * cd_rows, (c + 1) * cd_cols, tile=tile)
        for r, c in zip(cds["block_row"], cds["block_col"], strict=True)
    ]
    return gpd.GeoDataFrame(cds, geometry=geometry, crs=CRS)


def _grid_parents(cds: gpd.GeoDataFrame, units: gpd.GeoDataFrame, *, by: str) -> gpd.GeoDataFrame:
    """IDs (``by="id_code"``) or RDs (``by="rd_code"``) as the union of their CDs."""
    parents = cds.groupby(by, sort=True).agg(
        settlement_id=("settlement_id", "first"), n_cd=("cd_code", "size"),
        residents=("residents", "sum"), workload=("workload", "sum"),
    ).reset_index()
    geometry = [shapely.union_all(cds.geometry[cds[by] == code]) for code in parents[by]]
    parents["span_exception"] = ""
    points = _grid_points(units).set_index("rd_code")
    if by == "rd_code":
        parents["point_name"] = parents["rd_code"].map(points["point_name"])
        parents["point_building_id"] = parents["rd_code"].map(points["building_id"])
        parents["mean_walk_m"] = 150.0
        parents["max_walk_m"] = 400.0
    return gpd.GeoDataFrame(parents, geometry=geometry, crs=CRS)


def _grid_points(units: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """One registration point per RD, at the RD's first unit."""
    first = units.sort_values("unit_id").drop_duplicates("rd_code").sort_values("rd_code")
    return gpd.GeoDataFrame(
        {
            "rd_code": first["rd_code"].to_numpy(),
            "point_name": [f"school {i + 1}" for i in range(len(first))],
            "building_id": first["building_id"].to_numpy(),
            "function": "school",
        },
        geometry=first.geometry.to_numpy(),
        crs=CRS,
    )


def _grid_edges(*, rows: int, cols: int, tile: float) -> gpd.GeoDataFrame:
    """Rook adjacency between neighbouring tiles, as lines between their units."""
    row, col = (a.ravel() for a in np.mgrid[0:rows, 0:cols])
    right = col + 1 < cols
    up = row + 1 < rows
    r0 = np.concatenate([row[right], row[up]])
    c0 = np.concatenate([col[right], col[up]])
    r1 = np.concatenate([row[right], row[up] + 1])
    c1 = np.concatenate([col[right] + 1, col[up]])
    x0, y0 = ORIGIN
    coords = np.stack([
        np.stack([x0 + (c0 + 0.5) * tile, y0 + (r0 + 0.5) * tile], axis=1),
        np.stack([x0 + (c1 + 0.5) * tile, y0 + (r1 + 0.5) * tile], axis=1),
    ], axis=1)
    return gpd.GeoDataFrame(
        {
            "u": [unit_id(r, c) for r, c in zip(r0, c0, strict=True)],
            "v": [unit_id(r, c) for r, c in zip(r1, c1, strict=True)],
            "length_m": tile,
            "kind": "street",
        },
        geometry=shapely.linestrings(coords),
        crs=CRS,
    )


def _grid_settlement(
    units: gpd.GeoDataFrame, *, rows: int, cols: int, tile: float,
) -> gpd.GeoDataFrame:
    """The single settlement covering the whole grid."""
    return gpd.GeoDataFrame(
        pd.DataFrame({
            "settlement_id": [SETTLEMENT],
            "settlement_name": ["Baikonur (synthetic test grid)"],
            "n_units": [len(units)],
            "residents": [int(units["residents"].sum())],
            "workload": [float(units["workload"].sum())],
        }),
        geometry=[tile_box(0, 0, rows, cols, tile=tile)],
        crs=CRS,
    )
