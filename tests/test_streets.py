"""Tests of the street-graph readers (districting.streets) on the synthetic register."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import networkx as nx
import pytest

from districting.errors import InputFileError
from districting.streets import read_street_graph, street_graph_from_gdfs
from districting.synth import SyntheticRegister, synthesize_baikonur, write_register

CITY = "431010000"


@pytest.fixture(scope="module")
def register() -> SyntheticRegister:
    return synthesize_baikonur(seed=5, scale=0.05)


@pytest.fixture(scope="module")
def gpkg(register: SyntheticRegister, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_register(register, tmp_path_factory.mktemp("streets") / "register.gpkg")


def test_read_street_graph(gpkg: Path, register: SyntheticRegister) -> None:
    graph = read_street_graph(gpkg)
    assert isinstance(graph, nx.MultiDiGraph)
    assert graph.graph["crs"] is not None
    assert graph.graph["crs"].to_epsg() == 4326
    assert graph.number_of_nodes() == len(register.street_nodes)
    assert graph.number_of_edges() == len(register.street_edges)
    for _, data in graph.nodes(data=True):
        assert isinstance(data["x"], float) and isinstance(data["y"], float)
        assert 62.5 < data["x"] < 64.0 and 45.0 < data["y"] < 46.5
    for u, v, data in graph.edges(data=True):
        assert data["length"] > 0
        assert data["oneway"] is False or data["oneway"] == 0
        assert graph.has_edge(v, u)  # every street is two-way
    assert nx.is_weakly_connected(graph)
    city = [n for n, d in graph.nodes(data=True) if d["settlement_id"] == CITY]
    assert len(city) > 4
    assert nx.is_weakly_connected(graph.subgraph(city))


def test_graph_from_indexed_gdfs(register: SyntheticRegister) -> None:
    nodes, edges = register.street_nodes, register.street_edges
    assert nodes.index.name == "osmid"
    assert list(edges.index.names) == ["u", "v", "key"]
    assert edges.index.is_unique
    assert set(edges["highway"]) >= {"primary", "residential"}
    graph = street_graph_from_gdfs(nodes, edges)
    assert graph.number_of_edges() == len(edges)
    assert all(isinstance(n, int) for n in graph.nodes)


def test_edge_lengths_match_geometry(register: SyntheticRegister) -> None:
    edges = register.street_edges.to_crs("EPSG:32641")
    ratio = edges["length"] / edges.geometry.length
    assert ratio.between(0.99, 1.01).all()


def test_read_street_graph_errors(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="not found"):
        read_street_graph(tmp_path / "missing.gpkg")
    other = tmp_path / "other.gpkg"
    gpd.GeoDataFrame({"a": [1]}, geometry=gpd.points_from_xy([0], [0]), crs=4326).to_file(
        other, layer="buildings"
    )
    with pytest.raises(InputFileError, match="street_nodes"):
        read_street_graph(other)
