"""Execution results on a Redis Stream, for the dashboard and position monitor that already
read the seeds' `quantum:stream:trade.execution.result`. Off unless `publish.redis_url` is set.

After `execute` or `reconcile`, each order of the run (with its final status) and each
position opened or closed becomes one stream entry of flat string fields. Best-effort: a
failure is logged and never fails the step; DuckDB stays the record.
"""

from __future__ import annotations

from typing import Any

from loguru import logger

from qtrader.config import Settings
from qtrader.domain.numbers import plain
from qtrader.secrets import mask, redact_url
from qtrader.store import Store

ORDER_FIELDS = (
    "client_order_id",
    "signal_id",
    "role",
    "symbol",
    "side",
    "kind",
    "status",
    "requested_qty",
    "filled_qty",
    "avg_price",
    "trigger_price",
    "exchange_order_id",
    "error_code",
    "error",
    "mode",
    "updated_at",
)


def entries_of_run(store: Store, run_id: int) -> list[dict[str, str]]:
    entries = []
    cursor = store.execute(
        f"SELECT {', '.join(ORDER_FIELDS)} FROM orders WHERE run_id = ? ORDER BY created_at",
        [run_id],
    )
    for row in cursor.fetchall():
        order = dict(zip(ORDER_FIELDS, row, strict=True))
        entries.append(
            {
                "type": "order",
                **{k: _text(v) for k, v in order.items() if v is not None},
                "action": order["side"],
                "order_id": _text(order["exchange_order_id"]),
            }
        )
    for kind, symbol, message, data, ts in store.fetchall(
        "SELECT kind, symbol, message, data, ts FROM events WHERE run_id = ? "
        "AND kind IN ('position_opened', 'position_closed') ORDER BY event_id",
        [run_id],
    ):
        entries.append(
            {
                "type": "position",
                "event": kind.removeprefix("position_"),
                "symbol": symbol or "",
                "message": message,
                "data": data or "{}",
                "timestamp": _text(ts),
            }
        )
    return entries


def publish_run(store: Store, settings: Settings, run_id: int) -> int:
    """XADD this run's results; returns how many were published. Never raises."""
    url = settings.publish.redis_url
    if not url:
        return 0
    try:
        entries = entries_of_run(store, run_id)
        if not entries:
            return 0
        store.release()  # Redis is over the network: not while holding the database
        import redis

        client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
        pipe = client.pipeline()
        for fields in entries:
            pipe.xadd(
                settings.publish.stream, fields, maxlen=settings.publish.maxlen, approximate=True
            )
        pipe.execute()
        return len(entries)
    except Exception as exc:  # the stream is a courtesy; DuckDB is the record
        logger.warning("publishing to {} failed: {}", redact_url(url), mask(str(exc)))
        return 0


def _text(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "as_tuple"):
        return str(plain(value))
    if hasattr(value, "isoformat"):
        return value.isoformat() + "Z"
    return str(value)
