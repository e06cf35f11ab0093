"""Inputs as users write them: a byte order mark, other CSV delimiters, BTC-USDT, and
`qtrader requeue` for a signal that expired (or was rejected) while they were reading."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import invoke, invoke_json, query

BOM = b"\xef\xbb\xbf"
ETH = {"intent_id": "eth-1", "symbol": "ETHUSDT", "side": "BUY", "position_size_usd": 60,
       "confidence": 0.8}  # fmt: skip


def test_jsonl_file_with_a_byte_order_mark(tmp_path, db_path):
    src = tmp_path / "s.jsonl"
    src.write_bytes(
        BOM + json.dumps(ETH).encode() + b"\n" + json.dumps({**ETH, "intent_id": "eth-2"}).encode()
    )
    code, doc = invoke_json("pull-signals", "--from", str(src))
    assert code == 0, doc
    assert doc["totals"]["new"] == 2 and doc["totals"]["invalid"] == 0
    assert query(db_path, "SELECT signal_id, status FROM signals ORDER BY seq") == [
        ("eth-1", "pending"), ("eth-2", "pending")]  # fmt: skip


def test_stdin_json_lines_with_a_byte_order_mark(db_path):
    lines = (
        BOM + json.dumps(ETH).encode() + b"\n" + json.dumps({**ETH, "intent_id": "eth-2"}).encode()
    )
    code, doc = invoke_json("pull-signals", "--from", "-", input=lines)
    assert code == 0 and doc["totals"]["new"] == 2 and doc["totals"]["invalid"] == 0


@pytest.mark.parametrize(
    ("description", "content"),
    [
        ("semicolons (European spreadsheets)", "symbol;side;position_size_usd;confidence\nETHUSDT;BUY;60;0.8\n"),
        ("tabs", "symbol\tside\tposition_size_usd\tconfidence\nETHUSDT\tBUY\t60\t0.8\n"),
        ("commas with a BOM", "\ufeffsymbol,side,position_size_usd,confidence\nETHUSDT,BUY,60,0.8\n"),
    ],
)  # fmt: skip
def test_csv_delimiter_is_detected(description, content, tmp_path, db_path):
    src = tmp_path / "s.csv"
    src.write_text(content, encoding="utf-8")
    code, doc = invoke_json("pull-signals", "--from", str(src))
    assert code == 0, description
    assert doc["totals"]["new"] == 1 and doc["totals"]["invalid"] == 0, (description, doc)
    assert query(db_path, "SELECT symbol, action, position_size_usd FROM signals") == [
        ("ETHUSDT", "BUY", 60)]  # fmt: skip


def test_csv_header_it_cannot_read_is_a_usage_error_naming_it(tmp_path, db_path):
    src = tmp_path / "s.csv"
    src.write_text("ticker:direction\nETHUSDT:BUY\n")
    result = invoke("pull-signals", "--from", str(src))
    assert result.exit_code == 2
    assert "cannot read the CSV header 'ticker:direction'" in result.stderr
    assert "separated by one of , ; TAB |" in result.stderr
    assert query(db_path, "SELECT count(*) FROM signals") == [(0,)]


@pytest.mark.parametrize(
    ("spelling", "symbol", "status"),
    [("BTC-USDT", "BTCUSDT", "pending"), ("btc-usdt", "BTCUSDT", "pending"),
     ("BTC-USDT-SWAP", "BTCUSDT", "pending"), ("BTC/USDT", "BTCUSDT", "pending"),
     ("BTC/USDT:USDT", "BTCUSDT", "pending"), ("BTC-USDT-261225", None, "invalid")],
)  # fmt: skip
def test_symbol_spellings(spelling, symbol, status, db_path):
    signal = {**ETH, "symbol": spelling}
    assert invoke("pull-signals", "--from", "-", input=json.dumps(signal)).exit_code == 0
    assert query(db_path, "SELECT symbol, status FROM signals") == [(symbol, status)]


# --- requeue -------------------------------------------------------------------------------


def _old(minutes: int) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.usefixtures("exchange_env")
def test_requeue_puts_an_expired_signal_back_with_a_fresh_ttl_clock(binance, db_path):
    stale = {**ETH, "timestamp": _old(10)}  # older than signal_ttl_s (300 s)
    assert invoke("pull-signals", "--from", "-", input=json.dumps(stale)).exit_code == 0
    code, doc = invoke_json("--testnet", "execute")
    assert code == 0 and doc["signals"][0]["status"] == "expired"
    assert not binance.order_posts()

    code, doc = invoke_json("--testnet", "requeue", "eth-1")
    assert code == 0, doc
    assert doc["requeued"] == ["eth-1"]
    assert doc["signals"][0]["was"] == "expired"
    status, requeued_at = query(db_path, "SELECT status, requeued_at FROM signals")[0]
    assert status == "pending" and requeued_at is not None
    (event,) = query(db_path, "SELECT kind, message FROM events WHERE kind = 'signal_requeued'")
    assert event[1].startswith("eth-1 put back to pending (was expired: signal is")

    code, doc = invoke_json("--testnet", "execute")
    assert code == 0 and doc["signals"][0]["status"] == "executed", doc
    assert len(binance.order_posts()) == 1


@pytest.mark.usefixtures("exchange_env")
def test_requeue_a_risk_rejected_signal(binance, db_path, monkeypatch):
    monkeypatch.setenv("QTRADER_RISK_DENIED_SYMBOLS", "ETHUSDT")
    assert invoke("pull-signals", "--from", "-", input=json.dumps(ETH)).exit_code == 0
    invoke("--testnet", "execute")
    assert query(db_path, "SELECT status FROM signals") == [("rejected",)]
    monkeypatch.delenv("QTRADER_RISK_DENIED_SYMBOLS")
    code, _ = invoke_json("--testnet", "requeue", "eth-1")
    assert code == 0
    code, doc = invoke_json("--testnet", "execute")
    assert doc["signals"][0]["status"] == "executed", doc


@pytest.mark.usefixtures("exchange_env")
def test_requeue_refuses_what_it_must_not_put_back(binance, db_path):
    pull = [ETH, {**ETH, "intent_id": "sent-1", "symbol": "BNBUSDT"}]
    assert (
        invoke("pull-signals", "--from", "-", input="\n".join(map(json.dumps, pull))).exit_code == 0
    )
    binance.fail_next("/fapi/v1/order", "POST", {"code": -2019, "msg": "Margin is insufficient."})
    invoke("--testnet", "execute")  # eth-1 is rejected by the exchange: it has an order row
    statuses = dict(query(db_path, "SELECT signal_id, status FROM signals"))
    assert statuses == {"eth-1": "rejected", "sent-1": "executed"}
    code, doc = invoke_json("--testnet", "requeue", "eth-1", "sent-1", "nope")
    assert code == 2
    reasons = {s["signal_id"]: s["reason"] for s in doc["signals"]}
    assert "pull it again under a new intent_id" in reasons["eth-1"]
    assert reasons["sent-1"].startswith("it is executed; only expired or rejected")
    assert reasons["nope"].startswith("no such signal")
    assert query(db_path, "SELECT count(*) FROM events WHERE kind = 'signal_requeued'") == [(0,)]
    assert dict(query(db_path, "SELECT signal_id, status FROM signals")) == statuses


def test_symbol_lists_in_settings_accept_every_spelling(monkeypatch):
    monkeypatch.setenv("QTRADER_RISK_DENIED_SYMBOLS", "btc-usdt, ETH/USDT:USDT SOL-USDT-SWAP")
    code, doc = invoke_json("config")
    assert code == 0, doc
    rows = {r["setting"]: r["value"] for r in doc["settings"]}
    assert rows["risk.denied_symbols"] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    monkeypatch.setenv("QTRADER_RISK_DENIED_SYMBOLS", "BTC-USDT-261225")
    code, doc = invoke_json("config")
    assert code == 2 and "dated contract" in doc["error"]
