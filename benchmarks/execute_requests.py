"""Budgets for `execute`: requests ≤ 3N + 3 with a warm market cache, and qtrader's own
overhead per signal (network excluded) under 5 ms.

Runs the real CLI in-process against the Binance wire-format stand-in from the tests
(`responses`, no network). A first run warms the market cache and sets leverage for each
symbol; then N new signals (three symbols in turn, pyramiding on so that each is an entry)
are executed and measured:
- requests: every HTTP request the adapter sent during the measured run;
- own time: wall time of the run minus the time spent inside the HTTP layer (ccxt's
  transport plus the mocked response) and minus ccxt's rate limiter sleeping between
  requests (it paces requests to Binance's weight limits on purpose; reported separately).
  Two runs (small and large) separate the per-signal cost (the budget) from the fixed
  per-run cost (opening DuckDB, its checkpoint on close, the runs rows, rendering).

    python benchmarks/execute_requests.py [--n 50] [--small 10]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import responses
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from qtrader.cli import app
from tests.binance_fake import FakeBinance

SYMBOLS = (
    ("BTCUSDT", 50000, 49000, 52000),
    ("ETHUSDT", 3000, 2940, 3120),
    ("SOLUSDT", 140, 137, 146),
)


# the benchmarks measure plumbing, not policy: the risk caps are opened up
RISK_OPEN = {
    "QTRADER_RISK_SIZING": "signal", "QTRADER_RISK_MAX_POSITION_USD": "1000",
    "QTRADER_RISK_MAX_TRADES_PER_HOUR": "off", "QTRADER_RISK_PYRAMIDING": "true",
    "QTRADER_RISK_MAX_TRADES_PER_DAY": "off", "QTRADER_RISK_MAX_TOTAL_EXPOSURE_USD": "off",
    "QTRADER_RISK_MAX_EXPOSURE_X_EQUITY": "off", "QTRADER_RISK_MAX_OPEN_POSITIONS": "off",
    "QTRADER_RISK_MAX_ENTRIES_PER_SYMBOL": "100000",
}  # fmt: skip


def signals(prefix: str, n: int, symbols: tuple = SYMBOLS) -> str:
    """`n` BUY signals with entry, stop and target, cycling over `symbols`, as JSON lines."""
    lines = []
    for i in range(n):
        symbol, price, stop, target = symbols[i % len(symbols)]
        lines.append(json.dumps({
            "intent_id": f"{prefix}-{i}", "symbol": symbol, "side": "BUY", "confidence": 0.8,
            "position_size_usd": 500, "leverage": 3, "entry_price": price, "stop_loss": stop,
            "take_profit": target}))  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50, help="signals in the large run")
    parser.add_argument("--small", type=int, default=10, help="signals in the small run")
    args = parser.parse_args()
    os.environ.update({**RISK_OPEN, "BINANCE_API_KEY": "bench-key-000000",
                       "BINANCE_API_SECRET": "bench-secret-000000"})  # fmt: skip
    runner = CliRunner()
    with (
        tempfile.TemporaryDirectory() as tmp,
        responses.RequestsMock(assert_all_requests_are_fired=False) as mock,
    ):
        db = str(Path(tmp) / "bench.duckdb")
        fake = FakeBinance(wallet="10000000").install(mock)
        base = ["--db", db, "--log-level", "error"]
        runner.invoke(app, [*base, "pull-signals", "--from", "-"], input=signals("warm", 3))
        runner.invoke(app, [*base, "--testnet", "execute"])  # warms markets + symbol set-up
        small = measured_run(runner, base, fake, "small", args.small)
        large = measured_run(runner, base, fake, "large", args.n)
    marginal = (large["own_ms"] - small["own_ms"]) / (args.n - args.small)
    fixed = small["own_ms"] - marginal * args.small
    report = {
        "signals": args.n,
        "executed": large["executed"],
        "requests": large["requests"],
        "request_budget_3n_plus_3": 3 * args.n + 3,
        "wall_ms": round(large["wall_ms"], 1),
        "http_layer_ms": round(large["http_ms"], 1),
        "rate_limiter_sleep_ms": round(large["throttle_ms"], 1),
        "own_ms_per_signal_marginal": round(marginal, 3),
        "own_ms_per_run_fixed": round(fixed, 1),
        "own_ms_per_signal_averaged": round(large["own_ms"] / args.n, 3),
        "overhead_budget_ms": 5,
        "ok": large["requests"] <= 3 * args.n + 3 and marginal < 5 and large["executed"] == args.n,
    }
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


def measured_run(
    runner: CliRunner, base: list[str], fake: FakeBinance, prefix: str, n: int
) -> dict:
    """One execute of n new signals: wall time, and what the HTTP layer and rate limiter took."""
    from qtrader.exchange.binance import _JournalingBinance

    fake.positions.clear()
    runner.invoke(app, [*base, "pull-signals", "--from", "-"], input=signals(prefix, n))
    fake.sent.clear()
    http_ms: list[float] = []
    throttle_ms: list[float] = []
    real_fetch, real_throttle = _JournalingBinance.fetch, _JournalingBinance.throttle

    def timed(real, into):
        def wrapper(self, *a, **k):
            start = time.perf_counter()
            try:
                return real(self, *a, **k)
            finally:
                into.append((time.perf_counter() - start) * 1000)

        return wrapper

    _JournalingBinance.fetch = timed(real_fetch, http_ms)
    _JournalingBinance.throttle = timed(real_throttle, throttle_ms)
    try:
        start = time.perf_counter()
        result = runner.invoke(app, [*base, "--testnet", "--json", "execute"])
        wall_ms = (time.perf_counter() - start) * 1000
    finally:
        _JournalingBinance.fetch, _JournalingBinance.throttle = real_fetch, real_throttle
    doc = json.loads(result.stdout)
    return {
        "executed": doc["counts"].get("executed", 0),
        "requests": len(fake.sent),
        "wall_ms": wall_ms,
        "http_ms": sum(http_ms),
        "throttle_ms": sum(throttle_ms),
        "own_ms": wall_ms - sum(http_ms) - sum(throttle_ms),
    }


if __name__ == "__main__":
    sys.exit(main())
