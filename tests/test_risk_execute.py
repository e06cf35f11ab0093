"""The risk engine inside execute: the seeds' signal burst, breakers, halts and resume."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from qtrader.store import open_store
from tests.conftest import invoke, invoke_json, query
from tests.test_execute import BUY, execute, pull

pytestmark = pytest.mark.usefixtures("exchange_env")

FIVE = {"BTCUSDT": (50000, 49000), "ETHUSDT": (3000, 2940), "SOLUSDT": (140, 137.2),
        "BNBUSDT": (935, 916.3), "XRPUSDT": (2.07, 2.0286)}  # fmt: skip
RULE_NAMES = ("pyramiding", "opposite_signal", "max_total_exposure_usd", "max_exposure_x_equity",
              "max_open_positions", "max_trades_per_hour", "confidence_threshold", "min_order")  # fmt: skip


@pytest.fixture
def clock(monkeypatch):
    """Moves qtrader's notion of now (every module that imported utcnow)."""
    import qtrader.clock

    offset = {"delta": timedelta(0)}
    real = qtrader.clock.utcnow

    def shifted() -> datetime:
        return real() + offset["delta"]

    for name, module in list(sys.modules.items()):
        if name.startswith("qtrader") and getattr(module, "utcnow", None) is real:
            monkeypatch.setattr(module, "utcnow", shifted)
    return offset


