"""reconcile against Binance wire format: settle, repair, adopt, ingest the ledgers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from qtrader.domain.orders import Role, client_order_id
from tests.conftest import invoke, invoke_json, query
from tests.test_execute import BUY, pull

pytestmark = pytest.mark.usefixtures("exchange_env", "signal_sizing")

SL = client_order_id("t-buy-1", Role.STOP_LOSS)
TP = client_order_id("t-buy-1", Role.TAKE_PROFIT)


def reconcile() -> tuple[int, dict]:
    return invoke_json("--testnet", "reconcile")


def traded(binance) -> None:
    pull(BUY)  # BTCUSDT long 0.008 at 50,000; stop 49,000; target 52,000
    assert invoke("--testnet", "execute").exit_code == 0


def test_a_fresh_position_is_recorded_with_its_stop_and_no_repair(binance, db_path):
    traded(binance)
    code, doc = reconcile()
    assert code == 0, doc
    (position,) = doc["positions"]
    assert (
        position["symbol"],
        position["side"],
        position["qty"],
        position["stop"],
        position["origin"],
    ) == ("BTCUSDT", "long", "0.008", "49000", "qtrader")
    assert position["target"] == "52000"  # both as they rest on the exchange
    assert doc["repairs"] == [] and doc["drift"] == []
    assert query(db_path, "SELECT count(*) FROM fills") == [(1,)]


def test_a_stop_that_fired_settles_the_position_with_pnl_and_fees_from_user_trades(
    binance, db_path
):
    traded(binance)
    reconcile()
    binance.fire(SL, "49000")
    code, doc = reconcile()
    assert code == 0, doc.get("error")
    (settled,) = doc["settled"]
    # long 0.008 from 50,000 to 49,000: -8 USDT; taker fees 0.04 % of 400 and of 392
    assert settled["exit_reason"] == "stop_loss"
    assert (settled["exit_price"], settled["realized_pnl"], settled["fees"]) == (
        "49000",
        "-8",
        "0.3168",
    )
    row = query(db_path, "SELECT status, exit_reason, realized_pnl, fees FROM positions")
    assert row == [("closed", "stop_loss", Decimal("-8"), Decimal("0.3168"))]
    assert query(db_path, "SELECT status FROM orders WHERE client_order_id = ?", [SL]) == [
        ("filled",)
    ]
    # the take-profit left behind is an orphan: cancelled through the algo endpoint
    (cancel,) = binance.calls("/fapi/v1/algoOrder", "DELETE")
    assert cancel.params["algoId"] == str(binance.algo_orders[TP]["algoId"])
    assert binance.algo_orders[TP]["algoStatus"] == "CANCELED"
    assert [r["action"] for r in doc["repairs"]] == ["orphan_cancelled"]


def test_a_missing_stop_is_placed_again(binance, db_path):
    traded(binance)
    reconcile()
    binance.algo_orders[SL]["algoStatus"] = "CANCELED"  # someone cancelled it by hand
    binance.sent.clear()
    code, doc = reconcile()
    assert code == 0, doc
    (stop,) = binance.algo_posts()
    assert (
        stop.params["type"],
        stop.params["side"],
        stop.params["quantity"],
        stop.params["triggerPrice"],
        stop.params["reduceOnly"],
    ) == ("STOP_MARKET", "SELL", "0.008", "49000", "true")
    assert [r["action"] for r in doc["repairs"]] == ["stop_replaced"]
    assert query(db_path, "SELECT kind FROM events WHERE kind = 'stop_replaced'") == [
        ("stop_replaced",)
    ]


def test_a_stop_of_the_wrong_size_is_replaced(binance, db_path):
    traded(binance)
    reconcile()
    binance.positions[("BTCUSDT", "BOTH")] = Decimal("0.005")  # partly closed by hand
    code, doc = reconcile()
    assert code == 0, doc.get("error")
    # Place before cancel (issue 12): the new stop is on the book before the old one goes, so
    # a failed placement leaves the old reduce-only stop covering. The target follows suit.
    actions = [(r["action"], r["detail"].split(" ")[0]) for r in doc["repairs"]]
    assert actions == [
        ("stop_resized", "stop"),
        ("stop_resized", "cancelled"),
        ("take_profit_resized", "take-profit"),
        ("take_profit_resized", "cancelled"),
    ]
    sent = [
        (s.method, s.params.get("type")) for s in binance.sent if s.path == "/fapi/v1/algoOrder"
    ]
    assert sent[-4:] == [("POST", "STOP_MARKET"), ("DELETE", None),
                         ("POST", "TAKE_PROFIT_MARKET"), ("DELETE", None)]  # fmt: skip
    new_stop = binance.algo_posts()[-2]
    assert (new_stop.params["quantity"], new_stop.params["triggerPrice"]) == ("0.005", "49000")
    live = [o for o in binance.algo_orders.values() if o["algoStatus"] == "NEW"]
    assert sorted((o["orderType"], o["quantity"]) for o in live) == [
        ("STOP_MARKET", "0.005"), ("TAKE_PROFIT_MARKET", "0.005")]  # fmt: skip
    assert any(d["kind"] == "quantity" for d in doc["drift"])


def test_duplicate_stops_are_cancelled(binance, db_path):
    traded(binance)
    binance._new_algo_order({"clientAlgoId": "manual-dup", "type": "STOP_MARKET", "symbol": "BTCUSDT",
                             "side": "SELL", "triggerPrice": "48000", "quantity": "0.008",
                             "reduceOnly": "true", "workingType": "MARK_PRICE"})  # fmt: skip
    code, doc = reconcile()
    assert code == 0, doc.get("error")
    assert [r["action"] for r in doc["repairs"]] == ["duplicate_stop_cancelled"]
    assert binance.algo_orders["manual-dup"]["algoStatus"] == "CANCELED"


def test_an_unknown_position_is_adopted_and_protected(binance, db_path):
    binance.position("ETHUSDT", "0.5", entry="3000")
    code, doc = reconcile()
    assert code == 0, doc
    (position,) = doc["positions"]
    assert (position["symbol"], position["origin"]) == ("ETHUSDT", "adopted")
    assert [d["kind"] for d in doc["drift"]] == ["missing_locally"]
    (stop,) = binance.algo_posts()
    assert (stop.params["side"], stop.params["triggerPrice"], stop.params["quantity"]) == (
        "SELL",
        "2940",
        "0.5",
    )


def test_a_stop_already_crossed_closes_the_position_instead(binance, db_path):
    binance.position("ETHUSDT", "0.5", entry="3000")
    binance.marks["ETHUSDT"] = "2900"  # below the 2 % default stop at 2,940
    code, doc = reconcile()
    assert code == 0, doc.get("error")
    assert [r["action"] for r in doc["repairs"]] == ["stop_crossed_closed"]
    (close,) = binance.order_posts()
    assert (close.params["side"], close.params["reduceOnly"], close.params["quantity"]) == (
        "SELL",
        "true",
        "0.5",
    )


def test_funding_rows_land_in_income_and_count_for_the_position(binance, db_path):
    traded(binance)
    reconcile()
    binance.income_rows = [
        {"symbol": "BTCUSDT", "incomeType": "FUNDING_FEE", "income": "-0.02518000", "asset": "USDT",
         "info": "FUNDING_FEE", "time": binance.now_ms + 1, "tranId": 9689322394, "tradeId": ""},
        {"symbol": "", "incomeType": "TRANSFER", "income": "100", "asset": "USDT", "info": "TRANSFER",
         "time": binance.now_ms + 2, "tranId": 9689322395, "tradeId": ""}]  # fmt: skip
    code, doc = reconcile()
    assert code == 0, doc.get("error")
    assert doc["counts"]["income_rows"] == 2
    booked = "SELECT income_type, amount FROM income WHERE income_type NOT IN ('COMMISSION', 'REALIZED_PNL')"
    assert query(db_path, booked + " ORDER BY tran_id") == [
        ("FUNDING_FEE", Decimal("-0.02518")),
        ("TRANSFER", Decimal("100")),
    ]
    reconcile()  # the cursor moved on; duplicates are absorbed
    assert len(query(db_path, booked)) == 2
    binance.fire(SL, "49000")
    _, doc = reconcile()
    assert Decimal(doc["settled"][0]["funding"]) == Decimal("-0.02518")


def test_time_exit(binance, db_path, monkeypatch):
    traded(binance)
    reconcile()
    monkeypatch.setenv("QTRADER_RECONCILE_MAX_HOLDING_S", "60")
    import duckdb

    with duckdb.connect(str(db_path)) as conn:
        conn.execute("UPDATE fills SET ts = ts - INTERVAL 2 MINUTE")  # opened 2 minutes ago
        conn.execute("UPDATE positions SET opened_at = opened_at - INTERVAL 2 MINUTE")
    code, doc = reconcile()
    assert code == 0, doc.get("error")
    assert [r["action"] for r in doc["repairs"]] == [
        "time_exit",
        "time_exit_cancelled",
        "time_exit_cancelled",
    ]
    assert doc["settled"][0]["exit_reason"] == "time_exit"  # settled in the same run


def test_an_order_left_unknown_is_resolved(binance, db_path):
    pull(BUY)
    binance.fail_next("/fapi/v1/order", "POST", "timeout_after_accept", "timeout")  # and the lookup
    binance.fail_next("/fapi/v1/order", "GET", "timeout", "timeout", "timeout", "timeout")
    invoke("--testnet", "execute")
    assert query(db_path, "SELECT status FROM orders WHERE role = 'entry'") == [("unknown",)]
    code, doc = reconcile()
    assert code == 0, doc.get("error")
    assert doc["counts"]["orders_resolved"] == 1
    assert query(db_path, "SELECT status FROM orders WHERE role = 'entry'") == [("filled",)]


def test_an_idle_reconcile_costs_the_same_however_many_symbols_were_traded(binance, db_path):
    traded(binance)
    binance.fire(SL, "49000")
    reconcile()  # settles BTCUSDT
    for symbol, mark in (
        ("ETHUSDT", "3000"),
        ("SOLUSDT", "140"),
        ("BNBUSDT", "935"),
        ("XRPUSDT", "2.07"),
    ):
        binance.position(symbol, "1", entry=mark)
        reconcile()
        binance.fill(symbol, "SELL", Decimal(1), Decimal(mark), "BOTH", 1)  # closed by hand
        for algo in binance.algo_orders.values():
            algo["algoStatus"] = "CANCELED"
        reconcile()
    binance.sent.clear()
    reconcile()
    assert [s.path for s in binance.sent] == [
        "/fapi/v1/time", "/fapi/v3/positionRisk", "/fapi/v1/openAlgoOrders", "/fapi/v1/openOrders",
        "/fapi/v1/income", "/fapi/v3/account"]  # fmt: skip


def test_a_liquidation_is_told_apart_from_a_manual_close(binance, db_path):
    traded(binance)
    reconcile()
    binance.liquidate("BTCUSDT", "46000")
    code, doc = reconcile()
    assert code == 0, doc.get("error")
    assert doc["settled"][0]["exit_reason"] == "liquidation"
    assert binance.calls("/fapi/v1/forceOrders")[0].params["symbol"] == "BTCUSDT"
    binance.position("ETHUSDT", "0.5", entry="3000")
    reconcile()
    binance.fill("ETHUSDT", "SELL", Decimal("0.5"), Decimal("3010"), "BOTH", 1)  # closed by hand
    _, doc = reconcile()
    assert doc["settled"][0]["exit_reason"] == "manual"


def test_status_shows_the_stop_and_target_resting_on_the_exchange(binance, db_path):
    """A position whose protection rests on the exchange but was never recorded as intended
    (placed by hand, or by a run that crashed before writing it): shown as it rests."""
    binance.position("ETHUSDT", "-0.5", entry="3000")
    for cid, kind, trigger in (
        ("by-hand-sl", "STOP_MARKET", "3100"),
        ("by-hand-tp", "TAKE_PROFIT_MARKET", "2800"),
    ):
        binance._new_algo_order({"clientAlgoId": cid, "type": kind, "symbol": "ETHUSDT", "side": "BUY",
                                 "triggerPrice": trigger, "quantity": "0.5", "reduceOnly": "true"})  # fmt: skip
    code, doc = reconcile()
    assert code == 0 and doc["repairs"] == [], doc
    assert query(db_path, "SELECT side, stop_loss, take_profit FROM v_open_positions") == [
        ("short", Decimal("3100"), Decimal("2800"))
    ]
    code, status = invoke_json("--testnet", "status")
    (position,) = status["positions"]
    assert (position["side"], position["stop_loss"], position["take_profit"]) == (
        "short",
        "3100",
        "2800",
    )
