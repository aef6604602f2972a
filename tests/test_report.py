"""The printable report: its sections in both languages, counts that match the layers,
the staffing totals, warnings (or an explicit "none"), two embedded PNGs, reproducible
bytes and a page that loads nothing from elsewhere."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pytest
from conftest import two_settlement_register
from plan_fixtures import SETTLEMENT, grid_plan

from districting import __version__
from districting.config import Config, config_from_dict
from districting.errors import DistrictingError
from districting.layers import PlanLayers
from districting.outputs.report import (
    TEXT,
    _panel_layout,
    _utilization_bounds,
    build_report,
    map_settlements,
    write_report,
)
from districting.pipeline import _registration_walk, _spans, _utilization, plan_from_file
from districting.staffing import staffing_summary, staffing_table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SECTIONS = ("s1", "s2", "s3", "s4", "s5", "s6", "s7")
SHA = "0123456789abcdef" * 4


def grid_layers() -> PlanLayers:
    return PlanLayers(**grid_plan())


def grid_summary(
    layers: PlanLayers,
    config: Config,
    *,
    warnings: tuple[str, ...] = (),
    parts: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    """A summary shaped like the pipeline's, built from the layers."""
    cds = layers.counting_districts
    return {
        "software": {"name": "districting", "version": __version__},
        "input": {"file": "register.gpkg", "sha256": SHA},
        "seed": 7,
        "crs": "EPSG:32641",
        "counts": {"settlements": 1, "units": len(layers.units)},
        "workload": {"basis": "workload", "unit": "minutes", "target": 40.75,
                     "floor": 34.6, "ceiling": 46.9, "min": float(cds["workload"].min()),
                     "mean": float(cds["workload"].mean()), "max": float(cds["workload"].max())},
        "utilization": _utilization(cds),
        "instructor_spans": _spans(layers.instructor_districts),
        "registration_walk": _registration_walk(layers),
        "staffing": staffing_summary(staffing_table(layers, config=config)),
        "settlements": [{
            "settlement_id": SETTLEMENT, "settlement_name": "Baikonur (synthetic test grid)",
            "units": len(layers.units), "graph_edges": 38, "edges_cut_by_barriers": 0,
            "edges_cut_by_detours": 0, "registration_model": "optimal",
            "parts_bridged": list(parts),
        }],
        "config": asdict(config),
        "warnings": list(warnings),
        "runtime_seconds": 1.25,
        "edge_lengths": "straight line",
    }


def render(layers: PlanLayers, summary: dict[str, Any], tmp_path: Path, *,
           lang: str = "ru", name: str = "report") -> tuple[str, Path, Path]:
    """Write the report and its overview PNG; return the HTML text and both paths."""
    page, png = tmp_path / f"{name}.html", tmp_path / f"{name}.png"
    write_report(layers, summary, page, config=Config(), lang=lang, overview_png=png)
    return page.read_text(encoding="utf-8"), page, png


def section(page: str, title: str) -> str:
    """The HTML of the section headed ``title``."""
    start = page.index(f"<h2>{html.escape(title)}</h2>")
    end = page.find("<h2>", start + 1)
    return page[start:end if end > 0 else len(page)]


def cells(row_html: str) -> list[str]:
    return [html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row_html)]


def row_of(page: str, label: str) -> list[str]:
    """The cells of the table row whose first cell is ``label``."""
    match = re.search(rf"<tr[^>]*><td[^>]*>{re.escape(html.escape(label))}</td>.*?</tr>", page)
    assert match, f"no row {label!r}"
    return cells(match.group(0))


