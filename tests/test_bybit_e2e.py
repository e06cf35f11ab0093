"""The Binance end-to-end scenarios, on Bybit v5 (tests/bybit_fake.py): entry with protection,
a burst of signals, a lost answer and a crash with a rerun (never a second entry), stop and
target firing and settling with Bybit's fees and funding to the cent, CLOSE, close-all flat,
breakers, and the watchdog's repairs — through the CLI, the way a user runs it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal

import duckdb
import pytest

from qtrader.domain.orders import Role, client_order_id
from qtrader.store import open_store
from tests.bybit_fake import HOST
from tests.conftest import invoke, invoke_json, query

pytestmark = pytest.mark.usefixtures("bybit_env", "signal_sizing")

BUY = {"intent_id": "y-buy-1", "symbol": "BTC/USDT:USDT", "side": "BUY", "position_size_usd": 400,
       "leverage": 3, "entry_price": 50000, "stop_loss": 49000, "take_profit": 52000,
       "confidence": 0.78}  # fmt: skip
ENTRY = client_order_id("y-buy-1", Role.ENTRY)
SL = client_order_id("y-buy-1", Role.STOP_LOSS)
TP = client_order_id("y-buy-1", Role.TAKE_PROFIT)


def pull(*signals: dict) -> None:
    lines = "\n".join(json.dumps(s) for s in signals)
    assert invoke("pull-signals", "--from", "-", input=lines).exit_code == 0


def execute(*args: str) -> tuple[int, dict]:
    return invoke_json("--testnet", "execute", *args)


def reconcile() -> tuple[int, dict]:
    return invoke_json("--testnet", "reconcile")


def entries(bybit, cid: str = ENTRY) -> int:
    return sum(1 for c in bybit.creates() if c["orderLinkId"] == cid)


def stops(bybit, symbol: str = "BTCUSDT") -> list[dict]:
    """Resting conditional orders that fire against a long on the way down (or a short up)."""
    held = bybit.positions.get(symbol, Decimal(0))
    return [o for o in bybit.conditional(symbol)
            if (o["triggerDirection"] == 2) == (held > 0)]  # fmt: skip


def assert_protected(bybit, symbol: str = "BTCUSDT") -> dict:
    held = bybit.positions[symbol]
    assert held != 0
    (stop,) = stops(bybit, symbol)
    assert Decimal(stop["qty"]) == abs(held) and stop["reduceOnly"] and stop["closeOnTrigger"]
    assert stop["triggerBy"] == "MarkPrice"
    return stop


def test_entry_with_protection_what_was_sent_and_stored(bybit, db_path):
    pull(BUY)
    code, doc = execute()
    assert code == 0, json.dumps(doc, default=str)[:2000]
    assert doc["exchange"] == HOST and doc["exchange_name"] == "bybit" and doc["mode"] == "testnet"
    (signal,) = doc["signals"]
    assert (signal["status"], signal["quantity"], signal["avg_price"]) == (
        "executed",
        "0.008",
        "50000",
    )
    leverage = [s.params for s in bybit.calls("/v5/position/set-leverage")]
    assert leverage == [{"category": "linear", "symbol": "BTCUSDT", "buyLeverage": "3",
                         "sellLeverage": "3"}]  # fmt: skip
    assert [s.params for s in bybit.calls("/v5/account/set-margin-mode")] == [
        {"setMarginMode": "ISOLATED_MARGIN"}]  # fmt: skip
    entry, stop, target = bybit.creates()
    assert entry == {"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Market",
                     "qty": "0.008", "orderLinkId": ENTRY, "positionIdx": 0}  # fmt: skip
    assert (stop["orderLinkId"], stop["side"], stop["qty"], stop["triggerPrice"],
            stop["triggerDirection"], stop["triggerBy"], stop["reduceOnly"]) == (
        SL, "Sell", "0.008", "49000", 2, "MarkPrice", True)  # fmt: skip
    assert (target["orderLinkId"], target["triggerPrice"], target["triggerDirection"]) == (
        TP,
        "52000",
        1,
    )
    assert_protected(bybit)
    rows = query(db_path, "SELECT role, status, exchange, symbol FROM orders ORDER BY created_at")
    assert rows == [("entry", "filled", "bybit", "BTCUSDT"), ("stop_loss", "open", "bybit", "BTCUSDT"),
                    ("take_profit", "open", "bybit", "BTCUSDT")]  # fmt: skip
    # a second run sends nothing more for that signal
    code, _ = execute()
    assert code == 0 and len(bybit.creates()) == 3
    text = invoke("--testnet", "status").stdout
    assert "TESTNET (Bybit demo trading)" in text


def test_a_burst_of_signals_one_entry_each_all_protected(bybit, db_path, monkeypatch):
    monkeypatch.setenv("QTRADER_RISK_MAX_OPEN_POSITIONS", "10")
    monkeypatch.setenv("QTRADER_RISK_MAX_TOTAL_EXPOSURE_USD", "100000")
    burst = []
    for n, (symbol, side, price, sl, tp) in enumerate([
            ("BTCUSDT", "BUY", 50000, 49000, 52000), ("ETH-USDT", "SELL", 3000, 3100, 2800),
            ("SOL/USDT", "BUY", 140, 135, 150), ("BNBUSDT", "SELL", 935, 960, 900),
            ("XRP-USDT-SWAP", "BUY", 2.07, 2.0, 2.2)]):  # fmt: skip
        burst.append({"intent_id": f"burst-{n}", "symbol": symbol, "side": side,
                      "position_size_usd": 300, "leverage": 2, "entry_price": price,
                      "stop_loss": sl, "take_profit": tp, "confidence": 0.8})  # fmt: skip
    pull(*burst, *burst)  # the same burst twice: deduplicated
    code, doc = execute()
    assert code == 0, json.dumps(doc, default=str)[:2000]
    assert [s["status"] for s in doc["signals"]] == ["executed"] * 5
    market = [c for c in bybit.creates() if "triggerPrice" not in c]
    assert sorted(c["symbol"] for c in market) == [
        "BNBUSDT",
        "BTCUSDT",
        "ETHUSDT",
        "SOLUSDT",
        "XRPUSDT",
    ]
    for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT"):
        assert_protected(bybit, symbol)
        assert len(bybit.conditional(symbol)) == 2
    assert bybit.positions["ETHUSDT"] < 0 and bybit.positions["BNBUSDT"] < 0
    assert query(db_path, "SELECT DISTINCT symbol FROM signals ORDER BY 1")[0] == ("BNBUSDT",)


def test_a_lost_answer_is_looked_up_never_sent_twice(bybit, db_path):
    bybit.hide_new_orders = 1  # and Bybit is slow to show it
    bybit.fail_next("/v5/order/create", "POST", "dropped_after_accept")
    pull(BUY)
    code, doc = execute()
    assert code == 0, json.dumps(doc, default=str)[:2000]
    assert entries(bybit) == 1 and bybit.accepted.count(ENTRY) == 1
    looked = [
        s.params for s in bybit.calls("/v5/order/realtime") if s.params.get("orderLinkId") == ENTRY
    ]
    assert looked and looked[0] == {"category": "linear", "symbol": "BTCUSDT", "orderLinkId": ENTRY}
    assert doc["signals"][0]["status"] == "executed"
    assert_protected(bybit)


def test_a_crash_after_bybit_took_the_entry_and_a_rerun(bybit, db_path):
    bybit.fail_next("/v5/order/create", "POST", "kill_after_accept")
    pull(BUY)
    result = invoke("--testnet", "execute")
    assert result.exit_code != 0
    assert bybit.positions["BTCUSDT"] == Decimal("0.008") and bybit.conditional() == []
    bybit.restart()  # and Bybit restarted too: the entry is only in the order history
    code, doc = execute()
    assert code == 0, json.dumps(doc, default=str)[:2000]
    assert entries(bybit) == 1  # never a second entry
    assert_protected(bybit)
    assert query(db_path, "SELECT status FROM orders WHERE client_order_id = ?", [ENTRY]) == [
        ("filled",)
    ]


def test_stop_fires_and_settles_with_bybits_fees_and_funding_to_the_cent(bybit, db_path):
    pull(BUY)
    execute()
    bybit.funding("BTCUSDT", "-0.22")  # paid: Bybit's execFee +0.22
    bybit.funding("BTCUSDT", "0.04")  # received
    code, _ = reconcile()
    assert code == 0
    bybit.fire(SL, "49000")
    code, doc = reconcile()
    assert code == 0, doc.get("error")
    (settled,) = doc["settled"]
    # long 0.008 from 50,000 to 49,000: -8 USDT; taker fees 0.055 % of 400 and of 392
    assert settled["exit_reason"] == "stop_loss"
    assert (settled["exit_price"], settled["realized_pnl"], settled["fees"], settled["funding"]) == (
        "49000", "-8", "0.4356", "-0.18")  # fmt: skip
    ledger = bybit.ledger("BTCUSDT")
    (trade,) = query(
        db_path, "SELECT gross_pnl, fees, funding, net_pnl, exit_reason, exchange FROM v_trades"
    )
    assert trade[0] == ledger["REALIZED_PNL"] and -trade[1] == ledger["COMMISSION"]
    assert trade[2] == ledger["FUNDING_FEE"] == Decimal("-0.18")
    assert trade[3] == Decimal("-8.6156") and trade[4:] == ("stop_loss", "bybit")
    # the target left behind is an orphan: cancelled by its orderId
    (cancel,) = bybit.calls("/v5/order/cancel", "POST")
    assert cancel.params["orderId"] == bybit.orders[TP]["orderId"]
    assert bybit.conditional() == []
    code, report = invoke_json("--testnet", "pnl-report")
    assert code == 0
    assert Decimal(report["totals"]["net_pnl"]) == sum(ledger.values())


def test_target_fires_and_settles(bybit, db_path):
    pull(BUY)
    execute()
    bybit.fire(TP, "52000")
    code, doc = reconcile()
    assert code == 0, doc.get("error")
    (settled,) = doc["settled"]
    assert (settled["exit_reason"], settled["realized_pnl"]) == ("take_profit", "16")
    assert Decimal(settled["fees"]) == Decimal("0.4488")  # 0.055 % of 400 and of 416
    assert bybit.orders[SL]["orderStatus"] == "Deactivated"


def test_close_signal_and_a_close_when_already_flat(bybit, db_path):
    pull(BUY)
    execute()
    pull({"intent_id": "y-close-1", "symbol": "BTCUSDT", "side": "CLOSE", "confidence": 0.9})
    code, doc = execute()
    assert code == 0, json.dumps(doc, default=str)[:2000]
    close = bybit.creates()[-1]
    assert (close["side"], close["qty"], close["reduceOnly"], close["orderLinkId"]) == (
        "Sell", "0.008", True, client_order_id("y-close-1", Role.EXIT))  # fmt: skip
    assert bybit.positions["BTCUSDT"] == 0 and bybit.conditional() == []
    # flat by the time the CLOSE reaches Bybit: 110017, and qtrader says already flat
    pull({**BUY, "intent_id": "y-buy-2"})
    execute()
    bybit.fail_next("/v5/order/create", "POST",
                    {"retCode": 110017, "retMsg": "Reduce-only rule not satisfied"})  # fmt: skip
    pull({"intent_id": "y-close-2", "symbol": "BTCUSDT", "side": "CLOSE", "confidence": 0.9})
    code, doc = execute()
    (closing,) = doc["signals"]
    assert (closing["status"], closing["reason"]) == (
        "skipped",
        "the position was already flat (110017)",
    )
    refused = query(db_path, "SELECT refusal FROM orders WHERE client_order_id = ?",
                    [client_order_id("y-close-2", Role.EXIT)])  # fmt: skip
    assert refused == [("nothing_to_reduce",)]


def test_close_all_gets_flat_from_the_exchange_alone(bybit, db_path):
    bybit.position("BTCUSDT", "0.01")
    bybit.position("ETHUSDT", "-0.1")
    for link, symbol, side, trigger, direction in (("sl-btc", "BTCUSDT", "Sell", "49000", 2),
                                                  ("sl-eth", "ETHUSDT", "Buy", "3100", 1)):  # fmt: skip
        bybit._create({"category": "linear", "symbol": symbol, "side": side, "orderType": "Market",
                       "qty": "0", "orderLinkId": link, "triggerPrice": trigger,
                       "triggerDirection": direction, "reduceOnly": True, "closeOnTrigger": True})  # fmt: skip
    assert not db_path.exists()
    code, doc = invoke_json("--testnet", "close-all", "--yes")
    assert code == 0, doc
    assert doc["flat"] is True and doc["halted"] is True
    closes = {(c["symbol"], c["side"], c["qty"], c.get("reduceOnly")) for c in bybit.creates()
              if c["orderLinkId"] not in ("sl-btc", "sl-eth")}  # fmt: skip
    assert closes == {("BTCUSDT", "Sell", "0.01", True), ("ETHUSDT", "Buy", "0.1", True)}
    assert all(q == 0 for q in bybit.positions.values())
    assert bybit.conditional() == []
    cancels = {
        (s.params["symbol"], s.params["orderFilter"]) for s in bybit.calls("/v5/order/cancel-all")
    }
    assert ("BTCUSDT", "StopOrder") in cancels and ("ETHUSDT", "StopOrder") in cancels
    # the kill switch holds: execute refuses until resume
    pull(BUY)
    assert invoke("--testnet", "execute").exit_code == 3
    assert entries(bybit) == 0
    code, again = invoke_json("--testnet", "close-all", "--yes")
    assert code == 0 and again["flat"] is True


def test_the_drawdown_breaker_halts_on_bybit_too(bybit, db_path):
    invoke("--testnet", "status")
    store = open_store(str(db_path))
    store.execute("INSERT INTO equity VALUES (?, 'testnet', 0, 11000, 0, 11000)",
                  [datetime.utcnow() - timedelta(days=3)])  # fmt: skip
    store.close()
    pull(BUY)
    result = invoke("--testnet", "execute")
    assert result.exit_code == 3 and "drawdown 9.09% from peak 11000" in result.stderr
    assert bybit.creates() == []


def test_the_watchdog_replaces_a_missing_stop_place_before_cancel(bybit, db_path):
    pull(BUY)
    execute()
    bybit.orders[SL]["orderStatus"] = "Deactivated"  # cancelled by hand on Bybit
    code, doc = reconcile()
    assert code == 0, doc.get("error")
    assert_protected(bybit)
    assert any(r["action"].startswith("stop") for r in doc["repairs"]), doc["repairs"]


def test_a_stop_bybit_refuses_as_crossed_closes_the_position(bybit, db_path):
    pull(BUY)
    original = bybit._create

    def entry_then_crash(params):
        answer = original(params)
        if params["orderLinkId"] == ENTRY:
            bybit.marks["BTCUSDT"] = "48900"  # the price falls through the stop at once
        return answer

    bybit.routes[("POST", "/v5/order/create")] = entry_then_crash
    code, doc = execute()
    (signal,) = doc["signals"]
    assert (
        code == 1 and signal["reason"] == "stop-loss could not be placed; position closed at once"
    )
    assert bybit.positions["BTCUSDT"] == 0  # never a position without a stop
    refused = query(
        db_path, "SELECT error_code, refusal FROM orders WHERE client_order_id = ?", [SL]
    )
    assert refused == [(110093, "would_trigger_now")]


def test_one_database_one_exchange_per_mode(bybit, db_path, monkeypatch):
    pull(BUY)
    execute()
    monkeypatch.setenv("QTRADER_EXCHANGE_NAME", "binanceusdm")
    monkeypatch.setenv("BINANCE_API_KEY", "test-key-0123456789abcdef")
    monkeypatch.setenv("BINANCE_API_SECRET", "test-secret-fedcba9876543210")
    code, doc = reconcile()
    assert code == 2 and "holds testnet records of bybit" in doc["error"]


def test_no_secret_reaches_the_database(bybit, db_path):
    from tests.conftest import TEST_API_KEY, TEST_API_SECRET

    pull(BUY)
    execute()
    reconcile()
    with duckdb.connect(str(db_path), read_only=True) as conn:
        for (table,) in conn.execute("SELECT table_name FROM information_schema.tables").fetchall():
            dump = str(conn.execute(f'SELECT * FROM "{table}"').fetchall())
            assert TEST_API_KEY not in dump and TEST_API_SECRET not in dump, table
    calls = query(db_path, "SELECT count(*), count(DISTINCT exchange) FROM exchange_calls")
    assert calls[0][0] > 0 and calls[0][1] == 1
    assert query(db_path, "SELECT DISTINCT exchange FROM exchange_calls") == [("bybit",)]
    journaled = query(db_path, "SELECT method, path FROM exchange_calls WHERE client_order_id = ? "
                               "ORDER BY call_id", [ENTRY])  # fmt: skip
    assert journaled[0] == ("POST", "/v5/order/create")  # the journal knows Bybit's orderLinkId


# --- failure paths, as on Binance (tests/test_failure_paths.py) ---------------------------


@pytest.fixture
def one_read_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QTRADER_EXCHANGE_READ_RETRIES", "1")


def age_orders(db_path, seconds: int = 120) -> None:
    with duckdb.connect(str(db_path)) as conn:
        conn.execute("UPDATE orders SET created_at = created_at - to_seconds(?)", [seconds])


@pytest.mark.usefixtures("one_read_attempt")
def test_a_lookup_that_gets_no_answer_never_gives_the_entry_up(bybit, db_path):
    pull({**BUY, "stop_loss": 48500})
    bybit.fail_next("/v5/order/create", "POST", "timeout_after_accept")
    bybit.fail_next("/v5/order/realtime", "GET", "timeout")
    code, doc = execute()
    assert code == 1 and doc["signals"][0]["status"] == "executing"
    assert bybit.positions["BTCUSDT"] == Decimal("0.008")
    age_orders(db_path)  # far past the grace period, and the lookups still get no answer
    bybit.fail_next(
        "/v5/order/realtime", "GET", {"retCode": 10016, "retMsg": "Internal system error."}
    )
    code, doc = execute()
    assert code == 1 and "cannot ask the exchange" in doc["signals"][0]["reason"]
    assert query(db_path, "SELECT status FROM orders WHERE client_order_id = ?", [ENTRY]) == [
        ("unknown",)
    ]
    code, doc = execute()  # Bybit answers again: found filled, protected at the signal's stop
    assert code == 0 and doc["signals"][0]["status"] == "executed"
    assert assert_protected(bybit)["triggerPrice"] == "48500"
    assert entries(bybit) == 1


def test_a_stop_of_unknown_outcome_is_looked_up_not_sent_twice(bybit, db_path):
    pull(BUY)
    creates = []

    def chaos(method, path):
        if path == "/v5/order/create":
            creates.append(path)
            if len(creates) == 2:  # the stop: Bybit takes it, the answer is lost
                return "timeout_after_accept"
        return None

    bybit.chaos = chaos
    code, doc = execute()
    assert code == 0, json.dumps(doc, default=str)[:2000]
    assert [c["orderLinkId"] for c in bybit.creates()].count(SL) == 1
    assert_protected(bybit)
    assert query(db_path, "SELECT status FROM orders WHERE client_order_id = ?", [SL]) == [
        ("open",)
    ]


def test_killed_after_bybit_took_the_entry_reconcile_protects_at_the_signals_stop(bybit, db_path):
    pull({**BUY, "stop_loss": 48500})
    bybit.fail_next("/v5/order/create", "POST", "kill_after_accept")
    assert invoke("--testnet", "execute").exit_code == 130
    assert bybit.conditional() == []
    reconcile()  # the position without a stop is protected at once, at the signal's stop
    assert assert_protected(bybit)["triggerPrice"] == "48500"
    _, doc = execute()  # resumes: the entry found filled, the watchdog's stop adopted
    assert doc["signals"][0]["status"] == "executed"
    assert assert_protected(bybit)["triggerPrice"] == "48500"
    _, doc = reconcile()
    assert doc["repairs"] == [] and entries(bybit) == 1


def test_insufficient_margin_is_rejected_with_the_fix_and_nothing_else_sent(bybit, db_path):
    bybit.fail_next(
        "/v5/order/create", "POST", {"retCode": 110007, "retMsg": "ab not enough for new order"}
    )
    pull(BUY)
    _code, doc = execute()
    (signal,) = doc["signals"]
    assert signal["status"] == "rejected"
    assert "110007" in signal["reason"] and "lower the size or the leverage" in signal["reason"]
    assert [c["orderLinkId"] for c in bybit.creates()] == [ENTRY]  # nothing else sent
    assert query(db_path, "SELECT refusal FROM orders") == [("insufficient_margin",)]
    assert bybit.positions.get("BTCUSDT", Decimal(0)) == 0


def test_close_all_a_close_that_fails_keeps_its_stop(bybit, db_path):
    bybit.position("BTCUSDT", "0.01")
    bybit.position("ETHUSDT", "-0.1")
    for link, symbol, side, trigger, direction in (("sl-btc", "BTCUSDT", "Sell", "49000", 2),
                                                  ("sl-eth", "ETHUSDT", "Buy", "3100", 1)):  # fmt: skip
        bybit._create({"category": "linear", "symbol": symbol, "side": side, "orderType": "Market",
                       "qty": "0", "orderLinkId": link, "triggerPrice": trigger,
                       "triggerDirection": direction, "reduceOnly": True, "closeOnTrigger": True})  # fmt: skip
    original = bybit._create

    def refuse_btc(params):
        if params["symbol"] == "BTCUSDT" and "triggerPrice" not in params:
            return {"retCode": 10016, "retMsg": "Internal system error.", "result": {},
                    "retExtInfo": {}, "time": 0}  # fmt: skip
        return original(params)

    bybit.routes[("POST", "/v5/order/create")] = refuse_btc
    code, doc = invoke_json("--testnet", "close-all", "--yes")
    assert code == 1 and doc["flat"] is False
    assert bybit.positions["ETHUSDT"] == 0 and bybit.positions["BTCUSDT"] == Decimal("0.01")
    assert bybit.orders["sl-btc"]["orderStatus"] == "Untriggered"  # still protected
    assert bybit.orders["sl-eth"]["orderStatus"] == "Deactivated"


def test_doctor_on_bybit_and_an_account_in_hedge_mode(bybit, db_path):
    result = invoke("--testnet", "doctor")
    assert result.exit_code == 0, result.stdout
    assert "TESTNET (Bybit demo trading)" in result.stdout and "BYBIT_API_KEY=test" in result.stdout
    assert "https://api-demo.bybit.com" in result.stdout
    bybit.hedge = True
    bybit.leverage["BTCUSDT"] = "3"  # Bybit lists the hedge legs of a set-up symbol
    result = invoke("--testnet", "doctor")
    assert result.exit_code == 1 and "one-way mode only" in result.stdout
    pull(BUY)
    _code, doc = execute()
    (signal,) = doc["signals"]
    assert (
        signal["status"] == "rejected"
        and "switch the USDT perpetuals to one-way" in signal["reason"]
    )
    assert bybit.positions.get("BTCUSDT", Decimal(0)) == 0


def test_a_stop_bybit_is_slow_to_show_is_resent_and_its_duplicate_refused(bybit, db_path):
    """The stop's answer is lost and Bybit shows it only late: the lookup (asked twice) says
    not found, the stop is sent again, Bybit refuses the reused orderLinkId (110072), and the
    lookup that follows finds the first copy. One stop on the book."""
    pull(BUY)
    creates = []

    def chaos(method, path):
        if path == "/v5/order/create":
            creates.append(path)
            if len(creates) == 2:
                bybit.hide_new_orders = 4  # realtime and history, twice each
                return "timeout_after_accept"
            bybit.hide_new_orders = 0
        return None

    bybit.chaos = chaos
    code, doc = execute()
    assert code == 0, json.dumps(doc, default=str)[:2000]
    stop_posts = [c for c in bybit.creates() if c["orderLinkId"] == SL]
    assert len(stop_posts) == 2  # sent again after "not found"...
    assert bybit.accepted.count(SL) == 1  # ...and Bybit kept one
    assert_protected(bybit)
    assert query(db_path, "SELECT status FROM orders WHERE client_order_id = ?", [SL]) == [
        ("open",)
    ]
