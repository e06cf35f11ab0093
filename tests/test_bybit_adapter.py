"""The Bybit v5 adapter against Bybit's wire format (tests/bybit_fake.py): what is sent for
each port call, how a lookup by client id finds recent and closed orders, and every mapped
error code."""

from __future__ import annotations

from decimal import Decimal

import pytest

from qtrader.domain.orders import OrderStatus, Refusal
from qtrader.domain.protection import Kind
from qtrader.exchange.binance import ClockSkew, ExchangeAuthFailed
from qtrader.exchange.bybit import BybitLinear, RequestBudget
from qtrader.exchange.port import (
    ExchangeBanned,
    ExchangeRejected,
    ExchangeUnavailable,
    NotSentError,
    OrderRequest,
)
from tests.bybit_fake import HOST
from tests.conftest import TEST_API_KEY, TEST_API_SECRET


def adapter(**kwargs) -> BybitLinear:
    ex = BybitLinear("testnet", TEST_API_KEY, TEST_API_SECRET, retry_wait_s=0, lookup_wait_s=0,
                     **kwargs)  # fmt: skip
    ex.use_markets(ex.fetch_markets())
    return ex


def entry(cid: str = "qt-0123456789abcdef01234567-e", qty: str = "0.01") -> OrderRequest:
    return OrderRequest("BTCUSDT", "BUY", Decimal(qty), cid)


def stop(cid: str = "qt-0123456789abcdef01234567-sl", trigger: str = "49000") -> OrderRequest:
    return OrderRequest("BTCUSDT", "SELL", Decimal("0.01"), cid, reduce_only=True,
                        trigger_price=Decimal(trigger), kind="stop_loss")  # fmt: skip


def test_demo_trading_host_markets_and_rules(bybit):
    ex = adapter()
    assert ex.host == HOST  # --testnet is demo trading, not Bybit's testnet
    rules = ex.market_rules("BTCUSDT")
    assert (rules.unified, rules.step_size, rules.min_qty, rules.tick_size, rules.min_notional) == (
        "BTC/USDT:USDT", Decimal("0.001"), Decimal("0.001"), Decimal("0.10"), Decimal("5"))  # fmt: skip
    assert rules.max_qty == Decimal("500.000") and rules.trading
    (info, *_) = bybit.calls("/v5/market/instruments-info")
    assert info.params["category"] == "linear"  # USDT perpetuals only, no spot or options


def test_api_url_replaces_scheme_and_host_of_every_call(bybit):
    ex = BybitLinear("live", TEST_API_KEY, TEST_API_SECRET, api_url="http://127.0.0.1:18443")
    assert ex.host == "http://127.0.0.1:18443"
    assert all(u.startswith("http://127.0.0.1:18443") for u in ex.client.urls["api"].values())


def test_entry_with_protection_sends_bybits_fields_signed(bybit):
    ex = adapter()
    answer = ex.place_order(entry())
    # Bybit answers with ids only; the adapter reads the fill at once, from the history
    assert (answer.status, answer.filled_qty, answer.avg_price) == (
        OrderStatus.FILLED, Decimal("0.01"), Decimal("50000"))  # fmt: skip
    assert [s.path for s in bybit.sent[-2:]] == ["/v5/order/create", "/v5/order/history"]
    placed = ex.place_order(stop())
    target = OrderRequest("BTCUSDT", "SELL", Decimal("0.01"), "qt-0123456789abcdef01234567-tp",
                          reduce_only=True, trigger_price=Decimal("52000"), kind="take_profit")  # fmt: skip
    ex.place_order(target)
    sent_entry, sent_stop, sent_target = bybit.creates()
    assert sent_entry == {"category": "linear", "symbol": "BTCUSDT", "side": "Buy",
                          "orderType": "Market", "qty": "0.01",
                          "orderLinkId": "qt-0123456789abcdef01234567-e", "positionIdx": 0}  # fmt: skip
    assert sent_stop == {"category": "linear", "symbol": "BTCUSDT", "side": "Sell",
                         "orderType": "Market", "qty": "0.01",
                         "orderLinkId": "qt-0123456789abcdef01234567-sl", "positionIdx": 0,
                         "reduceOnly": True, "triggerPrice": "49000", "triggerDirection": 2,
                         "triggerBy": "MarkPrice", "closeOnTrigger": True}  # fmt: skip
    assert (sent_target["triggerDirection"], sent_target["triggerPrice"]) == (1, "52000")
    assert placed.resting.kind is Kind.STOP and placed.resting.trigger == Decimal("49000")
    private = [s for s in bybit.sent if s.path.startswith(("/v5/order", "/v5/position"))]
    assert private and all(s.signed for s in private)
    assert all(s.headers["X-BAPI-API-KEY"] == TEST_API_KEY for s in private)
    assert all(TEST_API_SECRET not in s.raw for s in bybit.sent)
    journal = ex.journal()
    assert all("X-BAPI-SIGN" not in str(j) and TEST_API_SECRET not in str(j) for j in journal)
    assert [j["params"].get("orderLinkId") for j in journal if j["path"] == "/v5/order/create"] == [
        "qt-0123456789abcdef01234567-e", "qt-0123456789abcdef01234567-sl",
        "qt-0123456789abcdef01234567-tp"]  # fmt: skip


