"""qtrader prune: old rows to zstd Parquet, deleted, the file compacted; nothing still needed
goes, and the views answer the same after."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from qtrader.store import open_store
from tests.conftest import invoke, invoke_json, query
from tests.test_paper import LONG, SHORT, candles, pull, step  # noqa: F401 (the fixture)

pytestmark = pytest.mark.usefixtures("signal_sizing", "candles")

INVALID = {"intent_id": "bad-1", "symbol": "BTCUSDT", "side": "BUY", "confidence": 7}
TOTALS = {
    "v_trades": "SELECT count(*), sum(net_pnl), sum(fees), sum(funding) FROM v_trades",
    "v_daily_pnl": "SELECT day, realized_pnl, fees, funding, net_pnl, trades, equity "
    "FROM v_daily_pnl ORDER BY day",
    "drawdown": "SELECT max(peak - equity) FROM (SELECT equity, max(equity) OVER "
    "(PARTITION BY mode ORDER BY ts) AS peak FROM v_equity)",
    "equity range": "SELECT mode, ts::DATE, min(equity), max(equity), arg_min(equity, ts), "
    "arg_max(equity, ts) FROM v_equity GROUP BY ALL ORDER BY ALL",
}
AGED = [  # (table, timestamp columns): the whole history moved 40 days back
    ("equity", ("ts",)),
    ("exchange_calls", ("ts",)),
    ("runs", ("started_at", "ended_at")),
    ("signals", ("received_at", "updated_at")),
    ("decisions", ("ts",)),
]


def history(db_path: Path) -> None:
    """Two paper trades (a target and a stop), an invalid signal, a day of idle equity with a
    peak and a trough in its middle; everything then 40 days old."""
    step("clock", "--to", "2026-11-20T09:30:00")
    pull(LONG, SHORT, INVALID)
    step("execute")
    step("clock", "--to", "2026-11-20T10:30:00")
    step("reconcile")
    store = open_store(str(db_path))
    day = datetime(2026, 11, 21)
    for minute, equity in enumerate([10010, 10012, 10400, 10011, 9000, 10013, 10014]):
        store.execute("INSERT INTO equity VALUES (?, 'paper', NULL, ?, 0, ?)",
                      [day + timedelta(hours=minute), equity, equity])  # fmt: skip
    for table, columns in AGED:
        moves = ", ".join(f"{c} = {c} - INTERVAL 40 DAY" for c in columns)
        store.execute(f"UPDATE {table} SET {moves}")
    store.close()


def totals(db_path: Path) -> dict[str, list]:
    return {name: query(db_path, sql) for name, sql in TOTALS.items()}


def counts(db_path: Path) -> dict[str, int]:
    tables = ("exchange_calls", "runs", "equity", "signals", "decisions", "orders", "fills",
              "income", "positions", "events")  # fmt: skip
    return {t: query(db_path, f"SELECT count(*) FROM {t}")[0][0] for t in tables}


def test_prune_archives_old_rows_and_the_views_answer_the_same(db_path, tmp_path):
    history(db_path)
    before, rows_before = totals(db_path), counts(db_path)
    assert before["v_trades"][0][0] == 2

    code, doc = invoke_json("prune", "--older-than", "30d")
    assert code == 0, doc
    after = counts(db_path)
    assert totals(db_path) == before  # trades, daily PnL, the drawdown, each day's range
    for kept in ("orders", "fills", "income", "positions", "events"):
        assert after[kept] == rows_before[kept], kept
    for table in ("exchange_calls", "runs", "equity", "signals", "decisions"):
        archived = doc["counts"][table]
        assert after[table] + archived == rows_before[table] + (table == "runs"), table
    assert doc["counts"]["exchange_calls"] > 0 and doc["counts"]["equity"] >= 2  # 10012, 10011
    assert doc["counts"]["signals"] == 1  # the invalid one; the two traded signals stay

    archive = tmp_path / "archive"
    for relative in doc["files"]:
        path = archive / relative
        assert path.suffix == ".parquet"
        with duckdb.connect() as conn:
            codec = conn.execute("SELECT DISTINCT compression FROM parquet_metadata(?)",
                                 [str(path)]).fetchall()  # fmt: skip
        assert codec == [("ZSTD",)]
    listed = query(db_path, "SELECT table_name, rows FROM archive_files ORDER BY table_name")
    assert dict(listed) == {t: n for t, n in doc["counts"].items() if n}

    # the archive and the file together hold every row there was
    union = query(db_path, "SELECT count(*) FROM (SELECT call_id FROM exchange_calls UNION ALL "
                  f"SELECT call_id FROM read_parquet('{archive}/exchange_calls/*.parquet'))")  # fmt: skip
    assert union == [(rows_before["exchange_calls"],)]


def test_a_pruned_signal_sent_again_is_still_a_duplicate(db_path):
    history(db_path)
    assert invoke("prune", "--older-than", "30d").exit_code == 0
    assert query(db_path, "SELECT count(*) FROM signals WHERE signal_id = 'bad-1'") == [(0,)]
    pull(INVALID, LONG)
    assert query(db_path, "SELECT count(*) FROM signals WHERE signal_id IN ('bad-1', 'p-long')"
                 ) == [(1,)]  # fmt: skip


def test_nothing_still_needed_is_pruned(db_path):
    """A pending signal, an open position's signal and orders, the drawdown peak since the
    last resume, the latest run of each command: all older than the cutoff, all kept."""
    step("clock", "--to", "2026-11-20T09:30:00")
    pull(LONG)
    step("execute")  # BTC long open, its stop and target resting
    pull({**SHORT, "timestamp": "2026-11-20T09:29:59Z"})  # pending (never executed)
    store = open_store(str(db_path))
    store.execute("UPDATE signals SET status = 'pending' WHERE signal_id = 'p-short'")
    store.execute("INSERT INTO equity VALUES (?, 'paper', NULL, 20000, 0, 20000)",
                  [datetime(2026, 10, 1, 12, 30)])  # the peak, long ago, mid-day  # fmt: skip
    store.execute("INSERT INTO equity VALUES (?, 'paper', NULL, 20, 0, 20)",
                  [datetime(2026, 10, 1, 12, 0)])  # fmt: skip
    store.execute("INSERT INTO equity VALUES (?, 'paper', NULL, 30, 0, 30)",
                  [datetime(2026, 10, 1, 12, 15)])  # fmt: skip
    for table, columns in AGED:
        moves = ", ".join(f"{c} = {c} - INTERVAL 40 DAY" for c in columns)
        store.execute(f"UPDATE {table} SET {moves}")
    store.close()
    peak = query(db_path, "SELECT max(equity) FROM equity")

    code, doc = invoke_json("prune", "--older-than", "30d")
    assert code == 0, doc
    assert query(db_path, "SELECT signal_id, status FROM signals ORDER BY 1") == [
        ("p-long", "executed"), ("p-short", "pending")
    ]  # fmt: skip
    assert query(db_path, "SELECT max(equity) FROM equity") == peak == [(Decimal(20000),)]
    last = query(db_path, "SELECT DISTINCT command FROM runs ORDER BY 1")
    assert {"clock", "execute", "pull-signals"} <= {c for (c,) in last}
    assert query(db_path, "SELECT count(*) FROM orders")[0][0] == 3
    code, doc = invoke_json("reconcile")  # the ledger reads what it needs; the old peak
    assert code == 3 and "drawdown" in doc["error"], doc  # still trips the drawdown breaker


def test_dry_run_counts_and_writes_nothing(db_path, tmp_path):
    history(db_path)
    rows_before = counts(db_path)
    code, doc = invoke_json("prune", "--older-than", "30d", "--dry-run")
    assert code == 0 and doc["counts"]["exchange_calls"] > 0 and doc["files"] == []
    assert counts(db_path) == rows_before
    assert not (tmp_path / "archive").exists()


def test_a_prune_that_fails_midway_loses_nothing(db_path, tmp_path, monkeypatch):
    history(db_path)
    rows_before = counts(db_path)
    from qtrader.store import retention

    real = retention._write_verified
    calls = []

    def fail_on_the_third(store, table, target, count):
        calls.append(table)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(store, table, target, count)

    monkeypatch.setattr(retention, "_write_verified", fail_on_the_third)
    code, doc = invoke_json("prune", "--older-than", "30d")
    assert code == 1 and "disk full" in doc["error"]
    assert {k: v for k, v in counts(db_path).items() if k != "runs"} == {
        k: v for k, v in rows_before.items() if k != "runs"
    }
    assert list((tmp_path / "archive").rglob("*.parquet")) == []  # its files went with it
    assert query(db_path, "SELECT count(*) FROM archive_files") == [(0,)]


def test_a_file_left_by_a_crashed_prune_is_removed_and_its_rows_archived_again(db_path, tmp_path):
    history(db_path)
    stray = tmp_path / "archive" / "runs" / "pruned-20260101T000000-run9.parquet"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"PAR1 half written")
    code, doc = invoke_json("prune", "--older-than", "30d")
    assert code == 0 and doc["orphans_removed"] == ["runs/pruned-20260101T000000-run9.parquet"]
    assert not stray.exists()


def test_compaction_shrinks_the_file_and_keeps_it_usable(db_path):
    history(db_path)
    base = db_path.stat().st_size
    store = open_store(str(db_path))
    store.execute("INSERT INTO exchange_calls (run_id, mode, ts, method, path, params, response) "
                  "SELECT 1, 'paper', TIMESTAMP '2026-09-01' + INTERVAL (i) SECOND, 'GET', "
                  "'/fapi/v2/account', '{}', repeat('x', 3000) FROM range(20000) t(i)")  # fmt: skip
    store.close()
    size = db_path.stat().st_size
    code, doc = invoke_json("prune", "--older-than", "30d")
    assert code == 0, doc
    grown = size - base
    assert db_path.stat().st_size < size - grown * 0.8, (base, size, doc["bytes_after"])
    assert invoke("status").exit_code == 0
    assert step("reconcile")["exit_code"] == 0
    ids = query(db_path, "SELECT max(run_id) FROM runs")[0][0]
    assert ids > 5  # sequences carried over: new runs do not reuse ids


def test_retention_off_and_the_setting(db_path, monkeypatch):
    history(db_path)
    monkeypatch.setenv("QTRADER_RETENTION_KEEP_DAYS", "0")
    code, doc = invoke_json("prune")
    assert code == 0 and doc["retention"] == "off"
    monkeypatch.setenv("QTRADER_RETENTION_KEEP_DAYS", "30")
    code, doc = invoke_json("prune")
    assert code == 0 and doc["counts"]["exchange_calls"] > 0


@pytest.mark.parametrize("age", ["12h", "0d", "soon"])
def test_too_young_or_unreadable_ages_are_refused(db_path, age):
    result = invoke("prune", "--older-than", age)
    assert result.exit_code == 2


def test_the_archive_reads_with_the_same_views(db_path, tmp_path):
    """The documented recipe: a scratch database whose tables are the file's rows plus the
    archive's, with qtrader's views applied: v_equity shows every snapshot again."""
    history(db_path)
    full = query(db_path, "SELECT count(*) FROM v_equity")
    assert invoke("prune", "--older-than", "30d").exit_code == 0
    result = invoke("prune", "--archive-sql")
    assert result.exit_code == 0, result.stderr
    with duckdb.connect() as conn:
        conn.execute(result.stdout)
        assert conn.execute("SELECT count(*) FROM v_equity").fetchall() == full
        assert conn.execute(TOTALS["v_trades"]).fetchall() == query(db_path, TOTALS["v_trades"])
