"""Issue 3 measurements on the shared OSM extracts: import, unit graph, barriers, plan check.

For each file in ../shared/data/osm: units imported, parts cut off by barriers and how
they were handled, unit-graph build time, edges crossing a barrier with and without a
crossing nearby, and the plan's check. Writes benchmarks/results/osm_import.json.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from record import save

from districting.check import check_plan
from districting.config import Config
from districting.errors import DistrictingError
from districting.graph import barrier_geometries, build_settlement_graph
from districting.io.osm import register_from_osm, write_osm_register
from districting.io.register import read_register
from districting.outputs.bundle import write_plan
from districting.pipeline import _street_network, plan_from_file
from districting.units import settlement_polygons, units_from_register

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "osm"


def crossing_counts(edges: gpd.GeoDataFrame, register: Path, radius: float) -> dict[str, int]:
    """Plan edges that cross a barrier, near a crossing or away from one, by edge kind."""
    barriers = gpd.read_file(register, layer="barriers").to_crs(edges.crs)
    crossings = gpd.read_file(register, layer="crossings").to_crs(edges.crs)
    lines = barriers.geometry.to_numpy()
    lines = np.where(np.isin(shapely.get_type_id(lines), (3, 6)), shapely.boundary(lines), lines)
    seg, bar = shapely.STRtree(lines).query(edges.geometry.to_numpy(), predicate="intersects")
    hits = shapely.intersection(edges.geometry.to_numpy()[seg], lines[bar])
    near = shapely.distance(hits, crossings.geometry.union_all()) <= radius
    kinds = edges["kind"].to_numpy()
    near_edges, away_edges = np.unique(seg[near]), np.setdiff1d(np.unique(seg[~near]),
                                                                  np.unique(seg[near]))
    return {
        "with_crossing": len(near_edges),
        "without_crossing_unflagged": int((kinds[away_edges] == "adjacent").sum()),
        "without_crossing_flagged": int((kinds[away_edges] == "bridged").sum()),
    }


def measure(path: Path, workdir: Path) -> dict[str, object]:
    config = Config()
    start = time.perf_counter()
    register = register_from_osm(path, settlement_name=path.name.split(".")[0])
    register_path = write_osm_register(register, workdir / "register.gpkg")
    import_seconds = time.perf_counter() - start
    raw = read_register(register_path)
    units = units_from_register(raw, config=config)
    polygons = settlement_polygons(units, raw.settlements, margin_m=150)
    bars, cross = barrier_geometries(raw.layers.get("barriers"), raw.layers.get("crossings"),
                                     units.crs)
    network = _street_network(raw, units.crs)
    start = time.perf_counter()
    graph = build_settlement_graph(
        str(polygons["settlement_id"].iloc[0]), np.arange(len(units)),
        units.geometry.to_numpy(), units["residents"].to_numpy(), polygons.geometry.iloc[0],
        barriers=bars, crossings=cross, crossing_radius_m=config.graph.crossing_radius_m,
        network=network,
    )
    graph_seconds = time.perf_counter() - start
    measured: dict[str, object] = {
        "file": path.name,
        "buildings": len(register.buildings),
        "units": len(units),
        "addresses": {k: register.report[f"address_{k}"] for k in ("tag", "node", "derived")},
        "estimated_residents": register.report["estimated_residents"],
        "barriers": register.report["barriers"], "crossings": register.report["crossings"],
        "import_seconds": round(import_seconds, 2),
        "graph_build_seconds": round(graph_seconds, 2),
        "graph_edges": len(graph.edges), "edges_cut_by_barriers": graph.cut_by_barrier,
    }
    try:
        result, _ = plan_from_file(register_path, config=config, progress=False)
    except DistrictingError as error:  # e.g. an extract of non-residential buildings only
        return {**measured, "plan": f"refused: {error}"}
    write_plan(result, workdir / "plan", title=path.name, config=config)
    report = check_plan(workdir / "plan")
    # the written layer: the one in memory has no lines (they are drawn as it is written)
    edges = gpd.read_file(workdir / "plan" / "plan.gpkg", layer="unit_adjacency")
    return {
        **measured,
        "parts_cut_off": result.summary["settlements"][0]["parts_bridged"],
        "counting_districts": len(result.layers.counting_districts),
        "bound_exceptions": result.summary["bound_exceptions"],
        "barrier_edges": crossing_counts(edges, register_path, config.graph.crossing_radius_m),
        "check": "OK" if report.ok else [str(v) for v in report.violations],
    }


def main() -> None:
    if not SHARED.exists():
        print(f"{SHARED} is absent; nothing to measure")
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted(SHARED.glob("*.osm*")):
            workdir = Path(tmp) / path.name.split(".")[0]
            workdir.mkdir()
            results.append(measure(path, workdir))
    for r in results:
        print(json.dumps(r, ensure_ascii=False, indent=1))
    save("osm_import", {"machine": {"nproc": os.cpu_count()}, "results": results})


if __name__ == "__main__":
    main()
