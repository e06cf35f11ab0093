"""The same signals through the paper exchange and through the Binance adapter (replayed
wire format) give the same orders: quantities, sides, roles and trigger prices. Paper is
only useful for trying signals if what it sizes is what Binance would be sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.binance_fake import FakeBinance
from tests.conftest import invoke, query
from tests.paper_data import write_candles

SIGNALS = [
    {"intent_id": "par-1", "symbol": "BTCUSDT", "side": "BUY", "entry_price": 50000,
     "stop_loss": 49000, "take_profit": 52000, "confidence": 0.8},
    {"intent_id": "par-2", "symbol": "ETHUSDT", "side": "SELL", "entry_price": 3000,
     "stop_loss": 3075, "take_profit": 2850, "confidence": 0.7},
    {"intent_id": "par-3", "symbol": "SOLUSDT", "side": "BUY", "entry_price": 140,
     "stop_loss": 137.9, "confidence": 0.9},
    {"symbol": "BNBUSDT", "action": "SELL", "confidence": 0.62, "price": 935},
    {"symbol": "XRPUSDT", "action": "BUY", "confidence": 0.4, "price": 2.07},
    {"intent_id": "par-6", "symbol": "DOGEUSDT", "side": "BUY", "entry_price": 0.2,
     "stop_loss": 0.19, "confidence": 0.9},
]  # fmt: skip
ORDERS = (
    "SELECT symbol, role, side, reduce_only, requested_qty, trigger_price FROM orders "
    "ORDER BY symbol, role"
)
DECISIONS = "SELECT symbol, status, split_part(reason, ':', 1) FROM signals ORDER BY seq"


def run(db: Path, mode: str) -> None:
    lines = "\n".join(json.dumps(s) for s in SIGNALS)
    pulled = invoke("--db", str(db), mode, "pull-signals", "--from", "-", input=lines)
    assert pulled.exit_code == 0
    result = invoke("--db", str(db), mode, "execute")
    assert result.exit_code == 0, result.output


@pytest.mark.usefixtures("exchange_env")
def test_paper_and_binance_send_the_same_orders(tmp_path, monkeypatch):
    marks = FakeBinance().marks  # the stand-in's mark prices, as flat candles for paper
    monkeypatch.setenv(
        "QTRADER_PAPER_PRICES", str(write_candles(tmp_path / "candles.csv", flat=marks))
    )
    # The stand-in fills market orders at the mark; a default stop is placed from the entry's
    # fill price, so paper must fill at the same price: no slippage here.
    monkeypatch.setenv("QTRADER_PAPER_SLIPPAGE_BPS", "0")
    monkeypatch.setenv("QTRADER_PAPER_IMPACT_BPS_PER_10K", "0")
    paper_db = tmp_path / "paper.duckdb"
    assert invoke("--db", str(paper_db), "clock", "--to", "2026-11-20T09:30:00").exit_code == 0
    run(paper_db, "--paper")

    binance_db = tmp_path / "binance.duckdb"
    import responses

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        FakeBinance().install(mock)
        run(binance_db, "--testnet")

    paper, binance = query(paper_db, ORDERS), query(binance_db, ORDERS)
    assert len(paper) == 12  # four entries, each with its stop and its target
    assert paper == binance
    # and the same verdicts on the rest: XRP below the confidence threshold, DOGE unlisted
    assert query(paper_db, DECISIONS) == query(binance_db, DECISIONS)
