"""Check a Stage-1 register and report every problem in one pass.

Each problem names the row (1-based, in file order), the column and the reason.
Errors stop planning; warnings are reported and do not.
"""

from __future__ import annotations

import math
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from districting.errors import Problem, RegisterValidationError
from districting.register import KINDS, REQUIRED_COLUMNS, RawRegister

COUNT_COLUMNS = ("dwellings", "residents")
OPTIONAL_COUNTS = ("households", "floors", "entrances")
KNOWN_FUNCTIONS = (
    "", "school", "post_office", "public_service_centre", "akimat", "shop", "clinic",
    "kindergarten", "office", "industrial", "dormitory", "hostel", "other",
)


def _is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _as_count(value: Any) -> tuple[int | None, str | None]:
    """Parse a count cell: the integer, or the reason it is not a count ≥ 0."""
    if _is_blank(value):
        return None, "is empty"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None, f"{value!r} is not a number"
    if not math.isfinite(number):
        return None, f"{value!r} is not a finite number"
    if number != int(number):
        return None, f"{value!r} is not a whole number"
    if number < 0:
        return None, f"{int(number)} is negative"
    return int(number), None


class _Collector:
    def __init__(self, source: str, ids: list[str]) -> None:
        self.source = source
        self.ids = ids
        self.problems: list[Problem] = []

    def add(self, severity: str, row: int | None, column: str | None, message: str) -> None:
        if row is not None and row - 1 < len(self.ids) and self.ids[row - 1]:
            message = f"(building_id {self.ids[row - 1]}) {message}"
        self.problems.append(Problem(severity, row, column, message, self.source))


def validate_register(raw: RawRegister) -> list[Problem]:
    """Every problem in the register, errors and warnings, in row order per check."""
    frame = raw.buildings
    ids = (
        [("" if _is_blank(v) else str(v)) for v in frame["building_id"]]
        if "building_id" in frame.columns else [""] * len(frame)
    )
    out = _Collector(raw.source.name, ids)
    out.problems.extend(raw.load_problems)
    if frame.crs is None:
        out.add("error", None, "geometry", "the file has no coordinate reference system (CRS)")
    for column in REQUIRED_COLUMNS:
        if column not in frame.columns:
            out.add("error", None, column, "required column is missing")
    if len(frame) == 0:
        out.add("error", None, None, "the register has no rows")
        return out.problems
    _check_ids(frame, out)
    _check_text(frame, out)
    counts = _check_counts(frame, out)
    _check_consistency(frame, counts, out)
    _check_geometry(frame, out)
    if raw.settlements is not None:
        _check_settlements(frame, raw.settlements, out)
    return out.problems


def _check_ids(frame: pd.DataFrame, out: _Collector) -> None:
    if "building_id" not in frame.columns:
        return
    first_row: dict[str, int] = {}
    for row, value in enumerate(frame["building_id"], start=1):
        if _is_blank(value):
            out.add("error", row, "building_id", "building_id is empty")
            continue
        key = str(value).strip()  # planning strips ids, so "A" and "A " are the same building
        if key in first_row:
            out.add("error", row, "building_id",
                    f"duplicate building_id {key!r} (first seen in row {first_row[key]})")
        else:
            first_row[key] = row


def _check_text(frame: pd.DataFrame, out: _Collector) -> None:
    for column in ("settlement_id", "settlement_name"):
        if column in frame.columns:
            for row, value in enumerate(frame[column], start=1):
                if _is_blank(value):
                    out.add("error", row, column, f"{column} is empty")
    if "address" in frame.columns:
        for row, value in enumerate(frame["address"], start=1):
            if _is_blank(value):
                out.add("warning", row, "address", "address is empty")
    if "kind" in frame.columns:
        for row, value in enumerate(frame["kind"], start=1):
            if _is_blank(value) or str(value).strip() not in KINDS:
                out.add("error", row, "kind",
                        f"kind {value!r} is not one of {', '.join(KINDS)}")
    if "function" in frame.columns:
        for row, value in enumerate(frame["function"], start=1):
            if not _is_blank(value) and str(value).strip() not in KNOWN_FUNCTIONS:
                out.add("warning", row, "function",
                        f"function {value!r} is not a known building function "
                        "(it will not be a registration-point candidate)")
    if "settlement_id" in frame.columns and "settlement_name" in frame.columns:
        names = frame.groupby(frame["settlement_id"].astype(str))["settlement_name"].nunique()
        for code, count in names.items():
            if count > 1:
                out.add("warning", None, "settlement_name",
                        f"settlement_id {code} has {count} different settlement names")


