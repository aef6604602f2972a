"""Tests for the field staff's assignment sheets (districting.outputs.sheets): CSV, XLSX, HTML."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest
from plan_fixtures import cd_code, grid_plan, id_code, unit_id

from districting.errors import DistrictingError
from districting.layers import PlanLayers
from districting.outputs.sheets import (
    CD_SHEET_COLUMNS,
    ID_SHEET_COLUMNS,
    SHEET_TEXT,
    TOTAL_LABEL,
    _sheet_title,
    format_period,
    write_cd_sheets,
    write_field_sheets,
    write_instructor_sheets,
)

PERIOD = "2021-10-01/2021-10-30"
SETTLEMENT_NAME = "Baikonur (synthetic test grid)"
#: Units without households (visit_order 0) in the fixture, by CD.
UNVISITED = {
    cd_code(0, 2): {unit_id(0, 4)},
    cd_code(1, 3): {unit_id(2, 0), unit_id(3, 2)},
    cd_code(1, 4): {unit_id(3, 5)},
}
#: Two halves of one building, split by dwelling ranges.
SPLIT = {unit_id(0, 0): (1, 120), unit_id(0, 1): (121, 240)}


def field_layers() -> PlanLayers:
    """The 4x6 grid plan (4 CDs in 2 IDs) with a route that is not the register order.

    In each CD the visited units are walked in reverse unit-id order; the units in
    :data:`UNVISITED` have no households and ``visit_order`` 0; two units carry
    dwelling ranges; every CD has a route length and a register-order length.
    """
    layers = grid_plan()
    units = layers["units"].copy()
    skipped = set().union(*UNVISITED.values())
    for _, group in units.groupby("cd_code"):
        ids = sorted(group["unit_id"])
        walk = [u for u in reversed(ids) if u not in skipped]
        for number, uid in enumerate(walk, start=1):
            units.loc[units["unit_id"] == uid, "visit_order"] = number
    gone = units["unit_id"].isin(skipped)
    units.loc[gone, ["households", "residents", "visit_order"]] = 0
    for uid, (first, last) in SPLIT.items():
        units.loc[units["unit_id"] == uid, ["dwelling_from", "dwelling_to"]] = [first, last]
    units["workload"] = units["workload"] + 0.0123 * pd.RangeIndex(len(units)).to_numpy()
    cds = layers["counting_districts"].copy()
    sums = units.groupby("cd_code")[["residents", "workload"]].sum()
    cds["residents"] = cds["cd_code"].map(sums["residents"]).astype("int64")
    cds["workload"] = cds["cd_code"].map(sums["workload"])
    cds["tour_m"] = [1234.0 + 100 * i for i in range(len(cds))]
    cds["naive_m"] = [2345.0 + 100 * i for i in range(len(cds))]
    return PlanLayers(**{**layers, "units": units, "counting_districts": cds})


@pytest.fixture(scope="module")
def layers() -> PlanLayers:
    return field_layers()


@pytest.fixture(scope="module")
def sheets_ru(layers: PlanLayers, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ru") / "sheets"
    write_field_sheets(layers, out, period=PERIOD)
    return out


@pytest.fixture(scope="module")
def sheets_en(layers: PlanLayers, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("en") / "sheets"
    write_field_sheets(layers, out, lang="en", period=PERIOD)
    return out


# ------------------------------------------------------------ reading the sheets back


def read(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM, for Excel
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def parse_cd(rows: list[list[Any]], lang: str = "ru") -> dict[str, Any]:
    """A CD sheet's parts: header fields, visited rows, unvisited rows, totals, route."""
    rows = [["" if v is None else str(v) for v in row] for row in rows]
    text = SHEET_TEXT[lang]
    head = rows.index(CD_SHEET_COLUMNS[lang])
    # a label, then its value in the next filled cell (CSV: the next cell; XLSX: merged)
    fields = {r[0]: next((v for v in r[1:] if v and v != text["signature"]), "")
              for r in rows[1:head] if r and r[0]}
    signers = [[v for v in r if v] for r in rows[1:head] if text["signature"] in r]
    total_at = next(i for i, r in enumerate(rows) if r and r[0] == TOTAL_LABEL[lang])
    body = rows[head + 1:total_at]
    titles = [i for i, r in enumerate(body) if r and r[0] == text["unvisited"]]
    visited = body[:titles[0]] if titles else body
    unvisited = body[titles[0] + 1:] if titles else []
    route = next(r for r in rows[total_at + 1:] if r and r[0] == text["route"])
    return {"title": rows[0][0], "fields": fields, "signers": signers, "visited": visited,
            "unvisited": unvisited, "has_unvisited_block": bool(titles),
            "total": rows[total_at], "route": route}


