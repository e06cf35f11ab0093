"""close-all against Binance wire format: halt, cancel regular and algo orders, close, verify."""

from __future__ import annotations

import pytest

from tests.conftest import invoke, invoke_json, query
from tests.test_execute import BUY, pull

pytestmark = pytest.mark.usefixtures("exchange_env")


@pytest.fixture
def binance(binance):
    """The stand-in with two positions, their stops and a target, and a resting order."""
    binance.position("BTCUSDT", "0.01")
    binance.position("ETHUSDT", "-0.1")
    for cid, symbol, side, trigger in (
        ("sl-btc", "BTCUSDT", "SELL", "49000"),
        ("tp-btc", "BTCUSDT", "SELL", "52000"),
        ("sl-eth", "ETHUSDT", "BUY", "3100"),
    ):
        binance._new_algo_order({"clientAlgoId": cid, "type": "STOP_MARKET", "symbol": symbol,
                                 "side": side, "triggerPrice": trigger, "quantity": "0.01",
                                 "reduceOnly": "true", "workingType": "MARK_PRICE"})  # fmt: skip
    binance.resting_order("limit-sol", "SOLUSDT", "BUY", "1", "120")
    return binance


def close_all(*args: str):
    return invoke_json("--testnet", "close-all", *args)


def test_empty_database_still_finds_and_closes_everything(binance, db_path):
    assert not db_path.exists()
    code, doc = close_all("--yes")
    assert code == 0, doc
    assert doc["flat"] is True and doc["halted"] is True
    deletes = {(s.path, s.params["symbol"]) for s in binance.calls(method="DELETE")}
    assert deletes == {("/fapi/v1/algoOpenOrders", "BTCUSDT"), ("/fapi/v1/algoOpenOrders", "ETHUSDT"),
                       ("/fapi/v1/allOpenOrders", "SOLUSDT")}  # fmt: skip
    closes = {(p.params["symbol"], p.params["side"], p.params["quantity"], p.params["reduceOnly"])
              for p in binance.order_posts()}  # fmt: skip
    assert closes == {("BTCUSDT", "SELL", "0.01", "true"), ("ETHUSDT", "BUY", "0.1", "true")}
    assert all(amount == 0 for amount in binance.positions.values())
    assert all(o["algoStatus"] == "CANCELED" for o in binance.algo_orders.values())
    assert binance.orders["limit-sol"]["status"] == "CANCELED"
    # every action is recorded, with prices
    rows = query(db_path, "SELECT symbol, role, status, avg_price FROM orders ORDER BY symbol")
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("BTCUSDT", "exit", "filled"),
        ("ETHUSDT", "exit", "filled"),
    ]
    assert all(r[3] is not None for r in rows)
    events = [k for (k,) in query(db_path, "SELECT kind FROM events ORDER BY event_id")]
    assert events == ["close_all_started", "close_all_finished"]


def test_stops_are_cancelled_before_positions_are_closed(binance, db_path):
    close_all("--yes")
    order = [(s.method, s.path) for s in binance.sent if s.method in ("DELETE", "POST")]
    first_close = order.index(("POST", "/fapi/v1/order"))
    assert all(method == "DELETE" for method, _ in order[:first_close])


def test_execute_refuses_until_resume(binance, db_path):
    close_all("--yes")
    pull(BUY)
    result = invoke("--testnet", "execute")
    assert result.exit_code == 3 and "kill switch: close-all" in result.stderr
    assert "HALTED (kill_switch)" in invoke("--testnet", "status").stdout
    assert "HALTED" not in invoke("--paper", "status").stdout  # halts are per mode
    assert invoke("--testnet", "resume").exit_code == 0
    assert invoke("--testnet", "execute").exit_code == 0


def test_a_position_still_open_after_the_first_pass_is_retried(binance, db_path):
    binance.fail_next(
        "/fapi/v1/order", "POST", {"code": -1001, "msg": "Internal error; unable to process"}
    )
    code, doc = close_all("--yes")
    assert code == 0 and doc["flat"] is True
    btc = [p for p in binance.order_posts() if p.params["symbol"] == "BTCUSDT"]
    eth = [p for p in binance.order_posts() if p.params["symbol"] == "ETHUSDT"]
    assert len(btc) + len(eth) == 3  # one of them twice
    failed = [a for a in doc["actions"] if not a["ok"]]
    assert len(failed) == 1 and failed[0]["kind"] == "close_position"


def test_exit_1_with_what_is_left_when_it_cannot_get_flat(binance, db_path):
    for _ in range(3):
        binance.fail_next(
            "/fapi/v1/order", "POST", {"code": -2022, "msg": "ReduceOnly Order is rejected."}
        )
    code, doc = close_all("--yes", "--symbol", "BTCUSDT")
    assert code == 1 and doc["flat"] is False
    assert doc["left"]["positions"] == [{"symbol": "BTCUSDT", "side": "long", "qty": "0.01",
                                         "position_side": "BOTH"}]  # fmt: skip
    assert "NOT FLAT after 3 passes" in doc["error"]


def test_symbol_limits_it(binance, db_path):
    code, doc = close_all("--yes", "--symbol", "ethusdt")
    assert code == 0 and doc["flat"] is True  # flat for the symbols it was asked about
    assert {p.params["symbol"] for p in binance.order_posts()} == {"ETHUSDT"}
    assert binance.positions[("BTCUSDT", "BOTH")] != 0


def test_hedge_mode_closes_each_side(binance, db_path):
    binance.positions.clear()
    binance.position("BTCUSDT", "0.02", "LONG")
    binance.position("BTCUSDT", "-0.01", "SHORT")
    code, _ = close_all("--yes", "--symbol", "BTCUSDT")
    assert code == 0
    sides = {
        (p.params["side"], p.params["positionSide"], p.params["quantity"])
        for p in binance.order_posts()
    }
    assert sides == {("SELL", "LONG", "0.02"), ("BUY", "SHORT", "0.01")}
    assert all("reduceOnly" not in p.params for p in binance.order_posts())


def test_dry_run_does_nothing(binance, db_path):
    code, doc = close_all("--dry-run")
    assert code == 0 and doc["halted"] is False
    assert len(doc["plan"]["positions"]) == 2 and len(doc["plan"]["open_algo_orders"]) == 3
    assert binance.calls(method="DELETE") == [] and binance.order_posts() == []
    assert query(db_path, "SELECT count(*) FROM state WHERE key = 'halt'") == [(0,)]


def test_without_yes_a_non_interactive_run_refuses_and_does_nothing(binance, db_path):
    result = invoke("--testnet", "close-all")
    assert result.exit_code == 2 and "close-all needs --yes" in result.stderr
    assert binance.calls(method="DELETE") == [] and binance.order_posts() == []


def test_running_it_again_when_flat_is_safe(binance, db_path):
    close_all("--yes")
    binance.sent.clear()
    code, doc = close_all("--yes")
    assert code == 0 and doc["flat"] is True and doc["actions"] == []
    assert binance.order_posts() == [] and binance.calls(method="DELETE") == []
