"""An interactive folium map of a plan, for planners to inspect and approve the districts.

The map is a single self-contained HTML file: layers toggled in a layer control
(settlements, registration districts with their registration points, instructor
districts, counting districts and address units), a tooltip and a popup with
the figures of every district, a search box that finds an address or a
district code, a title and a legend. The view fits the data on opening.

By default it uses no tile server (the planners' machines are offline), so the
districts are drawn on a plain background; ``tiles="OpenStreetMap"`` adds a
background map for a user who is online.

Each drawn shape carries a CSS class per layer (:data:`CLASS_NAMES`), e.g.
``path.cd-shape`` for the counting districts, so a browser test can count them.
The same layers always give the same HTML bytes: folium's random element ids
are replaced by sequential ones before rendering. The map holds no personal
data: codes, addresses, counts and workloads only.
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
import folium.plugins
import geopandas as gpd
import networkx as nx
import numpy as np
import shapely
from branca.element import Element, Figure, MacroElement
from folium.elements import JSCSSMixin
from folium.template import Template

from districting.errors import DistrictingError
from districting.layers import PlanLayers
from districting.outputs.numbers import as_number

logger = logging.getLogger(__name__)

#: Fill colours of counting districts (ColorBrewer Set2): neighbours never share one.
CD_PALETTE: tuple[str, ...] = (
    "#66c2a5", "#fc8d62", "#8da0cb", "#e78ac3",
    "#a6d854", "#ffd92f", "#e5c494", "#b3b3b3",
)

#: Outline colours of instructor districts (dark, solid): neighbours never share one.
ID_PALETTE: tuple[str, ...] = (
    "#111111", "#a50026", "#313695", "#00441b", "#7f3b08", "#40004b",
)

#: Outline colours of registration districts (dashed) and their points.
RD_PALETTE: tuple[str, ...] = (
    "#2166ac", "#d6604d", "#1b9e77", "#7570b3", "#e7298a", "#b8860b",
)

#: Names of the map's layers, as shown in the layer control.
LAYER_NAMES: dict[str, str] = {
    "counting_districts": "Counting districts",
    "registration_districts": "Registration districts",
    "instructor_districts": "Instructor districts",
    "settlements": "Settlements",
    "units": "Address units",
}

#: CSS class of each drawn shape, by layer (``path.cd-shape`` selects the CD polygons).
CLASS_NAMES: dict[str, str] = {
    "counting_districts": "cd-shape",
    "registration_districts": "rd-shape",
    "registration_points": "rd-point",
    "instructor_districts": "id-shape",
    "settlements": "settlement-shape",
    "units": "unit-point",
}

#: Placeholder of the search box.
SEARCH_PLACEHOLDER = "Find an address or a CD/ID/RD code"

#: Two districts closer than this (metres) count as touching.
ADJACENCY_TOLERANCE_M = 0.5

_COORD_DECIMALS = 6
_SEARCH_TIP_LIMIT = 25

_STYLE_SETTLEMENT = {"color": "#444444", "weight": 2, "dashArray": "8 4", "fill": False}
_STYLE_RD = {"weight": 2.5, "dashArray": "4 4", "fill": False}
_STYLE_ID = {"weight": 4, "fill": False}
_STYLE_CD = {"color": "#555555", "weight": 1, "fillOpacity": 0.55}
_STYLE_RD_POINT = {"radius": 7.0, "color": RD_PALETTE[0], "weight": 3.0, "fill_color": "#ffffff"}
_STYLE_UNIT = {"radius": 2.5, "color": "#222222", "weight": 1.0, "fill_color": "#222222"}


class _SearchControl(JSCSSMixin, MacroElement):
    """A leaflet-search box over the ``label`` property of some GeoJSON layers.

    Unlike :class:`folium.plugins.Search` it never adds its layers to the map (a
    hidden layer stays hidden) and it covers several layers with one box: the
    index of labels is built in the browser, on the first search, from the
    layers' features. A found polygon is fitted in the view, a found point is
    centred, and a popup with the feature's figures opens at it.

    The labels are data (addresses, point names), so they are matched and shown as
    text: the plugin's default would draw each as HTML and drop ``.``, ``(`` and the
    like from what is typed.
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = (function (map, sources) {
            var index = null;
            function buildIndex() {
                index = {};
                sources.forEach(function (source) {
                    source.eachLayer(function (layer) {
                        var props = layer.feature && layer.feature.properties;
                        if (!props || !props.label || (props.label in index)) { return; }
                        var isPoint = typeof layer.getLatLng === "function";
                        var at = isPoint ? layer.getLatLng() : layer.getBounds().getCenter();
                        var record = L.latLng(at.lat, at.lng);
                        record.bounds = isPoint ? null : layer.getBounds();
                        record.tip = props.tip;
                        index[props.label] = record;
                    });
                });
                return index;
            }
            var control = new L.Control.Search({
                sourceData: function (text, callResponse) {
                    callResponse(index || buildIndex());
                    return {abort: function () {}};
                },
                formatData: function (records) { return records; },
                // Labels are data (addresses, names): the plugin would set a tip's
                // innerHTML, so each tip is built here with the label as text ...
                buildTip: function (text) {
                    var tip = L.DomUtil.create("li", "");
                    tip.textContent = text;
                    return tip;
                },
                // ... and a label is matched as typed, as text (the plugin's own filter
                // drops ".", "(" and the like from the search, so "ул. Мира" or a
                // label holding one could never be found).
                filterData: function (text, records) {
                    var wanted = text.toLowerCase(), found = {};
                    if (!wanted) { return found; }
                    for (var label in records) {
                        if (Object.prototype.hasOwnProperty.call(records, label)
                                && label.toLowerCase().indexOf(wanted) !== -1) {
                            found[label] = records[label];
                        }
                    }
                    return found;
                },
                initial: false,
                autoType: false,
                collapsed: false,
                tooltipLimit: {{ this.tip_limit|tojson }},
                textPlaceholder: {{ this.placeholder|tojson }},
                textErr: "Not found",
                position: "topleft",
                moveToLocation: function (latlng, title, map) {
                    if (latlng.bounds) {
                        map.fitBounds(latlng.bounds, {maxZoom: 18});
                    } else {
                        map.setView(latlng, Math.max(map.getZoom(), 17));
                    }
                }
            });
            control.on("search:locationfound", function (e) {
                if (e.latlng.tip) {
                    L.popup({autoPan: false, maxWidth: 320})
                        .setLatLng(e.latlng).setContent(e.latlng.tip).openOn(map);
                }
            });
            map.addControl(control);
            return control;
        })({{ this._parent.get_name() }}, [
            {%- for layer in this.sources %}{{ layer.get_name() }}{{ ", " if not loop.last }}
            {%- endfor %}]);
        {% endmacro %}
    """)

    default_js = folium.plugins.Search.default_js
    default_css = folium.plugins.Search.default_css

    def __init__(self, sources: Sequence[folium.GeoJson], *, placeholder: str) -> None:
        super().__init__()
        self._name = "SearchControl"
        self.sources = list(sources)
        self.placeholder = placeholder
        self.tip_limit = _SEARCH_TIP_LIMIT


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
    tiles: str | None = None,
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
        the legend), and addresses are not searchable, when the plan has more
        units than this.
    simplify_m
        Tolerance, in metres, for simplifying polygons for display (topology
        preserving); 0 keeps them exact.
    tiles
        A background tile layer, as folium names it (e.g. ``"OpenStreetMap"``),
        for a user who is online; ``None`` (the default) draws no tiles, so the
        map needs no tile server.

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
    cds = display_frame(layers.counting_districts, "counting_districts", simplify_m)
    ids = display_frame(layers.instructor_districts, "instructor_districts", simplify_m)
    rds = display_frame(layers.registration_districts, "registration_districts", simplify_m)
    points = display_frame(layers.registration_points, "registration_points", 0.0)
    settlements = display_frame(layers.settlements, "settlements", simplify_m)
    n_units = len(layers.units)
    show_units = n_units <= max_units
    if show_units:
        units = display_frame(layers.units, "units", 0.0)
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
        fmap = folium.Map(tiles=tiles, control_scale=True, location=centre, zoom_start=13)
    else:
        logger.warning("map: the plan has no geometries to show")
        fmap = folium.Map(tiles=tiles, control_scale=True)
    figure = fmap.get_root()
    if not isinstance(figure, Figure):  # pragma: no cover - folium always makes one
        raise TypeError("folium.Map is not attached to a Figure")
    figure.header.add_child(Element(f"<title>{html.escape(title)}</title>"))
    searchable: list[folium.GeoJson] = []

    # Added bottom to top: filled CDs first, outlines above them, points on top.
    cd_colours = colour_counting_districts(layers.counting_districts)
    cd_group = folium.FeatureGroup(name=LAYER_NAMES["counting_districts"], show=True)
    if len(cds):
        cd_fill = [cd_colours.get(str(code), CD_PALETTE[0]) for code in cds["cd_code"]]
        searchable.append(add_geojson(
            cd_group, cds,
            [{"tip": _cd_tooltip(row), "label": f"CD {row['cd_code']}"} for row in _records(cds)],
            class_name=CLASS_NAMES["counting_districts"],
            style=lambda i: {**_STYLE_CD, "fillColor": cd_fill[i]},
            highlight={"weight": 3, "color": "#000000", "fillOpacity": 0.75},
        ))
    cd_group.add_to(fmap)

    rd_colours = colour_districts(layers.registration_districts, "rd_code", palette=RD_PALETTE)
    rd_group = folium.FeatureGroup(name=LAYER_NAMES["registration_districts"], show=True)
    if len(rds):
        rd_line = [rd_colours.get(str(code), RD_PALETTE[0]) for code in rds["rd_code"]]
        searchable.append(add_geojson(
            rd_group, rds,
            [{"tip": _rd_tooltip(row), "label": _rd_label(row)} for row in _records(rds)],
            class_name=CLASS_NAMES["registration_districts"],
            style=lambda i: {**_STYLE_RD, "color": rd_line[i]},
            highlight={"weight": 5},
        ))
    if len(points):
        point_line = [rd_colours.get(str(code), RD_PALETTE[0]) for code in points["rd_code"]]
        add_geojson(
            rd_group, points, [{"tip": _point_popup(row)} for row in _records(points)],
            class_name=CLASS_NAMES["registration_points"],
            style=lambda i: {"color": point_line[i]},
            marker=_circle(_STYLE_RD_POINT, fill_opacity=1.0),
        )
    rd_group.add_to(fmap)

    id_colours = colour_districts(layers.instructor_districts, "id_code", palette=ID_PALETTE)
    id_group = folium.FeatureGroup(name=LAYER_NAMES["instructor_districts"], show=True)
    if len(ids):
        id_line = [id_colours.get(str(code), ID_PALETTE[0]) for code in ids["id_code"]]
        searchable.append(add_geojson(
            id_group, ids,
            [{"tip": _id_tooltip(row), "label": f"ID {row['id_code']}"} for row in _records(ids)],
            class_name=CLASS_NAMES["instructor_districts"],
            style=lambda i: {**_STYLE_ID, "color": id_line[i]},
            highlight={"weight": 7},
        ))
    id_group.add_to(fmap)

    st_group = folium.FeatureGroup(name=LAYER_NAMES["settlements"], show=True)
    if len(settlements):
        add_geojson(
            st_group, settlements,
            [{"tip": _settlement_tooltip(row)} for row in _records(settlements)],
            class_name=CLASS_NAMES["settlements"],
            style=lambda i: _STYLE_SETTLEMENT,
        )
    st_group.add_to(fmap)

    if units is not None:
        unit_group = folium.FeatureGroup(name=LAYER_NAMES["units"], show=False)
        if len(units):
            searchable.append(add_geojson(
                unit_group, units,
                [{"tip": _unit_tooltip(row), "label": _unit_label(row)}
                 for row in _records(units)],
                class_name=CLASS_NAMES["units"],
                style=lambda i: {},
                marker=_circle(_STYLE_UNIT, fill_opacity=0.8),
            ))
        unit_group.add_to(fmap)

    folium.LayerControl(collapsed=False).add_to(fmap)
    if searchable:
        _SearchControl(searchable, placeholder=SEARCH_PLACEHOLDER).add_to(fmap)

    if bounds is not None:
        # Room for the title above and the legend at the bottom left.
        fmap.fit_bounds(bounds, padding_top_left=(48, 56), padding_bottom_right=(24, 24),
                        max_zoom=18)

    figure.html.add_child(Element(_title_html(title)))
    legend_note = "" if show_units else (
        f"Address units not shown and addresses not searchable: {n_units:,} units, "
        f"more than {max_units:,}."
    )
    figure.html.add_child(Element(_legend_html(legend_note)))

    assign_sequential_ids(figure)
    return fmap


def write_map(
    layers: PlanLayers,
    path: Path | str,
    *,
    title: str,
    max_units: int = 20000,
    simplify_m: float = 2.0,
    tiles: str | None = None,
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
    tiles
        See :func:`build_map`; ``None`` (no tile server) by default.
    """
    path = Path(path)
    fmap = build_map(
        layers, title=title, max_units=max_units, simplify_m=simplify_m, tiles=tiles,
    )
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

    See :func:`colour_districts`; this colours by ``cd_code``.

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
    return colour_districts(counting_districts, "cd_code", palette=palette)


