"""prune: old journal rows, runs, equity snapshots and finished signals to Parquet; the file
compacted. What is kept, and why, is in qtrader/store/retention.py."""

from __future__ import annotations

from datetime import timedelta

from loguru import logger

from qtrader.clock import wall_utcnow
from qtrader.config import Settings
from qtrader.errors import UsageError
from qtrader.output import Result, Table
from qtrader.steps import RunContext
from qtrader.store.retention import (
    archive_dir_for,
    archive_sql,
    compact,
    prune,
    remove_orphans,
)

MIN_AGE = timedelta(days=1)  # today's rows feed the daily breakers; never prune younger


def parse_age(text: str) -> timedelta:
    """`30d`, `12w`, `48h` → a timedelta."""
    units = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
    raw = text.strip().lower()
    unit = units.get(raw[-1:]) if raw else None
    try:
        age = unit * float(raw[:-1]) if unit else timedelta(days=float(raw))
    except ValueError:
        raise UsageError(f"--older-than {text!r}: give an age like 30d, 12w or 48h") from None
    if age < MIN_AGE:
        raise UsageError(f"--older-than {text!r}: at least 1d (today's rows feed the breakers)")
    return age


def prune_step(
    ctx: RunContext, older_than: str | None, dry_run: bool, compact_file: bool = True
) -> Result:
    keep_days = ctx.settings.retention.keep_days
    if older_than is None and keep_days == 0:
        return Result(
            data={"pruned": [], "retention": "off"},
            lines=["retention is off (retention.keep_days = 0): nothing pruned"],
            summary={"retention": "off"},
        )
    age = parse_age(older_than) if older_than else timedelta(days=keep_days)
    now = wall_utcnow()
    cutoff = now - age
    archive = archive_dir_for(ctx.store.path, ctx.settings.retention.archive_dir)
    orphans = [] if dry_run else remove_orphans(ctx.store, archive)
    for orphan in orphans:
        logger.warning("removed {}: written by a prune that did not commit", orphan)
    archived = prune(ctx.store, archive, cutoff, ctx.run_id, now, dry_run)
    rows = sum(a.rows for a in archived)
    size = None
    if rows and compact_file and not dry_run:
        size = compact(ctx.store)
    verb = "would archive" if dry_run else "archived"
    lines = [f"prune · rows older than {cutoff:%Y-%m-%d %H:%M} UTC · {verb} {rows} rows "
             f"to {archive}"]  # fmt: skip
    if size:
        lines.append(f"file compacted: {size[0] / 1e6:.1f} MB → {size[1] / 1e6:.1f} MB")
    table = Table(
        "pruned" + (" (dry run: nothing written)" if dry_run else ""),
        ["table", "rows", "file"],
        [[a.table, a.rows, a.path or ""] for a in archived],
    )
    counts = {a.table: a.rows for a in archived}
    return Result(
        data={
            "cutoff": cutoff,
            "archive": str(archive),
            "dry_run": dry_run,
            "counts": counts,
            "files": [a.path for a in archived if a.path],
            "orphans_removed": orphans,
            "bytes_before": size[0] if size else None,
            "bytes_after": size[1] if size else None,
        },
        lines=lines,
        tables=[table],
        summary={"counts": counts, "dry_run": dry_run},
    )


def archive_script(settings: Settings, db: str) -> str:
    """`prune --archive-sql`: the script, one statement a line."""
    archive = archive_dir_for(db, settings.retention.archive_dir)
    return ";\n".join(archive_sql(db, archive)) + ";"