def test_a_short_positions_stop_fires_rising_and_its_target_falling(bybit):
    ex = adapter()
    bybit.position("BTCUSDT", "-0.01")
    sl = OrderRequest("BTCUSDT", "BUY", Decimal("0.01"), "s-sl", reduce_only=True,
                      trigger_price=Decimal("51000"), kind="stop_loss")  # fmt: skip
    tp = OrderRequest("BTCUSDT", "BUY", Decimal("0.01"), "s-tp", reduce_only=True,
                      trigger_price=Decimal("48000"), kind="take_profit")  # fmt: skip
    ex.place_order(sl)
    ex.place_order(tp)
    assert [c["triggerDirection"] for c in bybit.creates()] == [1, 2]
    kinds = {o.client_order_id: o.resting.kind for o in ex.open_orders("BTCUSDT", True)}
    assert kinds == {"s-sl": Kind.STOP, "s-tp": Kind.TARGET}


def test_lookup_after_a_lost_answer_asks_realtime_then_history(bybit):
    ex = adapter()
    bybit.fail_next("/v5/order/create", "POST", "dropped_after_accept")
    with pytest.raises(ExchangeUnavailable):
        ex.place_order(entry())
    found = ex.order_by_client_id("BTCUSDT", "qt-0123456789abcdef01234567-e", False)
    assert (found.status, found.filled_qty, found.avg_price) == (
        OrderStatus.FILLED, Decimal("0.01"), Decimal("50000"))  # fmt: skip
    realtime, history = bybit.calls("/v5/order/realtime"), bybit.calls("/v5/order/history")
    # a clean query: the client id, never the text "orderId=None" ccxt's fetch_order sends
    assert realtime[0].params == {"category": "linear", "symbol": "BTCUSDT",
                                  "orderLinkId": "qt-0123456789abcdef01234567-e"}  # fmt: skip
    assert "orderId" not in realtime[0].raw
    assert history[0].params == realtime[0].params  # filled: no longer open, in the history
    assert bybit.accepted == ["qt-0123456789abcdef01234567-e"]


def test_a_lookup_asks_again_before_it_concludes_absent(bybit):
    ex = adapter()
    bybit.hide_new_orders = 2  # creation is asynchronous: two lookups miss it
    ex.place_order(stop(trigger="49000"))
    bybit.position("BTCUSDT", "0.01")
    found = ex.order_by_client_id("BTCUSDT", "qt-0123456789abcdef01234567-sl", True)
    assert found.status is OrderStatus.OPEN and found.resting.kind is Kind.STOP
    assert len(bybit.calls("/v5/order/realtime")) == 2


def test_only_an_order_missing_from_both_twice_is_not_found(bybit):
    ex = adapter()
    with pytest.raises(ExchangeRejected) as missing:
        ex.order_by_client_id("BTCUSDT", "qt-never-sent", False)
    assert missing.value.refusal is Refusal.NOT_FOUND and missing.value.kind == "not_found"
    assert (
        len(bybit.calls("/v5/order/realtime")) == 2 and len(bybit.calls("/v5/order/history")) == 2
    )


