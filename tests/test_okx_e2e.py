"""The Binance end-to-end scenarios on OKX: every command through the OKX adapter against the
OKX stand-in (contracts, algo orders, bills), with the same promises — one entry per signal
whatever crashes, a stop on every position, reports equal to OKX's bills to the cent, and
close-all flat."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import responses

from qtrader.domain.okx_ids import okx_client_id
from qtrader.domain.orders import Role, client_order_id
from tests.conftest import invoke, invoke_json, query
from tests.okx_fake import FakeOkx

pytestmark = pytest.mark.usefixtures("signal_sizing")
D = Decimal
CENT = D("0.01")
BUY = {"intent_id": "t-buy-1", "symbol": "BTCUSDT", "side": "BUY", "position_size_usd": 425.455,
       "leverage": 3, "entry_price": 50000, "stop_loss": 49000, "take_profit": 52000, "confidence": 0.78}  # fmt: skip
BTC = "BTC-USDT-SWAP"


@pytest.fixture
def okx(monkeypatch):
    monkeypatch.setenv("QTRADER_EXCHANGE_NAME", "okx")
    monkeypatch.setenv("OKX_API_KEY", "okx-key-0123456789abcdef")
    monkeypatch.setenv("OKX_API_SECRET", "okx-secret-fedcba9876543210")
    monkeypatch.setenv("OKX_API_PASSPHRASE", "Pass-phrase-42")
    monkeypatch.setenv("QTRADER_EXCHANGE_RETRY_WAIT_S", "0")
    from qtrader.exchange.okx_limits import EndpointLimits

    monkeypatch.setattr(EndpointLimits, "wait_s", lambda self, path: 0.0)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeOkx().install(mock)


def pull(*signals: dict) -> None:
    lines = "\n".join(json.dumps(s) for s in signals)
    assert invoke("pull-signals", "--from", "-", input=lines).exit_code == 0


def execute(*args: str) -> tuple[int, dict]:
    return invoke_json("--testnet", "execute", *args)


def reconcile() -> dict:
    code, doc = invoke_json("--testnet", "reconcile")
    assert code == 0, json.dumps(doc, default=str)[:3000]
    return doc


def okx_id(signal_id: str, role: Role) -> str:
    return okx_client_id(client_order_id(signal_id, role))


def entries_sent(fake: FakeOkx, signal_id: str = "t-buy-1") -> int:
    cid = okx_id(signal_id, Role.ENTRY)
    return sum(1 for s in fake.order_posts() if s.body.get("clOrdId") == cid)


def live_stops(fake: FakeOkx, inst: str = BTC) -> list[dict]:
    return [a for a in fake.live_algos(inst) if a["slTriggerPx"]]


# --- a signal, end to end ------------------------------------------------------------------


def test_buy_places_entry_stop_and_target_in_contracts_and_keeps_base_quantities(okx, db_path):
    pull(BUY)
    code, doc = execute()
    assert code == 0, json.dumps(doc, default=str)[:3000]
    assert doc["mode"] == "testnet"
    (entry,) = okx.order_posts()
    # 425.455 USDT at 50,000 = 0.0085 BTC (step 0.0001 BTC = one lot of 0.01 contracts)
    assert entry.body == {"instId": BTC, "tdMode": "isolated", "side": "buy", "sz": "0.85",
                          "ordType": "market", "clOrdId": okx_id("t-buy-1", Role.ENTRY)}  # fmt: skip
    assert "expTime" in entry.headers and entry.headers["x-simulated-trading"] == "1"
    stop, target = okx.algo_posts()
    assert (stop.body["slTriggerPx"], stop.body["sz"], stop.body["reduceOnly"]) == (
        "49000",
        "0.85",
        True,
    )
    assert (target.body["tpTriggerPx"], target.body["sz"]) == ("52000", "0.85")
    assert stop.body["algoClOrdId"] == okx_id("t-buy-1", Role.STOP_LOSS)
    leverage = okx.calls("/api/v5/account/set-leverage", "POST")
    assert [c.body for c in leverage] == [{"instId": BTC, "lever": "3", "mgnMode": "isolated"}]
    (signal,) = doc["signals"]
    assert (signal["status"], signal["quantity"], signal["avg_price"]) == (
        "executed",
        "0.0085",
        "50000",
    )
    assert okx.contracts(BTC) == D("0.85")
    rows = query(db_path, "SELECT role, status, filled_qty FROM orders ORDER BY created_at")
    assert [(r[0], r[1]) for r in rows] == [
        ("entry", "filled"),
        ("stop_loss", "open"),
        ("take_profit", "open"),
    ]
    assert rows[0][2] == D("0.0085")  # the base asset in the tables
    doc = reconcile()
    assert doc["repairs"] == []  # the stop and target are recognised on OKX's algo book
    (pos,) = query(db_path, "SELECT symbol, qty, stop_loss, take_profit FROM v_open_positions")
    assert pos == ("BTCUSDT", D("0.0085"), D("49000"), D("52000"))


def test_a_burst_of_signals_sends_one_entry_each_and_protects_every_one(okx, db_path):
    symbols = {"BTCUSDT": (50000, 49000), "ETHUSDT": (3000, 2900), "SOLUSDT": (140, 130),
               "XRPUSDT": (2.07, 1.9), "DOGEUSDT": (0.16, 0.15)}  # fmt: skip
    signals = []
    for n in range(20):
        symbol = list(symbols)[n % 5]
        price, stop = symbols[symbol]
        signals.append({"intent_id": f"t-burst-{n}", "symbol": symbol, "side": "BUY",
                        "position_size_usd": 100, "leverage": 2, "entry_price": price,
                        "stop_loss": stop, "confidence": 0.8})  # fmt: skip
    pull(*signals)
    code, doc = execute()
    assert code == 0, json.dumps(doc, default=str)[:2000]
    # one position per symbol (pyramiding off): five entries, five stops, nothing twice
    executed = [s for s in doc["signals"] if s["status"] == "executed"]
    assert len(executed) == 5
    sent = [s.body["clOrdId"] for s in okx.order_posts()]
    assert len(sent) == len(set(sent)) == 5
    assert all(len(c) <= 32 and c.isalnum() for c in sent)
    for symbol in symbols:
        inst = symbol.removesuffix("USDT") + "-USDT-SWAP"
        assert len(live_stops(okx, inst)) == 1
        stop = live_stops(okx, inst)[0]
        assert D(stop["sz"]) == okx.contracts(inst)  # the stop covers the whole position


# --- crashes, lost answers, reruns ---------------------------------------------------------


def test_a_lost_answer_after_a_filled_market_entry_is_looked_up_never_resent(okx, db_path):
    pull(BUY)
    okx.fail_next("/api/v5/trade/order", "POST", "timeout_after_accept")
    code, doc = execute()
    assert code == 0, json.dumps(doc, default=str)[:2000]
    assert doc["signals"][0]["status"] == "executed"
    assert entries_sent(okx) == 1 and okx.contracts(BTC) == D("0.85")  # not 1.7
    lookups = [s for s in okx.calls("/api/v5/trade/order", "GET")
               if s.params.get("clOrdId") == okx_id("t-buy-1", Role.ENTRY)]  # fmt: skip
    assert lookups  # looked up by client id before deciding anything
    assert len(live_stops(okx)) == 1
    execute()  # a rerun changes nothing
    assert entries_sent(okx) == 1 and okx.contracts(BTC) == D("0.85")


def test_killed_after_okx_took_the_entry_the_rerun_adopts_it(okx, db_path):
    pull(BUY)
    okx.fail_next("/api/v5/trade/order", "POST", "kill_after_accept")
    assert invoke("--testnet", "execute").exit_code == 130
    assert live_stops(okx) == []  # the window: filled, no stop yet
    code, doc = execute()  # resumes: found filled by its client id, then protected
    assert code == 0 and doc["signals"][0]["status"] == "executed"
    assert entries_sent(okx) == 1 and okx.contracts(BTC) == D("0.85")
    assert [s["slTriggerPx"] for s in live_stops(okx)] == ["49000"]


def test_killed_after_the_entry_reconcile_protects_the_position(okx, db_path):
    pull({**BUY, "stop_loss": 48500})
    okx.fail_next("/api/v5/trade/order", "POST", "kill_after_accept")
    assert invoke("--testnet", "execute").exit_code == 130
    reconcile()  # the watchdog: a position without a stop gets the signal's stop
    assert [s["slTriggerPx"] for s in live_stops(okx)] == ["48500"]
    _, doc = execute()
    assert doc["signals"][0]["status"] == "executed"
    assert len(live_stops(okx)) == 1 and entries_sent(okx) == 1


def test_a_refused_stop_closes_the_position(okx, db_path):
    pull(BUY)
    okx.fail_next("/api/v5/trade/order-algo", "POST",
                  {"code": "1", "msg": "", "data": [{"algoClOrdId": "", "algoId": "", "sCode": "51008",
                                                     "sMsg": "Insufficient USDT margin"}]})  # fmt: skip
    code, doc = execute()
    assert code == 1
    assert okx.contracts(BTC) == 0  # closed at once (invariant 2)
    assert "stop-loss could not be placed" in doc["signals"][0]["reason"]
    closes = [s.body for s in okx.order_posts() if s.body.get("reduceOnly")]
    assert closes and closes[0]["sz"] == "0.85" and closes[0]["tdMode"] == "isolated"
    assert query(db_path, "SELECT kind, severity FROM events") == [("stop_loss_failed", "critical")]
    assert query(db_path, "SELECT role, status FROM orders ORDER BY created_at") == [
        ("entry", "filled"), ("stop_loss", "rejected"), ("exit", "filled")]  # fmt: skip


def test_a_rate_limited_entry_is_sent_again_once_it_certainly_was_not_taken(okx, db_path):
    pull(BUY)
    okx.fail_next("/api/v5/trade/order", "POST", 429)
    code, doc = execute()
    assert code == 0 and doc["signals"][0]["status"] == "executed"
    assert entries_sent(okx) == 2 and okx.accepted == [okx_id("t-buy-1", Role.ENTRY)]
    assert okx.contracts(BTC) == D("0.85")


# --- stops and targets firing, fees and funding to the cent ----------------------------------


def assert_totals_equal_the_bills(fake: FakeOkx, db_path) -> None:
    ledger = fake.ledger()
    totals = query(db_path, "SELECT sum(gross_pnl), sum(fees), sum(funding) FROM v_trades")[0]
    opened = query(
        db_path, "SELECT coalesce(sum(realized_pnl), 0), coalesce(sum(fees), 0), "
        "coalesce(sum(funding), 0) FROM positions WHERE status = 'open'")[0]  # fmt: skip
    got = tuple((t or D(0)) + o for t, o in zip(totals, opened, strict=True))
    expected = (ledger["pnl"], -ledger["fee"], ledger["funding"])  # fees: paid is positive
    assert [g.quantize(CENT) for g in got] == [e.quantize(CENT) for e in expected]
    assert got == expected


def test_a_stop_firing_settles_the_trade_with_fees_and_funding_to_the_cent(okx, db_path):
    pull(BUY)
    assert execute()[0] == 0
    okx.funding(BTC, "-0.0213")
    okx.funding(BTC, "0.0071")
    okx.fire(okx_id("t-buy-1", Role.STOP_LOSS), "48990")
    doc = reconcile()
    assert [s["exit_reason"] for s in doc["settled"]] == ["stop_loss"]
    (trade,) = query(db_path, "SELECT symbol, qty, entry_price, exit_price, gross_pnl, fees, funding, "
                              "net_pnl, exit_reason FROM v_trades")  # fmt: skip
    gross = (D("48990") - 50000) * D("0.0085")
    fees = (D("0.0085") * 50000 + D("0.0085") * D("48990")) * D("0.0005")
    assert trade[:5] == ("BTCUSDT", D("0.0085"), D("50000"), D("48990"), gross)
    assert trade[5] == fees and trade[6] == D("-0.0142")
    assert trade[7] == gross - fees + D("-0.0142") and trade[8] == "stop_loss"
    assert_totals_equal_the_bills(okx, db_path)
    # the target's algo order lost its position: reconcile cancelled the orphan
    assert okx.live_algos() == []
    reconcile()
    assert_totals_equal_the_bills(okx, db_path)


def test_a_target_firing_is_a_take_profit_and_its_stop_is_cancelled(okx, db_path):
    pull(BUY)
    assert execute()[0] == 0
    okx.fire(okx_id("t-buy-1", Role.TAKE_PROFIT), "52010")
    doc = reconcile()
    assert [s["exit_reason"] for s in doc["settled"]] == ["take_profit"]
    assert okx.live_algos() == [] and okx.contracts(BTC) == 0
    assert_totals_equal_the_bills(okx, db_path)


def test_round_trips_between_two_reconciles_each_equal_their_bills(okx, db_path):
    for n, exit_price in enumerate(["49000", "49500"]):
        okx.marks[BTC] = "50000"
        pull({**BUY, "intent_id": f"t-buy-{n}"})
        assert execute()[0] == 0
        okx.funding(BTC, f"-0.0{n + 1}")
        okx.fire(okx_id(f"t-buy-{n}", Role.STOP_LOSS), exit_price)
    doc = reconcile()
    assert len(doc["settled"]) == 2
    rows = query(db_path, "SELECT exit_price, funding FROM v_trades ORDER BY opened_at")
    assert rows == [(D("49000"), D("-0.01")), (D("49500"), D("-0.02"))]
    assert_totals_equal_the_bills(okx, db_path)


def test_a_stop_that_triggered_but_failed_counts_as_no_stop_and_is_replaced(okx, db_path):
    pull(BUY)
    assert execute()[0] == 0
    reconcile()
    okx.fail_trigger(okx_id("t-buy-1", Role.STOP_LOSS), "49500")  # trigger fired, order refused
    okx.marks[BTC] = "49600"  # still above the stop price
    reconcile()
    stops = live_stops(okx)
    assert len(stops) == 1 and stops[0]["slTriggerPx"] == "49000"  # a new stop rests again
    assert stops[0]["algoClOrdId"] != okx_id("t-buy-1", Role.STOP_LOSS)
    events = [e for (e,) in query(db_path, "SELECT kind FROM events")]
    assert "stop_replaced" in events


def test_a_failed_stop_with_the_price_through_it_closes_the_position(okx, db_path):
    pull(BUY)
    assert execute()[0] == 0
    okx.fail_trigger(okx_id("t-buy-1", Role.STOP_LOSS), "48900")
    reconcile()
    assert okx.contracts(BTC) == 0 and okx.live_algos() == []


def test_a_close_signal_closes_reduce_only_and_cancels_the_protection_after(okx, db_path):
    pull(BUY)
    assert execute()[0] == 0
    pull({"intent_id": "t-close-1", "symbol": "BTCUSDT", "side": "CLOSE", "confidence": 0.9})
    code, doc = execute()
    assert code == 0, json.dumps(doc, default=str)[:2000]
    close = okx.order_posts()[-1].body
    assert (close["side"], close["sz"], close["reduceOnly"], close["tdMode"]) == (
        "sell",
        "0.85",
        True,
        "isolated",
    )
    assert okx.contracts(BTC) == 0 and okx.live_algos() == []
    reconcile()
    assert_totals_equal_the_bills(okx, db_path)


# --- close-all ----------------------------------------------------------------------------


def test_close_all_closes_every_position_cancels_every_order_and_algo_and_is_flat(okx, db_path):
    pull(BUY)
    assert execute()[0] == 0
    okx.position("ETH-USDT-SWAP", "-3", entry="3000", mgn_mode="cross")  # opened by hand, cross
    okx.resting_order("hand1", "SOL-USDT-SWAP", "buy", "1", "120")
    okx.routes[("POST", "/api/v5/trade/order-algo")]({}, {  # a trigger order made by hand
        "instId": "XRP-USDT-SWAP", "tdMode": "cross", "side": "buy", "ordType": "trigger",
        "sz": "5", "triggerPx": "2.5", "orderPx": "-1", "algoClOrdId": "hand2"})  # fmt: skip
    code, doc = invoke_json("--testnet", "close-all", "--yes")
    assert code == 0, json.dumps(doc, default=str)[:3000]
    assert okx.contracts(BTC) == 0 and okx.contracts("ETH-USDT-SWAP") == 0
    assert okx.live_algos() == [] and not [o for o in okx.orders if o["state"] == "live"]
    eth_close = [s.body for s in okx.order_posts() if s.body["instId"] == "ETH-USDT-SWAP"]
    assert (
        eth_close[0]["tdMode"] == "cross"
        and eth_close[0]["side"] == "buy"
        and eth_close[0]["sz"] == "3"
    )
    assert okx.calls(
        "/api/v5/trade/cancel-algos", "POST"
    )  # OKX has no cancel-all: listed, then cancelled
    pull({**BUY, "intent_id": "t-buy-2"})
    code, _ = execute()
    assert code == 3  # halted until resume
    code, doc = invoke_json("--testnet", "close-all", "--yes")  # flat already: safe again
    assert code == 0


# --- secrets and the journal ---------------------------------------------------------------


def test_the_passphrase_never_reaches_the_database_and_the_journal_joins_orders(okx, db_path):
    pull(BUY)
    assert execute()[0] == 0
    reconcile()
    dump = json.dumps(query(db_path, "SELECT * FROM exchange_calls"), default=str)
    dump += json.dumps(query(db_path, "SELECT * FROM orders"), default=str)
    dump += json.dumps(query(db_path, "SELECT * FROM runs"), default=str)
    for secret in ("Pass-phrase-42", "okx-secret-fedcba9876543210", "okx-key-0123456789abcdef"):
        assert secret not in dump
    assert b"Pass-phrase-42" not in db_path.read_bytes()
    joined = query(db_path, "SELECT o.role, c.path FROM exchange_calls c JOIN orders o "
                            "ON o.client_order_id = c.client_order_id AND c.method = 'POST' "
                            "ORDER BY c.call_id")  # fmt: skip
    assert joined == [("entry", "/api/v5/trade/order"), ("stop_loss", "/api/v5/trade/order-algo"),
                      ("take_profit", "/api/v5/trade/order-algo")]  # fmt: skip


# --- OKX's refusals, understood by the steps -------------------------------------------------


def algo_refusal(code: str, msg: str) -> dict:
    return {"code": "1", "msg": "", "data": [{"algoClOrdId": "", "algoId": "", "sCode": code,
                                              "sMsg": msg}]}  # fmt: skip


def order_refusal(code: str, msg: str) -> dict:
    return {"code": "1", "msg": "", "data": [{"clOrdId": "", "ordId": "", "sCode": code,
                                              "sMsg": msg}]}  # fmt: skip


def test_a_replacement_stop_already_crossed_closes_the_position_as_crossed(okx, db_path):
    pull(BUY)
    assert execute()[0] == 0
    okx.algo(okx_id("t-buy-1", Role.STOP_LOSS))["state"] = "canceled"  # someone cancelled it
    okx.fail_next("/api/v5/trade/order-algo", "POST",
                  algo_refusal("51280", "SL trigger price must be lower than the last price"))  # fmt: skip
    reconcile()
    assert okx.contracts(BTC) == 0
    events = [e for (e,) in query(db_path, "SELECT kind FROM events")]
    assert "stop_crossed_closed" in events


def test_a_watchdog_close_answered_nothing_to_reduce_means_already_flat(okx, db_path):
    pull(BUY)
    assert execute()[0] == 0
    okx.algo(okx_id("t-buy-1", Role.STOP_LOSS))["state"] = "canceled"
    okx.marks[BTC] = "48000"  # through the stop: the watchdog closes
    okx.fail_next("/api/v5/trade/order", "POST",
                  order_refusal("51169", "Order failed because you don't have any positions in "
                                         "this direction for this contract to reduce or close."))  # fmt: skip
    reconcile()
    rows = query(
        db_path, "SELECT kind, severity, message FROM events WHERE kind = 'stop_crossed_closed'"
    )
    assert rows and "already flat" in rows[0][2] and rows[0][1] != "critical"


def test_a_close_signal_on_a_position_gone_meanwhile_is_skipped_not_failed(okx, db_path):
    pull(BUY)
    assert execute()[0] == 0
    pull({"intent_id": "t-close-1", "symbol": "BTCUSDT", "side": "CLOSE", "confidence": 0.9})
    okx.fail_next("/api/v5/trade/order", "POST",
                  order_refusal("51169", "Order failed because you don't have any positions in "
                                         "this direction for this contract to reduce or close."))  # fmt: skip
    code, doc = execute()
    closing = next(s for s in doc["signals"] if s["signal_id"] == "t-close-1")
    assert closing["status"] == "skipped" and "already flat" in closing["reason"]
    assert code == 0


def test_an_algo_id_okx_already_has_is_looked_up_not_taken_as_a_refused_stop(okx, db_path):
    pull(BUY)
    # the stop landed but its answer said "algoClOrdId already exists" (a resend of an earlier copy)
    real = okx.routes[("POST", "/api/v5/trade/order-algo")]

    def duplicate_after_accept(q, body):
        answer = real(q, body)  # OKX took it ...
        if body.get("slTriggerPx"):  # ... and the stop's answer says its id is in use
            return 200, {}, json.dumps(algo_refusal("51065", "algoClOrdId already exists."))
        return answer

    okx.routes[("POST", "/api/v5/trade/order-algo")] = duplicate_after_accept
    code, doc = execute()
    assert code == 0, json.dumps(doc, default=str)[:2000]
    assert doc["signals"][0]["status"] == "executed"
    assert okx.contracts(BTC) == D("0.85")  # not closed: the stop is there
    assert len(live_stops(okx)) == 1


# --- doctor ------------------------------------------------------------------------------


def test_doctor_checks_the_okx_key_account_mode_and_position_mode(okx, db_path):
    code, doc = invoke_json("--testnet", "doctor")
    checks = {c["name"]: c for c in doc["checks"]}
    assert code == 0, [c for c in doc["checks"] if c["status"] == "FAIL"]
    assert (
        checks["api keys"]["status"] == "PASS"
        and "OKX_API_PASSPHRASE" in checks["api keys"]["detail"]
    )
    assert (
        checks["account mode"]["status"] == "PASS"
        and "Spot and futures" in checks["account mode"]["detail"]
    )
    assert checks["api url"]["detail"].startswith("https://www.okx.com")
    assert checks["key permissions"]["status"] == "WARN"  # trade on, no withdraw, but any IP
    assert "sent on every order" in checks["margin mode"]["detail"]
    assert "Pass-phrase-42" not in json.dumps(doc)


def test_doctor_fails_a_spot_mode_account(okx, db_path):
    real = okx.routes[("GET", "/api/v5/account/config")]
    okx.routes[("GET", "/api/v5/account/config")] = lambda q, b: {
        **real(q, b), "data": [{**real(q, b)["data"][0], "acctLv": "1"}]}  # fmt: skip
    code, doc = invoke_json("--testnet", "doctor")
    checks = {c["name"]: c for c in doc["checks"]}
    assert code == 1 and checks["account mode"]["status"] == "FAIL"
    assert "Spot and futures mode" in checks["account mode"]["fix"]


# --- failure paths -------------------------------------------------------------------------

ORDER_LOOKUP = ("/api/v5/trade/order", "GET")
ALGO_LOOKUP = ("/api/v5/trade/order-algo", "GET")


def age_orders(db_path, seconds: int = 120) -> None:
    import duckdb

    with duckdb.connect(str(db_path)) as conn:
        conn.execute("UPDATE orders SET created_at = created_at - to_seconds(?)", [seconds])


def test_a_lookup_that_gets_no_answer_never_gives_the_entry_up(okx, db_path):
    pull({**BUY, "stop_loss": 48500})
    okx.fail_next("/api/v5/trade/order", "POST", "timeout_after_accept")
    okx.fail_next(*ORDER_LOOKUP, *["timeout"] * 8)  # every read of this run times out
    code, doc = execute()
    assert code == 1 and doc["signals"][0]["status"] == "executing"
    assert okx.contracts(BTC) == D("0.85")  # filled on OKX, its outcome unknown here
    age_orders(db_path)  # far past the grace period, and the lookups still time out
    okx.fail_next(*ORDER_LOOKUP, *["timeout"] * 8)
    code, doc = execute()
    assert code == 1 and doc["signals"][0]["status"] == "executing"
    assert query(db_path, "SELECT status FROM orders WHERE role = 'entry'") == [("unknown",)]
    okx.faults.clear()
    code, doc = execute()  # OKX answers again: found filled, protected at the signal's stop
    assert code == 0 and doc["signals"][0]["status"] == "executed"
    assert entries_sent(okx) == 1 and okx.contracts(BTC) == D("0.85")
    assert [s["slTriggerPx"] for s in live_stops(okx)] == ["48500"]


def test_an_entry_that_never_arrived_is_given_up_past_the_grace_period_never_resent(okx, db_path):
    pull(BUY)
    okx.fail_next("/api/v5/trade/order", "POST", "timeout")  # never reached OKX
    code, doc = execute()
    assert code == 1 and doc["signals"][0]["status"] == "executing"
    code, doc = execute()  # within the grace period: OKX says no such order, still waited on
    assert doc["signals"][0]["status"] == "executing" and len(okx.order_posts()) == 1
    age_orders(db_path)  # past the grace period (and long past the entry's expTime)
    code, doc = execute()
    assert (
        doc["signals"][0]["status"] == "rejected" and "not re-sent" in doc["signals"][0]["reason"]
    )
    assert len(okx.order_posts()) == 1 and okx.contracts(BTC) == 0
    assert query(db_path, "SELECT status FROM orders") == [("not_found",)]


def test_a_stop_of_unknown_outcome_is_looked_up_not_closed_at_market(okx, db_path):
    pull(BUY)
    okx.fail_next("/api/v5/trade/order-algo", "POST", "timeout_after_accept")
    okx.fail_next(*ALGO_LOOKUP, *["timeout"] * 8)
    code, doc = execute()
    assert code == 1 and doc["signals"][0]["status"] == "executing"
    assert "stop-loss outcome unknown" in doc["signals"][0]["reason"]
    assert len(okx.order_posts()) == 1 and okx.contracts(BTC) == D("0.85")  # no market close
    okx.faults.clear()
    code, doc = execute()  # next run: the stop is found resting; the target is placed
    assert code == 0 and doc["signals"][0]["status"] == "executed"
    assert len(live_stops(okx)) == 1
    assert len([p for p in okx.algo_posts() if p.body.get("slTriggerPx")]) == 1


def test_close_all_keeps_the_stops_of_a_close_that_failed_and_flattens_the_rest(okx, db_path):
    pull(BUY, {**BUY, "intent_id": "t-eth-1", "symbol": "ETHUSDT", "position_size_usd": 300,
               "entry_price": 3000, "stop_loss": 2900, "take_profit": 3200})  # fmt: skip
    assert execute()[0] == 0
    okx.refuse_orders[BTC] = ("50026", "System error, please try again later.")
    code, doc = invoke_json("--testnet", "close-all", "--yes")
    assert code == 1 and doc["flat"] is False
    assert okx.contracts("ETH-USDT-SWAP") == 0 and okx.live_algos("ETH-USDT-SWAP") == []
    assert okx.contracts(BTC) == D("0.85") and len(live_stops(okx)) == 1  # still protected
    assert {p["symbol"] for p in doc["left"]["positions"]} == {"BTCUSDT"}


def test_a_position_mode_switched_behind_qtraders_back_is_re_read_and_the_entry_sent_once_more(
    okx, db_path
):
    pull(BUY)
    assert execute()[0] == 0  # caches one-way (net) mode
    okx.pos_mode = "long_short_mode"  # switched in OKX's settings
    pull({**BUY, "intent_id": "t-eth-1", "symbol": "ETHUSDT", "position_size_usd": 300,
          "entry_price": 3000, "stop_loss": 2900, "take_profit": 3200})  # fmt: skip
    code, doc = execute()
    assert code == 0, json.dumps(doc, default=str)[:2000]
    eth = [s.body for s in okx.order_posts() if s.body["instId"] == "ETH-USDT-SWAP"]
    assert [b.get("posSide") for b in eth] == [None, "long"]  # refused, then sent in long/short
    assert okx.contracts("ETH-USDT-SWAP", "long") == 1  # 0.1 ETH, once
    stop = [a for a in okx.live_algos("ETH-USDT-SWAP") if a["slTriggerPx"]]
    assert len(stop) == 1 and stop[0]["posSide"] == "long" and stop[0]["side"] == "sell"
    assert "position_mode_changed" in [e for (e,) in query(db_path, "SELECT kind FROM events")]


def test_status_and_pnl_report_name_okx_and_read_base_quantities(okx, db_path):
    pull(BUY)
    assert execute()[0] == 0
    okx.fire(okx_id("t-buy-1", Role.TAKE_PROFIT), "52000")
    reconcile()
    code, doc = invoke_json("--testnet", "status")
    assert code == 0 and doc["exchange_name"] == "okx"
    code, doc = invoke_json("--testnet", "pnl-report")
    assert code == 0, doc.get("error")
    assert query(db_path, "SELECT DISTINCT exchange FROM orders") == [("okx",)]
    assert query(db_path, "SELECT qty, gross_pnl FROM v_trades") == [(D("0.0085"), D("17.0000"))]
    assert "TESTNET (OKX demo trading)" in invoke("--testnet", "status").stdout
