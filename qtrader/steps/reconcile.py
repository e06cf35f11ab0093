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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from loguru import logger

from qtrader.clock import from_ms, to_ms
from qtrader.domain.ledger import Opening
from qtrader.domain.numbers import plain
from qtrader.domain.orders import OrderStatus
from qtrader.domain.positions import classification, r_multiple
from qtrader.domain.protection import Kind
from qtrader.errors import ExitCode, Halted
from qtrader.exchange import open_exchange
from qtrader.exchange.port import (
    Account,
    CannotTell,
    Exchange,
    ExchangeRejected,
    ExchangeUnavailable,
    Fill,
    Found,
    IncomeRow,
    NotFound,
    OrderReport,
    PositionDetail,
)
from qtrader.output import Result, Table
from qtrader.steps import RunContext
from qtrader.steps.halting import failure_wins
from qtrader.steps.ledger import Change, derive_symbol, rederive_if_migrated
from qtrader.steps.markets import load_markets
from qtrader.steps.risk_gate import account_state, risk_limits, trip_breakers
from qtrader.steps.sending import look_up, record_answer, resting_order
from qtrader.steps.watchdog import guard
from qtrader.store.batch import WriteBatch
from qtrader.store.state import get_state, set_state

INCOME_LOOKBACK = timedelta(days=7)  # the first run reads the ledger this far back
_PROTECTIVE = ("stop_loss", "take_profit")
WATCHDOG_CLOSES = ("stop_crossed_closed", "stop_failed_closed", "time_exit")
T = TypeVar("T")


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
    adopted: set[int] = field(default_factory=set)  # positions adopted this run

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

    def in_flight(self) -> list[tuple]:
        return self.store.fetchall(
            "SELECT client_order_id, symbol, kind, created_at, role FROM orders "
            "WHERE mode = ? AND status IN ('submitting', 'unknown')",
            [self.mode],
        )

    def resolve_in_flight(self, rows: list[tuple]) -> list[tuple]:
        """Look up every order of unknown outcome. Only the exchange's own "does not exist",
        past the grace period, gives one up; a lookup that gets no answer keeps it unknown.
        Returns the protective orders found open: checked against the book like the others
        (one can fire between its lookup and the book's read)."""
        grace = self.ctx.settings.exchange.unknown_order_grace_s
        now_open = []
        for cid, symbol, kind, created_at, role in rows:
            answer = look_up(self.exchange, symbol, cid, kind != "market")
            if isinstance(answer, Found):
                record_answer(self.batch, cid, answer.report)
                self.count("orders_resolved")
                if role in _PROTECTIVE and answer.report.status is OrderStatus.OPEN:
                    now_open.append((cid, symbol))
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
        return now_open

    # --- 3. protective orders that left the book ---------------------------------------

    def protective(self) -> list[tuple]:
        return self.store.fetchall(
            "SELECT client_order_id, symbol FROM orders WHERE mode = ? AND status = 'open' "
            f"AND role IN {_PROTECTIVE}",
            [self.mode],
        )

    def sync_protective(self, open_algo: list[OrderReport], rows: list[tuple]) -> None:
        """`rows`: our protective orders open as the run began, and those an in-flight
        lookup found open this run."""
        on_book = {o.client_order_id for o in open_algo}
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

    def income_since(self) -> int:
        since = get_state(self.store, f"income_cursor:{self.mode}")
        return since if since is not None else to_ms(self.ctx.now() - INCOME_LOOKBACK)

    def ingest_income(self, rows: list[IncomeRow]) -> None:
        key = f"income_cursor:{self.mode}"
        if not rows:
            return
        known = set(
            self.store.fetchall(
                "SELECT tran_id, income_type FROM income "
                "WHERE mode = ? AND list_contains(?, tran_id)",
                [self.mode, [r.tran_id for r in rows]],
            )
        )
        # a trade or funding row not seen before: that symbol's fills must be read
        self.touched |= {
            r.symbol for r in rows if r.symbol and (r.tran_id, r.income_type) not in known
        }
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

    def ingest_fills(self, symbols: set[str], then: Callable[[], T] | None = None) -> T | None:
        """Cursors first, then the requests, then the writes: the file is opened once for the
        reads and once for the writes, not twice per symbol (it is let go per request).
        `then`: one more request made before the writes (reconcile's account read)."""
        keys = {symbol: f"fills_cursor:{self.mode}:{symbol}" for symbol in sorted(symbols)}
        cursors = {symbol: get_state(self.store, key) for symbol, key in keys.items()}
        fetched = {s: self.exchange.fills(s, since_ms=cursors[s]) for s in keys}
        answer = then() if then is not None else None
        for symbol, fills in fetched.items():
            if fills:
                self._store_fills(fills)
                set_state(self.store, keys[symbol], max(f.ts_ms for f in fills))
        return answer

    def _store_fills(self, fills: list[Fill]) -> None:
        for asset in sorted({f.commission_asset for f in fills} - {"USDT", "USDC"}):
            symbols = ", ".join(sorted({f.symbol for f in fills if f.commission_asset == asset}))
            self.note("fee_asset", symbols, f"commission paid in {asset}: fees are summed "
                      f"as booked, not converted to USDT")  # fmt: skip
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

    # --- 5. positions ------------------------------------------------------------------

    def local_open(self) -> dict[tuple[str, str], dict[str, Any]]:
        rows = self.store.fetchall(
            "SELECT position_id, symbol, position_side, side, qty, entry_price, opened_at, "
            "coalesce(stop_loss, resting_stop), signal_seq, origin FROM positions "
            "WHERE mode = ? AND status = 'open'",
            [self.mode],
        )
        keys = ("position_id", "symbol", "position_side", "side", "qty", "entry_price",
                "opened_at", "stop_loss", "signal_seq", "origin")  # fmt: skip
        return {(r[1], r[2]): dict(zip(keys, r, strict=True)) for r in rows}

    def unledgered(self) -> set[str]:
        """Symbols of our recent orders that filled, whose fills DuckDB does not hold and were
        not read since (an entry stopped out between two runs): their fills must be read. The
        income ledger's new rows name such symbols too; this covers a ledger that lags."""
        rows = self.store.fetchall(
            "SELECT symbol, max(created_at) FROM orders o WHERE mode = ? AND filled_qty > 0 "
            "AND created_at >= ? AND exchange_order_id IS NOT NULL AND NOT EXISTS (SELECT 1 "
            "FROM fills f WHERE f.mode = o.mode AND f.symbol = o.symbol AND (f.order_id = "
            "o.exchange_order_id OR f.order_id = json_extract_string(o.raw_response, "
            "'$.actualOrderId'))) GROUP BY symbol",
            [self.mode, self.ctx.now() - INCOME_LOOKBACK],
        )
        wanted = set()
        for symbol, created in rows:
            cursor = get_state(self.store, f"fills_cursor:{self.mode}:{symbol}")
            if cursor is None or cursor < to_ms(created) + 60_000:  # not read since it filled
                wanted.add(symbol)
        return wanted

    def derive(self, symbols: set[str], details: list[PositionDetail]) -> None:
        """Positions from the fills ledger (steps/ledger.py), symbol by symbol."""
        for symbol in sorted(symbols):
            openings = None
            if not self.store.fetchone(
                "SELECT count(*) FROM positions WHERE mode = ? AND symbol = ?", [self.mode, symbol]
            )[0]:
                openings = self._carried(symbol, [d for d in details if d.symbol == symbol])
            changes = derive_symbol(self.store, self.mode, symbol, openings=openings,
                                    liquidations=self._liquidations,
                                    now=self.ctx.now())  # fmt: skip
            if (
                not changes
                and not self.store.fetchone(
                    "SELECT count(*) FROM positions WHERE mode = ? AND symbol = ?",
                    [self.mode, symbol],
                )[0]
            ):
                self._unheld_funding(symbol)
            for change in changes:
                if change.kind == "opened":
                    self._opened(change)
                else:
                    self._closed(change)

    def _carried(self, symbol: str, details: list[PositionDetail]) -> dict[str, Opening]:
        """First sight of a symbol: what the exchange holds beyond what its fills explain was
        opened before the ledger's window; it is carried in at the window's start."""
        rows = self.store.fetchall(
            "SELECT position_side, sum(CASE side WHEN 'BUY' THEN qty ELSE -qty END), min(ts) "
            "FROM fills WHERE mode = ? AND symbol = ? GROUP BY ALL",
            [self.mode, symbol],
        )
        net = {leg: (amount, first) for leg, amount, first in rows}
        openings = {}
        for leg in {d.position_side for d in details} | set(net):
            held = next((d for d in details if d.position_side == leg), None)
            signed = (held.qty if held.side == "BUY" else -held.qty) if held else Decimal(0)
            filled, first = net.get(leg, (Decimal(0), None))
            carried = signed - filled
            if carried != 0:
                entry = held.entry_price if held is not None and filled == 0 else None
                openings[leg] = Opening(carried, entry, first or self.ctx.now())
        return openings

    def _unheld_funding(self, symbol: str) -> None:
        """Funding rows of a symbol no position of the ledger holds (its fills are older
        than the window the exchange returns): reported, as no trade can carry them."""
        row = self.store.fetchone(
            "SELECT count(*), coalesce(sum(amount), 0) FROM income WHERE mode = ? AND symbol = ? "
            "AND income_type = 'FUNDING_FEE'",
            [self.mode, symbol],
        )
        if row and row[0]:
            self.note("funding_without_position", symbol,
                      f"{row[0]} funding row(s), {plain(row[1])} USDT, and no position in the "
                      "fills ledger to hold them")  # fmt: skip

    def _liquidations(self, symbol: str, since: datetime) -> set[str]:
        """A close none of our orders explains: was it the exchange's forced order?"""
        return self.exchange.liquidation_order_ids(symbol, since_ms=to_ms(since))

    def _opened(self, change: Change) -> None:
        self.touched.add(change.symbol)
        if change.origin == "adopted":
            self.adopted.add(change.position_id)
        self.count("positions_opened" if change.origin == "qtrader" else "positions_adopted")
        side = "long" if change.side == "BUY" else "short"
        self.batch.event(
            "position_opened",
            "info",
            change.symbol,
            f"{change.origin}: {side} {plain(change.qty)} at {_show(change.entry_price)}",
            {"origin": change.origin, "side": side, "qty": change.qty,
             "entry_price": change.entry_price, "position_id": change.position_id},
        )  # fmt: skip

    def _closed(self, change: Change) -> None:
        self.settled.append(
            {
                "symbol": change.symbol,
                "exit_reason": change.exit_reason,
                "exit_price": _show(change.exit_price),
                "realized_pnl": plain(change.realized_pnl),
                "fees": plain(change.fees),
                "funding": plain(change.funding),
            }
        )
        self.count("positions_settled")
        self.batch.event(
            "position_closed",
            "info",
            change.symbol,
            f"closed: {change.exit_reason}",
            {"position_id": change.position_id, "exit_reason": change.exit_reason,
             "realized_pnl": change.realized_pnl, "fees": change.fees, "funding": change.funding},
        )  # fmt: skip

    def sync_positions(self, details: list[PositionDetail], only: set[str] | None = None) -> None:
        """Marks and classes for the open positions; every disagreement with the exchange is
        reported as drift (the ledger decides what is open; the exchange's view is shown)."""
        local = {k: p for k, p in self.local_open().items() if only is None or k[0] in only}
        details = [d for d in details if only is None or d.symbol in only]
        seen = {(d.symbol, d.position_side): d for d in details}
        settings = self.ctx.settings.reconcile
        for key, position in local.items():
            if key not in seen:
                self.note("missing_on_exchange", key[0],
                          f"the fills ledger has {_side(position['side'])} "
                          f"{plain(position['qty'])} open; the exchange has none: a fill is "
                          "missing from userTrades")  # fmt: skip
        for key, detail in seen.items():
            position = local.get(key)
            if position is None:
                self.note("missing_locally", detail.symbol,
                          f"{_side(detail.side)} {detail.qty} at {detail.entry_price} is on the "
                          "exchange but in no fill DuckDB holds yet")  # fmt: skip
                continue
            if position["origin"] == "adopted" and position["position_id"] in self.adopted:
                self.note("missing_locally", detail.symbol,
                          f"{_side(detail.side)} {detail.qty} at {detail.entry_price} was not "
                          "opened by qtrader: adopted")  # fmt: skip
            if detail.side != position["side"] or plain(detail.qty) != plain(position["qty"]):
                self.note(
                    "quantity",
                    detail.symbol,
                    f"DuckDB had {_side(position['side'])} {plain(position['qty'])}, the "
                    f"exchange {_side(detail.side)} {detail.qty}",
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
                "UPDATE positions SET mark_price = ?, unrealized_pnl = ?, r_multiple = ?, "
                "classification = ?, updated_at = ? WHERE position_id = ?",
                [
                    detail.mark_price,
                    detail.unrealized_pnl,
                    r,
                    label,
                    self.ctx.now(),
                    position["position_id"],
                ],
            )

    def record_resting(self, open_algo: list[OrderReport], details: list[PositionDetail]) -> None:
        """The stop and target resting on the exchange for each open position, as this run
        leaves them (seen at its start, less what the watchdog cancelled, plus what it placed)."""
        placed = self.store.fetchall(
            "SELECT client_order_id, symbol, side, position_side, role, trigger_price, "
            "status FROM orders WHERE mode = ? AND role IN ('stop_loss', 'take_profit') "
            "AND (run_id = ? OR list_contains(?, client_order_id))",
            [self.mode, self.ctx.run_id, [o.client_order_id for o in open_algo]],
        )
        status = {r[0]: r[6] for r in placed}
        resting: dict[tuple[str, str], dict[str, Decimal]] = {}
        for o in open_algo:
            order = resting_order(o)
            if status.get(o.client_order_id, "open") != "open" or not order.reduces:
                continue
            if order.kind is Kind.OTHER or not order.symbol or order.trigger is None:
                continue
            kind = "stop" if order.kind is Kind.STOP else "target"
            resting.setdefault((order.symbol, order.position_side), {})[kind] = order.trigger
        for cid, symbol, _, leg, role, trigger, state in placed:
            if state == "open" and cid not in {o.client_order_id for o in open_algo}:
                kind = "stop" if role == "stop_loss" else "target"
                resting.setdefault((symbol, leg or "BOTH"), {})[kind] = trigger
        for (symbol, leg), position in self.local_open().items():
            found = resting.get((symbol, leg), {})
            self.store.execute(
                "UPDATE positions SET resting_stop = ?, resting_target = ? WHERE position_id = ?",
                [found.get("stop"), found.get("target"), position["position_id"]],
            )


