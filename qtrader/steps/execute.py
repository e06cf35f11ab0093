"""execute: pending signals → checks → sizing → entry + stop-loss + take-profit on the exchange.

Each signal is a small state machine kept in DuckDB, so a crash or timeout anywhere resumes
where it stopped and never sends an entry twice (invariant 1):

    pending ──▶ executing (entry row committed, *then* the POST)
                 ├─ entry filled ─▶ stop-loss ─▶ take-profit ─▶ executed
                 ├─ entry rejected ─▶ rejected
                 └─ entry outcome unknown ─▶ (next run) look up by client id first

A position is never left without a stop (invariant 2): if the stop-loss cannot be placed,
the position is closed at once with a reduce-only market order and the event is stored.

Writes go through a WriteBatch and are committed where durability matters: every new entry
row of the run together, before the first entry is sent; a CLOSE's exit row before it is
sent; everything else at the end. A protective order's row may not be durable when it is
sent, so resuming always looks a protective order up by client id before sending it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from loguru import logger

from qtrader.domain.market import MarketRules
from qtrader.domain.numbers import plain
from qtrader.domain.orders import OrderStatus, Role, client_order_id, closing_side
from qtrader.domain.risk import AccountState, Candidate, evaluate
from qtrader.domain.sizing import (
    SizingRejected,
    order_quantity,
    protection_is_valid,
    stop_price_for,
    take_profit_price_for,
)
from qtrader.errors import ExitCode
from qtrader.exchange import open_exchange
from qtrader.exchange.port import (
    Account,
    Exchange,
    ExchangeBanned,
    ExchangeRejected,
    ExchangeUnavailable,
    OrderReport,
    OrderRequest,
)
from qtrader.output import Result, Table
from qtrader.steps import RunContext
from qtrader.steps.halting import halted_message, refuse_if_halted
from qtrader.steps.markets import load_markets
from qtrader.steps.risk_gate import account_state, risk_limits, trip_breakers
from qtrader.steps.sending import find_order, record_answer
from qtrader.store.batch import WriteBatch
from qtrader.store.exchange_cache import (
    cached_hedge_mode,
    save_hedge_mode,
    save_symbol_setup,
    symbol_setups,
)
from qtrader.store.orders import OrderRow, get_order, orders_of_signal, request_columns
from qtrader.store.signals import SIGNAL_FIELDS

PROTECTION_ATTEMPTS = 3
CLOSE = "close"
OPPOSITE_CLOSE = "opposite_close"
REVERSE = "reverse"


@dataclass
class SignalRow:
    seq: int
    signal_id: str
    symbol: str
    action: str
    confidence: Decimal | None
    position_size_usd: Decimal | None
    leverage: Decimal | None
    entry_price: Decimal | None
    stop_loss: Decimal | None
    take_profit: Decimal | None
    signal_ts: Any
    received_at: Any
    status: str


@dataclass
class Outcome:
    signal: SignalRow
    status: str
    reason: str | None = None
    quantity: Decimal | None = None
    avg_price: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    orders: list[str] = field(default_factory=list)
    failure: bool = False  # makes the run exit 1 (an order failed, a position had to be closed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "signal_id": self.signal.signal_id,
            "symbol": self.signal.symbol,
            "action": self.signal.action,
            "status": self.status,
            "reason": self.reason,
            "quantity": self.quantity,
            "avg_price": self.avg_price,
            "stop_loss": self.stop_loss,
            "take_profit": self.take_profit,
            "orders": self.orders,
        }


class _Abort(Exception):
    """Stop handling this signal with the given outcome (already recorded)."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome


