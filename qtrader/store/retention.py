"""Retention: old rows to zstd Parquet, deleted from the file, the file compacted.

What goes (older than the cutoff):
- `exchange_calls`: the journal, except calls about an order still open or of unknown outcome;
- `runs`: ended runs, except those that placed an order or wrote an event (the ledger reads
  which command sent a closing order) and the latest run of each command (`status`);
- `equity`: snapshots, except per mode and UTC day the first, last, highest and lowest (so
  `v_daily_pnl`'s equity and every drawdown computed from the curve stay the same) and, per
  mode, the highest since the last `resume` (the drawdown breaker's peak);
- `signals` in a final status that no order or position refers to (their identity stays in
  `signal_keys`, so a source that sends one again is still deduped), and their `decisions`.
Kept whole: orders, fills, income, positions, events, halts, state and the paper exchange.

Crash safety: every Parquet file is written, read back and counted, and listed in
`archive_files` in the same transaction that deletes its rows. A file not listed there was
left by a prune that did not commit (its rows are still in the database) and is removed by
the next prune. Compaction writes a new file beside the old one (COPY FROM DATABASE) and
renames it over the old only when complete, holding the old file's lock throughout.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from qtrader.store.db import Store
from qtrader.store.risk_state import risk_reset_at

FINAL_SIGNAL_STATUSES = ("invalid", "conflict", "expired", "rejected", "executed", "skipped")
_LIVE_ORDER = "('submitting', 'unknown', 'open', 'partially_filled')"

# table → SELECT of the rowids to prune; $1 is the cutoff. Each query names what it keeps.
_DOOMED: dict[str, str] = {
    "exchange_calls": (
        "SELECT rowid FROM exchange_calls c WHERE ts < $1 AND NOT EXISTS (SELECT 1 FROM orders o "
        f"WHERE o.client_order_id = c.client_order_id AND o.status IN {_LIVE_ORDER})"
    ),
    "runs": (
        "SELECT rowid FROM runs r WHERE started_at < $1 AND ended_at IS NOT NULL "
        "AND run_id NOT IN (SELECT run_id FROM orders WHERE run_id IS NOT NULL) "
        "AND run_id NOT IN (SELECT run_id FROM events WHERE run_id IS NOT NULL) "
        "AND run_id NOT IN (SELECT max(run_id) FROM runs GROUP BY command)"
    ),
    "equity": (
        "WITH ranked AS (SELECT rowid AS id, mode, ts, equity, "
        " row_number() OVER (PARTITION BY mode, ts::DATE ORDER BY ts, rowid) AS first_of_day, "
        " row_number() OVER (PARTITION BY mode, ts::DATE ORDER BY ts DESC, rowid DESC) "
        "  AS last_of_day, "
        " row_number() OVER (PARTITION BY mode, ts::DATE ORDER BY equity DESC, ts) AS high, "
        " row_number() OVER (PARTITION BY mode, ts::DATE ORDER BY equity, ts) AS low "
        " FROM equity), "
        "peaks AS (SELECT arg_max(e.rowid, e.equity) AS id FROM equity e "
        " JOIN _reset r ON r.mode = e.mode AND e.ts >= r.since GROUP BY e.mode) "
        "SELECT id FROM ranked WHERE ts < $1 AND first_of_day > 1 AND last_of_day > 1 "
        "AND high > 1 AND low > 1 AND id NOT IN (SELECT id FROM peaks)"
    ),
    "signals": (
        "SELECT rowid FROM signals s WHERE updated_at < $1 AND list_contains($2, status) "
        "AND seq NOT IN (SELECT signal_seq FROM orders WHERE signal_seq IS NOT NULL) "
        "AND seq NOT IN (SELECT signal_seq FROM positions WHERE signal_seq IS NOT NULL) "
        "AND signal_id NOT IN (SELECT signal_id FROM orders WHERE signal_id IS NOT NULL)"
    ),
    "decisions": (
        "SELECT d.rowid FROM decisions d WHERE d.signal_seq IN "
        "(SELECT seq FROM signals WHERE rowid IN (SELECT id FROM _doomed_signals))"
    ),
}
TABLES = tuple(_DOOMED)


@dataclass(frozen=True)
class Archived:
    table: str
    rows: int
    path: str | None  # relative to the archive folder; None when nothing went


def archive_dir_for(db_path: str, configured: str) -> Path:
    return Path(configured) if configured else Path(db_path).resolve().parent / "archive"


def remove_orphans(store: Store, archive: Path) -> list[str]:
    """Parquet files a prune wrote but did not commit (its rows are still in the file)."""
    if not archive.is_dir():
        return []
    listed = {row[0] for row in store.fetchall("SELECT path FROM archive_files")}
    removed = []
    for path in sorted(archive.glob("*/pruned-*.parquet*")):
        relative = str(path.relative_to(archive))
        if relative not in listed:
            path.unlink()
            removed.append(relative)
    return removed


def prune(
    store: Store, archive: Path, cutoff: datetime, run_id: int, now: datetime, dry_run: bool
) -> list[Archived]:
    """Archive and delete, all tables in one transaction (see the module docstring)."""
    modes = [row[0] for row in store.fetchall("SELECT DISTINCT mode FROM equity")]
    stamp = now.strftime("%Y%m%dT%H%M%S")
    written: list[Path] = []
    results: list[Archived] = []
    with store.transaction():
        store.execute("CREATE OR REPLACE TEMP TABLE _reset (mode VARCHAR, since TIMESTAMP)")
        for mode in modes:
            store.execute("INSERT INTO _reset VALUES (?, ?)", [mode, risk_reset_at(store, mode)])
        try:
            for table in TABLES:
                params: list = [cutoff, list(FINAL_SIGNAL_STATUSES)] if table == "signals" else []
                if table in ("exchange_calls", "runs", "equity"):
                    params = [cutoff]
                store.execute(
                    f"CREATE OR REPLACE TEMP TABLE _doomed_{table} AS "
                    f"SELECT id FROM ({_DOOMED[table]}) AS t(id)",
                    params,
                )
                count = _count(store, f"SELECT count(*) FROM _doomed_{table}")
                if count == 0 or dry_run:
                    results.append(Archived(table, count, None))
                    continue
                relative = f"{table}/pruned-{stamp}-run{run_id}.parquet"
                target = archive / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                written.append(target)
                _write_verified(store, table, target, count)
                store.execute(
                    "INSERT INTO archive_files VALUES (?, ?, ?, ?, ?, ?)",
                    [relative, table, count, cutoff, run_id, now],
                )
                results.append(Archived(table, count, relative))
            if not dry_run:
                _delete(store, now)
        except BaseException:
            for path in written:  # the transaction rolls back: its files must not stay
                path.unlink(missing_ok=True)
            raise
    return results


def _write_verified(store: Store, table: str, target: Path, count: int) -> None:
    """COPY the rows to Parquet (zstd), then read the file back: same count, or nothing is
    deleted. fsync'd before the transaction that deletes the rows commits."""
    partial = target.with_name(target.name + ".part")
    store.execute(
        f"COPY (SELECT * FROM {table} WHERE rowid IN (SELECT id FROM _doomed_{table})) "
        f"TO '{_quoted(partial)}' (FORMAT parquet, COMPRESSION zstd)"
    )
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, target)
    read = _count(store, f"SELECT count(*) FROM read_parquet('{_quoted(target)}')")
    if read != count:
        raise RuntimeError(f"archive {target} holds {read} rows, expected {count}; nothing pruned")


