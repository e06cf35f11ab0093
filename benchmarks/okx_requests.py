"""Requests per signal on OKX, beside Binance (and Bybit when its stand-in is present).

Runs the real CLI in-process against each exchange's wire-format stand-in from the tests
(`responses`, no network). A first run warms the market cache and sets leverage per symbol;
then two measured `execute` runs of `--small` and `--n` new signals (three symbols in turn,
pyramiding on so each is an entry) give the requests per signal (marginal) and per run (fixed).
An idle `reconcile` after that is counted too.

    python benchmarks/okx_requests.py [--n 15] [--small 5]

Five symbols in turn and a reconcile between the runs keep Bybit under its 10 conditional
orders per symbol (as benchmarks/requests_per_signal.py does).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import responses
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.execute_requests import RISK_OPEN
from benchmarks.execute_requests import signals as burst
from qtrader.cli import app

SYMBOLS = (("BTCUSDT", 50000, 49000, 52000), ("ETHUSDT", 3000, 2940, 3120),
           ("SOLUSDT", 140, 137, 146), ("BNBUSDT", 935, 916, 972),
           ("XRPUSDT", 2.07, 2.02, 2.15))  # fmt: skip
# what a signal causes (placing and reading its orders); the rest is the run's own
ORDER_PATHS = {"/fapi/v1/order", "/fapi/v1/algoOrder", "/api/v5/trade/order",
               "/api/v5/trade/order-algo", "/v5/order/create", "/v5/order/realtime",
               "/v5/order/history"}  # fmt: skip


def exchanges() -> dict[str, tuple[Any, dict[str, str]]]:
    """name → (stand-in factory, environment)."""
    from tests.binance_fake import FakeBinance
    from tests.okx_fake import FakeOkx

    key, secret = "bench-key-000000", "bench-secret-000000"
    found: dict[str, tuple[Any, dict[str, str]]] = {
        "binanceusdm": (lambda: FakeBinance(wallet="10000000"),
                        {"BINANCE_API_KEY": key, "BINANCE_API_SECRET": secret}),
        "okx": (lambda: FakeOkx(wallet=Decimal(10**7)),
                {"OKX_API_KEY": key, "OKX_API_SECRET": secret,
                 "OKX_API_PASSPHRASE": "bench-pw-0"}),
    }  # fmt: skip
    try:
        from tests.bybit_fake import FakeBybit  # the Bybit adapter's stand-in, when present
    except ImportError:
        return found
    found["bybit"] = (lambda: FakeBybit(), {"BYBIT_API_KEY": "bench-key-000000",
                                           "BYBIT_API_SECRET": "bench-secret-000000"})  # fmt: skip
    return found


def no_pacing() -> None:
    """This counts requests, not time: the rate limiters' waits are skipped."""
    from qtrader.exchange.binance import _JournalingBinance
    from qtrader.exchange.okx_limits import EndpointLimits

    _JournalingBinance.throttle = lambda self, cost=None: None
    EndpointLimits.wait_s = lambda self, path: 0.0


def measure(name: str, factory: Any, env: dict[str, str], n: int, small: int) -> dict:
    os.environ.update({**RISK_OPEN, **env, "QTRADER_EXCHANGE_NAME": name})
    runner = CliRunner()
    with (
        tempfile.TemporaryDirectory() as tmp,
        responses.RequestsMock(assert_all_requests_are_fired=False) as mock,
    ):
        fake = factory().install(mock)
        base = ["--db", str(Path(tmp) / "bench.duckdb"), "--log-level", "error"]
        runner.invoke(app, [*base, "pull-signals", "--from", "-"], input=burst("warm", 3, SYMBOLS))
        runner.invoke(app, [*base, "--testnet", "execute"])  # markets cached, leverage set
        runs = {}
        for prefix, count in (("small", small), ("large", n)):
            runner.invoke(app, [*base, "--testnet", "reconcile"])  # folds each position's stops
            runner.invoke(
                app, [*base, "pull-signals", "--from", "-"], input=burst(prefix, count, SYMBOLS)
            )
            fake.sent.clear()
            result = runner.invoke(app, [*base, "--testnet", "--json", "execute"])
            doc = json.loads(result.stdout)
            runs[prefix] = {
                "executed": doc["counts"].get("executed", 0),
                "requests": len(fake.sent),
                "by_path": Counter(f"{s.method} {s.path}" for s in fake.sent),
            }
        runner.invoke(app, [*base, "--testnet", "reconcile"])
        fake.sent.clear()
        runner.invoke(app, [*base, "--testnet", "reconcile"])
        idle = len(fake.sent)
    for var in env:
        os.environ.pop(var, None)
    large = runs["large"]
    per_signal = sum(c for p, c in large["by_path"].items() if p.split()[1] in ORDER_PATHS) / n
    return {
        "signals": n,
        "executed": large["executed"],
        "requests": large["requests"],
        "requests_per_signal": round(per_signal, 2),
        "requests_per_run_fixed": round(large["requests"] - per_signal * n, 1),
        "idle_reconcile_requests": idle,
        "by_path_large_run": dict(sorted(large["by_path"].items())),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=15, help="signals in the large run")
    parser.add_argument("--small", type=int, default=5, help="signals in a first run")
    args = parser.parse_args()
    no_pacing()
    report = {name: measure(name, factory, env, args.n, args.small)
              for name, (factory, env) in exchanges().items()}  # fmt: skip
    print(json.dumps(report, indent=2))
    return 0 if all(r["executed"] == args.n for r in report.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
