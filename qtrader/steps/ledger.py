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

from qtrader.clock import utcnow
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
    with store.writing(), store.transaction():  # a reader (pnl-report) writes this once too
        pairs = store.fetchall(
            "SELECT DISTINCT mode, symbol FROM fills "
            "UNION SELECT DISTINCT mode, symbol FROM positions"
        )
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
    anchor, older = (None, False) if full else _anchor(store, mode, symbol)
    redo = [
        dict(zip(_KEYS, r, strict=True))
        for r in store.fetchall(
            f"SELECT {_ROW} FROM positions WHERE mode = ? AND symbol = ? "
            "AND opened_at >= coalesce(?, '-infinity'::TIMESTAMP) ORDER BY opened_at",
            [mode, symbol, anchor],
        )
    ]
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
    matched = [(p, existing.get((p.position_side, p.open_trade_id))) for p in derived]
    origins = _origins(store, mode, [p.opening_order_id for p, row in matched if row is None])
    columns = []
    for position, row in matched:
        values = _columns(position)
        if row is None:
            values |= origins.get(position.opening_order_id or "", _ADOPTED)
        columns.append(values)
    _exit_reasons(store, mode, symbol, matched, columns, liquidations)
    ids = _write(store, mode, symbol, matched, columns, now)
    changes: list[Change] = []
    for (position, row), values, position_id in zip(matched, columns, ids, strict=True):
        origin = values.get("origin") or (row and row["origin"]) or "adopted"
        change = Change("opened", position_id, origin, position.qty, position.entry_price,
                        symbol, position.side, values.get("exit_reason"), position.exit_price,
                        position.realized_pnl, position.fees, position.funding_total)  # fmt: skip
        if row is None:
            changes.append(change)
        if not position.is_open and (row is None or row["status"] != "closed"):
            changes.append(replace(change, kind="closed"))
    kept = {row["position_id"] for _, row in matched if row is not None}
    gone = [r["position_id"] for r in redo if r["position_id"] not in kept]
    if gone:
        store.execute("DELETE FROM positions WHERE list_contains(?, position_id)", [gone])
    return changes


def _anchor(store: Store, mode: str, symbol: str) -> tuple[datetime | None, bool]:
    """Where re-deriving starts: the earliest open position, else the latest; then back
    over every position still open at that time (or closed by the fill at it). Also: are
    there positions before it (they keep their funding rows)? None: all of it (no rows, or
    rows from before migration 0007)."""
    row = store.fetchone(
        "SELECT coalesce(min(opened_at) FILTER (WHERE status = 'open'), max(opened_at)), "
        "count(*) FILTER (WHERE open_trade_id IS NULL) FROM positions "
        "WHERE mode = ? AND symbol = ?",
        [mode, symbol],
    )
    if row is None or row[0] is None or row[1]:
        return None, False
    anchor = row[0]
    while True:
        earlier = store.fetchone(
            "SELECT min(opened_at) FILTER (WHERE closed_at IS NULL OR closed_at >= ?), "
            "count(*) FROM positions WHERE mode = ? AND symbol = ? AND opened_at < ?",
            [anchor, mode, symbol, anchor],
        )
        assert earlier is not None
        if earlier[0] is None:
            return anchor, earlier[1] > 0
        anchor = earlier[0]


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


_ADOPTED: dict[str, Any] = {"origin": "adopted", "signal_seq": None}
_OURS = (
    "WITH ours AS (SELECT *, coalesce(json_extract_string(raw_response, '$.actualOrderId'), "
    "exchange_order_id) AS filled_as FROM orders WHERE mode = ? AND (list_contains(?, "
    "exchange_order_id) OR list_contains(?, json_extract_string(raw_response, "
    "'$.actualOrderId')))) "
)


def _origins(store: Store, mode: str, order_ids: list[str | None]) -> dict[str, dict[str, Any]]:
    """New rows: ours when the first fill is one of our entries (with that signal's stop and
    target), else adopted. One query for all of them."""
    wanted = sorted({o for o in order_ids if o})
    if not wanted:
        return {}
    rows = store.fetchall(
        _OURS + "SELECT o.exchange_order_id, o.filled_as, o.signal_seq, "
        " (SELECT trigger_price FROM orders s WHERE s.signal_seq = o.signal_seq "
        "  AND s.role = 'stop_loss' ORDER BY s.created_at LIMIT 1), "
        " (SELECT trigger_price FROM orders t WHERE t.signal_seq = o.signal_seq "
        "  AND t.role = 'take_profit' ORDER BY t.created_at LIMIT 1) "
        "FROM ours o WHERE o.role = 'entry'",
        [mode, wanted, wanted],
    )
    found: dict[str, dict[str, Any]] = {}
    for exchange_id, filled_as, seq, stop, target in rows:
        values = {"origin": "qtrader", "signal_seq": seq, "stop_loss": stop, "take_profit": target}
        for key in (exchange_id, filled_as):
            if key:
                found[key] = values
    return found


