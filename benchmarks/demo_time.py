"""Budget: `qtrader demo` (the whole offline PAPER pipeline) under one minute.

Runs the real command in fresh processes, each into a new temporary folder, and reports
the median and worst wall time, and how long its six `reconcile` runs took together (they
include the paper exchange catching up through three days of 1-minute bars).

    python benchmarks/demo_time.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

BUDGET_S = 60.0


def one_run(out: Path) -> tuple[float, float]:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "qtrader", "demo", "--out", str(out)],
                   capture_output=True, check=True)  # fmt: skip
    elapsed = time.perf_counter() - start
    (db,) = out.glob("*/qtrader.duckdb")
    with duckdb.connect(str(db), read_only=True) as conn:
        (reconcile_s,) = conn.execute(
            "SELECT sum(epoch(ended_at - started_at)) FROM runs WHERE command = 'reconcile'"
        ).fetchone()
    return elapsed, reconcile_s


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            results.append(one_run(Path(folder)))
    times = [t for t, _ in results]
    median, worst = statistics.median(times), max(times)
    reconcile_s = statistics.median(r for _, r in results)
    print(json.dumps({
        "benchmark": "demo_time", "runs": args.runs, "median_s": round(median, 2),
        "worst_s": round(worst, 2), "budget_s": BUDGET_S,
        "reconcile_s_total": round(reconcile_s, 2),
    }))  # fmt: skip
    print(f"qtrader demo: median {median:.2f} s, worst {worst:.2f} s (budget {BUDGET_S:.0f} s); "
          f"its 6 reconciles took {reconcile_s:.2f} s together")  # fmt: skip
    return 0 if worst < BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
