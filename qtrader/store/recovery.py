"""Recovery files: what close-all did while the database was locked, imported later.

close-all acts on the exchange first, whatever the database's state. When the file is held
by another process past --lock-timeout, close-all runs against an in-memory store instead,
then writes what it recorded (its halt, orders, events and exchange calls) to a JSON file in
`<db>.recovery/`. It waits for the lock once more and imports it at once; failing that, the
next qtrader run that opens the database imports it first thing, before any step runs, so
the kill switch is in place before execute could look. Imported files move to `imported/`.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
from loguru import logger

from qtrader.clock import wall_utcnow
from qtrader.domain.halts import Halt
from qtrader.store.migrations import migrate

if TYPE_CHECKING:
    from qtrader.store.db import Store

FORMAT = 1
TABLES = ("orders", "events", "exchange_calls")  # rows copied as they are, run id remapped
_SKIP = {"events": ("event_id",), "exchange_calls": ("call_id",)}  # the target's own ids


def recovery_dir(db_path: str | Path) -> Path:
    path = Path(db_path)
    return path.with_name(path.name + ".recovery")


def open_memory() -> Store:
    """An empty, migrated in-memory store (close-all's stand-in for a locked file)."""
    from qtrader.store.db import Store

    conn = duckdb.connect(":memory:")
    migrate(conn)
    return Store(conn, ":memory:")


def write_recovery(memory: Store, db_path: str | Path, run_id: int) -> Path:
    """Everything the run recorded in `memory`, as one JSON file next to the database."""
    tables = {"runs": _rows(memory, "SELECT * FROM runs WHERE run_id = ?", [run_id])}
    tables["halts"] = _rows(memory, "SELECT * FROM halts", [])
    for table in TABLES:
        tables[table] = _rows(memory, f"SELECT * FROM {table} WHERE run_id = ?", [run_id])
    folder = recovery_dir(db_path)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{wall_utcnow():%Y%m%dT%H%M%S}-run{run_id}-pid{os.getpid()}.json"
    target = folder / name
    partial = target.with_suffix(".partial")
    partial.write_text(json.dumps({"format": FORMAT, "tables": tables}, default=_plain))
    partial.replace(target)  # whole or not at all
    return target


def pending(db_path: str | Path) -> list[Path]:
    folder = recovery_dir(db_path)
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def pending_halts(db_path: str | Path, mode: str) -> list[Halt]:
    """The mode's halts in recovery files not imported yet: a reader that could not import
    them (the file held read-only by a notebook) still shows close-all's kill switch."""
    found = []
    for path in pending(db_path):
        try:
            for h in json.loads(path.read_text())["tables"]["halts"]:
                if h["mode"] != mode:
                    continue
                since = datetime.fromisoformat(h["since"])
                reason = f"{h['reason']} (in {path.name}, not imported yet)"
                found.append(Halt(mode, h["kind"], reason, since, since.date()))
        except Exception as exc:
            logger.error("no halt could be read from {}: {}", path, exc)
    return found


def import_pending(store: Store) -> list[Path]:
    """Import every pending recovery file into `store`, each in one transaction.

    A file that cannot be imported must not lock every later run out of the database: its
    halts are added on their own (a kill switch is never lost), and it moves to `failed/`
    with an error on stderr and in the log, for a person to look at."""
    done = []
    for path in pending(store.path):
        try:
            document = json.loads(path.read_text())
            with store.transaction():
                _import(store, document["tables"], path.name)
            folder = "imported"
        except Exception as exc:
            _import_halts_only(store, path)
            folder = "failed"
            message = f"recovery file {path} could not be imported ({exc}); moved to failed/"
            logger.error(message)
            sys.stderr.write(f"error: {message}\n")
        target = path.parent / folder
        target.mkdir(exist_ok=True)
        path.replace(target / path.name)
        done.append(path)
    return done


def _import_halts_only(store: Store, path: Path) -> None:
    from qtrader.store.halts import add_halt

    try:
        halts = json.loads(path.read_text())["tables"]["halts"]
        for h in halts:
            since = datetime.fromisoformat(h["since"])
            add_halt(store, Halt(h["mode"], h["kind"], h["reason"], since, since.date()), None)
    except Exception as exc:
        logger.error("no halt could be read from {}: {}", path, exc)


def _import(store: Store, tables: dict[str, list[dict]], name: str) -> None:
    from qtrader.store.halts import add_halt

    (run,) = tables["runs"] or [{}]
    row = store.fetchone(
        "INSERT INTO runs (command, args, mode, pid, version, started_at, ended_at, outcome, "
        "exit_code, error, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING run_id",
        [
            run.get("command", "close-all"),
            run.get("args", "{}"),
            run.get("mode"),
            run.get("pid", 0),
            run.get("version", "?"),
            run.get("started_at") or wall_utcnow(),
            run.get("ended_at"),
            run.get("outcome"),
            run.get("exit_code"),
            run.get("error"),
            run.get("summary"),
        ],
    )
    assert row is not None
    run_id = int(row[0])
    for h in tables["halts"]:
        since = datetime.fromisoformat(h["since"])
        halt = Halt(h["mode"], h["kind"], h["reason"], since, date.fromisoformat(h["day"]),
                    json.loads(h["numbers"] or "{}"))  # fmt: skip
        add_halt(store, halt, run_id)
    for table in TABLES:
        rows = tables[table]
        if not rows:
            continue
        columns = [c for c in rows[0] if c not in _SKIP.get(table, ())]
        values = [[run_id if c == "run_id" else r[c] for c in columns] for r in rows]
        store.insert_rows(table, columns, values, ignore_duplicates=True)
    store.execute(
        "INSERT INTO events (ts, run_id, kind, severity, symbol, message, data) "
        "VALUES (?, ?, 'recovery_imported', 'warning', NULL, ?, ?)",
        [
            wall_utcnow(),
            run_id,
            f"imported {name}: what close-all did while the database was locked",
            json.dumps({"file": name, **{t: len(tables[t]) for t in ("halts", *TABLES)}}),
        ],
    )


def _rows(store: Store, sql: str, params: list) -> list[dict[str, Any]]:
    cursor = store.execute(sql, params)
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return str(value)
