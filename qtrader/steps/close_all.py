"""close-all: the emergency stop. Halt, close everything, cancel everything, verify flat.

It trusts only the exchange. Every position and open order (regular and algo, all symbols)
is read from Binance, so it works with an empty or missing database too. The halt is set
before anything is sent, so `execute` refuses to trade (exit 3) until `qtrader resume`.
Each pass first closes each position with a reduce-only market order (each side in hedge
mode), and only then cancels regular *and* algo orders per symbol (a cancel without the algo
call leaves the stop-losses live): a close that fails leaves its position with its stop, and
a stop that fires while the close runs can only reduce. Then it re-reads. Exit 0 only when the
exchange confirms flat.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from loguru import logger

from qtrader.domain.orders import Role, client_order_id, closing_side
from qtrader.errors import ExitCode, UsageError
from qtrader.exchange import open_exchange
from qtrader.exchange.port import (
    Exchange,
    ExchangeRejected,
    ExchangeUnavailable,
    OrderReport,
    OrderRequest,
    PositionInfo,
)
from qtrader.output import Result, Table
from qtrader.steps import RunContext
from qtrader.steps.halting import halt
from qtrader.steps.markets import load_markets
from qtrader.steps.sending import OrderSender, describe, send_once
from qtrader.store.batch import WriteBatch

PASSES = 3

Confirm = Callable[[str], bool]


@dataclass
class Snapshot:
    """What is open on the exchange, for the symbols close-all is asked about."""

    positions: list[PositionInfo]
    orders: list[OrderReport]
    algo_orders: list[OrderReport]
    # with --symbol: what is open on the other symbols, left alone (reported, never touched)
    untouched_positions: list[PositionInfo] = field(default_factory=list)
    untouched_orders: int = 0
    scope: tuple[str, ...] = ()  # the --symbol list; empty: every symbol

    @property
    def flat(self) -> bool:
        """Nothing open among the symbols close-all covers."""
        return not (self.positions or self.orders or self.algo_orders)

    @property
    def account_flat(self) -> bool:
        return self.flat and not (self.untouched_positions or self.untouched_orders)

    def symbols_with_orders(self, algo: bool) -> list[str]:
        return sorted({o.symbol for o in (self.algo_orders if algo else self.orders) if o.symbol})

    def describe(self) -> dict[str, Any]:
        return {
            "positions": [
                {
                    "symbol": p.symbol,
                    "side": "long" if p.side == "BUY" else "short",
                    "qty": p.qty,
                    "position_side": p.position_side,
                }
                for p in self.positions
            ],
            "open_orders": [
                {"symbol": o.symbol, "client_order_id": o.client_order_id} for o in self.orders
            ],
            "open_algo_orders": [
                {"symbol": o.symbol, "client_order_id": o.client_order_id} for o in self.algo_orders
            ],
        }


@dataclass
class Action:
    kind: str  # cancel_orders | cancel_algo_orders | close_position
    symbol: str
    detail: str
    ok: bool
    qty: Decimal | None = None
    avg_price: Decimal | None = None


@dataclass
class _Run:
    ctx: RunContext
    exchange: Exchange
    only: set[str]
    batch: WriteBatch
    actions: list[Action] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sender = OrderSender(self.exchange, self.batch, self.ctx.now)

    def snapshot(self) -> Snapshot:
        logger.info("close-all: reading positions and open orders from {}", self.exchange.host)
        account = self.exchange.account()
        keep = (lambda s: s in self.only) if self.only else (lambda s: True)
        orders = self.exchange.open_orders(None, conditional=False)
        algo_orders = self.exchange.open_orders(None, conditional=True)
        return Snapshot(
            positions=[p for p in account.positions if keep(p.symbol)],
            orders=[o for o in orders if keep(o.symbol)],
            algo_orders=[o for o in algo_orders if keep(o.symbol)],
            untouched_positions=[p for p in account.positions if not keep(p.symbol)],
            untouched_orders=sum(1 for o in orders + algo_orders if not keep(o.symbol)),
            scope=tuple(sorted(self.only)),
        )

    def one_pass(self, snap: Snapshot, attempt: int) -> None:
        """Close first, cancel after: a position whose close fails keeps its stop."""
        failed = {p.symbol for p in snap.positions if not self._close(p, attempt)}
        for algo in (True, False):
            for symbol in snap.symbols_with_orders(algo):
                kind = "cancel_algo_orders" if algo else "cancel_orders"
                if algo and symbol in failed:
                    why = "stops kept: the close failed, they still protect the position"
                    self.actions.append(Action("keep_algo_orders", symbol, why, True))
                    continue
                self._act(kind, symbol, lambda s=symbol, a=algo: self.exchange.cancel_all(s, a))

    def _act(self, kind: str, symbol: str, call: Callable[[], None]) -> None:
        logger.info("close-all: {} {}", kind.replace("_", " "), symbol)
        try:
            call()
            self.actions.append(Action(kind, symbol, "done", True))
        except (ExchangeRejected, ExchangeUnavailable) as exc:
            self.actions.append(Action(kind, symbol, str(exc), False))
            logger.warning("close-all: {} {} failed: {}", kind, symbol, exc)

    def _close(self, position: PositionInfo, attempt: int) -> bool:
        hedge_side = position.position_side if position.position_side != "BOTH" else None
        logger.info("close-all: closing {} {} {}", position.symbol, position.side, position.qty)
        key = f"close-all:{self.ctx.run_key}:{position.symbol}:{position.position_side}"
        cid = client_order_id(key, Role.EXIT, attempt)
        request = OrderRequest(
            symbol=position.symbol,
            side=closing_side(position.side),
            quantity=position.qty,
            client_order_id=cid,
            reduce_only=hedge_side is None,
            position_side=hedge_side,
            kind="market",
        )
        facts = send_once(self.ctx.store, self.sender, request, Role.EXIT)
        closed = facts.filled_qty > 0 and not facts.in_flight
        side = "long" if position.side == "BUY" else "short"
        detail = f"closed {side} ({cid})" if closed else describe(facts)
        self.actions.append(
            Action(
                "close_position",
                position.symbol,
                detail,
                closed,
                facts.filled_qty if closed else position.qty,
                facts.avg_price,
            )
        )
        return closed


def close_all(
    ctx: RunContext,
    symbols: list[str] | None = None,
    dry_run: bool = False,
    yes: bool = False,
    confirm: Confirm | None = None,
    exchange: Exchange | None = None,
) -> Result:
    exchange = exchange or open_exchange(ctx.settings, ctx.yes_live, store=ctx.store)
    only = {s.upper() for s in symbols or []}
    batch = WriteBatch(ctx.run_id, ctx.mode)
    run = _Run(ctx, exchange, only, batch)
    try:
        load_markets(ctx.store, exchange, ctx.mode, ctx.settings.exchange.markets_ttl_s)
        exchange.sync_clock()
        plan = run.snapshot()
        if dry_run:
            return _result(exchange, plan, plan, run.actions, dry_run=True, halted=False)
        _ask(plan, yes, confirm, exchange.host, ctx.mode)
        _halt(ctx, batch, plan)
        final = _flatten(run, plan, float(ctx.settings.exchange.retry_wait_s))
        closed = {a.symbol for a in run.actions if a.kind == "close_position" and a.ok}
        if closed:  # what close-all closed is in the books now, not after the next reconcile
            _settle(ctx, exchange, batch, closed)
        batch.event(
            "close_all_finished",
            "critical" if not final.flat else "warning",
            None,
            "close-all finished: " + ("flat" if final.flat else "NOT flat"),
            {"left": final.describe(), "actions": len(run.actions)},
        )
        return _result(exchange, plan, final, run.actions, dry_run=False, halted=True)
    finally:
        batch.exchange_calls(exchange.journal())
        batch.commit(ctx.store)


def _settle(ctx: RunContext, exchange: Exchange, batch: WriteBatch, closed: set[str]) -> None:
    from qtrader.steps.reconcile import settle_now

    if ctx.store.path == ":memory:":
        return  # the file was locked: the next reconcile settles from the exchange's fills
    try:
        settle_now(ctx, exchange, batch, closed, reason="close_all")
    except (ExchangeRejected, ExchangeUnavailable) as exc:  # the account is flat: books later
        logger.warning("close-all: positions settle on the next reconcile ({})", exc)


def _ask(plan: Snapshot, yes: bool, confirm: Confirm | None, host: str, mode: str) -> None:
    if yes:
        return
    summary = (
        f"close-all on {host} ({mode.upper()}): {len(plan.positions)} position(s), "
        f"{len(plan.orders) + len(plan.algo_orders)} open order(s). Halt, cancel and close?"
    )
    if confirm is None:
        raise UsageError(
            "close-all needs --yes when it is not run from a terminal; "
            "use --dry-run to see the plan"
        )
    if not confirm(summary):
        raise UsageError("close-all not confirmed; nothing was done")


def _halt(ctx: RunContext, batch: WriteBatch, plan: Snapshot) -> None:
    """The kill switch: added to the mode's halts (weakening none); lifted only by resume."""
    numbers = {"positions": len(plan.positions)}
    halt(ctx, batch, "kill_switch", "kill switch: close-all", numbers, event=None)
    logger.info("close-all: trading halted (kill switch); closing, then cancelling")
    batch.event(
        "close_all_started",
        "critical",
        None,
        "close-all: halted; cancelling and closing",
        plan.describe(),
    )
    batch.commit(ctx.store)


