"""Issue 12: every failure path leaves every position protected.

Each test is one numbered scenario of the issue, against the Binance wire-format stand-in,
which refuses and answers the way Binance does. Each asserts what was sent and the
exchange's state afterwards: one entry per signal, and exactly one stop on every position at
the end of the run that opened it or, at the latest, after the next reconcile.
"""

from __future__ import annotations

import json
import os
import signal as signals
from decimal import Decimal

import duckdb
import pytest

from qtrader.domain.orders import Role, client_order_id
from tests.conftest import invoke, invoke_json, query

pytestmark = pytest.mark.usefixtures("exchange_env", "signal_sizing")

BUY = {"intent_id": "t-buy-1", "symbol": "BTCUSDT", "side": "BUY", "position_size_usd": 400,
       "leverage": 3, "entry_price": 50000, "stop_loss": 49000, "take_profit": 52000,
       "confidence": 0.78}  # fmt: skip
ENTRY = client_order_id("t-buy-1", Role.ENTRY)
SL = client_order_id("t-buy-1", Role.STOP_LOSS)
TP = client_order_id("t-buy-1", Role.TAKE_PROFIT)
LOOKUP = ("/fapi/v1/order", "GET")
ALGO_LOOKUP = ("/fapi/v1/algoOrder", "GET")


@pytest.fixture(autouse=True)
def one_read_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    """One attempt per read, so one scripted fault is one failed lookup."""
    monkeypatch.setenv("QTRADER_EXCHANGE_READ_RETRIES", "1")


def pull(*items: dict) -> None:
    lines = "\n".join(json.dumps(s) for s in items)
    assert invoke("pull-signals", "--from", "-", input=lines).exit_code == 0


def execute() -> tuple[int, dict]:
    return invoke_json("--testnet", "execute")


def reconcile() -> tuple[int, dict]:
    return invoke_json("--testnet", "reconcile")


def age_orders(db_path, seconds: int = 120) -> None:
    with duckdb.connect(str(db_path)) as conn:
        conn.execute("UPDATE orders SET created_at = created_at - to_seconds(?)", [seconds])


def entries_sent(binance, cid: str = ENTRY) -> int:
    return sum(1 for p in binance.order_posts() if p.params.get("newClientOrderId") == cid)


def live_stops(binance, symbol: str = "BTCUSDT") -> list[dict]:
    return [
        o
        for o in binance.algo_orders.values()
        if o["symbol"] == symbol and o["algoStatus"] == "NEW" and o["orderType"] == "STOP_MARKET"
    ]


def assert_protected(binance, symbol: str = "BTCUSDT", side: str = "BOTH") -> dict:
    """The position is open and exactly one stop covers all of it."""
    amount = binance.positions[(symbol, side)]
    assert amount != 0
    (stop,) = [s for s in live_stops(binance, symbol) if s["positionSide"] == side]
    assert Decimal(stop["quantity"]) == abs(amount)
    return stop


def events(db_path, kind: str) -> list[str]:
    return [m for (m,) in query(db_path, "SELECT message FROM events WHERE kind = ?", [kind])]


# --- 1. a lookup that fails is not "not found" -------------------------------------------


def test_1_a_lookup_that_gets_no_answer_never_gives_the_entry_up(binance, db_path):
    pull({**BUY, "stop_loss": 48500})
    binance.fail_next("/fapi/v1/order", "POST", "timeout_after_accept")
    binance.fail_next(*LOOKUP, "timeout")  # the same run's lookup: the network is still bad
    code, doc = execute()
    assert code == 1 and doc["signals"][0]["status"] == "executing"
    assert binance.positions[("BTCUSDT", "BOTH")] == Decimal("0.008")  # filled, no stop yet

    age_orders(db_path)  # far past the grace period, and the lookups still time out
    binance.fail_next(*LOOKUP, "timeout", "timeout")
    code, doc = execute()
    assert code == 1 and doc["signals"][0]["status"] == "executing"
    assert "cannot ask the exchange" in doc["signals"][0]["reason"]
    code, doc = reconcile()  # reconcile's lookup fails too: still unknown, never not_found
    assert query(db_path, "SELECT status FROM orders WHERE client_order_id = ?", [ENTRY]) == [
        ("unknown",)
    ]
    assert events(db_path, "order_outcome_unknown")  # alerted

    code, doc = execute()  # the network is back: found, filled, protected at the signal's stop
    assert code == 0 and doc["signals"][0]["status"] == "executed"
    reconcile()  # the watchdog's stop of the adopted position and the signal's: one is kept
    stop = assert_protected(binance)
    assert (stop["clientAlgoId"], stop["triggerPrice"]) == (SL, "48500")
    assert entries_sent(binance) == 1


