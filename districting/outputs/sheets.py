"""Assignment sheets for field staff, as CSV tables that open cleanly in Excel.

* One sheet per counting district (CD) for its interviewer: the address units
  in walking order, with expected dwellings, residents, households and
  workload, and a totals row.
* One sheet per instructor district (ID) for its instructor-controller: the
  CDs it supervises, with their figures, and a totals row.

Files are UTF-8 with a byte-order mark (so Excel recognises Cyrillic), with
``\\r\\n`` line endings, and each is written atomically (a temporary file in the
same folder, then :func:`os.replace`).
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from districting.errors import DistrictingError
from districting.layers import PlanLayers

logger = logging.getLogger(__name__)

#: Column labels of the CD sheets, by language.
CD_SHEET_COLUMNS: dict[str, list[str]] = {
    "ru": [
        "№ п/п", "Код адресной единицы", "Код здания", "Адрес", "Квартиры (с–по)", "Квартир",
        "Жителей", "Домохозяйств", "Нагрузка, мин",
    ],
    "en": [
        "No.", "Unit ID", "Building ID", "Address", "Dwelling range", "Dwellings", "Residents",
        "Households", "Workload, min",
    ],
}

#: Column labels of the instructor sheets, by language.
ID_SHEET_COLUMNS: dict[str, list[str]] = {
    "ru": [
        "Счётный участок", "Регистрационный участок", "Адресных единиц", "Квартир",
        "Жителей", "Нагрузка, мин", "Загрузка, %",
    ],
    "en": [
        "Counting district", "Registration district", "Address units", "Dwellings",
        "Residents", "Workload, min", "Utilization, %",
    ],
}

#: Label of the totals row, by language.
TOTAL_LABEL: dict[str, str] = {"ru": "ИТОГО", "en": "TOTAL"}

_ENCODING = "utf-8-sig"
_WORKLOAD_DECIMALS = 1


def walking_order(
    points: np.ndarray,
    *,
    start: Sequence[float] | None = None,
) -> np.ndarray:
    """Order points by a nearest-neighbour walk.

    The walk starts at the point nearest ``start`` and then always goes to the
    nearest point not yet visited. Ties (equal distances, such as units of one
    building) go to the lower index, so the order is deterministic.

    Parameters
    ----------
    points
        Array of shape ``(n, 2)``: x (easting) and y (northing) in metres.
    start
        Where the walk begins; by default the north-west corner of the
        points' bounding box (smallest x, largest y).

    Returns
    -------
    numpy.ndarray
        A permutation of ``range(n)`` (integer indices into ``points``).

    Raises
    ------
    ValueError
        If ``points`` is not of shape ``(n, 2)`` or holds non-finite values.
    """
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape (n, 2), not {pts.shape}")
    n = len(pts)
    if n == 0:
        return np.zeros(0, dtype=np.intp)
    if not np.isfinite(pts).all():
        raise ValueError("points must be finite")
    origin = (
        np.array([pts[:, 0].min(), pts[:, 1].max()])
        if start is None else np.asarray(start, dtype=float)
    )
    order = np.empty(n, dtype=np.intp)
    remaining = np.ones(n, dtype=bool)
    current = origin
    for step in range(n):
        dist = np.hypot(pts[:, 0] - current[0], pts[:, 1] - current[1])
        dist[~remaining] = np.inf
        nxt = int(np.argmin(dist))  # first index among equal distances
        order[step] = nxt
        remaining[nxt] = False
        current = pts[nxt]
    return order


def write_cd_sheets(
    layers: PlanLayers,
    directory: Path | str,
    *,
    lang: str = "ru",
    delimiter: str = ",",
) -> list[Path]:
    """Write one assignment sheet per counting district.

    Each sheet ``directory/<cd_code>.csv`` lists the CD's address units in
    walking order (a nearest-neighbour walk from the unit nearest the CD's
    north-west corner), then a totals row. Workload is in minutes, rounded to
    0.1; the total is the sum of the rounded values shown.

    Parameters
    ----------
    layers
        The plan's layers, in a metric CRS.
    directory
        Folder for the sheets; created if needed.
    lang
        Language of the column labels: ``"ru"`` or ``"en"``.
    delimiter
        Field separator. A Russian-locale Excel expects ``";"`` when a file is
        double-clicked; ``","`` is the portable default.

    Returns
    -------
    list[pathlib.Path]
        The sheets written, in CD-code order.

    Raises
    ------
    DistrictingError
        If ``lang`` is unknown, a CD code is duplicated or unusable as a file
        name, or some unit has no CD of the plan.
    """
    columns = _labels(CD_SHEET_COLUMNS, lang)
    directory = Path(directory)
    units = _metric(layers.units, "units")
    cds = _metric(layers.counting_districts, "counting_districts")
    cd_codes = _unique_codes(cds, "cd_code", "counting_districts")

    unit_cd = units["cd_code"].astype("string")
    stray = units.loc[unit_cd.isna() | ~unit_cd.isin(cd_codes)]
    if len(stray):
        sample = ", ".join(str(u) for u in stray["unit_id"].head(5))
        raise DistrictingError(
            f"{len(stray)} address unit(s) have no counting district of the plan "
            f"(for example {sample}); no sheets were written"
        )

    units = units.iloc[_natural_order(units["unit_id"])].reset_index(drop=True)
    groups = {str(code): frame for code, frame in units.groupby("cd_code", sort=False)}
    cd_geoms = dict(zip(cds["cd_code"].astype(str), cds.geometry, strict=True))

    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for code in sorted(cd_codes, key=_natural_key):
        members = groups.get(code)
        rows: list[list[Any]] = []
        totals = {"dwellings": 0, "residents": 0, "households": 0, "workload": 0.0}
        if members is None or len(members) == 0:
            logger.warning("sheets: counting district %s has no address units", code)
        else:
            xy = np.column_stack([members.geometry.x.to_numpy(), members.geometry.y.to_numpy()])
            geom = cd_geoms.get(code)
            start = None
            if geom is not None and not geom.is_empty:
                minx, _, _, maxy = geom.bounds
                start = (minx, maxy)
            order = walking_order(xy, start=start)
            for number, pos in enumerate(order.tolist(), start=1):
                unit = members.iloc[pos]
                workload = _round_workload(unit["workload"])
                counts = [_count(unit[field]) for field in ("dwellings", "residents", "households")]
                rows.append([
                    number, _text(unit["unit_id"]), _text(unit["building_id"]),
                    _text(unit["address"]), _dwelling_range(unit), *counts, workload,
                ])
                for field, value in zip(("dwellings", "residents", "households"), counts,
                                        strict=True):
                    totals[field] += value if isinstance(value, int) else 0
                totals["workload"] += workload if isinstance(workload, float) else 0.0
        rows.append([
            TOTAL_LABEL[lang], "", "", "", "", totals["dwellings"], totals["residents"],
            totals["households"], round(totals["workload"], _WORKLOAD_DECIMALS),
        ])
        path = directory / f"{_safe_name(code)}.csv"
        _write_csv(path, columns, rows, delimiter=delimiter)
        written.append(path)
    logger.debug("sheets: wrote %d counting-district sheets to %s", len(written), directory)
    return written


def write_instructor_sheets(
    layers: PlanLayers,
    directory: Path | str,
    *,
    lang: str = "ru",
    delimiter: str = ",",
) -> list[Path]:
    """Write one sheet per instructor district, listing its counting districts.

    Each sheet ``directory/instructors/<id_code>.csv`` has one row per CD
    (in code order) and a totals row. Utilization is the CD's workload as a
    percentage of its target; the total is the ID's overall percentage (total
    workload over total target), left blank when a CD has no utilization.

    Parameters
    ----------
    layers
        The plan's layers.
    directory
        Output folder; the sheets go to its ``instructors`` subfolder.
    lang
        Language of the column labels: ``"ru"`` or ``"en"``.
    delimiter
        Field separator (see :func:`write_cd_sheets`).

    Returns
    -------
    list[pathlib.Path]
        The sheets written, in ID-code order.

    Raises
    ------
    DistrictingError
        If ``lang`` is unknown, an ID code is duplicated or unusable as a file
        name, or some CD has no instructor district of the plan.
    """
    columns = _labels(ID_SHEET_COLUMNS, lang)
    folder = Path(directory) / "instructors"
    ids = layers.instructor_districts
    cds = pd.DataFrame(layers.counting_districts.drop(
        columns=layers.counting_districts.geometry.name))
    id_codes = _unique_codes(ids, "id_code", "instructor_districts")

    cd_id = cds["id_code"].astype("string")
    stray = cds.loc[cd_id.isna() | ~cd_id.isin(id_codes)]
    if len(stray):
        sample = ", ".join(str(c) for c in stray["cd_code"].head(5))
        raise DistrictingError(
            f"{len(stray)} counting district(s) have no instructor district of the plan "
            f"(for example {sample}); no sheets were written"
        )
    cds = cds.iloc[_natural_order(cds["cd_code"])]
    groups = {str(code): frame for code, frame in cds.groupby("id_code", sort=False)}

    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for code in sorted(id_codes, key=_natural_key):
        members = groups.get(code, cds.iloc[0:0])
        if len(members) == 0:
            logger.warning("sheets: instructor district %s has no counting districts", code)
        rows: list[list[Any]] = []
        totals = {"n_units": 0, "dwellings": 0, "residents": 0}
        total_workload = 0.0
        total_target = 0.0
        target_known = len(members) > 0
        for cd in members.to_dict("records"):
            counts = [_count(cd[field]) for field in ("n_units", "dwellings", "residents")]
            workload = _round_workload(cd["workload"])
            utilization = _as_float(cd.get("utilization"))
            rows.append([
                _text(cd["cd_code"]), _text(cd["rd_code"]), *counts, workload,
                "" if utilization is None else round(utilization * 100, 1),
            ])
            for field, value in zip(("n_units", "dwellings", "residents"), counts, strict=True):
                totals[field] += value if isinstance(value, int) else 0
            total_workload += workload if isinstance(workload, float) else 0.0
            raw_workload = _as_float(cd["workload"])
            if utilization is None or utilization <= 0 or raw_workload is None:
                target_known = False
            else:
                total_target += raw_workload / utilization
        overall: float | str = ""
        if target_known and total_target > 0:
            raw_total = sum(_as_float(w) or 0.0 for w in members["workload"])
            overall = round(raw_total / total_target * 100, 1)
        rows.append([
            TOTAL_LABEL[lang], "", totals["n_units"], totals["dwellings"], totals["residents"],
            round(total_workload, _WORKLOAD_DECIMALS), overall,
        ])
        path = folder / f"{_safe_name(code)}.csv"
        _write_csv(path, columns, rows, delimiter=delimiter)
        written.append(path)
    logger.debug("sheets: wrote %d instructor sheets to %s", len(written), folder)
    return written


# ---------------------------------------------------------------- helpers


def _dwelling_range(unit: pd.Series) -> str:
    """``"121–240"`` for a sub-unit of a split building, ``""`` for a whole building."""
    first, last = unit.get("dwelling_from"), unit.get("dwelling_to")
    if first is None or last is None or pd.isna(first) or pd.isna(last) or int(first) <= 0:
        return ""
    return f"{int(first)}–{int(last)}"


def _labels(table: dict[str, list[str]], lang: str) -> list[str]:
    if lang not in table:
        raise DistrictingError(
            f"unknown sheet language '{lang}'; choose one of {', '.join(sorted(table))}"
        )
    return table[lang]


def _metric(gdf: gpd.GeoDataFrame, name: str) -> gpd.GeoDataFrame:
    """The layer in a projected CRS (distances in metres) for the walking order."""
    if gdf.crs is None or gdf.crs.is_projected or len(gdf) == 0:
        return gdf
    logger.info("sheets: layer %s is in geographic coordinates; using its UTM zone", name)
    return gdf.to_crs(gdf.estimate_utm_crs())


def _unique_codes(frame: pd.DataFrame, column: str, layer: str) -> list[str]:
    codes = frame[column]
    if codes.isna().any():
        raise DistrictingError(f"the layer '{layer}' has a row without {column}")
    as_text = [str(c) for c in codes]
    repeated = pd.Series(as_text, dtype="object")
    duplicated = sorted(set(repeated[repeated.duplicated()]))
    if duplicated:
        raise DistrictingError(
            f"the layer '{layer}' repeats {column} {', '.join(duplicated[:5])}"
        )
    for code in as_text:
        _safe_name(code)
    return as_text


_UNSAFE = re.compile(r"[\\/:*?\"<>|\x00-\x1f]")


def _safe_name(code: str) -> str:
    """A district code as a file name; refuse codes that are not safe as one."""
    if not code.strip() or code in {".", ".."} or _UNSAFE.search(code):
        raise DistrictingError(f"the district code {code!r} cannot be used as a file name")
    return code


def _natural_key(value: Any) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders embedded numbers by value ("u2" before "u10")."""
    parts = re.split(r"(\d+)", str(value))
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts if p != "")


def _natural_order(values: pd.Series) -> list[int]:
    """Positions that sort ``values`` by :func:`_natural_key` (stable)."""
    keys = [_natural_key(v) for v in values]
    return sorted(range(len(keys)), key=keys.__getitem__)


def _as_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _count(value: Any) -> int | str:
    """A whole count, or "" when missing."""
    number = _as_float(value)
    return "" if number is None else round(number)


def _round_workload(value: Any) -> float | str:
    number = _as_float(value)
    return "" if number is None else round(number, _WORKLOAD_DECIMALS)


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    return str(value)


def _write_csv(path: Path, header: list[str], rows: list[list[Any]], *, delimiter: str) -> None:
    """Write a CSV table atomically (temporary file in the same folder, then replace)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    data = buffer.getvalue().encode(_ENCODING)
    # A plain open() (unlike mkstemp) gives the file the usual umask permissions.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