def sheet_rows(ws: Any) -> list[list[Any]]:
    return [list(row) for row in ws.iter_rows(values_only=True)]


def expected_route(layers: PlanLayers, code: str) -> list[str]:
    units = layers.units[layers.units["cd_code"] == code]
    visited = units[units["visit_order"] > 0].sort_values("visit_order")
    return visited["unit_id"].tolist()


def to_visit(units: pd.DataFrame) -> int:
    return sum(round(h * (1 - s)) for h, s in zip(units["households"], units["online_share"],
                                                  strict=True))


def cd_codes(layers: PlanLayers, id_code_: str | None = None) -> list[str]:
    cds = layers.counting_districts
    if id_code_ is not None:
        cds = cds[cds["id_code"] == id_code_]
    return sorted(cds["cd_code"])


# ------------------------------------------------------------ files


def test_field_sheets_write_the_expected_files(layers: PlanLayers, sheets_ru: Path) -> None:
    ids = sorted(layers.instructor_districts["id_code"])
    files = sorted(str(p.relative_to(sheets_ru)) for p in sheets_ru.rglob("*") if p.is_file())
    assert files == sorted(
        [f"{c}.csv" for c in cd_codes(layers)]
        + [f"instructors/{i}.csv" for i in ids]
        + [f"xlsx/{i}.xlsx" for i in ids]
        + [f"html/{i}.html" for i in ids]
    )


# ------------------------------------------------------------ CD sheets (CSV)


def test_every_unit_is_on_one_csv_sheet_once_in_route_order(
    layers: PlanLayers, sheets_ru: Path,
) -> None:
    seen: list[str] = []
    for code in cd_codes(layers):
        sheet = parse_cd(read(sheets_ru / f"{code}.csv"))
        visited = [r[2] for r in sheet["visited"]]
        assert visited == expected_route(layers, code)
        assert [r[0] for r in sheet["visited"]] == [str(i) for i in range(1, len(visited) + 1)]
        unvisited = [r[2] for r in sheet["unvisited"]]
        assert set(unvisited) == UNVISITED.get(code, set())
        assert sheet["has_unvisited_block"] == (code in UNVISITED)
        assert all(r[0] == "" for r in sheet["unvisited"])  # no place in the route
        seen += visited + unvisited
    assert sorted(seen) == sorted(layers.units["unit_id"])
    assert len(seen) == len(set(seen))


def test_the_route_is_not_just_the_register_order(layers: PlanLayers, sheets_ru: Path) -> None:
    code = cd_code(0, 1)
    rows = parse_cd(read(sheets_ru / f"{code}.csv"))["visited"]
    shown = [r[2] for r in rows]
    assert shown == sorted(shown, reverse=True)  # the fixture walks backwards


def test_csv_rows_show_the_unit_figures(layers: PlanLayers, sheets_ru: Path) -> None:
    units = layers.units.set_index("unit_id")
    for code in cd_codes(layers):
        sheet = parse_cd(read(sheets_ru / f"{code}.csv"))
        for row in sheet["visited"] + sheet["unvisited"]:
            unit = units.loc[row[2]]
            assert row[1] == unit["address"]
            assert int(row[4]) == unit["dwellings"]
            assert int(row[5]) == unit["residents"]
            assert int(row[6]) == round(unit["households"] * (1 - unit["online_share"]))
            assert float(row[7]) == pytest.approx(unit["workload"], abs=0.05)
            first, last = SPLIT.get(row[2], (0, 0))
            assert row[3] == (f"кв. {first}–{last}" if first else "")


def test_csv_totals_equal_the_layer_sums(layers: PlanLayers, sheets_ru: Path) -> None:
    cds = layers.counting_districts.set_index("cd_code")
    for code in cd_codes(layers):
        sheet = parse_cd(read(sheets_ru / f"{code}.csv"))
        units = layers.units[layers.units["cd_code"] == code]
        total = sheet["total"]
        assert total[1] == f"Адресных единиц: {len(units)}"
        assert int(total[4]) == units["dwellings"].sum()
        assert int(total[5]) == units["residents"].sum()
        assert int(total[6]) == to_visit(units)
        assert float(total[7]) == pytest.approx(units["workload"].sum(), abs=0.05)
        route = sheet["route"]
        assert float(route[1]) == pytest.approx(cds.loc[code, "tour_m"] / 1000, abs=0.005)
        assert route[2] == "В порядке реестра, км"
        assert float(route[3]) == pytest.approx(cds.loc[code, "naive_m"] / 1000, abs=0.005)