def test_1_reconcile_keeps_a_protective_order_it_could_not_look_up(binance, db_path):
    pull(BUY)
    assert execute()[0] == 0
    binance.algo_orders[SL]["algoStatus"] = "CANCELED"  # left the book: reconcile asks about it
    binance.fail_next(*ALGO_LOOKUP, "timeout")
    reconcile()
    assert query(db_path, "SELECT status FROM orders WHERE client_order_id = ?", [SL]) == [
        ("open",)
    ]  # not "not_found": nothing was learnt
    assert_protected(binance)  # and the watchdog covered the position meanwhile


# --- 2. place before cancel ----------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        "timeout",
        {"code": -2021, "msg": "Order would immediately trigger."},
        {"code": -4014, "msg": "Price not increased by tick size."},
    ],
    ids=["timeout", "-2021", "-4014"],
)
def test_2_a_stop_whose_replacement_fails_keeps_covering(binance, db_path, fault):
    pull(BUY)
    assert execute()[0] == 0
    reconcile()
    binance.positions[("BTCUSDT", "BOTH")] = Decimal("0.005")  # partly closed by hand
    binance.fail_next("/fapi/v1/algoOrder", "POST", fault)
    binance.fail_next(*ALGO_LOOKUP, "timeout")
    code, _ = reconcile()
    assert code == 1  # the failed repair is reported
    # the old reduce-only stop (0.008) still covers the 0.005 left: kept, not cancelled
    assert binance.algo_orders[SL]["algoStatus"] == "NEW"
    assert binance.positions[("BTCUSDT", "BOTH")] == Decimal("0.005")
    reconcile()  # next run: resized, exactly one stop
    assert_protected(binance)


def test_2_a_refused_stop_with_nothing_covering_closes_the_position(binance, db_path):
    """Invariant 2 in the watchdog: the exchange will not take a stop (-4045, max stop
    orders) and no stop covers the position: it is closed, not left bare run after run."""
    pull(BUY)
    binance.fail_next("/fapi/v1/order", "POST", "kill_after_accept")
    assert invoke("--testnet", "execute").exit_code == 130
    binance.fail_next(
        "/fapi/v1/algoOrder", "POST", {"code": -4045, "msg": "Reach max stop order limit."}
    )
    _code, doc = reconcile()
    assert binance.positions[("BTCUSDT", "BOTH")] == 0
    assert next(r["action"] for r in doc["repairs"]) == "stop_failed_closed"
    assert events(db_path, "stop_failed_closed")


# --- 3. a MARKET entry answered NEW -------------------------------------------------------


def test_3_a_market_entry_answered_new_is_looked_up_and_protected(binance, db_path):
    binance.market_answers_new = True
    pull(BUY)
    code, doc = execute()
    assert code == 0, doc.get("error")
    assert doc["signals"][0]["status"] == "executed"
    assert len(binance.calls(*LOOKUP)) >= 1
    assert assert_protected(binance)["triggerPrice"] == "49000"
    assert entries_sent(binance) == 1


# --- 4. hedge mode ------------------------------------------------------------------------


def test_4_hedge_mode_close_removes_the_legs_stop_and_target(binance, db_path):
    binance.hedge = True
    pull(BUY)
    assert execute()[0] == 0
    leg = [o for o in binance.algo_orders.values() if o["positionSide"] == "LONG"]
    assert len(leg) == 2 and not any(o["reduceOnly"] for o in leg)  # hedge: no reduceOnly
    pull({"intent_id": "t-close-1", "symbol": "BTCUSDT", "side": "CLOSE", "confidence": 0.9})
    code, doc = execute()
    assert code == 0, doc.get("error")
    assert binance.positions[("BTCUSDT", "LONG")] == 0
    assert not [o for o in binance.algo_orders.values() if o["algoStatus"] == "NEW"]