def test_after_a_bybit_restart_closed_orders_are_found_in_the_history(bybit):
    ex = adapter()
    ex.place_order(entry())
    bybit.restart()
    found = ex.order_by_client_id("BTCUSDT", "qt-0123456789abcdef01234567-e", False)
    assert found.status is OrderStatus.FILLED


def test_close_and_close_all_requests(bybit):
    ex = adapter()
    ex.place_order(entry())
    ex.place_order(stop())
    close = OrderRequest("BTCUSDT", "SELL", Decimal("0.01"), "qt-close-x", reduce_only=True)
    ex.place_order(close)
    assert bybit.creates()[-1] == {"category": "linear", "symbol": "BTCUSDT", "side": "Sell",
                                   "orderType": "Market", "qty": "0.01", "orderLinkId": "qt-close-x",
                                   "positionIdx": 0, "reduceOnly": True}  # fmt: skip
    ex.cancel_all("BTCUSDT", False)
    ex.cancel_all("BTCUSDT", True)
    bodies = [s.params for s in bybit.calls("/v5/order/cancel-all", "POST")]
    assert bodies == [{"category": "linear", "symbol": "BTCUSDT", "orderFilter": "Order"},
                      {"category": "linear", "symbol": "BTCUSDT", "orderFilter": "StopOrder"}]  # fmt: skip
    assert bybit.conditional() == []


def test_cancel_one_conditional_by_its_order_id(bybit):
    ex = adapter()
    placed = ex.place_order(stop())
    ex.cancel_order("BTCUSDT", placed.exchange_order_id, True)
    (cancel,) = bybit.calls("/v5/order/cancel", "POST")
    assert cancel.params == {"category": "linear", "symbol": "BTCUSDT",
                             "orderId": placed.exchange_order_id}  # fmt: skip
    with pytest.raises(ExchangeRejected) as again:  # already gone
        ex.cancel_order("BTCUSDT", placed.exchange_order_id, True)
    assert again.value.code == 110001 and again.value.refusal is Refusal.NOT_FOUND


def test_leverage_and_margin_set_up(bybit):
    ex = adapter()
    ex.set_leverage("BTCUSDT", 3)
    ex.set_leverage("BTCUSDT", 3)  # 110043 leverage not modified: benign
    ex.set_margin_mode("BTCUSDT", "isolated")
    ex.set_margin_mode("ETHUSDT", "cross")
    lev = [s.params for s in bybit.calls("/v5/position/set-leverage", "POST")]
    assert lev == [{"category": "linear", "symbol": "BTCUSDT", "buyLeverage": "3",
                    "sellLeverage": "3"}] * 2  # fmt: skip
    margin = [s.params for s in bybit.calls("/v5/account/set-margin-mode", "POST")]
    assert margin == [{"setMarginMode": "ISOLATED_MARGIN"}, {"setMarginMode": "REGULAR_MARGIN"}]


def test_account_positions_marks_and_isolated_margin(bybit):
    ex = adapter()
    bybit.position("BTCUSDT", "0.01", entry="49000")
    bybit.leverage["ETHUSDT"] = "3"  # a set-up symbol: Bybit lists it with size 0
    account = ex.account()
    assert account.wallet_balance == Decimal("10000") and account.equity == Decimal("10010")
    assert [(p.symbol, p.side, p.qty) for p in account.positions] == [
        ("BTCUSDT", "BUY", Decimal("0.01"))
    ]
    (detail,) = ex.position_details()
    assert (detail.entry_price, detail.mark_price, detail.unrealized_pnl) == (
        Decimal("49000"), Decimal("50000"), Decimal("10"))  # fmt: skip
    assert ex.mark_prices()["ETHUSDT"] == Decimal("3000")
    bybit.margin_mode = "ISOLATED_MARGIN"  # account-level figures are empty then
    assert ex.account().available == Decimal("10000") - Decimal("49")


