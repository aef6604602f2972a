"""Re-verify a finished plan from its layers alone.

:func:`check_plan` reads ``plan.gpkg`` from a plan directory; :func:`check_layers`
runs the same checks on in-memory layers (the pipeline uses it before writing).
Neither stops at the first problem: every violation found is listed, each as a
:class:`Violation` with a stable ``kind`` slug and one readable sentence.

The checks follow "What a good district is" in the mission:

- **schema** -- ``missing_layer``, ``missing_field``, ``crs_mismatch``, ``crs_not_metric``;
- **keys** -- ``missing_key``, ``duplicate_unit``, ``duplicate_code``;
- **coverage** -- ``unassigned_unit``, ``unknown_cd``, ``empty_district``;
- **contiguity** on the ``unit_adjacency`` graph -- ``unknown_unit``, ``disconnected_cd``,
  ``disconnected_id``, ``disconnected_rd``;
- **territories** -- ``empty_territory``, ``not_polygon``, ``invalid_geometry``,
  ``cd_multipart``, ``id_multipart``, ``rd_multipart``, ``territory_overlap``,
  ``territory_gap``, ``territory_outside``, ``territory_mismatch``, ``unit_outside_territory``;
- **bounds** -- ``bound_violation``;
- **nesting** -- ``nesting``, ``rd_point_count``, ``rd_point_mismatch``, ``rd_point_outside``;
- **sums** -- ``sum_mismatch`` (counts such as ``n_units`` and ``n_cd`` included).

Empty strings may be stored as ``""`` or as NULL; both count as empty.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from districting.errors import InputFileError, PlanCheckError
from districting.layers import LAYER_FIELDS, has_geometry
from districting.territory import coverage_union

#: Fields holding text (codes, names, reasons); every other field of LAYER_FIELDS is numeric.
TEXT_FIELDS = frozenset({
    "unit_id", "building_id", "settlement_id", "address", "cd_code", "id_code", "rd_code",
    "bound_exception", "span_exception", "point_name", "point_building_id", "u", "v", "kind",
    "function", "settlement_name",
})

#: Relative tolerance on workload sums and bounds.
WORKLOAD_RTOL = 1e-6
#: Relative tolerance on areas, added to the absolute ``area_tolerance_m2``.
AREA_RTOL = 1e-6
#: How far (m) a unit or registration point may lie outside its territory.
POINT_TOLERANCE_M = 0.01

_POLYGON, _MULTIPOLYGON = 3, 6

Layers = Mapping[str, gpd.GeoDataFrame]


@dataclass(frozen=True)
class Violation:
    """One broken invariant of a plan.

    Attributes
    ----------
    kind
        Short stable slug, for example ``"disconnected_cd"``.
    layer
        The layer of the object concerned.
    key
        The unit_id, cd_code, id_code, rd_code or settlement_id concerned (the field
        name for ``missing_field``, the layer name for layer-wide problems).
    message
        One readable sentence naming the object and the numbers.
    """

    kind: str
    layer: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass
class CheckReport:
    """Every violation found in a plan, with the number of objects checked per layer."""

    violations: list[Violation] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the plan has no violation at all."""
        return not self.violations

    def counts(self) -> dict[str, int]:
        """Number of violations per kind, in order of first appearance."""
        counts: dict[str, int] = {}
        for violation in self.violations:
            counts[violation.kind] = counts.get(violation.kind, 0) + 1
        return counts

    def raise_for_violations(self) -> None:
        """Raise :class:`~districting.errors.PlanCheckError` listing every violation, if any."""
        if self.violations:
            raise PlanCheckError(str(v) for v in self.violations)


@dataclass(frozen=True)
class _Level:
    """A district level: its layer, its code field and how messages name it."""

    layer: str
    code: str
    name: str
    plural: str


_UNITS = _Level("units", "unit_id", "unit", "units")
_CD = _Level("counting_districts", "cd_code", "CD", "CDs")
_ID = _Level("instructor_districts", "id_code", "ID", "IDs")
_RD = _Level("registration_districts", "rd_code", "RD", "RDs")
_SETTLEMENT = _Level("settlements", "settlement_id", "settlement", "settlements")
_POINTS = _Level("registration_points", "rd_code", "registration point", "registration points")


# --------------------------------------------------------------------------- entry points


def check_plan(directory: str | Path, *, area_tolerance_m2: float = 1.0) -> CheckReport:
    """Re-verify a written plan from its ``plan.gpkg``.

    Parameters
    ----------
    directory
        The plan directory (the one holding ``plan.gpkg``).
    area_tolerance_m2
        Areas up to this size (plus a relative 1e-6) count as zero in overlap,
        gap and territory comparisons.

    Returns
    -------
    CheckReport
        Every violation found; ``report.ok`` is true when there is none.

    Raises
    ------
    InputFileError
        If ``plan.gpkg`` is missing or cannot be read.
    """
    return check_layers(read_plan_layers(directory), area_tolerance_m2=area_tolerance_m2)


