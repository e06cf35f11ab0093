"""A write batch: what a step has decided, committed in one transaction with few statements.

DuckDB costs about a millisecond per statement and more per commit, so `execute` buffers its
writes here and commits them at the points where durability matters (before an order whose
row is new is sent) instead of once per change. Updates to rows created in the same batch are
applied in memory, so such a row is inserted once, in its final state.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from qtrader.clock import from_ms, utcnow
from qtrader.domain.okx_ids import qtrader_client_id
from qtrader.exchange.journal import digest, kept_in_full, sample_key
from qtrader.store.db import Store
from qtrader.store.state import get_state, set_state

ORDER_COLUMNS = (
    "client_order_id",
    "signal_seq",
    "signal_id",
    "role",
    "mode",
    "symbol",
    "side",
    "kind",
    "position_side",
    "reduce_only",
    "requested_qty",
    "trigger_price",
    "exchange_order_id",
    "status",
    "filled_qty",
    "avg_price",
    "error_code",
    "refusal",
    "error",
    "raw_response",
    "run_id",
    "created_at",
    "updated_at",
)
_CALL_COLUMNS = (
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
    "unhealthy",
)
_CLIENT_ID_PARAMS = (
    "newClientOrderId",
    "clientAlgoId",
    "origClientOrderId",
    "orderLinkId",  # Bybit
    "clOrdId",  # OKX: sent without hyphens, stored as qtrader's id (joins orders)
    "algoClOrdId",
)


def _client_id(params: Any) -> str | None:
    if not isinstance(params, dict):
        return None
    cid = next((params[k] for k in _CLIENT_ID_PARAMS if params.get(k)), None)
    return qtrader_client_id(str(cid)) if cid is not None else None


class WriteBatch:
    def __init__(self, run_id: int, mode: str) -> None:
        self.run_id = run_id
        self.mode = mode
        self._new_orders: dict[str, dict[str, Any]] = {}
        self._order_updates: dict[str, dict[str, Any]] = {}
        self._signal_status: dict[int, tuple[str, str | None]] = {}
        self._decisions: list[tuple] = []
        self._events: list[tuple] = []
        self._calls: list[tuple] = []
        self._call_digests: dict[int, str] = {}  # index in _calls → the digest for its answer

    # --- buffering -----------------------------------------------------------------------

    def add_order(self, **fields: Any) -> None:
        now = utcnow()
        row = dict.fromkeys(ORDER_COLUMNS)
        row |= {
            "mode": self.mode,
            "run_id": self.run_id,
            "filled_qty": 0,
            "created_at": now,
            "updated_at": now,
        }
        row |= fields
        self._new_orders[row["client_order_id"]] = row

    def update_order(self, client_order_id: str, **fields: Any) -> None:
        if isinstance(fields.get("raw_response"), dict | list):
            fields["raw_response"] = json.dumps(fields["raw_response"], default=str)
        fields["updated_at"] = utcnow()
        if client_order_id in self._new_orders:
            self._new_orders[client_order_id] |= fields
        else:
            self._order_updates.setdefault(client_order_id, {}).update(fields)

    def set_signal_status(self, seq: int, status: str, reason: str | None) -> None:
        self._signal_status[seq] = (status, reason)

    def signal_status(self, seq: int) -> str | None:
        """The status this batch will give the signal, if it changes it."""
        status = self._signal_status.get(seq)
        return status[0] if status else None

    def decision(self, seq: int, outcome: str, reason: str | None, detail: dict) -> None:
        self._decisions.append(
            (seq, self.run_id, utcnow(), outcome, reason, json.dumps(detail, default=str))
        )

    def event(self, kind: str, severity: str, symbol: str | None, message: str, data: dict) -> None:
        self._events.append(
            (utcnow(), self.run_id, kind, severity, symbol, message, json.dumps(data, default=str))
        )

    def exchange_calls(self, calls: list[dict[str, Any]]) -> None:
        """The adapters' journals, under qtrader/exchange/journal.py's policy: a successful
        read that is not about one order keeps a digest of its answer (see _write)."""
        for call in calls:
            params = call.get("params", {})
            response = call.get("response")
            if response is not None and not kept_in_full(call):
                compact = json.dumps(digest(response))
                if len(json.dumps(response, default=str)) > len(compact):  # a digest is smaller
                    self._call_digests[len(self._calls)] = compact
            self._calls.append(
                (
                    self.run_id,
                    self.mode,
                    from_ms(call["ts_ms"]),
                    call["method"],
                    call["path"],
                    json.dumps(params),
                    _client_id(params),
                    json.dumps(response, default=str) if response is not None else None,
                    call.get("error"),
                    call.get("ms"),
                    bool(call.get("unhealthy")),
                )
            )

    # --- committing ----------------------------------------------------------------------

    def commit(self, store: Store) -> None:
        """Everything buffered, in one transaction; then the buffer is empty."""
        if not self._has_writes():
            return
        with store.transaction():
            self._write(store)
        self.__init__(self.run_id, self.mode)  # type: ignore[misc]

    def write_within(self, store: Store) -> None:
        """Everything buffered, inside a transaction the caller holds; then the buffer is empty."""
        self._write(store)
        self.__init__(self.run_id, self.mode)  # type: ignore[misc]

    def _has_writes(self) -> bool:
        return any(
            (
                self._new_orders,
                self._order_updates,
                self._signal_status,
                self._decisions,
                self._events,
                self._calls,
            )
        )

    def _write(self, store: Store) -> None:
        if self._new_orders:
            rows = [tuple(row[c] for c in ORDER_COLUMNS) for row in self._new_orders.values()]
            store.insert_rows("orders", ORDER_COLUMNS, rows)
        _update_many(store, "orders", "client_order_id", self._order_updates)
        statuses = {
            seq: {"status": s, "reason": r, "updated_at": utcnow()}
            for seq, (s, r) in self._signal_status.items()
        }
        _update_many(store, "signals", "seq", statuses)
        store.insert_rows(
            "decisions",
            ("signal_seq", "run_id", "ts", "outcome", "reason", "detail"),
            self._decisions,
        )
        store.insert_rows(
            "events",
            ("ts", "run_id", "kind", "severity", "symbol", "message", "data"),
            self._events,
        )
        store.insert_rows("exchange_calls", _CALL_COLUMNS, self._journal_rows(store))

    def _journal_rows(self, store: Store) -> list[tuple]:
        """Digests in place of the answers of routine reads, except the first read of each
        endpoint per mode and UTC day, kept in full as the day's sample."""
        rows = list(self._calls)
        sampled: dict[str, bool] = {}
        path_at, response_at = _CALL_COLUMNS.index("path"), _CALL_COLUMNS.index("response")
        for index, digest_json in sorted(self._call_digests.items()):
            row = rows[index]
            day = row[_CALL_COLUMNS.index("ts")].date().isoformat()
            key = sample_key(self.mode, row[path_at])
            if key not in sampled:
                sampled[key] = get_state(store, key) != day
                if sampled[key]:
                    set_state(store, key, day)
                    continue  # this one stays whole
            rows[index] = (*row[:response_at], digest_json, *row[response_at + 1 :])
        return rows


def _update_many(store: Store, table: str, key: str, updates: dict[Any, dict[str, Any]]) -> None:
    """One UPDATE … FROM (unnested lists) per distinct set of columns changed."""
    groups: dict[tuple[str, ...], list[tuple[Any, dict[str, Any]]]] = defaultdict(list)
    for row_key, fields in updates.items():
        groups[tuple(sorted(fields))].append((row_key, fields))
    types = store.column_types(table)
    for columns, items in groups.items():
        lists = [[row_key for row_key, _ in items]]
        lists += [[fields[c] for _, fields in items] for c in columns]
        names = [key, *columns]
        select = ", ".join(f"unnest(?::{types[name]}[]) AS {name}" for name in names)
        assignments = ", ".join(f"{c} = u.{c}" for c in columns)
        store.execute(
            f"UPDATE {table} SET {assignments} FROM (SELECT {select}) AS u "
            f"WHERE {table}.{key} = u.{key}",
            lists,
        )