def execute(
    ctx: RunContext,
    max_signals: int | None = None,
    dry_run: bool = False,
    refresh_markets: bool = False,
    exchange: Exchange | None = None,
) -> Result:
    entry_halts = refuse_if_halted(ctx, dry_run)  # halts left here stop new entries only
    exchange = exchange or open_exchange(ctx.settings, ctx.yes_live, store=ctx.store)
    header = f"execute · {ctx.mode.upper()} · exchange {exchange.host}"
    logger.info(header)
    in_flight = _signals(ctx, "executing", None)
    pending = _signals(ctx, "pending", max_signals)
    if not in_flight and not pending:
        return _result(exchange, [], header, dry_run)
    run = _Execution(ctx, exchange, dry_run)
    run.entry_halts = entry_halts
    try:
        run.prepare(refresh_markets)
        outcomes = [run.resume(signal) for signal in in_flight]
        outcomes += run.handle_pending(pending)
    finally:
        run.commit()
    return _result(exchange, outcomes, header, dry_run)


def _signals(ctx: RunContext, status: str, limit: int | None) -> list[SignalRow]:
    sql = (
        f"SELECT {SIGNAL_FIELDS} FROM signals WHERE status = ? "
        "ORDER BY coalesce(signal_ts, received_at), seq"
    )
    params: list[Any] = [status]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    rows = ctx.store.fetchall(sql, params)
    return [SignalRow(*(plain(v) if isinstance(v, Decimal) else v for v in row)) for row in rows]


