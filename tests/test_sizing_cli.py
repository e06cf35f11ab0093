"""Sizing as a user meets it: `auto` by default, and execute shows the notional, the sizing used
and the cap that bound it (table, --dry-run and --json)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import invoke, invoke_json, query

pytestmark = pytest.mark.usefixtures("exchange_env")

# The first demo order, as the README's quick start and docs/getting-started print it.
README = (Path(__file__).parent.parent / "README.md").read_text()
GUIDE = (Path(__file__).parent.parent / "docs/getting-started/first-demo-order.md").read_text()
ECHOED = r"echo '(\{[^']*\"first-1\"[^']*\})'"
FIRST_ORDER = json.loads(re.search(ECHOED, README).group(1))


def pull(*signals: dict) -> None:
    lines = "\n".join(json.dumps(s) for s in signals)
    assert invoke("pull-signals", "--from", "-", input=lines).exit_code == 0


def test_the_guide_and_the_readme_show_the_same_first_order():
    assert json.loads(re.search(ECHOED, GUIDE).group(1)) == FIRST_ORDER


def test_readme_first_demo_order_places_about_60_usdt(binance, db_path):
    pull(FIRST_ORDER)
    code, doc = invoke_json("--testnet", "execute")
    assert code == 0, doc
    (entry,) = binance.order_posts()
    assert entry.params["symbol"] == "ETHUSDT" and entry.params["quantity"] == "0.02"  # 60 / 3000
    (signal,) = doc["signals"]
    assert signal["status"] == "executed" and signal["notional"] == "60"
    assert signal["sizing"] == {"notional": "60", "method": "auto", "used": "signal",
                                "requested": "60", "bound_by": None}  # fmt: skip
    (detail,) = query(db_path, "SELECT detail FROM decisions")
    assert json.loads(detail[0])["sizing"]["used"] == "signal"


def test_dry_run_table_shows_notional_and_sizing(binance):
    pull(FIRST_ORDER, {**FIRST_ORDER, "intent_id": "no-size", "symbol": "SOLUSDT",
                       "position_size_usd": None})  # fmt: skip
    result = invoke("--testnet", "execute", "--dry-run")
    assert result.exit_code == 0, result.output
    assert not binance.order_posts()
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "notional" in line)
    assert "sizing" in header
    eth = next(line for line in lines if "ETHUSDT" in line)
    assert "would execute" in eth and " 60 " in eth and "signal (auto)" in eth
    sol = next(line for line in lines if "SOLUSDT" in line)
    # no size on the signal: risk sizing (10,000 × 1 % ÷ 2 % stop = 5,000 × 1.45), capped
    assert "risk (auto), capped by max_position_usd 1000" in sol


def test_dry_run_json_shows_the_binding_cap(binance):
    pull({**FIRST_ORDER, "position_size_usd": 5000})
    code, doc = invoke_json("--testnet", "execute", "--dry-run")
    assert code == 0, doc
    (signal,) = doc["signals"]
    assert signal["status"] == "would execute" and signal["quantity"] == "0.333"
    assert signal["sizing"]["requested"] == "5000"
    assert signal["sizing"]["bound_by"] == "max_position_usd 1000"
    assert signal["notional"] == "999"  # 0.333 × 3000: rounded down to the step


def test_ten_usdt_btc_signal_is_rejected_for_min_notional_not_upsized(binance, db_path):
    pull({"intent_id": "seed-10", "symbol": "BTCUSDT", "side": "BUY", "position_size_usd": 10,
          "confidence": 0.8})  # fmt: skip
    code, doc = invoke_json("--testnet", "execute")
    assert code == 0, doc
    assert not binance.order_posts()
    (signal,) = doc["signals"]
    assert signal["status"] == "rejected" and signal["sizing"]["notional"] == "10"
    reason = signal["reason"]
    assert reason.startswith("min_order: BTCUSDT: 10 USDT at 50000")
    assert "minimum notional 100 USDT" in reason
    assert reason.endswith("the smallest order is 100 USDT; raise the size (position_size_usd, "
                           "or the risk settings)")  # fmt: skip
    assert query(db_path, "SELECT status FROM signals") == [("rejected",)]


def test_explicit_risk_sizing_ignores_the_signal_size(binance, monkeypatch):
    monkeypatch.setenv("QTRADER_RISK_SIZING", "risk")
    pull(FIRST_ORDER)
    code, doc = invoke_json("--testnet", "execute", "--dry-run")
    assert code == 0, doc
    (signal,) = doc["signals"]
    assert signal["sizing"]["method"] == "risk" and signal["sizing"]["used"] == "risk"
    assert signal["sizing"]["bound_by"] == "max_position_usd 1000"
