"""A notebook-style process holding the DuckDB file: the jobs say so loudly, naming it, and
close-all still acts on the exchange, then records what it did."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from qtrader.store.db import busy_message, lock_holder
from tests.conftest import invoke, invoke_json, query

JOBS = Path(__file__).parent.parent / "jobs"
NOTEBOOK = ("import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == 'ro'); "
            "print('ready', flush=True); sys.stdin.read()")  # fmt: skip


@pytest.fixture
def notebook(db_path):
    """A separate Python process with a DuckDB connection on the file, as a notebook has."""
    invoke("status")  # the file exists and is migrated, as it would be

    def start(read_only: bool = False) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", NOTEBOOK, str(db_path), "ro" if read_only else "rw"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert proc.stdout.readline().strip() == "ready"
        started.append(proc)
        return proc

    started: list[subprocess.Popen] = []
    yield start
    for proc in started:
        proc.communicate("", timeout=30)


@pytest.mark.parametrize("read_only", [False, True])
def test_jobs_say_loudly_who_holds_the_file(db_path, tmp_path, notebook, read_only):
    holder = notebook(read_only)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QTRADER_")}
    env |= {"QTRADER_BIN": str(Path(sys.executable).parent / "qtrader"), "QTRADER_DB": str(db_path),
            "QTRADER_LOCK_TIMEOUT": "1", "QTRADER_LOG_DIR": str(tmp_path / "logs"),
            "QTRADER_LOCK_DIR": str(tmp_path), "QTRADER_ENV_FILE": "/dev/null"}  # fmt: skip
    result = subprocess.run([str(JOBS / "reconcile")], env=env, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 4
    mail = result.stderr  # what cron mails
    assert "reconcile could not open the database (exit 4)" in mail
    assert f"PID {holder.pid} ({sys.executable} -c import duckdb" in mail
    assert "is not a qtrader run" in mail and f"`kill {holder.pid}`" in mail
    assert "no reconcile, no stop repairs" in mail


def test_the_holder_is_found_through_proc_when_duckdb_does_not_say(db_path, notebook):
    holder = notebook()
    assert lock_holder(db_path) == holder.pid
    message = busy_message(db_path, "IO Error: Could not set lock on file", 2)
    assert f"PID {holder.pid} ({sys.executable} -c import duckdb" in message
    assert "waited 2s" in message


@pytest.mark.usefixtures("exchange_env")
def test_close_all_acts_on_the_exchange_while_a_notebook_holds_the_file(binance, db_path, notebook):
    binance.position("BTCUSDT", "0.01")
    binance._new_algo_order({"clientAlgoId": "sl-btc", "type": "STOP_MARKET", "symbol": "BTCUSDT",
                             "side": "SELL", "triggerPrice": "49000", "quantity": "0.01",
                             "reduceOnly": "true", "workingType": "MARK_PRICE"})  # fmt: skip
    holder = notebook()
    result = invoke("--testnet", "--lock-timeout", "0.5", "close-all", "--yes")
    assert result.exit_code == 0, result.stderr
    assert all(amount == 0 for amount in binance.positions.values())  # flat on the exchange
    assert binance.algo_orders["sl-btc"]["algoStatus"] == "CANCELED"
    assert f"PID {holder.pid}" in result.stderr
    assert "the next qtrader run that opens" in result.stderr
    (saved,) = (db_path.parent / (db_path.name + ".recovery")).glob("*.json")

    holder.communicate("", timeout=30)  # the notebook lets go
    code, doc = invoke_json("--testnet", "status")  # the first run imports what close-all did
    assert code == 0 and [h["kind"] for h in doc["halts"]] == ["kill_switch"]
    assert not saved.exists() and (saved.parent / "imported" / saved.name).exists()
    assert query(db_path, "SELECT symbol, role, status FROM orders") == [
        ("BTCUSDT", "exit", "filled")
    ]
    kinds = [k for (k,) in query(db_path, "SELECT kind FROM events ORDER BY event_id")]
    assert kinds == ["close_all_started", "close_all_finished", "recovery_imported"]
    (run,) = query(
        db_path, "SELECT command, outcome, exit_code FROM runs WHERE command = 'close-all'"
    )
    assert run == ("close-all", "ok", 0)
    assert invoke("--testnet", "execute").exit_code == 3  # the kill switch holds


@pytest.mark.usefixtures("exchange_env")
def test_close_all_records_at_once_when_the_lock_frees_in_time(binance, db_path, monkeypatch):
    """The second wait: the holder let go while close-all worked, so it imports right away."""
    import qtrader.runner as runner
    from qtrader.errors import DatabaseBusy

    binance.position("ETHUSDT", "-0.1")
    invoke("status")
    real = runner.open_store
    calls = []

    def busy_once(path, lock_timeout=30.0, read_only=False):
        calls.append(path)
        if len(calls) == 1:
            raise DatabaseBusy(f"database {path} is busy: held by PID 1 (notebook)")
        return real(path, lock_timeout, read_only)

    monkeypatch.setattr(runner, "open_store", busy_once)
    result = invoke("--testnet", "close-all", "--yes")
    assert result.exit_code == 0 and "imported into" in result.stderr
    assert query(db_path, "SELECT kind FROM halts WHERE mode = 'testnet'") == [("kill_switch",)]
    assert query(db_path, "SELECT symbol, side FROM orders") == [("ETHUSDT", "BUY")]


def test_a_recovery_file_that_cannot_be_imported_keeps_its_kill_switch(db_path):
    import json

    invoke("status")
    folder = db_path.parent / (db_path.name + ".recovery")
    folder.mkdir()
    broken = folder / "20260301T000000-run1-pid1.json"
    broken.write_text(json.dumps({"format": 1, "tables": {
        "runs": [], "halts": [{"mode": "live", "kind": "kill_switch", "reason": "kill switch: close-all",
                               "since": "2026-03-01T00:00:00", "day": "2026-03-01", "numbers": "{}"}],
        "orders": [{"no_such_column": 1}], "events": [], "exchange_calls": []}}))  # fmt: skip
    result = invoke("--live", "--yes-live", "status")
    assert result.exit_code == 0  # the database is not locked out by a bad file
    assert "could not be imported" in result.stderr
    assert query(db_path, "SELECT mode, kind FROM halts") == [("live", "kill_switch")]
    assert (folder / "failed" / broken.name).exists() and not broken.exists()


def test_a_lock_wait_that_runs_out_alerts_once_per_interval(db_path, notebook, monkeypatch):
    import json

    import responses

    hook = "https://hooks.example.test/qtrader"
    monkeypatch.setenv("QTRADER_WEBHOOK_URL", hook)
    holder = notebook()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, hook, json={"ok": True})
        for _ in range(2):
            assert invoke("--lock-timeout", "0.2", "reconcile").exit_code == 4
        bodies = [json.loads(c.request.body) for c in mock.calls]
    (alert,) = bodies  # the second run within alerts.min_interval_s stays quiet
    assert alert["kind"] == "database_busy" and alert["severity"] == "critical"
    assert f"PID {holder.pid}" in alert["text"]
