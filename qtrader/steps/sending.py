"""Sending an order with its record, and finding one by client id: shared by the steps.

The rule behind both: an order's row is durable in DuckDB before the request leaves, and
an order of unknown outcome is looked up by its client id before anything is sent again.
"""

from __future__ import annotations

from qtrader.domain.orders import OrderStatus, Role
from qtrader.exchange.port import (
    Exchange,
    ExchangeRejected,
    ExchangeUnavailable,
    OrderReport,
    OrderRequest,
)
from qtrader.steps import RunContext
from qtrader.store.batch import WriteBatch
from qtrader.store.orders import request_columns


def find_order(exchange: Exchange, symbol: str, cid: str, conditional: bool) -> OrderReport | None:
    """The order as the exchange knows it by client id; None if it does not (or cannot say
    now: the adapter already retried with back-off)."""
    try:
        return exchange.order_by_client_id(symbol, cid, conditional)
    except ExchangeRejected as exc:
        if exc.kind == "not_found":
            return None
        raise
    except ExchangeUnavailable:
        return None


def record_answer(batch: WriteBatch, cid: str, report: OrderReport) -> None:
    batch.update_order(
        cid,
        status=report.status.value,
        exchange_order_id=report.exchange_order_id,
        filled_qty=report.filled_qty,
        avg_price=report.avg_price,
        raw_response=report.raw,
        error=None,
    )


def send_recorded(
    ctx: RunContext,
    batch: WriteBatch,
    exchange: Exchange,
    request: OrderRequest,
    role: Role,
    signal_seq: int | None = None,
) -> tuple[OrderReport | None, Exception | None]:
    """Write the row, commit, send once, record the answer: (report, None) or (None, error)."""
    batch.add_order(
        role=role.value,
        status=OrderStatus.SUBMITTING.value,
        signal_seq=signal_seq,
        **request_columns(request),
    )
    batch.commit(ctx.store)  # durable before it is sent
    try:
        report = exchange.place_order(request)
    except (ExchangeRejected, ExchangeUnavailable) as exc:
        status = OrderStatus.REJECTED if isinstance(exc, ExchangeRejected) else OrderStatus.UNKNOWN
        batch.update_order(request.client_order_id, status=status.value, error=str(exc))
        return None, exc
    record_answer(batch, request.client_order_id, report)
    return report, None
