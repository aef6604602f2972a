"""An interactive folium map of a plan, for planners to inspect and approve the districts.

The map is a single self-contained HTML file: toggleable layers for settlements,
registration districts (with their registration points), instructor districts,
counting districts and address units, tooltips with the workload figures, a
title and a legend. It uses no tile server (the planners' machines are
offline), so the districts are drawn on a plain background.

The same layers always give the same HTML bytes: folium's random element ids
are replaced by sequential ones before rendering.
"""

from __future__ import annotations

import html
import itertools
import logging
import math
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import networkx as nx
import numpy as np
import shapely
from branca.element import Element, Figure

from districting.errors import DistrictingError
from districting.layers import PlanLayers

logger = logging.getLogger(__name__)

#: Fill colours of counting districts (ColorBrewer Set2): neighbours never share one.
CD_PALETTE: tuple[str, ...] = (
    "#66c2a5", "#fc8d62", "#8da0cb", "#e78ac3",
    "#a6d854", "#ffd92f", "#e5c494", "#b3b3b3",
)

#: Names of the map's layers, as shown in the layer control.
LAYER_NAMES: dict[str, str] = {
    "counting_districts": "Counting districts",
    "registration_districts": "Registration districts",
    "instructor_districts": "Instructor districts",
    "settlements": "Settlements",
    "units": "Address units",
}

#: Two counting districts closer than this (metres) count as touching.
ADJACENCY_TOLERANCE_M = 0.5

_COORD_DECIMALS = 6

_STYLE_SETTLEMENT = {"color": "#444444", "weight": 2, "dashArray": "8 4", "fill": False}
_STYLE_RD = {"color": "#1f4e9c", "weight": 2.5, "dashArray": "4 4", "fill": False}
_STYLE_ID = {"color": "#000000", "weight": 4, "fill": False}
_STYLE_CD = {"color": "#555555", "weight": 1, "fillOpacity": 0.55}
_STYLE_RD_POINT = {"radius": 7.0, "color": "#1f4e9c", "weight": 3.0, "fill_color": "#ffffff"}
_STYLE_UNIT = {"radius": 2.5, "color": "#222222", "weight": 1.0, "fill_color": "#222222"}


def _circle(style: dict[str, Any], *, fill_opacity: float) -> folium.CircleMarker:
    """A circle-marker template for a GeoJSON point layer."""
    return folium.CircleMarker(
        radius=float(style["radius"]), color=str(style["color"]), weight=float(style["weight"]),
        fill=True, fill_color=str(style["fill_color"]), fill_opacity=fill_opacity,
    )


