"""Budget: `qtrader --help` under 0.3 s, importing no ccxt, pandas or duckdb.

Runs the real console entry point in fresh interpreters and reports the median and worst
wall time over N runs, plus the heavy modules the help path loaded (should be none).

    python benchmarks/help_time.py [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

BUDGET_S = 0.3
HEAVY = ("ccxt", "pandas", "duckdb", "loguru", "requests", "redis", "numpy")
PROBE = (
    "import sys\nsys.argv=['qtrader','--help']\nfrom qtrader.cli import main\n"
    "try:\n    main()\nexcept SystemExit:\n    pass\n"
    f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)\n"
)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    command = [sys.executable, "-m", "qtrader", "--help"]
    subprocess.run(command, capture_output=True, check=True)  # warm the OS file cache
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    probe = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True)
    heavy = probe.stderr.strip().splitlines()[-1]
    median, worst = statistics.median(times), max(times)
    report = {
        "runs": args.runs,
        "median_s": round(median, 4),
        "max_s": round(worst, 4),
        "budget_s": BUDGET_S,
        "heavy_modules_loaded": heavy,
        "ok": median < BUDGET_S,
    }
    print(json.dumps(report))
    return 0 if report["ok"] and heavy == "HEAVY []" else 1


if __name__ == "__main__":
    sys.exit(main())
