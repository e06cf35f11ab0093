"""Budget: an idle reconcile makes a small constant number of requests, independent of how many
symbols were ever traded.

Against the Binance wire-format stand-in from the tests (`responses`, no network): trade and
settle K symbols (a position opened, reconciled, closed, reconciled), then count the requests
of one more, idle, reconcile. Run for K = 1 and K = 50.

    python benchmarks/reconcile_requests.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

import responses
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from qtrader.cli import app
from tests.binance_fake import FakeBinance


def idle_requests(symbols_traded: int) -> list[str]:
    symbols = [f"C{i:02d}USDT" for i in range(symbols_traded)]
    runner = CliRunner()
    with (
        tempfile.TemporaryDirectory() as tmp,
        responses.RequestsMock(assert_all_requests_are_fired=False) as mock,
    ):
        base = ["--db", str(Path(tmp) / "bench.duckdb"), "--log-level", "error", "--testnet"]
        fake = FakeBinance(extra_symbols=symbols).install(mock)
        for symbol in symbols:
            fake.position(symbol, "1", entry="10")
            runner.invoke(app, [*base, "reconcile"])  # adopted and protected
            fake.fill(symbol, "SELL", Decimal(1), Decimal(10), "BOTH", 1)  # closed by hand
            for algo in fake.algo_orders.values():
                algo["algoStatus"] = "CANCELED"
            runner.invoke(app, [*base, "reconcile"])  # settled
        fake.sent.clear()
        result = runner.invoke(app, [*base, "--json", "reconcile"])
        assert json.loads(result.stdout)["ok"], result.stdout
        return [f"{s.method} {s.path}" for s in fake.sent]


def main() -> int:
    from qtrader.exchange.binance import _JournalingBinance

    # this counts requests, not time: ccxt's pacing sleeps are skipped against the stand-in
    _JournalingBinance.throttle = lambda self, cost=None: None
    os.environ.update(
        {
            "BINANCE_API_KEY": "bench-key-000000",
            "BINANCE_API_SECRET": "bench-secret-000000",
            # K trades closed at their entry lose their fees: the losing-streak breaker would
            # halt the idle run (exit 3), which is not what this counts
            "QTRADER_RISK_MAX_CONSECUTIVE_LOSSES": "1000",
        }
    )
    one, fifty = idle_requests(1), idle_requests(50)
    report = {
        "idle_requests_after_1_symbol": len(one),
        "idle_requests_after_50_symbols": len(fifty),
        "requests": fifty,
        "ok": one == fifty,
    }
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
