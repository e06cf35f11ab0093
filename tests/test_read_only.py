"""`qtrader sql` and the dry runs write nothing: not a row, not a byte of the file."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import pytest

from qtrader.store import open_store
from tests.conftest import invoke, invoke_json, query
from tests.test_execute import BUY, pull

TABLES = ("state", "halts", "runs", "signals", "orders", "events", "equity", "decisions",
          "exchange_calls", "market_cache", "symbol_setup", "paper_orders")  # fmt: skip


def fingerprint(db_path) -> tuple[str, dict]:
    counts = {t: query(db_path, f"SELECT count(*) FROM {t}")[0][0] for t in TABLES}
    return hashlib.sha256(db_path.read_bytes()).hexdigest(), counts


def _seed_state(db_path) -> None:
    store = open_store(str(db_path))
    store.execute("INSERT INTO state VALUES ('cursor:x', '1', now())")
    store.close()


@pytest.mark.parametrize(
    "statement",
    [
        "EXPLAIN ANALYZE DELETE FROM state",
        "explain analyse delete from state",
        "/* looks harmless */ EXPLAIN -- still\n ANALYZE DELETE FROM state",
    ],
)
def test_explain_analyze_is_refused_and_deletes_nothing(db_path, statement):
    invoke("status")
    _seed_state(db_path)
    before = fingerprint(db_path)
    result = invoke("sql", statement)
    assert result.exit_code == 2 and "EXPLAIN ANALYZE runs its statement" in result.stderr
    assert fingerprint(db_path) == before
    assert invoke("sql", "EXPLAIN SELECT * FROM state").exit_code == 0  # plain EXPLAIN reads


def test_sql_runs_on_a_read_only_connection_even_past_the_statement_check(db_path, monkeypatch):
    """Belt and braces: were the parser check ever to let a write through, the connection
    (read-only, in a transaction that is rolled back) refuses it."""
    import qtrader.steps.sql as sql_step

    invoke("status")
    _seed_state(db_path)
    before = fingerprint(db_path)
    monkeypatch.setattr(sql_step, "READ_ONLY", {*sql_step.READ_ONLY, "DELETE"})
    result = invoke("sql", "DELETE FROM state")
    assert result.exit_code == 2 and "read-only" in result.stderr
    assert fingerprint(db_path) == before


def test_sql_leaves_no_runs_row_and_reads_fine(db_path):
    invoke("status")
    before = fingerprint(db_path)
    code, doc = invoke_json("sql", "SELECT count(*) AS n FROM runs")
    assert code == 0 and doc["rows"] == [[1]]  # status in paper mode (its books are in the file)
    assert fingerprint(db_path) == before


@pytest.mark.usefixtures("exchange_env", "signal_sizing")
def test_execute_dry_run_writes_nothing_and_never_halts(binance, db_path, monkeypatch):
    """A dry run on a day whose loss would trip the daily-loss breaker: it says so, exits 0,
    and leaves the file byte for byte as it was (no halt, no equity row, no cache)."""
    monkeypatch.setenv("QTRADER_RISK_MAX_DRAWDOWN_PCT", "50")
    invoke("status")
    day_start = datetime.utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    store = open_store(str(db_path))
    store.execute("INSERT INTO equity VALUES (?, 'testnet', 0, 10000, 0, 10000)",
                  [day_start + timedelta(seconds=1)])  # fmt: skip
    store.close()
    pull(BUY)
    binance.wallet = "9400"  # 6 % down on the day: the breaker would trip
    before = fingerprint(db_path)

    code, doc = invoke_json("--testnet", "execute", "--dry-run")
    assert code == 0, doc
    (signal,) = doc["signals"]
    assert signal["status"] == "would be rejected"
    assert "a circuit breaker would trip: daily loss 6% >= limit 5%" in signal["reason"]
    assert fingerprint(db_path) == before
    assert binance.order_posts() == [] and binance.algo_posts() == []

    assert invoke("--testnet", "execute").exit_code == 3  # the real run does halt


@pytest.mark.usefixtures("exchange_env")
def test_close_all_dry_run_writes_nothing(binance, db_path):
    invoke("status")
    binance.position("BTCUSDT", "0.01")
    before = fingerprint(db_path)
    code, doc = invoke_json("--testnet", "close-all", "--dry-run")
    assert code == 0 and doc["dry_run"] is True and doc["plan"]["positions"]
    assert fingerprint(db_path) == before
    assert [s for s in binance.sent if s.method != "GET"] == []