def test_4_reconcile_cancels_hedge_mode_orphans(binance, db_path):
    binance.hedge = True
    pull(BUY)
    assert execute()[0] == 0
    binance.positions[("BTCUSDT", "LONG")] = Decimal(0)  # closed outside qtrader
    _code, doc = reconcile()
    assert sorted(r["action"] for r in doc["repairs"]) == ["orphan_cancelled", "orphan_cancelled"]
    assert not [o for o in binance.algo_orders.values() if o["algoStatus"] == "NEW"]


# --- 5. "cannot confirm" is not "cannot place" --------------------------------------------


def test_5_a_stop_of_unknown_outcome_is_looked_up_not_closed_at_market(binance, db_path):
    pull(BUY)
    binance.fail_next("/fapi/v1/algoOrder", "POST", "timeout_after_accept")
    binance.fail_next(*ALGO_LOOKUP, "timeout")
    code, doc = execute()
    assert code == 1 and doc["signals"][0]["status"] == "executing"
    assert "stop-loss outcome unknown" in doc["signals"][0]["reason"]
    assert entries_sent(binance) == 1 and len(binance.order_posts()) == 1  # no market close
    assert binance.positions[("BTCUSDT", "BOTH")] == Decimal("0.008")
    code, doc = execute()  # next run: the stop is found resting; target placed; done
    assert code == 0 and doc["signals"][0]["status"] == "executed"
    assert assert_protected(binance)["clientAlgoId"] == SL
    assert len([p for p in binance.algo_posts() if p.params["type"] == "STOP_MARKET"]) == 1


def test_5_a_stop_the_exchange_refuses_closes_the_position(binance, db_path):
    pull(BUY)
    binance.fail_next(
        "/fapi/v1/algoOrder", "POST", {"code": -2021, "msg": "Order would immediately trigger."}
    )
    code, _doc = execute()
    assert code == 1
    assert binance.positions[("BTCUSDT", "BOTH")] == 0
    assert events(db_path, "stop_loss_failed")


# --- 6. one error never stops the batch ---------------------------------------------------


def test_6_a_failed_cancel_after_a_close_does_not_stop_the_other_signals(binance, db_path):
    pull(BUY)
    assert execute()[0] == 0
    pull({"intent_id": "t-close-1", "symbol": "BTCUSDT", "side": "CLOSE", "confidence": 0.9},
         {"intent_id": "t-eth-1", "symbol": "ETHUSDT", "side": "BUY", "position_size_usd": 60,
          "leverage": 2, "entry_price": 3000, "stop_loss": 2900, "confidence": 0.8})  # fmt: skip
    binance.fail_next("/fapi/v1/algoOrder", "DELETE", 503, 503)
    _code, doc = execute()
    statuses = {s["signal_id"]: s["status"] for s in doc["signals"]}
    assert statuses == {"t-close-1": "executed", "t-eth-1": "executed"}
    assert binance.positions[("BTCUSDT", "BOTH")] == 0
    assert assert_protected(binance, "ETHUSDT")["triggerPrice"] == "2900"
    reconcile()  # the stops the failed cancel left are orphans now: removed
    assert not [o for o in binance.algo_orders.values() if o["symbol"] == "BTCUSDT"
                and o["algoStatus"] == "NEW"]  # fmt: skip


def test_6_a_leverage_timeout_keeps_that_signal_pending_and_sends_the_others(binance, db_path):
    pull({**BUY, "leverage": 2},
         {"intent_id": "t-eth-1", "symbol": "ETHUSDT", "side": "BUY", "position_size_usd": 60,
          "leverage": 3, "entry_price": 3000, "stop_loss": 2900, "confidence": 0.8})  # fmt: skip
    binance.fail_next("/fapi/v1/leverage", "POST", "timeout")
    code, doc = execute()
    statuses = {s["signal_id"]: s["status"] for s in doc["signals"]}
    assert statuses == {"t-buy-1": "pending", "t-eth-1": "executed"}
    assert code == 1  # reported, and retried next run
    assert entries_sent(binance) == 0
    code, doc = execute()
    assert code == 0 and doc["signals"][0]["status"] == "executed"
    assert entries_sent(binance) == 1


