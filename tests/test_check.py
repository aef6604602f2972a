"""Tests of the plan check: a valid grid plan passes, each deliberate break is named."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from plan_fixtures import (
    ORIGIN,
    SETTLEMENT,
    cd_code,
    grid_plan,
    id_code,
    rd_code,
    tile_box,
    tile_centre,
    unit_id,
    write_plan,
)

from districting.check import CheckReport, Violation, check_layers, check_plan
from districting.errors import InputFileError, PlanCheckError

Layers = dict[str, gpd.GeoDataFrame]

# The default grid: 4 rows x 6 cols of 100 m tiles, four CDs of 2 x 3 tiles.
CD1, CD2, CD3, CD4 = cd_code(0, 1), cd_code(0, 2), cd_code(1, 3), cd_code(1, 4)
ID1, ID2 = id_code(0), id_code(1)
RD1, RD2 = rd_code(0), rd_code(1)
CORNER = unit_id(0, 0)  # in CD1, ID1, RD1


@pytest.fixture
def layers() -> Layers:
    """A small valid plan."""
    return grid_plan()


def _check(layers: Layers, directory: Path) -> CheckReport:
    """Write the layers as a plan and check it from its files."""
    return check_plan(write_plan(layers, directory))


def _rows(frame: gpd.GeoDataFrame, column: str, value: str) -> pd.Index:
    """Index labels of the rows whose ``column`` equals ``value``."""
    return frame.index[frame[column] == value]


def _set(layers: Layers, layer: str, key: tuple[str, str], column: str, value: object) -> None:
    """Set ``column`` of the rows of ``layer`` whose ``key[0]`` field equals ``key[1]``."""
    frame = layers[layer]
    frame.loc[_rows(frame, *key), column] = value


def _move_cd(layers: Layers, cd: str, *, to_id: str, to_rd: str) -> None:
    """Re-attach a CD (and its units) to another ID and RD."""
    for layer in ("counting_districts", "units"):
        _set(layers, layer, ("cd_code", cd), "id_code", to_id)
        _set(layers, layer, ("cd_code", cd), "rd_code", to_rd)


def _has_violation(report: CheckReport, kind: str, key: str) -> bool:
    """True when the report holds a violation of that kind about that key."""
    return any(v.kind == kind and v.key == key for v in report.violations)


# --------------------------------------------------------------------------- breakers
# Each breaks the valid plan in one way and returns the (kind, key) that must be reported.


def break_unassigned(layers: Layers) -> tuple[str, str]:
    _set(layers, "units", ("unit_id", CORNER), "cd_code", "")
    return "unassigned_unit", CORNER


def break_unassigned_null(layers: Layers) -> tuple[str, str]:
    _set(layers, "units", ("unit_id", CORNER), "cd_code", None)
    return "unassigned_unit", CORNER


def break_unknown_cd(layers: Layers) -> tuple[str, str]:
    _set(layers, "units", ("unit_id", CORNER), "cd_code", f"{SETTLEMENT}-09-999")
    return "unknown_cd", CORNER


def break_duplicate_unit(layers: Layers) -> tuple[str, str]:
    units = layers["units"]
    layers["units"] = pd.concat([units, units[units["unit_id"] == unit_id(1, 1)]])
    return "duplicate_unit", unit_id(1, 1)


def break_missing_key(layers: Layers) -> tuple[str, str]:
    _set(layers, "units", ("unit_id", CORNER), "unit_id", "")
    return "missing_key", "row 1"


def break_duplicate_cd(layers: Layers) -> tuple[str, str]:
    cds = layers["counting_districts"]
    layers["counting_districts"] = pd.concat([cds, cds[cds["cd_code"] == CD2]])
    return "duplicate_code", CD2


def break_empty_cd(layers: Layers) -> tuple[str, str]:
    _set(layers, "units", ("cd_code", CD4), "cd_code", CD3)
    return "empty_district", CD4


def break_disconnected_cd(layers: Layers) -> tuple[str, str]:
    for column, value in (("cd_code", CD4), ("id_code", ID2), ("rd_code", RD2)):
        _set(layers, "units", ("unit_id", CORNER), column, value)
    return "disconnected_cd", CD4


def break_disconnected_id(layers: Layers) -> tuple[str, str]:
    _move_cd(layers, CD2, to_id=ID2, to_rd=RD2)
    _move_cd(layers, CD4, to_id=ID1, to_rd=RD2)  # ID1 = CD1 + CD4, which touch only at a corner
    return "disconnected_id", ID1


def break_disconnected_rd(layers: Layers) -> tuple[str, str]:
    _move_cd(layers, CD3, to_id=ID2, to_rd=RD2)
    _move_cd(layers, CD4, to_id=ID2, to_rd=RD1)  # RD1 = CD1 + CD4
    return "disconnected_rd", RD1


def break_unknown_edge_end(layers: Layers) -> tuple[str, str]:
    edges = layers["unit_adjacency"]
    extra = edges.iloc[[0]].copy()
    extra["v"] = "GHOST"
    layers["unit_adjacency"] = pd.concat([edges, extra])
    return "unknown_unit", "GHOST"


def break_cd_multipart(layers: Layers) -> tuple[str, str]:
    left, right = tile_box(0, 0, 2, 1), tile_box(0, 2, 2, 3)  # the middle column is left out
    _set(layers, "counting_districts", ("cd_code", CD1), "geometry",
         shapely.MultiPolygon([left, right]))
    return "cd_multipart", CD1


def break_id_multipart(layers: Layers) -> tuple[str, str]:
    pieces = shapely.MultiPolygon([tile_box(0, 0, 2, 2), tile_box(0, 3, 2, 6)])
    _set(layers, "instructor_districts", ("id_code", ID1), "geometry", pieces)
    return "id_multipart", ID1


def break_invalid_geometry(layers: Layers) -> tuple[str, str]:
    x, y = ORIGIN
    bowtie = shapely.Polygon([(x, y), (x + 300, y + 200), (x + 300, y), (x, y + 200)])
    _set(layers, "counting_districts", ("cd_code", CD1), "geometry", bowtie)
    return "invalid_geometry", CD1


def break_empty_territory(layers: Layers) -> tuple[str, str]:
    _set(layers, "counting_districts", ("cd_code", CD1), "geometry", None)
    return "empty_territory", CD1


def break_not_polygon(layers: Layers) -> tuple[str, str]:
    _set(layers, "registration_districts", ("rd_code", RD2), "geometry",
         tile_box(0, 3, 4, 6).exterior)
    return "not_polygon", RD2


def break_overlap(layers: Layers) -> tuple[str, str]:
    x, y = ORIGIN
    _set(layers, "counting_districts", ("cd_code", CD1), "geometry",
         shapely.box(x, y, x + 350, y + 200))
    return "territory_overlap", CD1


def break_gap(layers: Layers) -> tuple[str, str]:
    x, y = ORIGIN
    _set(layers, "counting_districts", ("cd_code", CD4), "geometry",
         shapely.box(x + 300, y + 200, x + 590, y + 400))
    return "territory_gap", SETTLEMENT


def break_outside(layers: Layers) -> tuple[str, str]:
    x, y = ORIGIN
    _set(layers, "counting_districts", ("cd_code", CD4), "geometry",
         shapely.box(x + 300, y + 200, x + 610, y + 400))
    return "territory_outside", SETTLEMENT


def break_parent_territory(layers: Layers) -> tuple[str, str]:
    _set(layers, "instructor_districts", ("id_code", ID1), "geometry", tile_box(0, 0, 2, 5))
    return "territory_mismatch", ID1


def break_unit_outside(layers: Layers) -> tuple[str, str]:
    _set(layers, "units", ("unit_id", CORNER), "geometry", tile_centre(0, 4))
    return "unit_outside_territory", CORNER


def break_ceiling(layers: Layers) -> tuple[str, str]:
    cds = layers["counting_districts"]
    rows = _rows(cds, "cd_code", CD1)
    cds.loc[rows, "workload_ceiling"] = cds.loc[rows, "workload"] - 1.0
    return "bound_violation", CD1


def break_floor(layers: Layers) -> tuple[str, str]:
    cds = layers["counting_districts"]
    rows = _rows(cds, "cd_code", CD3)
    cds.loc[rows, "workload_floor"] = cds.loc[rows, "workload"] + 0.01
    return "bound_violation", CD3


def break_unit_nesting(layers: Layers) -> tuple[str, str]:
    _set(layers, "units", ("unit_id", CORNER), "id_code", ID2)
    return "nesting", CORNER


def break_cd_nesting(layers: Layers) -> tuple[str, str]:
    _set(layers, "counting_districts", ("cd_code", CD1), "rd_code", f"{SETTLEMENT}-R77")
    return "nesting", CD1


def break_settlement_nesting(layers: Layers) -> tuple[str, str]:
    _set(layers, "instructor_districts", ("id_code", ID2), "settlement_id", "431010999")
    return "nesting", CD3  # CD3 is in 431010000 but its ID now claims another settlement


def break_cd_residents(layers: Layers) -> tuple[str, str]:
    cds = layers["counting_districts"]
    cds.loc[_rows(cds, "cd_code", CD2), "residents"] += 1
    return "sum_mismatch", CD2


def break_cd_workload(layers: Layers) -> tuple[str, str]:
    cds = layers["counting_districts"]
    cds.loc[_rows(cds, "cd_code", CD2), "workload"] += 0.01
    return "sum_mismatch", CD2


def break_n_units(layers: Layers) -> tuple[str, str]:
    _set(layers, "counting_districts", ("cd_code", CD3), "n_units", 7)
    return "sum_mismatch", CD3


def break_id_n_cd(layers: Layers) -> tuple[str, str]:
    _set(layers, "instructor_districts", ("id_code", ID2), "n_cd", 3)
    return "sum_mismatch", ID2


def break_settlement_workload(layers: Layers) -> tuple[str, str]:
    _set(layers, "settlements", ("settlement_id", SETTLEMENT), "workload", 1.0)
    return "sum_mismatch", SETTLEMENT


def break_point_count(layers: Layers) -> tuple[str, str]:
    points = layers["registration_points"]
    layers["registration_points"] = points[points["rd_code"] != RD2]
    return "rd_point_count", RD2


def break_point_outside(layers: Layers) -> tuple[str, str]:
    _set(layers, "registration_points", ("rd_code", RD1), "geometry", tile_centre(0, 5))
    return "rd_point_outside", RD1


def break_point_record(layers: Layers) -> tuple[str, str]:
    _set(layers, "registration_points", ("rd_code", RD1), "building_id", "B999999")
    return "rd_point_mismatch", RD1


def break_missing_layer(layers: Layers) -> tuple[str, str]:
    del layers["registration_points"]
    return "missing_layer", "registration_points"


def break_missing_field(layers: Layers) -> tuple[str, str]:
    layers["counting_districts"] = layers["counting_districts"].drop(columns="workload_ceiling")
    return "missing_field", "workload_ceiling"


def break_crs(layers: Layers) -> tuple[str, str]:
    layers["settlements"] = layers["settlements"].to_crs("EPSG:32642")
    return "crs_mismatch", "settlements"


BREAKERS: list[Callable[[Layers], tuple[str, str]]] = [
    break_unassigned, break_unassigned_null, break_unknown_cd, break_duplicate_unit,
    break_missing_key, break_duplicate_cd, break_empty_cd, break_disconnected_cd,
    break_disconnected_id, break_disconnected_rd, break_unknown_edge_end, break_cd_multipart,
    break_id_multipart, break_invalid_geometry, break_empty_territory, break_not_polygon,
    break_overlap, break_gap, break_outside, break_parent_territory, break_unit_outside,
    break_ceiling, break_floor, break_unit_nesting, break_cd_nesting, break_settlement_nesting,
    break_cd_residents, break_cd_workload, break_n_units, break_id_n_cd,
    break_settlement_workload, break_point_count, break_point_outside, break_point_record,
    break_missing_layer, break_missing_field, break_crs,
]


# --------------------------------------------------------------------------- tests


def test_valid_plan_passes(layers: Layers, tmp_path: Path) -> None:
    report = _check(layers, tmp_path)
    assert report.ok, report.violations
    assert report.violations == []
    assert report.stats == {
        "units": 24, "counting_districts": 4, "instructor_districts": 2,
        "registration_districts": 2, "registration_points": 2, "unit_adjacency": 38,
        "settlements": 1,
    }


@pytest.mark.parametrize("breaker", BREAKERS, ids=lambda b: b.__name__.removeprefix("break_"))
def test_each_break_is_reported(
    layers: Layers, tmp_path: Path, breaker: Callable[[Layers], tuple[str, str]],
) -> None:
    kind, key = breaker(layers)
    report = _check(layers, tmp_path)
    assert not report.ok
    assert _has_violation(report, kind, key), report.violations
    assert all(v.message.endswith(".") for v in report.violations)


@pytest.mark.parametrize(
    "breaker", [break_missing_layer, break_crs, break_point_record, break_settlement_workload],
    ids=lambda b: b.__name__.removeprefix("break_"),
)
def test_local_breaks_report_nothing_else(
    layers: Layers, tmp_path: Path, breaker: Callable[[Layers], tuple[str, str]],
) -> None:
    kind, key = breaker(layers)
    report = _check(layers, tmp_path)
    assert [(v.kind, v.key) for v in report.violations] == [(kind, key)]


@pytest.mark.parametrize("layer", ["units", "counting_districts", "unit_adjacency", "settlements"])
def test_missing_core_layer_skips_checks_without_crashing(
    layers: Layers, tmp_path: Path, layer: str,
) -> None:
    del layers[layer]
    report = _check(layers, tmp_path)
    assert _has_violation(report, "missing_layer", layer)
    assert report.stats[layer] == 0


def test_missing_unit_codes_skip_checks_without_crashing(layers: Layers, tmp_path: Path) -> None:
    layers["units"] = layers["units"].drop(columns=["cd_code", "id_code"])
    report = _check(layers, tmp_path)
    assert _has_violation(report, "missing_field", "cd_code")
    assert _has_violation(report, "missing_field", "id_code")


def test_bound_exception_makes_out_of_bounds_cd_acceptable(
    layers: Layers, tmp_path: Path,
) -> None:
    break_ceiling(layers)
    _set(layers, "counting_districts", ("cd_code", CD1), "bound_exception",
         "a single building exceeds one interviewer's capacity")
    assert _check(layers, tmp_path).ok


def test_null_bound_exception_counts_as_empty(layers: Layers, tmp_path: Path) -> None:
    layers["counting_districts"]["bound_exception"] = None
    assert _check(layers, tmp_path).ok
    break_ceiling(layers)
    assert _has_violation(_check(layers, tmp_path), "bound_violation", CD1)


def test_bound_violation_message_names_the_numbers(layers: Layers, tmp_path: Path) -> None:
    break_ceiling(layers)
    (violation,) = _check(layers, tmp_path).violations
    workload = float(_rows_value(layers, CD1, "workload"))
    assert violation == Violation(
        "bound_violation", "counting_districts", CD1,
        f"CD {CD1} workload {workload:.2f} min is above its ceiling {workload - 1:.2f} min "
        "by 1.00 min, and it has no bound_exception.",
    )


def _rows_value(layers: Layers, cd: str, column: str) -> object:
    """The value of ``column`` for one CD."""
    cds = layers["counting_districts"]
    return cds.loc[_rows(cds, "cd_code", cd), column].iloc[0]


def test_every_violation_is_listed_not_only_the_first(layers: Layers, tmp_path: Path) -> None:
    expected = {
        breaker(layers)
        for breaker in (break_unknown_cd, break_cd_residents, break_ceiling, break_point_outside)
    }
    found = {(v.kind, v.key) for v in _check(layers, tmp_path).violations}
    assert expected <= found


def test_overlap_is_reported_once_naming_both_cds(layers: Layers, tmp_path: Path) -> None:
    break_overlap(layers)
    overlaps = [v for v in _check(layers, tmp_path).violations if v.kind == "territory_overlap"]
    assert [(v.layer, v.key) for v in overlaps] == [("counting_districts", CD1)]
    assert CD2 in overlaps[0].message and "10,000.0 m²" in overlaps[0].message


def test_area_tolerance_absorbs_slivers(layers: Layers, tmp_path: Path) -> None:
    x, y = ORIGIN
    _set(layers, "counting_districts", ("cd_code", CD1), "geometry",
         shapely.box(x, y, x + 300.002, y + 200))  # a 0.4 m² sliver over CD2
    assert _check(layers, tmp_path).ok


def test_check_layers_works_in_memory(layers: Layers) -> None:
    assert check_layers(layers).ok
    break_disconnected_cd(layers)
    report = check_layers(layers)
    assert _has_violation(report, "disconnected_cd", CD4)
    with pytest.raises(PlanCheckError, match="disconnected_cd"):
        report.raise_for_violations()
    assert report.counts()["disconnected_cd"] == 1


def test_missing_plan_file_is_an_input_file_error(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match=r"plan\.gpkg"):
        check_plan(tmp_path)


def test_large_plan_finds_the_one_violation() -> None:
    layers = grid_plan(rows=125, cols=160, cd_rows=5, cd_cols=8)  # 20,000 units, 500 CDs
    assert len(layers["units"]) == 20_000 and len(layers["counting_districts"]) == 500
    corner = layers["units"]["unit_id"] == unit_id(0, 0)
    layers["units"].loc[corner, "cd_code"] = cd_code(24, 500)
    report = check_layers(layers)
    assert _has_violation(report, "disconnected_cd", cd_code(24, 500))


def test_only_an_exact_tiling_skips_the_territory_arithmetic() -> None:
    """The quick test before the overlay arithmetic passes a territory only when its
    districts' union is the very same polygon; anything else goes to the full check."""
    from districting.check import _is_tiled_by

    left, right = shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)
    # the union of the two, as a dissolve makes it: the shared edge's ends stay vertices
    whole = shapely.Polygon([(0, 0), (1, 0), (2, 0), (2, 1), (1, 1), (0, 1)])
    pair = np.array([left, right], dtype=object)
    assert _is_tiled_by(whole, pair)
    assert _is_tiled_by(shapely.reverse(whole), pair[::-1])  # in any vertex order
    assert not _is_tiled_by(shapely.box(0, 0, 2, 1), pair)  # the same shape, other vertices
    assert not _is_tiled_by(shapely.Polygon([(0, 0), (1, 0), (2.001, 0), (2, 1), (1, 1),
                                             (0, 1)]), pair)
    overlapping = np.array([shapely.box(0, 0, 1.5, 1), right], dtype=object)
    assert not _is_tiled_by(whole, overlapping)  # the same outline, but overlapping
    assert not _is_tiled_by(whole, pair[:1])
    assert not _is_tiled_by(whole, np.array([], dtype=object))
    assert not _is_tiled_by(whole, np.array([left, None], dtype=object))
