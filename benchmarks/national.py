"""B5: the national plan, and its scaling with local Dask workers on a regional subset.

Each run is the real command line, ``districting plan COUNTRY.gpkg --workers N``, on a
synthetic country from ``districting synth --country --residents R``, timed from outside
with the peak memory of the whole process tree (the command and its Dask workers,
sampled every 0.2 s). The seconds of each stage come from the command's own log
(``districting.timing`` lines), kept in ``results/national-R-N.log``: the planning stage
is the part that runs on the Dask workers (``--workers 1`` plans in the command's own
process), the rest is reading, checking and writing the outputs. Speed-ups are given end
to end and for the planning stage alone. Each run's ``plan.gpkg`` is hashed: the plan
must be the same bytes with any number of workers.

    python benchmarks/national.py                 # scaling: 1, 2, 4 workers on a region of
                                                  # 1,920,000 residents (a tenth of the country)
    python benchmarks/national.py --residents 200000                   # a small region
    python benchmarks/national.py --residents 19200000 --workers 2     # the whole country

Writes ``benchmarks/results/national-RESIDENTS.json`` and ``.txt``, one pair per size.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from demo import machine
from record import RESULTS, save

ROOT = Path(__file__).resolve().parents[1]
#: BENCHMARKS.md B5: the whole country in 20 minutes with 8 GB on 2 cores; a tenth in 2.
TARGETS = {19_200_000: (1200.0, 8.0), 1_920_000: (120.0, 8.0)}


def tree_rss(process: psutil.Process) -> int:
    """Resident memory of a process and all its descendants, in bytes."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
    return total


def timed(command: list[str], log: Path | None = None) -> tuple[float, int, int]:
    """Wall seconds, peak tree memory (bytes) and exit code of a command; its error
    output goes to ``log`` (discarded when ``None``)."""
    start = time.perf_counter()
    with open(log if log is not None else os.devnull, "wb") as errors:
        child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=errors)
        watched = psutil.Process(child.pid)
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                with contextlib.suppress(psutil.Error):
                    peak = max(peak, tree_rss(watched))
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = child.wait()
        done.set()
        sampler.join()
    return time.perf_counter() - start, peak, code


#: A stage's line in the command's log (see districting.timing).
STAGE = re.compile(r"districting\.timing: (?P<name>.+): (?P<seconds>[0-9.]+) s\s*$")


def stages(log: Path) -> dict[str, float]:
    """Each stage's seconds, from a plan's log, in the order they ended."""
    found: dict[str, float] = {}
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        match = STAGE.search(line)  # splitlines also splits the progress bars' \r
        if match:
            found[match["name"]] = float(match["seconds"])
    return found


def planning_stage(found: dict[str, float]) -> float | None:
    """The seconds of the planning stage (``planning N settlement task(s)``), if logged."""
    return next((seconds for name, seconds in found.items() if name.startswith("planning ")),
                None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--residents", type=int, default=1_920_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seed", type=int, default=2021)
    args = parser.parse_args()
    exe = str(Path(sys.executable).with_name("districting"))
    RESULTS.mkdir(exist_ok=True)  # the runs' logs go there before save() makes it
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        country = Path(tmp) / "country.gpkg"
        seconds, _, code = timed([exe, "-q", "synth", "--country", "--residents",
                                  str(args.residents), "--seed", str(args.seed),
                                  "--out", str(country)])
        if code:
            sys.exit(f"synth failed with exit code {code}")
        synth_seconds = round(seconds, 1)
        for workers in args.workers:
            out = Path(tmp) / f"plan-{workers}"
            log = RESULTS / f"national-{args.residents}-{workers}.log"
            seconds, peak, code = timed([exe, "plan", str(country), "--out", str(out),
                                         "--workers", str(workers)], log)
            if code:
                print(f"exit code {code}; the errors are in {log}", flush=True)
            summary = (json.loads((out / "summary.json").read_text(encoding="utf-8"))
                       if (out / "summary.json").is_file() else {})
            layers = out / "plan.gpkg"
            digest = (hashlib.sha256(layers.read_bytes()).hexdigest() if layers.is_file()
                      else None)
            counts = summary.get("counts", {})
            found = stages(log)
            runs.append({
                "workers": workers, "exit_code": code, "wall_seconds": round(seconds, 1),
                "planning_seconds": planning_stage(found),
                "summary_runtime_seconds": summary.get("runtime_seconds"),
                "peak_memory_gb": round(peak / 1024**3, 2),
                "residents": summary.get("residents"),
                "settlements": counts.get("settlements"), "units": counts.get("units"),
                "counting_districts": counts.get("counting_districts"),
                "instructor_districts": counts.get("instructor_districts"),
                "failed_settlements": len(summary.get("failed_settlements", [])),
                "plan_sha256": digest,
                "stages": found,
            })
            print(runs[-1], flush=True)
    base = runs[0]["wall_seconds"] if runs else 0.0
    base_planning = runs[0]["planning_seconds"] if runs else None
    target = TARGETS.get(args.residents)
    table = [
        f"B5 national plan: synthetic country of {args.residents:,} residents "
        f"(synth {synth_seconds} s), {machine()['nproc']} cores",
        f"{'workers':>7} {'wall s':>8} {'speed-up':>8} {'planning s':>10} {'speed-up':>8} "
        f"{'peak GB':>8} {'units':>9} {'CDs':>7} {'IDs':>6}",
    ]
    for run in runs:
        planning = run["planning_seconds"]
        gain = (f"{base_planning / planning:.2f}" if planning and base_planning else "-")
        table.append(
            f"{run['workers']:>7} {run['wall_seconds']:>8} "
            f"{base / max(run['wall_seconds'], 1e-9):>8.2f} {planning!s:>10} {gain:>8} "
            f"{run['peak_memory_gb']:>8} {run['units']!s:>9} "
            f"{run['counting_districts']!s:>7} {run['instructor_districts']!s:>6}")
    digests = {run["plan_sha256"] for run in runs}
    table.append("plan.gpkg: " + ("the same bytes with every number of workers"
                                  if len(digests) == 1 and None not in digests
                                  else "DIFFERS between runs (or missing)"))
    if target:
        table.append(f"target: {target[0]:.0f} s and {target[1]:.0f} GB")
    for run in runs:
        table.append(f"where the time goes with {run['workers']} worker(s), s "
                     "(the field sheets run beside plan.gpkg, the map and the report):")
        table += [f"  {seconds:>8.1f}  {name}" for name, seconds in run["stages"].items()]
    print("\n".join(table))
    record = {"machine": machine(), "residents": args.residents, "seed": args.seed,
              "synth_seconds": synth_seconds, "runs": runs, "target": target}
    save(f"national-{args.residents}", record, table)


if __name__ == "__main__":
    main()