def test_6_entries_never_attempted_are_queued_again_not_unknown(binance, db_path):
    """A ban (418) stops the run: the entries after it were never sent; the journal and
    their status say so, and the next run sends them once."""
    pull(BUY, {"intent_id": "t-eth-1", "symbol": "ETHUSDT", "side": "BUY", "position_size_usd": 60,
               "leverage": 3, "entry_price": 3000, "stop_loss": 2900, "confidence": 0.8})  # fmt: skip
    binance.fail_next("/fapi/v1/order", "POST", 418)
    result = invoke("--testnet", "execute")
    assert result.exit_code == 1
    rows = dict(query(db_path, "SELECT signal_id, status FROM signals"))
    assert rows == {"t-buy-1": "executing", "t-eth-1": "pending"}
    eth_entry = client_order_id("t-eth-1", Role.ENTRY)
    assert query(db_path, "SELECT status FROM orders WHERE client_order_id = ?", [eth_entry]) == [
        ("not_sent",)
    ]
    _code, doc = execute()
    assert {s["signal_id"]: s["status"] for s in doc["signals"]}["t-eth-1"] == "executed"
    assert entries_sent(binance, eth_entry) == 1


# --- 7. a reversal that needs a second close ---------------------------------------------


def test_7_a_reversing_signal_closing_twice_gets_a_new_client_id(binance, db_path, monkeypatch):
    monkeypatch.setenv("QTRADER_RISK_OPPOSITE_SIGNAL", "reverse")
    pull(BUY)
    assert execute()[0] == 0
    pull({"intent_id": "t-sell-1", "symbol": "BTCUSDT", "side": "SELL", "position_size_usd": 400,
          "leverage": 3, "entry_price": 50000, "stop_loss": 51000, "confidence": 0.9})  # fmt: skip
    _, doc = execute()
    assert doc["signals"][0]["status"] == "reversing"
    binance.position("BTCUSDT", "0.004")  # a long appeared again before the next run
    for _ in range(2):  # no primary-key failure, run after run
        _code, doc = execute()
        assert "Constraint" not in json.dumps(doc)
    rx = [
        c
        for (c,) in query(db_path, "SELECT client_order_id FROM orders WHERE role = 'reverse_exit'")
    ]
    assert len(rx) == len(set(rx)) == 2


# --- 8. killed between the entry and its stop ---------------------------------------------


def test_8_killed_before_the_stop_reconcile_uses_the_signals_stop_and_keeps_one(binance, db_path):
    pull({**BUY, "stop_loss": 48500})
    binance.fail_next("/fapi/v1/order", "POST", "kill_after_accept")
    assert invoke("--testnet", "execute").exit_code == 130
    assert live_stops(binance) == []
    reconcile()  # protects it at the signal's stop, not the default distance
    assert assert_protected(binance)["triggerPrice"] == "48500"
    _, doc = execute()  # resumes: entry found filled; the stop on its signal is adopted
    assert doc["signals"][0]["status"] == "executed"
    assert assert_protected(binance)["triggerPrice"] == "48500"  # one stop, no duplicate
    _code, doc = reconcile()
    assert doc["repairs"] == []
    assert entries_sent(binance) == 1


# --- 9. while halted ----------------------------------------------------------------------


def test_9_while_halted_filled_entries_are_protected_and_closes_run(binance, db_path):
    pull(BUY)
    binance.fail_next("/fapi/v1/order", "POST", "kill_after_accept")
    assert invoke("--testnet", "execute").exit_code == 130
    binance.position("ETHUSDT", "0.1")
    assert invoke("--testnet", "close-all", "--yes", "--symbol", "ETHUSDT").exit_code == 0
    pull({"intent_id": "t-close-sol", "symbol": "SOLUSDT", "side": "CLOSE", "confidence": 0.9},
         {"intent_id": "t-eth-2", "symbol": "ETHUSDT", "side": "BUY", "position_size_usd": 60,
          "leverage": 3, "entry_price": 3000, "stop_loss": 2900, "confidence": 0.8})  # fmt: skip
    binance.position("SOLUSDT", "1")
    code, doc = execute()
    assert code == 3  # halted, and said so
    statuses = {s["signal_id"]: s["status"] for s in doc["signals"]}
    assert statuses == {"t-buy-1": "executed", "t-close-sol": "executed", "t-eth-2": "pending"}
    assert assert_protected(binance)["triggerPrice"] == "49000"
    assert binance.positions[("SOLUSDT", "BOTH")] == 0
    assert entries_sent(binance, client_order_id("t-eth-2", Role.ENTRY)) == 0


# --- 10. what the watchdog closes is settled in the same run ------------------------------


