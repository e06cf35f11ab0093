"""Paper mode on Binance's public market data (replayed with `responses`): the entry walks
the order book, the target fires on the 1-minute klines since the last run, funding comes
from the funding history, and nothing but public GETs is ever sent."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import responses

import qtrader.clock
from tests.binance_fake import FakeBinance
from tests.conftest import invoke, invoke_json, query

HOST = "https://fapi.binance.com"
T0 = datetime(2026, 11, 21, 12, 0, 0)
SIGNAL = {"intent_id": "live-1", "symbol": "BTCUSDT", "side": "BUY", "position_size_usd": 1000,
          "entry_price": 50000, "stop_loss": 49000, "take_profit": 52000, "confidence": 0.8}  # fmt: skip
PUBLIC = {"/fapi/v1/exchangeInfo", "/fapi/v1/premiumIndex", "/fapi/v1/depth", "/fapi/v1/klines",
          "/fapi/v1/fundingRate"}  # fmt: skip


def ms(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> dict:
    now = {"t": T0}
    monkeypatch.setattr(qtrader.clock, "wall_utcnow", lambda: now["t"])
    monkeypatch.setenv("QTRADER_RISK_SIZING", "signal")
    monkeypatch.setenv("QTRADER_EXCHANGE_RETRY_WAIT_S", "0")
    return now


@pytest.fixture
def market():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        FakeBinance(host=HOST).install(mock)  # exchangeInfo and premiumIndex (BTC at 50000)
        mock.get(f"{HOST}/fapi/v1/depth", json={
            "lastUpdateId": 1027024, "E": ms(T0), "T": ms(T0),
            "bids": [["49990.00", "0.050"]],
            "asks": [["50000.00", "0.010"], ["50010.00", "0.050"]]})  # fmt: skip
        opened = T0 + timedelta(minutes=1)
        mock.get(f"{HOST}/fapi/v1/klines", json=[
            [ms(opened), "50100.0", "52100.0", "50000.0", "52050.0", "12.5",
             ms(opened) + 59999, "625000.0", 100, "6.0", "300000.0", "0"]])  # fmt: skip
        mock.get(f"{HOST}/fapi/v1/fundingRate", json=[
            {"symbol": "BTCUSDT", "fundingTime": ms(T0 + timedelta(seconds=30)),
             "fundingRate": "0.00010000", "markPrice": "50000.00000000"}])  # fmt: skip
        yield mock


def test_live_prices_walk_the_book_and_fire_on_klines(wall, market, db_path):
    assert invoke("pull-signals", "--from", "-", input=json.dumps(SIGNAL)).exit_code == 0
    code, doc = invoke_json("execute")
    assert code == 0, doc
    assert doc["mode"] == "paper" and doc["exchange"] == f"PAPER (live prices from {HOST})"
    # 0.02 BTC from the asks: 0.01 at 50000 and 0.01 at 50010 → 50005; fee 0.50005
    fill = query(db_path, "SELECT qty, price, fee FROM paper_fills")
    assert fill == [(Decimal("0.02"), Decimal(50005), Decimal("0.50005"))]

    wall["t"] = T0 + timedelta(minutes=10)
    code, doc = invoke_json("reconcile")
    assert code == 0, doc
    # the target fired in the 12:01 kline at 52000, then paid 2 bps + 1 bp per 10k USDT of
    # slippage (2.104 bps on 1040 USDT): 51989.06 → 51989.0 on the 0.1 tick, selling.
    # Gross (51989 − 50005) × 0.02 = 39.68; fees 0.50005 + 0.51989; funding at 12:00:30, the
    # long pays 0.02 × 50000 × 0.01 % = 0.1. Net 39.68 − 1.01994 − 0.1 = 38.56006.
    trade = query(db_path, "SELECT exit_price, gross_pnl, fees, funding, net_pnl, exit_reason "
                           "FROM v_trades")  # fmt: skip
    assert trade == [(Decimal(51989), Decimal("39.68"), Decimal("1.01994"), Decimal("-0.1"),
                      Decimal("38.56006"), "take_profit")]  # fmt: skip

    sent = [call.request for call in market.calls]
    paths = {request.path_url.split("?")[0] for request in sent}
    assert paths <= PUBLIC, paths - PUBLIC  # no order, account or key endpoint was ever called
    assert all(r.method == "GET" and "X-MBX-APIKEY" not in r.headers for r in sent)
    assert all("signature=" not in r.url for r in sent)


def test_unreachable_market_data_says_how_to_go_offline(wall, db_path):
    with responses.RequestsMock(assert_all_requests_are_fired=False):
        assert invoke("pull-signals", "--from", "-", input=json.dumps(SIGNAL)).exit_code == 0
        code, doc = invoke_json("execute")
    assert code == 1
    assert "[paper] prices to an OHLCV file" in doc["error"]
    assert query(db_path, "SELECT status FROM signals") == [("pending",)]


def test_klines_are_read_page_by_page_until_the_clock():
    """A catch-up after a day and more away needs more than one page of 1500 klines."""
    from qtrader.exchange.prices import LivePrices

    asked = []

    class Client:  # the ccxt calls LivePrices makes, answering like Binance from `startTime`
        host = HOST

        def public_read(self, call):
            return call(self)

        def fapiPublicGetKlines(self, params):
            asked.append(params["startTime"])
            first = params["startTime"] // 60000
            last = min(first + params["limit"], ms(T0 + timedelta(minutes=2000)) // 60000)
            return [[m * 60000, "1", "2", "0.5", "1.5"] for m in range(first, last)]

    candles = LivePrices(Client()).candles("BTCUSDT", T0, T0 + timedelta(minutes=1800))
    assert len(candles) == 1800 and candles[-1].ts == T0 + timedelta(minutes=1799)
    assert asked == [ms(T0), ms(T0 + timedelta(minutes=1500))]
