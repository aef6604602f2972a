"""A printable, self-contained HTML report of a plan (``report.html``).

The report has seven sections: general information, counts at each level (with the
2021 census of Baikonur as a reference), the CDs' utilisation (a histogram and the
spread), the staffing table, warnings, inputs and parameters, and a static overview
map. Images are PNGs embedded as base64 data URIs; the page loads nothing from
elsewhere (no scripts, fonts or style sheets) and prints on A4.

The same layers, summary and config always give the same bytes: the figures are
drawn with the Agg canvas at a fixed size and resolution under matplotlib's default
style, without a software stamp, and nothing depends on the clock.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.patheffects import withStroke
from matplotlib.style import context as style_context
from matplotlib.ticker import MaxNLocator, PercentFormatter

from districting.config import Config
from districting.layers import PlanLayers
from districting.outputs.maps import CD_PALETTE, colour_counting_districts
from districting.outputs.numbers import as_number, localise, whole
from districting.outputs.writer import pick_language, write_bytes_atomic
from districting.staffing import (
    INTEGER_COLUMNS,
    SEED_BAIKONUR_2021_INSTRUCTORS,
    SEED_BAIKONUR_2021_INTERVIEWERS,
    SHARE_COLUMNS,
    STAFFING_LABELS,
    XLSX_TEXT,
    staffing_table,
)

#: Resolution of the embedded figures, in dots per inch.
DPI = 150
#: Width of the overview map, in inches (its height follows the settlements' shapes).
MAP_WIDTH_IN = 8.0
#: The overview map draws at most this many settlements, those with most residents.
MAP_PANELS = 24
#: Size of the utilisation histogram, in inches.
HISTOGRAM_SIZE_IN = (7.5, 3.2)

#: Every text of the report, by language.
TEXT: dict[str, dict[str, str]] = {
    "ru": {
        "title": "Отчёт о плане переписного районирования",
        "s1": "1. Общие сведения",
        "s2": "2. Число участков по уровням",
        "s3": "3. Загрузка счётных участков",
        "s4": "4. Штат",
        "s5": "5. Предупреждения",
        "s6": "6. Исходные данные и параметры",
        "s7": "7. Обзорная карта",
        "settlements": "Населённые пункты",
        "period": "Период переписи",
        "software": "Программа",
        "input": "Входной файл",
        "sha256": "SHA-256 входного файла",
        "seed": "Начальное значение генератора (seed)",
        "config_name": "Набор нормативов",
        "crs": "Система координат",
        "level": "Уровень",
        "plan": "План",
        "reference": "Справочно: перепись 2021 г., Байконур",
        "reference_note": "Справочный столбец — данные переписи 2021 года в Байконуре, "
                          "приведённые для сравнения; это не норма.",
        "units": "Адресные единицы",
        "cds": "Счётные участки (= интервьюеры)",
        "ids": "Инструкторские участки (= инструкторы-контролёры)",
        "rds": "Регистрационные участки (= стационарные участки)",
        "residents": "Жители",
        "dwellings": "Квартиры",
        "by_settlement": "По населённым пунктам",
        "code": "Код",
        "settlement": "Населённый пункт",
        "n_units": "Адресных единиц",
        "n_residents": "Жителей",
        "n_dwellings": "Квартир",
        "n_cds": "Счётных участков",
        "n_ids": "Инструкторских участков",
        "n_rds": "Регистрационных участков",
        "hist_alt": "Гистограмма загрузки счётных участков",
        "hist_x": "Загрузка интервьюера",
        "hist_y": "Счётных участков",
        "floor": "Нижняя граница",
        "ceiling": "Верхняя граница",
        "target": "Цель",
        "no_data": "нет данных",
        "spread": "Разброс загрузки",
        "min": "Минимум",
        "p10": "10-й процентиль",
        "median": "Медиана",
        "p90": "90-й процентиль",
        "max": "Максимум",
        "mean": "Среднее",
        "within": "Доля в пределах нормы",
        "figure": "Показатель",
        "value": "Значение",
        "workload": "Нагрузка счётного участка",
        "minutes": "мин",
        "people": "жителей",
        "spans": "Охват инструкторов-контролёров",
        "span": "Счётных участков на инструктора",
        "n_with_span": "Инструкторских участков",
        "span_mean": "Средний охват",
        "id_workload": "Нагрузка инструкторского участка, мин.–макс.",
        "span_exceptions": "Инструкторских участков вне нормы охвата",
        "walk": "Путь жителя до стационарного участка",
        "walk_mean": "В среднем, м",
        "walk_max": "Максимум, м",
        "staff_people": "Персонал",
        "staff_load": "Загрузка",
        "cd_exceptions": "Счётные участки вне нормы нагрузки",
        "cd": "Счётный участок",
        "reason": "Причина",
        "id_exceptions": "Инструкторские участки вне нормы охвата",
        "id": "Инструкторский участок",
        "parts": "Части, отрезанные барьерами или водой",
        "action": "Решение",
        "split": "Разделённые здания",
        "building": "Здание",
        "address": "Адрес",
        "unit": "Адресная единица",
        "range": "Квартиры (с–по)",
        "all_warnings": "Все предупреждения планирования",
        "none": "нет",
        "parameters": "Параметры (нормативы)",
        "parameter": "Параметр",
        "general": "Общие",
        "edge_lengths": "Длины рёбер графа",
        "runtime": "Время расчёта, с",
        "graph": "Граф смежности",
        "graph_edges": "Рёбер",
        "cut_barriers": "Разрезано барьерами",
        "cut_detours": "Разрезано обходами",
        "rd_model": "Выбор стационарных участков",
        "map_alt": "Обзорная карта счётных и инструкторских участков",
        "map_note": "Цвета лишь различают соседние счётные участки. Подписи — номера "
                    "инструкторских участков.",
        "map_some": "Показаны {shown} крупнейших из {total} населённых пунктов; все они "
                    "есть в map.html и plan.gpkg.",
        "legend_cd": "Счётный участок",
        "legend_id": "Граница инструкторского участка",
        "legend_settlement": "Граница населённого пункта",
        "legend_point": "Стационарный участок",
        "m": "м",
        "km": "км",
        "yes": "да",
        "no": "нет",
        "walking distance on the street network": "пешеходное расстояние по улицам",
        "straight line": "расстояние по прямой",
    },
    "en": {
        "title": "Census districting plan report",
        "s1": "1. General information",
        "s2": "2. Counts at each level",
        "s3": "3. Counting-district utilisation",
        "s4": "4. Staffing",
        "s5": "5. Warnings",
        "s6": "6. Inputs and parameters",
        "s7": "7. Overview map",
        "settlements": "Settlements",
        "period": "Census period",
        "software": "Software",
        "input": "Input file",
        "sha256": "SHA-256 of the input file",
        "seed": "Random seed",
        "config_name": "Configuration",
        "crs": "Coordinate reference system",
        "level": "Level",
        "plan": "This plan",
        "reference": "Reference: 2021 census, Baikonur",
        "reference_note": "The reference column gives the figures of the 2021 census "
                          "of Baikonur for comparison; it is not a target.",
        "units": "Address units",
        "cds": "Counting districts (= interviewers)",
        "ids": "Instructor districts (= instructor-controllers)",
        "rds": "Registration districts (= registration points)",
        "residents": "Residents",
        "dwellings": "Dwellings",
        "by_settlement": "By settlement",
        "code": "ID",
        "settlement": "Settlement",
        "n_units": "Address units",
        "n_residents": "Residents",
        "n_dwellings": "Dwellings",
        "n_cds": "Counting districts",
        "n_ids": "Instructor districts",
        "n_rds": "Registration districts",
        "hist_alt": "Histogram of the counting districts' utilisation",
        "hist_x": "Interviewer utilisation",
        "hist_y": "Counting districts",
        "floor": "Floor",
        "ceiling": "Ceiling",
        "target": "Target",
        "no_data": "no data",
        "spread": "Spread of utilisation",
        "min": "Minimum",
        "p10": "10th percentile",
        "median": "Median",
        "p90": "90th percentile",
        "max": "Maximum",
        "mean": "Mean",
        "within": "Share within bounds",
        "figure": "Measure",
        "value": "Value",
        "workload": "Workload of a counting district",
        "minutes": "min",
        "people": "residents",
        "spans": "Span of control of the instructor-controllers",
        "span": "Counting districts per instructor",
        "n_with_span": "Instructor districts",
        "span_mean": "Mean span",
        "id_workload": "Instructor-district workload, min–max",
        "span_exceptions": "Instructor districts outside the span",
        "walk": "Residents' walk to their registration point",
        "walk_mean": "Mean, m",
        "walk_max": "Maximum, m",
        "staff_people": "Staff",
        "staff_load": "Utilisation",
        "cd_exceptions": "Counting districts outside the workload bounds",
        "cd": "Counting district",
        "reason": "Reason",
        "id_exceptions": "Instructor districts outside the span",
        "id": "Instructor district",
        "parts": "Parts cut off by barriers or water",
        "action": "Action",
        "split": "Split buildings",
        "building": "Building",
        "address": "Address",
        "unit": "Address unit",
        "range": "Dwelling range",
        "all_warnings": "All planning warnings",
        "none": "none",
        "parameters": "Parameters (norms)",
        "parameter": "Parameter",
        "general": "General",
        "edge_lengths": "Edge lengths of the graph",
        "runtime": "Runtime, s",
        "graph": "Adjacency graph",
        "graph_edges": "Edges",
        "cut_barriers": "Cut by barriers",
        "cut_detours": "Cut by detours",
        "rd_model": "Registration-point model",
        "map_alt": "Overview map of the counting and instructor districts",
        "map_note": "Colours only tell neighbouring counting districts apart. Labels are "
                    "the instructor districts' numbers.",
        "map_some": "The {shown} largest of {total} settlements are shown; every one is in "
                    "map.html and plan.gpkg.",
        "legend_cd": "Counting district",
        "legend_id": "Instructor-district border",
        "legend_settlement": "Settlement border",
        "legend_point": "Registration point",
        "m": "m",
        "km": "km",
        "yes": "yes",
        "no": "no",
    },
}

_CSS = """
@page { size: A4; margin: 14mm 12mm; }
body { font-family: sans-serif; font-size: 10pt; color: #111; max-width: 190mm;
       margin: 0 auto; padding: 6mm 4mm; }
