"""The per-signal lifecycle (pure): given what is known of a signal's orders, the next action.

`execute` carries the actions out one at a time and asks again with what it learnt, so a
fresh signal and one resumed after a crash, a timeout or a kill go through the same rules:

- an order whose outcome is unknown is looked up by its client id before anything else;
  the lookup answers found / not found / cannot tell (invariant 7). "Cannot tell" keeps it
  unknown and waits; only the exchange's own "does not exist", past the grace period, gives
  it up; it is re-sent only when it provably never reached the exchange;
- a MARKET entry answered NEW (accepted, not yet filled) is looked up, not rejected; one
  answered PARTIALLY_FILLED is looked up again before its stop is sized;
- a filled entry gets the signal's stop, then its target; a stop the exchange refused means
  the position is closed at once (invariant 2), but a stop whose placement could not be
  confirmed is not a refusal: the signal waits, and the next run looks it up;
- a CLOSE is sized from a fresh read of the position, and only a close that left the leg flat
  may cancel the leg's protection (place or close first, cancel after).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from qtrader.domain.orders import OrderStatus, Refusal, Role, closing_side
from qtrader.domain.sizing import protection_is_valid

MAX_SENDS = 3  # attempts per run for a request the exchange provably never acted on
STILL_FILLING_LOOKUPS = 2  # a MARKET entry answered NEW is asked about this often per run


@dataclass(frozen=True)
class OrderFacts:
    """What is known of one order of the signal, as of now."""

    status: OrderStatus
    filled_qty: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    age_s: float = 0.0
    lookups: int = 0  # lookups answered (found or not found) this run
    cannot_tell: str | None = None  # the last lookup got no answer: why
    sends: int = 0  # POSTs this run
    never_sent: bool = False  # provably never reached the exchange (refused unprocessed)
    error_code: int | None = None  # the exchange's own number (for people)
    error: str | None = None
    refusal: Refusal | None = None  # what a rejection meant: the rules decide on this

    @property
    def in_flight(self) -> bool:
        return self.status.in_flight


@dataclass(frozen=True)
class EntrySignal:
    """A BUY/SELL signal with its orders (None: no row written yet)."""

    action: str  # BUY | SELL
    entry: OrderFacts | None
    stop: OrderFacts | None = None
    target: OrderFacts | None = None
    exit: OrderFacts | None = None  # the emergency close, when a stop could not be placed
    stop_price: Decimal | None = None  # at the fill: the signal's stop, else the default
    target_price: Decimal | None = None
    fill_price: Decimal | None = None


@dataclass(frozen=True)
class CloseSignal:
    """A CLOSE (or the close before a reversal) with its order and a fresh position read."""

    role: Role  # EXIT | REVERSE_EXIT
    exit: OrderFacts | None
    position_qty: Decimal | None  # None or 0: the leg is flat now


# --- actions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """Send the role's order (again: the request as written, when qty is None)."""

    role: Role
    qty: Decimal | None = None
    trigger: Decimal | None = None


@dataclass(frozen=True)
class LookUp:
    role: Role


@dataclass(frozen=True)
class GiveUp:
    """The exchange says the order does not exist, past the grace period: not re-sent."""

    role: Role
    why: str


@dataclass(frozen=True)
class CancelProtection:
    """The leg is flat: cancel the stops and targets that reduced it."""


@dataclass(frozen=True)
class Wait:
    """Nothing more can be done this run; the signal stays in flight and the run reports it."""

    why: str
    failure: bool = True


@dataclass(frozen=True)
class Finish:
    status: str  # executed | rejected | skipped | pending
    why: str | None = None
    failure: bool = False


Action = Send | LookUp | GiveUp | CancelProtection | Wait | Finish


# --- the rules -----------------------------------------------------------------------------


