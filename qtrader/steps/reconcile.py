"""reconcile: make DuckDB agree with the exchange, settle closed positions, keep them protected.

The exchange is the source of truth. One run:
1. resolves every order left `submitting`/`unknown` by looking it up by client id;
2. reads positions (positionRisk), open orders and open algo orders (all symbols, one request
   each), the income ledger since its cursor, and the account balance;
3. marks protective orders that left the book (fired, cancelled) from the exchange's record;
4. ingests fills (userTrades) since each symbol's cursor, only for symbols with activity, so an
   idle run costs a constant number of requests however many symbols were ever traded;
5. settles positions that are flat on the exchange (exit price, realized PnL, fees, funding,
   why it closed), adopts positions DuckDB did not know, and reports every difference;
6. runs the protection watchdog (see `watchdog.py`);
7. stores an equity snapshot and evaluates the circuit breakers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from loguru import logger

from qtrader.clock import from_ms, to_ms
from qtrader.domain.numbers import plain
from qtrader.domain.orders import OrderStatus
from qtrader.domain.positions import classification, r_multiple
from qtrader.errors import ExitCode, Halted
from qtrader.exchange import open_exchange
from qtrader.exchange.port import (
    CannotTell,
    Exchange,
    Fill,
    Found,
    NotFound,
    OrderReport,
    PositionDetail,
)
from qtrader.output import Result, Table
from qtrader.steps import RunContext
from qtrader.steps.halting import failure_wins
from qtrader.steps.markets import load_markets
from qtrader.steps.risk_gate import account_state, risk_limits, trip_breakers
from qtrader.steps.sending import look_up, record_answer
from qtrader.store.batch import WriteBatch
from qtrader.store.state import get_state, set_state

INCOME_LOOKBACK = timedelta(days=7)  # the first run reads the ledger this far back
_PROTECTIVE = ("stop_loss", "take_profit")
WATCHDOG_CLOSES = ("stop_crossed_closed", "stop_failed_closed", "time_exit")


@dataclass
class Drift:
    kind: str  # missing_locally | missing_on_exchange | quantity | order_state
    symbol: str
    detail: str


@dataclass
class _Run:
    ctx: RunContext
    exchange: Exchange
    batch: WriteBatch
    drift: list[Drift] = field(default_factory=list)
    settled: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    touched: set[str] = field(default_factory=set)  # symbols with activity this run

    @property
    def store(self) -> Any:
        return self.ctx.store

    @property
    def mode(self) -> str:
        return self.ctx.mode

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def note(self, kind: str, symbol: str, detail: str) -> None:
        self.drift.append(Drift(kind, symbol, detail))
        self.batch.event("drift", "warning", symbol, f"{kind}: {detail}", {"kind": kind})

    # --- 1. orders whose outcome is unknown --------------------------------------------

    def resolve_in_flight(self) -> None:
        """Look up every order of unknown outcome. Only the exchange's own "does not exist",
        past the grace period, gives one up; a lookup that gets no answer keeps it unknown."""
        grace = self.ctx.settings.exchange.unknown_order_grace_s
        rows = self.store.fetchall(
            "SELECT client_order_id, symbol, kind, created_at FROM orders "
            "WHERE mode = ? AND status IN ('submitting', 'unknown')",
            [self.mode],
        )
        for cid, symbol, kind, created_at in rows:
            answer = look_up(self.exchange, symbol, cid, kind != "market")
            if isinstance(answer, Found):
                record_answer(self.batch, cid, answer.report)
                self.count("orders_resolved")
            elif isinstance(answer, CannotTell):
                self.count("orders_still_unknown")
                self.batch.event(
                    "order_outcome_unknown",
                    "critical",
                    symbol,
                    f"{cid}: the exchange could not be asked ({answer.reason}); "
                    "kept unknown, looked up again next run",
                    {},
                )
            elif (self.ctx.now() - created_at).total_seconds() >= grace:
                self.batch.update_order(
                    cid,
                    status=OrderStatus.NOT_FOUND.value,
                    error="the exchange has no such order (looked up during reconcile)",
                )
                self.count("orders_not_found")

    # --- 3. protective orders that left the book ---------------------------------------

    def sync_protective(self, open_algo: list[OrderReport]) -> None:
        on_book = {o.client_order_id for o in open_algo}
        rows = self.store.fetchall(
            "SELECT client_order_id, symbol FROM orders WHERE mode = ? AND status = 'open' "
            f"AND role IN {_PROTECTIVE}",
            [self.mode],
        )
        for cid, symbol in rows:
            if cid in on_book:
                continue
            answer = look_up(self.exchange, symbol, cid, conditional=True)
            if isinstance(answer, CannotTell):
                self.count("orders_still_unknown")
                continue  # left as it is: asked again next run
            if isinstance(answer, NotFound):
                self.note("order_state", symbol, f"{cid} is neither open nor known to the exchange")
                self.batch.update_order(cid, status=OrderStatus.NOT_FOUND.value)
                continue
            record_answer(self.batch, cid, answer.report)
            self.touched.add(symbol)
            self.count("protective_orders_updated")

    # --- 2/4. the ledgers ----------------------------------------------------------------

    def ingest_income(self) -> None:
        key = f"income_cursor:{self.mode}"
        since = get_state(self.store, key)
        since_ms = since if since is not None else to_ms(self.ctx.now() - INCOME_LOOKBACK)
        rows = self.exchange.income(since_ms=since_ms)
        if not rows:
            return
        self.store.insert_rows(
            "income",
            (
                "mode",
                "tran_id",
                "income_type",
                "symbol",
                "amount",
                "asset",
                "trade_id",
                "ts",
                "raw",
            ),
            [
                (
                    self.mode,
                    r.tran_id,
                    r.income_type,
                    r.symbol,
                    r.amount,
                    r.asset,
                    r.trade_id,
                    from_ms(r.ts_ms),
                    json.dumps(r.raw),
                )
                for r in rows
            ],
            ignore_duplicates=True,
        )
        set_state(self.store, key, max(r.ts_ms for r in rows))
        self.count("income_rows", len(rows))

    def ingest_fills(self, symbols: set[str]) -> None:
        # cursors first, then the requests, then the writes: the file is opened once for
        # the reads and once for the writes, not twice per symbol (it is let go per request)
        keys = {symbol: f"fills_cursor:{self.mode}:{symbol}" for symbol in sorted(symbols)}
        cursors = {symbol: get_state(self.store, key) for symbol, key in keys.items()}
        fetched = {s: self.exchange.fills(s, since_ms=cursors[s]) for s in keys}
        for symbol, fills in fetched.items():
            if fills:
                self._store_fills(fills)
                set_state(self.store, keys[symbol], max(f.ts_ms for f in fills))

    def _store_fills(self, fills: list[Fill]) -> None:
        ids = {f.order_id for f in fills}
        ours = dict(
            self.store.fetchall(
                "SELECT exchange_order_id, client_order_id FROM orders "
                "WHERE mode = ? AND list_contains(?, exchange_order_id)",
                [self.mode, sorted(ids)],
            )
        )
        self.store.insert_rows(
            "fills",
            (
                "mode",
                "symbol",
                "trade_id",
                "order_id",
                "client_order_id",
                "side",
                "position_side",
                "qty",
                "price",
                "fee",
                "fee_asset",
                "realized_pnl",
                "maker",
                "ts",
                "raw",
            ),
            [
                (
                    self.mode,
                    f.symbol,
                    f.trade_id,
                    f.order_id,
                    ours.get(f.order_id),
                    f.side,
                    f.position_side,
                    f.qty,
                    f.price,
                    f.commission,
                    f.commission_asset,
                    f.realized_pnl,
                    f.maker,
                    from_ms(f.ts_ms),
                    json.dumps(f.raw),
                )
                for f in fills
            ],
            ignore_duplicates=True,
        )
        self.count("fills", len(fills))

    # --- 5. positions --------------------------------------------------------------------

    def local_open(self) -> dict[tuple[str, str], dict[str, Any]]:
        rows = self.store.fetchall(
            "SELECT position_id, symbol, position_side, side, qty, entry_price, opened_at, "
            "stop_loss, signal_seq, exit_reason FROM positions WHERE mode = ? AND status = 'open'",
            [self.mode],
        )
        keys = (
            "position_id",
            "symbol",
            "position_side",
            "side",
            "qty",
            "entry_price",
            "opened_at",
            "stop_loss",
            "signal_seq",
            "exit_reason",
        )
        return {(r[1], r[2]): dict(zip(keys, r, strict=True)) for r in rows}

    def sync_positions(self, details: list[PositionDetail]) -> None:
        local = self.local_open()
        seen = {(d.symbol, d.position_side): d for d in details}
        for key, position in local.items():
            detail = seen.get(key)
            if detail is None or detail.side != position["side"]:
                self.settle(position)
        local = self.local_open()
        settings = self.ctx.settings.reconcile
        for key, detail in seen.items():
            position = local.get(key)
            if position is None:
                self.open_from_exchange(detail)
                continue
            if plain(detail.qty) != plain(position["qty"]):
                self.note(
                    "quantity",
                    detail.symbol,
                    f"DuckDB had {plain(position['qty'])}, the exchange {detail.qty}",
                )
            r = r_multiple(
                detail.entry_price, position["stop_loss"], detail.qty, detail.unrealized_pnl
            )
            age = (self.ctx.now() - position["opened_at"]).total_seconds()
            label = classification(
                r,
                detail.unrealized_pnl,
                age,
                settings.winner_r,
                settings.toxic_r,
                settings.toxic_after_s,
            )
            self.store.execute(
                "UPDATE positions SET qty = ?, mark_price = ?, unrealized_pnl = ?, r_multiple = ?, "
                "classification = ?, updated_at = ? WHERE position_id = ?",
                [
                    detail.qty,
                    detail.mark_price,
                    detail.unrealized_pnl,
                    r,
                    label,
                    self.ctx.now(),
                    position["position_id"],
                ],
            )

    def record_missed(self, details: list[PositionDetail]) -> None:
        """Entries that filled and were closed again before any reconcile saw the position
        (a stop hit within a minute, a paper replay moving hours at once): record the
        position as opened, so that settling it puts the trade in the books."""
        held = {(d.symbol, d.side) for d in details}
        open_rows = {(k[0], p["side"]) for k, p in self.local_open().items()}
        for seq, symbol, side, leg, qty, price, opened_at, stop, target in self._unrecorded():
            if (symbol, side) in held or (symbol, side) in open_rows:
                continue  # open now: open_from_exchange links it to its entry
            self._open_position(
                symbol=symbol,
                side=side,
                position_side=leg,
                qty=qty,
                entry_price=price,
                opened_at=opened_at,
                signal_seq=seq,
                origin="qtrader",
                stop_loss=stop,
                take_profit=target,
            )
            open_rows.add((symbol, side))
            self.touched.add(symbol)
            self.count("positions_opened")

    def _unrecorded(self) -> list[tuple]:
        """Our filled entries that no position row tells of yet, oldest first."""
        return self.store.fetchall(
            "SELECT o.signal_seq, o.symbol, o.side, coalesce(o.position_side, 'BOTH'), "
            " o.filled_qty, o.avg_price, o.created_at, "
            " (SELECT trigger_price FROM orders s WHERE s.signal_seq = o.signal_seq "
            "  AND s.role = 'stop_loss' LIMIT 1), "
            " (SELECT trigger_price FROM orders t WHERE t.signal_seq = o.signal_seq "
            "  AND t.role = 'take_profit' LIMIT 1) "
            "FROM orders o WHERE o.mode = ? AND o.role = 'entry' AND o.filled_qty > 0 "
            "AND o.signal_seq NOT IN "
            " (SELECT signal_seq FROM positions WHERE signal_seq IS NOT NULL) "
            "ORDER BY o.created_at",
            [self.mode],
        )

    def _open_position(self, **columns: Any) -> None:
        row = {"mode": self.mode, "status": "open", "updated_at": self.ctx.now(), **columns}
        self.store.insert_rows("positions", tuple(row), [tuple(row.values())])

    def open_from_exchange(self, detail: PositionDetail) -> None:
        """A position DuckDB has no open row for: ours (an entry just filled) or adopted."""
        ours = [e for e in self._unrecorded() if (e[1], e[2]) == (detail.symbol, detail.side)]
        entry = (ours[-1][0], ours[-1][6], ours[-1][7], ours[-1][8]) if ours else None
        origin = "qtrader" if entry else "adopted"
        signal_seq, opened_at, stop, target = entry if entry else (None, self.ctx.now(), None, None)
        self._open_position(
            symbol=detail.symbol,
            side=detail.side,
            position_side=detail.position_side,
            qty=detail.qty,
            entry_price=detail.entry_price,
            opened_at=opened_at,
            signal_seq=signal_seq,
            origin=origin,
            stop_loss=stop,
            take_profit=target,
            mark_price=detail.mark_price,
            unrealized_pnl=detail.unrealized_pnl,
        )
        self.touched.add(detail.symbol)
        self.batch.event(
            "position_opened",
            "info",
            detail.symbol,
            f"{origin}: {detail.side} {detail.qty} at {detail.entry_price}",
            {
                "origin": origin,
                "side": detail.side,
                "qty": detail.qty,
                "entry_price": detail.entry_price,
            },
        )
        if origin == "adopted":
            side = "long" if detail.side == "BUY" else "short"
            self.note(
                "missing_locally",
                detail.symbol,
                f"{side} {detail.qty} at {detail.entry_price} was not in DuckDB: adopted",
            )
        self.count("positions_opened" if origin == "qtrader" else "positions_adopted")

    def settle(self, position: dict[str, Any]) -> None:
        """Close the local row with what the exchange's fills and ledger say happened."""
        symbol, since = position["symbol"], position["opened_at"]
        self.ingest_fills({symbol})
        closing = self.store.fetchall(
            "SELECT qty, price, realized_pnl, ts, order_id FROM fills WHERE mode = ? "
            "AND symbol = ? AND position_side = ? AND ts >= ? AND realized_pnl <> 0",
            [self.mode, symbol, position["position_side"], since],
        )
        fees = self.store.fetchone(
            "SELECT coalesce(sum(fee), 0) FROM fills WHERE mode = ? AND symbol = ? "
            "AND position_side = ? AND ts >= ?",
            [self.mode, symbol, position["position_side"], since],
        )[0]
        funding = self.store.fetchone(
            "SELECT coalesce(sum(amount), 0) FROM income WHERE mode = ? AND symbol = ? "
            "AND income_type = 'FUNDING_FEE' AND ts >= ?",
            [self.mode, symbol, since],
        )[0]
        exit_price, realized, closed_at = _exit_of(closing)
        reason = position.get("exit_reason") or self.exit_reason(position)
        if reason == "manual_or_unknown" and closing and self._liquidated(symbol, since, closing):
            reason = "liquidation"
        self.store.execute(
            "UPDATE positions SET status = 'closed', closed_at = ?, exit_price = ?, "
            "realized_pnl = ?, fees = ?, funding = ?, exit_reason = ?, updated_at = ? "
            "WHERE position_id = ?",
            [
                closed_at or self.ctx.now(),
                exit_price,
                realized or Decimal(0),
                fees,
                funding,
                reason,
                self.ctx.now(),
                position["position_id"],
            ],
        )
        self.settled.append(
            {
                "symbol": symbol,
                "exit_reason": reason,
                "exit_price": exit_price,
                "realized_pnl": realized,
                "fees": plain(fees),
                "funding": plain(funding),
            }
        )
        self.count("positions_settled")
        self.batch.event(
            "position_closed",
            "info",
            symbol,
            f"closed: {reason}",
            {
                "position_id": position["position_id"],
                "exit_reason": reason,
                "realized_pnl": realized,
                "fees": fees,
                "funding": funding,
            },
        )
        if realized is None:
            self.note("missing_on_exchange", symbol, "closed without a closing fill on record")

    def _liquidated(self, symbol: str, since: datetime, closing: list[tuple]) -> bool:
        """A close none of our orders explains: was it the exchange's forced order?"""
        forced = self.exchange.liquidation_order_ids(symbol, since_ms=to_ms(since))
        return any(str(row[4]) in forced for row in closing)

    def exit_reason(self, position: dict[str, Any]) -> str:
        roles = dict(
            self.store.fetchall(
                "SELECT role, status FROM orders WHERE mode = ? AND symbol = ? AND created_at >= ? "
                "AND (signal_seq = ? OR role IN ('exit', 'reverse_exit'))",
                [self.mode, position["symbol"], position["opened_at"], position["signal_seq"]],
            )
        )
        if roles.get("stop_loss") == "filled":
            return "stop_loss"
        if roles.get("take_profit") == "filled":
            return "take_profit"
        if roles.get("exit") == "filled" or roles.get("reverse_exit") == "filled":
            return "signal_close"
        return "manual_or_unknown"


