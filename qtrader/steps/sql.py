"""sql: one read-only query over the database, rendered as a table or JSON.

Only statements that read are accepted (SELECT, WITH … SELECT, DESCRIBE, SHOW, EXPLAIN,
PRAGMA table_info …): DuckDB's own parser classifies the statement, so nothing that writes
can slip through a comment or a second statement. `EXPLAIN ANALYZE` runs its statement, so it
is refused. Beyond that check the query runs on a read-only connection inside a transaction
that is always rolled back (the runner's sandbox), so even a statement the check misread
cannot change the file.
"""

from __future__ import annotations

import duckdb

from qtrader.errors import UsageError
from qtrader.output import Result, Table
from qtrader.steps import RunContext

READ_ONLY = {"SELECT", "EXPLAIN", "PRAGMA"}
MAX_ROWS = 10_000


def run_query(ctx: RunContext, query: str) -> Result:
    try:
        statements = ctx.store.conn.extract_statements(query)
    except duckdb.Error as exc:
        raise UsageError(f"SQL does not parse: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise UsageError(f"give exactly one statement (got {len(statements)})")
    kind = statements[0].type.name
    if kind not in READ_ONLY:
        raise UsageError(f"qtrader sql is read-only; {kind} statements are refused")
    if kind == "EXPLAIN" and _analyzes(query):
        raise UsageError(
            "qtrader sql is read-only; EXPLAIN ANALYZE runs its statement: use EXPLAIN"
        )
    try:
        cursor = ctx.store.execute(query)
        rows = cursor.fetchmany(MAX_ROWS + 1)
    except duckdb.Error as exc:
        raise UsageError(f"SQL failed: {str(exc).splitlines()[0]}") from None
    columns = [d[0] for d in cursor.description] if cursor.description else []
    truncated = len(rows) > MAX_ROWS
    rows = rows[:MAX_ROWS]
    return Result(
        data={"columns": columns, "rows": [list(r) for r in rows], "truncated": truncated},
        tables=[
            Table(
                "result",
                columns,
                [list(r) for r in rows],
                note=f"first {MAX_ROWS} rows" if truncated else None,
            )
        ],
    )


def _analyzes(query: str) -> bool:
    """EXPLAIN ANALYZE (or ANALYSE): the keyword after EXPLAIN, comments skipped."""
    words = [
        query[start:].split(None, 1)[0].upper()
        for start, kind in duckdb.tokenize(query)
        if kind != duckdb.token_type.comment
    ]
    return len(words) > 1 and words[1].startswith(("ANALYZE", "ANALYSE"))