def burst(minute: int) -> list[dict]:
    """The seeds' traffic: 20 signals a minute on the same five symbols, both sides."""
    out = []
    for i in range(20):
        symbol = list(FIVE)[i % 5]
        price, stop = FIVE[symbol]
        side = "BUY" if (i // 5) % 2 == 0 else "SELL"
        stop = stop if side == "BUY" else price + (price - stop)
        out.append({"intent_id": f"m{minute}-{i}", "symbol": symbol, "side": side, "confidence": 0.72,
                    "entry_price": price, "stop_loss": stop, "leverage": 3})  # fmt: skip
    return out


def test_burst_of_20_a_minute_on_five_symbols_opens_at_most_one_position_each(binance, db_path):
    for minute in range(3):
        pull(*burst(minute))
        code, doc = execute()
        assert code == 0, doc
        for signal in doc["signals"]:
            if signal["status"] != "executed":
                assert signal["status"] in ("skipped", "rejected")
                assert signal["reason"].split(":")[0] in RULE_NAMES, signal["reason"]
    entries = [p.params["symbol"] for p in binance.order_posts()]
    assert len(entries) == len(set(entries)) <= 5  # one entry per symbol at most, never more
    assert all(amount != 0 for amount in binance.positions.values())
    assert query(db_path, "SELECT count(*) FROM signals WHERE status = 'executed'") == [
        (len(entries),)
    ]
    # every decision is stored with the rule that decided it
    rules = query(db_path, "SELECT json_extract_string(detail, '$.rule') FROM decisions "
                           "WHERE outcome IN ('reject', 'skip')")  # fmt: skip
    assert len(rules) == 60 - len(entries) and all(r[0] in RULE_NAMES for r in rules)


def _snapshot(db_path, equity: str, at: datetime) -> None:
    store = open_store(str(db_path))
    store.execute("INSERT INTO equity VALUES (?, 'testnet', 0, ?, 0, ?)", [at, equity, equity])
    store.close()


def test_daily_loss_breaker_halts_until_the_next_utc_day(binance, db_path, clock, monkeypatch):
    monkeypatch.setenv("QTRADER_RISK_MAX_DRAWDOWN_PCT", "50")  # isolate the daily-loss breaker
    day_start = datetime.utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    invoke("status")
    _snapshot(db_path, "10000", day_start + timedelta(seconds=1))  # start of day: 10,000
    binance.wallet = "9400"  # now 9,400: a 6 % daily loss against a 5 % limit
    pull(BUY)
    result = invoke("--testnet", "execute")
    assert result.exit_code == 3
    assert "circuit breaker tripped: daily loss 6% >= limit 5%" in result.stderr
    assert binance.order_posts() == []
    status = invoke("--testnet", "status").stdout
    assert (
        "HALTED (daily_loss): daily loss 6% >= limit 5%" in status
        and "lifts at 00:00 UTC" in status
    )
    assert query(db_path, "SELECT kind, severity FROM events") == [("breaker_tripped", "critical")]
    assert invoke("--testnet", "execute").exit_code == 3  # still the same day

    clock["delta"] = timedelta(days=1)  # the next UTC day
    pull({**BUY, "intent_id": "next-day"})
    code, doc = execute()
    assert code == 0, doc
    assert [s["status"] for s in doc["signals"]] == ["expired", "executed"]  # yesterday's expired
    assert query(db_path, "SELECT kind FROM events ORDER BY event_id")[-1] == ("halt_cleared",)


def test_drawdown_breaker_needs_resume_and_resume_resets_the_peak(binance, db_path):
    invoke("status")
    _snapshot(db_path, "11000", datetime.utcnow() - timedelta(days=3))  # the peak
    pull(BUY)
    result = invoke("--testnet", "execute")  # equity 10,000: 9.09 % below the peak
    assert result.exit_code == 3 and "drawdown 9.09% from peak 11000 >= limit 4%" in result.stderr
    assert "`qtrader resume` lifts it" in result.stderr
    code, doc = invoke_json("--testnet", "resume")
    assert code == 0 and doc["resumed"] is True
    assert [h["kind"] for h in doc["lifted"]] == ["drawdown"]
    code, doc = execute()
    assert code == 0 and doc["signals"][0]["status"] == "executed"
    assert [k for (k,) in query(db_path, "SELECT kind FROM events ORDER BY event_id")] == [
        "breaker_tripped",
        "halt_lifted",
    ]
    _, again = invoke_json("--testnet", "resume")
    assert again["resumed"] is False


def close_position(
    store, symbol: str, reason: str, pnl: int, closed: datetime, trade_id: str
) -> None:
    """A position reconcile derived from the fills ledger, closed at `closed` (exchange time)."""
    store.execute(
        "INSERT INTO positions (mode, symbol, side, position_side, qty, entry_price, opened_at, origin, "
        "status, closed_at, exit_price, exit_reason, realized_pnl, fees, funding, updated_at, "
        "open_trade_id, opened_by, close_trade_id) VALUES ('testnet', ?, 'BUY', 'BOTH', 1, 100, ?, "
        "'qtrader', 'closed', ?, 100, ?, ?, 0, 0, ?, ?, 'flat', ?)",
        [symbol, closed - timedelta(minutes=1), closed, reason, pnl, closed, f"o{trade_id}",
         f"c{trade_id}"])  # fmt: skip


def test_losing_streak_breaker(binance, db_path, monkeypatch):
    monkeypatch.setenv("QTRADER_RISK_MAX_CONSECUTIVE_LOSSES", "2")
    monkeypatch.setenv("QTRADER_RISK_COOLDOWN_AFTER_STOP_S", "off")
    store = open_store(str(db_path))
    for i, (reason, pnl) in enumerate(
        [("take_profit", 20), ("stop_loss", -10), ("stop_loss", -10)]
    ):
        closed = datetime.utcnow() - timedelta(hours=3 - i)
        close_position(store, "ETHUSDT", reason, pnl, closed, trade_id=str(i))
    store.close()
    pull(BUY)
    result = invoke("--testnet", "execute")
    assert result.exit_code == 3 and "2 losing trades in a row >= limit 2" in result.stderr


def test_cooldown_after_a_stop_out_counts_from_its_closing_fill(binance, db_path):
    store = open_store(str(db_path))
    stopped = datetime.utcnow() - timedelta(minutes=5)  # the exchange's time of the stop's fill
    close_position(store, "BTCUSDT", "stop_loss", -8, stopped, trade_id="1")
    store.close()
    pull(BUY)
    code, doc = execute()
    assert code == 0 and doc["signals"][0]["status"] == "rejected"
    assert doc["signals"][0]["reason"].startswith("cooldown_after_stop: BTCUSDT stopped out 3")


def test_price_drift_guard_skips(binance, db_path):
    binance.marks["BTCUSDT"] = "51000"  # 2 % above the signal's 50,000
    pull(BUY)
    code, doc = execute()
    assert code == 0 and doc["signals"][0]["status"] == "skipped"
    assert doc["signals"][0]["reason"].startswith(
        "price_drift: price moved 2% from the signal's 50000"
    )


def test_opposite_signal_close_and_reverse(binance, db_path, monkeypatch):
    binance.position("BTCUSDT", "-0.01")  # short
    monkeypatch.setenv("QTRADER_RISK_OPPOSITE_SIGNAL", "close")
    pull({**BUY, "intent_id": "close-it"})
    code, doc = execute()
    assert code == 0 and doc["signals"][0]["status"] == "executed"
    assert doc["signals"][0]["reason"].startswith("opposite signal: closed 0.01")
    (close,) = binance.order_posts()
    assert (close.params["side"], close.params["reduceOnly"], close.params["quantity"]) == (
        "BUY",
        "true",
        "0.01",
    )

    binance.position("BTCUSDT", "-0.01")
    monkeypatch.setenv("QTRADER_RISK_OPPOSITE_SIGNAL", "reverse")
    pull({**BUY, "intent_id": "reverse-it"})
    code, doc = execute()
    assert doc["signals"][0]["status"] == "reversing"
    assert query(db_path, "SELECT status FROM signals WHERE signal_id = 'reverse-it'") == [
        ("pending",)
    ]
    code, doc = execute()  # next run: flat, so the entry goes in
    assert doc["signals"][0]["status"] == "executed"
    assert binance.positions[("BTCUSDT", "BOTH")] > 0
    assert len(binance.order_posts()) == 3  # close, reverse close, entry


def test_profile_presets_set_the_limits_in_one_word(binance, db_path):
    pull({**BUY, "confidence": 0.7})
    code, doc = invoke_json("--testnet", "--profile", "conservative", "execute")
    assert doc["signals"][0]["reason"] == (
        "confidence_threshold: confidence 0.7 < threshold 0.75; "
        "lower risk.confidence_threshold to accept such signals"
    )
    pull({**BUY, "intent_id": "agg", "confidence": 0.52, "position_size_usd": 2000})
    code, doc = invoke_json("--testnet", "--profile", "aggressive", "execute")
    assert code == 0 and doc["signals"][0]["status"] == "executed"
    detail = json.loads(
        query(db_path, "SELECT detail FROM decisions ORDER BY decision_id DESC LIMIT 1")[0][0]
    )
    assert Decimal(detail["sizing"]["notional"]) > 1000  # aggressive: max position 5,000