class _Execution:
    def __init__(self, ctx: RunContext, exchange: Exchange, dry_run: bool) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.mode = ctx.mode
        self.exchange = exchange
        self.dry_run = dry_run
        self.settings = ctx.settings
        self.batch = WriteBatch(ctx.run_id, ctx.mode)
        self.rules: dict[str, MarketRules] = {}
        self.hedge = False
        self.account: Account | None = None
        self.marks: dict[str, Decimal] | None = None
        self.setups: dict[str, tuple[int, str]] = {}
        self.limits = risk_limits(ctx.settings)
        self.state: AccountState | None = None  # what risk sees; grows with this run's entries
        self.entry_halts: list = []  # halts that stop new entries only (exchange_unhealthy)
        self._requests: dict[str, OrderRequest] = {}  # rows written this run

    # --- once per run --------------------------------------------------------------------

    def prepare(self, refresh_markets: bool) -> None:
        ttl = self.settings.exchange.markets_ttl_s
        self.rules = load_markets(self.store, self.exchange, self.mode, ttl, refresh_markets)
        self.exchange.sync_clock()
        hedge = None if refresh_markets else cached_hedge_mode(self.store, self.mode, ttl)
        if hedge is None:
            hedge = self.exchange.hedge_mode()
            save_hedge_mode(self.store, self.mode, hedge)
        self.hedge = hedge
        self.account = self.exchange.account()
        self.setups = symbol_setups(self.store, self.mode)
        self.state = account_state(self.ctx, self.account)
        would_trip = trip_breakers(self.ctx, self.state, self.limits, self.batch, self.dry_run)
        if would_trip or self.entry_halts:
            why = would_trip or halted_message(self.entry_halts)
            self.state = replace(self.state, halted=why)

    def commit(self) -> None:
        self.batch.exchange_calls(self.exchange.journal())
        self.batch.commit(self.store)

    # --- pending signals: decide all, commit the entries, then send ----------------------

    def handle_pending(self, signals: list[SignalRow]) -> list[Outcome]:
        outcomes: dict[int, Outcome] = {}
        accepted: list[tuple[SignalRow, Any]] = []
        for signal in signals:
            try:
                accepted.append((signal, self._decide(signal)))
            except _Abort as abort:
                outcomes[signal.seq] = abort.outcome
        if self.dry_run:
            outcomes |= {s.seq: self._would(s, plan) for s, plan in accepted}
            return [outcomes[s.seq] for s in signals]
        entries = self._write_entries(
            [(s, p) for s, p in accepted if isinstance(p, dict)], outcomes
        )
        self.commit()  # every entry row is durable before the first entry is sent
        for signal, plan in accepted:
            if signal.seq in outcomes:
                continue
            try:
                if plan == CLOSE:
                    outcomes[signal.seq] = self._close(signal, Role.EXIT)
                elif plan == OPPOSITE_CLOSE:
                    outcomes[signal.seq] = self._close(signal, Role.EXIT, "opposite signal: ")
                elif plan == REVERSE:
                    outcomes[signal.seq] = self._close(signal, Role.REVERSE_EXIT, "reversing: ")
                else:
                    outcomes[signal.seq] = self._send_entry(signal, entries[signal.seq])
            except _Abort as abort:
                outcomes[signal.seq] = abort.outcome
        return [outcomes[s.seq] for s in signals]

    def _decide(self, signal: SignalRow) -> Any:
        """A plan (dict) for an entry; CLOSE / OPPOSITE_CLOSE / REVERSE; or _Abort with the
        final outcome. Every decision is recorded with the rule and numbers behind it."""
        if signal.action == "HOLD":
            self._finish(signal, "skipped", "HOLD: nothing to do", "skip", {"rule": "hold"})
        if self._expired(signal):
            age = self._age_s(signal)
            reason = f"signal is {age:.0f} s old; signal_ttl_s is {self.settings.risk.signal_ttl_s}"
            self._finish(
                signal, "expired", reason, "expire", {"rule": "signal_ttl_s", "age_s": age}
            )
        rules = self._rules_for(signal)
        if signal.action == "CLOSE":
            return CLOSE
        assert self.state is not None
        price = signal.entry_price or self._mark_price(signal)
        risk = self.settings.risk
        stop = stop_price_for(
            signal.action, price, signal.stop_loss, risk.default_stop_loss_pct, rules
        )
        candidate = Candidate(
            symbol=signal.symbol,
            side=signal.action,
            confidence=signal.confidence,
            price=price,
            stop_price=stop,
            leverage=int(signal.leverage) if signal.leverage else None,
            position_size_usd=signal.position_size_usd,
            signal_price=signal.entry_price,
            mark_price=self._drift_mark(signal),
        )
        decision = evaluate(candidate, self.state, self.limits)
        detail = {"rule": decision.rule, **decision.numbers, "price": price}
        if decision.outcome == "reject":
            self._finish(
                signal, "rejected", f"{decision.rule}: {decision.reason}", "reject", detail
            )
        if decision.outcome == "skip":
            self._finish(signal, "skipped", f"{decision.rule}: {decision.reason}", "skip", detail)
        if decision.outcome == "close":
            return OPPOSITE_CLOSE
        if decision.outcome == "reverse":
            return REVERSE
        return self._plan(signal, rules, decision, price, stop)

    def _plan(
        self, signal: SignalRow, rules: MarketRules, decision: Any, price: Decimal, stop: Decimal
    ) -> dict[str, Any]:
        assert self.state is not None and decision.notional is not None
        try:
            quantity = order_quantity(decision.notional, price, rules)
        except SizingRejected as exc:
            self._reject(signal, "min_order", str(exc), {**decision.numbers, "price": price})
        leverage = decision.leverage
        margin = quantity * price / leverage
        plan = {
            **decision.numbers,
            "price": price,
            "price_source": "signal" if signal.entry_price else "mark",
            "quantity": quantity,
            "step_size": rules.step_size,
            "tick_size": rules.tick_size,
            "min_notional": rules.min_notional,
            "order_notional": quantity * price,
            "margin_required": margin,
            "available": self.state.available,
            "stop_estimate": stop,
            "take_profit_estimate": take_profit_price_for(
                signal.action,
                price,
                signal.take_profit,
                self.settings.risk.default_take_profit_pct,
                rules,
            ),
            "hedge_mode": self.hedge,
        }
        self.state = self.state.with_entry(signal.symbol, signal.action, quantity * price, margin)
        return plan

    def _drift_mark(self, signal: SignalRow) -> Decimal | None:
        """The current mark price, when the drift guard needs it (one request per run)."""
        if self.limits.max_price_drift_pct is None or signal.entry_price is None:
            return None
        if self.marks is None:
            self.marks = self.exchange.mark_prices()
        return self.marks.get(signal.symbol)

    def _would(self, signal: SignalRow, plan: Any) -> Outcome:
        if plan in (OPPOSITE_CLOSE, REVERSE):
            return Outcome(signal, f"would {plan.replace('_', ' ')}", None)
        if plan == CLOSE:
            assert self.account is not None
            position = self.account.position(signal.symbol)
            if position is None:
                return Outcome(signal, "would be skipped", f"no open position on {signal.symbol}")
            return Outcome(signal, "would close", None, position.qty)
        return Outcome(
            signal,
            "would execute",
            None,
            plan["quantity"],
            plan["price"],
            plan["stop_estimate"],
            plan["take_profit_estimate"],
        )

    def _write_entries(self, accepted: list[tuple[SignalRow, dict]], outcomes: dict) -> dict:
        entries = {}
        for signal, plan in accepted:
            try:
                self._set_up_symbol(signal.symbol, plan["leverage"])
            except ExchangeRejected as exc:
                reason = f"could not set leverage/margin mode ({exc.code}): {exc.exchange_message}"
                outcomes[signal.seq] = self._finish_quietly(signal, "rejected", reason, plan)
                continue
            cid = client_order_id(signal.signal_id, Role.ENTRY)
            self.batch.decision(signal.seq, "accept", None, plan)
            self._write_order(
                signal,
                Role.ENTRY,
                cid,
                signal.action,
                "market",
                plan["quantity"],
                reduce_only=False,
                trigger=None,
            )
            self.batch.set_signal_status(signal.seq, "executing", None)
            entries[signal.seq] = cid
        return entries

    def _send_entry(self, signal: SignalRow, entry_id: str) -> Outcome:
        try:
            report = self._send_order(signal, self._request(entry_id), entry_id)
        except ExchangeRejected as exc:
            reason = f"exchange rejected the entry ({exc.code}): {exc.exchange_message}"
            self._set_status(signal, "rejected", reason)
            return Outcome(signal, "rejected", reason, orders=[entry_id])
        if report is None:
            return Outcome(
                signal,
                "executing",
                "entry outcome unknown; the next run looks it up",
                orders=[entry_id],
                failure=True,
            )
        if report.filled_qty <= 0:
            reason = f"entry not filled (status {report.status})"
            self._set_status(signal, "rejected", reason)
            return Outcome(signal, "rejected", reason, orders=[entry_id], failure=True)
        return self._protect(signal, report, resuming=False)

    # --- protection ----------------------------------------------------------------------

    def _protect(self, signal: SignalRow, entry: OrderReport, resuming: bool) -> Outcome:
        rules = self.rules[signal.symbol]
        fill = entry.avg_price or signal.entry_price
        assert fill is not None
        risk = self.settings.risk
        stop = stop_price_for(
            signal.action, fill, signal.stop_loss, risk.default_stop_loss_pct, rules
        )
        target = take_profit_price_for(
            signal.action, fill, signal.take_profit, risk.default_take_profit_pct, rules
        )
        outcome = Outcome(
            signal,
            "executed",
            None,
            entry.filled_qty,
            fill,
            stop,
            target,
            orders=[entry.client_order_id],
        )
        if not protection_is_valid(signal.action, fill, stop):
            reason = f"filled at {fill}, already beyond the stop {stop}"
            return self._emergency_close(signal, entry.filled_qty, outcome, reason)
        try:
            outcome.orders.append(
                self._place_protective(signal, Role.STOP_LOSS, entry.filled_qty, stop, resuming)
            )
        except ExchangeRejected as exc:
            return self._emergency_close(signal, entry.filled_qty, outcome, str(exc))
        if target is not None and protection_is_valid(closing_side(signal.action), fill, target):
            try:
                outcome.orders.append(
                    self._place_protective(
                        signal, Role.TAKE_PROFIT, entry.filled_qty, target, resuming
                    )
                )
            except (ExchangeRejected, ExchangeUnavailable) as exc:
                outcome.reason = f"take-profit not placed: {exc}"
                self._event(
                    "take_profit_failed",
                    "warning",
                    signal.symbol,
                    outcome.reason,
                    {"signal_id": signal.signal_id},
                )
        self._set_status(signal, "executed", outcome.reason)
        return outcome

    def _place_protective(
        self, signal: SignalRow, role: Role, qty: Decimal, trigger: Decimal, resuming: bool
    ) -> str:
        """A reduce-only STOP_MARKET / TAKE_PROFIT_MARKET (Algo Order API). When resuming, the
        exchange is asked first whether an earlier run already placed it."""
        cid = client_order_id(signal.signal_id, role)
        existing = get_order(self.store, cid) if resuming else None
        if existing is not None and existing.status in (OrderStatus.OPEN, OrderStatus.FILLED):
            return cid
        if existing is None:
            self._write_order(
                signal,
                role,
                cid,
                closing_side(signal.action),
                role.value,
                qty,
                reduce_only=True,
                trigger=trigger,
            )
        if resuming and self._lookup(signal, cid, conditional=True) is not None:
            return cid
        for _attempt in range(PROTECTION_ATTEMPTS):
            try:
                report = self._send_order(signal, self._request(cid), cid)
            except ExchangeRejected as exc:
                if "duplicate" in exc.exchange_message.lower() and self._lookup(signal, cid, True):
                    return cid  # an earlier attempt did land
                raise
            if report is not None:
                return cid
        raise ExchangeRejected(
            None, f"{role.value} outcome still unknown after {PROTECTION_ATTEMPTS} attempts"
        )

    def _emergency_close(
        self, signal: SignalRow, qty: Decimal, outcome: Outcome, why: str
    ) -> Outcome:
        """Invariant 2: no position stays open without a stop on the exchange."""
        cid = client_order_id(signal.signal_id, Role.EXIT)
        self._write_order(
            signal,
            Role.EXIT,
            cid,
            closing_side(signal.action),
            "market",
            qty,
            reduce_only=True,
            trigger=None,
        )
        try:
            report = self._send_order(signal, self._request(cid), cid)
        except ExchangeRejected as exc:
            report, why = None, f"{why}; the close was rejected too: {exc}"
        closed = report is not None and report.filled_qty >= qty
        message = f"stop-loss could not be placed ({why}); position " + (
            "closed at once" if closed else "CLOSE FAILED: close it by hand now"
        )
        self._event(
            "stop_loss_failed",
            "critical",
            signal.symbol,
            message,
            {"signal_id": signal.signal_id, "exit_order": cid, "closed": closed},
        )
        outcome.orders.append(cid)
        outcome.status, outcome.reason, outcome.failure = "executed", message, True
        self._set_status(signal, "executed", message)
        return outcome

    # --- CLOSE signals -------------------------------------------------------------------

    def _close(self, signal: SignalRow, role: Role, prefix: str = "") -> Outcome:
        """Close the symbol's position (reduce-only market), then cancel its protection.
        A reversing close leaves the signal pending: it enters on the next run, sized on a
        fresh account read."""
        assert self.account is not None
        position = self.account.position(signal.symbol)
        if position is None:
            reason = f"no open position on {signal.symbol}"
            self._finish(signal, "skipped", reason, "skip", {"rule": "no_position"})
        assert position is not None
        cid = client_order_id(signal.signal_id, role)
        self.batch.decision(
            signal.seq,
            "accept",
            prefix + "close position",
            {"position_qty": position.qty, "position_side": position.side},
        )
        self._write_order(
            signal,
            role,
            cid,
            closing_side(position.side),
            "market",
            position.qty,
            reduce_only=True,
            trigger=None,
        )
        self.batch.set_signal_status(signal.seq, "executing", None)
        self.commit()  # the exit row is durable before it is sent
        try:
            report = self._send_order(signal, self._request(cid), cid)
        except ExchangeRejected as exc:
            reason = f"exchange rejected the close ({exc.code}): {exc.exchange_message}"
            self._set_status(signal, "rejected", reason)
            return Outcome(signal, "rejected", reason, orders=[cid], failure=True)
        if report is None:
            return Outcome(
                signal,
                "executing",
                "close outcome unknown; the next run looks it up",
                orders=[cid],
                failure=True,
            )
        cancelled = self._cancel_protection(signal.symbol)
        reason = (
            f"{prefix}closed {report.filled_qty}; cancelled {len(cancelled)} protective order(s)"
        )
        if role is Role.REVERSE_EXIT:
            reason += "; enters on the next run"
            self._set_status(signal, "pending", reason)
            return Outcome(
                signal,
                "reversing",
                reason,
                report.filled_qty,
                report.avg_price,
                orders=[cid, *cancelled],
            )
        self._set_status(signal, "executed", reason)
        return Outcome(
            signal,
            "executed",
            reason,
            report.filled_qty,
            report.avg_price,
            orders=[cid, *cancelled],
        )

    def _cancel_protection(self, symbol: str) -> list[str]:
        cancelled = []
        for order in self.exchange.open_orders(symbol, conditional=True):
            if order.raw.get("reduceOnly") or order.raw.get("closePosition"):
                assert order.exchange_order_id is not None
                self.exchange.cancel_order(symbol, order.exchange_order_id, conditional=True)
                cancelled.append(order.client_order_id)
                self.batch.update_order(order.client_order_id, status=OrderStatus.CANCELED.value)
        return cancelled

    # --- resuming signals a previous run left in flight ----------------------------------

    def resume(self, signal: SignalRow) -> Outcome:
        try:
            return self._resume(signal)
        except _Abort as abort:
            return abort.outcome
        finally:
            self.commit()

    def _resume(self, signal: SignalRow) -> Outcome:
        orders = orders_of_signal(self.store, signal.seq)
        closes = [r for r in (Role.EXIT, Role.REVERSE_EXIT) if r.value in orders]
        is_close = bool(closes) and Role.ENTRY.value not in orders
        role = closes[0] if is_close else Role.ENTRY
        main = orders.get(role.value)
        if main is None:
            self._set_status(signal, "pending", "resumed without an order; queued again")
            return Outcome(signal, "pending", "no order was written; queued again")
        report = self._resolve(signal, main)
        if report is None:
            return Outcome(
                signal,
                "executing",
                f"{role.value} outcome still unknown",
                orders=[main.client_order_id],
                failure=True,
            )
        if report.status is OrderStatus.NOT_FOUND or report.filled_qty <= 0:
            reason = f"{role.value} was never filled ({report.status}); not re-sent"
            self._set_status(signal, "rejected", reason)
            return Outcome(signal, "rejected", reason, orders=[main.client_order_id])
        if role is Role.REVERSE_EXIT:
            self._set_status(
                signal, "pending", f"reversing: closed {report.filled_qty}; enters on the next run"
            )
            return Outcome(
                signal,
                "reversing",
                "close confirmed",
                report.filled_qty,
                report.avg_price,
                orders=[main.client_order_id],
            )
        if is_close:
            self._set_status(signal, "executed", f"closed {report.filled_qty} (resumed)")
            return Outcome(
                signal,
                "executed",
                "close confirmed",
                report.filled_qty,
                report.avg_price,
                orders=[main.client_order_id],
            )
        if Role.EXIT.value in orders:
            exit_report = self._resolve(signal, orders[Role.EXIT.value])
            closed = exit_report is not None and exit_report.filled_qty > 0
            reason = "stop-loss had failed; emergency close " + (
                "confirmed" if closed else "NOT confirmed"
            )
            self._set_status(signal, "executed", reason)
            return Outcome(signal, "executed", reason, orders=list(orders), failure=not closed)
        return self._protect(signal, report, resuming=True)

    def _resolve(self, signal: SignalRow, row: OrderRow) -> OrderReport | None:
        """The stored state of an order, asking the exchange when it is in flight."""
        if not OrderStatus(row.status).in_flight:
            return OrderReport(
                row.client_order_id,
                row.exchange_order_id,
                OrderStatus(row.status),
                row.filled_qty,
                row.avg_price,
            )
        report = self._lookup(signal, row.client_order_id, row.kind != "market")
        if report is not None:
            return report
        age = (self.ctx.now() - row.created_at).total_seconds()
        if age < self.settings.exchange.unknown_order_grace_s:
            return None
        self.batch.update_order(
            row.client_order_id,
            status=OrderStatus.NOT_FOUND.value,
            error=f"not found by client id {age:.0f} s after it was sent",
        )
        self._event(
            "order_not_found",
            "warning",
            signal.symbol,
            f"{row.client_order_id} not found on the exchange; given up, not re-sent",
            {},
        )
        return OrderReport(row.client_order_id, None, OrderStatus.NOT_FOUND, Decimal(0), None)

    # --- sending, with the unknown-outcome protocol --------------------------------------

    def _send_order(self, signal: SignalRow, request: OrderRequest, cid: str) -> OrderReport | None:
        """POST once. A rejection is recorded and re-raised. An unknown outcome is looked up
        by client id; only what the exchange certainly never acted on is sent again.
        Returns None while the outcome is still unknown."""
        from qtrader.exchange.binance import NotSentError

        for _ in range(2):
            try:
                report = self.exchange.place_order(request)
            except ExchangeBanned as exc:
                self.batch.update_order(cid, status=OrderStatus.REJECTED.value, error=str(exc))
                raise
            except ExchangeRejected as exc:
                self.batch.update_order(
                    cid,
                    status=OrderStatus.REJECTED.value,
                    error_code=exc.code,
                    error=exc.exchange_message,
                )
                raise
            except ExchangeUnavailable as exc:
                self.batch.update_order(cid, status=OrderStatus.UNKNOWN.value, error=str(exc))
                report = self._lookup(signal, cid, request.kind != "market")
                if report is None and isinstance(exc, NotSentError):
                    continue  # the exchange refused it unprocessed: sending again is safe
            if report is not None:
                self._order_answered(cid, report)
            return report
        return None

    def _lookup(self, signal: SignalRow, cid: str, conditional: bool) -> OrderReport | None:
        report = find_order(self.exchange, signal.symbol, cid, conditional)
        if report is not None:
            self._order_answered(cid, report)
        return report

    def _order_answered(self, cid: str, report: OrderReport) -> None:
        record_answer(self.batch, cid, report)

    # --- checks and sizing ---------------------------------------------------------------

    def _rules_for(self, signal: SignalRow) -> MarketRules:
        rules = self.rules.get(signal.symbol)
        if rules is None:
            self._reject(
                signal,
                "market",
                f"{signal.symbol} is not a listed USDⓈ-M perpetual on {self.exchange.host}",
            )
        assert rules is not None
        if not rules.trading:
            self._reject(signal, "market", f"{signal.symbol} is not trading ({rules.status})")
        return rules

    def _mark_price(self, signal: SignalRow) -> Decimal:
        if self.marks is None:
            self.marks = self.exchange.mark_prices()
        price = self.marks.get(signal.symbol)
        if price is None:
            self._reject(
                signal, "price", f"no price for {signal.symbol}: the signal has none, no mark price"
            )
        assert price is not None
        return price

    def _set_up_symbol(self, symbol: str, leverage: int) -> None:
        """Margin mode and leverage, set once per symbol and remembered in DuckDB."""
        margin = self.settings.exchange.margin_mode
        if self.setups.get(symbol) == (leverage, margin):
            return
        self.exchange.set_margin_mode(symbol, margin)
        self.exchange.set_leverage(symbol, leverage)
        save_symbol_setup(self.store, self.mode, symbol, leverage, margin)
        self.setups[symbol] = (leverage, margin)

    # --- bookkeeping ---------------------------------------------------------------------

    def _write_order(
        self,
        signal: SignalRow,
        role: Role,
        cid: str,
        side: str,
        kind: str,
        qty: Decimal,
        reduce_only: bool,
        trigger: Decimal | None,
    ) -> None:
        position_side = None
        if self.hedge:
            opened_by = signal.action if role is Role.ENTRY else closing_side(side)
            position_side = "LONG" if opened_by == "BUY" else "SHORT"
        request = OrderRequest(
            symbol=signal.symbol,
            side=side,
            quantity=qty,
            client_order_id=cid,
            reduce_only=reduce_only,
            position_side=position_side,
            trigger_price=trigger,
            kind=kind,
        )
        self.batch.add_order(
            signal_seq=signal.seq,
            signal_id=signal.signal_id,
            role=role.value,
            status=OrderStatus.SUBMITTING.value,
            **request_columns(request),
        )
        self._requests[cid] = request

    def _request(self, cid: str) -> OrderRequest:
        if cid in self._requests:
            return self._requests[cid]
        row = self.store.fetchone(
            "SELECT symbol, side, requested_qty, reduce_only, position_side, trigger_price, kind "
            "FROM orders WHERE client_order_id = ?",
            [cid],
        )
        assert row is not None
        symbol, side, qty, reduce_only, position_side, trigger, kind = row
        return OrderRequest(
            symbol=symbol,
            side=side,
            quantity=plain(qty),
            client_order_id=cid,
            reduce_only=reduce_only,
            position_side=position_side,
            trigger_price=plain(trigger) if trigger is not None else None,
            kind=kind,
        )

    def _finish(
        self, signal: SignalRow, status: str, reason: str, outcome: str, detail: dict
    ) -> None:
        """Record the signal's final status and stop handling it."""
        raise _Abort(self._finish_quietly(signal, status, reason, detail, outcome))

    def _finish_quietly(
        self, signal: SignalRow, status: str, reason: str, detail: dict, outcome: str = "reject"
    ) -> Outcome:
        if self.dry_run:
            return Outcome(signal, f"would be {status}", reason)
        self.batch.decision(signal.seq, outcome, reason, detail)
        self.batch.set_signal_status(signal.seq, status, reason)
        return Outcome(signal, status, reason)

    def _reject(
        self, signal: SignalRow, rule: str, reason: str, detail: dict | None = None
    ) -> None:
        self._finish(
            signal, "rejected", f"{rule}: {reason}", "reject", {**(detail or {}), "rule": rule}
        )

    def _set_status(self, signal: SignalRow, status: str, reason: str | None) -> None:
        self.batch.set_signal_status(signal.seq, status, reason)

    def _event(self, kind: str, severity: str, symbol: str, message: str, data: dict) -> None:
        logger.log("ERROR" if severity == "critical" else "WARNING", "{}: {}", kind, message)
        self.batch.event(kind, severity, symbol, message, data)

    def _age_s(self, signal: SignalRow) -> float:
        return (self.ctx.now() - (signal.signal_ts or signal.received_at)).total_seconds()

    def _expired(self, signal: SignalRow) -> bool:
        return self._age_s(signal) > self.settings.risk.signal_ttl_s


