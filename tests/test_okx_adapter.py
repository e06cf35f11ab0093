"""The OKX adapter on the wire: what it sends (asserted on the stand-in's record of each request)
and how it reads OKX's answers and refusals."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
import responses

from qtrader.domain.orders import OrderStatus, Refusal
from qtrader.errors import ConfigError
from qtrader.exchange.okx import OkxSwap
from qtrader.exchange.okx_errors import OkxAuthFailed, OkxClockSkew
from qtrader.exchange.okx_limits import EndpointLimits
from qtrader.exchange.port import (
    ExchangeRejected,
    ExchangeUnavailable,
    NotSentError,
    OrderRequest,
)
from tests.okx_fake import HOST, FakeOkx

KEY, SECRET, PASSPHRASE = (
    "okx-key-0123456789abcdef",
    "okx-secret-fedcba9876543210",
    "Pass-phrase-42",
)
CID = "qt-0123456789abcdef01234567-e"
D = Decimal


def entry(
    qty: str = "0.0157", symbol: str = "BTCUSDT", side: str = "BUY", cid: str = CID
) -> OrderRequest:
    return OrderRequest(symbol, side, D(qty), cid)


def protective(kind: str, trigger: str, qty: str = "0.0157", side: str = "SELL") -> OrderRequest:
    tag = "sl" if kind == "stop_loss" else "tp"
    return OrderRequest("BTCUSDT", side, D(qty), f"qt-0123456789abcdef01234567-{tag}",
                        reduce_only=True, trigger_price=D(trigger), kind=kind)  # fmt: skip


def open_adapter(mock, fake, mode="testnet", **kw) -> OkxSwap:
    ex = OkxSwap(mode, KEY, SECRET, PASSPHRASE, retry_wait_s=0, **kw)
    ex.client.qt_limits.sleep = lambda s: None
    ex.use_markets(ex.fetch_markets())
    return ex


@pytest.fixture
def okx():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeOkx().install(mock)
        yield open_adapter(mock, fake), fake


# --- markets, demo trading, secrets --------------------------------------------------------


def test_only_usdt_swaps_are_loaded_with_rules_in_the_base_asset(okx):
    ex, fake = okx
    assert sorted(ex._rules) == ["BNBUSDT", "BTCUSDT", "DOGEUSDT", "ETHUSDT", "PEPEUSDT",
                                 "SOLUSDT", "XRPUSDT"]  # fmt: skip
    assert [(s.path, s.params) for s in fake.sent] == [
        ("/api/v5/public/instruments", {"instType": "SWAP"})  # no spot, futures or options
    ]
    rules = ex.market_rules("BTCUSDT")
    assert (rules.step_size, rules.min_qty, rules.unified) == (
        D("0.0001"),
        D("0.0001"),
        "BTC/USDT:USDT",
    )


def test_demo_trading_is_a_header_on_the_normal_host_and_every_private_call_is_signed(okx):
    ex, fake = okx
    ex.account()
    assert ex.host == HOST
    assert all(s.headers.get("x-simulated-trading") == "1" for s in fake.sent)
    private = [s for s in fake.sent if "/public/" not in s.path]
    assert private and all(s.signed for s in private)
    assert all(s.headers["OK-ACCESS-PASSPHRASE"] == PASSPHRASE for s in private)


def test_live_sends_no_demo_header_and_a_demo_key_on_live_is_refused_as_a_key_problem():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeOkx(demo=True).install(mock)
        ex = open_adapter(mock, fake, mode="live")
        with pytest.raises(OkxAuthFailed, match="50101") as caught:
            ex.account()
        assert "--testnet" in str(caught.value)
        assert "x-simulated-trading" not in fake.sent[-1].headers


def test_the_passphrase_key_and_secret_never_reach_the_journal(okx):
    ex, _fake = okx
    ex.place_order(entry())
    ex.account()
    text = json.dumps(ex.journal())
    assert PASSPHRASE not in text and KEY not in text and SECRET not in text
    assert "OK-ACCESS" not in text  # no header is journaled


def test_api_url_replaces_the_host_of_every_call():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeOkx(host="http://127.0.0.1:8999").install(mock)
        ex = open_adapter(mock, fake, api_url="http://127.0.0.1:8999")
        ex.account()
        assert ex.host == "http://127.0.0.1:8999"
        assert {s.path for s in fake.sent} >= {
            "/api/v5/public/instruments",
            "/api/v5/account/balance",
        }


# --- entries and protection ----------------------------------------------------------------


def test_an_entry_is_sent_in_contracts_with_tdmode_an_okx_id_and_an_expiry(okx):
    ex, fake = okx
    before = int(time.time() * 1000)
    report = ex.place_order(entry("0.0157"))
    (post,) = fake.order_posts()
    assert post.body == {"instId": "BTC-USDT-SWAP", "tdMode": "isolated", "side": "buy",
                         "sz": "1.57", "ordType": "market",
                         "clOrdId": "qt0123456789abcdef01234567e"}  # fmt: skip
    assert before + 9_000 <= int(post.headers["expTime"]) <= int(time.time() * 1000) + 10_000
    # OKX's answer has no fill: the order is read back by its client id
    assert fake.sent[-1].path == "/api/v5/trade/order" and fake.sent[-1].method == "GET"
    assert fake.sent[-1].params == {
        "instId": "BTC-USDT-SWAP",
        "clOrdId": "qt0123456789abcdef01234567e",
    }
    assert (report.status, report.filled_qty, report.avg_price) == (
        OrderStatus.FILLED,
        D("0.0157"),
        D("50000"),
    )
    assert report.client_order_id == CID  # qtrader's id again
    assert fake.contracts("BTC-USDT-SWAP") == D("1.57")  # 0.0157 BTC, not 1.57 BTC


@pytest.mark.parametrize("symbol,qty,sz,inst", [
    ("ETHUSDT", "0.25", "2.5", "ETH-USDT-SWAP"),
    ("XRPUSDT", "483", "4.83", "XRP-USDT-SWAP"),
    ("BNBUSDT", "0.07", "7", "BNB-USDT-SWAP"),
    ("PEPEUSDT", "25000000", "2.5", "PEPE-USDT-SWAP"),
])  # fmt: skip
def test_every_size_goes_out_as_contracts(okx, symbol, qty, sz, inst):
    ex, fake = okx
    fake.marks[inst] = "1" if symbol != "PEPEUSDT" else "0.0000067"
    report = ex.place_order(entry(qty, symbol))
    assert fake.order_posts()[-1].body["sz"] == sz
    assert report.filled_qty == D(qty)


def test_a_size_between_lots_is_refused_before_anything_is_sent(okx):
    ex, fake = okx
    sent = len(fake.sent)
    with pytest.raises(ExchangeRejected, match="not a whole number of lots") as caught:
        ex.place_order(entry("0.01575"))
    assert caught.value.refusal is Refusal.BAD_QUANTITY and len(fake.sent) == sent


def test_stop_and_target_are_reduce_only_conditional_algos_on_the_mark(okx):
    ex, fake = okx
    ex.place_order(entry())
    stop = ex.place_order(protective("stop_loss", "49000"))
    target = ex.place_order(protective("take_profit", "52000"))
    sl, tp = (s.body for s in fake.algo_posts())
    assert sl == {"instId": "BTC-USDT-SWAP", "tdMode": "isolated", "side": "sell", "sz": "1.57",
                  "reduceOnly": True, "ordType": "conditional",
                  "algoClOrdId": "qt0123456789abcdef01234567sl", "clOrdId": "qt0123456789abcdef01234567sl",
                  "slTriggerPx": "49000", "slOrdPx": "-1", "slTriggerPxType": "mark"}  # fmt: skip
    assert (
        tp["tpTriggerPx"] == "52000" and tp["tpOrdPx"] == "-1" and tp["tpTriggerPxType"] == "mark"
    )
    assert (
        "slTriggerPx" not in tp
    )  # one leg per algo order: a conditional with both runs only the SL
    assert "expTime" not in fake.algo_posts()[0].headers
    assert stop.status is OrderStatus.OPEN and stop.exchange_order_id
    assert target.client_order_id == "qt-0123456789abcdef01234567-tp"
    assert len(fake.live_algos("BTC-USDT-SWAP")) == 2


def test_a_stop_already_crossed_is_refused_as_would_trigger(okx):
    ex, _fake = okx
    ex.place_order(entry())
    with pytest.raises(ExchangeRejected) as caught:
        ex.place_order(protective("stop_loss", "50100"))
    assert (caught.value.code, caught.value.refusal) == (51280, Refusal.WOULD_TRIGGER_NOW)
    assert caught.value.reason.endswith("use a stop or target further from the price")


def test_a_triggered_stop_whose_order_failed_counts_as_no_stop(okx):
    ex, fake = okx
    ex.place_order(entry())
    ex.place_order(protective("stop_loss", "49000"))
    fake.fail_trigger("qt0123456789abcdef01234567sl", "48900")
    report = ex.order_by_client_id("BTCUSDT", "qt-0123456789abcdef01234567-sl", conditional=True)
    assert report.status is OrderStatus.EXPIRED  # triggered and gone: not a stop any more
    assert ex.open_orders("BTCUSDT", conditional=True) == []  # nothing protects the position
    assert fake.contracts("BTC-USDT-SWAP") == D("1.57")  # still open: naked
    fake.algo("qt0123456789abcdef01234567sl").update(state="canceled")  # the other form
    report = ex.order_by_client_id("BTCUSDT", "qt-0123456789abcdef01234567-sl", conditional=True)
    assert report.status is OrderStatus.EXPIRED


def test_a_fired_stop_reports_its_fill_in_the_base_asset(okx):
    ex, fake = okx
    ex.place_order(entry())
    ex.place_order(protective("stop_loss", "49000"))
    fake.fire("qt0123456789abcdef01234567sl", "48950")
    report = ex.order_by_client_id("BTCUSDT", "qt-0123456789abcdef01234567-sl", conditional=True)
    assert (report.status, report.filled_qty, report.avg_price) == (
        OrderStatus.FILLED,
        D("0.0157"),
        D("48950"),
    )
    assert fake.contracts("BTC-USDT-SWAP") == 0


# --- lookups: the lost answer ----------------------------------------------------------------


def test_a_lost_answer_is_looked_up_and_found_filled_so_nothing_is_resent(okx):
    ex, fake = okx
    fake.fail_next("/api/v5/trade/order", "POST", "timeout_after_accept")
    with pytest.raises(ExchangeUnavailable):
        ex.place_order(entry())
    report = ex.order_by_client_id("BTCUSDT", CID, conditional=False)
    assert (report.status, report.filled_qty) == (OrderStatus.FILLED, D("0.0157"))
    assert len(fake.order_posts()) == 1 and fake.accepted == ["qt0123456789abcdef01234567e"]


def test_okx_takes_a_finished_orders_id_again_which_is_why_qtrader_never_resends_blindly(okx):
    """The stand-in behaves as OKX: a clOrdId is unique only among pending orders."""
    ex, fake = okx
    ex.place_order(entry())
    ex.place_order(entry())  # a blind resend
    assert fake.contracts("BTC-USDT-SWAP") == D("3.14")  # doubled


def test_an_unknown_id_is_not_found(okx):
    ex, _ = okx
    for conditional in (False, True):
        with pytest.raises(ExchangeRejected) as caught:
            ex.order_by_client_id("BTCUSDT", "qt-ffffffffffffffffffffffff-e", conditional)
        assert caught.value.kind == "not_found" and caught.value.code == 51603


def test_a_lookup_without_an_answer_is_unavailable_not_not_found(okx):
    ex, fake = okx
    fake.fail_next("/api/v5/trade/order", "GET", *["timeout"] * 4)
    with pytest.raises(ExchangeUnavailable):
        ex.order_by_client_id("BTCUSDT", CID, conditional=False)


def test_an_entry_arriving_after_its_expiry_is_refused_unprocessed(okx):
    ex, fake = okx
    ex.client.qt_exp_time_s = -1  # as if every request spent too long in flight
    with pytest.raises(OkxClockSkew):
        ex.place_order(entry())
    assert fake.accepted == [] and fake.contracts("BTC-USDT-SWAP") == 0
    # refused unprocessed: the clock was resynced and it was sent once more, then given up
    assert len(fake.order_posts()) == 2 and fake.calls("/api/v5/public/time", "GET")


def test_the_expiry_is_on_okxs_clock_not_the_machines(okx):
    ex, fake = okx
    ex.client.options["timeDifference"] = -60_000  # this machine is a minute behind OKX
    ex.place_order(entry())
    exp = int(fake.order_posts()[-1].headers["expTime"])
    assert exp > time.time() * 1000 + 60_000  # not already past on OKX's clock
    assert fake.accepted == ["qt0123456789abcdef01234567e"]


def test_a_late_entry_is_sent_once_more_with_a_fresh_expiry(okx):
    ex, fake = okx
    fake.fail_next("/api/v5/trade/order", "POST",
                   {"code": "1", "msg": "", "data": [{"sCode": "50102", "sMsg": "Timestamp request expired"}]})  # fmt: skip
    report = ex.place_order(entry())
    assert report.status is OrderStatus.FILLED and fake.accepted == ["qt0123456789abcdef01234567e"]
    first, second = fake.order_posts()
    assert int(second.headers["expTime"]) >= int(first.headers["expTime"])


# --- closes, cancels, set-up ---------------------------------------------------------------


def test_a_close_is_reduce_only_in_the_positions_own_margin_mode(okx):
    ex, fake = okx
    fake.position("BTC-USDT-SWAP", "2", mgn_mode="cross")
    ex.position_details()
    report = ex.place_order(OrderRequest("BTCUSDT", "SELL", D("0.02"), "qt-0123456789abcdef01234567-x",
                                         reduce_only=True))  # fmt: skip
    assert fake.order_posts()[-1].body == {"instId": "BTC-USDT-SWAP", "tdMode": "cross",
                                           "side": "sell", "sz": "2", "reduceOnly": True,
                                           "ordType": "market",
                                           "clOrdId": "qt0123456789abcdef01234567x"}  # fmt: skip
    assert report.status is OrderStatus.FILLED and fake.contracts("BTC-USDT-SWAP") == 0


def test_a_close_on_a_flat_instrument_is_reduce_only_rejected(okx):
    ex, _ = okx
    with pytest.raises(ExchangeRejected) as caught:
        ex.place_order(OrderRequest("BTCUSDT", "SELL", D("0.01"), "qt-0123456789abcdef01234567-x",
                                    reduce_only=True))  # fmt: skip
    assert (caught.value.code, caught.value.refusal) == (51169, Refusal.NOTHING_TO_REDUCE)


def test_cancel_all_algos_lists_then_cancels_ten_to_a_request(okx):
    ex, fake = okx
    ex.place_order(entry("0.12"))
    for i in range(12):
        ex.place_order(OrderRequest("BTCUSDT", "SELL", D("0.0001"), f"qt-0123456789abcdef01234567-sl{i + 1}",
                                    reduce_only=True, trigger_price=D(40000 + i), kind="stop_loss"))  # fmt: skip
    ex.cancel_all("BTCUSDT", conditional=True)
    batches = [s.body for s in fake.calls("/api/v5/trade/cancel-algos", "POST")]
    assert [len(b) for b in batches] == [10, 2]
    assert all(item["instId"] == "BTC-USDT-SWAP" and item["algoId"] for b in batches for item in b)
    assert fake.live_algos() == []
    listings = [c.params for c in fake.calls("/api/v5/trade/orders-algo-pending", "GET")]
    assert listings == [  # stops, targets and OCOs together; trigger orders, trailing stops apart
        {"instType": "SWAP", "instId": "BTC-USDT-SWAP", "ordType": "conditional,oco"},
        {"instType": "SWAP", "instId": "BTC-USDT-SWAP", "ordType": "trigger"},
        {"instType": "SWAP", "instId": "BTC-USDT-SWAP", "ordType": "move_order_stop"},
    ]


def test_cancel_all_regular_orders_cancels_each_pending_one(okx):
    ex, fake = okx
    fake.resting_order("qtlimit1", "BTC-USDT-SWAP", "buy", "1", "40000")
    fake.resting_order("qtlimit2", "BTC-USDT-SWAP", "buy", "1", "41000")
    ex.cancel_all("BTCUSDT", conditional=False)
    assert len(fake.calls("/api/v5/trade/cancel-order", "POST")) == 2
    assert ex.open_orders(None, conditional=False) == []


def test_cancelling_a_gone_algo_is_not_found(okx):
    ex, _ = okx
    with pytest.raises(ExchangeRejected) as caught:
        ex.cancel_order("BTCUSDT", "123", conditional=True)
    assert caught.value.kind == "not_found"


def test_margin_mode_sends_nothing_and_leverage_is_set_per_instrument_and_mode(okx):
    ex, fake = okx
    sent = len(fake.sent)
    ex.set_margin_mode("BTCUSDT", "cross")
    assert len(fake.sent) == sent  # OKX: tdMode travels on every order instead
    ex.set_leverage("BTCUSDT", 3)  # cross: one leverage for the instrument, no mode read
    assert fake.sent[-1].body == {"instId": "BTC-USDT-SWAP", "lever": "3", "mgnMode": "cross"}
    ex.place_order(entry())
    assert fake.order_posts()[-1].body["tdMode"] == "cross"
    with pytest.raises(ConfigError):
        ex.set_margin_mode("BTCUSDT", "portfolio")


def test_hedge_mode_is_read_from_the_account_config_and_isolated_legs_get_their_leverage():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeOkx(pos_mode="long_short_mode").install(mock)
        ex = open_adapter(mock, fake)
        ex.set_leverage("ETHUSDT", 2)  # reads the position mode first: long/short
        assert fake.calls("/api/v5/account/config", "GET")
        bodies = [s.body for s in fake.calls("/api/v5/account/set-leverage", "POST")]
        assert [b["posSide"] for b in bodies] == ["long", "short"]


def test_an_unlisted_symbol_is_refused_without_a_request(okx):
    ex, fake = okx
    sent = len(fake.sent)
    with pytest.raises(ExchangeRejected) as caught:
        ex.place_order(entry(symbol="FOOUSDT"))
    assert caught.value.code == 51001 and len(fake.sent) == sent


# --- positions, fills, fees, funding, paging -------------------------------------------------


def test_positions_are_in_base_quantities(okx):
    ex, fake = okx
    fake.position("ETH-USDT-SWAP", "-2.5", entry="3100")
    (detail,) = ex.position_details()
    assert (detail.symbol, detail.side, detail.qty, detail.entry_price) == (
        "ETHUSDT",
        "SELL",
        D("0.25"),
        D("3100"),
    )
    assert detail.position_side == "BOTH"
    assert ex.account().position("ETHUSDT").qty == D("0.25")


def test_marks_are_keyed_by_qtrader_symbol(okx):
    ex, _ = okx
    marks = ex.mark_prices()
    assert marks["BTCUSDT"] == D("50000") and "BTC-USDT-SWAP" not in marks


def test_fees_are_positive_when_paid_and_funding_keeps_okx_sign(okx):
    ex, fake = okx
    ex.place_order(entry())
    fake.funding("BTC-USDT-SWAP", "-0.12")
    fake.funding("BTC-USDT-SWAP", "0.05")
    (fill,) = ex.fills("BTCUSDT")
    assert fake.fills[0]["fee"] == "-0.39250000"  # OKX: negative when charged
    assert fill.commission == D("0.3925") and fill.qty == D("0.0157")
    rows = ex.income()
    assert [(r.income_type, r.amount) for r in rows] == [
        ("COMMISSION", D("-0.3925")),  # Binance's income sign: negative = paid
        ("FUNDING_FEE", D("-0.12")),
        ("FUNDING_FEE", D("0.05")),
    ]
    assert all(r.symbol == "BTCUSDT" for r in rows)


def test_realized_pnl_comes_with_the_closing_fill(okx):
    ex, fake = okx
    ex.place_order(entry())
    fake.marks["BTC-USDT-SWAP"] = "51000"
    ex.place_order(
        OrderRequest(
            "BTCUSDT", "SELL", D("0.0157"), "qt-0123456789abcdef01234567-x", reduce_only=True
        )
    )
    fills = ex.fills("BTCUSDT")
    assert fills[-1].realized_pnl == D("15.7")  # (51000 - 50000) × 1.57 × 0.01
    pnl = [r.amount for r in ex.income() if r.income_type == "REALIZED_PNL"]
    assert pnl == [D("15.7")]


def test_history_pages_by_okx_cursor_not_by_time(okx):
    ex, fake = okx
    for i in range(250):
        fake.funding("BTC-USDT-SWAP", f"-0.{i + 1:03d}")
    since = int(fake.bills[0]["ts"])
    rows = ex.income(since_ms=since)
    assert len(rows) == 250 and [r.amount for r in rows][:2] == [D("-0.001"), D("-0.002")]
    pages = fake.calls("/api/v5/account/bills", "GET")
    assert [p.params.get("after") for p in pages] == [
        None,
        fake.bills[150]["billId"],
        fake.bills[50]["billId"],
    ]
    assert all(p.params["begin"] == str(since) and p.params["limit"] == "100" for p in pages)
    assert all(p.params["instType"] == "SWAP" for p in pages)  # swaps, not spot


def test_bills_older_than_a_week_are_read_from_the_archive(okx):
    ex, fake = okx
    ex.income(since_ms=int((time.time() - 8 * 86400) * 1000))
    assert fake.sent[-1].path == "/api/v5/account/bills-archive"


def test_fills_page_too(okx):
    ex, fake = okx
    ex.place_order(entry("0.5"))
    for i in range(120):
        ex.place_order(OrderRequest("BTCUSDT", "SELL", D("0.0001"), f"qt-0123456789abcdef01234567-x{i + 1}",
                                    reduce_only=True))  # fmt: skip
    fills = ex.fills("BTCUSDT", since_ms=0)
    assert len(fills) == 121 and fills[0].side == "BUY"
    assert len(fake.calls("/api/v5/trade/fills-history", "GET")) == 2


# --- errors: every mapped code ---------------------------------------------------------------

ORDER = ("/api/v5/trade/order", "POST")


def s_code(code: str, msg: str) -> dict:
    return {"code": "1", "msg": "All operations failed",
            "data": [{"clOrdId": "", "ordId": "", "sCode": code, "sMsg": msg, "tag": ""}]}  # fmt: skip


# description, fault, expected exception, expected code, expected refusal (rejections)
ERRORS = [
    ("51169 reduce-only with no position", s_code("51169", "Order failed because you don't have any positions in this direction for this contract to reduce or close."), ExchangeRejected, 51169, Refusal.NOTHING_TO_REDUCE),
    ("51170 reduce-only same direction", s_code("51170", "Failed to place order. A reduce-only order can't be the same direction as your existing position."), ExchangeRejected, 51170, Refusal.NOTHING_TO_REDUCE),
    ("51065 algo id exists", s_code("51065", "algoClOrdId already exists."), ExchangeRejected, 51065, Refusal.DUPLICATE_CLIENT_ID),
    ("51088 one whole-position TP/SL", s_code("51088", "You can only place 1 TP/SL order to close an entire position."), ExchangeRejected, 51088, Refusal.TOO_MANY_PROTECTIONS),
    ("51016 duplicate clOrdId", s_code("51016", "Duplicated clOrdId"), ExchangeRejected, 51016, Refusal.DUPLICATE_CLIENT_ID),
    ("51008 insufficient margin", s_code("51008", "Order failed. Insufficient USDT margin in account"), ExchangeRejected, 51008, Refusal.INSUFFICIENT_MARGIN),
    ("51001 unknown instrument", s_code("51001", "Instrument ID does not exist."), ExchangeRejected, 51001, Refusal.UNKNOWN_SYMBOL),
    ("51121 lot size", s_code("51121", "Order quantity must be a multiple of the lot size"), ExchangeRejected, 51121, Refusal.BAD_QUANTITY),
    ("51020 under minSz", s_code("51020", "Order amount should be greater than the min available amount."), ExchangeRejected, 51020, Refusal.BAD_QUANTITY),
    ("51010 account mode", s_code("51010", "The current account mode does not support this API interface."), ExchangeRejected, 51010, Refusal.OTHER),
    ("51149 order timeout: outcome unknown", s_code("51149", "Order timed out, please try again."), ExchangeUnavailable, None, None),
    ("50004 endpoint timeout: outcome unknown", {"code": "50004", "data": [], "msg": "API endpoint request timeout"}, ExchangeUnavailable, None, None),
    ("50102 timestamp expired: not sent", {"code": "50102", "data": [], "msg": "Timestamp request expired", "http": 401}, OkxClockSkew, None, None),
    ("50011 rate limit: not sent", {"code": "50011", "data": [], "msg": "Too Many Requests", "http": 429}, NotSentError, None, None),
    ("HTTP 429 from a gateway (ccxt: ExchangeNotAvailable): not sent", "429_html", NotSentError, None, None),
    ("50113 bad signature", {"code": "50113", "data": [], "msg": "Invalid Sign", "http": 401}, OkxAuthFailed, None, None),
    ("50105 wrong passphrase", {"code": "50105", "data": [], "msg": "Request header OK-ACCESS-PASSPHRASE incorrect.", "http": 401}, OkxAuthFailed, None, None),
    ("503 gateway: unavailable", 503, ExchangeUnavailable, None, None),
    ("50001 maintenance", {"code": "50001", "data": [], "msg": "Service temporarily unavailable. Try again later", "http": 503}, ExchangeUnavailable, None, None),
]  # fmt: skip


@pytest.mark.parametrize("description,fault,error,code,kind", ERRORS, ids=[e[0] for e in ERRORS])
def test_every_mapped_error(okx, description, fault, error, code, kind):
    ex, fake = okx
    fake.fail_next(*ORDER, *[fault] * (2 if error is OkxClockSkew else 1))  # resent once
    with pytest.raises(error) as caught:
        ex.place_order(entry())
    if code is not None:
        assert (caught.value.code, caught.value.refusal) == (code, kind)
    assert KEY not in str(caught.value) and PASSPHRASE not in str(caught.value)
    # an order POST is never retried by the adapter, but one OKX refused for its timestamp
    assert len(fake.order_posts()) == (2 if error is OkxClockSkew else 1)
    if error is NotSentError or error is OkxClockSkew:
        assert isinstance(caught.value, NotSentError)


def test_a_429_on_a_read_is_retried(okx):
    ex, fake = okx
    fake.fail_next("/api/v5/account/positions", "GET", 429, 503)
    assert ex.position_details() == []
    assert len(fake.calls("/api/v5/account/positions", "GET")) == 3


def test_a_rejection_says_what_to_do(okx):
    ex, fake = okx
    fake.fail_next(*ORDER, s_code("51008", "Order failed. Insufficient USDT margin in account"))
    with pytest.raises(ExchangeRejected) as caught:
        ex.place_order(entry())
    assert caught.value.reason.endswith(
        "add USDT to the trading account, or lower the size or the leverage"
    )


# --- rate limits ---------------------------------------------------------------------------


def test_the_limiter_sends_at_once_until_the_endpoint_window_is_full():
    now = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    limits = EndpointLimits(clock=lambda: now[0], sleep=sleep)
    for _ in range(20):
        assert limits.spend("trade/order-algo") == 0
    assert limits.spend("trade/order") == 0  # another endpoint, another window
    waited = limits.spend("trade/order-algo")  # the 21st in 2 s waits for the oldest to leave
    assert 2.0 <= waited <= 2.02 and slept == [waited]


def test_the_rate_limiter_is_on_in_production():
    ex = OkxSwap("testnet", KEY, SECRET, PASSPHRASE)
    assert ex.client.enableRateLimit is True
    assert ex.client.qt_limits.sleep is time.sleep


def test_the_okx_passphrase_is_masked_like_a_secret():
    from qtrader.secrets import mask

    env = {"OKX_API_PASSPHRASE": PASSPHRASE, "QTRADER_API_PASSPHRASE": "another-phrase"}
    assert mask(f"header {PASSPHRASE} and another-phrase", env) == "header *** and ***"


def test_algo_orders_on_the_book_are_recognised_as_stop_and_target_in_base(okx):
    from qtrader.domain.protection import Kind

    ex, fake = okx
    ex.place_order(entry())
    ex.place_order(protective("stop_loss", "49000"))
    ex.place_order(protective("take_profit", "52000"))
    book = {o.client_order_id: o.resting for o in ex.open_orders(None, conditional=True)}
    stop, target = book["qt-0123456789abcdef01234567-sl"], book["qt-0123456789abcdef01234567-tp"]
    assert (stop.kind, stop.qty, stop.trigger, stop.side, stop.reduces) == (
        Kind.STOP,
        D("0.0157"),
        D("49000"),
        "SELL",
        True,
    )
    assert (target.kind, target.trigger, target.position_side) == (Kind.TARGET, D("52000"), "BOTH")
    assert stop.symbol == "BTCUSDT" and stop.exchange_order_id == fake.algos[0]["algoId"]


def test_a_whole_position_oco_made_by_hand_covers_any_size(okx):
    ex, fake = okx
    fake.position("BTC-USDT-SWAP", "3")
    fake.routes[("POST", "/api/v5/trade/order-algo")]({}, {
        "instId": "BTC-USDT-SWAP", "tdMode": "isolated", "side": "sell", "ordType": "oco",
        "closeFraction": "1", "slTriggerPx": "45000", "tpTriggerPx": "55000", "algoClOrdId": "byhand1",
        "slOrdPx": "-1", "tpOrdPx": "-1"})  # fmt: skip
    (order,) = ex.open_orders("BTCUSDT", conditional=True)
    assert (
        order.resting.qty is None and order.resting.trigger == D("45000") and order.resting.reduces
    )


def test_liquidations_are_recognised_from_order_history(okx):
    ex, fake = okx
    ex.place_order(entry())
    ord_id = fake.liquidate("BTC-USDT-SWAP", "34000")
    assert ex.liquidation_order_ids("BTCUSDT", since_ms=0) == {ord_id}
    kinds = [
        (r.income_type, r.amount < 0) for r in ex.income() if r.ts_ms >= int(fake.bills[-1]["ts"])
    ]
    assert ("REALIZED_PNL", True) in kinds and ("COMMISSION", True) in kinds


@pytest.mark.parametrize("level,ok,name", [("1", False, "Spot mode"), ("2", True, "Spot and futures mode"),
                                           ("3", True, "Multi-currency margin")])  # fmt: skip
def test_the_account_mode_says_whether_swaps_can_trade(okx, level, ok, name):
    ex, fake = okx
    real = fake.routes[("GET", "/api/v5/account/config")]
    fake.routes[("GET", "/api/v5/account/config")] = lambda q, b: {
        **real(q, b), "data": [{**real(q, b)["data"][0], "acctLv": level}]}  # fmt: skip
    assert ex.account_mode() == (ok, name)
