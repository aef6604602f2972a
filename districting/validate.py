"""Check a Stage-1 register and report every problem in one pass.

Each problem names the row (1-based, in file order), the column and the reason.
Errors stop planning; warnings are reported and do not.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError, ProjError

from districting.errors import Problem, RegisterValidationError
from districting.io.register import KINDS, REQUIRED_COLUMNS, RawRegister

COUNT_COLUMNS = ("dwellings", "residents")
OPTIONAL_COUNTS = ("households", "floors", "entrances")
#: The largest count one building may have: far above any real building (the tallest has
#: 163 floors, the most populous homes some 20,000 residents; ``import-osm`` keeps at most
#: 200 levels), and low enough that no sum over a register can overflow.
COUNT_MAXIMUM = {"dwellings": 100_000, "residents": 100_000, "households": 100_000,
                 "floors": 200, "entrances": 1_000}
#: Residents per dwelling (averaged over the building) above which a register is doubted
#: (warning) or refused (error). Kazakhstan's households average 3.5 people and families of
#: 10–12 occur in the south; more than 15 people per dwelling is rare, and more than 30
#: is not a dwelling but a collective quarter (``kind`` ``collective`` has no such limit).
RESIDENTS_PER_DWELLING_WARNING = 15
RESIDENTS_PER_DWELLING_MAXIMUM = 30
#: A building farther than ``max(FAR_MINIMUM_KM, FAR_FACTOR × median distance)`` from the
#: median point of its settlement's buildings is a warning (checked when there is no
#: settlements layer; with one, a building outside its polygon is an error). Buildings
#: spread evenly over a disc lie at most ~1.4 × their median distance from its middle.
FAR_FACTOR = 10.0
FAR_MINIMUM_KM = 10.0
EARTH_RADIUS_KM = 6371.0088
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


def _shown(value: Any) -> str:
    """A cell as it is quoted in a message: text in quotes, a number as written."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


def _as_count(value: Any) -> tuple[int | None, str | None]:
    """Parse a count cell: the integer, or the reason it is not a count ≥ 0."""
    if _is_blank(value):
        return None, "is empty"
    if isinstance(value, (bytes, bytearray)):
        return None, "is binary data (a BLOB), not a number"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None, f"{_shown(value)} is not a number"
    if not math.isfinite(number):
        return None, f"{_shown(value)} is not a finite number"
    if number != int(number):
        return None, f"{_shown(value)} is not a whole number"
    if number < 0:
        return None, f"{int(number)} is negative"
    return int(number), None


IDENTIFIER_MAX_CHARS = 64
#: Four-byte letters are rare, but 64 of them would make a file name longer than 255 bytes.
IDENTIFIER_MAX_BYTES = 128
IDENTIFIER_RULE = (f"use 1–{IDENTIFIER_MAX_CHARS} letters, digits, '-', '_' or '.', "
                   "not starting with '.' or '-'")
_IDENTIFIER_PUNCTUATION = "-_."
_WINDOWS_DEVICES = re.compile(r"(?i)(CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9])(\..*)?")
#: Identifiers that surely pass :func:`safe_identifier_problem` (only ASCII, explicit
#: classes, so that it means the same to Python and to Arrow's RE2); the rest are looked
#: at one by one.
_PLAIN_IDENTIFIER = r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}"


def _character(ch: str) -> str:
    if ch.isprintable() and not ch.isspace():
        return repr(ch)
    return f"U+{ord(ch):04X} ({unicodedata.name(ch, 'a control character').lower()})"


