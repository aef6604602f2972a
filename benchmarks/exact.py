"""B1: the exact core against the proven optima of ../shared/data/graphs/optima.csv.

For each instance: objective, bound, gap, seconds, the published optimum and seconds,
and an independent check of the plan. An objective below the published optimum is a
bug and is flagged. Usage: ``python benchmarks/exact.py [--time-limit S] [--only NAME]``.
Writes the table to benchmarks/results/exact-MODEL.txt and the details (with each
solve's log) to benchmarks/results/exact-MODEL.json.
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

from record import save

from districting.io.graphs import read_graph
from districting.partition import partition, verify_assignment

ROOT = Path(__file__).resolve().parents[1]
GRAPHS = ROOT.parent / "shared" / "data" / "graphs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--time-limit", type=float, default=300.0,
                        help="seconds per county instance (B1: 300)")
    parser.add_argument("--tract-time-limit", type=float, default=600.0,
                        help="seconds per tract instance (B1: 600 for ID tract)")
    parser.add_argument("--only", default="", help="substring of the file names to run")
    parser.add_argument("--solver", default="highs", choices=["highs", "cbc"])
    parser.add_argument("--model", default="labelled", choices=["labelled", "rooted"])
    args = parser.parse_args()
    if not GRAPHS.exists():
        print(f"{GRAPHS} is absent; nothing to measure")
        return
    with (GRAPHS / "optima.csv").open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if args.only in r["file"]]
    print(f"machine: {os.cpu_count()} cores; time limit {args.time_limit:.0f} s per county, "
          f"{args.tract_time_limit:.0f} s per tract; "
          f"solver {args.solver}; model {args.model}")
    header = (f"{'instance':28} {'n':>4} {'k':>2} {'status':>10} {'obj':>5} {'bound':>7} "
              f"{'gap':>7} {'sec':>7} {'opt':>4} {'pub s':>7} check")
    print(header)
    table = [header]
    results = []
    for row in rows:
        graph = read_graph(GRAPHS / row["file"])
        k, lower, upper = int(row["k"]), float(row["lower"]), float(row["upper"])
        limit = args.tract_time_limit if row["level"] == "tract" else args.time_limit
        plan = partition(graph, k, weight="TOTPOP", lower=lower, upper=upper, method="ilp",
                         time_limit=limit, solver=args.solver,
                         exact_model=args.model)
        problems = (verify_assignment(graph, plan.assignment, k=k, weight="TOTPOP",
                                      lower=lower, upper=upper) if plan.assignment else [])
        optimum = int(row["optimal_cut_edges"])
        below = plan.objective is not None and plan.objective < optimum
        check = "BUG: below optimum" if below else ("ok" if not problems else "; ".join(problems))
        if not plan.assignment:
            check = "no plan"
        record = {
            "instance": row["file"], "nodes": graph.number_of_nodes(), "k": k,
            "status": plan.status, "objective": plan.objective, "bound": plan.bound,
            "gap": plan.gap, "seconds": round(plan.seconds, 2), "published_optimum": optimum,
            "published_seconds": float(row["best_published_seconds"]), "check": check,
            "log": plan.log,
        }
        results.append(record)
        bound = "-" if plan.bound is None else f"{plan.bound:.1f}"
        gap = "-" if plan.gap is None else f"{plan.gap:.1%}"
        objective = "-" if plan.objective is None else f"{plan.objective:g}"
        line = (f"{row['file']:28} {record['nodes']:>4} {k:>2} {plan.status:>10} "
                f"{objective:>5} {bound:>7} {gap:>7} {plan.seconds:>7.1f} {optimum:>4} "
                f"{record['published_seconds']:>7.2f} {check}")
        table.append(line)
        print(line, flush=True)
    summary = {"machine": {"nproc": os.cpu_count()}, "time_limit": args.time_limit,
               "tract_time_limit": args.tract_time_limit,
               "model": args.model, "solver": args.solver, "results": results}
    written = save(f"exact-{args.model}", summary, table)
    print(f"wrote {written} and {written.with_suffix('.txt')}")


if __name__ == "__main__":
    main()
