"""Tests of register validation: every problem names its row, column and reason, in one pass."""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner
from conftest import two_settlement_register

from districting.cli import main
from districting.errors import Problem, RegisterValidationError
from districting.io.register import REQUIRED_COLUMNS, RawRegister, read_register
from districting.validate import raise_for_errors, validate_register

TOWN, VILLAGE = "431010000", "431030100"
BOW_TIE = shapely.Polygon([(63.30, 45.60), (63.31, 45.61), (63.31, 45.60), (63.30, 45.61)])


@pytest.fixture
def frame() -> gpd.GeoDataFrame:
    """Ten town buildings (row 1 is a school with no residents) in EPSG:4326."""
    frame = two_settlement_register().iloc[:10].reset_index(drop=True)
    for column in ("dwellings", "residents"):
        frame[column] = frame[column].astype(object)  # so cells can hold bad text
    return frame


def _settlements(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    hulls = frame.to_crs("EPSG:32641").dissolve("settlement_id").convex_hull.buffer(50)
    return gpd.GeoDataFrame({"settlement_id": list(hulls.index)}, geometry=list(hulls),
                            crs="EPSG:32641").to_crs(frame.crs)


def _problems(frame: gpd.GeoDataFrame, settlements: gpd.GeoDataFrame | None = None
              ) -> list[Problem]:
    return validate_register(RawRegister(frame, Path("register.gpkg"), settlements))


def _errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


def _only_error(problems: list[Problem]) -> Problem:
    errors = _errors(problems)
    assert len(errors) == 1, [str(p) for p in errors]
    return errors[0]


def test_clean_register_has_no_problems(frame: gpd.GeoDataFrame) -> None:
    problems = _problems(frame)
    assert problems == []
    raise_for_errors(problems)


def test_clean_register_with_settlements_has_no_problems() -> None:
    frame = two_settlement_register()
    assert _problems(frame, _settlements(frame)) == []


def test_missing_required_columns_one_problem_each(frame: gpd.GeoDataFrame) -> None:
    problems = _problems(frame.drop(columns=["address", "dwellings", "kind"]))
    errors = _errors(problems)
    assert sorted((p.row, p.column) for p in errors) == [
        (None, "address"), (None, "dwellings"), (None, "kind")]
    assert all("required column is missing" in p.message for p in errors)


def test_every_required_column_is_checked(frame: gpd.GeoDataFrame) -> None:
    errors = _errors(_problems(frame.drop(columns=list(REQUIRED_COLUMNS))))
    assert sorted(p.column for p in errors if p.row is None) == sorted(REQUIRED_COLUMNS)


def test_duplicate_building_id_names_first_row(frame: gpd.GeoDataFrame) -> None:
    frame.loc[6, "building_id"] = frame.loc[2, "building_id"]
    error = _only_error(_problems(frame))
    assert (error.row, error.column) == (7, "building_id")
    assert "duplicate building_id" in error.message
    assert "first seen in row 3" in error.message
    assert str(frame.loc[2, "building_id"]) in error.message


def test_empty_building_id(frame: gpd.GeoDataFrame) -> None:
    frame.loc[4, "building_id"] = " "
    error = _only_error(_problems(frame))
    assert (error.row, error.column) == (5, "building_id")
    assert "building_id is empty" in error.message


@pytest.mark.parametrize(
    ("column", "value", "phrase"),
    [
        ("dwellings", -3, "-3 is negative"),
        ("residents", "-1", "-1 is negative"),
        ("dwellings", "2.5", "'2.5' is not a whole number"),
        ("residents", "abc", "'abc' is not a number"),
        ("residents", "", "is empty"),
        ("dwellings", float("inf"), "is not a finite number"),
    ],
)
def test_bad_count(frame: gpd.GeoDataFrame, column: str, value: object, phrase: str) -> None:
    frame.loc[4, column] = value
    error = _only_error(_problems(frame))
    assert (error.row, error.column) == (5, column)
    assert phrase in error.message
    assert "expected a whole number ≥ 0" in error.message
    assert str(frame.loc[4, "building_id"]) in error.message


def test_count_as_float_whole_number_is_fine(frame: gpd.GeoDataFrame) -> None:
    frame.loc[4, "dwellings"] = "12.0"
    assert _errors(_problems(frame)) == []


def test_optional_count_blank_is_fine_but_bad_is_an_error(frame: gpd.GeoDataFrame) -> None:
    frame["households"] = [""] * len(frame)
    assert _errors(_problems(frame)) == []
    frame.loc[8, "households"] = "many"
    error = _only_error(_problems(frame))
    assert (error.row, error.column) == (9, "households")
    assert "'many' is not a number" in error.message


@pytest.mark.parametrize("geometry", [None, shapely.Point(), shapely.Polygon()])
def test_missing_or_empty_geometry(frame: gpd.GeoDataFrame, geometry: object) -> None:
    frame.loc[3, "geometry"] = geometry
    error = _only_error(_problems(frame))
    assert (error.row, error.column) == (4, "geometry")
    assert "geometry is missing or empty" in error.message


def test_invalid_polygon(frame: gpd.GeoDataFrame) -> None:
    frame.loc[5, "geometry"] = BOW_TIE
    error = _only_error(_problems(frame))
    assert (error.row, error.column) == (6, "geometry")
    assert "geometry is invalid" in error.message
    assert "Self-intersection" in error.message


def test_linestring_geometry(frame: gpd.GeoDataFrame) -> None:
    frame.loc[2, "geometry"] = shapely.LineString([(63.30, 45.60), (63.31, 45.61)])
    error = _only_error(_problems(frame))
    assert (error.row, error.column) == (3, "geometry")
    assert "geometry is a LineString; expected a Point or Polygon" in error.message


def test_polygons_and_multipolygons_are_allowed(frame: gpd.GeoDataFrame) -> None:
    x, y = frame.geometry.iloc[1].x, frame.geometry.iloc[1].y  # where the town is
    square = shapely.box(x, y, x + 0.0001, y + 0.0001)
    frame.loc[1, "geometry"] = square
    frame.loc[2, "geometry"] = shapely.MultiPolygon([square])
    assert _problems(frame) == []


def test_missing_crs(frame: gpd.GeoDataFrame) -> None:
    error = _only_error(_problems(frame.set_crs(None, allow_override=True)))
    assert (error.row, error.column) == (None, "geometry")
    assert "no coordinate reference system" in error.message


def test_residents_without_dwellings(frame: gpd.GeoDataFrame) -> None:
    assert int(frame.loc[3, "residents"]) > 0
    frame.loc[3, "dwellings"] = 0
    error = _only_error(_problems(frame))
    assert (error.row, error.column) == (4, "residents")
    assert "residents recorded in a building with no dwellings" in error.message


def test_unknown_kind(frame: gpd.GeoDataFrame) -> None:
    frame.loc[7, "kind"] = "castle"
    error = _only_error(_problems(frame))
    assert (error.row, error.column) == (8, "kind")
    assert "kind 'castle' is not one of residential" in error.message


@pytest.mark.parametrize("column", ["settlement_id", "settlement_name"])
def test_empty_settlement_text(frame: gpd.GeoDataFrame, column: str) -> None:
    frame.loc[2, column] = ""
    error = _only_error(_problems(frame))
    assert (error.row, error.column) == (3, column)
    assert f"{column} is empty" in error.message


def test_lon_lat_out_of_range(frame: gpd.GeoDataFrame) -> None:
    frame.loc[5, "geometry"] = shapely.Point(331_000.0, 5_054_000.0)  # UTM metres as degrees
    error = _only_error(_problems(frame))
    assert (error.row, error.column) == (6, "geometry")
    assert "outside longitude/latitude range" in error.message


def test_projected_crs_has_no_range_check(frame: gpd.GeoDataFrame) -> None:
    assert _problems(frame.to_crs("EPSG:32641")) == []


def test_point_outside_its_settlement() -> None:
    frame = two_settlement_register()
    settlements = _settlements(frame)
    village_point = frame.geometry[frame["settlement_id"] == VILLAGE].iloc[0]
    frame.loc[5, "geometry"] = village_point  # a town building placed in the village
    error = _only_error(_problems(frame, settlements))
    assert (error.row, error.column) == (6, "geometry")
    assert f"outside the polygon of its settlement {TOWN}" in error.message


def test_unknown_settlement_in_settlements_layer() -> None:
    frame = two_settlement_register()
    settlements = _settlements(frame)
    frame.loc[9, "settlement_id"] = "431099999"
    error = _only_error(_problems(frame, settlements))
    assert (error.row, error.column) == (10, "settlement_id")
    assert "settlement 431099999 has no polygon in the settlements layer" in error.message


def test_settlements_layer_without_settlement_id(frame: gpd.GeoDataFrame) -> None:
    settlements = _settlements(frame).rename(columns={"settlement_id": "code"})
    error = _only_error(_problems(frame, settlements))
    assert (error.row, error.column) == (None, "settlement_id")
    assert "settlements layer has no settlement_id column" in error.message


def test_settlement_check_through_gpkg_layer(tmp_path: Path) -> None:
    frame = two_settlement_register()
    settlements = _settlements(frame)
    frame.loc[0, "geometry"] = frame.geometry[frame["settlement_id"] == VILLAGE].iloc[3]
    path = tmp_path / "register.gpkg"
    frame.to_file(path, layer="buildings", engine="pyogrio")
    settlements.to_file(path, layer="settlements", engine="pyogrio")
    error = _only_error(validate_register(read_register(path)))
    assert (error.source, error.row, error.column) == ("register.gpkg", 1, "geometry")
    assert "outside the polygon" in error.message


def test_empty_register(frame: gpd.GeoDataFrame) -> None:
    error = _only_error(_problems(frame.iloc[:0]))
    assert "no rows" in error.message


# --- warnings ------------------------------------------------------------------------


def test_warnings_are_not_errors(frame: gpd.GeoDataFrame) -> None:
    frame.loc[2, "function"] = "spaceport"
    frame["households"] = [""] * len(frame)
    frame.loc[4, "households"] = str(int(frame.loc[4, "dwellings"]) + 5)
    frame.loc[6, "address"] = ""
    problems = _problems(frame)
    assert _errors(problems) == []
    assert sorted((p.severity, p.row, p.column) for p in problems) == [
        ("warning", 3, "function"), ("warning", 5, "households"), ("warning", 7, "address")]
    assert any("'spaceport' is not a known building function" in p.message for p in problems)
    assert any("households exceed the" in p.message for p in problems)
    raise_for_errors(problems)  # warnings alone do not raise


def test_non_residential_with_residents_is_a_warning(frame: gpd.GeoDataFrame) -> None:
    assert frame.loc[0, "kind"] == "non_residential"
    frame.loc[0, "dwellings"] = 1
    frame.loc[0, "residents"] = 3
    problems = _problems(frame)
    assert [(p.severity, p.row, p.column) for p in problems] == [("warning", 1, "residents")]


# --- all problems in one pass ------------------------------------------------------------


def _bad_csv(folder: Path) -> tuple[Path, set[tuple[int | None, str | None]]]:
    """A CSV register with many different problems, and where each one is."""
    frame = two_settlement_register().iloc[:12].reset_index(drop=True)
    table = pd.DataFrame(frame.drop(columns=["geometry", "address"]))  # address missing
    table["wkt"] = shapely.to_wkt(frame.geometry.to_numpy(), rounding_precision=9)
    table = table.astype(str)
    table.loc[2, "building_id"] = table.loc[1, "building_id"]       # row 3: duplicate
    table.loc[3, "dwellings"] = "-4"                                 # row 4: negative
    table.loc[4, "residents"] = "abc"                                # row 5: not a number
    table.loc[5, "dwellings"] = "2.5"                                # row 6: not whole
    table.loc[6, "wkt"] = BOW_TIE.wkt                                # row 7: invalid
    table.loc[7, "wkt"] = "LINESTRING (63.3 45.6, 63.4 45.7)"        # row 8: a line
    table.loc[8, "kind"] = "palace"                                  # row 9: unknown kind
    table.loc[9, "wkt"] = ""                                         # row 10: no geometry
    table.loc[10, "dwellings"] = "0"                                 # row 11: residents, no flats
    table.loc[11, "wkt"] = "POINT (331000 5054000)"                  # row 12: out of range
    table.loc[1, "function"] = "spaceport"                           # row 2: only a warning
    path = folder / "bad.csv"
    table.to_csv(path, index=False, encoding="utf-8")
    expected = {
        (None, "address"), (3, "building_id"), (4, "dwellings"), (5, "residents"),
        (6, "dwellings"), (7, "geometry"), (8, "geometry"), (9, "kind"), (10, "geometry"),
        (11, "residents"), (12, "geometry"),
    }
    return path, expected


def test_all_problems_reported_in_one_pass(tmp_path: Path) -> None:
    path, expected = _bad_csv(tmp_path)
    problems = validate_register(read_register(path))
    errors = _errors(problems)
    assert {(p.row, p.column) for p in errors} == expected
    assert len(errors) == len(expected)
    assert all(p.source == "bad.csv" for p in problems)
    assert [(p.row, p.column) for p in problems if p.severity == "warning"] == [(2, "function")]
    with pytest.raises(RegisterValidationError) as info:
        raise_for_errors(problems)
    assert len(info.value.problems) == len(problems)
    assert f"the register has {len(expected)} error(s):" in str(info.value)
    assert "spaceport" not in str(info.value)  # warnings are attached, not listed as errors


def test_unparseable_wkt_is_reported_with_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(
        "building_id,settlement_id,settlement_name,address,kind,dwellings,residents,wkt\n"
        "A,1,Город,ул. 1,residential,1,2,POINT (63.3 45.6)\n"
        "B,1,Город,ул. 2,residential,1,2,POINT (63.3\n"
        "C,1,Город,ул. 3,palace,1,2,POINT (63.3 45.6)\n",
        encoding="utf-8",
    )
    errors = _errors(validate_register(read_register(path)))
    by_place = {(p.row, p.column): p.message for p in errors}
    assert "cannot parse WKT" in by_place[(2, "wkt")]
    assert "missing or empty" in by_place[(2, "geometry")]
    assert "palace" in by_place[(3, "kind")]


# --- command line ----------------------------------------------------------------------


def test_cli_validate_clean(register_file: Path) -> None:
    result = CliRunner().invoke(main, ["validate", str(register_file)])
    assert result.exit_code == 0, result.output
    assert "0 error(s), 0 warning(s)" in result.output
    assert "Traceback" not in result.output


def test_cli_validate_warnings_only_exit_zero(tmp_path: Path) -> None:
    frame = two_settlement_register()
    frame.loc[3, "function"] = "spaceport"
    path = tmp_path / "warn.gpkg"
    frame.to_file(path, layer="buildings", engine="pyogrio")
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "warning: warn.gpkg, row 4, column 'function'" in result.output
    assert "0 error(s), 1 warning(s)" in result.output


def test_cli_validate_bad_lists_every_problem(tmp_path: Path) -> None:
    path, expected = _bad_csv(tmp_path)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for row, column in expected:
        where = f"row {row}, column '{column}'" if row is not None else f"column '{column}'"
        assert f"error: bad.csv, {where}" in result.output, where
    assert "warning: bad.csv, row 2, column 'function'" in result.output
    assert f"{len(expected)} error(s), 1 warning(s)" in result.output


def test_cli_validate_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "absent.gpkg")])
    assert result.exit_code == 1
    assert "error: register file not found" in result.output
    assert "Traceback" not in result.output


