"""The Binance end-to-end scenarios, on Bybit v5 (tests/bybit_fake.py): a burst of signals,
crash and rerun, stop and target firing and settling with Bybit's fees and funding to the
cent, close-all flat, breakers."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.bybit_fake import HOST
from tests.conftest import invoke, invoke_json, query

pytestmark = pytest.mark.usefixtures("bybit_env", "signal_sizing")

BUY = {"intent_id": "y-buy-1", "symbol": "BTC/USDT:USDT", "side": "BUY", "position_size_usd": 425.455,
       "leverage": 3, "entry_price": 50000, "stop_loss": 49000, "take_profit": 52000, "confidence": 0.78}  # fmt: skip


def pull(*signals: dict) -> None:
    lines = "\n".join(json.dumps(s) for s in signals)
    assert invoke("pull-signals", "--from", "-", input=lines).exit_code == 0


def execute(*args: str) -> tuple[int, dict]:
    return invoke_json("--testnet", "execute", *args)


def test_a_buy_on_bybit_places_entry_stop_and_target(bybit, db_path):
    pull(BUY)
    code, doc = execute()
    assert code == 0, json.dumps(doc, default=str)[:3000]
    assert doc["exchange"] == HOST and doc["exchange_name"] == "bybit"
    (signal,) = doc["signals"]
    assert (signal["status"], signal["quantity"], signal["avg_price"]) == (
        "executed",
        "0.008",
        "50000",
    )
    assert query(db_path, "SELECT DISTINCT exchange FROM orders") == [("bybit",)]
    assert bybit.positions["BTCUSDT"] == Decimal("0.008")
    assert len(bybit.conditional("BTCUSDT")) == 2