def colour_districts(
    districts: gpd.GeoDataFrame,
    code_field: str,
    *,
    palette: Sequence[str],
) -> dict[str, str]:
    """Give each district a colour that differs from its neighbours'.

    Two districts are neighbours when their territories touch (within
    :data:`ADJACENCY_TOLERANCE_M`; a shared corner counts). The colouring is a
    greedy DSatur colouring of that graph over the districts in code order (each
    connected part of it on its own), so it is deterministic. Should the graph ever
    need more colours than the palette has, colours are reused (with a logged warning).

    Parameters
    ----------
    districts
        A district layer (counting, instructor or registration districts), in
        a metric CRS.
    code_field
        The field holding each district's code (``cd_code``, ``id_code``, ...).
    palette
        The colours to use.

    Returns
    -------
    dict[str, str]
        Colour by code.
    """
    frame = districts.reset_index(drop=True)
    codes = [str(code) for code in frame[code_field]]
    graph: nx.Graph = nx.Graph()
    graph.add_nodes_from(sorted(set(codes)))
    geoms = frame.geometry.to_numpy()
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
    # networkx's DSatur takes time quadratic in the nodes it colours (minutes for a
    # national plan's CDs); districts of different settlements never touch, so each
    # connected part of the graph is coloured on its own. Each part is built afresh in
    # code order: a subgraph view of a small part lists its nodes in set order, which
    # changes from run to run, and DSatur breaks ties by that order.
    colour_index: dict[str, int] = {}
    for part in nx.connected_components(graph):
        nodes = sorted(part)
        piece: nx.Graph = nx.Graph()
        piece.add_nodes_from(nodes)
        piece.add_edges_from((u, v) for u in nodes for v in sorted(graph[u]) if u < v)
        colour_index.update(nx.greedy_color(piece, strategy="DSATUR"))
    n_colours = max(colour_index.values()) + 1
    if n_colours > len(palette):
        logger.warning(
            "map: the %s districts need %d colours but the palette has %d; "
            "some neighbours share a colour", code_field, n_colours, len(palette),
        )
    return {code: palette[index % len(palette)] for code, index in colour_index.items()}


