"""One DuckDB file: open it (waiting for another process's lock), migrate, transact.

DuckDB lets one process hold a file read-write. A second process retries with back-off
until `lock_timeout` and then raises DatabaseBusy naming the file.

A *sandboxed* store writes nothing: everything the step does runs in one transaction that
is always rolled back (dry runs, `qtrader sql`), on a read-only connection when asked.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from qtrader.errors import DatabaseBusy, QtraderError, UsageError
from qtrader.store.migrations import migrate, up_to_date

_LOCK_MARKERS = ("Could not set lock", "Conflicting lock")


class Store:
    def __init__(self, conn: duckdb.DuckDBPyConnection, path: str, sandbox: bool = False) -> None:
        self.conn = conn
        self.path = path
        self.sandbox = sandbox
        self._column_types: dict[str, dict[str, str]] = {}
        if sandbox:
            conn.execute("BEGIN TRANSACTION")

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> duckdb.DuckDBPyConnection:
        return self.conn.execute(sql, params or [])

    def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        return self.conn.execute(sql, params or []).fetchall()

    def fetchone(self, sql: str, params: Sequence[Any] | None = None) -> tuple | None:
        return self.conn.execute(sql, params or []).fetchone()

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """All writes inside commit together or not at all (in a sandbox: never)."""
        if self.sandbox:
            yield self
            return
        self.conn.execute("BEGIN TRANSACTION")
        try:
            yield self
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def insert_rows(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        ignore_duplicates: bool = False,
    ) -> None:
        """Insert many rows in one statement: one typed list parameter per column, unnested.

        About 35 µs a row; executemany costs ~400 µs and multi-row VALUES ~250 µs a row
        on a 20-column table (benchmarks/ingest.py).
        """
        if not rows:
            return
        types = self.column_types(table)
        select = ", ".join(f"unnest(?::{types[column]}[])" for column in columns)
        values = [list(column) for column in zip(*rows, strict=True)]
        verb = "INSERT OR IGNORE INTO" if ignore_duplicates else "INSERT INTO"
        self.conn.execute(f"{verb} {table} ({', '.join(columns)}) SELECT {select}", values)

    def column_types(self, table: str) -> dict[str, str]:
        """Column → SQL type, for every table read in one query (information_schema is slow)."""
        if not self._column_types:
            for name, column, data_type in self.fetchall(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'main'"
            ):
                self._column_types.setdefault(name, {})[column] = data_type
        return self._column_types[table]

    def close(self) -> None:
        if self.sandbox:
            self.conn.execute("ROLLBACK")
        self.conn.close()


def open_store(path: str, lock_timeout: float = 30.0, read_only: bool = False) -> Store:
    db_path = Path(path)
    if not read_only:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    elif not db_path.exists():
        raise UsageError(f"database {path} does not exist; run a command that writes it first")
    conn = _connect_waiting(db_path, lock_timeout, read_only)
    store = Store(conn, str(db_path))
    if not read_only:
        migrate(conn)
    return store


def open_sandbox(path: str, lock_timeout: float = 30.0, read_only: bool = False) -> Store:
    """A store whose every write is rolled back at close: the file is left as it was.

    A missing or out-of-date file is first created or migrated (schema only, as any command
    would); after that nothing is written. `read_only` also opens the connection read-only,
    so DuckDB itself refuses any write."""
    db_path = Path(path)
    if not db_path.exists() or not _is_current(db_path, lock_timeout):
        open_store(path, lock_timeout).close()
    conn = _connect_waiting(db_path, lock_timeout, read_only)
    return Store(conn, str(db_path), sandbox=True)


def _is_current(path: Path, lock_timeout: float) -> bool:
    conn = _connect_waiting(path, lock_timeout, read_only=True)
    try:
        return up_to_date(conn)
    finally:
        conn.close()


def _connect_waiting(path: Path, lock_timeout: float, read_only: bool) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + max(lock_timeout, 0.0)
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            message = str(exc)
            if not any(marker in message for marker in _LOCK_MARKERS):
                raise _open_error(path, message) from None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DatabaseBusy(
                    f"database {path} is busy: another qtrader process holds its lock "
                    f"({_holder(message)}); waited {lock_timeout:g}s. Wait for it to finish "
                    "or raise --lock-timeout"
                ) from None
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 1.0)
        except duckdb.Error as exc:
            raise _open_error(path, str(exc)) from None


def _holder(message: str) -> str:
    marker = "(PID "
    if marker in message:
        return "PID " + message.split(marker, 1)[1].split(")", 1)[0]
    return "unknown process"


def _open_error(path: Path, message: str) -> QtraderError:
    first_line = message.splitlines()[0] if message else "unknown error"
    if "not a valid DuckDB database" in message or "Invalid Input Error" in message:
        return UsageError(f"{path} is not a qtrader DuckDB file ({first_line}); check --db")
    return QtraderError(f"cannot open database {path}: {first_line}")
