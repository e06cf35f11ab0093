"""pull-signals: read sources, validate every record, store all of it, dedupe by id.

Each batch is one transaction: its signals (valid, invalid and conflicting alike) and the
source's cursor commit together, so a crash leaves no half-batch and no lost record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import BinaryIO

from loguru import logger

from qtrader.domain.signal import Limits, ParsedRecord, RawRecord, parse_record
from qtrader.errors import ExitCode, QtraderError
from qtrader.output import Result, Table
from qtrader.sources import Batch, Source, open_source
from qtrader.steps import RunContext
from qtrader.store.signals import insert_signals, stored_ids
from qtrader.store.state import get_state, set_state

SHOWN_REJECTIONS = 20


@dataclass
class SourceCounts:
    source: str
    read: int = 0
    new: int = 0
    duplicate: int = 0
    invalid: int = 0
    conflict: int = 0
    error: str | None = None


@dataclass
class Rejection:
    location: str
    status: str
    signal_id: str
    reason: str


def pull_signals(
    ctx: RunContext, specs: list[str], strict: bool = False, stdin: BinaryIO | None = None
) -> Result:
    # Open every source first: a typo in the last --from stops the run before anything is read.
    sources = [open_source(spec, ctx.settings.signals, stdin) for spec in specs]
    limits = Limits(
        max_record_bytes=ctx.settings.signals.max_record_bytes,
        max_leverage=ctx.settings.signals.max_leverage,
    )
    counts, rejections = [], []
    for source in sources:
        tally = SourceCounts(source.label)
        counts.append(tally)
        try:
            _pull_one(ctx, source, limits, tally, rejections)
        except QtraderError as exc:
            tally.error = str(exc)
            logger.error("source {}: {}", source.label, exc)
    return _result(counts, rejections, strict)


def _pull_one(
    ctx: RunContext, source: Source, limits: Limits, tally: SourceCounts, rejections: list
) -> None:
    # a network source (Redis, HTTP) is read with the database let go of: a slow or blocking
    # read must not hold the file (and its lock) away from everyone else
    network = source.label.startswith(("redis://", "rediss://", "http://", "https://"))

    def let_go() -> None:
        if network:
            ctx.store.release()

    def read_cursor(key: str) -> str | None:
        cursor = get_state(ctx.store, key)
        let_go()
        return cursor

    let_go()
    for batch in source.batches(read_cursor):
        parsed = [_parse(record, limits) for record in batch.records]
        _store_batch(ctx, source.label, batch, parsed, tally, rejections)
        let_go()


def _parse(record: RawRecord, limits: Limits) -> ParsedRecord:
    try:
        return parse_record(record, limits)
    except Exception as exc:  # the validator is total; this net keeps a bug from losing input
        logger.exception("validator failed on {}", record.location)
        raw = repr(record.payload if record.payload is not None else record.data)
        digest = hashlib.sha256(raw.encode("utf-8", "backslashreplace")).hexdigest()
        return ParsedRecord(
            signal_id=record.entry_id or f"raw-{digest[:32]}",
            content_hash=digest,
            raw_text=raw.encode("utf-8", "backslashreplace").decode("utf-8"),
            location=record.location,
            reason=f"could not be validated ({type(exc).__name__}: {exc}); please report",
        )


def _store_batch(
    ctx: RunContext,
    label: str,
    batch: Batch,
    parsed: list[ParsedRecord],
    tally: SourceCounts,
    rejections: list[Rejection],
) -> None:
    with ctx.store.transaction():
        known = stored_ids(ctx.store, (p.signal_id for p in parsed))
        new_rows, counts = [], {"new": 0, "duplicate": 0, "invalid": 0, "conflict": 0}
        batch_rejections = []
        for record in parsed:
            pair = (record.signal_id, record.content_hash)
            if pair in known.pairs:
                counts["duplicate"] += 1
                continue
            known.pairs.add(pair)
            status, reason = _classify(record, known.accepted)
            if status == "pending":
                known.accepted.add(record.signal_id)
                counts["new"] += 1
            else:
                counts[status] += 1
                batch_rejections.append(
                    Rejection(record.location, status, record.signal_id, reason or "")
                )
            new_rows.append((record, status, reason))
        insert_signals(ctx.store, new_rows, label, ctx.run_id, ctx.now())
        if batch.cursor:
            set_state(ctx.store, *batch.cursor)
    # Counted only once committed, so the summary never reports what a crash undid.
    tally.read += len(parsed)
    for key, value in counts.items():
        setattr(tally, key, getattr(tally, key) + value)
    rejections.extend(batch_rejections)


def _classify(record: ParsedRecord, accepted_ids: set[str]) -> tuple[str, str | None]:
    if not record.valid:
        return "invalid", record.reason
    if record.signal_id in accepted_ids:
        return "conflict", (
            f"signal id {record.signal_id} is already stored with different content; "
            "this version is kept for the record and will not be executed"
        )
    return "pending", None


def _result(counts: list[SourceCounts], rejections: list[Rejection], strict: bool) -> Result:
    totals = SourceCounts("total")
    for tally in counts:
        for key in ("read", "new", "duplicate", "invalid", "conflict"):
            setattr(totals, key, getattr(totals, key) + getattr(tally, key))
    failed = [c for c in counts if c.error]
    result = Result(
        data={
            "sources": [asdict(c) for c in counts],
            "totals": {k: v for k, v in asdict(totals).items() if k not in ("source", "error")},
            "rejected": [asdict(r) for r in rejections],
        },
        tables=[_counts_table(counts, totals), *_rejections_table(rejections)],
    )
    result.summary = {"sources": result.data["sources"], "totals": result.data["totals"]}
    if failed:
        result.exit_code, result.outcome = ExitCode.FAILURE, "failed"
        result.error = "; ".join(f"{c.source}: {c.error}" for c in failed)
    elif strict and (totals.invalid or totals.conflict):
        result.exit_code, result.outcome = ExitCode.FAILURE, "failed"
        result.error = (
            f"--strict: {totals.invalid + totals.conflict} record(s) were invalid or conflicting "
            "(all stored with their reasons)"
        )
    return result


def _counts_table(counts: Iterable[SourceCounts], totals: SourceCounts) -> Table:
    columns = ["source", "read", "new", "duplicate", "invalid", "conflict", "error"]
    rows = [[getattr(c, k) for k in columns] for c in counts]
    return Table("signals pulled", columns, rows)


def _rejections_table(rejections: list[Rejection]) -> list[Table]:
    if not rejections:
        return []
    shown = rejections[:SHOWN_REJECTIONS]
    note = None
    if len(rejections) > SHOWN_REJECTIONS:
        note = (
            f"… and {len(rejections) - SHOWN_REJECTIONS} more, all in the signals table "
            "(status 'invalid' or 'conflict'); --json lists every one"
        )
    rows = [[r.location, r.status, r.reason] for r in shown]
    return [
        Table("rejected (stored with their reasons)", ["location", "status", "reason"], rows, note)
    ]
