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
