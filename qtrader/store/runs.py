"""The `runs` table: one row per command invocation, written at start and at end."""

from __future__ import annotations

import json
import os
from typing import Any

from qtrader import __version__
from qtrader.clock import wall_utcnow
from qtrader.store.db import Store


def start_run(store: Store, command: str, args: dict[str, Any], run_id: int | None = None) -> int:
    """Committed at once, so a run that dies still shows up (with no end). `run_id` is given
    only in a stand-in store (close-all on a locked file), where it must not repeat."""
    row = store.fetchone(
        "INSERT INTO runs (run_id, command, args, pid, version, started_at) "
        "VALUES (coalesce(?, nextval('runs_seq')), ?, ?, ?, ?, ?) RETURNING run_id",
        [run_id, command, json.dumps(args, default=str), os.getpid(), __version__, wall_utcnow()],
    )
    assert row is not None
    return int(row[0])


def set_run_mode(store: Store, run_id: int, mode: str, exchange: str | None = None) -> None:
    store.execute(
        "UPDATE runs SET mode = ?, exchange = ? WHERE run_id = ?",
        [mode, exchange or store.exchange, run_id],
    )


def other_exchange(store: Store, mode: str, exchange: str) -> str | None:
    """Another exchange this database holds `mode` records of (orders, fills, positions), or
    None: a file keeps one exchange per mode, so positions and ledgers never mix."""
    row = store.fetchone(
        "SELECT exchange FROM ("
        " SELECT exchange FROM orders WHERE mode = ? AND exchange <> ?"
        " UNION ALL SELECT exchange FROM fills WHERE mode = ? AND exchange <> ?"
        " UNION ALL SELECT exchange FROM positions WHERE mode = ? AND exchange <> ?"
        ") LIMIT 1",
        [mode, exchange] * 3,
    )
    return str(row[0]) if row else None


def finish_run(
    store: Store,
    run_id: int,
    outcome: str,
    exit_code: int,
    error: str | None = None,
    summary: dict[str, Any] | None = None,
) -> None:
    store.execute(
        "UPDATE runs SET ended_at = ?, outcome = ?, exit_code = ?, error = ?, summary = ? "
        "WHERE run_id = ?",
        [
            wall_utcnow(),
            outcome,
            exit_code,
            error,
            json.dumps(summary, default=str) if summary is not None else None,
            run_id,
        ],
    )


def last_runs(store: Store) -> list[dict[str, Any]]:
    """The latest run of each command."""
    rows = store.fetchall(
        "SELECT command, run_id, mode, started_at, ended_at, outcome, exit_code, error "
        "FROM runs QUALIFY row_number() OVER (PARTITION BY command ORDER BY run_id DESC) = 1 "
        "ORDER BY command"
    )
    keys = ("command", "run_id", "mode", "started_at", "ended_at", "outcome", "exit_code", "error")
    return [dict(zip(keys, row, strict=True)) for row in rows]