def _flatten(run: _Run, snap: Snapshot, wait_s: float) -> Snapshot:
    for attempt in range(PASSES):
        if snap.flat:
            return snap
        run.one_pass(snap, attempt)
        run.batch.commit(run.ctx.store)
        time.sleep(wait_s * attempt)
        snap = run.snapshot()
    return snap


def _order_symbols(snap: Snapshot) -> set[str]:
    return {o.symbol for o in snap.orders + snap.algo_orders if o.symbol}


def coverage(final: Snapshot, symbols: list[str]) -> dict[str, Any]:
    """Exactly what close-all covered and what it left alone, as one line and as data:
    `SOLUSDT flat; 1 other position untouched: BNBUSDT`."""
    others = sorted({p.symbol for p in final.untouched_positions})
    untouched = {"positions": others, "open_orders": final.untouched_orders}
    if final.account_flat:
        text = "account is FLAT: no positions, no open orders"
    elif final.flat:
        text = f"{', '.join(symbols) or 'the symbols asked for'} flat"
    else:
        text = (
            f"NOT flat: {len(final.positions)} position(s), "
            f"{len(final.orders) + len(final.algo_orders)} order(s) left"
        )
    if others:
        n = len(final.untouched_positions)
        text += f"; {n} other position{'s' if n != 1 else ''} untouched: {', '.join(others)}"
    if final.untouched_orders:
        text += f"; {final.untouched_orders} order(s) on other symbols untouched"
    return {"symbols": symbols, "untouched": untouched, "text": text}


