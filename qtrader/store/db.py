"""One DuckDB file: open it (waiting for another process's lock), migrate, transact.

DuckDB lets one process hold a file read-write. A second process retries with back-off
until `lock_timeout` and then raises DatabaseBusy naming the file.

A *sandboxed* store writes nothing: everything the step does runs in one transaction that
is always rolled back (dry runs, `qtrader sql`), on a read-only connection when asked.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
from loguru import logger

from qtrader.errors import DatabaseBusy, QtraderError, UsageError
from qtrader.secrets import mask
from qtrader.store.migrations import migrate, up_to_date

_LOCK_MARKERS = ("Could not set lock", "Conflicting lock")


class Store:
    """The file, opened only around reads and writes: `release()` lets go of the connection
    (and with it DuckDB's lock) before network I/O or a wait, and the next read or write
    opens it again, waiting for the lock as at the start. Never inside a transaction, never
    in a sandbox (its one transaction spans the run), never for an in-memory store."""

    def __init__(
        self,
        conn: duckdb.DuckDBPyConnection,
        path: str,
        sandbox: bool = False,
        lock_timeout: float = 30.0,
        read_only: bool = False,
    ) -> None:
        self._conn: duckdb.DuckDBPyConnection | None = conn
        self.read_only = read_only
        self.path = path
        self.sandbox = sandbox
        self.lock_timeout = lock_timeout
        self._in_transaction = False
        self.keep_open = False  # close-all: a file it holds is not let go mid-emergency
        # The exchange of the run's settings: rows of tables with an `exchange` column are
        # written with it (insert_rows fills it in when the caller does not).
        self.exchange = "binanceusdm"
        self._column_types: dict[str, dict[str, str]] = {}
        if sandbox:
            conn.execute("BEGIN TRANSACTION")

    @property
    def conn(self) -> duckdb.DuckDBPyConnection:
        if self._conn is None:
            # a reopen mid-run serves small reads and writes: one thread opens ~30 % faster
            self._conn = connect_waiting(
                Path(self.path), self.lock_timeout, self.read_only, {"threads": 1}
            )
        return self._conn

    def release(self) -> None:
        """Let go of the file until the next read or write (before network I/O)."""
        if self._conn is None or self.keep_open or self.sandbox or self._in_transaction:
            return
        if self.path == ":memory:":
            return
        # a checkpoint per release would cost ~20 ms each: the WAL carries the writes to the
        # next open (DuckDB replays it, read-only openers too); close() at the end checkpoints
        self._conn.execute("PRAGMA disable_checkpoint_on_shutdown")
        self._conn.close()
        self._conn = None

    @contextmanager
    def writing(self) -> Iterator[Store]:
        """A reader's rare write (a pending re-derive, the paper exchange catching up): the
        read-only connection is swapped for a read-write one for the block, then let go."""
        if not self.read_only or self.sandbox:
            yield self
            return
        self.release()
        self.read_only = False
        try:
            yield self
        finally:
            self.release()
            self.read_only = True

    def forget_connection(self) -> None:
        """Let go of a connection whose file was replaced on disk (compaction): closed without
        a checkpoint, so nothing is written to the old file; the next use opens the new one."""
        if self._conn is None:
            return
        self._conn.execute("PRAGMA disable_checkpoint_on_shutdown")
        self._conn.close()
        self._conn = None
        self._column_types = {}

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
        conn = self.conn
        conn.execute("BEGIN TRANSACTION")
        self._in_transaction = True
        try:
            yield self
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            self._in_transaction = False
        conn.execute("COMMIT")

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
        if "exchange" in types and "exchange" not in columns:
            columns = [*columns, "exchange"]
            rows = [[*row, self.exchange] for row in rows]
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
        if self._conn is None:
            return
        if self.sandbox:
            self._conn.execute("ROLLBACK")
        self._conn.close()
        self._conn = None


def check_db_path(path: str) -> None:
    """A control character in the path (a `\\r` from an env file with Windows line endings)
    would silently open a new, empty database beside the real one: refused."""
    bad = [c for c in path if ord(c) < 32 or ord(c) == 127]
    if bad:
        raise UsageError(
            f"database path {path!r} contains a control character ({bad[0]!r}); an env file "
            "with Windows line endings does this: convert it (sed -i 's/\\r$//' FILE)"
        )


def open_store(path: str, lock_timeout: float = 30.0, read_only: bool = False) -> Store:
    check_db_path(path)
    db_path = Path(path)
    if not read_only:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    elif not db_path.exists():
        raise UsageError(f"database {path} does not exist; run a command that writes it first")
    conn = connect_waiting(db_path, lock_timeout, read_only)
    store = Store(conn, str(db_path), lock_timeout=lock_timeout, read_only=read_only)
    if not read_only:
        migrate(conn)
        from qtrader.store.recovery import import_pending

        import_pending(store)  # what a close-all did while the file was locked, first thing
    return store


def open_reader(path: str, lock_timeout: float = 30.0) -> Store:
    """A store for the commands that only read (status, pnl-report): a read-only connection,
    which any number of readers (a notebook too) can hold at once, let go across network I/O.
    A missing or out-of-date file is first created or migrated, and what a close-all saved
    while the file was locked imported, as any command would."""
    from qtrader.store.recovery import pending

    db_path = Path(path)
    must_write = not db_path.exists() or not _is_current(db_path, lock_timeout)
    if must_write or pending(path):
        try:  # creates, migrates, imports recovery files
            writer = open_store(path, lock_timeout if must_write else min(lock_timeout, 2.0))
        except DatabaseBusy as busy:
            if must_write:
                raise
            # a notebook holds the file read-only: read beside it; status shows the halts
            # of the files not imported (recovery.pending_halts), the next writer imports them
            logger.warning("recovery files not imported, read as they are: {}", busy)
        else:
            writer.execute("CHECKPOINT")  # readers replay a WAL in memory on every open
            writer.close()
    conn = connect_waiting(db_path, lock_timeout, read_only=True)
    return Store(conn, str(db_path), lock_timeout=lock_timeout, read_only=True)


def open_sandbox(path: str, lock_timeout: float = 30.0, read_only: bool = False) -> Store:
    """A store whose every write is rolled back at close: the file is left as it was.

    A missing or out-of-date file is first created or migrated (schema only, as any command
    would); after that nothing is written. `read_only` also opens the connection read-only,
    so DuckDB itself refuses any write."""
    check_db_path(path)
    db_path = Path(path)
    if not db_path.exists() or not _is_current(db_path, lock_timeout):
        open_store(path, lock_timeout).close()
    conn = connect_waiting(db_path, lock_timeout, read_only)
    return Store(conn, str(db_path), sandbox=True)


def _is_current(path: Path, lock_timeout: float) -> bool:
    conn = connect_waiting(path, lock_timeout, read_only=True)
    try:
        return up_to_date(conn)
    finally:
        conn.close()


def connect_waiting(
    path: Path, lock_timeout: float, read_only: bool, config: dict[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + max(lock_timeout, 0.0)
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=config or {})
        except duckdb.IOException as exc:
            message = str(exc)
            if not any(marker in message for marker in _LOCK_MARKERS):
                raise _open_error(path, message) from None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DatabaseBusy(busy_message(path, message, lock_timeout)) from None
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 1.0)
        except duckdb.Error as exc:
            raise _open_error(path, str(exc)) from None


_READ_ONLY_MARKERS = ("Permission denied", "Read-only file system", "read-only")


def busy_message(path: Path, duckdb_message: str, waited_s: float) -> str:
    """Who holds the file, and how to release it: the PID from DuckDB's message, else from
    /proc/*/fd links to the file; the command line from /proc/PID/cmdline."""
    pid = _pid_in(duckdb_message) or lock_holder(path)
    if pid is None:
        return (
            f"database {path} is busy: another process holds its lock (not found: try "
            f"`fuser {path}`); waited {waited_s:g}s. Stop that process or raise --lock-timeout"
        )
    argv = command_line(pid)
    command = mask(" ".join(argv))[:200] if argv else "command line unknown"
    if _is_qtrader(argv):
        return (
            f"database {path} is busy: another qtrader run holds its lock (PID {pid}: "
            f"{command}); waited {waited_s:g}s. Wait for it to finish or raise --lock-timeout; "
            f"if it hangs, stop it with `kill {pid}`"
        )
    return (
        f"database {path} is busy: PID {pid} ({command}) holds it open and is not a qtrader "
        f"run (a notebook, the DuckDB CLI or UI?); waited {waited_s:g}s. Until it lets go, no "
        f"qtrader step runs: no reconcile, no stop repairs, no breakers. Close its connection "
        f"(`con.close()`) or stop it (`kill {pid}`); to explore, open the copy qtrader keeps "
        f"for that: {path}.explore/explore.duckdb (read-only)"
    )


def _pid_in(message: str) -> int | None:
    marker = "(PID "
    if marker not in message:
        return None
    digits = message.split(marker, 1)[1].split(")", 1)[0].strip()
    return int(digits) if digits.isdigit() else None


def lock_holder(path: Path, proc: Path = Path("/proc")) -> int | None:
    """The first other process with the file open (Linux /proc), if it can be seen."""
    target = str(path.resolve())
    me = os.getpid()
    try:
        pids = sorted(int(p.name) for p in proc.iterdir() if p.name.isdigit())
    except OSError:
        return None
    for pid in pids:
        if pid == me:
            continue
        try:
            links = [os.readlink(fd) for fd in (proc / str(pid) / "fd").iterdir()]
        except OSError:
            continue
        if target in links:
            return pid
    return None


def command_line(pid: int, proc: Path = Path("/proc")) -> list[str]:
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part for part in raw.decode(errors="replace").split("\0") if part]


def _is_qtrader(argv: list[str]) -> bool:
    """`qtrader …`, `.venv/bin/qtrader …` or `python -m qtrader …` (not a notebook that merely
    opens a file named qtrader.duckdb)."""
    if any(Path(arg).name == "qtrader" for arg in argv[:2]):
        return True
    return any(argv[i : i + 2] == ["-m", "qtrader"] for i in range(len(argv) - 1))


def _open_error(path: Path, message: str) -> QtraderError:
    first_line = message.splitlines()[0] if message else "unknown error"
    if "not a valid DuckDB database" in message or "Invalid Input Error" in message:
        return UsageError(f"{path} is not a qtrader DuckDB file ({first_line}); check --db")
    if any(marker in message for marker in _READ_ONLY_MARKERS):
        return UsageError(
            f"cannot write the database {path.resolve()} ({first_line}): every command records "
            "its run there. Make the file and its folder writable by this user (chmod u+w), or "
            "point --db/QTRADER_DB at a writable copy"
        )
    return QtraderError(f"cannot open database {path}: {first_line}")
