"""Reading `orders` (writes go through store.batch.WriteBatch)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from qtrader.domain.numbers import plain
from qtrader.exchange.port import OrderRequest
from qtrader.store.db import Store


@dataclass(frozen=True)
class OrderRow:
    client_order_id: str
    signal_seq: int | None
    role: str
    symbol: str
    side: str
    kind: str
    status: str
    requested_qty: Decimal | None
    filled_qty: Decimal
    avg_price: Decimal | None
    trigger_price: Decimal | None
    exchange_order_id: str | None
    created_at: datetime
    position_side: str | None = None
    reduce_only: bool = False
    error_code: int | None = None
    error: str | None = None
    refusal: str | None = None  # what the rejection meant (domain.orders.Refusal)

    def request(self) -> OrderRequest:
        """The request this row was written for (to send it, or to look it up)."""
        return OrderRequest(
            symbol=self.symbol,
            side=self.side,
            quantity=plain(self.requested_qty) if self.requested_qty is not None else None,
            client_order_id=self.client_order_id,
            reduce_only=bool(self.reduce_only),
            position_side=self.position_side,
            trigger_price=plain(self.trigger_price) if self.trigger_price is not None else None,
            kind=self.kind,
        )


_ROW_COLUMNS = (
    "client_order_id, signal_seq, role, symbol, side, kind, status, requested_qty, filled_qty, "
    "avg_price, trigger_price, exchange_order_id, created_at, position_side, reduce_only, "
    "error_code, error, refusal"
)


def request_columns(request: OrderRequest) -> dict[str, Any]:
    """The `orders` columns that describe what is (to be) sent."""
    return {
        "client_order_id": request.client_order_id,
        "symbol": request.symbol,
        "side": request.side,
        "kind": request.kind,
        "position_side": request.position_side,
        "reduce_only": request.reduce_only,
        "requested_qty": request.quantity,
        "trigger_price": request.trigger_price,
    }


def orders_by_role(store: Store, signal_seq: int) -> dict[str, list[OrderRow]]:
    """A signal's orders per role, oldest first (a reversal may close more than once)."""
    rows = store.fetchall(
        f"SELECT {_ROW_COLUMNS} FROM orders WHERE signal_seq = ? ORDER BY created_at", [signal_seq]
    )
    by_role: dict[str, list[OrderRow]] = {}
    for row in (OrderRow(*r) for r in rows):
        by_role.setdefault(row.role, []).append(row)
    return by_role
