"""A copy for people: the report views and the main tables as Parquet files in
`<db>.explore/`, refreshed after runs that wrote, and `explore.duckdb` beside them with a view
over each. A notebook or the DuckDB UI can hold those open all day; the live file is held
only for the export (read-only, tens of milliseconds), never by a person's session.

Each file is written beside its final name and renamed over it, so a reader never sees half a
file; a reader that has the old one open keeps reading it until it opens again.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import duckdb

# the report views, then the tables people ask about; not the raw journal (exchange_calls)
EXPORTED = ("v_trades", "v_daily_pnl", "v_open_positions", "v_equity", "signals", "decisions",
            "orders", "positions", "fills", "income", "events", "halts", "runs")  # fmt: skip
MARKER = ".exported"  # its modification time is when the last export finished


def explore_dir(db_path: str | Path) -> Path:
    return Path(f"{db_path}.explore")


def due(db_path: str | Path, every_s: int, now: float | None = None) -> bool:
    if every_s <= 0:
        return False
    marker = explore_dir(db_path) / MARKER
    try:
        age = (time.time() if now is None else now) - marker.stat().st_mtime
    except FileNotFoundError:
        return True
    return age >= every_s


def export(db_path: str | Path, conn: duckdb.DuckDBPyConnection) -> Path:
    """Write every exported view and table from `conn` (a connection to the live file)."""
    folder = explore_dir(db_path)
    folder.mkdir(exist_ok=True)
    for name in EXPORTED:
        final = folder / f"{name}.parquet"
        # two runs that finish together both export (each on its own read-only connection):
        # each writes its own partial file, so neither renames the other's half-written one
        partial = folder / f".{name}.parquet.{_unique()}.partial"
        try:
            conn.execute(f"COPY (SELECT * FROM {name}) TO '{_sql(partial)}' (FORMAT parquet, "
                         "COMPRESSION zstd)")  # fmt: skip
            os.replace(partial, final)
        finally:
            partial.unlink(missing_ok=True)
    _write_views(folder)
    (folder / MARKER).touch()
    return folder


def refresh(db_path: str | Path, every_s: int, lock_timeout: float) -> Path | None:
    """Export if due: a read-only connection to the live file, only for the copy."""
    if not due(db_path, every_s):
        return None
    from qtrader.store.db import connect_waiting

    conn = connect_waiting(Path(db_path), lock_timeout, read_only=True)
    try:
        return export(db_path, conn)
    finally:
        conn.close()


def _write_views(folder: Path) -> None:
    """explore.duckdb: one view per Parquet file. Written once (the paths are absolute);
    if a notebook holds it, the views it has already point at the refreshed files."""
    views = folder / "explore.duckdb"
    if views.exists():
        _add_missing_views(views, folder)
        return
    partial = folder / f".explore.duckdb.{_unique()}.partial"
    try:
        with duckdb.connect(str(partial)) as conn:
            for name in EXPORTED:
                conn.execute(_view_sql(folder, name))
        os.replace(partial, views)
    finally:
        partial.unlink(missing_ok=True)


def _add_missing_views(views: Path, folder: Path) -> None:
    """A file a person created before the first export (opening the path creates it) or one
    from a version that exported less gets the views it lacks. Never replaced: a person's
    own tables may be in it. One held open by a session is left as it is."""
    try:
        with duckdb.connect(str(views), read_only=True) as conn:
            have = {name for (name,) in conn.execute("SELECT table_name FROM duckdb_tables() "
                                                     "UNION SELECT view_name FROM duckdb_views() "
                                                     "WHERE NOT internal").fetchall()}  # fmt: skip
        missing = [name for name in EXPORTED if name not in have]
        if missing:
            with duckdb.connect(str(views)) as conn:
                for name in missing:
                    conn.execute(_view_sql(folder, name))
    except duckdb.Error:  # held by a session (a lock): its views, if any, still work
        return


def _view_sql(folder: Path, name: str) -> str:
    path = _sql((folder / f"{name}.parquet").resolve())
    return f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')"


def _unique() -> str:
    return f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _sql(path: Path) -> str:
    return str(path).replace("'", "''")
