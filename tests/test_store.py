"""The DuckDB store: migrations, transactions, the lock between processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from qtrader.store import open_store
from qtrader.store.migrations import available, migrate
from tests.conftest import invoke, query

INTENT = {"symbol": "ETHUSDT", "action": "BUY", "confidence": 0.7}


def test_migrations_apply_once_and_are_recorded(db_path):
    store = open_store(str(db_path))
    assert migrate(store.conn) == []  # already applied on open
    versions = store.fetchall("SELECT version, name FROM schema_version ORDER BY version")
    assert versions == [(v, name) for v, name, _ in available()]
    tables = {r[0] for r in store.fetchall("SELECT table_name FROM information_schema.tables")}
    assert {"signals", "runs", "events", "state", "schema_version"} <= tables
    store.close()
    open_store(str(db_path)).close()  # reopening changes nothing
    assert query(db_path, "SELECT count(*) FROM schema_version") == [(len(versions),)]


def test_a_failure_mid_step_leaves_no_half_written_rows(tmp_path, db_path, monkeypatch):
    import qtrader.steps.pull_signals as step

    src = tmp_path / "big.jsonl"
    src.write_text("\n".join(json.dumps({**INTENT, "price": 1000 + i}) for i in range(1200)))
    real_insert = step.insert_signals

    def insert_then_fail(*args, **kwargs):
        real_insert(*args, **kwargs)  # three INSERT chunks written inside the transaction…
        raise OSError("No space left on device")

    monkeypatch.setattr(step, "insert_signals", insert_then_fail)
    result = invoke("pull-signals", "--from", str(src))
    assert result.exit_code == 1
    assert query(db_path, "SELECT count(*) FROM signals") == [(0,)]  # …and none survive
    monkeypatch.undo()
    monkeypatch.setenv("QTRADER_DB", str(db_path))
    assert invoke("pull-signals", "--from", str(src)).exit_code == 0
    assert query(db_path, "SELECT count(*), count(DISTINCT signal_id) FROM signals") == [
        (1200, 1200)
    ]


def test_a_file_that_is_not_duckdb_is_a_usage_error(tmp_path):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello, this is not a database\n" * 100)
    result = invoke("--db", str(bogus), "status")
    assert result.exit_code == 2
    assert f"{bogus} is not a qtrader DuckDB file" in result.stderr


def _qtrader(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "qtrader", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=os.environ.copy(), **kwargs)  # fmt: skip


def _wait_until_locked(db: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            duckdb.connect(str(db), read_only=True).close()
        except duckdb.IOException:
            return
        time.sleep(0.05)
    pytest.fail("the first qtrader never took the lock")


def _holder(db: Path) -> subprocess.Popen:
    """A real qtrader run that holds the lock while it waits for stdin."""
    invoke("status")  # create and migrate first, so the holder starts fast
    holder = _qtrader("pull-signals", "--from", "-", stdin=subprocess.PIPE)
    _wait_until_locked(db)
    return holder


def test_second_process_waits_then_exits_4_naming_the_file(db_path):
    holder = _holder(db_path)
    try:
        started = time.monotonic()
        second = subprocess.run([sys.executable, "-m", "qtrader", "--lock-timeout", "1", "status"],
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        waited = time.monotonic() - started
    finally:
        holder.communicate(json.dumps(INTENT).encode(), timeout=60)
    assert second.returncode == 4
    assert second.stderr.startswith(f"error: database {db_path} is busy: another qtrader run holds "
                                    f"its lock (PID {holder.pid}: {sys.executable} -m qtrader "
                                    "pull-signals --from -); waited 1s")  # fmt: skip
    assert "Traceback" not in second.stderr
    assert waited >= 1.0
    assert holder.returncode == 0


def test_second_process_proceeds_when_the_lock_is_released_in_time(db_path):
    holder = _holder(db_path)
    second = _qtrader("--lock-timeout", "30", "--json", "status")
    time.sleep(1.0)
    holder.communicate(json.dumps(INTENT).encode(), timeout=60)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert json.loads(out)["signals"]["pending"] == 1