def test_10_a_watchdog_close_is_settled_in_the_same_run(binance, db_path):
    pull(BUY)
    assert execute()[0] == 0
    reconcile()
    binance.algo_orders[SL]["algoStatus"] = "CANCELED"  # someone cancelled the stop
    binance.marks["BTCUSDT"] = "48000"  # and the price went through it
    _code, doc = reconcile()
    assert binance.positions[("BTCUSDT", "BOTH")] == 0
    assert [s["exit_reason"] for s in doc["settled"]] == ["watchdog"]
    assert query(db_path, "SELECT count(*) FROM v_open_positions") == [(0,)]
    assert not [o for o in binance.algo_orders.values() if o["algoStatus"] == "NEW"]


# --- 11. the minimum notional is checked at the mark --------------------------------------


def test_11_min_notional_is_checked_at_the_mark_before_sending(binance, db_path):
    binance.marks["BTCUSDT"] = "49990"  # 0.002 BTC is 100 at the signal, 99.98 at the mark
    pull({**BUY, "position_size_usd": 100})
    _code, doc = execute()
    (signal,) = doc["signals"]
    assert signal["status"] == "rejected" and "mark" in signal["reason"]
    assert binance.order_posts() == []  # refused here with the reason, not -4164 there


# --- 12. a close sized from a fresh read --------------------------------------------------


def test_12_a_close_is_sized_from_a_fresh_read_and_leaves_no_part_unprotected(binance, db_path):
    pull(BUY)
    assert execute()[0] == 0
    pull({"intent_id": "t-eth-1", "symbol": "ETHUSDT", "side": "BUY", "position_size_usd": 60,
          "leverage": 3, "entry_price": 3000, "stop_loss": 2900, "confidence": 0.8},
         {"intent_id": "t-close-1", "symbol": "BTCUSDT", "side": "CLOSE", "confidence": 0.9})  # fmt: skip

    def btc_grows(params: dict) -> None:  # between the run's first read and the close
        if params["symbol"] == "ETHUSDT":
            binance.positions[("BTCUSDT", "BOTH")] += Decimal("0.004")

    binance.on_order = btc_grows
    _code, _doc = execute()
    binance.on_order = None
    closes = [p for p in binance.order_posts() if p.params["symbol"] == "BTCUSDT"]
    assert closes[-1].params["quantity"] == "0.012"
    assert binance.positions[("BTCUSDT", "BOTH")] == 0


# --- SIGINT / SIGTERM ---------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signals.SIGINT, signals.SIGTERM])
def test_an_interrupt_finishes_protecting_the_filled_entry_then_exits_130(binance, db_path, signum):
    pull(BUY, {"intent_id": "t-eth-1", "symbol": "ETHUSDT", "side": "BUY", "position_size_usd": 60,
               "leverage": 3, "entry_price": 3000, "stop_loss": 2900, "confidence": 0.8})  # fmt: skip

    def interrupt(params: dict) -> None:
        binance.on_order = None
        os.kill(os.getpid(), signum)

    binance.on_order = interrupt
    result = invoke("--testnet", "execute")
    assert result.exit_code == 130
    assert_protected(binance)  # the entry in hand got its stop
    assert entries_sent(binance, client_order_id("t-eth-1", Role.ENTRY)) == 0
    assert dict(query(db_path, "SELECT signal_id, status FROM signals")) == {
        "t-buy-1": "executed",
        "t-eth-1": "pending",
    }


def test_grace_period_is_measured_from_the_order_row(binance, db_path):
    """A give-up needs the exchange's own "does not exist" and the grace period: a recent
    order is never given up, an old one is, and neither is re-sent."""
    pull(BUY)
    binance.fail_next("/fapi/v1/order", "POST", "timeout")  # never reached the exchange
    assert execute()[1]["signals"][0]["status"] == "executing"
    assert execute()[1]["signals"][0]["status"] == "executing"
    age_orders(db_path, 3600)
    _code, doc = execute()
    assert doc["signals"][0]["status"] == "rejected" and len(binance.order_posts()) == 1


def test_10_what_close_all_closes_is_settled_in_the_same_run(binance, db_path):
    pull(BUY)
    assert execute()[0] == 0
    reconcile()
    code, doc = invoke_json("--testnet", "close-all", "--yes")
    assert code == 0 and doc["flat"] is True
    assert query(db_path, "SELECT symbol, exit_reason FROM v_trades") == [("BTCUSDT", "close_all")]
    assert query(db_path, "SELECT count(*) FROM v_open_positions") == [(0,)]