def next_entry_action(signal: EntrySignal, grace_s: float) -> Action:
    entry = signal.entry
    if entry is None:
        return Finish("pending", "no entry was written; queued again")
    unresolved = _unresolved(entry, Send(Role.ENTRY), grace_s, resend_if_missing=False)
    if unresolved is not None:
        return unresolved
    if entry.status is OrderStatus.PARTIALLY_FILLED and entry.lookups < STILL_FILLING_LOOKUPS:
        # still filling (Bybit matches asynchronously): a stop sized now would cover only
        # part of what is about to be held
        return LookUp(Role.ENTRY)
    if entry.filled_qty <= 0:
        if entry.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED):
            if entry.lookups < STILL_FILLING_LOOKUPS:
                return LookUp(Role.ENTRY)
            return Wait("entry accepted but not filled yet; the next run looks it up")
        reason = entry.error or f"entry was never filled ({entry.status})"
        return Finish("rejected", reason, failure=False)
    return _protection(signal, entry.filled_qty, grace_s)


def _protection(signal: EntrySignal, qty: Decimal, grace_s: float) -> Action:
    if signal.exit is not None:
        return _emergency_close_state(signal.exit, grace_s)
    stop_price, fill = signal.stop_price, signal.fill_price
    assert stop_price is not None and fill is not None, "a filled entry has a stop price"
    stop = signal.stop
    if stop is None:
        if not protection_is_valid(signal.action, fill, stop_price):
            return Send(Role.EXIT, qty)  # filled beyond its own stop: close now
        return Send(Role.STOP_LOSS, qty, stop_price)
    place = Send(Role.STOP_LOSS, qty, stop_price)
    unresolved = _unresolved(stop, place, grace_s, resend_if_missing=True)
    if isinstance(unresolved, Wait):
        why = f"stop-loss outcome unknown ({unresolved.why}); not closed, looked up next run"
        return Wait(why)
    if unresolved is not None:
        return unresolved
    if stop.status is OrderStatus.NOT_FOUND:
        return place if stop.sends < MAX_SENDS else Wait("stop-loss not found; placed next run")
    if stop.status in (OrderStatus.REJECTED, OrderStatus.EXPIRED) and stop.filled_qty <= 0:
        return Send(Role.EXIT, qty)  # the exchange refused the stop: close (invariant 2)
    return _target(signal, qty, grace_s)


def _target(signal: EntrySignal, qty: Decimal, grace_s: float) -> Action:
    price, fill, target = signal.target_price, signal.fill_price, signal.target
    assert fill is not None
    if price is None or not protection_is_valid(closing_side(signal.action), fill, price):
        return Finish("executed")
    if target is None:
        return Send(Role.TAKE_PROFIT, qty, price)
    place = Send(Role.TAKE_PROFIT, qty, price)
    unresolved = _unresolved(target, place, grace_s, resend_if_missing=True)
    if isinstance(unresolved, Wait):
        why = f"take-profit outcome unknown ({unresolved.why}); reconcile checks it"
        return Finish("executed", why)
    if unresolved is not None:
        return unresolved
    if target.status is OrderStatus.NOT_FOUND and target.sends < MAX_SENDS:
        return place
    if target.status is OrderStatus.REJECTED:
        return Finish("executed", f"take-profit not placed: {target.error}")
    return Finish("executed")


def _emergency_close_state(exit_: OrderFacts, grace_s: float) -> Action:
    unresolved = _unresolved(exit_, Send(Role.EXIT), grace_s, resend_if_missing=False)
    if isinstance(unresolved, Wait):
        return Wait(f"stop-loss failed; emergency close outcome unknown ({unresolved.why})")
    if unresolved is not None:
        return unresolved
    if exit_.filled_qty > 0:
        return Finish(
            "executed", "stop-loss could not be placed; position closed at once", failure=True
        )
    if exit_.refusal is Refusal.NOTHING_TO_REDUCE:
        return Finish(
            "executed", "stop-loss could not be placed; the position was already flat", failure=True
        )
    return Finish(
        "executed",
        f"stop-loss could not be placed and the close failed ({exit_.error or exit_.status}): "
        "CLOSE IT BY HAND NOW",
        failure=True,
    )


