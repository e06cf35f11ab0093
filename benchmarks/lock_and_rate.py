"""Budgets: the DuckDB write lock is held under 0.3 s per run and never across network I/O or
rate-limit waits; the rate limiter spends Binance's weight budget instead of sleeping a fixed
time per call, so a 20-signal burst's last entry goes out within 2 s of the first, while the
request weight stays under Binance's 2,400 a minute.

Runs the real CLI in-process against the Binance wire-format stand-in from the tests
(`responses`, no network; it answers with X-MBX-USED-WEIGHT-1M) with the rate limiter ON,
and a simulated network latency per request (--latency-ms, default 30 ms), for:
- an idle reconcile (one open, protected position; nothing changes);
- an execute of 20 new signals (the seeds' burst: 20 a minute).
For each it reports:
- lock_held_s: seconds a DuckDB connection to the file was open, from the call that opens it
  to its close (the lock is held as long); connections_opened: how many times;
- lock_held_across_network_s: the part of it spent inside HTTP requests and rate-limit waits;
- rate_limit_sleep_s: seconds the rate limiter slept;
- wall_s: the whole command;
- first_to_last_entry_s (execute): from the first entry POST to the last;
- max_used_weight_1m: the highest X-MBX-USED-WEIGHT-1M the stand-in answered.

    python benchmarks/lock_and_rate.py [--latency-ms 30]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import responses
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.execute_requests import signals  # the same burst as the request benchmark
from qtrader.cli import app
from tests.binance_fake import FakeBinance


class Meter:
    """Counts how long connections to the file stay open, and which part of that overlaps
    HTTP requests and rate-limit sleeps."""

    def __init__(self, db: str) -> None:
        self.db = db
        self.open_since: list[float] = []
        self.held = 0.0
        self.held_across_network = 0.0
        self.sleep = 0.0
        self.entry_posts: list[float] = []
        self.opens = 0

    def reset(self) -> None:
        self.held = self.held_across_network = self.sleep = 0.0
        self.entry_posts = []
        self.opens = 0

    def install(self) -> None:
        from qtrader.exchange.binance import _JournalingBinance

        real_connect, meter = duckdb.connect, self

        class Conn:
            def __init__(self, conn: duckdb.DuckDBPyConnection, opened: float) -> None:
                self._conn, self._opened = conn, opened  # from the call: opening takes the lock
                meter.open_since.append(self._opened)
                meter.opens += 1

            def __getattr__(self, name: str):
                return getattr(self._conn, name)

            def close(self) -> None:
                meter.held += time.perf_counter() - self._opened
                meter.open_since.remove(self._opened)
                self._conn.close()

        def connect(database: str = ":memory:", *args, **kwargs):
            started = time.perf_counter()
            conn = real_connect(database, *args, **kwargs)
            return Conn(conn, started) if str(database) == meter.db else conn

        duckdb.connect = connect
        real_fetch, real_throttle = _JournalingBinance.fetch, _JournalingBinance.throttle

        def timed(real, sleeping: bool):
            def wrapper(client, *a, **k):
                start = time.perf_counter()
                try:
                    return real(client, *a, **k)
                finally:
                    spent = time.perf_counter() - start
                    if sleeping:
                        meter.sleep += spent
                    if meter.open_since:
                        meter.held_across_network += spent

            return wrapper

        def fetch(client, url, method="GET", headers=None, body=None):
            if method == "POST" and url.split("?")[0].endswith("/fapi/v1/order"):
                meter.entry_posts.append(time.perf_counter())
            time.sleep(LATENCY_S)  # the network
            return real_fetch(client, url, method, headers, body)

        _JournalingBinance.fetch = timed(fetch, sleeping=False)
        _JournalingBinance.throttle = timed(real_throttle, sleeping=True)


LATENCY_S = 0.03


def measure(runner: CliRunner, base: list[str], meter: Meter, args: list[str]) -> dict:
    meter.reset()
    start = time.perf_counter()
    result = runner.invoke(app, [*base, "--testnet", "--json", *args])
    wall = time.perf_counter() - start
    doc = json.loads(result.stdout)
    posts = meter.entry_posts
    report = {
        "exit_code": result.exit_code,
        "lock_held_s": round(meter.held, 3),
        "connections_opened": meter.opens,
        "lock_held_across_network_s": round(meter.held_across_network, 3),
        "rate_limit_sleep_s": round(meter.sleep, 3),
        "wall_s": round(wall, 3),
    }
    if len(posts) > 1:
        report["first_to_last_entry_s"] = round(posts[-1] - posts[0], 3)
    if args == ["execute"]:
        report["executed"] = doc.get("counts", {}).get("executed", 0)
    return report


def main() -> int:
    global LATENCY_S
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-ms", type=float, default=30.0)
    LATENCY_S = parser.parse_args().latency_ms / 1000
    os.environ.update({
        "BINANCE_API_KEY": "bench-key-000000", "BINANCE_API_SECRET": "bench-secret-000000",
        "QTRADER_RISK_SIZING": "signal", "QTRADER_RISK_PYRAMIDING": "true",
        "QTRADER_RISK_MAX_TRADES_PER_HOUR": "off", "QTRADER_RISK_MAX_TRADES_PER_DAY": "off",
        "QTRADER_RISK_MAX_TOTAL_EXPOSURE_USD": "off", "QTRADER_RISK_MAX_EXPOSURE_X_EQUITY": "off",
        "QTRADER_RISK_MAX_OPEN_POSITIONS": "off", "QTRADER_RISK_MAX_ENTRIES_PER_SYMBOL": "100000",
        "QTRADER_RISK_MAX_DRAWDOWN_PCT": "100", "QTRADER_RISK_DAILY_LOSS_LIMIT_PCT": "off",
    })  # fmt: skip
    runner = CliRunner()
    with (
        tempfile.TemporaryDirectory() as tmp,
        responses.RequestsMock(assert_all_requests_are_fired=False) as mock,
    ):
        db = str(Path(tmp) / "bench.duckdb")
        meter = Meter(db)
        meter.install()
        fake = FakeBinance(wallet="10000000").install(mock)
        base = ["--db", db, "--log-level", "error"]
        runner.invoke(app, [*base, "pull-signals", "--from", "-"], input=signals("warm", 3))
        runner.invoke(app, [*base, "--testnet", "execute"])  # warms markets + symbol set-up
        runner.invoke(app, [*base, "--testnet", "reconcile"])
        reconcile = measure(runner, base, meter, ["reconcile"])
        runner.invoke(app, [*base, "pull-signals", "--from", "-"], input=signals("burst", 20))
        execute = measure(runner, base, meter, ["execute"])
        max_weight = max(fake.weight_used.values(), default=0)
    report = {
        "latency_ms_per_request": LATENCY_S * 1000,
        "idle_reconcile": reconcile,
        "execute_20_signals": execute,
        "max_used_weight_1m": max_weight,
        "budgets": {"lock_held_s": 0.3, "first_to_last_entry_s": 2.0, "weight_1m": 2400},
    }
    report["ok"] = (
        reconcile["lock_held_s"] < 0.3
        and execute["lock_held_s"] < 0.3
        and execute.get("first_to_last_entry_s", 0) < 2.0
        and max_weight < 2400
    )
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