def test_csv_header_carries_codes_point_period_and_blank_fields(
    layers: PlanLayers, sheets_ru: Path,
) -> None:
    cds = layers.counting_districts.set_index("cd_code")
    points = dict(zip(layers.registration_points["rd_code"],
                      layers.registration_points["point_name"], strict=True))
    for code in cd_codes(layers):
        sheet = parse_cd(read(sheets_ru / f"{code}.csv"))
        assert sheet["title"] == "Маршрутный лист счётного участка"
        assert sheet["fields"] == {
            "Населённый пункт": SETTLEMENT_NAME,
            "Счётный участок": code,
            "Инструкторский участок": cds.loc[code, "id_code"],
            "Регистрационный участок": cds.loc[code, "rd_code"],
            "Стационарный участок": points[cds.loc[code, "rd_code"]],
            "Период переписи": "01.10.2021 – 30.10.2021",
            "Интервьюер (Ф. И. О.)": "",
            "Инструктор-контролёр (Ф. И. О.)": "",
        }
        # name and signature left blank to fill in
        assert sheet["signers"] == [["Интервьюер (Ф. И. О.)", "Подпись"],
                                    ["Инструктор-контролёр (Ф. И. О.)", "Подпись"]]
    assert points[cds.loc[cd_code(0, 2), "rd_code"]] == "school 2"


def test_english_labels_on_request(layers: PlanLayers, sheets_ru: Path, sheets_en: Path) -> None:
    code = cd_code(1, 3)
    ru = parse_cd(read(sheets_ru / f"{code}.csv"))
    en = parse_cd(read(sheets_en / f"{code}.csv"), lang="en")
    assert en["title"] == "Counting district route sheet"
    assert en["fields"]["Census period"] == "1 Oct 2021 – 30 Oct 2021"
    assert en["fields"]["Counting district"] == code
    assert en["total"][0] == "TOTAL" and en["total"][1].startswith("Address units: ")
    assert [r[2] for r in en["visited"]] == [r[2] for r in ru["visited"]]
    assert [r[2] for r in en["unvisited"]] == [r[2] for r in ru["unvisited"]]
    split = parse_cd(read(sheets_en / f"{cd_code(0, 1)}.csv"), lang="en")
    assert "flats 1–120" in [r[3] for r in split["visited"]]
    instructor = read(sheets_en / "instructors" / f"{id_code(0)}.csv")
    assert ID_SHEET_COLUMNS["en"] in instructor


def test_unknown_language_is_an_error_and_writes_nothing(
    layers: PlanLayers, tmp_path: Path,
) -> None:
    with pytest.raises(DistrictingError, match="language"):
        write_field_sheets(layers, tmp_path / "out", lang="kk", period=PERIOD)
    assert not (tmp_path / "out").exists()


def test_semicolon_csv_for_a_russian_excel(layers: PlanLayers, tmp_path: Path) -> None:
    comma = write_cd_sheets(layers, tmp_path / "a", period=PERIOD)[0]
    semicolon = write_cd_sheets(layers, tmp_path / "b", delimiter=";", period=PERIOD)[0]
    with semicolon.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    assert rows == read(comma)


def test_unit_without_a_cd_is_an_error(layers: PlanLayers, tmp_path: Path) -> None:
    units = layers.units.copy()
    units.loc[0, "cd_code"] = "431010000-09-999"
    broken = PlanLayers(**{**layers.as_dict(), "units": units})
    with pytest.raises(DistrictingError, match="no counting district"):
        write_field_sheets(broken, tmp_path / "out", period=PERIOD)
    assert not (tmp_path / "out").exists()


def test_unsafe_code_is_an_error(layers: PlanLayers, tmp_path: Path) -> None:
    cds = layers.counting_districts.copy()
    units = layers.units.copy()
    old = cds.loc[0, "cd_code"]
    cds.loc[0, "cd_code"] = "../evil"
    units.loc[units["cd_code"] == old, "cd_code"] = "../evil"
    broken = PlanLayers(**{**layers.as_dict(), "units": units, "counting_districts": cds})
    with pytest.raises(DistrictingError, match="file name"):
        write_field_sheets(broken, tmp_path / "out", period=PERIOD)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------ instructor sheets (CSV)