def safe_identifier_problem(value: str) -> str | None:
    """Why ``value`` is not safe as an identifier that becomes a file name or a code,
    or ``None`` when it is.

    A safe identifier has 1–64 characters (at most 128 bytes in UTF-8) that are letters
    (any script, with their combining marks), digits, ``-``, ``_`` or ``.``; it does not
    start with ``.`` or ``-`` and is not a Windows device name (``CON``, ``NUL``, …).
    So it has no path separator, no ``..`` of its own, no whitespace and no control
    character. Real codes fit easily: KATO codes have 9 digits, ``import-osm`` writes
    ``osm-w<way id>``. The value is taken as it is (planning strips surrounding
    whitespace first, so validation passes the stripped value).
    """
    if not value:
        return "is empty"
    if len(value) > IDENTIFIER_MAX_CHARS:
        return f"is {len(value)} characters long, more than {IDENTIFIER_MAX_CHARS}"
    size = len(value.encode("utf-8", errors="surrogatepass"))
    if size > IDENTIFIER_MAX_BYTES:
        return f"is {size} bytes long in UTF-8, more than {IDENTIFIER_MAX_BYTES}"
    if value[0] in ".-":
        return f"starts with {value[0]!r}"
    bad: list[str] = []
    for position, ch in enumerate(value):
        category = unicodedata.category(ch)
        allowed = (ch.isalnum() or ch in _IDENTIFIER_PUNCTUATION
                   or (position > 0 and category in ("Mn", "Mc")))
        if not allowed and ch not in bad:
            bad.append(ch)
    if bad:
        shown = ", ".join(_character(ch) for ch in bad[:3]) + (", …" if len(bad) > 3 else "")
        return f"contains {shown}"
    if _WINDOWS_DEVICES.fullmatch(value):
        return "is a reserved device name on Windows"
    return None


def _label(text: str) -> str:
    """An identifier as a message shows it: as it is when it is safe, else quoted and cut
    short, so that a hostile one cannot flood or garble the output."""
    key = text.strip()
    if key and safe_identifier_problem(key) is None:
        return key
    return repr(key if len(key) <= 40 else key[:40] + "…")


class _Collector:
    def __init__(self, source: str, ids: list[str]) -> None:
        self.source = source
        self.ids = ids
        self.problems: list[Problem] = []

    def add(self, severity: str, row: int | None, column: str | None, message: str) -> None:
        if row is not None and row - 1 < len(self.ids) and self.ids[row - 1]:
            message = f"(building_id {_label(self.ids[row - 1])}) {message}"
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
    _check_identifiers(frame, out)
    _check_text(frame, out)
    counts = _check_counts(frame, out)
    _check_consistency(frame, counts, out)
    _check_total(counts, out)
    usable, centres = _check_geometry(frame, out)
    if raw.settlements is not None:
        _check_settlements(frame, raw.settlements, out)
    else:
        _check_far_buildings(frame, usable, centres, out)
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


def _check_identifiers(frame: pd.DataFrame, out: _Collector) -> None:
    """building_id and settlement_id become file names and district codes: each must be a
    safe identifier (:func:`safe_identifier_problem`) once stripped, as planning strips it.
    Empty cells are reported by their own checks."""
    for name in ("building_id", "settlement_id"):
        if name not in frame.columns:
            continue
        column = frame[name]
        keys = column.astype(str).str.strip()
        plain = (np.asarray(keys.str.fullmatch(_PLAIN_IDENTIFIER), dtype=bool)
                 & ~np.asarray(keys.str.fullmatch(_WINDOWS_DEVICES.pattern), dtype=bool))
        reasons: dict[str, str | None] = {}
        for row in _rows(~plain & ~_blank(column)):
            value = column.iat[row - 1]
            if _is_blank(value):
                continue
            key = str(value).strip()
            if key not in reasons:
                reasons[key] = safe_identifier_problem(key)
            reason = reasons[key]
            if reason is not None:
                out.add("error", row, name,
                        f"{name} {_label(key)} is not a safe identifier: it {reason}; "
                        f"{IDENTIFIER_RULE}")


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
        if values.dtype == object:  # e.g. True and b"1" parse as 1: the row rule decides
            whole &= np.asarray([not isinstance(v, (bool, bytes, bytearray)) for v in values],
                                dtype=bool)
        parsed = np.where(whole, numbers, np.nan)
        for row in _rows(~whole):
            value = values.iat[row - 1]
            if not required and _is_blank(value):
                continue
            number, reason = _as_count(value)
            if reason is not None:
                out.add("error", row, column, f"{column} {reason}; expected a whole number ≥ 0")
            parsed[row - 1] = np.nan if number is None else number
        maximum = COUNT_MAXIMUM[column]
        with np.errstate(invalid="ignore"):
            huge = parsed > maximum
        for row in _rows(huge):
            out.add("error", row, column,
                    f"{column} {_number(parsed[row - 1])} is more than one building can have "
                    f"(at most {maximum:,}); check the value")
        counts[column] = parsed
    return counts