h1 { font-size: 16pt; margin: 0 0 0.6em; }
h2 { font-size: 13pt; border-bottom: 1px solid #888; margin: 1.4em 0 0.4em; }
h3 { font-size: 10.5pt; margin: 0.9em 0 0.3em; }
table { border-collapse: collapse; margin: 0.3em 0 0.8em; font-size: 8.5pt; }
th, td { border: 1px solid #aaa; padding: 2px 5px; text-align: left; vertical-align: top; }
th { background: #eee; font-weight: 600; }
td.num { text-align: right; white-space: nowrap; }
th.num { text-align: right; }
table.wide { font-size: 7.5pt; width: 100%; }
table.wide th { font-weight: 600; hyphens: auto; }
div.row { display: flex; flex-wrap: wrap; gap: 0 24px; align-items: flex-start; }
tr.total td { font-weight: bold; background: #f3f3f3; }
tr.group th { background: #ddd; }
td.mono { font-family: monospace; word-break: break-all; }
p.note, figcaption { color: #444; font-size: 8.5pt; }
p.none { font-style: italic; color: #444; margin: 0.2em 0 0.6em; }
figure { margin: 0.4em 0; }
img { max-width: 100%; height: auto; }
ul.warnings { font-size: 9pt; padding-left: 1.4em; }
@media print {
  body { max-width: none; padding: 0; }
  h2, h3 { break-after: avoid; }
  tr, figure, img { break-inside: avoid; }
  thead { display: table-header-group; }
}
"""


def write_report(
    layers: PlanLayers,
    summary: dict[str, Any],
    path: Path,
    *,
    config: Config,
    lang: str = "ru",
    overview_png: Path | None = None,
) -> None:
    """Write ``report.html`` (and, if asked, the overview map as a PNG for printing).

    Raises
    ------
    DistrictingError
        If ``lang`` is not ``"ru"`` or ``"en"``.
    """
    report_text(lang)  # an unknown language fails before anything is drawn
    overview = overview_map_png(layers, lang=lang)
    page = build_report(layers, summary, config=config, lang=lang, overview=overview)
    write_bytes_atomic(Path(path), page.encode("utf-8"))
    if overview_png is not None:
        write_bytes_atomic(Path(overview_png), overview)


def report_text(lang: str) -> dict[str, str]:
    """The report's texts in ``lang``; an unknown language is an error."""
    return pick_language(TEXT, lang, what="report")


def build_report(
    layers: PlanLayers,
    summary: dict[str, Any],
    *,
    config: Config,
    lang: str = "ru",
    overview: bytes | None = None,
) -> str:
    """The report as one HTML string; ``overview`` is the map PNG (drawn if ``None``)."""
    t = report_text(lang)
    if overview is None:
        overview = overview_map_png(layers, lang=lang)
    body = "".join([
        f"<h1>{_esc(t['title'])}</h1>",
        _section_general(layers, summary, config=config, t=t),
        _section_counts(layers, summary, t=t, lang=lang),
        _section_utilization(layers, summary, t=t, lang=lang),
        _section_staffing(layers, config=config, lang=lang, t=t),
        _section_warnings(layers, summary, t=t, lang=lang),
        _section_inputs(summary, config=config, t=t, lang=lang),
        _section_map(overview, shown=len(map_settlements(layers)),
                     total=len(layers.settlements), t=t, lang=lang),
    ])
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{_esc(lang)}">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_esc(t['title'])}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


# ---------------------------------------------------------------- sections


def _section_general(
    layers: PlanLayers, summary: dict[str, Any], *, config: Config, t: dict[str, str],
) -> str:
    software = summary.get("software", {})
    source = summary.get("input", {})
    rows = [
        [t["settlements"], _settlement_names(layers)],
        [t["period"], config.period.replace("/", " – ")],
        [t["software"], f"{software.get('name', 'districting')} "
                        f"{software.get('version', '')}".strip()],
        [t["input"], str(source.get("file", "—"))],
        [t["sha256"], str(source.get("sha256", "—"))],
        [t["seed"], str(summary.get("seed", config.seed))],
        [t["config_name"], config.name],
        [t["crs"], str(summary.get("crs", layers.units.crs or "—"))],
    ]
    table = _table([t["figure"], t["value"]], rows, mono={(4, 1)})
    return _section(t["s1"], table)


def _section_counts(
    layers: PlanLayers, summary: dict[str, Any], *, t: dict[str, str], lang: str,
) -> str:
    counts = plan_counts(layers)
    seed = summary.get("staffing", {}).get("seed_baikonur_2021", {})
    reference = {
        "counting_districts": seed.get("interviewers", SEED_BAIKONUR_2021_INTERVIEWERS),
        "instructor_districts": seed.get("instructor_controllers",
                                         SEED_BAIKONUR_2021_INSTRUCTORS),
    }
    labels = {
        "settlements": t["settlements"], "units": t["units"],
        "counting_districts": t["cds"], "instructor_districts": t["ids"],
        "registration_districts": t["rds"], "residents": t["residents"],
        "dwellings": t["dwellings"],
    }
    rows = [
        [labels[key], whole(value, lang),
         whole(reference[key], lang) if key in reference else "—"]
        for key, value in counts.items()
    ]
    main = _table([t["level"], t["plan"], t["reference"]], rows, numeric={1, 2})
    note = f'<p class="note">{_esc(t["reference_note"])}</p>'
    per = _table(
        [t["code"], t["settlement"], t["n_units"], t["n_residents"], t["n_dwellings"],
         t["n_cds"], t["n_ids"], t["n_rds"]],
        [[row[0], row[1], *(whole(v, lang) for v in row[2:])]
         for row in _settlement_counts(layers)],
        numeric=set(range(2, 8)),
    )
    return _section(t["s2"], main + note + f"<h3>{_esc(t['by_settlement'])}</h3>" + per)


def _section_utilization(
    layers: PlanLayers, summary: dict[str, Any], *, t: dict[str, str], lang: str,
) -> str:
    png = utilization_histogram_png(layers.counting_districts, lang=lang)
    spread = summary.get("utilization", {})
    rows = [[t[key], _pct(spread.get(key), lang)]
            for key in ("min", "p10", "median", "p90", "max")]
    rows.append([t["within"], _pct(spread.get("share_within_bounds"), lang)])
    blocks = [_block(t["spread"], _table([t["figure"], t["value"]], rows, numeric={1})),
              _workload_block(summary.get("workload", {}), t=t, lang=lang)]
    walk = summary.get("registration_walk", {})
    if walk:
        blocks.append(_block(t["walk"], _table(
            [t["walk_mean"], t["walk_max"]],
            [[_dec(walk.get("mean_m"), 0, lang), _dec(walk.get("max_m"), 0, lang)]],
            numeric={0, 1})))
    body = (_figure(png, alt=t["hist_alt"], caption="")
            + f'<div class="row">{"".join(blocks)}</div>'
            + _spans_block(summary.get("instructor_spans", {}), t=t, lang=lang))
    return _section(t["s3"], body)


def _workload_block(workload: dict[str, Any], *, t: dict[str, str], lang: str) -> str:
    if not workload:
        return ""
    unit = t["minutes"] if workload.get("unit", "minutes") == "minutes" else t["people"]
    keys = ("target", "floor", "ceiling", "min", "mean", "max")
    rows = [[t[key], _dec(workload.get(key), 1, lang)] for key in keys]
    return _block(f"{t['workload']}, {unit}",
                  _table([t["figure"], t["value"]], rows, numeric={1}))


def _spans_block(spans: dict[str, Any], *, t: dict[str, str], lang: str) -> str:
    if not spans:
        return ""
    distribution = sorted(spans.get("distribution", {}).items(), key=lambda kv: int(kv[0]))
    table = _table([t["span"], *(str(span) for span, _ in distribution)],
                   [[t["n_with_span"], *(whole(n, lang) for _, n in distribution)]],
                   numeric=set(range(1, len(distribution) + 1)))
    low, high = spans.get("workload_min"), spans.get("workload_max")
    facts = _table([t["figure"], t["value"]], [
        [t["span_mean"], _dec(spans.get("mean"), 2, lang)],
        [t["id_workload"], f"{_dec(low, 1, lang)} – {_dec(high, 1, lang)}"],
        [t["span_exceptions"], whole(spans.get("exceptions"), lang)],
    ], numeric={1})
    return _block(t["spans"], f'<div class="row">{table}{facts}</div>')


def _section_staffing(
    layers: PlanLayers, *, config: Config, lang: str, t: dict[str, str],
) -> str:
    table = staffing_table(layers, config=config)
    labels = STAFFING_LABELS[lang]
    people = ["interviewers", "instructor_controllers",
              "registration_points", "point_staff", "reserve_interviewers",
              "reserve_instructors", "staff_total", "person_days"]
    load = ["workload", *SHARE_COLUMNS, "cd_bound_exceptions", "interviewers_per_instructor"]
    parts = []
    for title, columns in ((t["staff_people"], people), (t["staff_load"], load)):
        header = [labels["settlement_name"], *(labels[c] for c in columns)]
        rows, totals = [], set()
        for index, record in enumerate(table.to_dict("records")):
            is_total = record["settlement_id"] == "TOTAL"
            if is_total:
                totals.add(index)
            name = XLSX_TEXT[lang]["total"] if is_total else _settlement_label(record)
            rows.append([name, *(_staffing_cell(c, record[c], lang) for c in columns)])
        parts += [f"<h3>{_esc(title)}</h3>",
                  _table(header, rows, numeric=set(range(1, len(header))), total_rows=totals,
                         wide=True)]
    return _section(t["s4"], "".join(parts))


def _staffing_cell(column: str, value: Any, lang: str) -> str:
    if column in INTEGER_COLUMNS:
        return whole(value, lang)
    if column in SHARE_COLUMNS:
        return _pct(value, lang)
    return _dec(value, 2 if column == "interviewers_per_instructor" else 1, lang)


def _section_warnings(
    layers: PlanLayers, summary: dict[str, Any], *, t: dict[str, str], lang: str,
) -> str:
    cds = layers.counting_districts
    cd_rows = [[str(code), str(reason)]
               for code, reason in zip(cds["cd_code"], cds["bound_exception"], strict=True)
               if _present(reason)]
    ids = layers.instructor_districts
    id_rows = [[str(code), whole(n, lang), str(reason)]
               for code, n, reason in zip(ids["id_code"], ids["n_cd"], ids["span_exception"],
                                          strict=True)
               if _present(reason)]
    part_rows = [
        [_settlement_label(entry), whole(part.get("units"), lang),
         whole(part.get("residents"), lang), str(part.get("action", ""))]
        for entry in summary.get("settlements", []) for part in entry.get("parts_bridged", [])
    ]
    groups = [
        (t["cd_exceptions"], [t["cd"], t["reason"]], cd_rows, set()),
        (t["id_exceptions"], [t["id"], t["n_cds"], t["reason"]], id_rows, {1}),
        (t["parts"], [t["settlement"], t["n_units"], t["n_residents"], t["action"]],
         part_rows, {1, 2}),
        (t["split"], [t["building"], t["address"], t["unit"], t["range"], t["cd"]],
         split_buildings(layers.units), set()),
    ]
    parts = []
    for title, header, rows, numeric in groups:
        parts.append(f"<h3>{_esc(title)}</h3>")
        parts.append(_table(header, rows, numeric=numeric) if rows else _none(t))
    parts.append(f"<h3>{_esc(t['all_warnings'])}</h3>")
    lines = [str(line) for line in summary.get("warnings", [])]
    parts.append(
        '<ul class="warnings">' + "".join(f"<li>{_esc(line)}</li>" for line in lines) + "</ul>"
        if lines else _none(t)
    )
    return _section(t["s5"], "".join(parts))


def _section_inputs(
    summary: dict[str, Any], *, config: Config, t: dict[str, str], lang: str,
) -> str:
    settings = summary.get("config") or asdict(config)
    rows: list[list[str]] = []
    groups: set[int] = set()
    general = [(k, v) for k, v in settings.items() if not isinstance(v, dict)]
    for name, values in [(t["general"], general),
                         *((k, list(v.items())) for k, v in settings.items()
                           if isinstance(v, dict))]:
        groups.add(len(rows))
        rows.append([str(name), ""])
        rows += [[str(key), _setting(value, t)] for key, value in values]
    parts = [f"<h3>{_esc(t['parameters'])}</h3>",
             _table([t["parameter"], t["value"]], rows, group_rows=groups)]
    edges = summary.get("edge_lengths")
    facts = [[t["edge_lengths"], t.get(str(edges), str(edges)) if edges else "—"],
             [t["runtime"], _dec(summary.get("runtime_seconds"), 2, lang)]]
    parts.append(_table([t["figure"], t["value"]], facts))
    graph_rows = [
        [_settlement_label(entry), whole(entry.get("graph_edges"), lang),
         whole(entry.get("edges_cut_by_barriers"), lang),
         whole(entry.get("edges_cut_by_detours"), lang),
         str(entry.get("registration_model", "—"))]
        for entry in summary.get("settlements", [])
    ]
    if graph_rows:
        parts += [f"<h3>{_esc(t['graph'])}</h3>", _table(
            [t["settlement"], t["graph_edges"], t["cut_barriers"], t["cut_detours"],
             t["rd_model"]], graph_rows, numeric={1, 2, 3})]
    return _section(t["s6"], "".join(parts))


def _section_map(png: bytes, *, shown: int, total: int, t: dict[str, str], lang: str) -> str:
    caption = t["map_note"]
    if shown < total:
        caption += " " + t["map_some"].format(shown=shown, total=whole(total, lang))
    return _section(t["s7"], _figure(png, alt=t["map_alt"], caption=caption))


# ---------------------------------------------------------------- figures of the plan


def plan_counts(layers: PlanLayers) -> dict[str, int]:
    """Settlements, units, CDs, IDs, RDs, residents and dwellings of the plan."""
    return {
        "settlements": len(layers.settlements),
        "units": len(layers.units),
        "counting_districts": len(layers.counting_districts),
        "instructor_districts": len(layers.instructor_districts),
        "registration_districts": len(layers.registration_districts),
        "residents": int(layers.units["residents"].sum()),
        "dwellings": int(layers.units["dwellings"].sum()),
    }


def _settlement_counts(layers: PlanLayers) -> list[list[Any]]:
    """Per settlement: code, name, units, residents, dwellings, CDs, IDs, RDs."""
    units = layers.units.groupby("settlement_id")
    counts = units.size()
    sums = units[["residents", "dwellings"]].sum()
    districts = [layer["settlement_id"].value_counts() for layer in (
        layers.counting_districts, layers.instructor_districts,
        layers.registration_districts)]
    rows = []
    for code, name in zip(layers.settlements["settlement_id"],
                          layers.settlements["settlement_name"], strict=True):
        mine = code in counts.index
        rows.append([
            str(code), str(name), int(counts.get(code, 0)),
            int(sums.at[code, "residents"]) if mine else 0,
            int(sums.at[code, "dwellings"]) if mine else 0,
            *(int(count.get(code, 0)) for count in districts),
        ])
    return rows


def split_buildings(units: gpd.GeoDataFrame) -> list[list[str]]:
    """Units of split buildings: building, address, unit, dwelling range, CD."""
    first = pd.to_numeric(units["dwelling_from"], errors="coerce").fillna(0)
    split = units[first > 0].assign(_first=first[first > 0])
    split = split.sort_values(["building_id", "_first", "unit_id"], kind="stable")
    return [
        [_text(row["building_id"]), _text(row["address"]), _text(row["unit_id"]),
         f"{_whole(row['dwelling_from'])}–{_whole(row['dwelling_to'])}",
         _text(row["cd_code"])]
        for row in split.to_dict("records")
    ]


def _settlement_names(layers: PlanLayers) -> str:
    return ", ".join(
        f"{name} ({code})" for code, name in zip(
            layers.settlements["settlement_id"], layers.settlements["settlement_name"],
            strict=True)
    ) or "—"


def _settlement_label(entry: Mapping[Any, Any]) -> str:
    name, code = entry.get("settlement_name", ""), entry.get("settlement_id", "")
    return f"{name} ({code})" if name else str(code)


def _utilization_bounds(cds: pd.DataFrame) -> tuple[list[float], list[float], list[float]]:
    """Distinct floor, target and ceiling utilisations of the CDs (bound × util/workload)."""
    workload = cds["workload"].to_numpy(dtype=float)
    util = cds["utilization"].to_numpy(dtype=float)
    ok = (workload > 0) & np.isfinite(util)
    scale = util[ok] / workload[ok]
    floor = cds["workload_floor"].to_numpy(dtype=float)[ok] * scale
    ceiling = cds["workload_ceiling"].to_numpy(dtype=float)[ok] * scale

    def distinct(values: np.ndarray) -> list[float]:
        return sorted({round(float(v), 3) for v in values if math.isfinite(v)})

    return distinct(floor), distinct((floor + ceiling) / 2), distinct(ceiling)


# ---------------------------------------------------------------- matplotlib figures


def utilization_histogram_png(cds: pd.DataFrame, *, lang: str = "ru") -> bytes:
    """A histogram of the CDs' utilisation with their floor, target and ceiling, as PNG."""
    t = report_text(lang)
    values = cds["utilization"].to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    floors, targets, ceilings = _utilization_bounds(cds)
    with style_context("default"):
        fig = Figure(figsize=HISTOGRAM_SIZE_IN)
        ax = fig.add_axes((0.08, 0.16, 0.9, 0.72))
        if len(values):
            edges = _bin_edges(np.concatenate([values, floors, ceilings]))
            ax.hist(values, bins=edges.tolist(), color="#8da0cb", edgecolor="#33415c",
                    linewidth=0.6)
        else:
            ax.text(0.5, 0.5, t["no_data"], transform=ax.transAxes, ha="center", va="center")
        for levels, key, style in ((floors, "floor", "--"), (targets, "target", ":"),
                                   (ceilings, "ceiling", "--")):
            colour = "#555555" if key == "target" else "#c0392b"
            for i, level in enumerate(levels):
                ax.axvline(level, color=colour, linestyle=style, linewidth=1.4,
                           label=t[key] if i == 0 else None)
        ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
        ax.set_xlabel(t["hist_x"])
        ax.set_ylabel(t["hist_y"])
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        if floors or ceilings:
            ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.01), ncols=3, fontsize=8,
                      frameon=False)
        return _png(fig)


def _bin_edges(values: np.ndarray) -> np.ndarray:
    """Bins 2.5 percentage points wide, on round values, covering ``values``."""
    width = 0.025
    low = math.floor(float(values.min()) / width - 1e-9) * width
    high = math.ceil(float(values.max()) / width + 1e-9) * width
    count = max(1, round((high - low) / width))
    return np.round(np.linspace(low, low + count * width, count + 1), 6)


def overview_map_png(layers: PlanLayers, *, lang: str = "ru") -> bytes:
    """A static overview map: one panel per settlement, for printing, as PNG.

    Counting districts are filled so that neighbours differ, instructor-district
    borders are thick and labelled, registration points are circles and the
    settlements outlined; each panel has its own scale bar. No basemap.
    """
    t = report_text(lang)
    settlements = map_settlements(layers)
    shown = set(settlements["settlement_id"])
    cds = layers.counting_districts
    colours = colour_counting_districts(cds.loc[cds["settlement_id"].isin(shown)])
    panels = _panel_layout(settlements)
    height = max((y + h for _, y, _, h in panels), default=2.0) + _LEGEND_IN
    with style_context("default"):
        fig = Figure(figsize=(MAP_WIDTH_IN, height))
        for index, (x, y, w, h) in enumerate(panels):
            ax = fig.add_axes((x / MAP_WIDTH_IN, 1 - (y + h) / height,
                               w / MAP_WIDTH_IN, h / height))
            _draw_settlement(ax, layers, settlements.iloc[index], colours, box=(w, h), t=t)
        if not panels:
            fig.text(0.5, 0.5, t["no_data"], ha="center", va="center")
        fig.legend(handles=_legend_handles(t), loc="lower center", ncols=2, fontsize=8,
                   frameon=False, bbox_to_anchor=(0.5, 0.0))
        return _png(fig)


def map_settlements(layers: PlanLayers) -> gpd.GeoDataFrame:
    """The settlements the overview map draws, in the layer's order: all of them, or
    the :data:`MAP_PANELS` with most residents (a national plan has thousands)."""
    settlements = layers.settlements.reset_index(drop=True)
    if len(settlements) <= MAP_PANELS:
        return settlements
    largest = np.argsort(-settlements["residents"].to_numpy(), kind="stable")[:MAP_PANELS]
    return settlements.iloc[np.sort(largest)].reset_index(drop=True)


#: Panels flatter than this (height / width) take a whole row of the overview map.
_WIDE = 0.5
#: Space above each panel for its title, between rows, and below for the legend (inches).
_TITLE_IN, _GAP_IN, _LEGEND_IN = 0.28, 0.12, 0.55


def _shape_ratio(geom: Any) -> float:
    """Height over width of a geometry's bounds, kept within 0.3–1.2."""
    if geom is None or geom.is_empty:
        return 1.0
    minx, miny, maxx, maxy = geom.bounds
    return min(max((maxy - miny) / max(maxx - minx, 1e-9), 0.3), 1.2)


def _panel_rows(ratios: list[float], columns: int) -> list[list[int]]:
    """Settlements grouped into rows, in order: a flat one alone, others side by side."""
    rows: list[list[int]] = []
    for index, ratio in enumerate(ratios):
        shared = rows and ratios[rows[-1][0]] >= _WIDE and len(rows[-1]) < columns
        if ratio >= _WIDE and shared:
            rows[-1].append(index)
        else:
            rows.append([index])
    return rows


def _panel_layout(settlements: gpd.GeoDataFrame) -> list[tuple[float, float, float, float]]:
    """Each settlement's map area as (left, top, width, height) in inches, in order."""
    n = len(settlements)
    columns = 1 if n == 1 else 2 if n <= 8 else 3
    full = MAP_WIDTH_IN - 0.3
    ratios = [_shape_ratio(geom) for geom in settlements.geometry]
    panels: dict[int, tuple[float, float, float, float]] = {}
    top = 0.05
    for row in _panel_rows(ratios, columns):
        alone = len(row) == 1 and (columns == 1 or ratios[row[0]] < _WIDE)
        width = full if alone else full / columns
        height = max(ratios[i] for i in row) * (width - 0.15)
        left = 0.15 + (full - width * len(row)) / 2
        for k, index in enumerate(row):
            panels[index] = (left + k * width, top + _TITLE_IN, width - 0.15, height)
        top += _TITLE_IN + height + _GAP_IN
    return [panels[i] for i in range(n)]


def _draw_settlement(
    ax: Axes,
    layers: PlanLayers,
    settlement: pd.Series,
    colours: dict[str, str],
    *,
    box: tuple[float, float],
    t: dict[str, str],
) -> None:
    """Draw one settlement's districts into ``ax``, whose drawing area is ``box`` inches."""
    code = settlement["settlement_id"]
    cds = layers.counting_districts[layers.counting_districts["settlement_id"] == code]
    ids = layers.instructor_districts[layers.instructor_districts["settlement_id"] == code]
    rds = set(layers.registration_districts.loc[
        layers.registration_districts["settlement_id"] == code, "rd_code"])
    points = layers.registration_points[layers.registration_points["rd_code"].isin(rds)]
    outline = gpd.GeoSeries([settlement.geometry], crs=layers.settlements.crs)
    if len(cds):
        fill = [colours.get(str(c), CD_PALETTE[0]) for c in cds["cd_code"]]
        cds.plot(ax=ax, color=fill, edgecolor="#666666", linewidth=0.3)
    if len(ids):
        ids.boundary.plot(ax=ax, color="#000000", linewidth=1.3)
        for label, geom in zip(ids["id_code"], ids.geometry, strict=True):
            if geom is None or geom.is_empty:
                continue
            spot = shapely.point_on_surface(geom)
            ax.text(spot.x, spot.y, _short_code(str(label), str(code)), fontsize=6.5,
                    ha="center", va="center", fontweight="bold", parse_math=False,
                    path_effects=[withStroke(linewidth=2, foreground="white")])
    outline.boundary.plot(ax=ax, color="#333333", linewidth=1.0, linestyle=(0, (6, 3)))
    if len(points):
        ax.scatter(points.geometry.x, points.geometry.y, s=36, marker="o", facecolor="white",
                   edgecolor="#1f4e9c", linewidth=2.0, zorder=5)
    _frame(ax, settlement.geometry, box=box)
    ax.set_xlabel("")
    ax.set_ylabel("")
    for spine in ax.spines.values():
        spine.set_edgecolor("#999999")
    # Names and codes are data: drawn as text, never parsed as mathtext ("$...$").
    ax.set_title(f"{settlement['settlement_name']} ({code})", fontsize=9, loc="left",
                 parse_math=False)
    _scale_bar(ax, t=t)


def _short_code(label: str, settlement_id: str) -> str:
    """An ID's code without its settlement prefix ("431010000-07" → "07")."""
    prefix = f"{settlement_id}-"
    return label[len(prefix):] if label.startswith(prefix) else label


def _frame(ax: Axes, geom: Any, *, box: tuple[float, float]) -> None:
    """Fit ``geom`` into the axes at one scale in x and y, with a small margin."""
    minx, miny, maxx, maxy = geom.bounds if geom is not None and not geom.is_empty \
        else (0.0, 0.0, 1.0, 1.0)
    span_x, span_y = max(maxx - minx, 1.0) * 1.04, max(maxy - miny, 1.0) * 1.04
    aspect = box[1] / box[0]
    span_x, span_y = max(span_x, span_y / aspect), max(span_y, span_x * aspect)
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    ax.set_xlim(cx - span_x / 2, cx + span_x / 2)
    ax.set_ylim(cy - span_y / 2, cy + span_y / 2)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xticks([])
    ax.set_yticks([])


def _scale_bar(ax: Axes, *, t: dict[str, str]) -> None:
    """A scale bar of a round length (about a fifth of the width) in the lower left."""
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    length = _nice_length((x1 - x0) / 5)
    left, base = x0 + (x1 - x0) * 0.03, y0 + (y1 - y0) * 0.04
    ax.plot([left, left + length], [base, base], color="black", linewidth=3,
            solid_capstyle="butt", zorder=6)
    label = (f"{length / 1000:g} {t['km']}" if length >= 1000 else f"{length:g} {t['m']}")
    ax.text(left + length / 2, base + (y1 - y0) * 0.015, label, ha="center", va="bottom",
            fontsize=7, path_effects=[withStroke(linewidth=2, foreground="white")], zorder=6)


def _nice_length(target: float) -> float:
    """The largest 1, 2 or 5 × 10^k metres not above ``target`` (at least 1 m)."""
    if target <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(target))
    return float(max(step * power for step in (1, 2, 5) if step * power <= target))


def _legend_handles(t: dict[str, str]) -> list[Any]:
    swatch = Patch(facecolor=CD_PALETTE[0], edgecolor="#666666", linewidth=0.3,
                   label=t["legend_cd"])
    return [
        swatch,
        Line2D([], [], color="#000000", linewidth=1.3, label=t["legend_id"]),
        Line2D([], [], color="#333333", linewidth=1.0, linestyle=(0, (6, 3)),
               label=t["legend_settlement"]),
        Line2D([], [], linestyle="none", marker="o", markersize=6, markerfacecolor="white",
               markeredgecolor="#1f4e9c", markeredgewidth=2.0, label=t["legend_point"]),
    ]


def _png(fig: Figure) -> bytes:
    """The figure as PNG bytes, without a software stamp (reproducible)."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


# ---------------------------------------------------------------- HTML helpers


def _section(title: str, body: str) -> str:
    return f"<section>\n<h2>{_esc(title)}</h2>\n{body}\n</section>\n"


def _figure(png: bytes, *, alt: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    note = f"<figcaption>{_esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{_esc(alt)}" src="data:image/png;base64,{data}">{note}</figure>'


def _block(title: str, body: str) -> str:
    """A titled block, laid out side by side with its neighbours in a ``row``."""
    return f"<div><h3>{_esc(title)}</h3>{body}</div>"


def _none(t: dict[str, str]) -> str:
    return f'<p class="none">{_esc(t["none"])}</p>'


def _table(
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    numeric: set[int] | None = None,
    total_rows: set[int] | None = None,
    group_rows: set[int] | None = None,
    mono: set[tuple[int, int]] | None = None,
    wide: bool = False,
) -> str:
    """An HTML table of plain texts (escaped here); ``numeric`` columns align right."""
    numeric, total_rows = numeric or set(), total_rows or set()
    group_rows, mono = group_rows or set(), mono or set()
    head = "".join(f"<th{_cell_class(c in numeric, False)}>{_esc(h)}</th>"
                   for c, h in enumerate(header))
    lines = []
    for r, row in enumerate(rows):
        if r in group_rows:
            lines.append(f'<tr class="group"><th colspan="{len(header)}">{_esc(row[0])}</th></tr>')
            continue
        cells = "".join(
            f"<td{_cell_class(c in numeric, (r, c) in mono)}>{_esc(v)}</td>"
            for c, v in enumerate(row)
        )
        lines.append(f'<tr class="total">{cells}</tr>' if r in total_rows else f"<tr>{cells}</tr>")
    kind = ' class="wide"' if wide else ""
    return (f"<table{kind}><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(lines)}</tbody></table>")


def _cell_class(numeric: bool, mono: bool) -> str:
    names = [name for name, on in (("num", numeric), ("mono", mono)) if on]
    return f' class="{" ".join(names)}"' if names else ""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _present(value: Any) -> bool:
    """A non-empty exception reason (not blank, None or NaN)."""
    return bool(_text(value).strip())


def _text(value: Any) -> str:
    """A cell value as text; missing values (None, NaN, NA) are empty."""
    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):
        return ""
    return str(value)





def _whole(value: Any) -> str:
    """A whole number without grouping (a dwelling number), or "?"."""
    number = as_number(value)
    return "?" if number is None else str(round(number))


def _dec(value: Any, digits: int, lang: str) -> str:
    """A number with ``digits`` decimals and grouped thousands, or "—"."""
    number = as_number(value)
    return "—" if number is None else localise(f"{number:,.{digits}f}", lang)


def _pct(value: Any, lang: str) -> str:
    """A share as a percentage with one decimal, or "—"."""
    number = as_number(value)
    if number is None:
        return "—"
    return localise(f"{number * 100:,.1f}", lang) + ("\u00a0%" if lang == "ru" else "%")


def _setting(value: Any, t: dict[str, str]) -> str:
    """A config value as text: lists joined, mappings as ``key: value``, ``None`` as "—"."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return t["yes"] if value else t["no"]
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "—"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {v}" for k, v in value.items()) or "—"
    return str(value)
