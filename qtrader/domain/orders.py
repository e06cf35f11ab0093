"""Order vocabulary: roles, statuses, and deterministic client order ids."""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum

CLIENT_ID_PATTERN = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")  # Binance's rule


class Role(StrEnum):
    ENTRY = "entry"
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    EXIT = "exit"
    REVERSE_EXIT = "reverse_exit"  # closes the opposite position before a reversing entry


_ROLE_TAGS = {
    Role.ENTRY: "e",
    Role.STOP_LOSS: "sl",
    Role.TAKE_PROFIT: "tp",
    Role.EXIT: "x",
    Role.REVERSE_EXIT: "rx",
}


class OrderStatus(StrEnum):
    SUBMITTING = "submitting"  # row written, request not yet answered
    UNKNOWN = (
        "unknown"  # request sent, outcome not known (timeout): look it up before anything else
    )
    OPEN = "open"  # resting on the exchange (a stop waiting for its trigger)
    FILLED = "filled"
    PARTIALLY_FILLED = "partially_filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"  # the exchange said no; nothing happened
    NOT_FOUND = "not_found"  # outcome was unknown and the exchange has no such order
    NOT_SENT = "not_sent"  # written, but the run stopped before sending it: may be sent later

    @property
    def in_flight(self) -> bool:
        return self in (OrderStatus.SUBMITTING, OrderStatus.UNKNOWN)


# Binance's order and algo-order statuses (the paper exchange speaks them too) → ours
BINANCE_STATUS = {
    "NEW": OrderStatus.OPEN,
    "ACCEPTED": OrderStatus.OPEN,
    "TRIGGERING": OrderStatus.OPEN,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "TRIGGERED": OrderStatus.FILLED,
    "FINISHED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED,
    "CANCELLED": OrderStatus.CANCELED,
    "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
    "REJECTED": OrderStatus.REJECTED,
}


def client_order_id(signal_id: str, role: Role, attempt: int = 0) -> str:
    """`qt-<24 hex of sha256(signal id)>-<role>[<attempt>]`: the same signal and role always
    give the same id, so a rerun can find what an earlier run sent."""
    digest = hashlib.sha256(signal_id.encode("utf-8")).hexdigest()[:24]
    tag = _ROLE_TAGS[role] + (str(attempt) if attempt else "")
    cid = f"qt-{digest}-{tag}"
    assert CLIENT_ID_PATTERN.match(cid), cid
    return cid


def closing_side(position_side: str) -> str:
    """The order side that reduces a long (BUY) or short (SELL) position."""
    return "SELL" if position_side == "BUY" else "BUY"


def position_side_for(order_side: str, reduce_only: bool, hedge: bool) -> str | None:
    """Binance's positionSide for an order: none in one-way mode; in hedge mode the side of the
    position it opens (BUY → LONG) or reduces (a reduce-only SELL closes a LONG)."""
    if not hedge:
        return None
    opens_long = (order_side == "BUY") != reduce_only
    return "LONG" if opens_long else "SHORT"


class Refusal(StrEnum):
    """Why an exchange said no, in qtrader's words: every adapter maps its own error codes to
    these (Binance -2022 and Bybit 110017 are both NOTHING_TO_REDUCE), and the steps and the
    lifecycle rules decide on these alone, never on an exchange's number."""

    INSUFFICIENT_MARGIN = "insufficient_margin"
    BELOW_MIN_NOTIONAL = "below_min_notional"
    BAD_QUANTITY = "bad_quantity"  # off the step, under the minimum, over the maximum
    BAD_PRICE = "bad_price"  # off the tick
    UNKNOWN_SYMBOL = "unknown_symbol"
    MARKET_CLOSED = "market_closed"  # the symbol does not accept opening orders now
    WOULD_TRIGGER_NOW = "would_trigger_now"  # a stop or target already crossed
    NOTHING_TO_REDUCE = "nothing_to_reduce"  # reduce-only with no position (left) to reduce
    POSITION_MODE_CHANGED = "position_mode_changed"  # hedge vs one-way differs from ours
    DUPLICATE_CLIENT_ID = "duplicate_client_id"  # an earlier copy of the order landed
    TOO_MANY_PROTECTIONS = "too_many_protections"  # the symbol's conditional-order limit
    AUTH = "auth"  # key, secret, permission or IP whitelist
    NOT_FOUND = "not_found"  # no such order
    NO_CHANGE = "no_change"  # a setting already had that value (benign)
    OTHER = "other"


# What to do about a rejection, by its meaning. A reason qtrader stores or prints for a
# rejection ends with one of these.
REJECTION_FIXES: dict[Refusal, str] = {
    Refusal.INSUFFICIENT_MARGIN: (
        "add USDT to the futures wallet, or lower the size or the leverage"
    ),
    Refusal.BELOW_MIN_NOTIONAL: "raise the size to at least the market's minimum notional",
    Refusal.BAD_QUANTITY: "the market's precision changed: run qtrader execute --refresh-markets",
    Refusal.BAD_PRICE: "the market's tick size changed: run qtrader execute --refresh-markets",
    Refusal.UNKNOWN_SYMBOL: (
        "check the symbol; qtrader execute --refresh-markets reloads the market list"
    ),
    Refusal.WOULD_TRIGGER_NOW: (
        "the price is already past the trigger: use a stop or target further from the price"
    ),
    Refusal.NOTHING_TO_REDUCE: "there is no position left to reduce: run qtrader reconcile",
    Refusal.POSITION_MODE_CHANGED: (
        "the account's position mode (hedge or one-way) changed: qtrader has re-read it; "
        "run the command again"
    ),
    Refusal.DUPLICATE_CLIENT_ID: "an order with this client id exists: run qtrader reconcile",
    Refusal.TOO_MANY_PROTECTIONS: (
        "the symbol has too many conditional orders: cancel stale ones, then run qtrader reconcile"
    ),
}


def with_fix(refusal: Refusal | None, message: str, fix: str | None = None) -> str:
    """The exchange's message, then what to do about it when qtrader knows (`fix` overrides
    the general advice, e.g. which key variables to check)."""
    fix = fix or (REJECTION_FIXES.get(refusal) if refusal is not None else None)
    if not fix or message.endswith(fix):
        return message
    return f"{message} — {fix}"