def read_plan_layers(
    directory: str | Path, *, only: Collection[str] | None = None
) -> dict[str, gpd.GeoDataFrame]:
    """Read the known layers of a plan directory's ``plan.gpkg``; absent layers are left out.

    Parameters
    ----------
    directory
        The plan directory.
    only
        Read just these layers (default: all of ``LAYER_FIELDS``).

    Returns
    -------
    dict
        Layer name to GeoDataFrame, for each layer of ``LAYER_FIELDS`` present in the file.

    Raises
    ------
    InputFileError
        If ``plan.gpkg`` is missing or cannot be read.
    """
    path = Path(directory) / "plan.gpkg"
    if not path.is_file():
        raise InputFileError(f"there is no plan.gpkg in {directory}; is it a plan directory?")
    try:
        present = {str(row[0]) for row in pyogrio.list_layers(path)}
        return {
            name: pyogrio.read_dataframe(path, layer=name)
            for name in LAYER_FIELDS
            if name in present and (only is None or name in only)
        }
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as error:
        raise InputFileError(f"cannot read {path}: {error}") from error


def check_layers(layers: Layers, *, area_tolerance_m2: float = 1.0) -> CheckReport:
    """Check in-memory plan layers: the same checks as :func:`check_plan`.

    Parameters
    ----------
    layers
        Layer name to GeoDataFrame, as in ``LAYER_FIELDS``; absent layers are reported.
    area_tolerance_m2
        Areas up to this size (plus a relative 1e-6) count as zero.

    Returns
    -------
    CheckReport
        Every violation found, with per-layer row counts in ``stats``.
    """
    violations = _check_schema(layers) + _check_crs(layers)
    plan = {
        name: _normalise(name, frame)
        for name, frame in _to_common_crs(layers).items()
        if name in LAYER_FIELDS
    }
    violations += _check_keys(plan)
    violations += _check_coverage(plan)
    violations += _check_empty_districts(plan)
    violations += _check_contiguity(plan)
    violations += _check_territories(plan, area_tolerance_m2=area_tolerance_m2)
    violations += _check_bounds(plan)
    violations += _check_nesting(plan)
    violations += _check_registration_points(plan)
    violations += _check_sums(plan)
    stats = {name: len(plan[name]) if name in plan else 0 for name in LAYER_FIELDS}
    return CheckReport(violations=violations, stats=stats)


# --------------------------------------------------------------------------- normalising