def build_map(
    layers: PlanLayers,
    *,
    title: str,
    max_units: int = 20000,
    simplify_m: float = 2.0,
) -> folium.Map:
    """Build the interactive map of a plan.

    Parameters
    ----------
    layers
        The plan's layers, in a metric CRS.
    title
        Title shown at the top of the map and in the page title. Label the data
        as synthetic here when it is; the map adds no such label itself.
    max_units
        The address-unit layer is left out (with a logged note and a line in
        the legend) when the plan has more units than this.
    simplify_m
        Tolerance, in metres, for simplifying polygons for display (topology
        preserving); 0 keeps them exact.

    Returns
    -------
    folium.Map
        The map, with deterministic element ids; render it with
        ``m.get_root().render()`` or use :func:`write_map`.

    Raises
    ------
    DistrictingError
        If a non-empty layer has no CRS.
    """
    cds = _display_frame(layers.counting_districts, "counting_districts", simplify_m)
    ids = _display_frame(layers.instructor_districts, "instructor_districts", simplify_m)
    rds = _display_frame(layers.registration_districts, "registration_districts", simplify_m)
    points = _display_frame(layers.registration_points, "registration_points", 0.0)
    settlements = _display_frame(layers.settlements, "settlements", simplify_m)
    n_units = len(layers.units)
    show_units = n_units <= max_units
    if show_units:
        units = _display_frame(layers.units, "units", 0.0)
    else:
        logger.info(
            "map: the plan has %d address units, more than max_units=%d; "
            "the units layer is left out", n_units, max_units,
        )
        units = None

    frames = [f for f in (cds, ids, rds, points, settlements, units) if f is not None and len(f)]
    bounds: list[list[float]] | None = None
    if frames:
        minx = min(float(f.total_bounds[0]) for f in frames)
        miny = min(float(f.total_bounds[1]) for f in frames)
        maxx = max(float(f.total_bounds[2]) for f in frames)
        maxy = max(float(f.total_bounds[3]) for f in frames)
        bounds = [[round(miny, _COORD_DECIMALS), round(minx, _COORD_DECIMALS)],
                  [round(maxy, _COORD_DECIMALS), round(maxx, _COORD_DECIMALS)]]
        centre = [round((miny + maxy) / 2, _COORD_DECIMALS),
                  round((minx + maxx) / 2, _COORD_DECIMALS)]
        fmap = folium.Map(tiles=None, control_scale=True, location=centre, zoom_start=13)
    else:
        logger.warning("map: the plan has no geometries to show")
        fmap = folium.Map(tiles=None, control_scale=True)
    figure = fmap.get_root()
    if not isinstance(figure, Figure):  # pragma: no cover - folium always makes one
        raise TypeError("folium.Map is not attached to a Figure")
    figure.header.add_child(Element(f"<title>{html.escape(title)}</title>"))

    # Added bottom to top: filled CDs first, outlines above them, points on top.
    colours = colour_counting_districts(layers.counting_districts)
    cd_group = folium.FeatureGroup(name=LAYER_NAMES["counting_districts"], show=True)
    if len(cds):
        cd_fill = [colours[str(code)] for code in cds["cd_code"]]
        _add_geojson(
            cd_group, cds, [_cd_tooltip(row) for row in _records(cds)],
            style=lambda i: {**_STYLE_CD, "fillColor": cd_fill[i]},
            highlight={"weight": 3, "color": "#000000", "fillOpacity": 0.75},
        )
    cd_group.add_to(fmap)

    rd_group = folium.FeatureGroup(name=LAYER_NAMES["registration_districts"], show=True)
    if len(rds):
        _add_geojson(
            rd_group, rds, [_rd_tooltip(row) for row in _records(rds)],
            style=lambda i: _STYLE_RD,
        )
    if len(points):
        popups = [_point_popup(row) for row in _records(points)]
        _add_geojson(
            rd_group, points, popups, marker=_circle(_STYLE_RD_POINT, fill_opacity=1.0),
            popup=True,
        )
    rd_group.add_to(fmap)

    id_group = folium.FeatureGroup(name=LAYER_NAMES["instructor_districts"], show=True)
    if len(ids):
        _add_geojson(
            id_group, ids, [_id_tooltip(row) for row in _records(ids)],
            style=lambda i: _STYLE_ID,
        )
    id_group.add_to(fmap)

    st_group = folium.FeatureGroup(name=LAYER_NAMES["settlements"], show=True)
    if len(settlements):
        _add_geojson(
            st_group, settlements,
            [_settlement_tooltip(row) for row in _records(settlements)],
            style=lambda i: _STYLE_SETTLEMENT,
        )
    st_group.add_to(fmap)

    if units is not None:
        unit_group = folium.FeatureGroup(name=LAYER_NAMES["units"], show=False)
        if len(units):
            _add_geojson(
                unit_group, units, [_unit_tooltip(row) for row in _records(units)],
                marker=_circle(_STYLE_UNIT, fill_opacity=0.8),
            )
        unit_group.add_to(fmap)

    folium.LayerControl(collapsed=False).add_to(fmap)

    if bounds is not None:
        fmap.fit_bounds(bounds)

    figure.html.add_child(Element(_title_html(title)))
    legend_note = "" if show_units else (
        f"Address units not shown: {n_units:,} units, more than {max_units:,}."
    )
    figure.html.add_child(Element(_legend_html(legend_note)))

    _assign_sequential_ids(figure)
    return fmap


