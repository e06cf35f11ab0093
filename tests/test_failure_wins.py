"""Exit codes never hide a failure: a stop that could not be placed during a halt exits 1."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from qtrader.domain.orders import Role, client_order_id
from qtrader.store import open_store
from tests.conftest import invoke, invoke_json, query
from tests.test_execute import BUY, pull

pytestmark = pytest.mark.usefixtures("exchange_env", "signal_sizing")

SL = client_order_id("t-buy-1", Role.STOP_LOSS)
REJECTED = {"code": -1001, "msg": "Internal error; unable to process your request"}


def test_a_failed_stop_repair_during_a_breaker_trip_exits_1_not_3(binance, db_path):
    pull(BUY)
    assert invoke("--testnet", "execute").exit_code == 0
    assert invoke("--testnet", "reconcile").exit_code == 0
    store = open_store(str(db_path))  # a peak three days ago: the drawdown breaker trips now
    store.execute("INSERT INTO equity VALUES (?, 'testnet', 0, 11000, 0, 11000)",
                  [datetime.utcnow() - timedelta(days=3)])  # fmt: skip
    store.close()
    binance.algo_orders[SL]["algoStatus"] = "CANCELED"  # the stop is gone
    binance.fail_next("/fapi/v1/algoOrder", "POST", *[REJECTED] * 5)  # and cannot be placed

    code, doc = invoke_json("--testnet", "reconcile")
    assert code == 1, doc  # the failure wins over the halt (3), so the jobs report it
    assert "stop_replaced BTCUSDT" in doc["error"] and "FAILED" in doc["error"]
    assert "drawdown" in doc["error"]
    assert query(db_path, "SELECT kind FROM halts WHERE mode = 'testnet'") == [("drawdown",)]
    assert query(db_path, "SELECT outcome, exit_code FROM runs ORDER BY run_id DESC LIMIT 1") == [
        ("failed", 1)
    ]


def test_a_halt_alone_still_exits_3(binance, db_path):
    invoke("status")
    store = open_store(str(db_path))
    store.execute("INSERT INTO equity VALUES (?, 'testnet', 0, 11000, 0, 11000)",
                  [datetime.utcnow() - timedelta(days=3)])  # fmt: skip
    store.close()
    result = invoke("--testnet", "reconcile")
    assert result.exit_code == 3 and "drawdown" in result.stderr