def test_cli_plan_bad_register_writes_nothing(tmp_path: Path) -> None:
    path, expected = _bad_csv(tmp_path)
    validate_out = CliRunner().invoke(main, ["validate", str(path)]).output
    error_lines = [line for line in validate_out.splitlines() if line.startswith("error:")]
    assert len(error_lines) == len(expected)

    out = tmp_path / "plan"
    result = CliRunner().invoke(main, ["-q", "plan", str(path), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"the register has {len(expected)} error(s)" in result.output
    for line in error_lines:
        assert line in result.output
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def test_ids_that_differ_only_by_spaces_are_duplicates(tmp_path: Path) -> None:
    from districting.io.register import read_register
    from districting.validate import validate_register

    path = tmp_path / "r.csv"
    path.write_text(
        "building_id,settlement_id,settlement_name,address,kind,dwellings,residents,lon,lat\n"
        "A,1,S,a 1,residential ,1,2,63.30,45.60\n"
        "A ,1,S,a 2,residential,1,2,63.31,45.60\n", encoding="utf-8")
    problems = validate_register(read_register(path))
    errors = [p for p in problems if p.severity == "error"]
    assert len(errors) == 1 and errors[0].row == 2 and "duplicate" in errors[0].message


ODD_COUNTS = [" 12 ", "1_000", True, None, float("nan"), "", "   ", -1, 1.5, float("inf")]


def test_whole_column_checks_flag_exactly_what_the_row_rule_flags(
        frame: gpd.GeoDataFrame) -> None:
    """The fast whole-column path must report a count error on exactly the rows whose
    value the row-by-row rule (``_as_count``) rejects, whatever the cell holds."""
    from districting.validate import _as_count

    values = ODD_COUNTS
    frame["residents"] = values
    frame["dwellings"] = [100] * len(frame)
    flagged = {p.row for p in _errors(_problems(frame)) if p.column == "residents"}
    expected = {row for row, value in enumerate(values, start=1)
                if _as_count(value)[1] is not None}
    assert flagged == expected
    assert expected == {4, 5, 6, 7, 8, 9, 10}  # None, NaN, blanks, -1, 1.5, inf


def test_duplicates_and_blanks_in_ids_found_among_many_rows(frame: gpd.GeoDataFrame) -> None:
    frame["building_id"] = ["A", "B", " A", None, "C", "B ", "", "D", "E", "A"]
    messages = [(p.row, p.message) for p in _errors(_problems(frame))
                if p.column == "building_id"]
    assert [row for row, _ in messages] == [3, 4, 6, 7, 10]
    assert "first seen in row 1" in messages[0][1] and "first seen in row 2" in messages[2][1]
    assert "empty" in messages[1][1] and "empty" in messages[3][1]


# --- identifiers that become file names and codes --------------------------------------


SAFE_IDS = ["431010000", "000000000", "osm-w123456789", "osm-r42", "B000001",
            "431010000-000001", "Байконур-1", "ул.Абая_5", "x" * 64, "_1"]
UNSAFE_IDS = {
    "../../X": "starts with '.'",
    "a/b": "contains '/'",
    "a\\b": "contains '\\\\'",
    "-rf": "starts with '-'",
    ".hidden": "starts with '.'",
    "9" * 300: "is 300 characters long, more than 64",
    "x" * 65: "is 65 characters long, more than 64",
    "𠀀" * 40: "bytes long in UTF-8, more than 128",
    "x y": "contains U+0020 (space)",
    "a\tb": "contains U+0009",
    "ab\x1b[2J": "contains U+001B",
    "a\x00b": "contains U+0000",
    "NUL": "reserved device name on Windows",
    "com1.txt": "reserved device name on Windows",
}


def test_safe_identifier_rule() -> None:
    from districting.validate import safe_identifier_problem

    for value in SAFE_IDS:
        assert safe_identifier_problem(value) is None, value
    for value, phrase in UNSAFE_IDS.items():
        reason = safe_identifier_problem(value)
        assert reason is not None and phrase in reason, (value, reason)


@pytest.mark.parametrize("value", ["../../X", "a/b", "9" * 300, "x y", "ab\x1b[2J"])
def test_unsafe_settlement_id_is_an_error_on_each_row(
        frame: gpd.GeoDataFrame, value: str) -> None:
    """An id with a path separator, 300 characters or a control character once passed
    validation, and planning then wrote files from it (``../../X`` two folders up)."""
    frame.loc[[2, 5], "settlement_id"] = value
    errors = _errors(_problems(frame))
    assert [(p.row, p.column) for p in errors] == [(3, "settlement_id"), (6, "settlement_id")]
    for error in errors:
        assert "is not a safe identifier" in error.message
        assert "use 1–64 letters, digits, '-', '_' or '.'" in error.message
        assert "\x1b" not in error.message and "9" * 41 not in error.message


def test_unsafe_building_id_is_an_error(frame: gpd.GeoDataFrame) -> None:
    frame.loc[3, "building_id"] = "../evil"
    frame.loc[7, "building_id"] = " Байконур-7 "  # surrounding spaces are stripped: fine
    error = _only_error(_problems(frame))
    assert (error.row, error.column) == (4, "building_id")
    assert "'../evil' is not a safe identifier: it starts with '.'" in error.message


def test_whole_column_id_check_flags_exactly_what_the_row_rule_flags(
        frame: gpd.GeoDataFrame) -> None:
    from districting.validate import safe_identifier_problem

    values = [*SAFE_IDS, *UNSAFE_IDS]
    rows = pd.concat([frame] * (len(values) // len(frame) + 1), ignore_index=True)
    rows = gpd.GeoDataFrame(rows.iloc[:len(values)], crs=frame.crs)
    rows["building_id"] = values
    flagged = {p.row for p in _errors(_problems(rows)) if p.column == "building_id"}
    assert flagged == {row for row, value in enumerate(values, start=1)
                       if safe_identifier_problem(value.strip()) is not None}
    assert len(flagged) == len(UNSAFE_IDS)


def test_cli_plan_refuses_a_settlement_id_that_is_a_path(tmp_path: Path) -> None:
    frame = two_settlement_register()
    frame.loc[frame["settlement_id"] == VILLAGE, "settlement_id"] = "../../X"
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    path = deep / "register.gpkg"
    frame.to_file(path, layer="buildings", engine="pyogrio")
    result = CliRunner().invoke(main, ["-q", "plan", str(path), "--out", str(deep / "plan")])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "'../../X' is not a safe identifier" in result.output
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["register.gpkg"]


# --- implausible counts, an empty register, a far building ------------------------------


def test_absurd_residents_per_building_is_an_error(frame: gpd.GeoDataFrame) -> None:
    """10^12 residents in a 60-flat building were accepted and planned."""
    frame.loc[4, ["dwellings", "residents"]] = [60, 10**12]
    error = _only_error(_problems(frame))
    assert (error.row, error.column) == (5, "residents")
    assert "residents 1,000,000,000,000 is more than one building can have" in error.message
    assert "at most 100,000" in error.message


def test_huge_count_written_as_text_is_an_error(frame: gpd.GeoDataFrame) -> None:
    frame["floors"] = [3] * len(frame)
    frame.loc[2, "dwellings"] = "1e300"
    frame.loc[6, "floors"] = 1000
    errors = _errors(_problems(frame))
    assert [(p.row, p.column) for p in errors] == [(3, "dwellings"), (7, "floors")]
    assert "dwellings 1e+300 is more than" in errors[0].message
    assert "floors 1,000 is more than one building can have (at most 200)" in errors[1].message


def test_residents_per_dwelling(frame: gpd.GeoDataFrame) -> None:
    frame.loc[3, ["dwellings", "residents"]] = [1, 40]  # more than any dwelling houses
    frame.loc[5, ["dwellings", "residents"]] = [2, 34]  # 17 per dwelling: rare, doubted
    frame.loc[7, ["kind", "dwellings", "residents"]] = ["collective", 1, 300]  # a dormitory
    problems = _problems(frame)
    assert [(p.severity, p.row, p.column) for p in problems] == [
        ("error", 4, "residents"), ("warning", 6, "residents")]
    assert "40 residents in 1 dwelling(s) is 40.0 per dwelling, more than the 30" \
        in problems[0].message
    assert "kind 'collective'" in problems[0].message
    assert "34 residents in 2 dwelling(s) is 17.0 per dwelling, more than 15" \
        in problems[1].message


def test_register_without_residents_is_an_error(frame: gpd.GeoDataFrame) -> None:
    """A register with no residents at all was planned (with 3 interviewers)."""
    frame["residents"] = 0
    error = _only_error(_problems(frame))
    assert (error.row, error.column) == (None, "residents")
    assert "the register has no residents" in error.message


def test_cli_plan_refuses_a_register_without_residents(tmp_path: Path) -> None:
    frame = two_settlement_register()
    frame["residents"] = 0
    path = tmp_path / "empty.gpkg"
    frame.to_file(path, layer="buildings", engine="pyogrio")
    result = CliRunner().invoke(main, ["-q", "plan", str(path), "--out", str(tmp_path / "p")])
    assert result.exit_code == 1, result.output
    assert "error: empty.gpkg, column 'residents': the register has no residents" \
        in result.output
    assert not (tmp_path / "p").exists()


def _km(message: str) -> float:
    found = re.search(r"the building lies ([\d,.]+) km from", message)
    assert found is not None, message
    return float(found.group(1).replace(",", ""))


def test_building_far_from_its_settlement_is_a_warning() -> None:
    """A building moved 5° away (no settlements layer) was planned with a 500 km walk."""
    frame = two_settlement_register()
    point = frame.geometry.iloc[5]
    frame.loc[5, "geometry"] = shapely.Point(point.x, point.y + 5)
    problems = _problems(frame)
    assert [(p.severity, p.row, p.column) for p in problems] == [("warning", 6, "geometry")]
    assert _km(problems[0].message) == pytest.approx(556, abs=1)  # 5° of latitude
    assert f"km from the median point of settlement {TOWN}'s 300 buildings" \
        in problems[0].message


def test_far_check_in_a_projected_crs_and_the_polygon_check_wins() -> None:
    frame = two_settlement_register().to_crs("EPSG:32641")
    point = frame.geometry.iloc[5]
    frame.loc[5, "geometry"] = shapely.Point(point.x + 30_000, point.y)  # 30 km east
    problems = _problems(frame)
    assert [(p.severity, p.row) for p in problems] == [("warning", 6)]
    assert _km(problems[0].message) == pytest.approx(30, abs=1)
    # With a settlements layer the building is outside its polygon: an error, no warning.
    settlements = _settlements(two_settlement_register()).to_crs(frame.crs)
    problems = _problems(frame, settlements)
    assert [(p.severity, p.row) for p in problems] == [("error", 6)]
    assert "outside the polygon" in problems[0].message


def test_synthetic_baikonur_has_no_far_buildings() -> None:
    """The synthetic city and its villages, checked without their settlements layer
    (so that the far-building rule runs), give no warning at all."""
    from districting.synth import synthesize_baikonur

    buildings = synthesize_baikonur().buildings
    assert _problems(buildings) == []