def _exit_reasons(
    store: Store,
    mode: str,
    symbol: str,
    matched: list[tuple[Lifecycle, dict[str, Any] | None]],
    columns: list[dict[str, Any]],
    liquidations: Liquidations | None,
) -> None:
    """Fill in `exit_reason` of every closed position that does not have it yet."""
    todo = []
    for (position, row), values in zip(matched, columns, strict=True):
        if position.is_open:
            continue
        known = row is not None and row["close_trade_id"] == values["close_trade_id"]
        if known and row is not None and row["exit_reason"]:
            values["exit_reason"] = row["exit_reason"]
        else:
            todo.append((position, row, values))
    if not todo:
        return
    ids = sorted({p.closing_part.order_id for p, _, _ in todo if p.closing_part})
    closing: dict[str, ClosingOrder] = {}
    for exchange_id, filled_as, role, command, kinds in store.fetchall(
        _OURS + "SELECT o.exchange_order_id, o.filled_as, o.role, "
        " (SELECT command FROM runs r WHERE r.run_id = o.run_id), "
        " (SELECT list(DISTINCT e.kind ORDER BY e.kind) FROM events e "
        "  WHERE e.run_id = o.run_id AND e.symbol = o.symbol) FROM ours o",
        [mode, ids, ids],
    ):
        for key in (exchange_id, filled_as):
            if key:
                closing[key] = ClosingOrder(role, command, tuple(kinds or ()))
    seqs = sorted({v.get("signal_seq", r and r["signal_seq"]) for _, r, v in todo} - {None})
    fired = dict(
        store.fetchall(  # an exchange that does not name the order a trigger fired
            "SELECT signal_seq, min_by(role, updated_at) FROM orders WHERE mode = ? "
            "AND list_contains(?, signal_seq) AND status = 'filled' "
            "AND role IN ('stop_loss', 'take_profit') GROUP BY signal_seq",
            [mode, seqs],
        )
        if seqs
        else []
    )
    forced: set[str] | None = None
    for position, row, values in todo:
        part = position.closing_part
        assert part is not None
        seq = values.get("signal_seq", row and row["signal_seq"])
        if part.order_id in closing:
            values["exit_reason"] = exit_reason(closing[part.order_id])
        elif seq in fired:
            values["exit_reason"] = exit_reason(ClosingOrder(fired[seq], None))
        else:
            if forced is None:  # one request for the symbol, only when needed
                since = min(p.opened_at for p, _, _ in todo)
                forced = liquidations(symbol, since) if liquidations else set()
            values["exit_reason"] = exit_reason(None, liquidated=part.order_id in forced)


def _write(
    store: Store,
    mode: str,
    symbol: str,
    matched: list[tuple[Lifecycle, dict[str, Any] | None]],
    columns: list[dict[str, Any]],
    now: datetime | None,
) -> list[int]:
    """Update the rows found again (few: the tail), insert the new ones in one statement."""
    ids: list[int] = []
    new = []
    for (_, row), values in zip(matched, columns, strict=True):
        values["updated_at"] = now or utcnow()
        if row is None:
            new.append(values)
            ids.append(-1)
            continue
        sets = ", ".join(f"{name} = ?" for name in values)
        store.execute(
            f"UPDATE positions SET {sets} WHERE position_id = ?",
            [*values.values(), row["position_id"]],
        )
        ids.append(int(row["position_id"]))
    if new:
        fresh = [r[0] for r in store.fetchall(
            "SELECT nextval('positions_seq') FROM range(?)", [len(new)])]  # fmt: skip
        names = ("position_id", "mode", "symbol", *_INSERTED)
        rows = [
            (pid, mode, symbol, *(v.get(n) for n in _INSERTED))
            for pid, v in zip(fresh, new, strict=True)
        ]
        store.insert_rows("positions", names, rows)
        it = iter(fresh)
        ids = [next(it) if i == -1 else i for i in ids]
    return ids


_INSERTED = (
    "side", "position_side", "qty", "entry_price", "opened_at", "status", "closed_at",
    "exit_price", "realized_pnl", "fees", "funding", "open_trade_id", "opened_by", "carried_qty",
    "close_trade_id", "close_order_id", "origin", "signal_seq", "stop_loss", "take_profit",
    "exit_reason", "updated_at",
)  # fmt: skip