# ---------------------------------------------------------------- helpers


def display_frame(gdf: gpd.GeoDataFrame, name: str, simplify_m: float) -> gpd.GeoDataFrame:
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


def add_geojson(
    group: folium.FeatureGroup,
    gdf: gpd.GeoDataFrame,
    properties: list[dict[str, str]],
    *,
    class_name: str,
    style: Callable[[int], dict[str, Any]],
    highlight: dict[str, Any] | None = None,
    marker: folium.CircleMarker | None = None,
) -> folium.GeoJson:
    """Add one GeoJSON layer to ``group`` and return it.

    Each feature's properties are ``tip`` (the HTML shown in its tooltip and
    popup) and, for searchable layers, ``label`` (the text the search box
    matches). Every shape gets the CSS class ``class_name``.
    """
    features = [
        {
            "type": "Feature",
            "id": str(i),
            "properties": props,
            "geometry": shapely.geometry.mapping(geom),
        }
        for i, (geom, props) in enumerate(zip(gdf.geometry, properties, strict=True))
    ]
    data = {"type": "FeatureCollection", "features": features}
    style_fn = style

    def style_function(feature: dict[str, Any]) -> dict[str, Any]:
        return {**style_fn(int(feature["id"])), "className": class_name}

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
        popup=folium.GeoJsonPopup(fields=["tip"], labels=False),
        smooth_factor=1.0,
    )
    layer.add_to(group)
    return layer