def test_instructor_sheets(layers: PlanLayers, sheets_ru: Path) -> None:
    cds = layers.counting_districts.set_index("cd_code")
    listed: list[str] = []
    for code in sorted(layers.instructor_districts["id_code"]):
        table = read(sheets_ru / "instructors" / f"{code}.csv")
        assert table[0] == ["Сводный лист инструкторского участка"]
        fields = {r[0]: r[1] for r in table[1:] if len(r) >= 2}
        assert fields["Инструкторский участок"] == code
        assert fields["Населённый пункт"] == SETTLEMENT_NAME
        assert fields["Период переписи"] == "01.10.2021 – 30.10.2021"
        assert fields["Инструктор-контролёр (Ф. И. О.)"] == ""
        head = table.index(ID_SHEET_COLUMNS["ru"])
        body, total = table[head + 1:-1], table[-1]
        assert total[0] == "ИТОГО" and total[1] == f"Счётных участков: {len(body)}"
        assert [r[0] for r in body] == cd_codes(layers, code)
        for row in body:
            assert row[1] == cds.loc[row[0], "rd_code"]
            assert float(row[6]) == pytest.approx(cds.loc[row[0], "utilization"] * 100, abs=0.05)
        for col in (2, 3, 4):
            assert int(total[col]) == sum(int(r[col]) for r in body)
        members = cds[cds["id_code"] == code]
        assert float(total[5]) == pytest.approx(members["workload"].sum(), abs=0.05)
        target = (members["workload"] / members["utilization"]).sum()
        assert float(total[6]) == pytest.approx(members["workload"].sum() / target * 100,
                                                abs=0.05)
        listed += [r[0] for r in body]
    assert sorted(listed) == sorted(cds.index)


def test_old_entry_points_still_write_csv(layers: PlanLayers, tmp_path: Path) -> None:
    paths = write_cd_sheets(layers, tmp_path)
    assert [p.name for p in paths] == [f"{c}.csv" for c in cd_codes(layers)]
    assert parse_cd(read(paths[0]))["fields"]["Период переписи"] == ""
    ids = write_instructor_sheets(layers, tmp_path, lang="en")
    assert ids == [tmp_path / "instructors" / f"{c}.csv"
                   for c in sorted(layers.instructor_districts["id_code"])]


# ------------------------------------------------------------ workbooks


def test_one_workbook_per_id_with_its_sheet_and_one_per_cd(
    layers: PlanLayers, sheets_ru: Path,
) -> None:
    for code in sorted(layers.instructor_districts["id_code"]):
        path = sheets_ru / "xlsx" / f"{code}.xlsx"
        book = openpyxl.load_workbook(path)
        members = cd_codes(layers, code)
        assert book.sheetnames == [code, *members]
        first = sheet_rows(book[code])
        assert first[0][0] == "Сводный лист инструкторского участка"
        head = first.index([*ID_SHEET_COLUMNS["ru"]])
        assert [r[0] for r in first[head + 1:-1]] == members
        assert first[-1][0] == "ИТОГО"
        # one PNG map per CD sheet, placed right of the table
        with zipfile.ZipFile(path) as archive:
            media = sorted(n for n in archive.namelist() if n.startswith("xl/media/"))
            assert len(media) == len(members)
            assert all(archive.read(n).startswith(b"\x89PNG") for n in media)
        for name in members:
            images = book[name]._images
            assert len(images) == 1
            assert images[0].anchor._from.col >= len(CD_SHEET_COLUMNS["ru"])


def test_workbook_cd_sheets_list_every_unit_once_in_route_order(
    layers: PlanLayers, sheets_ru: Path,
) -> None:
    seen: list[str] = []
    for code in sorted(layers.instructor_districts["id_code"]):
        book = openpyxl.load_workbook(sheets_ru / "xlsx" / f"{code}.xlsx")
        for name in cd_codes(layers, code):
            sheet = parse_cd(sheet_rows(book[name]))
            assert sheet["fields"]["Счётный участок"] == name
            assert sheet["fields"]["Период переписи"] == "01.10.2021 – 30.10.2021"
            visited = [r[2] for r in sheet["visited"]]
            assert visited == expected_route(layers, name)
            assert [r[0] for r in sheet["visited"]] == [str(i) for i in
                                                        range(1, len(visited) + 1)]
            assert {r[2] for r in sheet["unvisited"]} == UNVISITED.get(name, set())
            units = layers.units[layers.units["cd_code"] == name]
            assert int(sheet["total"][5]) == units["residents"].sum()
            assert int(sheet["total"][6]) == to_visit(units)
            seen += visited + [r[2] for r in sheet["unvisited"]]
    assert sorted(seen) == sorted(layers.units["unit_id"])