def next_close_action(signal: CloseSignal, grace_s: float) -> Action:
    exit_ = signal.exit
    if exit_ is None:
        if not signal.position_qty:
            return Finish("skipped", "no open position to close")
        return Send(signal.role, signal.position_qty)
    unresolved = _unresolved(exit_, Send(signal.role), grace_s, resend_if_missing=False)
    if unresolved is not None:
        return unresolved
    if exit_.filled_qty > 0:
        if not signal.position_qty:
            return CancelProtection()
        return _closed(signal.role, exit_.filled_qty, signal.position_qty)
    if exit_.refusal is Refusal.NOTHING_TO_REDUCE:
        code = f" ({exit_.error_code})" if exit_.error_code is not None else ""
        return Finish("skipped", f"the position was already flat{code}")
    reason = exit_.error or f"close was never filled ({exit_.status})"
    return Finish("rejected", reason, failure=True)


def after_protection_cancelled(role: Role, filled: Decimal) -> Finish:
    if role is Role.REVERSE_EXIT:
        return Finish("pending", f"reversing: closed {filled}; enters on the next run")
    return Finish("executed", f"closed {filled}")


def _closed(role: Role, filled: Decimal, left: Decimal) -> Finish:
    """Closed part: the rest keeps its stop (reduce-only, it still covers what is left)."""
    why = f"closed {filled}; {left} still open and still protected"
    if role is Role.REVERSE_EXIT:
        return Finish("executed", why + "; not reversed", failure=True)
    return Finish("executed", why, failure=True)


def _unresolved(
    order: OrderFacts, send: Send, grace_s: float, resend_if_missing: bool
) -> Action | None:
    """The action for an order whose outcome is not known yet; None once it is known.

    `resend_if_missing`: a conditional order the exchange says it does not have may be sent
    again at once (its client id is unique among open orders: a late first copy is refused).
    A market order is never re-sent on "not found": a delayed request could still fill.
    """
    if not order.in_flight:
        return None
    role = send.role
    may_send = order.sends < MAX_SENDS
    if order.never_sent and may_send:
        return send
    if order.cannot_tell is not None:
        return Wait(f"cannot ask the exchange: {order.cannot_tell}")
    if order.lookups == 0:
        return LookUp(role)
    if resend_if_missing and may_send:
        return send
    if order.age_s >= grace_s:
        return GiveUp(
            role,
            f"the exchange has no {role.value} {order.age_s:.0f} s after it was sent; not re-sent",
        )
    return Wait(f"{role.value} not found yet; looked up again next run")


# --- what execute decided for a pending signal (typed, not strings or dicts) --------------


class CloseKind(StrEnum):
    SIGNAL = "close"  # a CLOSE signal
    OPPOSITE = "opposite_close"  # risk.opposite_signal = close
    REVERSE = "reverse"  # risk.opposite_signal = reverse: close now, enter on the next run


@dataclass(frozen=True)
class ClosePlan:
    kind: CloseKind

    @property
    def role(self) -> Role:
        return Role.REVERSE_EXIT if self.kind is CloseKind.REVERSE else Role.EXIT

    @property
    def prefix(self) -> str:
        return {CloseKind.SIGNAL: "", CloseKind.OPPOSITE: "opposite signal: ",
                CloseKind.REVERSE: "reversing: "}[self.kind]  # fmt: skip


@dataclass(frozen=True)
class EntryPlan:
    """An accepted entry: what is sent, and the numbers behind the decision (`record`, stored
    with it in `decisions`)."""

    quantity: Decimal
    price: Decimal
    leverage: int
    stop_estimate: Decimal
    take_profit_estimate: Decimal | None
    record: dict[str, Any]


Plan = EntryPlan | ClosePlan