def test_fills_income_and_funding_in_binances_signs(bybit):
    ex = adapter()
    ex.place_order(entry(qty="0.008"))
    bybit.funding("BTCUSDT", "-0.22")  # paid
    bybit.funding("BTCUSDT", "0.05")  # received
    ex.place_order(OrderRequest("BTCUSDT", "SELL", Decimal("0.008"), "c-x", reduce_only=True))
    first = int(bybit.executions[0]["execTime"])
    fills = ex.fills("BTCUSDT", since_ms=first)
    assert [(f.side, f.qty, f.commission, f.realized_pnl) for f in fills] == [
        ("BUY", Decimal("0.008"), Decimal("0.22000000"), Decimal("0")),
        ("SELL", Decimal("0.008"), Decimal("0.22000000"), Decimal("0"))]  # fmt: skip
    income = ex.income(since_ms=first)
    funding = [r.amount for r in income if r.income_type == "FUNDING_FEE"]
    assert funding == [Decimal("-0.22"), Decimal("0.05")]  # positive = received, as on Binance
    fees = sum(r.amount for r in income if r.income_type == "COMMISSION")
    assert fees == Decimal("-0.44") == bybit.ledger()["COMMISSION"]
    (window,) = [s.params for s in bybit.calls("/v5/execution/list") if "symbol" not in s.params]
    assert "endTime" not in window  # the last window: Bybit's own 7 days from startTime


def test_ledger_reads_walk_seven_day_windows_forward(bybit):
    ex = adapter()
    ex.place_order(entry())
    executed = int(bybit.executions[0]["execTime"])
    week = 7 * 24 * 3600 * 1000
    fills = ex.fills("BTCUSDT", since_ms=executed - 3 * week + 3_600_000)
    assert len(fills) == 1
    windows = [s.params for s in bybit.calls("/v5/execution/list")]
    assert len(windows) == 3  # two empty weeks, then the one with the fill
    assert [int(w["endTime"]) - int(w["startTime"]) for w in windows[:2]] == [week - 1] * 2
    assert "endTime" not in windows[2]  # the last window: Bybit's own 7 days from startTime


def test_liquidations_are_told_apart(bybit):
    ex = adapter()
    bybit.executions.append({**_execution(), "execType": "BustTrade", "orderId": "liq-1"})
    assert ex.liquidation_order_ids("BTCUSDT") == {"liq-1"}


def _execution() -> dict:
    import time

    return {"symbol": "BTCUSDT", "orderId": "x", "orderLinkId": "", "side": "Sell",
            "execTime": str(int(time.time() * 1000)), "execFee": "0.1", "execId": "e-1",
            "execPrice": "40000", "execQty": "0.01", "execType": "Trade", "execPnl": "-100",
            "isMaker": False, "feeCoin": "USDT"}  # fmt: skip


ERRORS = [
    # retCode, retMsg, what qtrader makes of it, refusal (for rejections)
    (110007, "ab not enough for new order", ExchangeRejected, Refusal.INSUFFICIENT_MARGIN),
    (110004, "Insufficient wallet balance", ExchangeRejected, Refusal.INSUFFICIENT_MARGIN),
    (110044, "Insufficient available margin", ExchangeRejected, Refusal.INSUFFICIENT_MARGIN),
    (110017, "Reduce-only rule not satisfied", ExchangeRejected, Refusal.NOTHING_TO_REDUCE),
    (110094, "Order does not meet minimum order value 5USDT", ExchangeRejected,
     Refusal.BELOW_MIN_NOTIONAL),
    (110092, "expect Rising, but trigger_price[49000] <= current[50000]", ExchangeRejected,
     Refusal.WOULD_TRIGGER_NOW),
    (110093, "expect Falling, but trigger_price[51000] >= current[50000]", ExchangeRejected,
     Refusal.WOULD_TRIGGER_NOW),
    (110072, "OrderLinkedID is duplicate", ExchangeRejected, Refusal.DUPLICATE_CLIENT_ID),
    (110009, "The number of stop orders exceeds maximum limit allowed", ExchangeRejected,
     Refusal.TOO_MANY_PROTECTIONS),
    (10001, "position idx not match position mode", ExchangeRejected,
     Refusal.POSITION_MODE_CHANGED),
    (10001, "params error: qty", ExchangeRejected, Refusal.OTHER),
    (10002, "invalid request, please check your server timestamp or recv_window param",
     ClockSkew, None),
    (10006, "Too many visits. Exceeded the API Rate Limit.", NotSentError, None),
    (10018, "Exceeded the IP Rate Limit.", NotSentError, None),
    (10003, "API key is invalid.", ExchangeAuthFailed, None),
    (10004, "error sign! origin_string[...]", ExchangeAuthFailed, None),
    (10005, "Permission denied, please check your API key permissions.", ExchangeAuthFailed, None),
    (10010, "Unmatched IP, please check your API key's bound IP addresses.", ExchangeAuthFailed, None),
    (10016, "Internal system error.", ExchangeUnavailable, None),
]  # fmt: skip


