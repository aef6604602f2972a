"""B2/B3: our heuristic against GerryChain, pymetis and spopt on the same graphs and bounds.

Each method runs in its own process (so peak memory is its own, and a timeout can
stop it) on the same instance. The parent then checks each labelling from scratch:
contiguity violations (parts not connected), bound violations (parts outside
``[lower, upper]``), cut edges and, where the optimum is published, the excess over it.

Instances: every graph of ``../shared/data/graphs/optima.csv``; ``ar_blockgroups_2020`` at
k = 20 and k = 100 with ±2%; synthetic city graphs of 10k, 15k (k = 400), 50k and 200k
units (and 500k, beyond the targets) with about 50 units per part and ±10%. spopt's
MaxPHeuristic runs only up to 2,000 units, and chooses its own number of parts (it has no
ceiling).

Usage: ``python benchmarks/heuristic.py [--only NAME] [--methods ours,gerrychain,...]
[--timeout S]``. Needs the ``bench`` extra for the peers. Writes
benchmarks/results/heuristic.txt and .json.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from record import save
from scipy.sparse.csgraph import connected_components
from scipy.spatial import Delaunay

ROOT = Path(__file__).resolve().parents[1]
GRAPHS = ROOT.parent / "shared" / "data" / "graphs"
METHODS = ("ours", "gerrychain", "pymetis", "spopt")
SPOPT_MAX_UNITS = 2000


@dataclass
class Instance:
    name: str
    edges: np.ndarray
    weights: np.ndarray
    xy: np.ndarray
    k: int
    lower: float
    upper: float
    optimum: int | None = None


def _from_file(path: Path, weight: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from districting.io.graphs import read_graph
    from districting.partition import graph_arrays

    graph = read_graph(path)
    nodes, weights, edges = graph_arrays(graph, weight)
    xy = np.array([[float(graph.nodes[v].get("C_X", 0.0)), float(graph.nodes[v].get("C_Y", 0.0))]
                   for v in nodes])
    return edges, weights, xy


def synthetic_city(units: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A planar city graph: dense blocks around a few centres, sparser outskirts."""
    rng = np.random.default_rng(seed)
    centres = rng.random((8, 2)) * 10_000
    near = rng.integers(0, len(centres), units)
    spread = rng.choice([300.0, 800.0, 2000.0], units, p=[0.5, 0.3, 0.2])
    xy = centres[near] + rng.normal(0.0, 1.0, (units, 2)) * spread[:, None]
    xy += rng.random((units, 2))  # no duplicate points
    triangles = Delaunay(xy).simplices
    pairs = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [0, 2]]])
    edges = np.unique(np.sort(pairs, axis=1), axis=0).astype(np.int64)
    weights = np.round(rng.lognormal(3.0, 1.0, units)).clip(1, 600)
    return edges, weights, xy


def instances(only: str) -> list[Instance]:
    found: list[Instance] = []
    if GRAPHS.exists():
        with (GRAPHS / "optima.csv").open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                edges, weights, xy = _from_file(GRAPHS / row["file"], "TOTPOP")
                found.append(Instance(row["file"], edges, weights, xy, int(row["k"]),
                                      float(row["lower"]), float(row["upper"]),
                                      int(row["optimal_cut_edges"])))
        edges, weights, xy = _from_file(GRAPHS / "ar_blockgroups_2020.json.gz",
                                                 "tot_pop_20")
        for k in (20, 100):
            mean = weights.sum() / k
            found.append(Instance(f"ar_blockgroups k={k} ±2%", edges, weights, xy, k,
                                  0.98 * mean, 1.02 * mean))
    for units, k in ((10_000, 200), (15_000, 400), (50_000, 1000), (200_000, 4000),
                     (500_000, 10_000)):
        edges, weights, xy = synthetic_city(units, seed=units)
        mean = weights.sum() / k
        found.append(Instance(f"city {units // 1000}k k={k} ±10%", edges, weights, xy, k,
                              0.9 * mean, 1.1 * mean))
    return [case for case in found if only in case.name]


# --------------------------------------------------------------------------- methods


def _ours(case: Instance, seed: int, timeout: float) -> tuple[np.ndarray | None, str]:
    from districting.partition import partition_arrays

    # B2 allows 10 s per optima instance, B3 30 s for the largest city.
    limit = min(timeout, 10.0 if case.optimum is not None else 30.0)
    plan = partition_arrays(case.edges, case.weights, case.k, lower=case.lower,
                            upper=case.upper, method="heuristic", time_limit=limit, seed=seed)
    note = plan.status + (" (time limit reached)" if plan.timed_out else "")
    return plan.labels, note


def _gerrychain(case: Instance, seed: int, timeout: float) -> tuple[np.ndarray | None, str]:
    import networkx as nx
    from gerrychain import Graph
    from gerrychain.partition import recursive_tree_part

    graph = nx.Graph()
    graph.add_nodes_from((i, {"pop": float(w)}) for i, w in enumerate(case.weights))
    graph.add_edges_from(case.edges.tolist())
    target = float(case.weights.sum()) / case.k
    epsilon = min(target - case.lower, case.upper - target) / target
    try:
        parts = recursive_tree_part(Graph.from_networkx(graph), range(case.k), target, "pop",
                                    epsilon, rng=seed)
    except RuntimeError as exc:
        return None, f"failed: {str(exc)[:60]}"
    return np.array([parts[i] for i in range(len(case.weights))], dtype=np.int64), "done"


