"""The paper exchange's matching rules (pure): when a resting stop or target fires inside a
candle and at what price, what a market order pays for slippage, fees, how a fill moves a
one-way position and what it realizes, and funding.

The rules are Binance USDⓈ-M's, simplified where a candle cannot say more:
- A resting order fires when the candle's range reaches its trigger. It fills at the trigger,
  or at the candle's open when the price gapped through it (a stop never fills better than
  the market, a target never worse than its trigger).
- When a candle reaches both a position's stop and its target, we cannot know which came
  first: the stop is assumed first (the pessimistic reading).
- Triggers are compared with last-trade candles, although qtrader's orders trigger on the
  mark price: the two differ by the basis, which 1-minute candles cannot show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

BPS = Decimal("10000")


@dataclass(frozen=True)
class Candle:
    symbol: str
    ts: datetime  # open time
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    funding_rate: Decimal | None = None  # set on the candle at a funding time, when known


@dataclass(frozen=True)
class Resting:
    """A resting conditional order, as the matcher needs it."""

    order_id: str
    side: str  # BUY | SELL
    kind: str  # stop_loss | take_profit
    trigger: Decimal


def fires_on_rise(order: Resting) -> bool:
    """A buy stop (a short's) and a sell target (a long's) fire when the price rises to them."""
    return (order.kind == "stop_loss") == (order.side == "BUY")


def would_fire_now(order: Resting, price: Decimal) -> bool:
    """Binance refuses such an order (-2021): the price is already at or past its trigger."""
    return price >= order.trigger if fires_on_rise(order) else price <= order.trigger


def fire_price(order: Resting, candle: Candle) -> Decimal | None:
    """The price a resting order fills at in this candle, or None if it does not fire."""
    if fires_on_rise(order):
        return max(candle.open, order.trigger) if candle.high >= order.trigger else None
    return min(candle.open, order.trigger) if candle.low <= order.trigger else None


def firing_order(orders: list[Resting], candle: Candle) -> list[tuple[Resting, Decimal]]:
    """The orders that fire in this candle, stops before targets (see the module note)."""
    fired = [(o, p) for o in orders if (p := fire_price(o, candle)) is not None]
    return sorted(fired, key=lambda pair: pair[0].kind != "stop_loss")


def slipped_price(
    price: Decimal, side: str, notional: Decimal, slippage_bps: Decimal, impact_bps_per_10k: Decimal
) -> Decimal:
    """A market order without an order book pays `slippage_bps`, plus `impact_bps_per_10k`
    for every 10,000 USDT it trades: buys fill higher, sells lower."""
    bps = slippage_bps + impact_bps_per_10k * notional / Decimal(10000)
    factor = Decimal(1) + bps / BPS if side == "BUY" else Decimal(1) - bps / BPS
    return price * factor


def walk_book(levels: list[tuple[Decimal, Decimal]], qty: Decimal) -> Decimal | None:
    """Average price of `qty` taken from `levels` (best first), or None if the book is too
    thin to fill it."""
    left, cost = qty, Decimal(0)
    for price, available in levels:
        take = min(left, available)
        cost += take * price
        left -= take
        if left <= 0:
            return cost / qty
    return None


def to_tick(price: Decimal, tick: Decimal, side: str) -> Decimal:
    """Round a fill price to the tick, against the trader (buys up, sells down)."""
    rounding = ROUND_CEILING if side == "BUY" else ROUND_FLOOR
    return (price / tick).to_integral_value(rounding=rounding) * tick


def fee(qty: Decimal, price: Decimal, rate_pct: Decimal) -> Decimal:
    return qty * price * rate_pct / Decimal(100)


@dataclass(frozen=True)
class PositionChange:
    qty: Decimal  # signed, after the fill
    entry_price: Decimal  # average entry of what stays open (0 when flat)
    realized_pnl: Decimal  # gross, of the part the fill closed


def apply_fill(
    qty: Decimal, entry_price: Decimal, side: str, fill_qty: Decimal, price: Decimal
) -> PositionChange:
    """A fill against a one-way position: adding averages the entry; reducing realizes
    (price − entry) × closed quantity in the position's direction; a flip opens the rest at
    the fill price."""
    signed = fill_qty if side == "BUY" else -fill_qty
    if qty == 0 or (qty > 0) == (signed > 0):
        total = qty + signed
        average = (abs(qty) * entry_price + fill_qty * price) / abs(total)
        return PositionChange(total, average, Decimal(0))
    closed = min(abs(qty), fill_qty)
    direction = Decimal(1) if qty > 0 else Decimal(-1)
    realized = (price - entry_price) * closed * direction
    total = qty + signed
    if total == 0:
        return PositionChange(Decimal(0), Decimal(0), realized)
    same_way = (total > 0) == (qty > 0)
    return PositionChange(total, entry_price if same_way else price, realized)


def funding_payment(qty: Decimal, mark_price: Decimal, rate: Decimal) -> Decimal:
    """Signed USDT the position receives: longs pay shorts when the rate is positive."""
    return -qty * mark_price * rate
