"""`qtrader tick` and `qtrader run`: the steps in one process, each recorded as its own run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from qtrader.domain.ticking import Activity, parse_every, reconcile_due, tick_exit_code
from qtrader.store import open_store
from tests.conftest import invoke, invoke_json, query
from tests.paper_data import write_candles
from tests.test_execute import BUY

NOW = datetime(2026, 12, 1, 12, 0)


@pytest.mark.parametrize(
    "description, codes, expected",
    [
        ("all done", [0, 0, 0], 0),
        ("a halt alone", [0, 3, 3], 3),
        ("a failed pull is not hidden by the halt after it", [1, 3, 3], 1),
        ("a failed repair during a halt", [0, 3, 1], 1),
        ("a busy file outranks a halt", [0, 3, 4], 4),
        ("a failure outranks a busy file", [1, 4], 1),
        ("bad configuration", [2, 2, 2], 2),
        ("interrupted", [0, 130], 130),
    ],
)
def test_one_exit_code_for_a_tick(description, codes, expected):
    assert tick_exit_code(codes) == expected, description


@pytest.mark.parametrize(
    "description, activity, due",
    [
        ("idle, reconciled a minute ago", Activity(0, 0, 0, NOW - timedelta(minutes=1)), False),
        ("idle, reconciled 5 minutes ago", Activity(0, 0, 0, NOW - timedelta(minutes=5)), True),
        ("never reconciled", Activity(0, 0, 0, None), True),
        ("an open position", Activity(1, 0, 0, NOW), True),
        ("an order of unknown outcome", Activity(0, 1, 0, NOW), True),
        ("a signal executing", Activity(0, 0, 1, NOW), True),
    ],
)
def test_reconcile_is_due_whenever_something_is_open(description, activity, due):
    assert (reconcile_due(activity, NOW, 300) is not None) == due, description


def test_every_parses_durations():
    assert [parse_every(t) for t in ("10s", "500ms", "1m", "2")] == [10, 0.5, 60, 2]
    with pytest.raises(ValueError, match="at least 100ms"):
        parse_every("0s")
    with pytest.raises(ValueError, match="like 10s"):
        parse_every("soon")


@pytest.mark.usefixtures("exchange_env", "signal_sizing")
def test_a_tick_pulls_executes_and_reconciles_each_as_its_own_run(binance, db_path, tmp_path):
    source = tmp_path / "signals.jsonl"
    source.write_text(json.dumps(BUY) + "\n")
    code, doc = invoke_json("--testnet", "tick", "--from", str(source))
    assert code == 0, doc
    assert [s["command"] for s in doc["steps"]] == ["pull-signals", "execute", "reconcile"]
    assert doc["mode"] == "testnet" and doc["db"] == str(db_path)
    assert len(binance.order_posts()) == 1  # the entry, once
    assert query(db_path, "SELECT command, mode, exit_code FROM runs ORDER BY run_id") == [
        ("pull-signals", "testnet", 0), ("execute", "testnet", 0), ("reconcile", "testnet", 0)
    ]  # fmt: skip
    code, doc = invoke_json("--testnet", "tick", "--from", str(source))  # again: nothing new
    assert code == 0 and len(binance.order_posts()) == 1
    assert doc["steps"][2].get("skipped") is None  # a position is open: reconcile ran


@pytest.mark.usefixtures("exchange_env")
def test_an_idle_tick_skips_the_exchange(binance, db_path):
    assert invoke("--testnet", "reconcile").exit_code == 0
    sent = len(binance.sent)
    code, doc = invoke_json("--testnet", "tick")
    assert code == 0, doc
    assert doc["steps"][1]["skipped"] is True and doc["steps"][0]["exchange"] is None
    assert len(binance.sent) == sent  # not one request
    assert query(db_path, "SELECT outcome FROM runs WHERE command = 'reconcile' "
                 "ORDER BY run_id DESC LIMIT 1") == [("idle",)]  # fmt: skip


@pytest.mark.usefixtures("exchange_env")
def test_a_halted_tick_still_reconciles_and_exits_3(binance, db_path):
    assert invoke("--testnet", "reconcile").exit_code == 0
    store = open_store(str(db_path))
    store.execute("INSERT INTO equity VALUES (?, 'testnet', 0, 11000, 0, 11000)",
                  [datetime.utcnow() - timedelta(days=3)])  # fmt: skip
    store.execute("UPDATE runs SET started_at = started_at - INTERVAL 1 HOUR")
    store.close()
    code, doc = invoke_json("--testnet", "tick")
    assert code == 3, doc
    assert [s["exit_code"] for s in doc["steps"]] == [0, 3]  # execute idle, reconcile trips


def test_a_failed_pull_is_reported_and_the_chain_goes_on(db_path, tmp_path):
    code, doc = invoke_json("tick", "--from", "redis://127.0.0.1:1/0?stream=x")
    assert code == 1 and [s["command"] for s in doc["steps"]] == [
        "pull-signals", "execute", "reconcile"
    ]  # fmt: skip


def test_a_bad_every_is_a_usage_error():
    result = invoke("run", "--every", "0s")
    assert result.exit_code == 2 and "at least 100ms" in result.stderr


IDLE_IMPORTS = """
import sys
from qtrader.cli import app
try:
    app(["--testnet", "tick"])
except SystemExit as exit:
    code = exit.code