def write_map(
    layers: PlanLayers,
    path: Path | str,
    *,
    title: str,
    max_units: int = 20000,
    simplify_m: float = 2.0,
) -> None:
    """Write the map of a plan to an HTML file, atomically.

    The HTML is written to a temporary file in the same folder, which then
    replaces ``path``; a reader never sees a half-written map.

    Parameters
    ----------
    layers
        The plan's layers, in a metric CRS.
    path
        The HTML file to write; its folder is created if needed.
    title
        Title of the map (see :func:`build_map`).
    max_units
        See :func:`build_map`.
    simplify_m
        See :func:`build_map`.
    """
    path = Path(path)
    fmap = build_map(layers, title=title, max_units=max_units, simplify_m=simplify_m)
    text = fmap.get_root().render()
    path.parent.mkdir(parents=True, exist_ok=True)
    # A plain open() (unlike mkstemp) gives the file the usual umask permissions.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(text.encode("utf-8"))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    logger.debug("map: wrote %s (%.1f kB)", path, len(text.encode("utf-8")) / 1024)


def colour_counting_districts(
    counting_districts: gpd.GeoDataFrame,
    *,
    palette: Sequence[str] = CD_PALETTE,
) -> dict[str, str]:
    """Give each counting district a fill colour that differs from its neighbours'.

    Two CDs are neighbours when their territories touch (within
    :data:`ADJACENCY_TOLERANCE_M`; a shared corner counts). The colouring is a
    greedy DSatur colouring of that graph over the CDs in code order, so it is
    deterministic. Should the graph ever need more colours than the palette
    has, colours are reused (with a logged warning).

    Parameters
    ----------
    counting_districts
        The ``counting_districts`` layer, in a metric CRS.
    palette
        The colours to use.

    Returns
    -------
    dict[str, str]
        Colour by ``cd_code``.
    """
    cds = counting_districts.reset_index(drop=True)
    codes = [str(code) for code in cds["cd_code"]]
    graph: nx.Graph = nx.Graph()
    graph.add_nodes_from(sorted(set(codes)))
    geoms = cds.geometry.to_numpy()
    valid = np.array([g is not None and not g.is_empty for g in geoms], dtype=bool)
    if valid.any():
        tree = shapely.STRtree(geoms[valid])
        positions = np.flatnonzero(valid)
        left, right = tree.query(geoms[valid], predicate="dwithin",
                                 distance=ADJACENCY_TOLERANCE_M)
        edges = {
            tuple(sorted((codes[positions[a]], codes[positions[b]])))
            for a, b in zip(left.tolist(), right.tolist(), strict=True)
            if codes[positions[a]] != codes[positions[b]]
        }
        graph.add_edges_from(sorted(edges))
    if graph.number_of_nodes() == 0:
        return {}
    colour_index: dict[str, int] = nx.greedy_color(graph, strategy="DSATUR")
    n_colours = max(colour_index.values()) + 1
    if n_colours > len(palette):
        logger.warning(
            "map: the counting districts need %d colours but the palette has %d; "
            "some neighbours share a colour", n_colours, len(palette),
        )
    return {code: palette[index % len(palette)] for code, index in colour_index.items()}


# ---------------------------------------------------------------- helpers


