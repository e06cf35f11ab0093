"""close-all against Binance wire format: halt, cancel regular and algo orders, close, verify."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.conftest import invoke, invoke_json, query
from tests.test_execute import BUY, pull

pytestmark = pytest.mark.usefixtures("exchange_env")


@pytest.fixture
def binance(binance):
    """The stand-in with two positions, their stops and a target, and a resting order."""
    binance.position("BTCUSDT", "0.01")
    binance.position("ETHUSDT", "-0.1")
    for cid, kind, symbol, side, trigger in (
        ("sl-btc", "STOP_MARKET", "BTCUSDT", "SELL", "49000"),
        ("tp-btc", "TAKE_PROFIT_MARKET", "BTCUSDT", "SELL", "52000"),
        ("sl-eth", "STOP_MARKET", "ETHUSDT", "BUY", "3100"),
    ):
        binance._new_algo_order({"clientAlgoId": cid, "type": kind, "symbol": symbol,
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
    assert [e for e in events if e.startswith("close_all")] == [
        "close_all_started",
        "close_all_finished",
    ]
    assert events.count("position_closed") == 2  # settled from the fills in the same run


def test_positions_are_closed_before_their_stops_are_cancelled(binance, db_path):
    """Issue 12 reverses the old order (cancel, then close): a close that fails must leave
    its position with the stops that still protect it."""
    close_all("--yes")
    order = [(s.method, s.path) for s in binance.sent if s.method in ("DELETE", "POST")]
    last_close = max(i for i, call in enumerate(order) if call == ("POST", "/fapi/v1/order"))
    first_cancel = min(i for i, (method, _) in enumerate(order) if method == "DELETE")
    assert last_close < first_cancel


def test_a_close_that_fails_keeps_its_stops_and_others_are_flattened(binance, db_path):
    binance.refuse_orders["BTCUSDT"] = {"code": -1001, "msg": "Internal error; unable to process"}
    code, doc = close_all("--yes")
    assert code == 1 and doc["flat"] is False
    assert binance.positions[("ETHUSDT", "BOTH")] == 0
    assert binance.positions[("BTCUSDT", "BOTH")] == Decimal("0.01")
    assert binance.algo_orders["sl-btc"]["algoStatus"] == "NEW"  # still protected
    assert binance.algo_orders["sl-eth"]["algoStatus"] == "CANCELED"
    assert {p["symbol"] for p in doc["left"]["positions"]} == {"BTCUSDT"}


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


def test_symbol_limits_it_and_says_exactly_what_it_covered(binance, db_path):
    code, doc = close_all("--yes", "--symbol", "ethusdt")
    assert code == 0  # the symbols it was asked about are flat
    assert doc["flat"] is False  # the account is not: BTCUSDT stays open
    assert doc["covered"] == {"symbols": ["ETHUSDT"], "flat": True}
    assert doc["untouched"] == {"positions": ["BTCUSDT"], "open_orders": 3}
    assert {p.params["symbol"] for p in binance.order_posts()} == {"ETHUSDT"}
    assert binance.positions[("BTCUSDT", "BOTH")] != 0


def test_symbol_report_in_text_and_progress_on_stderr(binance, db_path):
    binance.positions.clear()
    binance.algo_orders.clear()
    binance.orders.clear()
    binance.position("SOLUSDT", "3")
    binance.position("BNBUSDT", "0.5")
    result = invoke("--testnet", "close-all", "--yes", "--symbol", "SOLUSDT")
    assert result.exit_code == 0, result.output
    assert "SOLUSDT flat; 1 other position untouched: BNBUSDT" in result.stdout
    assert "account is FLAT" not in result.stdout
    progress = result.stderr
    assert "close-all: reading positions and open orders" in progress
    assert "close-all: trading halted" in progress
    assert "close-all: closing SOLUSDT BUY 3" in progress
    assert progress.index("halted") < progress.index("closing SOLUSDT")
    result = invoke("--testnet", "close-all", "--yes")
    assert (
        result.exit_code == 0 and "account is FLAT: no positions, no open orders" in result.stdout
    )


def test_hedge_mode_closes_each_side(binance, db_path):
    binance.hedge = True  # LONG and SHORT positions exist only on a hedge-mode account
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