def _result(exchange: Exchange, outcomes: list[Outcome], header: str, dry_run: bool) -> Result:
    failed = [o for o in outcomes if o.failure]
    columns = [
        "signal_id",
        "symbol",
        "action",
        "status",
        "quantity",
        "avg_price",
        "stop_loss",
        "take_profit",
        "orders / reason",
    ]
    rows = [
        [
            o.signal.signal_id[:24],
            o.signal.symbol,
            o.signal.action,
            o.status,
            o.quantity,
            o.avg_price,
            o.stop_loss,
            o.take_profit,
            o.reason or " ".join(o.orders),
        ]
        for o in outcomes
    ]
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    result = Result(
        data={
            "exchange": exchange.host,
            "dry_run": dry_run,
            "counts": counts,
            "signals": [o.as_dict() for o in outcomes],
        },
        tables=[Table("signals" + (" (dry run: nothing sent)" if dry_run else ""), columns, rows)],
        lines=[header + (" · DRY RUN" if dry_run else "")],
        summary={"counts": counts, "exchange": exchange.host, "dry_run": dry_run},
    )
    if failed:
        result.exit_code, result.outcome = ExitCode.FAILURE, "failed"
        result.error = "; ".join(f"{o.signal.signal_id}: {o.reason}" for o in failed)
    return result