def _number(value: float) -> str:
    """A whole count for a message: with thousands separators, or in powers of ten when
    it is too long to read."""
    return f"{int(value):,}" if value < 1e15 else f"{value:.3g}"


def _check_total(counts: dict[str, np.ndarray], out: _Collector) -> None:
    """A register in which no building has residents has nothing to count. (When no cell
    of residents is a count at all, the cells' own errors say so.)"""
    residents = counts.get("residents", np.zeros(0))
    known = residents[~np.isnan(residents)]
    if len(known) and not (known > 0).any():
        out.add("error", None, "residents",
                "the register has no residents: every building has 0 residents, so there is "
                "no one to count")


def _check_consistency(frame: pd.DataFrame, counts: dict[str, np.ndarray],
                       out: _Collector) -> None:
    dwellings = counts.get("dwellings", np.zeros(0))
    residents = counts.get("residents", np.zeros(0))
    n = min(len(dwellings), len(residents))
    if n == 0:
        return
    d, r = dwellings[:n], residents[:n]
    h = counts["households"][:n] if "households" in counts else np.full(n, np.nan)
    kinds = (frame["kind"].astype(str).str.strip().to_numpy()[:n] if "kind" in frame.columns
             else np.full(n, None, dtype=object))  # stripped, as planning strips it
    with np.errstate(invalid="ignore", divide="ignore"):
        no_dwellings = (d == 0) & (r > 0)
        lodgers = (kinds == "non_residential") & (r > 0)
        crowded = np.isin(kinds, ("residential", "mixed")) & (h > d)
        per_dwelling = np.where(d > 0, r / d, np.nan)
        believable = ((kinds != "collective") & (r <= COUNT_MAXIMUM["residents"])
                      & (d <= COUNT_MAXIMUM["dwellings"]))
        packed = believable & (per_dwelling > RESIDENTS_PER_DWELLING_WARNING)
    for row in _rows(no_dwellings | lodgers | crowded | packed):
        i = row - 1
        if no_dwellings[i]:
            out.add("error", row, "residents",
                    f"{int(r[i])} residents recorded in a building with no dwellings")
        if packed[i]:
            refused = per_dwelling[i] > RESIDENTS_PER_DWELLING_MAXIMUM
            limit = (f"more than the {RESIDENTS_PER_DWELLING_MAXIMUM} a dwelling can house "
                     "(a dormitory, barracks or care home is kind 'collective')" if refused
                     else f"more than {RESIDENTS_PER_DWELLING_WARNING}, which is rare")
            out.add("error" if refused else "warning", row, "residents",
                    f"{int(r[i]):,} residents in {int(d[i]):,} dwelling(s) is "
                    f"{per_dwelling[i]:.1f} per dwelling, {limit}")
        if lodgers[i]:
            out.add("warning", row, "residents",
                    f"a non-residential building has {int(r[i])} residents")
        if crowded[i]:
            out.add("warning", row, "households",
                    f"{int(h[i])} households exceed the {int(d[i])} dwellings")


def _centres(geoms: np.ndarray, types: np.ndarray) -> np.ndarray:
    """Each geometry's centroid as (x, y): a point's own coordinates, read directly (a
    national register is mostly points), the others' centroids."""
    centres = np.full((len(geoms), 2), np.nan)
    points = types == 0
    centres[points, 0] = shapely.get_x(geoms[points])
    centres[points, 1] = shapely.get_y(geoms[points])
    others = np.flatnonzero(~points)
    if len(others):
        centres[others] = shapely.get_coordinates(shapely.centroid(geoms[others]))
    return centres


