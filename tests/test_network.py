"""Walking distances along streets, and walking tours."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from districting.errors import InputFileError
from districting.network import street_network_from_layers, tour_length, walking_tour

CRS = "EPSG:32641"


def street_layers(
    nodes: dict[int, tuple[float, float]], edges: list[tuple[int, int]]
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """osmnx-style layers, both directions of every street."""
    node_frame = gpd.GeoDataFrame(
        {"osmid": list(nodes), "x": [p[0] for p in nodes.values()],
         "y": [p[1] for p in nodes.values()]},
        geometry=[shapely.Point(p) for p in nodes.values()], crs=CRS,
    )
    rows = [(a, b) for a, b in edges] + [(b, a) for a, b in edges]
    edge_frame = gpd.GeoDataFrame(
        {"u": [a for a, _ in rows], "v": [b for _, b in rows], "key": 0},
        geometry=[shapely.LineString([nodes[a], nodes[b]]) for a, b in rows], crs=CRS,
    )
    return node_frame, edge_frame


def river_town():
    """Two parallel streets 100 m apart (a river between them) joined by one bridge at x=500."""
    nodes = {1: (0, 0), 2: (500, 0), 3: (1000, 0), 4: (0, 100), 5: (500, 100), 6: (1000, 100)}
    edges = [(1, 2), (2, 3), (4, 5), (5, 6), (2, 5)]
    return street_network_from_layers(*street_layers(nodes, edges), crs=CRS)


def test_points_on_one_street_walk_along_it() -> None:
    network = river_town()
    walk = network.walking_distances(np.array([[100.0, -10.0]]), np.array([[300.0, -20.0]]))
    assert walk[0] == pytest.approx(10 + 200 + 20)


def test_the_walk_across_the_river_goes_by_the_bridge() -> None:
    network = river_town()
    walk = network.walking_distances(np.array([[0.0, -5.0]]), np.array([[0.0, 105.0]]))
    assert walk[0] == pytest.approx(5 + 500 + 100 + 500 + 5)


def test_unconnected_streets_give_infinite_walks() -> None:
    nodes = {1: (0, 0), 2: (100, 0), 3: (0, 500), 4: (100, 500)}
    network = street_network_from_layers(*street_layers(nodes, [(1, 2), (3, 4)]), crs=CRS)
    assert np.isinf(network.walking_distances(np.array([[50.0, 1.0]]),
                                              np.array([[50.0, 499.0]]))[0])


def test_distance_matrix_is_symmetric_and_matches_pairwise_walks() -> None:
    network = river_town()
    xy = np.array([[100.0, -10.0], [800.0, 10.0], [200.0, 110.0], [900.0, 95.0]])
    matrix = network.distance_matrix(xy)
    assert np.allclose(matrix, matrix.T)
    assert np.allclose(np.diag(matrix), 0)
    pairwise = network.walking_distances(xy[[0, 0, 1]], xy[[1, 2, 3]])
    assert matrix[0, 1] >= pairwise[0] - 1e-6  # node snapping never beats segment snapping


def test_walking_tour_visits_every_point_once_and_beats_a_zigzag() -> None:
    xs = np.array([0.0, 400.0, 100.0, 300.0, 200.0])
    matrix = np.abs(xs[:, None] - xs[None, :])
    order, length = walking_tour(matrix)
    assert sorted(order.tolist()) == list(range(5))
    assert length == pytest.approx(400.0)
    assert length < tour_length(matrix, np.arange(5))


def test_layers_without_ids_are_refused() -> None:
    nodes, edges = street_layers({1: (0, 0), 2: (1, 0)}, [(1, 2)])
    with pytest.raises(InputFileError, match="street_edges"):
        street_network_from_layers(nodes, edges.drop(columns="u"), crs=CRS)


def test_walks_to_a_few_points_agree_with_walks_among_all() -> None:
    from districting.network import Walks

    network = river_town()
    xy = np.array([[100.0, -10.0], [800.0, 10.0], [200.0, 110.0], [900.0, 95.0],
                   [110.0, -5.0]])  # the last is beside the first, at the same street node
    walks = Walks(xy, network)
    among = walks.among(np.arange(5))
    between = walks.between(np.arange(5), np.array([0, 3]))
    assert np.allclose(between, among[:, [0, 3]])
    assert between[4, 0] == pytest.approx(np.hypot(10, 5))  # straight across, not via the node
    length, share = walks.tour(np.array([0, 1, 3]))
    assert share.sum() == pytest.approx(length)


def reference_walking_tour(matrix: np.ndarray, start: int = 0) -> list[int]:
    """The plain nearest neighbour + 2-opt that the compiled walking tour must match."""
    n = len(matrix)
    order = [start]
    left = set(range(n)) - {start}
    while left:
        here = order[-1]
        nxt = min(left, key=lambda j: (matrix[here, j], j))
        order.append(nxt)
        left.remove(nxt)
    tour = np.array(order)
    improved = True
    while improved:
        improved = False
        for i in range(1, n - 1):
            for j in range(i + 1, n):
                a, b, c = tour[i - 1], tour[i], tour[j]
                d = tour[j + 1] if j + 1 < n else None
                before = matrix[a, b] + (matrix[c, d] if d is not None else 0.0)
                after = matrix[a, c] + (matrix[b, d] if d is not None else 0.0)
                if after < before - 1e-9:
                    tour[i:j + 1] = tour[i:j + 1][::-1]
                    improved = True
    return tour.tolist()


@pytest.mark.parametrize("n", [2, 3, 9, 60, 150])
def test_the_compiled_tour_is_the_plain_algorithms_tour(n: int) -> None:
    rng = np.random.default_rng(n)
    for rounding in (None, -1):  # exact distances, and rounded ones with many ties
        xy = rng.uniform(0, 1000, size=(n, 2))
        matrix = np.linalg.norm(xy[:, None] - xy[None, :], axis=2)
        if rounding is not None:
            matrix = np.round(matrix, rounding)
        order, length = walking_tour(matrix)
        assert order.tolist() == reference_walking_tour(matrix)
        assert length == pytest.approx(tour_length(matrix, order))
