"""Protection rules (pure): what a position needs so that exactly one stop-loss, and its
take-profit when it has one, rest on the exchange for its whole quantity.

`repairs` answers for one position, `orphans` for orders whose position is gone. Both return
ordered repairs; the orchestration carries them out in order and skips a cancel whose
replacement failed. The order is the rule that keeps a position covered through every
failure: a new stop is placed *before* anything it replaces is cancelled, and a position
closed for a crossed stop is closed *before* its protection is cancelled.

Recognising protection: in one-way mode a protective order is reduce-only (or
close-position); in hedge mode it carries neither, and an order reduces a leg when its side
closes that leg (SELL for LONG, BUY for SHORT).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from qtrader.domain.orders import closing_side
from qtrader.domain.sizing import protection_is_valid


class Kind(StrEnum):
    STOP = "stop"
    TARGET = "target"
    OTHER = "other"


STOP_TYPES = ("STOP_MARKET", "STOP")
TARGET_TYPES = ("TAKE_PROFIT_MARKET", "TAKE_PROFIT")


def kind_of(order_type: str) -> Kind:
    if order_type in STOP_TYPES:
        return Kind.STOP
    if order_type in TARGET_TYPES:
        return Kind.TARGET
    return Kind.OTHER


@dataclass(frozen=True)
class Resting:
    """An order resting on the exchange (a conditional order, as its book reports it)."""

    client_order_id: str
    exchange_order_id: str
    symbol: str
    side: str  # BUY | SELL
    position_side: str  # BOTH | LONG | SHORT
    kind: Kind
    qty: Decimal | None  # None: close-position (covers any quantity)
    trigger: Decimal | None
    reduce_only: bool = False

    @property
    def reduces(self) -> bool:
        """It can only shrink a position: reduce-only/close-position, or a hedge leg's close."""
        if self.reduce_only or self.qty is None:
            return True
        return (self.position_side, self.side) in (("LONG", "SELL"), ("SHORT", "BUY"))


@dataclass(frozen=True)
class Held:
    """An open position as the exchange reports it."""

    symbol: str
    side: str  # BUY (long) | SELL (short)
    position_side: str  # BOTH | LONG | SHORT
    qty: Decimal
    entry_price: Decimal
    mark_price: Decimal

    def protected_by(self, order: Resting) -> bool:
        return (
            order.symbol == self.symbol
            and order.position_side == self.position_side
            and order.side == closing_side(self.side)
            and order.reduces
        )

    def covered_by(self, order: Resting) -> bool:
        return order.qty is None or order.qty == self.qty


@dataclass(frozen=True)
class Intended:
    """The stop and target the position should have, and where they came from."""

    stop: Decimal | None  # None: use the default distance from the entry
    target: Decimal | None
    preferred: frozenset[str] = frozenset()  # client ids placed for a signal: kept first


@dataclass(frozen=True)
class Place:
    kind: Kind
    trigger: Decimal
    qty: Decimal
    event: str
    why: str


@dataclass(frozen=True)
class Cancel:
    order: Resting
    event: str
    why: str
    after: Kind | None = None  # only once the placement of this kind succeeded


@dataclass(frozen=True)
class ClosePosition:
    event: str
    why: str


Repair = Place | Cancel | ClosePosition


def repairs(
    held: Held, resting: list[Resting], intended: Intended, default_stop: Decimal
) -> list[Repair]:
    """Ordered repairs for one position. `default_stop` is the stop at the default distance
    from the entry, used only when neither the intent nor a resting stop names a price."""
    mine = [o for o in resting if held.protected_by(o)]
    stops = [o for o in mine if o.kind is Kind.STOP]
    targets = [o for o in mine if o.kind is Kind.TARGET]
    stop_plan = _stop_repairs(held, stops, intended, default_stop)
    if any(isinstance(r, ClosePosition) for r in stop_plan):
        cancels = [
            Cancel(o, "closed_protection_cancelled", "its position was closed") for o in mine
        ]
        return [*stop_plan, *cancels]
    return stop_plan + _target_repairs(held, targets, intended)


