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


# Each check finds the rows that may have a problem with whole-column operations, then
# words the problem row by row, so that a national register (millions of rows) takes
# seconds. The row-by-row rule (``_is_blank``, ``_as_count``) stays the one that decides.


def _blank(column: pd.Series) -> np.ndarray:
    """Rows that may be blank: missing, or text that is empty once stripped."""
    text = column.astype(str)
    return np.asarray(column.isna() | (text.str.strip() == ""), dtype=bool)


def _rows(mask: np.ndarray) -> list[int]:
    """The 1-based rows of a mask."""
    return (np.flatnonzero(mask) + 1).tolist()


def _check_ids(frame: pd.DataFrame, out: _Collector) -> None:
    if "building_id" not in frame.columns:
        return
    column = frame["building_id"]
    blank = _blank(column)
    keys = column.astype(str).str.strip()  # planning strips ids: "A" and "A " are one building
    repeated = np.asarray(keys.duplicated(keep="first"), dtype=bool) & ~blank
    first_row: dict[str, int] = {}
    if repeated.any():
        wanted = set(keys[repeated])
        for row in _rows(~blank & np.asarray(keys.isin(wanted), dtype=bool)):
            first_row.setdefault(str(keys.iat[row - 1]), row)
    for row in _rows(blank | repeated):
        value = column.iat[row - 1]
        if _is_blank(value):
            out.add("error", row, "building_id", "building_id is empty")
            continue
        key = str(value).strip()
        if first_row.get(key, row) != row:
            out.add("error", row, "building_id",
                    f"duplicate building_id {key!r} (first seen in row {first_row[key]})")


def _check_text(frame: pd.DataFrame, out: _Collector) -> None:
    for name in ("settlement_id", "settlement_name"):
        if name in frame.columns:
            for row in _rows(_blank(frame[name])):
                if _is_blank(frame[name].iat[row - 1]):
                    out.add("error", row, name, f"{name} is empty")
    if "address" in frame.columns:
        for row in _rows(_blank(frame["address"])):
            if _is_blank(frame["address"].iat[row - 1]):
                out.add("warning", row, "address", "address is empty")
    if "kind" in frame.columns:
        kind = frame["kind"]
        odd = _blank(kind) | ~np.asarray(kind.astype(str).str.strip().isin(KINDS), dtype=bool)
        for row in _rows(odd):
            value = kind.iat[row - 1]
            if _is_blank(value) or str(value).strip() not in KINDS:
                out.add("error", row, "kind",
                        f"kind {value!r} is not one of {', '.join(KINDS)}")
    if "function" in frame.columns:
        function = frame["function"]
        known = np.asarray(function.astype(str).str.strip().isin(KNOWN_FUNCTIONS), dtype=bool)
        for row in _rows(~_blank(function) & ~known):
            value = function.iat[row - 1]
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


def _check_counts(frame: pd.DataFrame, out: _Collector) -> dict[str, np.ndarray]:
    """Each count column as floats (NaN where there is no count), its errors reported."""
    counts: dict[str, np.ndarray] = {}
    for column in COUNT_COLUMNS + tuple(c for c in OPTIONAL_COUNTS if c in frame.columns):
        if column not in frame.columns:
            counts[column] = np.zeros(0)
            continue
        required = column in COUNT_COLUMNS
        values = frame[column]
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(numbers) & (numbers == np.round(numbers)) & (numbers >= 0)
        if values.dtype == object:  # e.g. True parses as 1: the row rule decides
            whole &= np.asarray([not isinstance(v, bool) for v in values], dtype=bool)
        parsed = np.where(whole, numbers, np.nan)
        for row in _rows(~whole):
            value = values.iat[row - 1]
            if not required and _is_blank(value):
                continue
            number, reason = _as_count(value)
            if reason is not None:
                out.add("error", row, column, f"{column} {reason}; expected a whole number ≥ 0")
            parsed[row - 1] = np.nan if number is None else number
        counts[column] = parsed
    return counts


def _check_consistency(frame: pd.DataFrame, counts: dict[str, np.ndarray],
                       out: _Collector) -> None:
    dwellings = counts.get("dwellings", np.zeros(0))
    residents = counts.get("residents", np.zeros(0))
    n = min(len(dwellings), len(residents))
    if n == 0:
        return
    d, r = dwellings[:n], residents[:n]
    h = counts["households"][:n] if "households" in counts else np.full(n, np.nan)
    kinds = (frame["kind"].to_numpy()[:n] if "kind" in frame.columns
             else np.full(n, None, dtype=object))
    with np.errstate(invalid="ignore"):
        no_dwellings = (d == 0) & (r > 0)
        lodgers = (kinds == "non_residential") & (r > 0)
        crowded = np.isin(kinds, ("residential", "mixed")) & (h > d)
    for row in _rows(no_dwellings | lodgers | crowded):
        i = row - 1
        if no_dwellings[i]:
            out.add("error", row, "residents",
                    f"{int(r[i])} residents recorded in a building with no dwellings")
        if lodgers[i]:
            out.add("warning", row, "residents",
                    f"a non-residential building has {int(r[i])} residents")
        if crowded[i]:
            out.add("warning", row, "households",
                    f"{int(h[i])} households exceed the {int(d[i])} dwellings")


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
    codes = frame["settlement_id"]
    geoms = frame.geometry.to_numpy()
    usable = ~_blank(codes) & ~pd.isna(geoms)
    usable[usable] = ~shapely.is_empty(geoms[usable])
    outside = np.zeros(len(frame), dtype=bool)
    homeless = np.zeros(len(frame), dtype=bool)
    rows = np.flatnonzero(usable)
    for code, mine in pd.Series(rows).groupby(codes.to_numpy()[rows].astype(str)).indices.items():
        positions = rows[mine]
        polygon = by_code.get(str(code))
        if polygon is None:
            homeless[positions] = True
        else:
            shapely.prepare(polygon)
            inside = shapely.covers(polygon, shapely.point_on_surface(geoms[positions]))
            outside[positions[~inside]] = True
    for row in _rows(homeless | outside):
        code = codes.iat[row - 1]
        if homeless[row - 1]:
            out.add("error", row, "settlement_id",
                    f"settlement {code} has no polygon in the settlements layer")
        else:
            out.add("error", row, "geometry",
                    f"the building lies outside the polygon of its settlement {code}")


def raise_for_errors(problems: list[Problem]) -> None:
    """Raise :class:`RegisterValidationError` if any problem is an error."""
    if any(p.severity == "error" for p in problems):
        raise RegisterValidationError(problems)
