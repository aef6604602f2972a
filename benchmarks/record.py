"""Where benchmark results go: benchmarks/results/NAME.json, and NAME.txt for a printed table."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def save(name: str, record: object, table: list[str] | None = None) -> Path:
    """Write ``record`` as JSON (and ``table`` as text); return the JSON file's path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    if table is not None:
        path.with_suffix(".txt").write_text("\n".join(table) + "\n", encoding="utf-8")
    return path