def reconcile(ctx: RunContext, exchange: Exchange | None = None) -> Result:
    exchange = exchange or open_exchange(ctx.settings, ctx.yes_live, store=ctx.store)
    logger.info("reconcile · {} · exchange {}", ctx.mode.upper(), exchange.host)
    batch = WriteBatch(ctx.run_id, ctx.mode)
    run = _Run(ctx, exchange, batch)
    try:
        # The file is let go across every request and each reopen costs tens of ms, so what
        # the run reads from it, it reads in a few visits: what it knows before asking the
        # exchange, the exchange's answers written together, then the fills and the account.
        load_markets(ctx.store, exchange, ctx.mode, ctx.settings.exchange.markets_ttl_s)
        in_flight, protective, income_since = run.in_flight(), run.protective(), run.income_since()
        exchange.sync_clock()
        protective += run.resolve_in_flight(in_flight)
        details = exchange.position_details()
        open_algo = exchange.open_orders(None, conditional=True)
        run.counts["open_orders"] = len(exchange.open_orders(None, conditional=False))
        run.sync_protective(open_algo, protective)
        income = exchange.income(since_ms=income_since)
        batch.commit(ctx.store)  # settling reads which protective order fired
        run.ingest_income(income)
        rederive_if_migrated(ctx.store)
        active = (
            run.touched
            | {d.symbol for d in details}
            | {k[0] for k in run.local_open()}
            | run.unledgered()
        )
        # read early to save a visit, but a failed read must not keep the watchdog from the
        # stops: it is read again after the repairs (before this change it came after them)
        account = run.ingest_fills(active, then=lambda: _account_if_it_answers(exchange))
        run.derive(active, details)
        run.sync_positions(details)
        batch.commit(ctx.store)
        repairs = guard(ctx, exchange, batch, details, open_algo)
        closed = {r["symbol"] for r in repairs if r["ok"] and r["action"] in WATCHDOG_CLOSES}
        if closed:  # settle what the watchdog closed in this same run
            settle_now(ctx, exchange, batch, closed, run)
        run.record_resting(open_algo, details)
        if repairs or account is None:  # orders were sent (the balance read is out of date)
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


