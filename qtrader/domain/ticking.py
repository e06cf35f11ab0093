"""When a tick needs the exchange: pure decisions for `qtrader tick` and `qtrader run`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Activity:
    """What the database holds that the exchange must be asked about."""

    open_positions: int
    live_orders: int  # submitting, unknown, open or partially filled
    executing_signals: int
    last_reconcile_at: datetime | None  # the last reconcile that talked to the exchange


def reconcile_due(activity: Activity, now: datetime, idle_every_s: int) -> str | None:
    """Why reconcile must run now, or None when the tick is idle and the last reconcile is
    recent: an open position or order is never left waiting for the interval."""
    if activity.open_positions:
        return f"{activity.open_positions} open position(s)"
    if activity.live_orders:
        return f"{activity.live_orders} order(s) open or of unknown outcome"
    if activity.executing_signals:
        return f"{activity.executing_signals} signal(s) executing"
    if activity.last_reconcile_at is None:
        return "never reconciled in this mode"
    age = now - activity.last_reconcile_at
    if age >= timedelta(seconds=idle_every_s):
        return f"last reconcile {int(age.total_seconds())} s ago (every {idle_every_s} s idle)"
    return None


def parse_every(text: str) -> float:
    """`10s`, `500ms`, `1m`, `2h` or plain seconds → seconds (at least 0.1)."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    raw = text.strip().lower()
    for suffix in ("ms", "s", "m", "h"):
        if raw.endswith(suffix):
            number, factor = raw[: -len(suffix)], units[suffix]
            break
    else:
        number, factor = raw, 1.0
    try:
        seconds = float(number) * factor
    except ValueError:
        raise ValueError(f"--every {text!r}: give a duration like 10s, 500ms, 1m") from None
    if not seconds >= 0.1:
        raise ValueError(f"--every {text!r}: at least 100ms")
    return seconds


HALTED, BUSY = 3, 4
STOPS_THE_CHAIN = frozenset({BUSY, 130})  # the file is held, or the operator interrupted


def tick_exit_code(codes: list[int]) -> int:
    """One exit code for a tick's steps, in the contract's order: a failure (1, 2, 130) is
    never hidden by a busy file or a halt; a busy file (4) outranks a halt (3)."""
    failures = [code for code in codes if code not in (0, HALTED, BUSY)]
    if failures:
        return failures[0]
    if BUSY in codes:
        return BUSY
    return HALTED if HALTED in codes else 0