def _esc(value: Any) -> str:
    """Escape a value for the tooltip HTML; missing values become an empty string."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value))


def _int(value: Any) -> str:
    """An integer with thousands separators, or "n/a"."""
    number = as_number(value)
    return "n/a" if number is None else f"{round(number):,}"


def _percent(value: Any) -> str:
    """A ratio as a whole percentage, or "n/a"."""
    number = as_number(value)
    return "n/a" if number is None else f"{round(number * 100)}%"


def _exception_line(value: Any) -> list[str]:
    exception = _esc(value)
    return [f'<span style="color:#b00020">Exception: {exception}</span>'] if exception else []


def _cd_tooltip(row: dict[str, Any]) -> str:
    lines = [
        f"<b>CD {_esc(row.get('cd_code'))}</b>",
        f"ID: {_esc(row.get('id_code'))} · RD: {_esc(row.get('rd_code'))}",
        f"Address units: {_int(row.get('n_units'))}",
        f"Residents: {_int(row.get('residents'))}",
        f"Dwellings: {_int(row.get('dwellings'))}",
        f"Workload: {_int(row.get('workload'))} min",
        f"Utilization: {_percent(row.get('utilization'))}",
    ]
    floor, ceiling = as_number(row.get("workload_floor")), as_number(row.get("workload_ceiling"))
    if floor is not None and ceiling is not None:
        lines.append(f"Workload bounds: {_int(floor)}–{_int(ceiling)} min")
    lines += _exception_line(row.get("bound_exception"))
    return "<br>".join(lines)


def _id_tooltip(row: dict[str, Any]) -> str:
    lines = [
        f"<b>ID {_esc(row.get('id_code'))}</b>",
        f"Span: {_int(row.get('n_cd'))} CDs",
        f"Residents: {_int(row.get('residents'))}",
        f"Workload: {_int(row.get('workload'))} min",
    ]
    lines += _exception_line(row.get("span_exception"))
    return "<br>".join(lines)


def _rd_tooltip(row: dict[str, Any]) -> str:
    return "<br>".join([
        f"<b>RD {_esc(row.get('rd_code'))}</b>",
        f"Point: {_esc(row.get('point_name'))}",
        f"CDs: {_int(row.get('n_cd'))}",
        f"Residents: {_int(row.get('residents'))}",
        f"Walk to the point: mean {_int(row.get('mean_walk_m'))} m, "
        f"max {_int(row.get('max_walk_m'))} m",
    ])


def _rd_label(row: dict[str, Any]) -> str:
    name = row.get("point_name")
    suffix = f" · {name}" if isinstance(name, str) and name else ""
    return f"RD {row.get('rd_code')}{suffix}"


def _point_popup(row: dict[str, Any]) -> str:
    lines = [f"<b>{_esc(row.get('point_name'))}</b>",
             f"Registration point of RD {_esc(row.get('rd_code'))}"]
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
        f"Workload: {_int(row.get('workload'))} min",
        f"CD: {_esc(row.get('cd_code'))}",
    ])


def _unit_label(row: dict[str, Any]) -> str:
    address = row.get("address")
    address = address if isinstance(address, str) and address else str(row.get("unit_id"))
    return f"{address} · CD {row.get('cd_code')}"


def _title_html(title: str) -> str:
    return (
        '<div style="position:fixed;top:10px;left:50%;transform:translateX(-50%);'
        "z-index:1000;background:rgba(255,255,255,0.9);padding:4px 12px;"
        'border:1px solid #888;border-radius:4px;font:bold 16px sans-serif;">'
        f"{html.escape(title)}</div>"
    )


def _swatches(palette: Sequence[str], css: str) -> str:
    return "".join(
        f'<span style="display:inline-block;{css.format(colour=c)}margin-right:1px;'
        'vertical-align:middle;"></span>'
        for c in palette[:4]
    )


def _legend_html(note: str) -> str:
    rows = [
        ('<span style="display:inline-block;width:22px;border-top:2px dashed #444444;'
         'vertical-align:middle;"></span>', "Settlement boundary"),
        (_swatches(RD_PALETTE, "width:10px;border-top:2.5px dashed {colour};"),
         "Registration district (RD) boundary"),
        ('<span style="display:inline-block;width:10px;height:10px;'
         f'border:3px solid {RD_PALETTE[0]};border-radius:50%;background:#fff;"></span>',
         "Registration point (in its RD's colour)"),
        (_swatches(ID_PALETTE, "width:10px;border-top:4px solid {colour};"),
         "Instructor district (ID) boundary"),
        (_swatches(CD_PALETTE, "width:10px;height:10px;background:{colour};"),
         "Counting district (CD)"),
        ('<span style="display:inline-block;width:6px;height:6px;border-radius:50%;'
         'background:#222;"></span>', "Address unit (off at start)"),
    ]
    body = "".join(
        f'<div style="margin:2px 0;"><span style="display:inline-block;width:46px;">{sym}</span>'
        f"{html.escape(text)}</div>"
        for sym, text in rows
    )
    body += ('<div style="margin-top:4px;color:#555;">Colours only tell neighbouring '
             "districts apart.</div>")
    if note:
        body += f'<div style="margin-top:4px;color:#b00020;">{html.escape(note)}</div>'
    body += ('<div style="margin-top:4px;color:#555;">Hover a district for its figures, '
             "click for a popup; search by address or code at the top left.</div>")
    return (
        '<div class="map-legend" style="position:fixed;bottom:56px;left:10px;z-index:1000;'
        "background:rgba(255,255,255,0.92);padding:6px 10px;border:1px solid #888;"
        'border-radius:4px;font:12px sans-serif;max-width:320px;">'
        f'<details open><summary style="cursor:pointer;font-weight:bold;">Legend</summary>'
        f"{body}</details></div>"
    )


def assign_sequential_ids(root: Element) -> None:
    """Replace folium's random element ids by sequential ones, depth first."""
    counter = itertools.count()

    def visit(element: Element) -> None:
        element._id = f"{next(counter):06d}"
        for child in list(element._children.values()):
            visit(child)

    visit(root)
