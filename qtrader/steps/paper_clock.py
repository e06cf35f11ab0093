"""clock: show or move the paper clock of a replay (paper mode with [paper] prices a file).

Time only moves forward, and no further than the replay data's last candle: what already
happened on the paper exchange cannot be un-happened, and there are no prices to go on.
The move itself fires nothing; the next command that opens the paper exchange (reconcile,
execute) catches it up, as a real exchange would have moved on while nobody looked.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from qtrader.errors import UsageError
from qtrader.exchange import replaying
from qtrader.exchange.prices import ReplayPrices, replay_clock, set_replay_clock
from qtrader.output import Result
from qtrader.steps import RunContext

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if not match:
        raise UsageError(f"--advance {text!r}: use a number and s, m, h or d (90s, 15m, 4h, 2d)")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def paper_clock(ctx: RunContext, to: datetime | None, advance: str | None) -> Result:
    if not replaying(ctx.settings):
        raise UsageError(
            "the paper clock exists only in paper mode replaying a file ([paper] prices); "
            f"in {ctx.mode} mode{' with live prices' if ctx.mode == 'paper' else ''} "
            "time is the wall clock"
        )
    if to is not None and advance is not None:
        raise UsageError("give --to or --advance, not both")
    prices = ReplayPrices(ctx.store, ctx.settings.paper.prices)
    first, end = prices.span()
    before = replay_clock(ctx.store, ctx.settings.paper.prices)
    target = to or (before + parse_duration(advance) if advance else before)
    if target < before:
        raise UsageError(f"the paper clock only moves forward: it is at {before:%Y-%m-%d %H:%M:%S}")
    if target > end:
        raise UsageError(
            f"the replay data ends at {end:%Y-%m-%d %H:%M:%S}; the clock can go no further"
        )
    set_replay_clock(ctx.store, target)
    moved = target != before
    lines = [
        f"PAPER clock {target:%Y-%m-%d %H:%M:%S} UTC"
        + (f" (moved from {before:%Y-%m-%d %H:%M:%S})" if moved else ""),
        f"replay of {ctx.settings.paper.prices}: {first:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}"
        f" UTC, {plain_interval(prices.interval)} bars",
    ]
    return Result(
        data={
            "clock": target.isoformat(),
            "moved_from": before.isoformat() if moved else None,
            "data_start": first.isoformat(),
            "data_end": end.isoformat(),
            "at_end": target >= end,
        },
        lines=lines,
        summary={"clock": target.isoformat(), "moved": moved},
    )


def plain_interval(interval: timedelta) -> str:
    seconds = int(interval.total_seconds())
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