print(code, sorted(m for m in ("ccxt", "requests") if m in sys.modules))
"""


def test_an_idle_tick_imports_neither_ccxt_nor_requests(db_path, monkeypatch):
    store = open_store(str(db_path))
    from qtrader.store.runs import finish_run, set_run_mode
    from qtrader.store.runs import start_run as record_run

    run_id = record_run(store, "reconcile", {})
    set_run_mode(store, run_id, "testnet")
    finish_run(store, run_id, "ok", 0)
    store.close()
    env = {**os.environ, "BINANCE_API_KEY": "k", "BINANCE_API_SECRET": "s"}
    out = subprocess.run([sys.executable, "-c", IDLE_IMPORTS], env=env, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert out.stdout.strip().splitlines()[-1] == "0 []", out.stderr


# --- run: a loop under a supervisor, with a real redis-server and the paper exchange ------------

SIGNAL = {"symbol": "BTCUSDT", "side": "BUY", "position_size_usd": 1000, "leverage": 2,
          "entry_price": 50000, "stop_loss": 49000, "take_profit": 52000, "confidence": 0.8,
          "timestamp": "2026-11-20T09:29:30Z"}  # fmt: skip
QTRADER = [sys.executable, "-m", "qtrader"]


@pytest.fixture
def paper_env(tmp_path: Path, db_path: Path) -> dict[str, str]:
    candles = write_candles(tmp_path / "candles.csv", flat={"BTCUSDT": "50000",
                                                            "ETHUSDT": "3000"})  # fmt: skip
    env = {**os.environ, "QTRADER_PAPER_PRICES": str(candles), "QTRADER_RISK_SIZING": "signal",
           "QTRADER_PAPER_SLIPPAGE_BPS": "0", "QTRADER_RISK_MAX_OPEN_POSITIONS": "100",
           "QTRADER_RISK_MAX_TRADES_PER_HOUR": "1000", "QTRADER_RISK_PYRAMIDING": "true",
           "QTRADER_RISK_MAX_TOTAL_EXPOSURE_USD": "1000000",
           "QTRADER_RISK_MAX_ENTRIES_PER_SYMBOL": "100"}  # fmt: skip
    clock = subprocess.run([*QTRADER, "clock", "--to", "2026-11-20T09:30:00"], env=env,
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert clock.returncode == 0, clock.stderr
    return env


def start_run(env: dict[str, str], stream_url: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([*QTRADER, "--paper", "run", "--from", stream_url, *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def wait_for(predicate, timeout: float = 30.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError("timed out")


def entries(db: Path) -> list[tuple]:
    try:
        return query(db, "SELECT signal_id, count(*) FROM orders WHERE role = 'entry' "
                     "GROUP BY signal_id")  # fmt: skip
    except Exception:  # the loop holds the file this instant
        return []


def test_run_reacts_to_a_stream_entry_long_before_its_interval_and_stops_on_sigterm(
    paper_env, redis_client, redis_server, db_path
):
    url = f"{redis_server}?stream=intents"
    proc = start_run(paper_env, url, "--every", "60s")
    try:
        time.sleep(3)  # the first tick is over; the loop waits on the stream
        redis_client.xadd("intents", {"data": json.dumps({**SIGNAL, "intent_id": "r-1"})})
        waited = wait_for(lambda: bool(entries(db_path)), timeout=20)
        assert waited < 10  # not the 60 s interval
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert entries(db_path) == [("r-1", 1)]


def test_run_killed_mid_iteration_loses_no_signal_and_sends_none_twice(
    paper_env, redis_client, redis_server, db_path
):
    url = f"{redis_server}?stream=intents"
    ids = [f"k-{i}" for i in range(12)]
    for intent in ids[:6]:
        redis_client.xadd("intents", {"data": json.dumps({**SIGNAL, "intent_id": intent})})
    for delay in (0.9, 1.3, 1.7):  # kill -9 somewhere inside a tick, three times
        proc = start_run(paper_env, url, "--every", "200ms")
        time.sleep(delay)
        proc.kill()
        proc.wait(timeout=30)
        if delay == 1.3:
            for intent in ids[6:]:
                redis_client.xadd("intents", {"data": json.dumps({**SIGNAL, "intent_id": intent})})
    proc = start_run(paper_env, url, "--every", "200ms", "--max-ticks", "4")
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert query(db_path, "SELECT count(*), count(DISTINCT signal_id) FROM signals") == [(12, 12)]
    statuses = query(db_path, "SELECT signal_id, status, reason FROM signals ORDER BY 1")
    assert sorted(entries(db_path)) == [(i, 1) for i in sorted(ids)], statuses  # one entry row
    sent = query(
        db_path,
        "SELECT client_id, count(*), count(*) FILTER (WHERE status = 'FILLED') "
        "FROM paper_orders WHERE kind = 'market' AND NOT reduce_only GROUP BY ALL",
    )
    assert all(count == 1 for _, count, _ in sent), sent  # none reached the exchange twice
    executed = [s for s in statuses if s[1] == "executed"]
    assert sum(filled for _, _, filled in sent) == len(executed), statuses
    for signal_id, status, reason in statuses:  # every other one says why, none is lost
        if status == "executing":  # killed between write-ahead and send: its order's outcome
            (order,) = query(db_path, "SELECT status FROM orders WHERE signal_id = ? AND "
                             "role = 'entry'", [signal_id])  # fmt: skip
            assert order == ("submitting",)  # waits for the grace period, then is looked up
        else:
            assert status == "executed" or reason, (signal_id, status)
