"""Budget: an idle tick does not import ccxt; one process a minute instead of four.

Side by side in one run, each a real process as cron starts it, on an idle account (no
signals, nothing open), offline:

- paper mode replaying a candle file: the four-process chain of the code before this change
  (QTRADER_BASE: pull-signals, execute, reconcile from jobs/tick, and jobs/reconcile) against
  one `qtrader tick` of this code;
- testnet (Binance demo trading, keys set, never contacted): an idle `execute` before (it
  built the ccxt client first) and after, and an idle `qtrader tick` (reconciled a minute ago).

Wall time and CPU (user + system, from getrusage of the children) per tick, the median of
--repeat runs.

    QTRADER_BASE=/path/to/checkout-before python benchmarks/tick_cost.py
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.paper_data import write_candles  # noqa: E402


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.returncode


def chain(commands: list[list[str]], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    wall = cpu = 0.0
    for argv in commands:
        w, c, code = timed(argv, env, cwd)
        if code not in (0, 3):
            raise SystemExit(f"{argv} exited {code}")
        wall, cpu = wall + w, cpu + c
    return wall, cpu


def median_of(repeat: int, run) -> dict[str, float]:
    runs = [run() for _ in range(repeat)]
    return {"wall_s": round(statistics.median(r[0] for r in runs), 3),
            "cpu_s": round(statistics.median(r[1] for r in runs), 3)}  # fmt: skip


def main() -> int:
    repeat = int(os.environ.get("REPEAT", "5"))
    base = os.environ.get("QTRADER_BASE")
    python = sys.executable
    new = [python, "-m", "qtrader"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        candles = write_candles(work / "candles.csv", flat={"BTCUSDT": "50000"}, minutes=600)
        (work / "empty.jsonl").write_text("")
        env = {k: v for k, v in os.environ.items() if not k.startswith("QTRADER_")}
        paper = {**env, "QTRADER_PAPER_PRICES": str(candles), "QTRADER_DB": str(work / "p.db"),
                 "PYTHONPATH": str(ROOT)}  # fmt: skip
        subprocess.run([*new, "clock", "--to", "2026-11-20T09:30:00"], env=paper, cwd=work,
                       check=True, capture_output=True)  # fmt: skip
        report: dict = {"repeat": repeat}
        tick = [[*new, "tick", "--from", "empty.jsonl"]]
        chain(tick, paper, work)  # the first reconcile; the timed ticks find it recent
        report["paper_tick_after"] = median_of(repeat, lambda: chain(tick, paper, work))
        if base:
            old_env = {**paper, "PYTHONPATH": base, "QTRADER_DB": str(work / "p-old.db")}
            old = [python, "-m", "qtrader"]
            subprocess.run([*old, "clock", "--to", "2026-11-20T09:30:00"], env=old_env,
                           cwd=work, check=True, capture_output=True)  # fmt: skip
            four = [[*old, "pull-signals", "--from", "empty.jsonl"], [*old, "execute"],
                    [*old, "reconcile"], [*old, "reconcile"]]  # fmt: skip
            report["paper_four_processes_before"] = median_of(
                repeat, lambda: chain(four, old_env, work)
            )
        testnet = {**env, "BINANCE_API_KEY": "bench-key-0000", "BINANCE_API_SECRET": "bench-0000",
                   "QTRADER_DB": str(work / "t.db"), "PYTHONPATH": str(ROOT)}  # fmt: skip
        subprocess.run([*new, "status"], env=testnet, cwd=work, check=True, capture_output=True)
        _recent_reconcile(work / "t.db")
        report["testnet_idle_execute_after"] = median_of(
            repeat, lambda: chain([[*new, "--testnet", "execute"]], testnet, work)
        )
        report["testnet_idle_tick_after"] = median_of(
            repeat,
            lambda: chain([[*new, "--testnet", "tick", "--from", "empty.jsonl"]], testnet, work),
        )
        if base:
            old_testnet = {**testnet, "PYTHONPATH": base, "QTRADER_DB": str(work / "t-old.db")}
            old_execute = [[python, "-m", "qtrader", "--testnet", "execute"]]
            report["testnet_idle_execute_before"] = median_of(
                repeat, lambda: chain(old_execute, old_testnet, work)
            )
    print(json.dumps(report, indent=2))
    return 0


def _recent_reconcile(db: Path) -> None:
    """A reconcile that talked to the exchange a moment ago: the idle tick need not."""
    import duckdb

    with duckdb.connect(str(db)) as conn:
        conn.execute(
            "INSERT INTO runs (run_id, command, args, mode, pid, version, started_at, ended_at, "
            "outcome, exit_code) VALUES (nextval('runs_seq'), 'reconcile', '{}', 'testnet', 0, "
            "'bench', ?, ?, 'ok', 0)",
            [datetime.utcnow(), datetime.utcnow()],
        )


if __name__ == "__main__":
    raise SystemExit(main())