def _stop_repairs(
    held: Held, stops: list[Resting], intended: Intended, default_stop: Decimal
) -> list[Repair]:
    covering = [s for s in stops if held.covered_by(s)]
    if covering:
        keep = _preferred(covering, intended.preferred, intended.stop)
        extra = [s for s in stops if s is not keep]
        return [_cancel_extra(s, held, "stop") for s in extra]
    # No stop covers the whole position: keep the price it had, resize place-before-cancel.
    price = intended.stop
    if price is None and stops:
        price = _preferred(stops, intended.preferred, None).trigger
    price = price if price is not None else default_stop
    if not protection_is_valid(held.side, held.mark_price, price):
        why = f"stop {price} is already crossed (mark {held.mark_price})"
        return [ClosePosition("stop_crossed_closed", why)]
    event = "stop_resized" if stops else "stop_replaced"
    placed = Place(Kind.STOP, price, held.qty, event, f"stop at {price} for {held.qty}")
    cancels = [
        Cancel(s, "stop_resized", f"its quantity {s.qty} != position {held.qty}", after=Kind.STOP)
        for s in stops
    ]
    return [placed, *cancels]


def _target_repairs(held: Held, targets: list[Resting], intended: Intended) -> list[Repair]:
    covering = [t for t in targets if held.covered_by(t)]
    if covering:
        keep = _preferred(covering, intended.preferred, intended.target)
        return [_cancel_extra(t, held, "target") for t in targets if t is not keep]
    price = intended.target
    if price is None and targets:
        price = _preferred(targets, intended.preferred, None).trigger
    if price is None or not protection_is_valid(closing_side(held.side), held.mark_price, price):
        return []  # no target intended, or already crossed: the position is in profit
    event = "take_profit_resized" if targets else "take_profit_replaced"
    placed = Place(Kind.TARGET, price, held.qty, event, f"take-profit at {price} for {held.qty}")
    cancels = [
        Cancel(
            t,
            "take_profit_resized",
            f"its quantity {t.qty} != position {held.qty}",
            after=Kind.TARGET,
        )
        for t in targets
    ]
    return [placed, *cancels]


def _cancel_extra(order: Resting, held: Held, what: str) -> Cancel:
    if held.covered_by(order):
        return Cancel(order, f"duplicate_{what}_cancelled", f"a second {what} for one position")
    return Cancel(order, f"{what}_resized", f"its quantity {order.qty} != position {held.qty}")


def _preferred(orders: list[Resting], preferred: frozenset[str], price: Decimal | None) -> Resting:
    """A signal's own order first, then one at the intended price, then the first listed."""
    for order in orders:
        if order.client_order_id in preferred:
            return order
    for order in orders:
        if price is not None and order.trigger == price:
            return order
    return orders[0]


def orphans(positions: list[Held], resting: list[Resting]) -> list[Cancel]:
    """Orders that can only reduce a position that no longer exists."""
    return [
        Cancel(o, "orphan_cancelled", "its position is gone")
        for o in resting
        if o.reduces and not any(p.protected_by(o) for p in positions)
    ]


def resting_from_raw(
    client_order_id: str, exchange_order_id: str | None, symbol: str | None, raw: dict
) -> Resting:
    """A conditional order as Binance's algo-order book (and the paper exchange) reports it."""
    quantity = raw.get("quantity") or raw.get("origQty")
    close_position = bool(raw.get("closePosition"))
    trigger = raw.get("triggerPrice") or raw.get("stopPrice")
    return Resting(
        client_order_id=client_order_id,
        exchange_order_id=str(exchange_order_id or ""),
        symbol=str(symbol or raw.get("symbol") or ""),
        side=str(raw.get("side") or ""),
        position_side=str(raw.get("positionSide") or "BOTH"),
        kind=kind_of(str(raw.get("orderType") or raw.get("type") or "")),
        qty=None if close_position else Decimal(str(quantity or "0")),
        trigger=Decimal(str(trigger)) if trigger not in (None, "", "0") else None,
        reduce_only=bool(raw.get("reduceOnly")),
    )
