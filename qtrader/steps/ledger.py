"""The `positions` table, derived from the fills ledger (domain/ledger.py does the logic).

`derive_symbol` re-derives one symbol's positions from its stored fills and funding rows,
by the exchange's timestamps, and writes them back: a row per lifecycle, found again by
(leg, first fill) so its id is stable. Only the tail is re-derived: from the earliest open
position (else the latest one), widened until no older position overlaps it, so a run costs
what happened since, not the symbol's whole history.

Each position's exit reason comes from the order of the fill that closed it (its role, the
command whose run sent it, what that run recorded), or the exchange's liquidation orders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from qtrader.domain.ledger import (
    ClosingOrder,
    Funding,
    LedgerFill,
    Lifecycle,
    Opening,
    exit_reason,
    lifecycles,
)
from qtrader.store.db import Store
from qtrader.store.state import get_state

REDERIVE_KEY = "ledger_rederive"  # set by migration 0007: re-derive everything once
Liquidations = Callable[[str, datetime], set[str]]  # (symbol, since) → forced order ids

_ROW = (
    "position_id, position_side, opened_at, closed_at, status, opened_by, carried_qty, "
    "entry_price, open_trade_id, close_trade_id, exit_reason, signal_seq, origin, stop_loss, "
    "take_profit"
)
_KEYS = tuple(c.strip() for c in _ROW.split(","))


@dataclass
class Change:
    """A position this derivation found opened, or closed (it was open, or unknown, before)."""

    kind: str  # opened | closed
    position_id: int
    origin: str
    qty: Decimal
    entry_price: Decimal | None
    symbol: str
    side: str
    exit_reason: str | None
    exit_price: Decimal | None
    realized_pnl: Decimal
    fees: Decimal
    funding: Decimal


def rederive_if_migrated(store: Store) -> bool:
    """After migration 0007: rows inferred the old way are replaced by derived ones, once."""
    if get_state(store, REDERIVE_KEY) is None:
        return False
    pairs = store.fetchall(
        "SELECT DISTINCT mode, symbol FROM fills UNION SELECT DISTINCT mode, symbol FROM positions"
    )
    with store.transaction():
        for mode, symbol in sorted(pairs):
            derive_symbol(store, mode, symbol, full=True)
        store.execute("DELETE FROM state WHERE key = ?", [REDERIVE_KEY])
    return True


def derive_symbol(
    store: Store,
    mode: str,
    symbol: str,
    *,
    full: bool = False,
    openings: dict[str, Opening] | None = None,
    liquidations: Liquidations | None = None,
    now: datetime | None = None,
) -> list[Change]:
    rows = [
        dict(zip(_KEYS, r, strict=True))
        for r in store.fetchall(
            f"SELECT {_ROW} FROM positions WHERE mode = ? AND symbol = ? ORDER BY opened_at",
            [mode, symbol],
        )
    ]
    anchor = None if full else _anchor(rows)
    redo = [r for r in rows if anchor is None or r["opened_at"] >= anchor]
    older = len(redo) < len(rows)  # positions before the anchor keep their funding rows
    carried = dict(openings or {})
    for row in redo:
        if row["opened_by"] == "carried" and row["position_side"] not in carried:
            carried[row["position_side"]] = Opening(
                Decimal(row["carried_qty"] or 0), row["entry_price"], row["opened_at"]
            )
    fills = _fills(store, mode, symbol, anchor)
    funding = _funding(store, mode, symbol, anchor if older else None)
    derived = lifecycles(fills, funding, carried)
    existing = {(r["position_side"], r["open_trade_id"]): r for r in redo}
    changes: list[Change] = []
    seen: set[int] = set()
    for position in derived:
        row = existing.get((position.position_side, position.open_trade_id))
        columns = _columns(position)
        if row is None:
            columns |= _origin(store, mode, position)
        else:
            seen.add(row["position_id"])
        if not position.is_open:
            known = row is not None and row["close_trade_id"] == columns["close_trade_id"]
            reason = row["exit_reason"] if known and row["exit_reason"] else None
            columns["exit_reason"] = reason or _exit_reason(
                store, mode, symbol, position, columns.get("signal_seq", row and row["signal_seq"]),
                liquidations,
            )  # fmt: skip
        position_id = _write(store, mode, symbol, row, columns, now)
        origin = columns.get("origin") or (row and row["origin"]) or "adopted"
        change = Change("opened", position_id, origin, position.qty, position.entry_price,
                        symbol, position.side, columns.get("exit_reason"), position.exit_price,
                        position.realized_pnl, position.fees, position.funding_total)  # fmt: skip
        if row is None:
            changes.append(change)
        if not position.is_open and (row is None or row["status"] != "closed"):
            changes.append(replace(change, kind="closed"))
    gone = [r["position_id"] for r in redo if r["position_id"] not in seen]
    if gone:
        store.execute("DELETE FROM positions WHERE list_contains(?, position_id)", [gone])
    return changes


def _anchor(rows: list[dict[str, Any]]) -> datetime | None:
    """Where re-deriving starts: the earliest open position, else the latest; then back
    over every position still open at that time (or closed by the same fill)."""
    if not rows or any(r["open_trade_id"] is None for r in rows):
        return None  # rows from before migration 0007: all of it
    opened = [r["opened_at"] for r in rows if r["status"] == "open"]
    anchor = min(opened) if opened else max(r["opened_at"] for r in rows)
    while True:
        overlapping = [
            r["opened_at"]
            for r in rows
            if r["opened_at"] < anchor and (r["closed_at"] is None or r["closed_at"] >= anchor)
        ]
        if not overlapping:
            return anchor
        anchor = min(overlapping)


def _fills(store: Store, mode: str, symbol: str, since: datetime | None) -> list[LedgerFill]:
    rows = store.fetchall(
        "SELECT trade_id, order_id, side, qty, price, fee, realized_pnl, ts, position_side "
        "FROM fills WHERE mode = ? AND symbol = ? AND ts >= coalesce(?, '-infinity'::TIMESTAMP)",
        [mode, symbol, since],
    )
    return [LedgerFill(*r) for r in rows]


def _funding(store: Store, mode: str, symbol: str, since: datetime | None) -> list[Funding]:
    rows = store.fetchall(
        "SELECT tran_id, amount, ts FROM income WHERE mode = ? AND symbol = ? "
        "AND income_type = 'FUNDING_FEE' AND ts >= coalesce(?, '-infinity'::TIMESTAMP)",
        [mode, symbol, since],
    )
    return [Funding(*r) for r in rows]


def _columns(p: Lifecycle) -> dict[str, Any]:
    closing = p.closing_part
    return {
        "side": p.side,
        "position_side": p.position_side,
        "qty": p.open_qty if p.is_open else p.qty,
        "entry_price": p.entry_price,
        "opened_at": p.opened_at,
        "status": "open" if p.is_open else "closed",
        "closed_at": p.closed_at,
        "exit_price": p.exit_price,
        "realized_pnl": p.realized_pnl,
        "fees": p.fees,
        "funding": p.funding_total,
        "open_trade_id": p.open_trade_id,
        "opened_by": p.opened_by,
        "carried_qty": (p.carried if p.side == "BUY" else -p.carried) if p.carried else None,
        "close_trade_id": closing.trade_id if closing else None,
        "close_order_id": closing.order_id if closing else None,
    }


_OUR_ORDER = (
    "FROM orders o WHERE o.mode = ? AND (o.exchange_order_id = ? "
    "OR json_extract_string(o.raw_response, '$.actualOrderId') = ?)"
)


def _origin(store: Store, mode: str, p: Lifecycle) -> dict[str, Any]:
    """A new row: ours when its first fill is one of our entries (with that signal's stop
    and target), else adopted."""
    order_id = p.opening_order_id
    entry = None
    if order_id is not None:
        entry = store.fetchone(
            "SELECT o.signal_seq, "
            " (SELECT trigger_price FROM orders s WHERE s.signal_seq = o.signal_seq "
            "  AND s.role = 'stop_loss' ORDER BY s.created_at LIMIT 1), "
            " (SELECT trigger_price FROM orders t WHERE t.signal_seq = o.signal_seq "
            "  AND t.role = 'take_profit' ORDER BY t.created_at LIMIT 1) "
            f"{_OUR_ORDER} AND o.role = 'entry' LIMIT 1",
            [mode, order_id, order_id],
        )
    if entry is None:
        return {"origin": "adopted", "signal_seq": None}
    return {"origin": "qtrader", "signal_seq": entry[0], "stop_loss": entry[1],
            "take_profit": entry[2]}  # fmt: skip


def _exit_reason(
    store: Store,
    mode: str,
    symbol: str,
    p: Lifecycle,
    signal_seq: int | None,
    liquidations: Liquidations | None,
) -> str:
    closing = p.closing_part
    assert closing is not None
    found = store.fetchone(
        "SELECT o.role, (SELECT command FROM runs r WHERE r.run_id = o.run_id), "
        " (SELECT list(DISTINCT e.kind ORDER BY e.kind) FROM events e "
        "  WHERE e.run_id = o.run_id AND e.symbol = o.symbol) "
        f"{_OUR_ORDER} LIMIT 1",
        [mode, closing.order_id, closing.order_id],
    )
    if found is not None:
        return exit_reason(ClosingOrder(found[0], found[1], tuple(found[2] or ())))
    if signal_seq is not None:  # an exchange that does not name the order a trigger fired
        fired = store.fetchone(
            "SELECT role FROM orders WHERE mode = ? AND signal_seq = ? AND status = 'filled' "
            "AND role IN ('stop_loss', 'take_profit') ORDER BY updated_at LIMIT 1",
            [mode, signal_seq],
        )
        if fired is not None:
            return exit_reason(ClosingOrder(fired[0], None))
    forced = liquidations(symbol, p.opened_at) if liquidations else set()
    return exit_reason(None, liquidated=closing.order_id in forced)


def _write(
    store: Store,
    mode: str,
    symbol: str,
    row: dict[str, Any] | None,
    columns: dict[str, Any],
    now: datetime | None,
) -> int:
    columns = columns | {"updated_at": now or columns["opened_at"]}
    if row is not None:
        sets = ", ".join(f"{name} = ?" for name in columns)
        store.execute(
            f"UPDATE positions SET {sets} WHERE position_id = ?",
            [*columns.values(), row["position_id"]],
        )
        return int(row["position_id"])
    columns = {"mode": mode, "symbol": symbol} | columns
    names = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    found = store.fetchone(
        f"INSERT INTO positions ({names}) VALUES ({marks}) RETURNING position_id",
        list(columns.values()),
    )
    assert found is not None
    return int(found[0])
