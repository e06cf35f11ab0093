"""Halts: a set per mode, one per kind, each with its own way of lifting (pure, no I/O).

Invariant 6: a halt is never weakened by another. Adding a halt of one kind never touches
another kind; adding one of a kind already held keeps the earlier start and can only move
its lifting later (a daily-loss halt tripped again today lifts tomorrow, not yesterday's
tomorrow). How each kind lifts is fixed by its kind, never by whoever added it:

    kill_switch         close-all          only `qtrader resume`
    drawdown            circuit breaker    only `qtrader resume`
    losing_streak       circuit breaker    only `qtrader resume`
    daily_loss          circuit breaker    at 00:00 UTC after the day it tripped (or resume)
    exchange_unhealthy  exchange failures  after one healthy run (or resume); stops new
                                           entries only: protection, CLOSE signals and
                                           reconcile go on
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

RESUME = "resume"
NEXT_UTC_DAY = "next_utc_day"
HEALTHY_RUN = "healthy_run"

LIFTS = {
    "kill_switch": RESUME,
    "drawdown": RESUME,
    "losing_streak": RESUME,
    "daily_loss": NEXT_UTC_DAY,
    "exchange_unhealthy": HEALTHY_RUN,
}
KINDS = tuple(LIFTS)
# Kinds that stop only new entries; every other kind stops execute before any request.
ENTRIES_ONLY = frozenset({"exchange_unhealthy"})


@dataclass(frozen=True)
class Halt:
    mode: str
    kind: str
    reason: str
    since: datetime
    day: date  # the UTC day it was last (re)tripped; a daily-loss halt lifts after it
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def lifts(self) -> str:
        return lifts_for(self.kind)

    @property
    def stops_everything(self) -> bool:
        return self.kind not in ENTRIES_ONLY

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "kind": self.kind,
            "reason": self.reason,
            "since": self.since.isoformat(),
            "day": self.day.isoformat(),
            "lifts": self.lifts,
            "how_it_lifts": how_it_lifts(self.lifts),
            "numbers": self.numbers,
        }


def lifts_for(kind: str) -> str:
    """How a kind lifts. An unknown kind is treated as the strongest: only resume."""
    return LIFTS.get(kind, RESUME)


def how_it_lifts(lifts: str | None) -> str:
    if lifts == NEXT_UTC_DAY:
        return "it lifts at 00:00 UTC"
    if lifts == HEALTHY_RUN:
        return "it lifts after a run whose exchange requests succeed (or `qtrader resume`)"
    return "`qtrader resume` lifts it"


def merged(existing: Halt | None, new: Halt) -> Halt:
    """The halt to keep when `new` is added where `existing` (same mode and kind) holds."""
    if existing is None:
        return new
    if new.day > existing.day:
        return replace(existing, reason=new.reason, numbers=new.numbers, day=new.day)
    return existing


def expired(halt: Halt, now: datetime) -> bool:
    """A daily-loss halt is over once a new UTC day has begun; no other kind expires."""
    return halt.lifts == NEXT_UTC_DAY and now.date() > halt.day


def in_force(halts: list[Halt], now: datetime) -> list[Halt]:
    return [h for h in halts if not expired(h, now)]


@dataclass(frozen=True)
class Health:
    """The exchange-health breaker after one run that used the exchange."""

    failed_runs: int  # consecutive runs whose requests failed, this one included
    trip: bool  # add the exchange_unhealthy halt now
    lift: bool  # a healthy run: lift it


def health_after(failed_runs: int, run_failed: bool, threshold: int | None) -> Health:
    if not run_failed:
        return Health(0, trip=False, lift=True)
    count = failed_runs + 1
    return Health(count, trip=threshold is not None and count >= threshold, lift=False)