def _account_if_it_answers(exchange: Exchange) -> Account | None:
    try:
        return exchange.account()
    except (ExchangeUnavailable, ExchangeRejected) as exc:
        logger.warning("account not read before the repairs ({}): read again after them", exc)
        return None


def settle_now(
    ctx: RunContext,
    exchange: Exchange,
    batch: WriteBatch,
    symbols: set[str],
    run: _Run | None = None,
    reason: str | None = None,
) -> list[dict[str, Any]]:
    """Settle positions a step has just closed (the watchdog, close-all) in the same run:
    read those symbols' fills and re-derive them. `reason` is accepted for the callers'
    sake; the exit reason comes from the closing fill's order (its role and its run)."""
    run = run or _Run(ctx, exchange, batch)
    batch.commit(ctx.store)  # the closing orders' exchange ids, read to name the reason
    details = exchange.position_details()
    run.ingest_fills(symbols)
    run.derive(symbols, details)
    run.sync_positions(details, only=symbols)
    batch.commit(ctx.store)
    return run.settled


def _result(
    ctx: RunContext, exchange: Exchange, run: _Run, repairs: list, equity: Decimal
) -> Result:
    open_rows = ctx.store.fetchall(
        "SELECT symbol, side, qty, entry_price, mark_price, unrealized_pnl, stop_loss, "
        "take_profit, r_multiple, classification, origin FROM v_open_positions WHERE mode = ? "
        "ORDER BY symbol",
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
        "target",
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


def _show(value: Decimal | None) -> Decimal | None:
    return None if value is None else plain(value)


def _side(side: str) -> str:
    return "long" if side == "BUY" else "short"
