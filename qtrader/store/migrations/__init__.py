"""Numbered, append-only SQL migrations shipped as package data.

`NNNN_name.sql` files are applied in order, each in one transaction together with its
row in `schema_version`. Never edit an applied file: add the next number.
"""

from __future__ import annotations

import hashlib
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


def up_to_date(conn: duckdb.DuckDBPyConnection) -> bool:
    """Every migration applied and the views current: opening writes nothing."""
    try:
        done = {row[0] for row in conn.execute("SELECT version FROM schema_version").fetchall()}
        stored = conn.execute("SELECT hash FROM schema_views").fetchone()
    except duckdb.CatalogException:
        return False
    return {v for v, _, _ in available()} <= done and stored == (_views_hash(),)


def migrate(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply pending migrations; returns the names applied (empty when up to date)."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    conn.execute("CREATE TABLE IF NOT EXISTS schema_views (hash VARCHAR NOT NULL)")
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
    current = (_views_hash(),)
    if applied or conn.execute("SELECT hash FROM schema_views").fetchone() != current:
        apply_views(conn)
    return applied


def apply_views(conn: duckdb.DuckDBPyConnection) -> None:
    """Views are re-created (CREATE OR REPLACE) whenever their SQL or the schema changed, so
    they are always current; an open that finds them current writes nothing."""
    for sql in _view_sql():
        conn.execute(sql)
    conn.execute("DELETE FROM schema_views")
    conn.execute("INSERT INTO schema_views VALUES (?)", [_views_hash()])


def view_sql() -> list[str]:
    """The report views' SQL, one string per file (each may hold several statements)."""
    return _view_sql()


def _view_sql() -> list[str]:
    views = resources.files("qtrader.store").joinpath("views")
    entries = sorted(views.iterdir(), key=lambda e: e.name)
    return [e.read_text(encoding="utf-8") for e in entries if e.name.endswith(".sql")]


def _views_hash() -> str:
    return hashlib.sha256("\n;\n".join(_view_sql()).encode()).hexdigest()