def _check_geometry(frame: gpd.GeoDataFrame, out: _Collector
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Report the geometry errors; return the rows whose geometry is usable for distances
    and every row's centre (x, y; NaN where the geometry is missing or empty)."""
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
    ok = ~missing & ~empty
    usable = ok & valid & allowed
    centres = np.full((len(geoms), 2), np.nan)
    centres[ok] = _centres(geoms[ok], types[ok])
    if frame.crs is not None and frame.crs.is_geographic:
        points = centres[ok]
        bad = (np.abs(points[:, 0]) > 180) | (np.abs(points[:, 1]) > 90)
        for row in (np.flatnonzero(ok)[bad] + 1):
            out.add("error", int(row), "geometry",
                    "coordinates are outside longitude/latitude range (lon/lat swapped "
                    "or projected coordinates with a geographic CRS?)")
        usable[np.flatnonzero(ok)[bad]] = False
    return usable, centres


def _lon_lat(points: np.ndarray, crs: CRS) -> tuple[np.ndarray, np.ndarray]:
    """Longitudes and latitudes in degrees of ``points`` (x, y in ``crs``)."""
    if crs.equals("EPSG:4326") or crs.equals("OGC:CRS84"):
        return points[:, 0], points[:, 1]
    geographic = crs.geodetic_crs or CRS("EPSG:4326")
    lon, lat = Transformer.from_crs(crs, geographic, always_xy=True).transform(
        points[:, 0], points[:, 1])
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def _check_far_buildings(frame: gpd.GeoDataFrame, usable: np.ndarray, centres: np.ndarray,
                         out: _Collector) -> None:
    """Warn about a building far from the rest of its settlement (no settlements layer).

    A settlement's middle is the median of its buildings' points (taken as unit vectors,
    so that it is robust to the stray point and does not break at the antimeridian), its
    spread the median great-circle distance of its buildings from that middle. A building
    farther than ``max(FAR_MINIMUM_KM, FAR_FACTOR × spread)`` is warned about.
    """
    if frame.crs is None or "settlement_id" not in frame.columns:
        return
    usable = usable & ~_blank(frame["settlement_id"])
    rows = np.flatnonzero(usable)
    if len(rows) < 3:
        return
    points = centres[rows]
    try:
        lon, lat = _lon_lat(points, CRS(frame.crs))
    except (CRSError, ProjError):  # a CRS pyproj cannot take to lon/lat: no distances
        return
    finite = np.isfinite(lon) & np.isfinite(lat)
    rows, lon, lat = rows[finite], np.radians(lon[finite]), np.radians(lat[finite])
    vectors = np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon),
                               np.sin(lat)])
    codes = frame["settlement_id"].astype(str).str.strip().to_numpy()[rows]
    group = pd.factorize(codes)[0]  # settlements as small integers: quick to group by
    table = pd.DataFrame(vectors, columns=["x", "y", "z"])
    middle = table.groupby(group, sort=False).transform("median").to_numpy(copy=True)
    length = np.linalg.norm(middle, axis=1)
    middle /= np.where(length > 0, length, 1.0)[:, None]
    chord = np.linalg.norm(vectors - middle, axis=1)
    km = 2 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2, 0.0, 1.0))
    by_code = pd.Series(km).groupby(group, sort=False)
    spread = by_code.transform("median").to_numpy()
    size = by_code.transform("size").to_numpy()
    limit = np.maximum(FAR_MINIMUM_KM, FAR_FACTOR * spread)
    far = km > limit
    for i in np.flatnonzero(far):  # rows ascend, so the warnings come in row order
        out.add("warning", int(rows[i]) + 1, "geometry",
                f"the building lies {km[i]:,.1f} km from the median point of settlement "
                f"{_label(codes[i])}'s {size[i]} buildings, half of which lie within "
                f"{spread[i]:,.1f} km of it (warned above {limit[i]:,.1f} km); check its "
                "coordinates and settlement_id")


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
