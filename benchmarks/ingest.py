"""pull-signals throughput: qtrader's own cost per record, no network.

Generates N signals (a mix of valid, invalid and duplicate records) into a JSONL file,
ingests it into a fresh DuckDB file in-process, then ingests it again (all duplicates),
and reports the time per record for each pass.

    python benchmarks/ingest.py [--n 20000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from typer.testing import CliRunner

from qtrader.cli import app


def make_signals(path: Path, n: int) -> None:
    with path.open("w") as out:
        for i in range(n):
            if i % 50 == 49:
                out.write("{not json\n")
                continue
            out.write(json.dumps({
                "intent_id": f"bench-{i}", "symbol": ("BTCUSDT", "ETHUSDT", "SOLUSDT")[i % 3],
                "side": "BUY" if i % 2 else "SELL", "position_size_usd": 100 + i % 400,
                "leverage": 1 + i % 3, "confidence": 0.55 + (i % 40) / 100,
                "timestamp": 1768548600 + i,
            }) + "\n")  # fmt: skip


def timed_pull(runner: CliRunner, db: Path, src: Path) -> tuple[float, dict]:
    start = time.perf_counter()
    result = runner.invoke(app, ["--json", "--db", str(db), "--log-level", "error",
                                 "pull-signals", "--from", str(src)])  # fmt: skip
    elapsed = time.perf_counter() - start
    if result.exit_code != 0:
        raise SystemExit(f"pull-signals failed: {result.output}")
    return elapsed, json.loads(result.stdout)["totals"]


def _timing(seconds: float, n: int) -> dict:
    return {"seconds": round(seconds, 3), "ms_per_record": round(seconds * 1000 / n, 4)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src, db = Path(tmp) / "signals.jsonl", Path(tmp) / "bench.duckdb"
        make_signals(src, args.n)
        runner = CliRunner()
        first_s, first = timed_pull(runner, db, src)
        second_s, second = timed_pull(runner, db, src)
    report = {
        "records": args.n,
        "first_pull": {**_timing(first_s, args.n), **first},
        "repeat_pull_all_duplicates": {**_timing(second_s, args.n), **second},
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
