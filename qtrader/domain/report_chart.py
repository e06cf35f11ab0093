"""The report's charts as numbers: one model that the HTML (SVG) and the PNG both draw.

Pure: it receives the rows the report queries returned and computes what to draw, so the two
renderers cannot disagree. Equity and drawdown use every equity snapshot (not one point a
day); daily PnL bars span their whole UTC day [00:00, 24:00); trades are marked on the equity
curve at their close.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

DAY = timedelta(days=1)
MAX_POINTS = 4000  # above this a curve is drawn from each bucket's first, min, max and last


@dataclass(frozen=True)
class Marker:
    """A trade on the equity curve: `at` is when it closed, `equity` the curve there."""

    at: datetime
    equity: float
    net_pnl: float
    label: str

    @property
    def win(self) -> bool:
        return self.net_pnl > 0


@dataclass(frozen=True)
class DayBar:
    """One UTC day's net PnL, drawn from `start` to `start + 1 day`."""

    day: date
    net_pnl: float

    @property
    def start(self) -> datetime:
        return datetime.combine(self.day, time())

    @property
    def end(self) -> datetime:
        return self.start + DAY


@dataclass(frozen=True)
class Chart:
    equity: list[tuple[datetime, float]]  # every snapshot (decimated only past MAX_POINTS)
    drawdown_pct: list[tuple[datetime, float]]  # ≤ 0, from the running peak of every snapshot
    markers: list[Marker]
    bars: list[DayBar]
    start: datetime | None
    end: datetime | None
    snapshots: int  # how many snapshots the curve was computed from
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.equity and not self.bars


def build_chart(
    snapshots: list[tuple[datetime, Any]],
    trades: list[dict[str, Any]],
    days: list[dict[str, Any]],
    since: datetime | None = None,
    until: datetime | None = None,
) -> Chart:
    """`snapshots`: (ts, equity) in time order; `trades`: v_trades rows (closed_at, symbol,
    side, net_pnl); `days`: v_daily_pnl rows (day, net_pnl)."""
    curve = [(ts, float(value)) for ts, value in snapshots]
    drawdown = drawdown_series(curve)
    times = [ts for ts, _ in curve]
    markers = [_marker(curve, times, trade) for trade in trades if curve]
    bars = [DayBar(_as_date(row["day"]), float(row["net_pnl"])) for row in days]
    start, end = _span(curve, bars, trades, since, until)
    notes = []
    if len(curve) > MAX_POINTS:
        notes.append(
            f"{len(curve):,} snapshots drawn as the first, lowest, highest and last of "
            f"{MAX_POINTS // 4:,} time buckets"
        )
    return Chart(
        equity=decimate(curve, MAX_POINTS),
        drawdown_pct=decimate(drawdown, MAX_POINTS),
        markers=markers,
        bars=bars,
        start=start,
        end=end,
        snapshots=len(curve),
        notes=notes,
    )


def drawdown_series(curve: list[tuple[datetime, float]]) -> list[tuple[datetime, float]]:
    """Percent below the running peak at every point (0 at a new high)."""
    peak = float("-inf")
    out = []
    for ts, value in curve:
        peak = max(peak, value)
        out.append((ts, 100 * (value - peak) / peak if peak > 0 else 0.0))
    return out


def decimate(points: list[tuple[datetime, float]], limit: int) -> list[tuple[datetime, float]]:
    """At most about `limit` points that keep every extreme: per time bucket, its first,
    lowest, highest and last point (in time order). Short series come back unchanged."""
    if len(points) <= limit:
        return list(points)
    buckets = max(1, limit // 4)
    first, last = points[0][0], points[-1][0]
    width = (last - first) / buckets or timedelta(microseconds=1)
    grouped: dict[int, list[int]] = {}
    for i, (ts, _) in enumerate(points):
        grouped.setdefault(min(int((ts - first) / width), buckets - 1), []).append(i)
    keep: set[int] = set()
    for indexes in grouped.values():
        values = [points[i][1] for i in indexes]
        keep |= {
            indexes[0],
            indexes[-1],
            indexes[values.index(min(values))],
            indexes[values.index(max(values))],
        }
    return [points[i] for i in sorted(keep)]


def equity_at(
    curve: list[tuple[datetime, float]], moment: datetime, times: list[datetime] | None = None
) -> float:
    """The curve's value at `moment` as drawn: between two snapshots, on the straight line
    joining them; before the first or after the last, that snapshot's value. `times`: the
    curve's timestamps, when the caller already has them."""
    times = [ts for ts, _ in curve] if times is None else times
    i = bisect.bisect_right(times, moment)
    if i == 0:
        return curve[0][1]
    if i == len(curve):
        return curve[-1][1]
    (t0, v0), (t1, v1) = curve[i - 1], curve[i]
    share = (moment - t0) / (t1 - t0) if t1 > t0 else 0.0
    return v0 + (v1 - v0) * share


def _marker(
    curve: list[tuple[datetime, float]], times: list[datetime], trade: dict[str, Any]
) -> Marker:
    net = float(trade["net_pnl"])
    sign = "+" if net > 0 else ""
    label = (
        f"{trade['symbol']} {trade['side']} closed {trade['closed_at']:%Y-%m-%d %H:%M} UTC · "
        f"net {sign}{_money(trade['net_pnl'])} USDT"
        + (f" · {trade['exit_reason']}" if trade.get("exit_reason") else "")
    )
    return Marker(trade["closed_at"], equity_at(curve, trade["closed_at"], times), net, label)


def _span(curve, bars, trades, since, until) -> tuple[datetime | None, datetime | None]:
    moments = [ts for ts, _ in curve] + [t["closed_at"] for t in trades]
    moments += [b.start for b in bars] + [b.end for b in bars]
    start = since or (min(moments) if moments else None)
    end = until or (max(moments) if moments else None)
    return start, end


def _as_date(value: Any) -> date:
    return value.date() if isinstance(value, datetime) else value


def _money(value: Any) -> str:
    if isinstance(value, Decimal):
        return f"{value.quantize(Decimal('0.01'))}"
    return f"{float(value):.2f}"