def test_sheet_titles_fit_excel() -> None:
    used: set[str] = set()
    long = "431010000-01-" + "9" * 40
    first = _sheet_title(long, used)
    second = _sheet_title(long, used)
    assert len(first) == len(second) == 31 and first != second
    assert _sheet_title("a[b]:c", used) == "a_b__c"


# ------------------------------------------------------------ printable pages


def sections(page: str, kind: str) -> list[str]:
    return re.findall(rf'<section class="page {kind}".*?</section>', page, flags=re.S)


def test_html_has_an_instructor_page_and_one_page_per_cd(
    layers: PlanLayers, sheets_ru: Path,
) -> None:
    for code in sorted(layers.instructor_districts["id_code"]):
        page = (sheets_ru / "html" / f"{code}.html").read_text(encoding="utf-8")
        members = cd_codes(layers, code)
        assert page.count('<section class="page') == 1 + len(members)
        assert page.index('<section class="page id"') < page.index('<section class="page cd"')
        assert "@page { size: A4; margin: 12mm }" in page
        assert re.search(r"section\.cd \{ page-break-before: always", page)
        assert page.count("<svg") == len(members)
        # self-contained: no links, scripts, images or fonts from elsewhere
        for outside in ("http", "<link", "<script", "<img", "src=", "url(", "@import"):
            assert outside not in page
        assert '<meta charset="utf-8">' in page
        instructor = sections(page, "id")[0]
        assert code in instructor and "Инструктор-контролёр (Ф. И. О.)" in instructor
        cd_pages = sections(page, "cd")
        assert [re.search(r'id="cd-([^"]+)"', s).group(1) for s in cd_pages] == members


def test_html_cd_pages_list_units_in_route_order_with_header_and_map(
    layers: PlanLayers, sheets_ru: Path,
) -> None:
    cds = layers.counting_districts.set_index("cd_code")
    seen: list[str] = []
    for code in sorted(layers.instructor_districts["id_code"]):
        page = (sheets_ru / "html" / f"{code}.html").read_text(encoding="utf-8")
        for section, name in zip(sections(page, "cd"), cd_codes(layers, code), strict=True):
            visited = re.search(r'<tbody class="visited">(.*?)</tbody>', section, re.S)
            ids = re.findall(r'<td class="id">([^<]*)</td>', visited.group(1))
            assert ids == expected_route(layers, name)
            block = re.search(r'<tbody class="unvisited">(.*?)</tbody>', section, re.S)
            idle = re.findall(r'<td class="id">([^<]*)</td>', block.group(1)) if block else []
            assert set(idle) == UNVISITED.get(name, set())
            seen += ids + idle
            assert "01.10.2021 – 30.10.2021" in section
            assert cds.loc[name, "rd_code"] in section and "school" in section
            assert SETTLEMENT_NAME in section
            svg = re.search(r"<svg.*?</svg>", section, re.S).group(0)
            # numbered dots for the visited units, a route line, white dots for the rest
            assert svg.count('fill="#c62828"') == len(ids)
            assert svg.count('fill="#fff" stroke="#555"') == len(idle)
            assert ("<polyline" in svg) == (len(ids) > 1)
            assert re.findall(r"<text[^>]*>(\d+)</text>", svg) == [
                str(i) for i in range(1, len(ids) + 1)]
            assert f"{cds.loc[name, 'tour_m'] / 1000:.2f}".replace(".", ",") in section
    assert sorted(seen) == sorted(layers.units["unit_id"])