def _result(
    exchange: Exchange,
    plan: Snapshot,
    final: Snapshot,
    actions: list[Action],
    dry_run: bool,
    halted: bool,
) -> Result:
    columns = ["action", "symbol", "qty", "avg_price", "result"]
    covered = coverage(
        final, list(plan.scope) or sorted({p.symbol for p in plan.positions} | _order_symbols(plan))
    )
    rows = [
        [a.kind, a.symbol, a.qty, a.avg_price, a.detail if a.ok else f"FAILED: {a.detail}"]
        for a in actions
    ]
    plan_rows = [[p["symbol"], p["side"], p["qty"]] for p in plan.describe()["positions"]]
    left = final.describe()
    result = Result(
        data={
            "exchange": exchange.host,
            "dry_run": dry_run,
            "halted": halted,
            "flat": final.account_flat,  # the whole account, not only the covered symbols
            "covered": {"symbols": covered["symbols"], "flat": final.flat},
            "untouched": covered["untouched"],
            "plan": plan.describe(),
            "actions": [a.__dict__ for a in actions],
            "left": left,
        },
        tables=[
            Table("positions found", ["symbol", "side", "qty"], plan_rows),
            Table("actions" + (" (dry run: nothing done)" if dry_run else ""), columns, rows),
        ],
        lines=[
            f"close-all · exchange {exchange.host}"
            + (" · DRY RUN" if dry_run else " · trading HALTED until `qtrader resume`"),
            covered["text"]
            if not dry_run
            else f"would cover: {len(final.positions)} position(s), "
            f"{len(final.orders) + len(final.algo_orders)} order(s)",
        ],
        summary={"flat": final.flat, "actions": len(actions), "dry_run": dry_run},
    )
    if not dry_run and not final.flat:
        result.exit_code, result.outcome = ExitCode.FAILURE, "failed"
        result.error = (
            f"NOT FLAT after {PASSES} passes: {len(final.positions)} position(s) and "
            f"{len(final.orders) + len(final.algo_orders)} order(s) left; run close-all "
            "again or close them on the exchange"
        )
    return result