@pytest.mark.parametrize(("code", "msg", "expected", "refusal"), ERRORS,
                         ids=[f"{e[0]}-{e[1][:24]}" for e in ERRORS])  # fmt: skip
def test_every_mapped_error_code(bybit, code, msg, expected, refusal):
    ex = adapter()
    bybit.fail_next("/v5/order/create", "POST", {"retCode": code, "retMsg": msg},
                    {"retCode": code, "retMsg": msg})  # fmt: skip
    with pytest.raises(expected) as caught:
        ex.place_order(entry())
    if refusal is not None:
        assert caught.value.code == code and caught.value.refusal is refusal
    if expected is ClockSkew:  # resynced and sent once more, then given up: never sent
        assert len(bybit.calls("/v5/market/time")) == 1 and len(bybit.creates()) == 2
    elif expected is not ExchangeAuthFailed:
        assert len(bybit.creates()) == 1  # an order POST is never retried blindly
    assert TEST_API_SECRET not in str(caught.value)


def test_leverage_not_modified_is_benign_but_other_refusals_are_not(bybit):
    ex = adapter()
    bybit.fail_next("/v5/position/set-leverage", "POST",
                    {"retCode": 110043, "retMsg": "Set leverage not modified"})  # fmt: skip
    ex.set_leverage("BTCUSDT", 3)
    bybit.fail_next("/v5/position/set-leverage", "POST",
                    {"retCode": 110013, "retMsg": "cannot set leverage due to risk limit"})  # fmt: skip
    with pytest.raises(ExchangeRejected):
        ex.set_leverage("BTCUSDT", 3)


def test_http_403_is_bybits_ip_ban(bybit):
    ex = adapter()
    bybit.fail_next("/v5/order/create", "POST", 403)
    with pytest.raises(ExchangeBanned):
        ex.place_order(entry())


def test_a_gateway_error_is_unknown_outcome_and_a_read_is_retried(bybit):
    ex = adapter()
    bybit.fail_next("/v5/order/create", "POST", 502)
    with pytest.raises(ExchangeUnavailable):
        ex.place_order(entry())
    bybit.fail_next("/v5/market/tickers", "GET", 502, {"retCode": 10016, "retMsg": "busy"})
    assert ex.mark_prices()["BTCUSDT"] == Decimal("50000")
    assert len(bybit.calls("/v5/market/tickers")) == 3


def test_an_account_in_hedge_mode_is_refused_with_what_to_do(bybit):
    ex = adapter()
    bybit.hedge = True
    with pytest.raises(ExchangeRejected) as refused:
        ex.place_order(entry())
    assert "one-way" in refused.value.reason
    assert refused.value.refusal is Refusal.POSITION_MODE_CHANGED


def test_the_request_budget_sleeps_only_when_bybit_says_the_endpoint_is_spent():
    now = [1000.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    budget = RequestBudget(clock=lambda: now[0], sleep=sleep)
    for _ in range(100):
        budget.spend("/v5/order/realtime")
    assert slept == []
    budget.observe("/v5/order/create", "0", str(int((now[0] + 0.4) * 1000)))
    budget.spend("/v5/order/realtime")  # another endpoint: its own budget
    assert slept == []
    budget.spend("/v5/order/create")
    assert slept == [pytest.approx(0.4)]
    for _ in range(378):
        budget.spend("/v5/market/tickers")
    assert len(slept) == 1  # 480 in 5 s: 80 % of Bybit's 600 per IP
    budget.spend("/v5/market/tickers")
    assert len(slept) == 2  # the 481st waits for the oldest to leave the 5-second window
    assert slept[1] == pytest.approx(5.0 - 0.4)
