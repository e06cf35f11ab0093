"""UTC time, in the naive form the store keeps (every stored timestamp is UTC).

`utcnow()` is the market's time. It is the wall clock, except in paper mode replaying an
OHLCV file: there the market's time is the replay clock, so signal TTLs, order and fill
times, positions and reports all follow the replayed prices. `wall_utcnow()` is always the
machine's clock (the `runs` audit rows use it).
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

_market_now: Callable[[], datetime] | None = None


def wall_utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def utcnow() -> datetime:
    return _market_now() if _market_now is not None else wall_utcnow()


def to_ms(moment: datetime) -> int:
    """A stored (naive UTC) time as exchange milliseconds."""
    return int(moment.replace(tzinfo=UTC).timestamp() * 1000)


def from_ms(ms: int | str) -> datetime:
    """Exchange milliseconds as a stored (naive UTC) time."""
    return datetime.fromtimestamp(int(ms) / 1000, UTC).replace(tzinfo=None)


@contextmanager
def market_clock(now: Callable[[], datetime] | None) -> Iterator[None]:
    """Within the block, `utcnow()` answers `now()` (None keeps the wall clock)."""
    global _market_now
    previous, _market_now = _market_now, now
    try:
        yield
    finally:
        _market_now = previous
