"""Write every output of a plan into one folder: the output contract."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from districting.config import Config
from districting.outputs.cells import frame_csv
from districting.outputs.folders import MANIFEST, atomic_directory
from districting.outputs.maps import write_map
from districting.outputs.report import write_report
from districting.outputs.sheets import writing_field_sheets
from districting.outputs.writer import write_geopackage, write_json
from districting.pipeline import PlanResult
from districting.staffing import staffing_table, write_staffing_xlsx
from districting.timing import stage

logger = logging.getLogger(__name__)

OUTPUT_FILES = ("plan.gpkg", "summary.json", "map.html", "report.html", "overview.png",
                "staffing.csv", "staffing.xlsx", "sheets/", MANIFEST)


def write_plan(
    result: PlanResult,
    out_dir: str | Path,
    *,
    title: str,
    lang: str = "ru",
    extra_files: dict[str, Path] | None = None,
    inputs: tuple[Path, ...] = (),
    config: Config | None = None,
    tiles: str | None = None,
    workers: int = 1,
) -> Path:
    """Write every file of :data:`OUTPUT_FILES`: the layers, the summary, the planner's
    map, the report with its printable overview map, the staffing plan and the sheets.

    Everything is built in a temporary folder that replaces ``out_dir`` only once
    all files are complete. ``inputs`` (the register, the config) must not lie
    inside ``out_dir``: replacing it would delete them. ``config`` (the staffing norms:
    reserve, point staff, days) defaults to the one the plan was made with. ``tiles``
    names a background tile layer for the map (none by default: it works offline).
    ``workers`` > 1 writes the instructors' workbooks and pages on that many processes
    (the files are the same).
    """
    out_dir = Path(out_dir)
    norms = config if config is not None else result.config
    with atomic_directory(out_dir, kind="plan", protect=inputs) as staging:
        # With worker processes, the sheets (the longest part) are written there while
        # this process writes the rest; without, after the rest.
        with writing_field_sheets(
                result.layers, staging / "sheets", lang=lang, period=norms.period,
                workers=workers):
            with stage("plan.gpkg"):
                write_geopackage(result.layers, staging / "plan.gpkg")
            with stage("the staffing plan"):
                staffing = staffing_table(result.layers, config=norms)
                (staging / "staffing.csv").write_bytes(frame_csv(staffing).encode("utf-8"))
                write_staffing_xlsx(staffing, staging / "staffing.xlsx", config=norms,
                                    lang=lang)
            with stage("map.html"):
                write_map(result.layers, staging / "map.html", title=title, tiles=tiles)
            with stage("report.html"):
                write_report(result.layers, result.summary, staging / "report.html",
                             config=norms, lang=lang, overview_png=staging / "overview.png")
        for name, source in (extra_files or {}).items():
            shutil.copyfile(source, staging / name)
        write_json(result.summary, staging / "summary.json")
    return out_dir

