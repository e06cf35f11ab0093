"""Requests per signal on Bybit next to Binance: what `execute` sends for N entry signals with
a warm market cache, and what an idle `reconcile` and one after a stop fired send.

Runs the real CLI in-process against each exchange's wire-format stand-in from the tests
(`responses`, no network): tests/binance_fake.py and tests/bybit_fake.py. Two runs (small,
large) separate the per-signal requests from the fixed ones of a run (clock, account, marks).

    python benchmarks/requests_per_signal.py [--n 15] [--small 5]

Bybit allows 10 conditional orders per symbol, so a run puts at most 3 entries on a symbol
(pyramiding is on, so each signal is an entry) and a reconcile between runs folds each
position's stops into one (as cron's reconcile does).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

import responses
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.execute_requests import RISK_OPEN
from benchmarks.execute_requests import signals as burst
from qtrader.cli import app
from tests.binance_fake import FakeBinance
from tests.bybit_fake import FakeBybit

SYMBOLS = (
    ("BTCUSDT", 50000, 49000, 52000),
    ("ETHUSDT", 3000, 2940, 3120),
    ("SOLUSDT", 140, 137, 146),
    ("BNBUSDT", 935, 916, 972),
    ("XRPUSDT", 2.07, 2.02, 2.15),
)
# requests a signal causes (placing and reading its orders); the rest is the run's own
ORDER_PATHS = {"/fapi/v1/order", "/fapi/v1/algoOrder", "/v5/order/create", "/v5/order/realtime",
               "/v5/order/history"}  # fmt: skip
COMMON_ENV = {
    **RISK_OPEN, "QTRADER_RISK_MAX_DRAWDOWN_PCT": "90",
    "BINANCE_API_KEY": "bench-key-000000", "BINANCE_API_SECRET": "bench-secret-000000",
    "BYBIT_API_KEY": "bench-key-000000", "BYBIT_API_SECRET": "bench-secret-000000",
}  # fmt: skip


def run(runner: CliRunner, base: list[str], fake, *args: str, input: str | None = None) -> Counter:
    before = len(fake.sent)
    result = runner.invoke(app, [*base, *args], input=input)
    assert result.exit_code in (0, 1), result.output
    return Counter(s.path for s in fake.sent[before:])


def measure(exchange: str, n: int, small: int) -> dict:
    os.environ["QTRADER_EXCHANGE_NAME"] = exchange
    runner = CliRunner()
    with (
        tempfile.TemporaryDirectory() as tmp,
        responses.RequestsMock(assert_all_requests_are_fired=False) as mock,
    ):
        db = str(Path(tmp) / "bench.duckdb")
        if exchange == "bybit":
            fake = FakeBybit(wallet=__import__("decimal").Decimal("10000000")).install(mock)
        else:
            fake = FakeBinance(wallet="10000000").install(mock)
        base = ["--db", db, "--log-level", "error"]
        pull = [*base, "pull-signals", "--from", "-"]
        runner.invoke(app, pull, input=burst("warm", 3, SYMBOLS))
        run(runner, base, fake, "--testnet", "execute")  # markets cached, symbols set up
        counts = {}
        for label, size in (("small", small), ("large", n)):
            runner.invoke(app, pull, input=burst(label, size, SYMBOLS))
            counts[label] = run(runner, base, fake, "--testnet", "execute")
            run(runner, base, fake, "--testnet", "reconcile")  # one stop per position again
        idle = run(runner, base, fake, "--testnet", "reconcile")
        fire_one(exchange, fake)
        after_stop = run(runner, base, fake, "--testnet", "reconcile")
    large = sum(counts["large"].values())
    per_signal = sum(v for k, v in counts["large"].items() if k in ORDER_PATHS) / n
    return {
        "exchange": exchange,
        "execute_requests_large": large,
        "execute_requests_small": sum(counts["small"].values()),
        "per_signal": round(per_signal, 2),
        "fixed_per_run": round(large - per_signal * n, 2),
        "execute_by_path_large": dict(counts["large"]),
        "idle_reconcile": sum(idle.values()),
        "idle_reconcile_by_path": dict(idle),
        "reconcile_after_a_stop_fired": sum(after_stop.values()),
    }


def fire_one(exchange: str, fake) -> None:
    if exchange == "bybit":
        link = next(k for k, o in fake.orders.items() if o["orderStatus"] == "Untriggered"
                    and o["symbol"] == "SOLUSDT" and o["triggerDirection"] == 2)  # fmt: skip
        for other in [k for k, o in fake.orders.items() if o["symbol"] == "SOLUSDT"
                      and o["orderStatus"] == "Untriggered" and k != link]:  # fmt: skip
            fake.orders[other]["orderStatus"] = "Deactivated"
        fake.fire(link, "137")
    else:
        cid = next(k for k, o in fake.algo_orders.items() if o["algoStatus"] == "NEW"
                   and o["symbol"] == "SOLUSDT" and o["orderType"] == "STOP_MARKET")  # fmt: skip
        for other in [k for k, o in fake.algo_orders.items() if o["symbol"] == "SOLUSDT"
                      and o["algoStatus"] == "NEW" and k != cid]:  # fmt: skip
            fake.algo_orders[other]["algoStatus"] = "CANCELED"
        fake.fire(cid, "137")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=15, help="signals in the large run")
    parser.add_argument("--small", type=int, default=5, help="signals in the small run")
    args = parser.parse_args()
    os.environ.update(COMMON_ENV)
    os.environ["QTRADER_EXCHANGE_RETRY_WAIT_S"] = "0"
    rows = [measure(name, args.n, args.small) for name in ("binanceusdm", "bybit")]
    for row in rows:
        print(json.dumps(row))
    print()
    print(f"{'exchange':<12} {'per signal':>10} {'fixed/run':>10} {'idle reconcile':>15} "
          f"{'reconcile after a stop':>23}")  # fmt: skip
    for row in rows:
        print(f"{row['exchange']:<12} {row['per_signal']:>10} {row['fixed_per_run']:>10} "
              f"{row['idle_reconcile']:>15} {row['reconcile_after_a_stop_fired']:>23}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
