"""B4: wall time of the end-to-end demo (synthetic Baikonur register, every output).

Prints a table and writes ``benchmarks/results/demo.json``. Run with ``make bench``.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import save

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 60.0


def machine() -> dict[str, object]:
    """The machine the numbers were taken on."""
    memory_kb = 0
    with open("/proc/meminfo", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    return {"nproc": os.cpu_count(), "memory_gb": round(memory_kb / 1024**2, 1),
            "python": platform.python_version(), "platform": platform.platform()}


def main() -> None:
    runs = []
    exe = Path(sys.executable).with_name("districting")
    for repeat in range(2):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "baikonur-2021"
            start = time.perf_counter()
            subprocess.run([str(exe), "-q", "demo", "--out", str(out)], check=True, cwd=ROOT,
                           stdout=subprocess.DEVNULL)
            seconds = time.perf_counter() - start
            summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        runs.append({"run": repeat + 1, "seconds": round(seconds, 2),
                     "counting_districts": summary["counts"]["counting_districts"],
                     "instructor_districts": summary["counts"]["instructor_districts"],
                     "bound_exceptions": summary["bound_exceptions"],
                     "max_over_min": summary["workload"]["max_over_min"]})
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"{'run':>4} {'seconds':>8} {'CDs':>5} {'IDs':>4} {'exceptions':>10} {'max/min':>8}")
    for r in runs:
        print(f"{r['run']:>4} {r['seconds']:>8} {r['counting_districts']:>5} "
              f"{r['instructor_districts']:>4} {r['bound_exceptions']:>10} {r['max_over_min']:>8}")
    best = min(r["seconds"] for r in runs)
    verdict = "meets" if best <= TARGET_SECONDS else "misses"
    print(f"best {best:.1f} s, peak memory {peak_mb:.0f} MB: {verdict} the B4 target of "
          f"{TARGET_SECONDS:.0f} s")
    record = {"benchmark": "B4 demo end to end", "inputs": "synthetic Baikonur, seed 2021",
              "config": "configs/baikonur-2021.yaml", "machine": machine(), "runs": runs,
              "peak_memory_mb": round(peak_mb), "target_seconds": TARGET_SECONDS}
    save("demo", record)


if __name__ == "__main__":
    main()