def test_html_svg_map_keeps_north_up(layers: PlanLayers, sheets_ru: Path) -> None:
    page = (sheets_ru / "html" / f"{id_code(0)}.html").read_text(encoding="utf-8")
    section = sections(page, "cd")[0]  # CD 1: tiles rows 0-1, columns 0-2
    svg = re.search(r"<svg.*?</svg>", section, re.S).group(0)
    dots = [(float(x), float(y)) for x, y in
            re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)" r="[\d.]+" fill="#c62828"', svg)]
    route = expected_route(layers, cd_code(0, 1))  # reverse id order: row 1 first, then row 0
    units = layers.units.set_index("unit_id").loc[route]
    north = units.geometry.y.to_numpy()
    east = units.geometry.x.to_numpy()
    for i in range(len(dots)):
        for j in range(len(dots)):
            if north[i] > north[j]:
                assert dots[i][1] < dots[j][1]  # y is flipped: north is up
            if east[i] > east[j]:
                assert dots[i][0] > dots[j][0]
    # equal steps on the ground are equal steps on the map: the aspect is kept
    xs = sorted({round(x, 1) for x, _ in dots})
    ys = sorted({round(y, 1) for _, y in dots})
    assert xs[1] - xs[0] == pytest.approx(ys[1] - ys[0], abs=0.2)


def test_html_in_english(sheets_en: Path) -> None:
    page = (sheets_en / "html" / f"{id_code(1)}.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in page
    words = " ".join(re.sub(r"<[^>]+>", " ", page).split())  # the text, without markup
    assert "Counting district route sheet" in words and "Households to visit" in words
    assert "Not visited: no households (check on the ground)" in words
    assert "Маршрутный" not in words and "Адрес" not in words


# ------------------------------------------------------------ determinism


def test_outputs_are_byte_identical_across_runs(layers: PlanLayers, tmp_path: Path) -> None:
    runs = []
    for name, workers in (("a", 1), ("b", 2)):  # the same files on worker processes
        out = tmp_path / name
        write_field_sheets(field_layers(), out, period=PERIOD, workers=workers)
        runs.append({str(p.relative_to(out)): p.read_bytes()
                     for p in sorted(out.rglob("*")) if p.is_file()})
    assert runs[0].keys() == runs[1].keys()
    assert {Path(k).suffix for k in runs[0]} == {".csv", ".xlsx", ".html"}
    for key in runs[0]:
        assert runs[0][key] == runs[1][key], key
    # and the embedded PNG maps are stable too (no time or software stamps)
    book = next(v for k, v in runs[0].items() if k.endswith(".xlsx"))
    with zipfile.ZipFile(io.BytesIO(book)) as archive:
        # one fixed date on every entry and in the document's properties, not the clock
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert b"<dcterms:created xsi:type=\"dcterms:W3CDTF\">2000-01-01T00:00:00Z" in \
            archive.read("docProps/core.xml")
        png = archive.read("xl/media/image1.png")
        assert b"tIME" not in png and b"Software" not in png


# ------------------------------------------------------------ details


def test_format_period() -> None:
    assert format_period("2021-10-01/2021-10-30") == "01.10.2021 – 30.10.2021"
    assert format_period("2021-10-01/2021-10-30", "en") == "1 Oct 2021 – 30 Oct 2021"
    assert format_period("2021-10-14") == "14.10.2021"
    assert format_period("October 2021") == "October 2021"


def test_geographic_layers_are_projected_for_the_maps(layers: PlanLayers, tmp_path: Path) -> None:
    lonlat = PlanLayers(**{name: frame.to_crs("EPSG:4326")
                           for name, frame in layers.as_dict().items()})
    write_field_sheets(lonlat, tmp_path / "out", period=PERIOD)
    page = (tmp_path / "out" / "html" / f"{id_code(0)}.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 2
    svg = re.search(r"<svg.*?</svg>", sections(page, "cd")[0], re.S).group(0)
    assert ">50 м</text>" in svg  # a 300 m wide district gets a 50 m scale bar


def test_sheet_processes_leave_nothing_of_the_plan_held_here(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With worker processes, the data the jobs were made from is let go once the jobs
    are in their file, before the rest of the plan's files are written beside them."""
    import gc
    import weakref

    from districting.outputs import sheets

    made: list[weakref.ref[Any]] = []
    init = sheets._CdSheetMaker.__init__

    def tracked(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        made.append(weakref.ref(self))

    monkeypatch.setattr(sheets._CdSheetMaker, "__init__", tracked)
    with sheets.writing_field_sheets(field_layers(), tmp_path / "out", period=PERIOD,
                                     workers=2):
        gc.collect()
        assert made and all(ref() is None for ref in made)
    assert list((tmp_path / "out" / "xlsx").glob("*.xlsx"))