def _delete(store: Store, now: datetime) -> None:
    store.execute(
        "INSERT INTO signal_keys SELECT signal_id, content_hash, status, ? FROM signals "
        "WHERE rowid IN (SELECT id FROM _doomed_signals)",
        [now],
    )
    for table in reversed(TABLES):  # decisions before the signals they name
        store.execute(f"DELETE FROM {table} WHERE rowid IN (SELECT id FROM _doomed_{table})")


def compact(store: Store) -> tuple[int, int]:
    """Rewrite the file without the space deleted rows left (DuckDB does not give it back):
    COPY FROM DATABASE into a new file, then rename it over the old one. The old file's
    connection (and lock) is held until the rename, so no other process writes in between.
    Returns (bytes before, bytes after)."""
    path = Path(store.path)
    before = path.stat().st_size
    fresh = path.with_name(path.name + ".compact")
    for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):
        leftover.unlink(missing_ok=True)  # a compaction that crashed
    conn = store.conn
    conn.execute("CHECKPOINT")  # everything in the file, nothing left in the WAL
    name = conn.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
    conn.execute(f"ATTACH '{_quoted(fresh)}' AS _compacted")
    try:
        conn.execute(f'COPY FROM DATABASE "{name}" TO _compacted')
        conn.execute("DETACH _compacted")
    except BaseException:
        conn.execute("DETACH DATABASE IF EXISTS _compacted")
        fresh.unlink(missing_ok=True)
        raise
    with open(fresh, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(fresh, path)
    store.forget_connection()  # the old inode: closed without writing; the next use opens the new
    return before, path.stat().st_size


def _count(store: Store, sql: str) -> int:
    row = store.fetchone(sql)
    return int(row[0]) if row else 0


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")


def archive_sql(db_path: str, archive: Path) -> list[str]:
    """A DuckDB script that reads the database and its archive together, with qtrader's own
    views on top: every archived table is the file's rows plus the Parquet files' rows, the
    other tables are the file's (through the search path). `qtrader prune --archive-sql`
    prints it; run it in any DuckDB (`duckdb -init script.sql`) or a notebook."""
    from qtrader.store.migrations import view_sql

    statements = [
        f"ATTACH '{_quoted(Path(db_path).resolve())}' AS live (READ_ONLY)",
        "SET search_path = 'main,live'",
    ]
    for table in TABLES:
        if any((archive / table).glob("pruned-*.parquet")):
            files = _quoted(archive.resolve() / table / "pruned-*.parquet")
            statements.append(
                f"CREATE OR REPLACE VIEW main.{table} AS SELECT * FROM live.{table} "
                f"UNION ALL BY NAME SELECT * FROM read_parquet('{files}', union_by_name = true)"
            )
    return statements + [sql.strip().rstrip(";") for sql in view_sql()]