def reconcile(ctx: RunContext, exchange: Exchange | None = None) -> Result:
    exchange = exchange or open_exchange(ctx.settings, ctx.yes_live, store=ctx.store)
    logger.info("reconcile · {} · exchange {}", ctx.mode.upper(), exchange.host)
    batch = WriteBatch(ctx.run_id, ctx.mode)
    run = _Run(ctx, exchange, batch)
    try:
        load_markets(ctx.store, exchange, ctx.mode, ctx.settings.exchange.markets_ttl_s)
        exchange.sync_clock()
        run.resolve_in_flight()
        batch.commit(ctx.store)
        details = exchange.position_details()
        open_algo = exchange.open_orders(None, conditional=True)
        run.counts["open_orders"] = len(exchange.open_orders(None, conditional=False))
        run.sync_protective(open_algo)
        batch.commit(ctx.store)  # settling reads which protective order fired
        run.ingest_income()
        run.record_missed(details)
        active = run.touched | {d.symbol for d in details} | {k[0] for k in run.local_open()}
        run.ingest_fills(active)
        run.sync_positions(details)
        batch.commit(ctx.store)
        from qtrader.steps.watchdog import guard

        repairs = guard(ctx, exchange, batch, details, open_algo)
        closed = {r["symbol"] for r in repairs if r["ok"] and r["action"] in WATCHDOG_CLOSES}
        if closed:  # settle what the watchdog closed in this same run
            settle_now(ctx, exchange, batch, closed, run)
        account = exchange.account()
        state = account_state(ctx, account)
        try:
            trip_breakers(ctx, state, risk_limits(ctx.settings), batch)
        except Halted as halted:  # a failed repair must not hide behind the halt: exit 1 wins
            return failure_wins(_result(ctx, exchange, run, repairs, account.equity), halted)
        return _result(ctx, exchange, run, repairs, account.equity)
    finally:
        batch.exchange_calls(exchange.journal())
        batch.commit(ctx.store)