def _check_counts(frame: pd.DataFrame, out: _Collector) -> dict[str, list[int | None]]:
    counts: dict[str, list[int | None]] = {}
    for column in COUNT_COLUMNS + tuple(c for c in OPTIONAL_COUNTS if c in frame.columns):
        required = column in COUNT_COLUMNS
        parsed: list[int | None] = []
        for row, value in enumerate(frame[column] if column in frame.columns else [], start=1):
            if not required and _is_blank(value):
                parsed.append(None)
                continue
            number, reason = _as_count(value)
            if reason is not None:
                out.add("error", row, column, f"{column} {reason}; expected a whole number ≥ 0")
            parsed.append(number)
        counts[column] = parsed
    return counts


def _check_consistency(
    frame: pd.DataFrame, counts: dict[str, list[int | None]], out: _Collector
) -> None:
    dwellings = counts.get("dwellings") or []
    residents = counts.get("residents") or []
    households = counts.get("households") or [None] * len(dwellings)
    kinds = list(frame["kind"]) if "kind" in frame.columns else [None] * len(dwellings)
    for row, (d, r, h, kind) in enumerate(
        zip(dwellings, residents, households, kinds, strict=False), start=1
    ):
        if d is not None and r is not None and d == 0 and r > 0:
            out.add("error", row, "residents",
                    f"{r} residents recorded in a building with no dwellings")
        if kind == "non_residential" and r:
            out.add("warning", row, "residents",
                    f"a non-residential building has {r} residents")
        if h is not None and d is not None and kind in ("residential", "mixed") and h > d:
            out.add("warning", row, "households",
                    f"{h} households exceed the {d} dwellings")


def _check_geometry(frame: gpd.GeoDataFrame, out: _Collector) -> None:
    geoms = frame.geometry.to_numpy()
    missing = pd.isna(geoms) | shapely.is_missing(geoms)
    empty = ~missing & shapely.is_empty(geoms)
    valid = shapely.is_valid(geoms)
    types = shapely.get_type_id(geoms)
    allowed = np.isin(types, (0, 3, 6))  # Point, Polygon, MultiPolygon
    for row in np.flatnonzero(missing | empty) + 1:
        out.add("error", int(row), "geometry", "geometry is missing or empty")
    for row in np.flatnonzero(~missing & ~empty & ~valid) + 1:
        reason = shapely.is_valid_reason(geoms[row - 1])
        out.add("error", int(row), "geometry", f"geometry is invalid ({reason})")
    for row in np.flatnonzero(~missing & ~empty & ~allowed) + 1:
        out.add("error", int(row), "geometry",
                f"geometry is a {geoms[row - 1].geom_type}; expected a Point or Polygon")
    if frame.crs is not None and frame.crs.is_geographic:
        ok = ~missing & ~empty
        points = shapely.get_coordinates(shapely.centroid(geoms[ok]))
        bad = (np.abs(points[:, 0]) > 180) | (np.abs(points[:, 1]) > 90)
        for row in (np.flatnonzero(ok)[bad] + 1):
            out.add("error", int(row), "geometry",
                    "coordinates are outside longitude/latitude range (lon/lat swapped "
                    "or projected coordinates with a geographic CRS?)")


def _check_settlements(
    frame: gpd.GeoDataFrame, settlements: gpd.GeoDataFrame, out: _Collector
) -> None:
    if "settlement_id" not in settlements.columns:
        out.add("error", None, "settlement_id",
                "the settlements layer has no settlement_id column")
        return
    if "settlement_id" not in frame.columns or frame.crs is None:
        return
    polygons = settlements.to_crs(frame.crs) if settlements.crs is not None else settlements
    by_code = {str(code): geom for code, geom in zip(
        polygons["settlement_id"], polygons.geometry, strict=True)}
    for row, (code, geom) in enumerate(zip(frame["settlement_id"], frame.geometry,
                                           strict=True), start=1):
        if _is_blank(code) or geom is None or geom.is_empty:
            continue
        polygon = by_code.get(str(code))
        if polygon is None:
            out.add("error", row, "settlement_id",
                    f"settlement {code} has no polygon in the settlements layer")
        elif not polygon.covers(geom.representative_point()):
            out.add("error", row, "geometry",
                    f"the building lies outside the polygon of its settlement {code}")


def raise_for_errors(problems: list[Problem]) -> None:
    """Raise :class:`RegisterValidationError` if any problem is an error."""
    if any(p.severity == "error" for p in problems):
        raise RegisterValidationError(problems)
