"""The unit graph: tiles cover the settlement, edges join touching tiles, barriers cut."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from scipy.sparse.csgraph import connected_components

from districting.graph import build_settlement_graph, voronoi_tiles


def grid_points(nx: int, ny: int, spacing: float = 50.0) -> np.ndarray:
    xs, ys = np.meshgrid(np.arange(nx) * spacing, np.arange(ny) * spacing)
    return shapely.points(np.c_[xs.ravel(), ys.ravel()])


def build(points: np.ndarray, polygon: shapely.Geometry, **kwargs: object):
    options = {"barriers": np.empty(0, dtype=object), "crossings": np.empty(0, dtype=object),
               "crossing_radius_m": 60.0}
    options.update(kwargs)
    return build_settlement_graph("1", np.arange(len(points)), points,
                                  np.ones(len(points), dtype=int), polygon, **options)


def test_tiles_cover_the_polygon_without_overlap_and_hold_their_unit() -> None:
    points = grid_points(6, 5)
    polygon = shapely.box(-100, -100, 350, 300)
    tiles = voronoi_tiles(points, polygon)
    assert len(tiles) == len(points)
    assert np.isclose(shapely.area(tiles).sum(), polygon.area)
    assert np.isclose(shapely.union_all(tiles).area, polygon.area)
    assert shapely.covers(tiles, points).all()


def test_non_convex_settlement_still_gives_one_piece_per_tile() -> None:
    points = grid_points(8, 8, spacing=40.0)
    polygon = shapely.box(-50, -50, 330, 330).difference(shapely.box(100, 150, 400, 170))
    inside = shapely.covers(polygon, points)
    tiles = voronoi_tiles(points[inside], polygon)
    assert (shapely.get_num_geometries(tiles) == 1).all()
    assert np.isclose(shapely.area(tiles).sum(), polygon.area)


def test_edges_join_only_tiles_that_share_a_border() -> None:
    graph = build(grid_points(5, 4), shapely.box(-100, -100, 300, 250))
    borders = shapely.intersection(shapely.boundary(graph.tiles[graph.edges[:, 0]]),
                                   shapely.boundary(graph.tiles[graph.edges[:, 1]]))
    assert (shapely.length(borders) > 0).all()
    assert connected_components(graph.adjacency(), directed=False)[0] == 1
    assert (graph.edge_kind == "adjacent").all()


def test_a_river_cuts_edges_and_the_far_bank_is_bridged_and_reported() -> None:
    points = grid_points(6, 6)
    river = shapely.LineString([(-100, 120), (400, 130)])
    graph = build(points, shapely.box(-100, -100, 350, 350),
                  barriers=np.array([river], dtype=object))
    assert graph.cut_by_barrier > 0
    assert (graph.edge_kind == "bridged").sum() == 1
    assert len(graph.components) == 1 and graph.components[0].size == 18
    assert connected_components(graph.adjacency(), directed=False)[0] == 1


def test_a_crossing_keeps_the_edges_near_it() -> None:
    points = grid_points(6, 6)
    river = shapely.LineString([(-100, 125), (400, 125)])
    bridge = shapely.Point(125, 125)
    graph = build(points, shapely.box(-100, -100, 350, 350),
                  barriers=np.array([river], dtype=object),
                  crossings=np.array([bridge], dtype=object))
    assert graph.cut_by_barrier > 0
    assert not graph.components and (graph.edge_kind == "adjacent").all()
    assert connected_components(graph.adjacency(), directed=False)[0] == 1


def test_coincident_units_get_their_own_tiles() -> None:
    points = shapely.points([(0, 0), (0, 0), (100, 0), (0, 100)])
    graph = build(points, shapely.box(-50, -50, 150, 150))
    assert len(graph.tiles) == 4 and (shapely.area(graph.tiles) > 0).all()


def test_with_a_street_network_edges_carry_walking_distances() -> None:
    from test_network import river_town

    points = shapely.points([(100, -10), (300, -10), (100, 110), (300, 110)])
    graph = build(points, shapely.box(0, -100, 400, 200), network=river_town())
    straight = np.linalg.norm(
        shapely.get_coordinates(points)[graph.edges[:, 0]]
        - shapely.get_coordinates(points)[graph.edges[:, 1]], axis=1)
    assert (graph.lengths >= straight - 0.01).all()
    across = [i for i, (u, v) in enumerate(graph.edges.tolist()) if {u, v} == {0, 2}]
    assert across and graph.lengths[across[0]] == pytest.approx(10 + 400 + 100 + 400 + 10)


def test_a_long_detour_on_the_streets_cuts_the_edge() -> None:
    from test_network import river_town

    # Units on both streets, far from the only bridge at x=500: no barrier layer at all.
    points = shapely.points([(0, -10), (1000, -10), (0, 110), (1000, 110)])
    polygon = shapely.box(-100, -100, 1100, 200)
    plain = build(points, polygon, network=river_town())
    strict = build(points, polygon, network=river_town(), max_detour=3.0, detour_slack_m=100.0)
    assert strict.cut_by_detour > 0 and plain.cut_by_detour == 0
    across = {frozenset(e) for e in strict.edges[strict.edge_kind == "adjacent"].tolist()}
    assert frozenset((0, 2)) not in across and frozenset((1, 3)) not in across
    assert frozenset((0, 2)) in {frozenset(e) for e in plain.edges.tolist()}


def test_tiles_merge_by_coverage_union_and_overlaps_by_a_full_union() -> None:
    from districting.territory import merge

    rng = np.random.default_rng(5)
    polygon = shapely.Polygon([(0, 0), (400, 0), (400, 300), (150, 380), (0, 300)])
    tiles = voronoi_tiles(rng.uniform((10, 10), (390, 290), size=(300, 2)), polygon)
    merged = merge(tiles)
    assert merged.geom_type == "Polygon" and merged.is_valid
    assert shapely.symmetric_difference(merged, polygon).area < 1e-6
    assert shapely.symmetric_difference(merged, shapely.union_all(tiles)).area < 1e-6
    # Overlapping squares are no coverage: their coverage union would count the overlap
    # twice, so the full union is made.
    squares = np.array([shapely.box(0, 0, 10, 10), shapely.box(5, 5, 15, 15)])
    assert merge(squares).area == pytest.approx(175.0)
    assert merge(squares).is_valid
