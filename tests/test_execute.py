"""execute against Binance USDⓈ-M wire format (replayed with `responses`)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import pytest
import responses

from qtrader.domain.orders import Role, client_order_id
from tests.binance_fake import HOST, FakeBinance
from tests.conftest import invoke, invoke_json, query

pytestmark = pytest.mark.usefixtures("exchange_env", "signal_sizing")

API_KEY = "test-key-0123456789abcdef"  # not a real key: nothing here reaches an exchange
API_SECRET = "test-secret-fedcba9876543210"
BUY = {"intent_id": "t-buy-1", "symbol": "BTCUSDT", "side": "BUY", "position_size_usd": 425.455,
       "leverage": 3, "entry_price": 50000, "stop_loss": 49000, "take_profit": 52000, "confidence": 0.78}  # fmt: skip


def core(params: dict) -> dict:
    """What was asked for, without the signing envelope (asserted separately)."""
    return {k: v for k, v in params.items() if k not in ("timestamp", "recvWindow", "signature")}


def pull(*signals: dict) -> None:
    lines = "\n".join(json.dumps(s) for s in signals)
    assert invoke("pull-signals", "--from", "-", input=lines).exit_code == 0


def execute(*args: str) -> tuple[int, dict]:
    return invoke_json("--testnet", "execute", *args)


def test_buy_places_entry_stop_and_target_and_sends_exactly_that(binance, db_path):
    pull(BUY)
    code, doc = execute()
    assert code == 0, json.dumps(doc, default=str)[:3000]
    assert doc["mode"] == "testnet" and doc["exchange"] == HOST
    (entry,) = binance.order_posts()
    assert core(entry.params) == {
        "symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.008",
        "newClientOrderId": client_order_id("t-buy-1", Role.ENTRY), "newOrderRespType": "RESULT"}  # fmt: skip
    stop, target = binance.algo_posts()
    assert (stop.params["type"], stop.params["side"], stop.params["quantity"]) == (
        "STOP_MARKET",
        "SELL",
        "0.008",
    )
    assert (stop.params["triggerPrice"], stop.params["reduceOnly"], stop.params["workingType"]) == (
        "49000",
        "true",
        "MARK_PRICE",
    )
    assert stop.params["algoType"] == "CONDITIONAL"
    assert stop.params["clientAlgoId"] == client_order_id("t-buy-1", Role.STOP_LOSS)
    assert (target.params["type"], target.params["triggerPrice"], target.params["reduceOnly"]) == (
        "TAKE_PROFIT_MARKET",
        "52000",
        "true",
    )
    assert "positionSide" not in entry.params  # one-way mode
    public = ("/fapi/v1/exchangeInfo", "/fapi/v1/time", "/fapi/v1/premiumIndex")
    private = [s for s in binance.sent if s.path not in public]
    assert private and all(s.signed for s in private)
    assert all(s.headers["X-MBX-APIKEY"] == API_KEY for s in private)

    (signal,) = doc["signals"]
    assert (signal["status"], signal["quantity"], signal["avg_price"]) == (
        "executed",
        "0.008",
        "50000",
    )
    assert (signal["stop_loss"], signal["take_profit"]) == ("49000", "52000")
    assert query(db_path, "SELECT status FROM signals") == [("executed",)]
    orders = query(db_path, "SELECT role, status, filled_qty, mode FROM orders ORDER BY created_at")
    assert [(r[0], r[1], r[3]) for r in orders] == [
        ("entry", "filled", "testnet"),
        ("stop_loss", "open", "testnet"),
        ("take_profit", "open", "testnet"),
    ]
    assert orders[0][2] == Decimal("0.008")


def test_decision_trail_is_one_query(binance, db_path):
    pull(BUY)
    execute()
    rows = query(
        db_path,
        """
        SELECT s.raw, d.outcome, d.detail, o.role, c.path, c.params, c.response
        FROM signals s JOIN decisions d ON d.signal_seq = s.seq
        JOIN orders o ON o.signal_seq = s.seq
        JOIN exchange_calls c ON c.client_order_id = o.client_order_id
        WHERE s.signal_id = 't-buy-1' ORDER BY c.call_id""",
    )
    assert [(r[1], r[3], r[4]) for r in rows] == [
        ("accept", "entry", "/fapi/v1/order"),
        ("accept", "stop_loss", "/fapi/v1/algoOrder"),
        ("accept", "take_profit", "/fapi/v1/algoOrder"),
    ]
    detail = json.loads(rows[0][2])
    assert detail["quantity"] == "0.008" and detail["sizing"]["method"] == "signal"
    assert detail["step_size"] == "0.001" and detail["min_notional"] == "100"
    assert "signature" not in rows[0][5] and json.loads(rows[0][6])["status"] == "FILLED"
    everything = json.dumps(query(db_path, "SELECT * FROM exchange_calls"), default=str)
    assert API_KEY not in everything and API_SECRET not in everything


def test_hedge_mode_short_sends_position_side_and_no_reduce_only(binance, db_path):
    binance.hedge = True
    pull({**BUY, "intent_id": "t-sell", "side": "SELL", "stop_loss": 51000, "take_profit": 48000})
    code, _ = execute()
    assert code == 0
    (entry,) = binance.order_posts()
    assert (entry.params["side"], entry.params["positionSide"]) == ("SELL", "SHORT")
    stop, target = binance.algo_posts()
    assert (stop.params["side"], stop.params["positionSide"], stop.params["triggerPrice"]) == (
        "BUY",
        "SHORT",
        "51000",
    )
    assert "reduceOnly" not in stop.params and target.params["positionSide"] == "SHORT"


def test_warm_cache_run_sends_clock_account_marks_and_three_orders(binance, db_path):
    pull(BUY)
    execute()
    binance.sent.clear()
    pull({**BUY, "intent_id": "t-eth", "symbol": "ETHUSDT", "entry_price": 3000, "stop_loss": 2940,
          "take_profit": 3120, "position_size_usd": 300})  # fmt: skip
    code, _ = execute()
    assert code == 0
    assert [(s.method, s.path) for s in binance.sent] == [
        ("GET", "/fapi/v1/time"),
        ("GET", "/fapi/v3/account"),
        ("GET", "/fapi/v1/premiumIndex"),
        ("POST", "/fapi/v1/marginType"),
        ("POST", "/fapi/v1/leverage"),
        ("POST", "/fapi/v1/order"),
        ("POST", "/fapi/v1/algoOrder"),
        ("POST", "/fapi/v1/algoOrder"),
    ]  # new symbol: margin and leverage set once
    binance.sent.clear()
    pull({**BUY, "intent_id": "t-eth-2", "symbol": "ETHUSDT", "entry_price": 3000, "stop_loss": 2940,
          "position_size_usd": 300})  # fmt: skip
    binance.positions.clear()
    execute()
    assert len(binance.sent) == 3 + 3  # clock, account, marks (drift guard) + 3 per signal


def test_nothing_pending_sends_nothing(binance, db_path):
    code, doc = execute()
    assert code == 0 and doc["signals"] == [] and binance.sent == []


def test_entry_timeout_after_acceptance_sends_no_second_entry(binance, db_path):
    pull(BUY)
    binance.fail_next("/fapi/v1/order", "POST", "timeout_after_accept")
    code, doc = execute()
    assert code == 0, json.dumps(doc, default=str)[:3000]
    assert len(binance.order_posts()) == 1
    assert len(binance.calls("/fapi/v1/order", "GET")) == 1  # looked up by client id
    assert doc["signals"][0]["status"] == "executed" and len(binance.algo_posts()) == 2
    assert query(
        db_path, "SELECT status, exchange_order_id IS NOT NULL FROM orders WHERE role='entry'"
    ) == [("filled", True)]
    code, _ = execute()  # a second run changes nothing
    assert len(binance.order_posts()) == 1 and len(binance.algo_posts()) == 2


def test_process_dies_between_request_and_db_update_next_run_adopts(binance, db_path, monkeypatch):
    from qtrader.exchange.binance import BinanceUsdm

    pull(BUY)
    real = BinanceUsdm.place_order

    def accepted_then_killed(self, request):
        real(self, request)
        raise KeyboardInterrupt  # nothing after the POST runs: no DB update

    monkeypatch.setattr(BinanceUsdm, "place_order", accepted_then_killed)
    result = invoke("--testnet", "execute")
    assert result.exit_code == 130
    assert query(db_path, "SELECT status FROM orders") == [("submitting",)]
    assert query(db_path, "SELECT status FROM signals") == [("executing",)]
    monkeypatch.setattr(BinanceUsdm, "place_order", real)
    code, doc = execute()
    assert code == 0, json.dumps(doc, default=str)[:3000]
    assert len(binance.order_posts()) == 1  # adopted, never re-sent
    assert doc["signals"][0]["status"] == "executed" and len(binance.algo_posts()) == 2


def test_unknown_outcome_not_found_is_given_up_never_resent(binance, db_path, monkeypatch):
    pull(BUY)
    binance.fail_next("/fapi/v1/order", "POST", "timeout")  # never reached the exchange
    code, doc = execute()
    assert code == 1 and doc["signals"][0]["status"] == "executing"
    assert len(binance.order_posts()) == 1
    code, doc = execute()  # within the grace period: still unknown, still not re-sent
    assert doc["signals"][0]["status"] == "executing" and len(binance.order_posts()) == 1
    monkeypatch.setenv("QTRADER_EXCHANGE_UNKNOWN_ORDER_GRACE_S", "5")
    query_time = query(db_path, "SELECT created_at FROM orders")[0][0]
    from datetime import timedelta

    import duckdb

    with duckdb.connect(str(db_path)) as conn:
        conn.execute("UPDATE orders SET created_at = ?", [query_time - timedelta(seconds=10)])
    code, doc = execute()
    assert doc["signals"][0]["status"] == "rejected"
    assert "the exchange has no entry" in doc["signals"][0]["reason"]
    assert "not re-sent" in doc["signals"][0]["reason"]
    assert len(binance.order_posts()) == 1
    assert query(db_path, "SELECT status FROM orders") == [("not_found",)]


def test_stop_loss_that_cannot_be_placed_closes_the_position(binance, db_path):
    pull(BUY)
    binance.fail_next(
        "/fapi/v1/algoOrder", "POST", {"code": -2021, "msg": "Order would immediately trigger."}
    )
    code, doc = execute()
    assert code == 1
    posts = binance.order_posts()
    assert [(p.params["side"], p.params.get("reduceOnly")) for p in posts] == [
        ("BUY", None),
        ("SELL", "true"),
    ]
    assert posts[1].params["quantity"] == "0.008"
    assert binance.positions[("BTCUSDT", "BOTH")] == 0
    assert "stop-loss could not be placed" in doc["signals"][0]["reason"]
    assert "closed at once" in doc["signals"][0]["reason"]
    events = query(db_path, "SELECT kind, severity FROM events")
    assert events == [("stop_loss_failed", "critical")]
    assert query(db_path, "SELECT role, status FROM orders ORDER BY created_at") == [
        ("entry", "filled"),
        ("stop_loss", "rejected"),
        ("exit", "filled"),
    ]


@pytest.mark.parametrize(
    ("code", "msg"),
    [(-2019, "Margin is insufficient."), (-1121, "Invalid symbol."),
     (-4164, "Order's notional must be no smaller than 100 (unless you choose reduce only)."),
     (-1111, "Precision is over the maximum defined for this asset."),
     (-2021, "Order would immediately trigger.")],
)  # fmt: skip
def test_permanent_errors_reject_the_signal_with_code_and_message(binance, db_path, code, msg):
    pull(BUY)
    binance.fail_next("/fapi/v1/order", "POST", {"code": code, "msg": msg})
    exit_code, doc = execute()
    assert exit_code == 0
    signal = doc["signals"][0]
    assert signal["status"] == "rejected" and f"({code}): {msg}" in signal["reason"]
    assert len(binance.order_posts()) == 1 and binance.algo_posts() == []
    assert query(db_path, "SELECT status, error_code FROM orders") == [("rejected", code)]


def test_429_on_a_read_backs_off_then_succeeds(binance, db_path):
    pull(BUY)
    binance.fail_next("/fapi/v3/account", "GET", 429)
    code, _ = execute()
    assert code == 0 and len(binance.calls("/fapi/v3/account")) == 2


def test_429_on_the_entry_is_resent_once_without_a_lookup(binance, db_path):
    """A 429 is Binance refusing the request unprocessed: it provably never arrived, so the
    same request (same client id) goes again at once; no lookup is needed."""
    pull(BUY)
    binance.fail_next("/fapi/v1/order", "POST", 429)
    code, doc = execute()
    assert code == 0, json.dumps(doc, default=str)[:3000]
    assert len(binance.order_posts()) == 2 and len(binance.calls("/fapi/v1/order", "GET")) == 0
    first, second = binance.order_posts()
    assert first.params["newClientOrderId"] == second.params["newClientOrderId"]
    assert doc["signals"][0]["status"] == "executed"


def test_418_ban_stops_the_run_with_exit_1(binance, db_path):
    pull(BUY)
    binance.fail_next("/fapi/v3/account", "GET", 418)
    result = invoke("--testnet", "execute")
    assert result.exit_code == 1 and "banned this IP (HTTP 418)" in result.stderr
    assert binance.order_posts() == []


def test_clock_skew_resyncs_and_resends(binance, db_path):
    pull(BUY)
    binance.fail_next("/fapi/v1/order", "POST",
                      {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."})  # fmt: skip
    code, doc = execute()
    assert code == 0, json.dumps(doc, default=str)[:3000]
    assert len(binance.calls("/fapi/v1/time")) == 2  # run start, then the resync
    assert len(binance.order_posts()) == 2


def test_signal_handling_hold_close_expired_position_threshold_symbol_notional(binance, db_path):
    binance.position("ETHUSDT", "0.1")
    binance._new_algo_order({"clientAlgoId": "qt-manual-sl", "type": "STOP_MARKET", "symbol": "ETHUSDT",
                             "side": "SELL", "triggerPrice": "2900", "quantity": "0.1",
                             "reduceOnly": "true", "workingType": "MARK_PRICE"})  # fmt: skip
    pull({"id": "hold", "symbol": "BTCUSDT", "action": "HOLD"},
         {"id": "close", "symbol": "ETHUSDT", "action": "CLOSE"},
         {"id": "old", "symbol": "BTCUSDT", "action": "BUY", "confidence": 0.9, "timestamp": "2020-01-01T00:00:00Z"},
         {**BUY, "intent_id": "weak", "confidence": 0.5},
         {**BUY, "intent_id": "unlisted", "symbol": "FOOUSDT"},
         {**BUY, "intent_id": "tiny", "position_size_usd": 10},
         {"id": "nothing", "symbol": "SOLUSDT", "action": "CLOSE"})  # fmt: skip
    code, doc = execute()
    assert code == 0, json.dumps(doc, default=str)[:3000]
    status = {s["signal_id"]: (s["status"], s["reason"]) for s in doc["signals"]}
    assert status["hold"] == ("skipped", "HOLD: nothing to do")
    assert status["close"][0] == "executed" and "cancelled 1 protective order" in status["close"][1]
    assert status["old"][0] == "expired"
    assert status["weak"] == ("rejected", "confidence_threshold: confidence 0.5 < threshold 0.55; "
                              "lower risk.confidence_threshold to accept such signals")  # fmt: skip
    assert status["old"][1].endswith("qtrader requeue old puts it back with a fresh clock")
    assert (
        status["unlisted"][0] == "rejected" and "FOOUSDT is not a listed" in status["unlisted"][1]
    )
    assert status["tiny"][0] == "rejected" and "below the minimum quantity" in status["tiny"][1]
    assert status["nothing"] == ("skipped", "no open position on SOLUSDT")
    (close,) = binance.order_posts()
    assert core(close.params) == {
        "symbol": "ETHUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.1", "reduceOnly": "true",
        "newClientOrderId": client_order_id("close", Role.EXIT), "newOrderRespType": "RESULT"}  # fmt: skip
    assert binance.calls("/fapi/v1/algoOrder", "DELETE")[0].params["algoId"]
    assert binance.algo_orders["qt-manual-sl"]["algoStatus"] == "CANCELED"
    stored = dict(query(db_path, "SELECT signal_id, status FROM signals"))
    assert stored == {"hold": "skipped", "close": "executed", "old": "expired", "weak": "rejected",
                      "unlisted": "rejected", "tiny": "rejected", "nothing": "skipped"}  # fmt: skip


def test_existing_position_is_not_added_to(binance, db_path):
    binance.position("BTCUSDT", "0.004")
    pull(BUY)
    code, doc = execute()
    assert code == 0 and doc["signals"][0]["status"] == "skipped"
    assert doc["signals"][0]["reason"] == (
        "pyramiding: already long BTCUSDT; pyramiding is off (risk.pyramiding = true adds)"
    )
    assert binance.order_posts() == []


def test_dry_run_sends_no_order_and_changes_no_signal(binance, db_path):
    pull(BUY)
    code, doc = execute("--dry-run")
    assert code == 0 and doc["dry_run"] is True
    assert (
        doc["signals"][0]["status"] == "would execute" and doc["signals"][0]["quantity"] == "0.008"
    )
    assert binance.order_posts() == [] and binance.algo_posts() == []
    assert query(db_path, "SELECT status FROM signals") == [("pending",)]


def test_no_stop_in_the_signal_gets_the_default_distance(binance, db_path):
    pull({**BUY, "stop_loss": None, "take_profit": None})
    execute()
    stop, target = binance.algo_posts()
    assert (stop.params["triggerPrice"], target.params["triggerPrice"]) == (
        "49000",
        "52000",
    )  # 2% / 4%


def test_missing_price_uses_the_mark_price_once(binance, db_path):
    pull(
        {
            "id": "a",
            "symbol": "BTCUSDT",
            "action": "BUY",
            "confidence": 0.8,
            "position_size_usd": 500,
        },
        {
            "id": "b",
            "symbol": "ETHUSDT",
            "action": "SELL",
            "confidence": 0.8,
            "position_size_usd": 300,
        },
    )
    code, doc = execute()
    assert code == 0 and [s["status"] for s in doc["signals"]] == ["executed", "executed"]
    assert len(binance.calls("/fapi/v1/premiumIndex")) == 1
    assert [p.params["quantity"] for p in binance.order_posts()] == ["0.01", "0.1"]


def test_leverage_is_clamped_to_the_setting_and_recorded(binance, db_path):
    pull({**BUY, "leverage": 20})
    execute()
    (lev,) = binance.calls("/fapi/v1/leverage")
    assert lev.params["leverage"] == "3"
    assert binance.calls("/fapi/v1/marginType")[0].params["marginType"] == "ISOLATED"
    detail = json.loads(query(db_path, "SELECT detail FROM decisions")[0][0])
    assert (detail["leverage_requested"], detail["leverage"], detail["leverage_clamped"]) == (
        20,
        3,
        True,
    )


def test_api_url_replaces_the_host_of_every_request(db_path, monkeypatch):
    monkeypatch.setenv("QTRADER_API_URL", "http://127.0.0.1:18443")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeBinance(host="http://127.0.0.1:18443").install(mock)
        pull(BUY)
        code, doc = execute()
    assert code == 0 and doc["exchange"] == "http://127.0.0.1:18443"
    assert len(fake.sent) == 10  # every request went there (responses refuses any other host)


def test_modes_refuse_without_keys_or_confirmation(db_path, monkeypatch):
    pull(BUY)
    live = invoke("--live", "execute")
    assert live.exit_code == 2 and "confirm with --yes-live" in live.stderr
    monkeypatch.delenv("BINANCE_API_KEY")
    nokeys = invoke("--testnet", "execute")
    assert nokeys.exit_code == 2 and "no API keys" in nokeys.stderr
    assert query(db_path, "SELECT status FROM signals") == [("pending",)]


def test_live_with_confirmation_talks_to_mainnet(db_path, monkeypatch):
    monkeypatch.setenv("QTRADER_LIVE_CONFIRM", "yes")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeBinance(host="https://fapi.binance.com").install(mock)
        pull(BUY)
        code, doc = invoke_json("--live", "execute")
    assert code == 0 and doc["mode"] == "live" and doc["exchange"] == "https://fapi.binance.com"
    assert len(fake.order_posts()) == 1


def test_halt_exits_3_before_any_request(binance, db_path):
    from qtrader.domain.halts import Halt
    from qtrader.store import open_store
    from qtrader.store.halts import add_halt

    pull(BUY)
    store = open_store(str(db_path))
    now = datetime.utcnow()
    add_halt(store, Halt("testnet", "kill_switch", "kill switch (close-all)", now, now.date()), 1)
    store.close()
    result = invoke("--testnet", "execute")
    assert result.exit_code == 3 and "trading is halted: kill switch" in result.stderr
    assert binance.sent == []


def test_two_entries_for_one_symbol_in_one_run_open_only_one_position(binance, db_path):
    pull({**BUY, "intent_id": "first"}, {**BUY, "intent_id": "second", "confidence": 0.9})
    code, doc = execute()
    assert code == 0
    status = {s["signal_id"]: (s["status"], s["reason"]) for s in doc["signals"]}
    assert status["first"][0] == "executed"
    assert status["second"] == (
        "skipped",
        "pyramiding: already long BTCUSDT; pyramiding is off (risk.pyramiding = true adds)",
    )
    assert len(binance.order_posts()) == 1


def test_margin_is_spent_as_entries_are_planned(binance, db_path):
    binance.wallet = "300"  # 300 USDT × 3x leverage = 900 USDT of notional in all
    pull({**BUY, "intent_id": "a", "position_size_usd": 600},
         {**BUY, "intent_id": "b", "symbol": "ETHUSDT", "entry_price": 3000, "stop_loss": 2900,
          "take_profit": 3200, "position_size_usd": 600})  # fmt: skip
    code, doc = execute()
    assert code == 0
    (a, b) = doc["signals"]
    assert a["status"] == "executed" and a["quantity"] == "0.012"
    assert b["status"] == "executed" and b["quantity"] == "0.1"  # capped: 100 USDT margin left
