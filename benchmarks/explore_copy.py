"""The copy for notebooks (`<db>.explore/`): how long the export holds the live file (a
read-only connection, which blocks writers), and how big the copy is, for a year of the seeds'
load (20 signals a minute is ~10,000 positions and 20,000 fills a year at one trade in 50
signals; the benchmark uses far more to show the trend).

Generates positions, fills, funding and equity with benchmarks/pnl_report.py's generator, then
times `refresh()` (opening the file read-only, every COPY, the renames).

    python benchmarks/explore_copy.py [--positions 10000 100000 500000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.pnl_report import generate
from qtrader.store.explore import explore_dir, refresh


def measure(positions: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        generate(db, positions)
        start = time.perf_counter()
        refresh(str(db), every_s=1, lock_timeout=5)
        held = time.perf_counter() - start
        size = sum(p.stat().st_size for p in explore_dir(db).iterdir())
        return {
            "positions": positions,
            "fills": positions * 2,
            "db_mb": round(db.stat().st_size / 2**20, 1),
            "export_s": round(held, 3),
            "copy_mb": round(size / 2**20, 1),
        }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--positions", type=int, nargs="+", default=[10_000, 100_000, 500_000])
    rows = [measure(n) for n in parser.parse_args().positions]
    print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