def settle_now(
    ctx: RunContext,
    exchange: Exchange,
    batch: WriteBatch,
    symbols: set[str],
    run: _Run | None = None,
    reason: str | None = None,
) -> list[dict[str, Any]]:
    """Settle positions a step has just closed (the watchdog, close-all) in the same run,
    from the exchange's fills, instead of leaving them open in DuckDB until the next
    reconcile. `reason` labels the positions whose row has no exit reason yet."""
    run = run or _Run(ctx, exchange, batch)
    if reason is not None:
        for (symbol, _), position in run.local_open().items():
            if symbol in symbols and not position.get("exit_reason"):
                ctx.store.execute(
                    "UPDATE positions SET exit_reason = ? WHERE position_id = ?",
                    [reason, position["position_id"]],
                )
    details = exchange.position_details()
    run.ingest_fills(symbols)
    run.sync_positions(details)
    batch.commit(ctx.store)
    return run.settled


def _result(
    ctx: RunContext, exchange: Exchange, run: _Run, repairs: list, equity: Decimal
) -> Result:
    open_rows = ctx.store.fetchall(
        "SELECT symbol, side, qty, entry_price, mark_price, unrealized_pnl, stop_loss, r_multiple, "
        "classification, origin FROM positions WHERE mode = ? AND status = 'open' ORDER BY symbol",
        [ctx.mode],
    )
    columns = [
        "symbol",
        "side",
        "qty",
        "entry",
        "mark",
        "unrealized",
        "stop",
        "R",
        "class",
        "origin",
    ]
    positions = [[plain(v) if isinstance(v, Decimal) else v for v in row] for row in open_rows]
    failed = [r for r in repairs if not r["ok"]]
    result = Result(
        data={
            "exchange": exchange.host,
            "equity": equity,
            "counts": run.counts,
            "positions": [dict(zip(columns, row, strict=True)) for row in positions],
            "settled": run.settled,
            "drift": [d.__dict__ for d in run.drift],
            "repairs": repairs,
        },
        tables=[
            Table("open positions", columns, positions),
            Table(
                "settled this run",
                ["symbol", "exit_reason", "exit_price", "realized_pnl", "fees", "funding"],
                [
                    [
                        s[k]
                        for k in (
                            "symbol",
                            "exit_reason",
                            "exit_price",
                            "realized_pnl",
                            "fees",
                            "funding",
                        )
                    ]
                    for s in run.settled
                ],
            ),
            Table(
                "repairs",
                ["action", "symbol", "detail", "ok"],
                [[r["action"], r["symbol"], r["detail"], r["ok"]] for r in repairs],
            ),
            Table(
                "drift (DuckDB vs exchange)",
                ["kind", "symbol", "detail"],
                [[d.kind, d.symbol, d.detail] for d in run.drift],
            ),
        ],
        lines=[f"reconcile · exchange {exchange.host} · equity {plain(equity)}"],
        summary={"counts": run.counts, "drift": len(run.drift), "repairs": len(repairs)},
    )
    if failed:
        result.exit_code, result.outcome = ExitCode.FAILURE, "failed"
        result.error = "; ".join(f"{r['action']} {r['symbol']}: {r['detail']}" for r in failed)
    return result


def _exit_of(closing: list[tuple]) -> tuple[Decimal | None, Decimal | None, datetime | None]:
    """Volume-weighted exit price, realized PnL and time of the closing fills (exact)."""
    quantity = sum((row[0] for row in closing), Decimal(0))
    if not closing or quantity == 0:
        return None, None, None
    vwap = sum((row[0] * row[1] for row in closing), Decimal(0)) / quantity
    realized = sum((row[2] for row in closing), Decimal(0))
    return plain(vwap), plain(realized), max(row[3] for row in closing)