def _display_frame(gdf: gpd.GeoDataFrame, name: str, simplify_m: float) -> gpd.GeoDataFrame:
    """Drop empty geometries, simplify in metres, reproject to EPSG:4326 and round."""
    keep = gdf.geometry.notna() & ~gdf.geometry.is_empty
    if not keep.all():
        logger.warning("map: layer %s has %d empty geometries; not drawn", name, int((~keep).sum()))
    out = gdf.loc[keep].reset_index(drop=True)
    if len(out) == 0:
        return out
    if out.crs is None:
        raise DistrictingError(f"the layer '{name}' has no coordinate reference system")
    if simplify_m > 0:
        metric = out if out.crs.is_projected else out.to_crs(out.estimate_utm_crs())
        simplified = metric.geometry.simplify(simplify_m, preserve_topology=True)
        out = out.set_geometry(simplified.to_crs(out.crs).to_numpy())
    out = out.to_crs("EPSG:4326")
    rounded = shapely.transform(
        out.geometry.to_numpy(), lambda coords: np.round(coords, _COORD_DECIMALS)
    )
    return out.set_geometry(rounded)


def _records(gdf: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    """Rows of a layer as dictionaries of attributes (without geometry)."""
    return gdf.drop(columns=gdf.geometry.name).to_dict("records")


def _add_geojson(
    group: folium.FeatureGroup,
    gdf: gpd.GeoDataFrame,
    tips: list[str],
    *,
    style: Callable[[int], dict[str, Any]] | None = None,
    highlight: dict[str, Any] | None = None,
    marker: folium.CircleMarker | None = None,
    popup: bool = False,
) -> None:
    """Add one GeoJSON layer whose only property is the tooltip HTML of each feature."""
    features = [
        {
            "type": "Feature",
            "id": str(i),
            "properties": {"tip": tip},
            "geometry": shapely.geometry.mapping(geom),
        }
        for i, (geom, tip) in enumerate(zip(gdf.geometry, tips, strict=True))
    ]
    data = {"type": "FeatureCollection", "features": features}
    style_function = None
    if style is not None:
        style_fn = style

        def style_function(feature: dict[str, Any]) -> dict[str, Any]:
            return dict(style_fn(int(feature["id"])))

    highlight_function = None
    if highlight is not None:
        highlight_style = dict(highlight)

        def highlight_function(feature: dict[str, Any]) -> dict[str, Any]:
            return dict(highlight_style)

    layer = folium.GeoJson(
        data,
        style_function=style_function,
        highlight_function=highlight_function,
        marker=marker,
        tooltip=folium.GeoJsonTooltip(fields=["tip"], labels=False, sticky=True),
        popup=folium.GeoJsonPopup(fields=["tip"], labels=False) if popup else None,
        smooth_factor=1.0,
    )
    layer.add_to(group)


def _esc(value: Any) -> str:
    """Escape a value for the tooltip HTML; missing values become an empty string."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value))


def _int(value: Any) -> str:
    """An integer with thousands separators, or "n/a"."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "n/a"
    if math.isnan(number):
        return "n/a"
    return f"{round(number):,}"


def _percent(value: Any) -> str:
    """A ratio as a whole percentage, or "n/a"."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "n/a"
    if math.isnan(number):
        return "n/a"
    return f"{round(number * 100)}%"


def _cd_tooltip(row: dict[str, Any]) -> str:
    lines = [
        f"<b>CD {_esc(row.get('cd_code'))}</b>",
        f"ID: {_esc(row.get('id_code'))}",
        f"RD: {_esc(row.get('rd_code'))}",
        f"Residents: {_int(row.get('residents'))}",
        f"Dwellings: {_int(row.get('dwellings'))}",
        f"Workload: {_int(row.get('workload'))} min",
        f"Utilization: {_percent(row.get('utilization'))}",
    ]
    exception = _esc(row.get("bound_exception"))
    if exception:
        lines.append(f'<span style="color:#b00020">Exception: {exception}</span>')
    return "<br>".join(lines)


def _id_tooltip(row: dict[str, Any]) -> str:
    lines = [
        f"<b>ID {_esc(row.get('id_code'))}</b>",
        f"CDs: {_int(row.get('n_cd'))}",
        f"Residents: {_int(row.get('residents'))}",
        f"Workload: {_int(row.get('workload'))} min",
    ]
    exception = _esc(row.get("span_exception"))
    if exception:
        lines.append(f'<span style="color:#b00020">Exception: {exception}</span>')
    return "<br>".join(lines)


def _rd_tooltip(row: dict[str, Any]) -> str:
    return "<br>".join([
        f"<b>RD {_esc(row.get('rd_code'))}</b>",
        f"Point: {_esc(row.get('point_name'))}",
        f"CDs: {_int(row.get('n_cd'))}",
        f"Residents: {_int(row.get('residents'))}",
    ])


def _point_popup(row: dict[str, Any]) -> str:
    lines = [f"<b>{_esc(row.get('point_name'))}</b>", f"RD {_esc(row.get('rd_code'))}"]
    function = _esc(row.get("function"))
    if function:
        lines.append(function)
    return "<br>".join(lines)


def _settlement_tooltip(row: dict[str, Any]) -> str:
    return "<br>".join([
        f"<b>{_esc(row.get('settlement_name'))}</b> ({_esc(row.get('settlement_id'))})",
        f"Address units: {_int(row.get('n_units'))}",
        f"Residents: {_int(row.get('residents'))}",
        f"Workload: {_int(row.get('workload'))} min",
    ])


def _unit_tooltip(row: dict[str, Any]) -> str:
    return "<br>".join([
        f"<b>{_esc(row.get('address'))}</b>",
        f"Dwellings: {_int(row.get('dwellings'))}",
        f"Residents: {_int(row.get('residents'))}",
        f"CD: {_esc(row.get('cd_code'))}",
    ])


def _title_html(title: str) -> str:
    return (
        '<div style="position:fixed;top:10px;left:50%;transform:translateX(-50%);'
        "z-index:1000;background:rgba(255,255,255,0.9);padding:4px 12px;"
        'border:1px solid #888;border-radius:4px;font:bold 16px sans-serif;">'
        f"{html.escape(title)}</div>"
    )


def _legend_html(note: str) -> str:
    swatches = "".join(
        f'<span style="display:inline-block;width:10px;height:10px;background:{c};'
        'margin-right:1px;"></span>'
        for c in CD_PALETTE[:4]
    )
    rows = [
        ('<span style="display:inline-block;width:22px;border-top:2px dashed #444444;'
         'vertical-align:middle;"></span>', "Settlement boundary"),
        ('<span style="display:inline-block;width:22px;border-top:2px dashed #1f4e9c;'
         'vertical-align:middle;"></span>', "Registration district (RD) boundary"),
        ('<span style="display:inline-block;width:10px;height:10px;border:3px solid #1f4e9c;'
         'border-radius:50%;background:#fff;"></span>', "Registration point (click for name)"),
        ('<span style="display:inline-block;width:22px;border-top:4px solid #000;'
         'vertical-align:middle;"></span>', "Instructor district (ID) boundary"),
        (swatches, "Counting district (CD); colours only tell neighbours apart"),
        ('<span style="display:inline-block;width:6px;height:6px;border-radius:50%;'
         'background:#222;"></span>', "Address unit"),
    ]
    body = "".join(
        f'<div style="margin:2px 0;"><span style="display:inline-block;width:46px;">{sym}</span>'
        f"{html.escape(text)}</div>"
        for sym, text in rows
    )
    if note:
        body += f'<div style="margin-top:4px;color:#b00020;">{html.escape(note)}</div>'
    body += '<div style="margin-top:4px;color:#555;">Hover a district for its figures.</div>'
    return (
        '<div style="position:fixed;bottom:56px;left:10px;z-index:1000;'
        "background:rgba(255,255,255,0.92);padding:6px 10px;border:1px solid #888;"
        'border-radius:4px;font:12px sans-serif;max-width:320px;">'
        f"<b>Legend</b>{body}</div>"
    )


def _assign_sequential_ids(root: Element) -> None:
    """Replace folium's random element ids by sequential ones, depth first."""
    counter = itertools.count()

    def visit(element: Element) -> None:
        element._id = f"{next(counter):06d}"
        for child in list(element._children.values()):
            visit(child)

    visit(root)
