"""The Binance adapter's reads that reconcile will build on, and setting answers."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import responses

from qtrader.exchange.binance import BinanceUsdm
from qtrader.exchange.port import ExchangeRejected
from tests.binance_fake import FakeBinance
from tests.test_execute import BUY, execute, pull

KEY, SECRET = "test-key-0123456789abcdef", "test-secret-fedcba9876543210"
USER_TRADES = [  # GET /fapi/v1/userTrades, as in Binance's USDⓈ-M docs
    {"buyer": False, "commission": "-0.07819010", "commissionAsset": "USDT", "id": 698759,
     "maker": False, "orderId": 25851813, "price": "7819.01", "qty": "0.002", "quoteQty": "15.63802",
     "realizedPnl": "-0.91539999", "side": "SELL", "positionSide": "SHORT", "symbol": "BTCUSDT",
     "time": 1569514978020}]  # fmt: skip
INCOME = [  # GET /fapi/v1/income
    {"symbol": "", "incomeType": "TRANSFER", "income": "-0.37500000", "asset": "USDT",
     "info": "TRANSFER", "time": 1570608000000, "tranId": 9689322392, "tradeId": ""},
    {"symbol": "BTCUSDT", "incomeType": "COMMISSION", "income": "-0.01000000", "asset": "USDT",
     "info": "COMMISSION", "time": 1570636800000, "tranId": 9689322393, "tradeId": "2059192"},
    {"symbol": "BTCUSDT", "incomeType": "FUNDING_FEE", "income": "-0.02518000", "asset": "USDT",
     "info": "FUNDING_FEE", "time": 1570665600000, "tranId": 9689322394, "tradeId": ""}]  # fmt: skip


@pytest.fixture
def adapter():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeBinance().install(mock)
        ex = BinanceUsdm("testnet", KEY, SECRET, retry_wait_s=0)
        ex.use_markets(ex.fetch_markets())
        yield ex, fake, mock


def test_the_rate_limiter_is_on_in_production():
    ex = BinanceUsdm("testnet", KEY, SECRET)
    assert ex.client.enableRateLimit is True and ex.client.rateLimit > 0


def test_only_linear_perpetuals_are_loaded(adapter):
    ex, fake, _ = adapter
    assert sorted(ex._rules) == [
        "BNBUSDT",
        "BTCUSDT",
        "ETHUSDT",
        "SOLUSDT",
        "XRPUSDT",
    ]  # not the dated one
    assert [s.path for s in fake.sent] == ["/fapi/v1/exchangeInfo"]  # no currency endpoints


def test_fills_are_read_with_their_real_fee_and_pnl(adapter):
    ex, fake, mock = adapter
    fake.trades = USER_TRADES
    (fill,) = ex.fills("BTCUSDT", since_ms=1569514900000)
    assert (fill.trade_id, fill.order_id, fill.side, fill.position_side) == (
        "698759",
        "25851813",
        "SELL",
        "SHORT",
    )
    assert (fill.qty, fill.price, fill.commission, fill.realized_pnl) == (
        Decimal("0.002"),
        Decimal("7819.01"),
        Decimal("-0.07819010"),
        Decimal("-0.91539999"),
    )
    sent = mock.calls[-1].request
    assert (
        "symbol=BTCUSDT" in sent.url
        and "startTime=1569514900000" in sent.url
        and "signature=" in sent.url
    )


def test_income_ledger_has_funding_and_commissions(adapter):
    ex, fake, mock = adapter
    fake.income_rows = INCOME
    rows = ex.income(since_ms=1570000000000)
    assert [(r.income_type, r.symbol, r.amount, r.trade_id) for r in rows] == [
        ("TRANSFER", None, Decimal("-0.375"), None),
        ("COMMISSION", "BTCUSDT", Decimal("-0.01"), "2059192"),
        ("FUNDING_FEE", "BTCUSDT", Decimal("-0.02518"), None),
    ]
    assert "startTime=1570000000000" in mock.calls[-1].request.url


def test_no_need_to_change_answers_are_success(adapter):
    ex, fake, _ = adapter
    fake.fail_next(
        "/fapi/v1/marginType", "POST", {"code": -4046, "msg": "No need to change margin type."}
    )
    ex.set_margin_mode("BTCUSDT", "isolated")  # does not raise
    fake.fail_next("/fapi/v1/leverage", "POST", {"code": -1121, "msg": "Invalid symbol."})
    with pytest.raises(ExchangeRejected):
        ex.set_leverage("BTCUSDT", 3)


def test_journal_keeps_requests_without_signature_or_key(adapter):
    ex, _, _ = adapter
    ex.journal()
    ex.account()
    (entry,) = ex.journal()
    assert entry["path"] == "/fapi/v3/account" and "signature" not in entry["params"]
    assert KEY not in json.dumps(entry) and SECRET not in json.dumps(entry)


@pytest.fixture
def exchange_env(monkeypatch):
    monkeypatch.setenv("BINANCE_API_KEY", KEY)
    monkeypatch.setenv("BINANCE_API_SECRET", SECRET)
    monkeypatch.setenv("QTRADER_EXCHANGE_RETRY_WAIT_S", "0")
    monkeypatch.setenv("QTRADER_RISK_SIZING", "signal")


def test_max_limits_the_signals_handled_oldest_first(exchange_env, db_path):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeBinance().install(mock)
        pull({**BUY, "intent_id": "s1", "timestamp": None},
             {**BUY, "intent_id": "s2", "symbol": "ETHUSDT", "entry_price": 3000, "stop_loss": 2900,
              "take_profit": 3200, "position_size_usd": 300})  # fmt: skip
        code, doc = execute("--max", "1")
        assert code == 0 and [s["signal_id"] for s in doc["signals"]] == ["s1"]
        code, doc = execute("--max", "1")
        assert [s["signal_id"] for s in doc["signals"]] == ["s2"]
    assert len(fake.order_posts()) == 2


TRANSLATIONS = [
    # description, ccxt exception, qtrader class, kind (for rejections)
    ("-1007: sent, outcome unknown", "RequestTimeout",
     '{"code":-1007,"msg":"Timeout waiting for response from backend server. Send status unknown; execution status unknown."}',
     "ExchangeUnavailable", None),
    ("-1007 even when ccxt calls it an ExchangeError", "ExchangeError",
     '{"code":-1007,"msg":"Timeout waiting for response from backend server."}', "ExchangeUnavailable", None),
    ("-2013: does not exist", "OrderNotFound", '{"code":-2013,"msg":"Order does not exist."}',
     "ExchangeRejected", "not_found"),
    ("-2022: reduce-only refused", "InvalidOrder", '{"code":-2022,"msg":"ReduceOnly Order is rejected."}',
     "ExchangeRejected", "rejected"),
    ("-2021: would trigger now", "OrderImmediatelyFillable",
     '{"code":-2021,"msg":"Order would immediately trigger."}', "ExchangeRejected", "rejected"),
    ("429: never processed", "RateLimitExceeded", '{"code":-1003,"msg":"Too many requests"}', "NotSentError", None),
    ("timeout: unknown", "RequestTimeout", "binanceusdm POST https://x/fapi/v1/order read timed out",
     "ExchangeUnavailable", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("description", "ccxt_class", "text", "expected", "kind"),
    TRANSLATIONS,
    ids=[t[0] for t in TRANSLATIONS],
)
def test_ccxt_errors_translate_to_what_they_mean_for_an_order(
    description, ccxt_class, text, expected, kind
):
    import ccxt

    from qtrader.exchange.binance import translate

    error = translate(getattr(ccxt, ccxt_class)("binanceusdm " + text))
    assert type(error).__name__ == expected
    if kind is not None:
        assert error.kind == kind
