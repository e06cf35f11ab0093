"""status reads equity, day PnL and open positions live when the exchange answers (marked
live), else shows what the last reconcile stored, marked with its age."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import invoke, invoke_json

pytestmark = pytest.mark.usefixtures("exchange_env")


def test_live_when_the_exchange_answers(binance, db_path):
    assert invoke_json("--testnet", "reconcile")[0] == 0  # an equity snapshot at 10,000
    binance.position("SOLUSDT", "3", entry="130")  # opened by hand on the exchange
    binance.wallet = "10025"
    code, doc = invoke_json("--testnet", "status")
    assert code == 0, doc
    account = doc["account"]
    assert account["source"] == "live" and account["age_s"] == 0
    assert account["equity"] == "10025" and account["day_pnl"] == "25"
    (position,) = doc["positions"]
    assert (position["symbol"], position["side"], position["qty"]) == ("SOLUSDT", "long", "3")
    assert position["entry_price"] == "130" and position["mark_price"] == "140"
    text = invoke("--testnet", "status").stdout
    assert "equity 10025 USDT, day PnL +25 USDT" in text
    assert "open positions (LIVE from the exchange)" in text


def test_as_of_the_last_reconcile_with_its_age_when_unreachable(binance, db_path):
    assert invoke_json("--testnet", "reconcile")[0] == 0
    refused = requests.exceptions.ConnectionError(ConnectionRefusedError(111, "Connection refused"))
    binance.fail_next("/fapi/v3/account", "GET", refused)  # status makes one attempt only
    code, doc = invoke_json("--testnet", "status")
    assert code == 0, doc
    account = doc["account"]
    assert account["source"] == "last_reconcile" and account["equity"] == "10000"
    assert 0 <= account["age_s"] < 60
    assert "connection refused" in account["not_live_because"]
    binance.fail_next("/fapi/v3/account", "GET", refused)
    text = invoke("--testnet", "status").stdout
    assert "open positions (as of the last reconcile, " in text and " s ago)" in text
    assert "not live: Binance did not answer: connection refused" in text


def test_without_keys_or_history_it_says_so(binance, monkeypatch):
    monkeypatch.delenv("BINANCE_API_KEY")
    code, doc = invoke_json("--testnet", "status")
    assert code == 0, doc
    assert doc["account"]["source"] is None and doc["account"]["equity"] is None
    assert "BINANCE_API_KEY" in doc["account"]["not_live_because"]
    assert binance.sent == []