def _pymetis(case: Instance, seed: int, timeout: float) -> tuple[np.ndarray | None, str]:
    import pymetis

    n = len(case.weights)
    adjacency = sp.csr_matrix((np.ones(2 * len(case.edges)),
                               (np.r_[case.edges[:, 0], case.edges[:, 1]],
                                np.r_[case.edges[:, 1], case.edges[:, 0]])), shape=(n, n))
    target = float(case.weights.sum()) / case.k
    tolerance = min(target - case.lower, case.upper - target) / target
    options = pymetis.Options(seed=seed, contig=True, ufactor=max(1, int(tolerance * 1000)))
    _, membership = pymetis.part_graph(case.k, xadj=adjacency.indptr, adjncy=adjacency.indices,
                                       vweights=np.round(case.weights).astype(np.int64),
                                       options=options)
    return np.array(membership, dtype=np.int64), "done"


def _spopt(case: Instance, seed: int, timeout: float) -> tuple[np.ndarray | None, str]:
    import geopandas as gpd
    from libpysal.weights import W
    from spopt.region import MaxPHeuristic

    if len(case.weights) > SPOPT_MAX_UNITS:
        return None, f"skipped (> {SPOPT_MAX_UNITS} units)"
    np.random.seed(seed)
    neighbours: dict[int, list[int]] = {i: [] for i in range(len(case.weights))}
    for u, v in case.edges.tolist():
        neighbours[u].append(v)
        neighbours[v].append(u)
    frame = gpd.GeoDataFrame({"w": case.weights, "attr": case.xy[:, 0]},
                             geometry=gpd.points_from_xy(case.xy[:, 0], case.xy[:, 1]))
    model = MaxPHeuristic(frame, W(neighbours, silence_warnings=True), ["attr"], "w",
                          case.lower, top_n=2)
    model.solve()
    return np.asarray(model.labels_, dtype=np.int64), f"p={model.p}"


RUNNERS = {"ours": _ours, "gerrychain": _gerrychain, "pymetis": _pymetis, "spopt": _spopt}


def _child(method: str, case: Instance, seed: int, timeout: float, queue: Any) -> None:
    start = time.monotonic()
    try:
        labels, note = RUNNERS[method](case, seed, timeout)
    except Exception as exc:  # a peer's failure is a result, not a crash of the benchmark
        labels, note = None, f"error: {type(exc).__name__}: {str(exc)[:60]}"
    seconds = time.monotonic() - start
    queue.put((labels, note, seconds, _peak_mb()))


def _peak_mb() -> float:
    """This process's peak resident memory, in MB.

    ``VmHWM`` starts afresh when a process image is loaded; ``ru_maxrss`` would carry
    over the parent's peak from before the spawn.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(method: str, case: Instance, seed: int, timeout: float) -> dict[str, Any]:
    """One method on one instance in a fresh process.

    ``seconds`` is the method's own call; ``command_seconds`` the whole command, from
    starting the process (interpreter, imports, receiving the graph) to its answer.
    """
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(method, case, seed, timeout, queue))
    launched = time.monotonic()
    process.start()
    try:
        labels, note, seconds, peak_mb = queue.get(timeout=timeout + 30)
    except Exception:
        process.kill()
        process.join()
        return {"method": method, "note": f"timeout after {timeout + 30:.0f} s"}
    command = time.monotonic() - launched
    process.join()
    record: dict[str, Any] = {"method": method, "note": note, "seconds": round(seconds, 2),
                              "command_seconds": round(command, 2),
                              "peak_mb": round(peak_mb)}
    if labels is not None:
        record.update(_quality(case, labels))
    return record


def _quality(case: Instance, labels: np.ndarray) -> dict[str, Any]:
    n = len(case.weights)
    crossing = labels[case.edges[:, 0]] != labels[case.edges[:, 1]]
    parts = np.unique(labels)
    totals = np.bincount(labels, weights=case.weights)[parts]
    inside = case.edges[~crossing]
    graph = sp.csr_matrix((np.ones(len(inside)), (inside[:, 0], inside[:, 1])), shape=(n, n))
    pieces, _ = connected_components(graph, directed=False)
    cut = int(crossing.sum())
    outside = int(((totals < case.lower - 1e-6) | (totals > case.upper + 1e-6)).sum())
    valid = outside == 0 and pieces == len(parts) == case.k
    return {
        "parts": len(parts), "cut_edges": cut,
        "contiguity_violations": int(pieces - len(parts)),
        "bound_violations": outside,
        # Only a valid plan is compared with the optimum.
        "excess_over_optimum": (round((cut - case.optimum) / case.optimum, 4)
                                if valid and case.optimum is not None else None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default="", help="substring of the instance names to run")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    header = (f"{'instance':32} {'n':>7} {'k':>5} {'method':>10} {'sec':>7} {'cmd s':>7} "
              f"{'MB':>6} {'cut':>7} {'excess':>7} {'disc':>5} {'bound':>5} note")
    table = [f"machine: {os.cpu_count()} cores; timeout {args.timeout:.0f} s per run", header]
    print("\n".join(table), flush=True)
    results = []
    for case in instances(args.only):
        for method in methods:
            record = {"instance": case.name, "n": len(case.weights), "k": case.k,
                      **run(method, case, args.seed, args.timeout)}
            results.append(record)
            excess = record.get("excess_over_optimum")
            line = (f"{case.name:32} {record['n']:>7} {case.k:>5} {method:>10} "
                    f"{record.get('seconds', '-'):>7} {record.get('command_seconds', '-'):>7} "
                    f"{record.get('peak_mb', '-'):>6} "
                    f"{record.get('cut_edges', '-'):>7} "
                    f"{'-' if excess is None else f'{excess:.1%}':>7} "
                    f"{record.get('contiguity_violations', '-'):>5} "
                    f"{record.get('bound_violations', '-'):>5} {record['note']}")
            table.append(line)
            print(line, flush=True)
    written = save("heuristic", results, table)
    print(f"wrote {written} and {written.with_suffix('.txt')}")


if __name__ == "__main__":
    main()
