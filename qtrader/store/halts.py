"""The `halts` table: the set of halts per mode, one row per kind (rules in domain/halts.py)."""

from __future__ import annotations

import json
from datetime import datetime

from qtrader.domain.halts import Halt, expired, in_force, merged
from qtrader.store.db import Store

_COLUMNS = "mode, kind, reason, since, day, numbers"


def all_halts(store: Store, mode: str) -> list[Halt]:
    """Every stored halt of the mode, including a daily-loss halt whose day is over."""
    rows = store.fetchall(f"SELECT {_COLUMNS} FROM halts WHERE mode = ? ORDER BY since", [mode])
    return [
        Halt(mode, kind, reason, since, day, json.loads(numbers) if numbers else {})
        for mode, kind, reason, since, day, numbers in rows
    ]


def halts_in_force(store: Store, mode: str, now: datetime) -> list[Halt]:
    """The halts that hold at `now` (read-only: an expired daily-loss halt is skipped, not
    deleted; `lift_expired` deletes it)."""
    return in_force(all_halts(store, mode), now)


def add_halt(store: Store, halt: Halt, run_id: int | None) -> tuple[Halt, bool]:
    """Add a halt to its mode's set; returns (the halt kept, whether it is new).

    Never removes or weakens another halt: other kinds are untouched, and a halt of the same
    kind already held keeps its start and lifts no earlier than before."""
    existing = {h.kind: h for h in all_halts(store, halt.mode)}.get(halt.kind)
    if existing is not None and expired(existing, halt.since):
        existing = None  # yesterday's daily-loss halt is over; today's is a new one
    kept = merged(existing, halt)
    if kept is not existing:
        store.execute(
            "INSERT OR REPLACE INTO halts (mode, kind, reason, since, day, numbers, run_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                kept.mode,
                kept.kind,
                kept.reason,
                kept.since,
                kept.day,
                json.dumps(kept.numbers, default=str),
                run_id,
            ],
        )
    return kept, existing is None


def remove_halts(store: Store, mode: str, kinds: list[str]) -> None:
    if kinds:
        store.execute("DELETE FROM halts WHERE mode = ? AND list_contains(?, kind)", [mode, kinds])
