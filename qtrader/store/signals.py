"""Queries on the `signals` table."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from qtrader.domain.signal import ParsedRecord
from qtrader.store.db import Store

COLUMNS = (
    "signal_id",
    "content_hash",
    "source",
    "location",
    "raw",
    "shape",
    "symbol",
    "action",
    "confidence",
    "position_size_usd",
    "leverage",
    "entry_price",
    "stop_loss",
    "take_profit",
    "signal_ts",
    "received_at",
    "status",
    "reason",
    "run_id",
    "updated_at",
)


@dataclass(frozen=True)
class StoredIds:
    """What the table already holds for some signal ids."""

    pairs: set[tuple[str, str]]  # (signal_id, content_hash), any status
    accepted: set[str]  # signal ids held by a non-invalid row


def stored_ids(store: Store, signal_ids: Iterable[str]) -> StoredIds:
    ids = sorted(set(signal_ids))
    if not ids:
        return StoredIds(set(), set())
    rows = store.fetchall(  # signal_keys: pruned signals are still known (qtrader prune)
        "SELECT signal_id, content_hash, status FROM signals WHERE list_contains(?, signal_id) "
        "UNION ALL SELECT signal_id, content_hash, status FROM signal_keys "
        "WHERE list_contains(?, signal_id)",
        [ids, ids],
    )
    return StoredIds(
        pairs={(r[0], r[1]) for r in rows},
        accepted={r[0] for r in rows if r[2] != "invalid"},
    )


def insert_signals(
    store: Store,
    records: Sequence[tuple[ParsedRecord, str, str | None]],
    source: str,
    run_id: int,
    now: datetime,
) -> None:
    """records: (parsed record, status, reason)."""
    rows = []
    for parsed, status, reason in records:
        s = parsed.signal
        rows.append(
            (
                parsed.signal_id,
                parsed.content_hash,
                source,
                parsed.location,
                parsed.raw_text,
                s.shape if s else None,
                s.symbol if s else None,
                s.action.value if s else None,
                s.confidence if s else None,
                s.position_size_usd if s else None,
                s.leverage if s else None,
                s.entry_price if s else None,
                s.stop_loss if s else None,
                s.take_profit if s else None,
                s.signal_ts if s else None,
                now,
                status,
                reason,
                run_id,
                now,
            )
        )
    store.insert_rows("signals", COLUMNS, rows)


def counts_by_status(store: Store) -> dict[str, int]:
    rows = store.fetchall("SELECT status, count(*) FROM signals GROUP BY status ORDER BY status")
    return {status: int(n) for status, n in rows}


SIGNAL_FIELDS = (
    "seq, signal_id, symbol, action, confidence, position_size_usd, leverage, entry_price, "
    "stop_loss, take_profit, signal_ts, received_at, status, requeued_at"
)
