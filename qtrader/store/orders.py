"""Queries on `orders`, `decisions` and `exchange_calls`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from qtrader.clock import utcnow
from qtrader.exchange.port import OrderRequest
from qtrader.store.db import Store

_CLIENT_ID_PARAMS = ("newClientOrderId", "clientAlgoId", "origClientOrderId")


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


_ROW_COLUMNS = (
    "client_order_id, signal_seq, role, symbol, side, kind, status, requested_qty, filled_qty, "
    "avg_price, trigger_price, exchange_order_id, created_at"
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


def insert_order(store: Store, run_id: int, mode: str, **fields: Any) -> None:
    now = utcnow()
    row = {"mode": mode, "run_id": run_id, "created_at": now, "updated_at": now, **fields}
    columns = ", ".join(row)
    store.execute(
        f"INSERT INTO orders ({columns}) VALUES ({', '.join('?' * len(row))})", list(row.values())
    )


def update_order(store: Store, client_order_id: str, **fields: Any) -> None:
    if "raw_response" in fields and not isinstance(fields["raw_response"], str | None):
        fields["raw_response"] = json.dumps(fields["raw_response"], default=str)
    fields["updated_at"] = utcnow()
    assignments = ", ".join(f"{name} = ?" for name in fields)
    store.execute(
        f"UPDATE orders SET {assignments} WHERE client_order_id = ?",
        [*fields.values(), client_order_id],
    )


def get_order(store: Store, client_order_id: str) -> OrderRow | None:
    row = store.fetchone(
        f"SELECT {_ROW_COLUMNS} FROM orders WHERE client_order_id = ?", [client_order_id]
    )
    return OrderRow(*row) if row else None


def orders_of_signal(store: Store, signal_seq: int) -> dict[str, OrderRow]:
    rows = store.fetchall(
        f"SELECT {_ROW_COLUMNS} FROM orders WHERE signal_seq = ? ORDER BY created_at", [signal_seq]
    )
    return {row.role: row for row in (OrderRow(*r) for r in rows)}


def record_decision(
    store: Store, signal_seq: int, run_id: int, outcome: str, reason: str | None, detail: dict
) -> None:
    store.execute(
        "INSERT INTO decisions (signal_seq, run_id, ts, outcome, reason, detail) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [signal_seq, run_id, utcnow(), outcome, reason, json.dumps(detail, default=str)],
    )


def record_exchange_calls(store: Store, run_id: int, mode: str, calls: list[dict]) -> None:
    if not calls:
        return
    rows = []
    for call in calls:
        params = call.get("params", {})
        client_id = next((params[k] for k in _CLIENT_ID_PARAMS if k in params), None)
        response = call.get("response")
        rows.append(
            (
                run_id,
                mode,
                _utc_from_ms(call["ts_ms"]),
                call["method"],
                call["path"],
                json.dumps(params),
                client_id,
                json.dumps(response, default=str) if response is not None else None,
                call.get("error"),
                call.get("ms"),
            )
        )
    store.insert_rows(
        "exchange_calls",
        (
            "run_id",
            "mode",
            "ts",
            "method",
            "path",
            "params",
            "client_order_id",
            "response",
            "error",
            "ms",
        ),
        rows,
    )


def _utc_from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC).replace(tzinfo=None)
