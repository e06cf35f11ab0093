"""Numbered, append-only SQL migrations shipped as package data.

`NNNN_name.sql` files are applied in order, each in one transaction together with its
row in `schema_version`. Never edit an applied file: add the next number.
"""

from __future__ import annotations

import re
from importlib import resources

import duckdb

from qtrader.clock import wall_utcnow

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def available() -> list[tuple[int, str, str]]:
    files = resources.files(__package__)
    found = []
    for entry in files.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def migrate(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply pending migrations; returns the names applied (empty when up to date)."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM schema_version").fetchall()}
    applied = []
    for version, name, sql in available():
        if version in done:
            continue
        conn.execute("BEGIN TRANSACTION")
        try:
            conn.execute(sql)
            conn.execute(
                "INSERT INTO schema_version VALUES (?, ?, ?)", [version, name, wall_utcnow()]
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        applied.append(name)
    if applied:
        # Schema changes go into the file now, not the WAL: DuckDB 1.x cannot replay an
        # ALTER TABLE from the WAL when the next open is read-only (after a crash).
        conn.execute("CHECKPOINT")
    apply_views(conn)
    return applied


def apply_views(conn: duckdb.DuckDBPyConnection) -> None:
    """Views are re-created on every open (CREATE OR REPLACE), so they are always current."""
    views = resources.files("qtrader.store").joinpath("views")
    for entry in sorted(views.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql"):
            conn.execute(entry.read_text(encoding="utf-8"))