def _text(value: Any) -> str:
    """One stored value as text: NULL/NaN become ``""``, whole floats lose their ``.0``."""
    if isinstance(value, str):  # nearly every value: the quick way first
        return value.strip()
    if value is None or pd.isna(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _normalise(name: str, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A copy of a layer with text fields as clean strings and numeric fields as floats.

    Only the columns that change are new (pandas copies on write): a national plan's
    layers are gigabytes, and most of their columns are clean already."""
    out = frame.reset_index(drop=True)
    for column in LAYER_FIELDS[name]:
        if column not in out.columns:
            continue
        if column in TEXT_FIELDS and isinstance(out[column].dtype, pd.StringDtype):
            # pandas' own text column: trimmed in Arrow, without a Python string per cell
            # (a national plan has tens of millions of cells)
            clean = out[column].str.strip().fillna("")
            if not clean.equals(out[column]):
                out[column] = clean
        elif column in TEXT_FIELDS:
            values = out[column].to_numpy(dtype=object).tolist()
            # Nearly always every value is text already: then stripping is all there is
            # to do, at C speed.
            clean = (list(map(str.strip, values)) if all(type(v) is str for v in values)
                     else [_text(v) for v in values])
            out[column] = pd.Series(clean, index=out.index, dtype=object)
        elif out[column].dtype != np.float64:
            out[column] = pd.to_numeric(out[column], errors="coerce").astype(float)
    return out


def _geometries(frame: pd.DataFrame | None) -> np.ndarray | None:
    """The layer's shapely geometries as an object array, or None when it has no geometry."""
    if frame is None or not has_geometry(frame):
        return None
    return np.asarray(frame.geometry.to_numpy(), dtype=object)


def _has(plan: Layers, layer: str, *fields: str) -> bool:
    """True when the layer is present with every named field (``"geometry"`` included)."""
    frame = plan.get(layer)
    if frame is None:
        return False
    return all(
        _geometries(frame) is not None if f == "geometry" else f in frame.columns for f in fields
    )


def _codes(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A text column as an object array of str."""
    return np.asarray(frame[column].to_numpy(), dtype=object)


def _first_by(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """The rows with a non-empty ``column``, first one per value, indexed by it."""
    rows = frame[frame[column] != ""]
    return rows.drop_duplicates(column).set_index(column)


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Geometries usable for area arithmetic: invalid ones repaired, non-areal ones None."""
    out = geoms.copy()
    types = shapely.get_type_id(out)
    areal = np.isin(types, [_POLYGON, _MULTIPOLYGON]) & ~shapely.is_empty(out)
    out[~areal] = None
    for i in np.flatnonzero(areal & ~shapely.is_valid(out)):
        parts = shapely.get_parts(shapely.make_valid(out[i]))
        polys = parts[np.isin(shapely.get_type_id(parts), [_POLYGON, _MULTIPOLYGON])]
        out[i] = shapely.union_all(polys) if len(polys) else None
    return out


def _fmt(value: float) -> str:
    """A number for a message: whole numbers without decimals, others to 10 significant digits."""
    if math.isnan(value):
        return "empty"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.10g}"


def _area_text(value: float) -> str:
    """An area in square metres for a message."""
    return f"{value:,.1f} m²"


# --------------------------------------------------------------------------- schema


def _check_schema(layers: Layers) -> list[Violation]:
    """Every layer of ``LAYER_FIELDS`` present, with all its fields and a geometry column
    (``unit_adjacency`` may have none)."""
    out = []
    for name, fields in LAYER_FIELDS.items():
        frame = layers.get(name)
        if frame is None:
            out.append(Violation(
                "missing_layer", name, name,
                f"the plan has no '{name}' layer, so the checks that need it were skipped.",
            ))
            continue
        missing = [f for f in fields if f not in frame.columns]
        # The edges' lines follow from the units' points (see layers.PlanLayers).
        if _geometries(frame) is None and name != "unit_adjacency":
            missing.append("geometry")
        out += [
            Violation(
                "missing_field", name, f,
                f"layer '{name}' has no '{f}' field, so the checks that need it were skipped.",
            )
            for f in missing
        ]
    return out


def _layer_crs(layers: Layers) -> dict[str, Any]:
    """The CRS of each known layer that has a geometry column."""
    return {
        name: frame.crs for name, frame in layers.items()
        if name in LAYER_FIELDS and _geometries(frame) is not None
    }


def _reference_layer(crs_by_layer: Mapping[str, Any]) -> str:
    """The layer whose CRS the others must share: ``units`` when present."""
    return "units" if "units" in crs_by_layer else next(iter(crs_by_layer))


def _check_crs(layers: Layers) -> list[Violation]:
    """All layers in one projected CRS measured in metres."""
    crs_by_layer = _layer_crs(layers)
    if not crs_by_layer:
        return []
    reference_layer = _reference_layer(crs_by_layer)
    reference = crs_by_layer[reference_layer]
    out = []
    for name, crs in crs_by_layer.items():
        if crs is None or not crs.is_projected or any(
            axis.unit_name not in ("metre", "meter") for axis in crs.axis_info
        ):
            label = "no CRS" if crs is None else f"CRS {crs.to_string()}"
            out.append(Violation(
                "crs_not_metric", name, name,
                f"layer '{name}' has {label}, not a projected CRS in metres, "
                "so its distances and areas cannot be trusted.",
            ))
        elif name != reference_layer and reference is not None and crs != reference:
            out.append(Violation(
                "crs_mismatch", name, name,
                f"layer '{name}' is in {crs.to_string()} but '{reference_layer}' is in "
                f"{reference.to_string()}.",
            ))
    return out


def _to_common_crs(layers: Layers) -> dict[str, gpd.GeoDataFrame]:
    """Layers reprojected to the reference layer's CRS where both are known."""
    crs_by_layer = _layer_crs(layers)
    reference = crs_by_layer[_reference_layer(crs_by_layer)] if crs_by_layer else None
    return {
        name: (
            frame.to_crs(reference)
            if reference is not None and crs_by_layer.get(name) not in (None, reference)
            else frame
        )
        for name, frame in layers.items()
    }


# --------------------------------------------------------------------------- keys and coverage


def _check_keys(plan: Layers) -> list[Violation]:
    """Every unit, CD, ID, RD and settlement has a non-empty key that appears once."""
    out = []
    for level in (_UNITS, _CD, _ID, _RD, _SETTLEMENT):
        if not _has(plan, level.layer, level.code):
            continue
        codes = plan[level.layer][level.code]
        out += [
            Violation(
                "missing_key", level.layer, f"row {i + 1}",
                f"row {i + 1} of '{level.layer}' has an empty {level.code}.",
            )
            for i in np.flatnonzero((codes == "").to_numpy())
        ]
        counts = codes[codes != ""].value_counts(sort=False)
        kind = "duplicate_unit" if level is _UNITS else "duplicate_code"
        out += [
            Violation(
                kind, level.layer, str(code),
                f"{level.name} {code} appears {n} times in '{level.layer}'; it must appear once.",
            )
            for code, n in sorted(counts[counts > 1].items())
        ]
    return out


def _check_coverage(plan: Layers) -> list[Violation]:
    """Every unit names a CD, and that CD exists."""
    if not _has(plan, "units", "unit_id", "cd_code"):
        return []
    units = plan["units"]
    out = [
        Violation(
            "unassigned_unit", "units", unit,
            f"unit {unit} is in no counting district (its cd_code is empty).",
        )
        for unit in units.loc[units["cd_code"] == "", "unit_id"]
    ]
    if _has(plan, "counting_districts", "cd_code"):
        known = set(plan["counting_districts"]["cd_code"])
        unknown = units[(units["cd_code"] != "") & ~units["cd_code"].isin(known)]
        out += [
            Violation(
                "unknown_cd", "units", unit,
                f"unit {unit} names CD '{cd}', which is not in 'counting_districts'.",
            )
            for unit, cd in zip(unknown["unit_id"], unknown["cd_code"], strict=True)
        ]
    return out


def _check_empty_districts(plan: Layers) -> list[Violation]:
    """Every CD has at least one unit, every ID and RD at least one CD."""
    out = []
    for parent, child in ((_CD, _UNITS), (_ID, _CD), (_RD, _CD)):
        if not (_has(plan, parent.layer, parent.code) and _has(plan, child.layer, parent.code)):
            continue
        used = set(plan[child.layer][parent.code])
        codes = plan[parent.layer][parent.code]
        out += [
            Violation(
                "empty_district", parent.layer, code,
                f"{parent.name} {code} has no {child.plural}.",
            )
            for code in codes[(codes != "") & ~codes.isin(used)]
        ]
    return out


# --------------------------------------------------------------------------- contiguity


def _check_contiguity(plan: Layers) -> list[Violation]:
    """CDs, IDs and RDs are each connected on the unit adjacency graph."""
    if not (_has(plan, "units", "unit_id") and _has(plan, "unit_adjacency", "u", "v")):
        return []
    units = plan["units"]
    units = units[units["unit_id"] != ""].drop_duplicates("unit_id").reset_index(drop=True)
    edges = plan["unit_adjacency"]
    u = _positions(edges["u"], units["unit_id"])
    v = _positions(edges["v"], units["unit_id"])
    out = _unknown_edge_ends(edges, u, v)
    known = (u >= 0) & (v >= 0)
    unit_ids = _codes(units, "unit_id")
    for level, labels in _unit_labels(plan, units).items():
        out += _disconnected(level, unit_ids, labels, u[known], v[known])
    return out


def _positions(names: pd.Series, keys: pd.Series) -> np.ndarray:
    """Where each of ``names`` is in the distinct ``keys`` (-1: nowhere), matched in Arrow:
    looked up through pandas, a national plan's sixteen million edge ends each became a
    Python string, over a gigabyte at once."""
    values, table = pa.array(names), pa.array(keys)
    if values.type != table.type:  # string and large_string, or no strings at all
        values, table = values.cast(pa.large_string()), table.cast(pa.large_string())
    found = pc.index_in(values, value_set=table)
    return np.asarray(found.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)


def _unknown_edge_ends(edges: pd.DataFrame, u: np.ndarray, v: np.ndarray) -> list[Violation]:
    """One violation per unit id named by adjacency edges but absent from 'units'."""
    ends = pd.concat([edges["u"][u < 0], edges["v"][v < 0]])
    counts = ends.value_counts(sort=False)
    return [
        Violation(
            "unknown_unit", "unit_adjacency", str(unit),
            f"{n} adjacency edge(s) name unit '{unit}', which is not in 'units'.",
        )
        for unit, n in sorted(counts.items())
    ]


def _unit_labels(plan: Layers, units: pd.DataFrame) -> dict[_Level, np.ndarray]:
    """Each unit's CD, ID and RD code; an ID or RD is the union of its CDs' units."""
    labels: dict[_Level, np.ndarray] = {}
    if "cd_code" not in units.columns:
        return labels
    labels[_CD] = _codes(units, "cd_code")
    for level in (_ID, _RD):
        own = units[level.code] if level.code in units.columns else None
        if _has(plan, "counting_districts", "cd_code", level.code):
            by_cd = _first_by(plan["counting_districts"], "cd_code")[level.code]
            mapped = units["cd_code"].map(by_cd)
            derived = mapped.fillna(own if own is not None else "").fillna("")
        elif own is not None:
            derived = own
        else:
            continue
        labels[level] = np.asarray(derived.astype(str).to_numpy(), dtype=object)
    return labels


def _disconnected(
    level: _Level, unit_ids: np.ndarray, labels: np.ndarray, u: np.ndarray, v: np.ndarray,
) -> list[Violation]:
    """Districts whose units fall into more than one piece using only their inner edges."""
    n = len(labels)
    # Compared as numbers: sixteen million edge ends' codes as strings took a gigabyte.
    numbers, names = pd.factorize(labels)
    blank = np.flatnonzero(np.asarray(names, dtype=object) == "")
    numbers[np.isin(numbers, blank)] = -1
    inner = (numbers[u] == numbers[v]) & (numbers[u] >= 0)
    graph = sparse.coo_matrix((np.ones(int(inner.sum())), (u[inner], v[inner])), shape=(n, n))
    _, component = csgraph.connected_components(graph, directed=False)
    frame = pd.DataFrame({"label": labels, "piece": component, "unit": unit_ids})
    frame = frame[numbers >= 0]
    pieces = frame.groupby("label")["piece"].nunique()
    broken = frame[frame["label"].isin(pieces[pieces > 1].index)]
    out = []
    for label, rows in broken.groupby("label", sort=True):
        sizes = rows.groupby("piece").size().sort_values(ascending=False, kind="stable")
        cut_off = rows.loc[rows["piece"] == sizes.index[-1], "unit"].min()
        out.append(Violation(
            f"disconnected_{level.name.lower()}", level.layer, str(label),
            f"{level.name} {label} is not contiguous: its {len(rows)} units fall into "
            f"{len(sizes)} separate pieces of {', '.join(map(str, sizes))} units on the "
            f"adjacency graph (unit {cut_off} is cut off from the rest).",
        ))
    return out


# --------------------------------------------------------------------------- territories


def _check_territories(plan: Layers, *, area_tolerance_m2: float) -> list[Violation]:
    """Shapes, overlaps, gaps, parent territories and points inside their territory."""
    out = []
    for level in (_CD, _ID, _RD, _SETTLEMENT):
        if _has(plan, level.layer, level.code, "geometry"):
            out += _check_shapes(plan[level.layer], level, single=level is not _SETTLEMENT)
    for level in (_CD, _ID, _RD):
        if _has(plan, level.layer, level.code, "settlement_id", "geometry"):
            out += _check_overlaps(plan[level.layer], level, area_tolerance_m2=area_tolerance_m2)
    out += _check_gaps(plan, area_tolerance_m2=area_tolerance_m2)
    for level in (_ID, _RD):
        out += _check_parent_territory(plan, level, area_tolerance_m2=area_tolerance_m2)
    out += _check_units_inside(plan)
    return out


def _check_shapes(frame: pd.DataFrame, level: _Level, *, single: bool) -> list[Violation]:
    """Each territory is a non-empty valid polygon; one piece only when ``single``."""
    geoms = _geometries(frame)
    assert geoms is not None
    codes = _codes(frame, level.code)
    types = shapely.get_type_id(geoms)
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    areal = np.isin(types, [_POLYGON, _MULTIPOLYGON])
    invalid = ~shapely.is_valid(geoms)
    parts = shapely.get_num_geometries(geoms)
    out = []
    for i in np.flatnonzero(empty | ~areal | invalid | (single & (parts > 1))):
        what = f"{level.name} {codes[i]}"
        if empty[i]:
            out.append(Violation(
                "empty_territory", level.layer, codes[i],
                f"{what} has no territory (its geometry is empty or missing).",
            ))
            continue
        if not areal[i]:
            out.append(Violation(
                "not_polygon", level.layer, codes[i],
                f"{what} territory is a {geoms[i].geom_type}, not a polygon.",
            ))
            continue
        if invalid[i]:
            out.append(Violation(
                "invalid_geometry", level.layer, codes[i],
                f"{what} territory is not a valid polygon: {shapely.is_valid_reason(geoms[i])}.",
            ))
        if single and parts[i] > 1:
            areas = sorted(shapely.area(shapely.get_parts(geoms[i])), reverse=True)
            out.append(Violation(
                f"{level.name.lower()}_multipart", level.layer, codes[i],
                f"{what} territory is {parts[i]} separate polygons "
                f"({', '.join(_area_text(a) for a in areas)}), not one.",
            ))
    return out


def _check_overlaps(
    frame: pd.DataFrame, level: _Level, *, area_tolerance_m2: float,
) -> list[Violation]:
    """No two districts of one settlement share more than the tolerated area."""
    geoms = _geometries(frame)
    assert geoms is not None
    geoms = _polygonal(geoms)
    codes = _codes(frame, level.code)
    settlements = _codes(frame, "settlement_id")
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    same_settlement = settlements[left] == settlements[right]
    keep = (left < right) & same_settlement & (codes[left] != codes[right])
    left, right = left[keep], right[keep]
    shared = shapely.area(shapely.intersection(geoms[left], geoms[right]))
    out = []
    for i, j, area in zip(left, right, shared, strict=True):
        if area <= area_tolerance_m2:
            continue
        first, second = sorted((codes[i], codes[j]))
        out.append(Violation(
            "territory_overlap", level.layer, first,
            f"{level.name} {first} and {level.name} {second} overlap by {_area_text(area)}.",
        ))
    return sorted(out, key=lambda v: v.message)


def _check_gaps(plan: Layers, *, area_tolerance_m2: float) -> list[Violation]:
    """Per settlement, its CDs tile it: nothing uncovered, nothing outside, areas add up."""
    if not (
        _has(plan, "settlements", "settlement_id", "geometry")
        and _has(plan, "counting_districts", "settlement_id", "geometry")
    ):
        return []
    cds = plan["counting_districts"]
    cd_geoms = _polygonal(_geometries(cds))  # type: ignore[arg-type]
    groups = cds.groupby("settlement_id").indices
    settlements = plan["settlements"]
    settlement_geoms = _polygonal(_geometries(settlements))  # type: ignore[arg-type]
    out = []
    seen: set[str] = set()
    for sid, geom in zip(settlements["settlement_id"], settlement_geoms, strict=True):
        if sid == "" or sid in seen or geom is None:
            continue
        seen.add(sid)
        members = cd_geoms[groups.get(sid, np.array([], dtype=int))]
        out += _settlement_tiling(sid, geom, members, area_tolerance_m2=area_tolerance_m2)
    return out


def _settlement_tiling(
    sid: str, territory: Any, members: np.ndarray, *, area_tolerance_m2: float,
) -> list[Violation]:
    """Gap and spill-over of one settlement's CDs against the settlement polygon."""
    area = float(territory.area)
    summed = float(np.nansum(shapely.area(members))) if len(members) else 0.0
    uncovered = outside = 0.0
    if not _is_tiled_by(territory, members):
        union = shapely.union_all(members)
        uncovered = float(shapely.area(shapely.difference(territory, union)))
        outside = float(shapely.area(shapely.difference(union, territory)))
    tolerance = area_tolerance_m2 + AREA_RTOL * area
    out = []
    if uncovered > tolerance or summed < area - tolerance:
        out.append(Violation(
            "territory_gap", "settlements", sid,
            f"settlement {sid}: {_area_text(uncovered)} of its {_area_text(area)} lies in no CD "
            f"(its {len(members)} CDs' areas sum to {_area_text(summed)}).",
        ))
    if outside > tolerance:
        out.append(Violation(
            "territory_outside", "settlements", sid,
            f"settlement {sid}: its CDs reach {_area_text(outside)} beyond the settlement's "
            "territory.",
        ))
    return out


def _is_tiled_by(territory: Any, members: np.ndarray) -> bool:
    """Whether ``members`` tile ``territory`` exactly: their union is the very same polygon,
    vertex for vertex (in any order). A quick sufficient test, taken before the overlay
    arithmetic of the full check (a plan's districts are unions of the same tiles, so it
    usually holds: on a tenth of the country the check took 2.3 s, not 4.1 s).

    The union is a coverage union, which is only right for polygons that do not overlap;
    it is trusted only when valid and of the members' total area (see
    :func:`~districting.territory.coverage_union`)."""
    if not len(members) or any(m is None for m in members):
        return False
    union = coverage_union(members)
    return union is not None and bool(shapely.equals_exact(
        shapely.normalize(union), shapely.normalize(territory), tolerance=0.0))


def _check_parent_territory(
    plan: Layers, level: _Level, *, area_tolerance_m2: float,
) -> list[Violation]:
    """Each ID or RD territory is the union of its CDs' territories."""
    if not (
        _has(plan, level.layer, level.code, "geometry")
        and _has(plan, "counting_districts", level.code, "geometry")
    ):
        return []
    cds = plan["counting_districts"]
    cd_geoms = _polygonal(_geometries(cds))  # type: ignore[arg-type]
    groups = cds.groupby(level.code).indices
    parents = plan[level.layer]
    parent_geoms = _polygonal(_geometries(parents))  # type: ignore[arg-type]
    out = []
    for code, geom in zip(parents[level.code], parent_geoms, strict=True):
        if code == "" or geom is None:
            continue
        members = cd_geoms[groups.get(code, np.array([], dtype=int))]
        if _is_tiled_by(geom, members):
            continue
        union = shapely.union_all(members)
        missing = float(shapely.area(shapely.difference(geom, union)))
        extra = float(shapely.area(shapely.difference(union, geom)))
        if max(missing, extra) > area_tolerance_m2 + AREA_RTOL * float(geom.area):
            out.append(Violation(
                "territory_mismatch", level.layer, code,
                f"{level.name} {code} territory is not the union of its CDs: "
                f"{_area_text(missing)} of it lies in none of its CDs and "
                f"{_area_text(extra)} of its CDs lies outside it.",
            ))
    return out


def _check_units_inside(plan: Layers) -> list[Violation]:
    """Every unit point lies in (within 1 cm of) its CD's territory."""
    if not (
        _has(plan, "units", "unit_id", "cd_code", "geometry")
        and _has(plan, "counting_districts", "cd_code", "geometry")
    ):
        return []
    return _points_inside(
        plan["units"], plan["counting_districts"], points=_UNITS, owner=_CD,
        kind="unit_outside_territory",
    )


def _points_inside(
    point_rows: pd.DataFrame, owner_rows: pd.DataFrame, *, points: _Level, owner: _Level,
    kind: str,
) -> list[Violation]:
    """Points that lie farther than ``POINT_TOLERANCE_M`` from the territory they belong to."""
    owner_geoms = _polygonal(_geometries(owner_rows))  # type: ignore[arg-type]
    codes = owner_rows[owner.code]
    first = (~codes.duplicated() & (codes != "")).to_numpy()
    index = pd.Index(codes[first])
    owner_geoms = owner_geoms[first]
    position = index.get_indexer(point_rows[owner.code])
    usable = position >= 0
    usable[usable] = ~shapely.is_missing(owner_geoms[position[usable]])
    rows = np.flatnonzero(usable)
    territory = owner_geoms[position[rows]]
    shapely.prepare(territory)
    located = _geometries(point_rows)[rows]  # type: ignore[index]
    inside = shapely.dwithin(territory, located, POINT_TOLERANCE_M)
    keys, owned_by = _codes(point_rows, points.code), _codes(point_rows, owner.code)
    out = []
    for row, geom, where in zip(rows[~inside], located[~inside], territory[~inside], strict=True):
        if geom is None or shapely.is_empty(geom):
            detail = "has no location"
        else:
            detail = f"lies {float(shapely.distance(geom, where)):,.2f} m outside its territory"
        out.append(Violation(
            kind, points.layer, keys[row],
            f"{points.name} {keys[row]} of {owner.name} {owned_by[row]} {detail}.",
        ))
    return out


# --------------------------------------------------------------------------- bounds


def _check_bounds(plan: Layers) -> list[Violation]:
    """Each CD's workload lies within its floor and ceiling unless it carries an exception."""
    fields = ("cd_code", "workload", "workload_floor", "workload_ceiling")
    if not _has(plan, "counting_districts", *fields):
        return []
    cds = plan["counting_districts"]
    exempt = (
        (cds["bound_exception"] != "").to_numpy()
        if "bound_exception" in cds.columns else np.zeros(len(cds), dtype=bool)
    )
    work = cds["workload"].to_numpy(float)
    floor = cds["workload_floor"].to_numpy(float)
    ceiling = cds["workload_ceiling"].to_numpy(float)
    low = work < floor - WORKLOAD_RTOL * np.maximum(1.0, np.abs(floor))
    high = work > ceiling + WORKLOAD_RTOL * np.maximum(1.0, np.abs(ceiling))
    unknown = np.isnan(work) | np.isnan(floor) | np.isnan(ceiling)
    out = []
    for i in np.flatnonzero((low | high | unknown) & ~exempt):
        code = cds["cd_code"].iat[i]
        if unknown[i]:
            detail = (
                f"has workload {_fmt(work[i])} with floor {_fmt(floor[i])} and ceiling "
                f"{_fmt(ceiling[i])}, so its bounds cannot be checked"
            )
        elif high[i]:
            detail = (
                f"workload {work[i]:.2f} min is above its ceiling {ceiling[i]:.2f} min "
                f"by {work[i] - ceiling[i]:.2f} min"
            )
        else:
            detail = (
                f"workload {work[i]:.2f} min is below its floor {floor[i]:.2f} min "
                f"by {floor[i] - work[i]:.2f} min"
            )
        out.append(Violation(
            "bound_violation", "counting_districts", code,
            f"CD {code} {detail}, and it has no bound_exception.",
        ))
    return out


# --------------------------------------------------------------------------- nesting


def _check_nesting(plan: Layers) -> list[Violation]:
    """Units agree with their CD; CDs, IDs and RDs name existing parents of their settlement."""
    out = _check_unit_nesting(plan)
    for parent in (_ID, _RD):
        out += _check_cd_parent(plan, parent)
    for level in (_UNITS, _CD, _ID, _RD):
        out += _check_settlement_exists(plan, level)
    return out


def _check_unit_nesting(plan: Layers) -> list[Violation]:
    """Each unit's id_code, rd_code and settlement_id equal its CD's."""
    if not (
        _has(plan, "units", "unit_id", "cd_code") and _has(plan, "counting_districts", "cd_code")
    ):
        return []
    units = plan["units"]
    cds = _first_by(plan["counting_districts"], "cd_code")
    known = units["cd_code"].isin(cds.index)
    out = []
    for column in ("id_code", "rd_code", "settlement_id"):
        if column not in units.columns or column not in cds.columns:
            continue
        expected = units["cd_code"].map(cds[column])
        wrong = units[known & (units[column] != expected)]
        out += [
            Violation(
                "nesting", "units", unit,
                f"unit {unit} has {column} '{own}' but its CD {cd} has '{theirs}'.",
            )
            for unit, own, cd, theirs in zip(
                wrong["unit_id"], wrong[column], wrong["cd_code"], expected[wrong.index],
                strict=True,
            )
        ]
    return out


def _check_cd_parent(plan: Layers, parent: _Level) -> list[Violation]:
    """Each CD's ID (or RD) exists and lies in the CD's settlement."""
    if not (
        _has(plan, "counting_districts", "cd_code", parent.code)
        and _has(plan, parent.layer, parent.code)
    ):
        return []
    cds = plan["counting_districts"]
    parents = _first_by(plan[parent.layer], parent.code)
    out = []
    for cd, code in zip(cds["cd_code"], cds[parent.code], strict=True):
        if code == "" or code not in parents.index:
            named = "names no" if code == "" else f"names {parent.name} '{code}', which is not in"
            out.append(Violation(
                "nesting", "counting_districts", cd, f"CD {cd} {named} '{parent.layer}'.",
            ))
    if "settlement_id" in cds.columns and "settlement_id" in parents.columns:
        theirs = cds[parent.code].map(parents["settlement_id"])
        wrong = cds[cds[parent.code].isin(parents.index) & (cds["settlement_id"] != theirs)]
        out += [
            Violation(
                "nesting", "counting_districts", cd,
                f"CD {cd} is in settlement '{own}' but its {parent.name} {code} is in '{other}'.",
            )
            for cd, code, own, other in zip(
                wrong["cd_code"], wrong[parent.code], wrong["settlement_id"],
                theirs[wrong.index], strict=True,
            )
        ]
    return out


def _check_settlement_exists(plan: Layers, level: _Level) -> list[Violation]:
    """Each object's settlement_id is a settlement of the plan."""
    if not (
        _has(plan, level.layer, level.code, "settlement_id")
        and _has(plan, "settlements", "settlement_id")
    ):
        return []
    known = set(plan["settlements"]["settlement_id"])
    frame = plan[level.layer]
    wrong = frame[~frame["settlement_id"].isin(known)]
    return [
        Violation(
            "nesting", level.layer, code,
            f"{level.name} {code} names settlement '{sid}', which is not in 'settlements'.",
        )
        for code, sid in zip(wrong[level.code], wrong["settlement_id"], strict=True)
    ]


# --------------------------------------------------------------------------- registration points


def _check_registration_points(plan: Layers) -> list[Violation]:
    """One point per RD, agreeing with the RD's record and lying inside its territory."""
    out = _check_point_counts(plan) + _check_point_details(plan)
    if _has(plan, "registration_points", "rd_code", "geometry") and _has(
        plan, "registration_districts", "rd_code", "geometry",
    ):
        out += _points_inside(
            plan["registration_points"], plan["registration_districts"], points=_POINTS,
            owner=_RD, kind="rd_point_outside",
        )
    return out


def _check_point_counts(plan: Layers) -> list[Violation]:
    """Each RD has exactly one registration point, and each point names a known RD."""
    if not (
        _has(plan, "registration_points", "rd_code")
        and _has(plan, "registration_districts", "rd_code")
    ):
        return []
    counts = plan["registration_points"]["rd_code"].value_counts()
    rds = plan["registration_districts"]["rd_code"]
    out = []
    for rd in rds[rds != ""].drop_duplicates():
        n = int(counts.get(rd, 0))
        if n != 1:
            out.append(Violation(
                "rd_point_count", "registration_districts", rd,
                f"RD {rd} has {n} registration points; it must have exactly one.",
            ))
    known = set(rds)
    out += [
        Violation(
            "nesting", "registration_points", rd,
            f"a registration point names RD '{rd}', which is not in 'registration_districts'.",
        )
        for rd in sorted(set(counts.index) - known)
    ]
    return out


def _check_point_details(plan: Layers) -> list[Violation]:
    """The RD's point_name and point_building_id match its registration point."""
    pairs = (("point_name", "point_name"), ("point_building_id", "building_id"))
    if not (
        _has(plan, "registration_points", "rd_code")
        and _has(plan, "registration_districts", "rd_code")
    ):
        return []
    points = _first_by(plan["registration_points"], "rd_code")
    rds = plan["registration_districts"]
    out = []
    for rd_field, point_field in pairs:
        if rd_field not in rds.columns or point_field not in points.columns:
            continue
        theirs = rds["rd_code"].map(points[point_field])
        wrong = rds[rds["rd_code"].isin(points.index) & (rds[rd_field] != theirs)]
        out += [
            Violation(
                "rd_point_mismatch", "registration_districts", rd,
                f"RD {rd} has {rd_field} '{own}' but its registration point has "
                f"{point_field} '{other}'.",
            )
            for rd, own, other in zip(
                wrong["rd_code"], wrong[rd_field], theirs[wrong.index], strict=True,
            )
        ]
    return out


# --------------------------------------------------------------------------- sums


def _check_sums(plan: Layers) -> list[Violation]:
    """Stored totals of CDs, IDs, RDs and settlements equal the sums of their members."""
    int_fields = {"dwellings": 0.0, "residents": 0.0}
    return (
        _compare_sums(
            plan, parent=_CD, child=_UNITS, count_field="n_units",
            fields={**int_fields, "workload": WORKLOAD_RTOL},
        )
        + _compare_sums(
            plan, parent=_ID, child=_CD, count_field="n_cd",
            fields={"residents": 0.0, "workload": WORKLOAD_RTOL},
        )
        + _compare_sums(
            plan, parent=_RD, child=_CD, count_field="n_cd",
            fields={"residents": 0.0},
        )
        + _compare_sums(
            plan, parent=_SETTLEMENT, child=_UNITS, count_field="n_units",
            fields={"residents": 0.0, "workload": WORKLOAD_RTOL},
        )
    )


def _compare_sums(
    plan: Layers, *, parent: _Level, child: _Level, count_field: str,
    fields: Mapping[str, float],
) -> list[Violation]:
    """Each parent's count and totals against its children grouped by the parent's code.

    ``fields`` maps each summed field to its relative tolerance (0 for exact counts).
    """
    link = parent.code
    if not (_has(plan, parent.layer, link) and _has(plan, child.layer, link)):
        return []
    children = plan[child.layer]
    children = children[children[link] != ""]
    parents = plan[parent.layer]
    parents = parents[parents[link] != ""]
    groups = children.groupby(link)
    totals = {count_field: groups.size().astype(float)}
    totals.update({
        name: groups[name].sum() for name in fields
        if name in children.columns and name in parents.columns
    })
    tolerance = {count_field: 0.0, **fields}
    out = []
    for name, summed in totals.items():
        if name not in parents.columns:
            continue
        stored = parents[name].to_numpy(float)
        expected = summed.reindex(parents[link]).fillna(0.0).to_numpy(float)
        scale = np.maximum(1.0, np.maximum(np.abs(stored), np.abs(expected)))
        wrong = np.isnan(stored) | (np.abs(stored - expected) > tolerance[name] * scale + 1e-9)
        for i in np.flatnonzero(wrong):
            code = parents[link].iat[i]
            actual = (
                f"{_fmt(expected[i])} {child.plural} belong to it" if name == count_field
                else f"its {child.plural} sum to {_fmt(expected[i])}"
            )
            out.append(Violation(
                "sum_mismatch", parent.layer, code,
                f"{parent.name} {code} has {name} {_fmt(stored[i])} but {actual}.",
            ))
    return out