def embedded_pngs(page: str) -> list[bytes]:
    return [base64.b64decode(data)
            for data in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_every_section_heading_is_there_in_the_language(tmp_path: Path, lang: str) -> None:
    layers = grid_layers()
    page, _, _ = render(layers, grid_summary(layers, Config()), tmp_path, lang=lang)
    assert f'<html lang="{lang}">' in page
    for key in (*SECTIONS, "title"):
        assert f">{html.escape(TEXT[lang][key])}</h" in page, key
    other = "en" if lang == "ru" else "ru"
    assert TEXT[other]["s4"] not in page


def test_russian_is_the_default(tmp_path: Path) -> None:
    layers = grid_layers()
    page = tmp_path / "r.html"
    write_report(layers, grid_summary(layers, Config()), page, config=Config())
    text = page.read_text(encoding="utf-8")
    assert "2. Число участков по уровням" in text
    assert "Справочно: перепись 2021 г., Байконур" in text


def test_an_unknown_language_is_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    layers = grid_layers()
    page = tmp_path / "r.html"
    with pytest.raises(DistrictingError, match=r"unknown report language 'de'.*en, ru"):
        write_report(layers, grid_summary(layers, Config()), page, config=Config(), lang="de",
                     overview_png=tmp_path / "o.png")
    assert list(tmp_path.iterdir()) == []


def test_counts_equal_the_layers_with_the_2021_reference(tmp_path: Path) -> None:
    layers = grid_layers()
    page, _, _ = render(layers, grid_summary(layers, Config()), tmp_path, lang="en")
    counts = section(page, TEXT["en"]["s2"])
    t = TEXT["en"]
    expected = {
        "settlements": (1, "—"), "units": (24, "—"), "cds": (4, "169"), "ids": (2, "26"),
        "rds": (2, "—"), "residents": (int(layers.units["residents"].sum()), "—"),
        "dwellings": (int(layers.units["dwellings"].sum()), "—"),
    }
    assert len(layers.counting_districts) == 4 and len(layers.instructor_districts) == 2
    for key, (plan, reference) in expected.items():
        assert row_of(counts, t[key]) == [t[key], f"{plan:,}", reference], key
    # the per-settlement table repeats them for the one settlement
    assert row_of(counts, SETTLEMENT)[2:] == ["24", f"{expected['residents'][0]:,}",
                                              f"{expected['dwellings'][0]:,}", "4", "2", "2"]


def test_russian_numbers_group_thousands_with_a_no_break_space(tmp_path: Path) -> None:
    layers = grid_layers()
    summary = grid_summary(layers, Config())
    summary["registration_walk"] = {"mean_m": 1234.4, "max_m": 20745.0}
    page, _, _ = render(layers, summary, tmp_path)
    walk = section(page, TEXT["ru"]["s3"])
    assert "<td class=\"num\">1\u00a0234</td><td class=\"num\">20\u00a0745</td>" in walk


def test_the_staffing_total_row_is_shown(tmp_path: Path) -> None:
    layers = grid_layers()
    page, _, _ = render(layers, grid_summary(layers, Config()), tmp_path, lang="en")
    staffing = section(page, TEXT["en"]["s4"])
    totals = re.findall(r'<tr class="total">.*?</tr>', staffing)
    assert len(totals) == 2
    # 4 interviewers, 2 instructors, 2 points × 2 staff, reserve ceil(10%) of each = 1 + 1,
    # 12 staff in all; person-days 30 × (4 + 2 + 4) = 300.
    assert cells(totals[0]) == ["TOTAL", "4", "2", "2", "4", "1", "1", "12", "300"]
    table = staffing_table(layers, config=Config())
    total = table[table["settlement_id"] == "TOTAL"].iloc[0]
    load = cells(totals[1])
    assert load[0] == "TOTAL"
    assert load[1] == f"{total['workload']:,.1f}"
    assert load[3] == f"{total['utilization_min'] * 100:.1f}%"
    assert load[-1] == f"{total['interviewers_per_instructor']:.2f}"


def test_warnings_list_exceptions_cut_off_parts_and_split_buildings(tmp_path: Path) -> None:
    frames = grid_plan()
    cds, ids, units = (frames["counting_districts"], frames["instructor_districts"],
                       frames["units"])
    cd = cds.loc[1, "cd_code"]
    cds.loc[1, "bound_exception"] = "workload 60 > ceiling 47 <one building>"
    ids.loc[0, "span_exception"] = "span 2 < 5 & settlement too small"
    # building B000000 split into two units: dwellings 1–2 and 3–4
    units.loc[1, "building_id"] = "B000000"
    units.loc[1, "address"] = units.loc[0, "address"]
    units.loc[[0, 1], "dwelling_from"] = [1, 3]
    units.loc[[0, 1], "dwelling_to"] = [2, 4]
    layers = PlanLayers(**frames)
    part = {"units": 3, "residents": 17, "action": "drawn as its own counting district"}
    summary = grid_summary(layers, Config(), parts=(part,),
                           warnings=(f"CD {cd}: workload 60 > ceiling 47 <one building>",
                                     "settlement 431010000: 12 m² left out"))
    page, _, _ = render(layers, summary, tmp_path, lang="en")
    warnings = section(page, TEXT["en"]["s5"])
    assert row_of(warnings, cd) == [cd, "workload 60 > ceiling 47 <one building>"]
    assert "&lt;one building&gt;" in warnings and "<one building>" not in warnings
    code = ids.loc[0, "id_code"]
    assert row_of(warnings, code) == [code, "2", "span 2 < 5 & settlement too small"]
    assert row_of(warnings, "Baikonur (synthetic test grid) (431010000)") == [
        "Baikonur (synthetic test grid) (431010000)", "3", "17",
        "drawn as its own counting district"]
    split = re.findall(r"<tr><td>B000000</td>.*?</tr>", warnings)
    assert [cells(r) for r in split] == [
        ["B000000", "street 1, house 1", "U000000", "1–2", units.loc[0, "cd_code"]],
        ["B000000", "street 1, house 1", "U000001", "3–4", units.loc[1, "cd_code"]],
    ]
    assert f"<li>CD {cd}: workload 60 &gt; ceiling 47 &lt;one building&gt;</li>" in warnings
    assert "<li>settlement 431010000: 12 m² left out</li>" in warnings
    assert 'class="none"' not in warnings


@pytest.mark.parametrize(("lang", "word"), [("ru", "нет"), ("en", "none")])
def test_empty_warning_groups_say_none(tmp_path: Path, lang: str, word: str) -> None:
    layers = grid_layers()
    page, _, _ = render(layers, grid_summary(layers, Config()), tmp_path, lang=lang)
    warnings = section(page, TEXT[lang]["s5"])
    assert warnings.count(f'<p class="none">{word}</p>') == 5
    assert "<li>" not in warnings


def test_exactly_two_pngs_are_embedded_and_the_overview_is_also_written(
    tmp_path: Path,
) -> None:
    layers = grid_layers()
    page, _, png = render(layers, grid_summary(layers, Config()), tmp_path)
    images = embedded_pngs(page)
    assert len(images) == 2
    assert page.count("data:image/png;base64,") == 2
    assert all(image.startswith(PNG_MAGIC) for image in images)
    assert all(b"matplotlib" not in image for image in images)  # no software stamp
    histogram = section(page, TEXT["ru"]["s3"])
    overview = section(page, TEXT["ru"]["s7"])
    assert len(embedded_pngs(histogram)) == len(embedded_pngs(overview)) == 1
    assert png.read_bytes() == embedded_pngs(overview)[0]


def test_equal_inputs_give_byte_identical_files(tmp_path: Path) -> None:
    layers = grid_layers()
    summary = grid_summary(layers, Config())
    _, first, first_png = render(layers, summary, tmp_path, name="a")
    _, second, second_png = render(grid_layers(), grid_summary(layers, Config()), tmp_path,
                                   name="b")
    assert first.read_bytes() == second.read_bytes()
    assert first_png.read_bytes() == second_png.read_bytes()


def test_the_page_loads_nothing_from_elsewhere(tmp_path: Path) -> None:
    layers = grid_layers()
    page, _, _ = render(layers, grid_summary(layers, Config()), tmp_path)
    lowered = page.lower()
    for needle in ("http://", "https://", "<script", "<link", "@import", "url(", "//cdn"):
        assert needle not in lowered, needle
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == 2 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    assert "@media print" in page and "size: A4" in page


def test_general_section_and_parameters(tmp_path: Path) -> None:
    layers = grid_layers()
    config = config_from_dict({"name": "test-norms", "period": "2021-10-01/2021-10-30",
                               "staffing": {"reserve_share": 0.25}})
    summary = grid_summary(layers, config)
    page_path = tmp_path / "r.html"
    write_report(layers, summary, page_path, config=config, lang="ru")
    page = page_path.read_text(encoding="utf-8")
    general = section(page, TEXT["ru"]["s1"])
    assert row_of(general, TEXT["ru"]["period"])[1] == "2021-10-01 – 2021-10-30"
    assert row_of(general, TEXT["ru"]["sha256"])[1] == SHA
    assert row_of(general, TEXT["ru"]["software"])[1] == f"districting {__version__}"
    assert row_of(general, TEXT["ru"]["seed"])[1] == "7"
    assert row_of(general, TEXT["ru"]["config_name"])[1] == "test-norms"
    assert "Baikonur (synthetic test grid) (431010000)" in general
    inputs = section(page, TEXT["ru"]["s6"])
    assert '<tr class="group"><th colspan="2">staffing</th></tr>' in inputs
    assert row_of(inputs, "reserve_share") == ["reserve_share", "0.25"]
    assert row_of(inputs, "functions")[1] == "public_service_centre, akimat, school, post_office"
    assert row_of(inputs, "max_detour")[1] == "—"
    assert row_of(inputs, TEXT["ru"]["edge_lengths"])[1] == "расстояние по прямой"
    assert row_of(inputs, TEXT["ru"]["runtime"])[1] == "1,25"


def test_the_histogram_marks_the_bounds_of_the_cds() -> None:
    # grid CDs: utilisation is workload over the mean, bounds ±15% of the mean
    floors, targets, ceilings = _utilization_bounds(grid_layers().counting_districts)
    assert (floors, targets, ceilings) == ([0.85], [1.0], [1.15])


def test_several_settlements_get_panels_that_do_not_overlap(tmp_path: Path) -> None:
    first = grid_plan()
    second = {name: frame.copy() for name, frame in grid_plan(rows=6, cols=4, cd_cols=2).items()}
    other = "431020000"
    for name, frame in second.items():
        for column in ("settlement_id", "cd_code", "id_code", "rd_code"):
            if column in frame:
                frame[column] = frame[column].str.replace(SETTLEMENT, other, regex=False)
        frame.geometry = frame.translate(xoff=5000.0)
        if name == "settlements":
            frame["settlement_name"] = "<Second> town"
    layers = PlanLayers(**{
        name: gpd.GeoDataFrame(pd.concat([first[name], second[name]], ignore_index=True),
                               crs=first[name].crs)
        for name in first
    })
    panels = _panel_layout(layers.settlements)
    assert len(panels) == 2
    boxes = [(x, y, x + w, y + h) for x, y, w, h in panels]
    (a0, b0, a1, b1), (c0, d0, c1, d1) = boxes
    assert a1 <= c0 or c1 <= a0 or b1 <= d0 or d1 <= b0  # disjoint
    page = build_report(layers, grid_summary(layers, Config()), config=Config(), lang="en")
    assert "&lt;Second&gt; town (431020000)" in page and "<Second>" not in page
    counts = section(page, TEXT["en"]["s2"])
    assert row_of(counts, TEXT["en"]["cds"])[1] == str(len(layers.counting_districts))


def test_a_national_plan_maps_its_largest_settlements_and_says_so(
        monkeypatch: pytest.MonkeyPatch) -> None:
    first = grid_plan()
    second = {name: frame.copy() for name, frame in grid_plan(rows=6, cols=4, cd_cols=2).items()}
    other = "431020000"
    for frame in second.values():
        for column in ("settlement_id", "cd_code", "id_code", "rd_code"):
            if column in frame:
                frame[column] = frame[column].str.replace(SETTLEMENT, other, regex=False)
        frame.geometry = frame.translate(xoff=5000.0)
    second["settlements"]["residents"] = first["settlements"]["residents"] * 10
    layers = PlanLayers(**{
        name: gpd.GeoDataFrame(pd.concat([first[name], second[name]], ignore_index=True),
                               crs=first[name].crs)
        for name in first
    })
    assert list(map_settlements(layers)["settlement_id"]) == [SETTLEMENT, other]
    monkeypatch.setattr("districting.outputs.report.MAP_PANELS", 1)
    assert list(map_settlements(layers)["settlement_id"]) == [other]  # the larger one
    page = build_report(layers, grid_summary(layers, Config()), config=Config(), lang="en")
    caption = TEXT["en"]["map_some"].format(shown=1, total=2)
    assert caption in html.unescape(page)
    everything = build_report(first_only := PlanLayers(**first), grid_summary(
        first_only, Config()), config=Config(), lang="en")
    assert "largest of" not in everything


@pytest.fixture(scope="module")
def real_plan(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Config]:
    folder = tmp_path_factory.mktemp("real")
    register = folder / "register.gpkg"
    two_settlement_register().to_file(register, layer="buildings", engine="pyogrio")
    config = config_from_dict({
        "name": "test", "seed": 7, "time_limit": 10.0,
        "counting": {"working_days": 30, "hours_per_day": 1.0, "tolerance": 0.15},
        "registration": {"residents_per_point": 3000},
    })
    result, _ = plan_from_file(register, config=config, progress=False)
    return result, config


def test_a_real_plan_reports_its_summary(real_plan: tuple[Any, Config], tmp_path: Path) -> None:
    result, config = real_plan
    page_path = tmp_path / "report.html"
    write_report(result.layers, result.summary, page_path, config=config, lang="en")
    page = page_path.read_text(encoding="utf-8")
    counts = section(page, TEXT["en"]["s2"])
    t = TEXT["en"]
    for key, label in (("settlements", "settlements"), ("units", "units"),
                       ("counting_districts", "cds"), ("instructor_districts", "ids"),
                       ("registration_districts", "rds")):
        assert row_of(counts, t[label])[1] == f"{result.summary['counts'][key]:,}", key
    assert row_of(counts, t["residents"])[1] == f"{result.summary['residents']:,}"
    general = section(page, t["s1"])
    assert result.summary["input"]["sha256"] in general
    assert "Город (431010000)" in general and "Село (431030100)" in general
    warnings = section(page, t["s5"])
    for line in result.summary["warnings"]:
        assert f"<li>{html.escape(line)}</li>" in warnings
    assert len(embedded_pngs(page)) == 2
