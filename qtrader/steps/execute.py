"""execute: pending signals → checks → sizing → entry + stop-loss + take-profit on the exchange.

Orchestration only: the money rules are pure functions. `domain/risk.py` decides whether a
signal trades and how big; `domain/lifecycle.py` says, from what is known of a signal's orders,
what to do next (send, look up, give up, protect, close, wait, finish); `steps/sending.py`
sends and looks up with the write-ahead protocol. A signal's state lives in DuckDB, so a crash,
a timeout or a kill anywhere resumes where it stopped, never sends an entry twice
(invariant 1), and never leaves a filled entry without its stop (invariant 2).

Writes go through a WriteBatch, committed where durability matters: every new entry row of
the run together, before the first entry is sent; a CLOSE's exit row before it is sent;
everything else at the end of each signal. A protective order's row may not be durable when
it is sent, so a resumed signal looks every protective order up by client id first.

One signal's trouble never stops the others. When the run stops early (a ban, SIGINT or
SIGTERM), the signal being handled is finished (its filled entry protected), and the entries
not yet sent are marked `not_sent` and queued again. While trading is halted, in-flight
signals are still protected and CLOSE signals still run; new entries wait for `resume`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from loguru import logger

from qtrader.domain.lifecycle import (
    Action,
    CancelProtection,
    CloseKind,
    ClosePlan,
    CloseSignal,
    EntryPlan,
    EntrySignal,
    Finish,
    GiveUp,
    LookUp,
    Plan,
    Send,
    Wait,
    after_protection_cancelled,
    next_close_action,
    next_entry_action,
)
from qtrader.domain.market import MarketRules
from qtrader.domain.numbers import plain
from qtrader.domain.orders import OrderStatus, Role, client_order_id, closing_side
from qtrader.domain.risk import AccountState, Candidate, evaluate
from qtrader.domain.sizing import (
    SizingRejected,
    describe_sizing,
    order_quantity,
    sizing_summary,
    stop_price_for,
    take_profit_price_for,
)
from qtrader.errors import ExitCode, Halted
from qtrader.exchange import check_exchange_access, open_exchange
from qtrader.exchange.port import (
    Account,
    Exchange,
    ExchangeRejected,
    ExchangeUnavailable,
    OrderRequest,
)
from qtrader.interrupts import deferred_interrupts
from qtrader.output import Result, Table
from qtrader.steps import RunContext
from qtrader.steps.halting import halted_message, refuse_if_halted
from qtrader.steps.markets import load_markets
from qtrader.steps.risk_gate import account_state, risk_limits, trip_breakers
from qtrader.steps.sending import OrderSender, existing_rows, resting_order
from qtrader.store.batch import WriteBatch
from qtrader.store.exchange_cache import (
    cached_hedge_mode,
    save_hedge_mode,
    save_symbol_setup,
    symbol_setups,
)
from qtrader.store.orders import orders_by_role
from qtrader.store.signals import SIGNAL_FIELDS

MAX_STEPS = 12  # lifecycle actions per signal and run (a lifecycle settles in fewer)
MAX_CLOSES = 4  # closes one reversing signal may send


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
    requeued_at: Any = None  # `qtrader requeue` restarts the TTL clock here


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
    sizing: dict[str, Any] | None = None  # domain.sizing.sizing_summary of the decision

    @property
    def notional(self) -> Decimal | None:
        """What was traded (filled quantity × average price), else what was planned."""
        if self.quantity is not None and self.avg_price is not None:
            return plain((self.quantity * self.avg_price).quantize(Decimal("0.01")))
        return self.sizing["notional"] if self.sizing else None

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
            "notional": self.notional,
            "sizing": self.sizing,
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
    halt, entry_halts = _halts(ctx, dry_run)  # entry_halts stop new entries only
    if halt is not None and dry_run:
        raise halt
    in_flight = _signals(ctx, "executing", None)
    pending = _signals(ctx, "pending", max_signals)
    if halt is not None and not in_flight and all(s.action != "CLOSE" for s in pending):
        raise halt  # nothing to protect or close: entries wait for `resume`
    if not in_flight and not pending and exchange is None:
        # idle: the exchange (and ccxt, ~0.3 s to import) is not opened; keys and the live
        # confirmation are still checked, so a bad set-up fails now, not at the next signal
        check_exchange_access(ctx.settings, ctx.yes_live)
        where = "PAPER" if ctx.mode == "paper" else ctx.settings.exchange.name
        header = f"execute · {ctx.mode.upper()} · exchange {where} · nothing pending"
        return _result(None, [], header, dry_run)
    exchange = exchange or open_exchange(ctx.settings, ctx.yes_live, store=ctx.store)
    header = f"execute · {ctx.mode.upper()} · exchange {exchange.host}"
    logger.info(header)
    if not in_flight and not pending:
        return _result(exchange, [], header, dry_run)
    run = _Execution(ctx, exchange, dry_run)
    run.halt = halt
    run.entry_halts = entry_halts
    with deferred_interrupts() as interrupted:
        try:
            run.prepare(refresh_markets)
            outcomes = [run.resume(signal) for signal in in_flight if not interrupted()]
            outcomes += run.handle_pending(pending, interrupted)
        finally:
            run.commit()
    result = _result(exchange, outcomes, header, dry_run)
    if interrupted():
        raise KeyboardInterrupt(f"stopped by {interrupted()} after protecting what had filled")
    if run.halt is not None and result.exit_code == ExitCode.OK:  # a failure outranks a halt
        result.exit_code, result.outcome, result.error = ExitCode.HALTED, "halted", str(run.halt)
    return result


def _halts(ctx: RunContext, dry_run: bool) -> tuple[Halted | None, list]:
    """A halt that stops everything (raised, for exit 3 at the end), and the halts that stop
    new entries only (exchange_unhealthy)."""
    try:
        return None, refuse_if_halted(ctx, dry_run)
    except Halted as halt:
        return halt, []


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
        self.sender = OrderSender(exchange, self.batch, ctx.now)
        self.grace_s = float(ctx.settings.exchange.unknown_order_grace_s)
        self.halt: Halted | None = None  # new entries wait; protection and closes go on
        self._resuming: set[int] = set()  # signals a previous run left in flight
        self.sizing: dict[int, dict[str, Any]] = {}  # signal seq → sizing_summary, for output
        self.entry_halts: list = []  # halts that stop new entries only (exchange_unhealthy)

    # --- once per run --------------------------------------------------------------------

    def prepare(self, refresh_markets: bool) -> None:
        ttl = self.settings.exchange.markets_ttl_s
        self.rules = load_markets(self.store, self.exchange, self.mode, ttl, refresh_markets)
        # read before the first request: each visit to the file after one costs a reopen
        hedge = None if refresh_markets else cached_hedge_mode(self.store, self.mode, ttl)
        self.setups = symbol_setups(self.store, self.mode)
        self.exchange.sync_clock()
        if hedge is None:
            hedge = self.exchange.hedge_mode()
            save_hedge_mode(self.store, self.mode, hedge)
        self.hedge = hedge
        self.account = self.exchange.account()
        self.state = account_state(self.ctx, self.account)
        try:
            would_trip = trip_breakers(self.ctx, self.state, self.limits, self.batch, self.dry_run)
        except Halted as halt:  # tripped now: entries wait, protection and closes go on
            self.halt, would_trip = halt, None
        if would_trip or self.entry_halts:
            why = would_trip or halted_message(self.entry_halts)
            self.state = replace(self.state, halted=why)

    def commit(self) -> None:
        self._remember_position_mode()
        self.batch.exchange_calls(self.exchange.journal())
        self.batch.commit(self.store)

    def _remember_position_mode(self) -> None:
        """The adapter re-read the position mode after a -4061: cache it, and use it."""
        refreshed = getattr(self.exchange, "refreshed_hedge_mode", None)
        if refreshed is None or refreshed == self.hedge:
            return
        was = "hedge" if self.hedge else "one-way"
        now = "hedge" if refreshed else "one-way"
        self._event(
            "position_mode_changed",
            "warning",
            None,
            f"the account's position mode changed from {was} to {now} (-4061); re-read and cached",
            {"hedge": refreshed},
        )
        self.hedge = refreshed
        save_hedge_mode(self.store, self.mode, refreshed)

    # --- pending signals: decide all, commit the entries, then send ----------------------

    def handle_pending(
        self, signals: list[SignalRow], interrupted: Callable[[], str | None]
    ) -> list[Outcome]:
        outcomes: dict[int, Outcome] = {}
        accepted: list[tuple[SignalRow, Plan]] = []
        for signal in signals:
            if self.halt is not None and signal.action != "CLOSE":
                outcomes[signal.seq] = Outcome(signal, "pending", f"waits: {self.halt}")
                continue
            try:
                accepted.append((signal, self._decide(signal)))
            except _Abort as abort:
                outcomes[signal.seq] = abort.outcome
            except (ExchangeRejected, ExchangeUnavailable) as exc:  # e.g. the mark price read
                reason = f"could not be decided: {exc}; stays pending, tried next run"
                outcomes[signal.seq] = Outcome(signal, "pending", reason, failure=True)
        if self.dry_run:
            outcomes |= {s.seq: self._would(s, plan) for s, plan in accepted}
            return [self._with_sizing(outcomes[s.seq]) for s in signals]
        entries = self._write_entries(
            [(s, p) for s, p in accepted if isinstance(p, EntryPlan)], outcomes
        )
        self.commit()  # every entry row is durable before the first entry is sent
        todo = [(s, p) for s, p in accepted if s.seq not in outcomes]
        try:
            for signal, plan in todo:
                if interrupted():
                    break
                outcomes[signal.seq] = self._guarded(
                    signal, lambda s=signal, p=plan: self._run(s, p, entries)
                )
        finally:
            for signal, _ in todo:
                if signal.seq not in outcomes:
                    outcomes[signal.seq] = self._not_sent(signal, entries.get(signal.seq))
        return [self._with_sizing(outcomes[s.seq]) for s in signals]

    def _with_sizing(self, outcome: Outcome) -> Outcome:
        outcome.sizing = self.sizing.get(outcome.signal.seq)
        return outcome

    def _run(self, signal: SignalRow, plan: Plan, entries: dict[int, str]) -> Outcome:
        if isinstance(plan, ClosePlan):
            return self._close(signal, plan.role, plan.prefix)
        return self._drive_entry(signal, {Role.ENTRY: entries[signal.seq]})

    def _not_sent(self, signal: SignalRow, entry: str | None) -> Outcome:
        """The run stopped before this signal was sent: it is queued again, as it was. One
        whose entry may have left is not: the next run looks it up."""
        if entry is not None and self.sender.facts[entry].sends > 0:
            reason = "the run stopped while its entry was sent; the next run looks it up"
            return Outcome(signal, "executing", reason, orders=[entry], failure=True)
        if entry is not None:
            self.sender.not_sent(entry)
        reason = "not sent: the run stopped before it; queued again"
        self._set_status(signal, "pending", reason)
        return Outcome(signal, "pending", reason)

    def _decide(self, signal: SignalRow) -> Plan:
        """An EntryPlan, a ClosePlan (CLOSE, opposite close, reverse), or _Abort with the
        final outcome. Every decision is recorded with the rule and numbers behind it."""
        if signal.action == "HOLD":
            self._finish(signal, "skipped", "HOLD: nothing to do", "skip", {"rule": "hold"})
        if self._expired(signal):
            age = self._age_s(signal)
            reason = (
                f"signal is {age:.0f} s old; signal_ttl_s is {self.settings.risk.signal_ttl_s}; "
                f"qtrader requeue {signal.signal_id} puts it back with a fresh clock"
            )
            self._finish(
                signal, "expired", reason, "expire", {"rule": "signal_ttl_s", "age_s": age}
            )
        rules = self._rules_for(signal)
        if signal.action == "CLOSE":
            return ClosePlan(CloseKind.SIGNAL)
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
        if "sizing" in decision.numbers:
            self.sizing[signal.seq] = sizing_summary(decision.numbers, None)
        detail = {"rule": decision.rule, **decision.numbers, "price": price}
        if decision.outcome == "reject":
            self._finish(
                signal, "rejected", f"{decision.rule}: {decision.reason}", "reject", detail
            )
        if decision.outcome == "skip":
            self._finish(signal, "skipped", f"{decision.rule}: {decision.reason}", "skip", detail)
        if decision.outcome == "close":
            return ClosePlan(CloseKind.OPPOSITE)
        if decision.outcome == "reverse":
            return ClosePlan(CloseKind.REVERSE)
        return self._plan(signal, rules, decision, price, stop)

    def _plan(
        self, signal: SignalRow, rules: MarketRules, decision: Any, price: Decimal, stop: Decimal
    ) -> EntryPlan:
        assert self.state is not None and decision.notional is not None
        try:
            quantity = order_quantity(decision.notional, price, rules)
        except SizingRejected as exc:
            self._reject(signal, "min_order", str(exc), {**decision.numbers, "price": price})
        self._check_notional_at_mark(signal, quantity, rules, {**decision.numbers, "price": price})
        self.sizing[signal.seq] = sizing_summary(decision.numbers, quantity * price)
        leverage = decision.leverage
        margin = quantity * price / leverage
        target = take_profit_price_for(
            signal.action,
            price,
            signal.take_profit,
            self.settings.risk.default_take_profit_pct,
            rules,
        )
        record = {
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
            "take_profit_estimate": target,
            "hedge_mode": self.hedge,
        }
        self.state = self.state.with_entry(signal.symbol, signal.action, quantity * price, margin)
        return EntryPlan(quantity, price, leverage, stop, target, record)

    def _check_notional_at_mark(
        self, signal: SignalRow, quantity: Decimal, rules: MarketRules, detail: dict
    ) -> None:
        """Binance checks the minimum notional of a MARKET order at the mark price, not at
        the signal's price: a size at the limit would be refused there (-4164)."""
        if signal.entry_price is None or rules.min_notional is None:
            return  # sized at the mark already
        mark = self._mark_price(signal)
        if quantity * mark < rules.min_notional:
            self._reject(
                signal,
                "min_order",
                f"{quantity} {signal.symbol} is worth {plain(quantity * mark)} at the mark "
                f"price {mark}, under the {rules.min_notional} USDT minimum Binance checks at "
                "the mark; raise position_size_usd",
                {**detail, "mark_price": mark},
            )

    def _drift_mark(self, signal: SignalRow) -> Decimal | None:
        """The current mark price, when the drift guard needs it (one request per run)."""
        if self.limits.max_price_drift_pct is None or signal.entry_price is None:
            return None
        if self.marks is None:
            self.marks = self.exchange.mark_prices()
        return self.marks.get(signal.symbol)

    def _would(self, signal: SignalRow, plan: Plan) -> Outcome:
        if isinstance(plan, ClosePlan) and plan.kind is not CloseKind.SIGNAL:
            return Outcome(signal, f"would {plan.kind.value.replace('_', ' ')}", None)
        if isinstance(plan, ClosePlan):
            assert self.account is not None
            position = self.account.position(signal.symbol)
            if position is None:
                return Outcome(signal, "would be skipped", f"no open position on {signal.symbol}")
            return Outcome(signal, "would close", None, position.qty)
        return Outcome(
            signal,
            "would execute",
            None,
            plan.quantity,
            plan.price,
            plan.stop_estimate,
            plan.take_profit_estimate,
        )

    def _write_entries(
        self, accepted: list[tuple[SignalRow, EntryPlan]], outcomes: dict[int, Outcome]
    ) -> dict[int, str]:
        """Set every symbol up first, then write the entry rows: a run stopped while setting
        up (a ban) has written no entry that could later look sent."""
        cids = {s.seq: client_order_id(s.signal_id, Role.ENTRY) for s, _ in accepted}
        existing = existing_rows(self.store, list(cids.values()))
        ready = []
        for signal, plan in accepted:
            cid = cids[signal.seq]
            if existing.get(cid, OrderStatus.NOT_SENT.value) != OrderStatus.NOT_SENT.value:
                reason = f"its entry {cid} was already written ({existing[cid]}); not sent again"
                outcomes[signal.seq] = self._finish_quietly(signal, "rejected", reason, plan.record)
                continue
            try:
                self._set_up_symbol(signal.symbol, plan.leverage)
            except ExchangeRejected as exc:
                reason = f"could not set leverage/margin mode ({exc.code}): {exc.reason}"
                outcomes[signal.seq] = self._finish_quietly(signal, "rejected", reason, plan.record)
                continue
            except ExchangeUnavailable as exc:
                reason = f"could not set leverage/margin mode: {exc}; stays pending, tried next run"
                outcomes[signal.seq] = Outcome(signal, "pending", reason, failure=True)
                continue
            ready.append((signal, plan))
        entries = {}
        for signal, plan in ready:
            cid = cids[signal.seq]
            self.batch.decision(signal.seq, "accept", None, plan.record)
            request = self._request_for(signal, Role.ENTRY, cid, signal.action, plan.quantity)
            self.sender.write(request, Role.ENTRY, signal.seq, signal.signal_id, cid in existing)
            self.batch.set_signal_status(signal.seq, "executing", None)
            entries[signal.seq] = cid
        return entries

    # --- the lifecycle of a BUY/SELL signal ----------------------------------------------

    def _drive_entry(self, signal: SignalRow, cids: dict[Role, str]) -> Outcome:
        """Carry out the lifecycle's actions until it finishes or has to wait."""
        for _ in range(MAX_STEPS):
            facts = self._entry_facts(signal, cids)
            action = next_entry_action(facts, self.grace_s)
            if isinstance(action, Finish | Wait):
                return self._entry_outcome(signal, cids, facts, action)
            self._carry_out(signal, cids, action, facts)
        return self._entry_outcome(
            signal, cids, self._entry_facts(signal, cids), Wait("lifecycle did not settle")
        )

    def _entry_facts(self, signal: SignalRow, cids: dict[Role, str]) -> EntrySignal:
        known = {role: self.sender.facts[cid] for role, cid in cids.items()}
        entry = known.get(Role.ENTRY)
        facts = EntrySignal(
            signal.action,
            entry,
            known.get(Role.STOP_LOSS),
            known.get(Role.TAKE_PROFIT),
            known.get(Role.EXIT),
        )
        if entry is None or entry.filled_qty <= 0:
            return facts
        rules, risk = self.rules[signal.symbol], self.settings.risk
        fill = entry.avg_price or signal.entry_price
        assert fill is not None, "a filled entry has a price"
        return replace(
            facts,
            fill_price=fill,
            stop_price=stop_price_for(
                signal.action, fill, signal.stop_loss, risk.default_stop_loss_pct, rules
            ),
            target_price=take_profit_price_for(
                signal.action, fill, signal.take_profit, risk.default_take_profit_pct, rules
            ),
        )

    def _carry_out(
        self, signal: SignalRow, cids: dict[Role, str], action: Action, facts: EntrySignal
    ) -> None:
        if isinstance(action, LookUp):
            cid = cids[action.role]
            if self.sender.facts[cid].status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED):
                time.sleep(float(self.settings.exchange.retry_wait_s))  # let a market order fill
            self.sender.look_up(cid)
        elif isinstance(action, GiveUp):
            self.sender.give_up(cids[action.role], action.why)
            self._event(
                "order_not_found",
                "warning",
                signal.symbol,
                action.why,
                {"client_order_id": cids[action.role], "signal_id": signal.signal_id},
            )
        elif isinstance(action, Send):
            if action.role in cids:
                self.sender.send(cids[action.role])
                return
            cids[action.role] = self._write_protective(signal, action, facts)
            if signal.seq not in self._resuming:
                self.sender.send(cids[action.role])
            # resumed: an earlier run may have sent it unrecorded; the lifecycle looks it up
        else:  # pragma: no cover - the lifecycle returns no other action for an entry
            raise AssertionError(action)

    def _write_protective(self, signal: SignalRow, action: Send, facts: EntrySignal) -> str:
        """The row of a stop, target or emergency close (sent without a commit first: a
        resumed signal looks every protective order up by client id before sending it)."""
        assert action.qty is not None
        cid = client_order_id(signal.signal_id, action.role)
        side = closing_side(signal.action)
        request = self._request_for(signal, action.role, cid, side, action.qty, action.trigger)
        resumed = signal.seq in self._resuming
        self.sender.write(request, action.role, signal.seq, signal.signal_id, maybe_sent=resumed)
        if action.role is Role.EXIT:
            why = _stop_failure(facts)
            self._event(
                "stop_loss_failed",
                "critical",
                signal.symbol,
                f"stop-loss could not be placed ({why}); closing the position at once",
                {"signal_id": signal.signal_id, "exit_order": cid},
            )
        return cid

    def _entry_outcome(
        self,
        signal: SignalRow,
        cids: dict[Role, str],
        facts: EntrySignal,
        action: Finish | Wait,
    ) -> Outcome:
        entry = facts.entry
        outcome = Outcome(
            signal,
            action.status if isinstance(action, Finish) else "executing",
            action.why,
            entry.filled_qty if entry and entry.filled_qty > 0 else None,
            facts.fill_price,
            facts.stop_price,
            facts.target_price,
            orders=list(cids.values()),
            failure=action.failure,
        )
        if isinstance(action, Wait):
            self._event(
                "order_outcome_unknown",
                "critical",
                signal.symbol,
                f"{signal.signal_id}: {action.why}",
                {"orders": outcome.orders},
            )
        elif action.why and action.why.startswith("take-profit"):
            self._event(
                "take_profit_failed",
                "warning",
                signal.symbol,
                action.why,
                {"signal_id": signal.signal_id},
            )
        self._set_status(signal, outcome.status, action.why)
        return outcome

    # --- CLOSE signals -------------------------------------------------------------------

    def _close(self, signal: SignalRow, role: Role, prefix: str = "") -> Outcome:
        """Close the symbol's position (reduce-only market), sized from a fresh read of the
        account; cancel its protection only once the leg is flat. A reversing close leaves
        the signal pending: it enters on the next run, sized on a fresh account read."""
        position = self.exchange.account().position(signal.symbol)
        if position is None:
            reason = f"no open position on {signal.symbol}"
            self._finish(signal, "skipped", reason, "skip", {"rule": "no_position"})
        assert position is not None
        self.batch.decision(
            signal.seq,
            "accept",
            prefix + "close position",
            {"position_qty": position.qty, "position_side": position.side},
        )
        cid = self._next_close_id(signal, role)
        request = self._request_for(
            signal, role, cid, closing_side(position.side), position.qty, leg=position.position_side
        )
        self.sender.write(request, role, signal.seq, signal.signal_id)
        self.batch.set_signal_status(signal.seq, "executing", None)
        self.commit()  # the exit row is durable before it is sent
        return self._drive_close(signal, role, cid, position.qty, prefix, sent_now=True)

    def _drive_close(
        self,
        signal: SignalRow,
        role: Role,
        cid: str,
        qty_now: Decimal | None,
        prefix: str = "",
        sent_now: bool = False,
    ) -> Outcome:
        """`qty_now`: the leg's quantity as last read (before this close, when sent now)."""
        cancelled: list[str] = []
        for _ in range(MAX_STEPS):
            facts = self.sender.facts[cid]
            left = qty_now
            if sent_now and facts.filled_qty > 0 and qty_now is not None:
                left = max(Decimal(0), qty_now - facts.filled_qty)
            action = next_close_action(CloseSignal(role, facts, left), self.grace_s)
            if isinstance(action, Send):
                self.sender.send(cid)
            elif isinstance(action, LookUp):
                self.sender.look_up(cid)
            elif isinstance(action, GiveUp):
                self.sender.give_up(cid, action.why)
            elif isinstance(action, CancelProtection):
                cancelled = self._cancel_leg_protection(signal.symbol, self.sender.requests[cid])
                action = after_protection_cancelled(role, facts.filled_qty)
                break
            else:
                break
        else:
            action = Wait("lifecycle did not settle")
        facts = self.sender.facts[cid]
        status = action.status if isinstance(action, Finish) else "executing"
        why = prefix + (action.why or "")
        if cancelled:
            why += f"; cancelled {len(cancelled)} protective order(s)"
        self._set_status(signal, status, why)
        return Outcome(
            signal,
            "reversing" if status == "pending" else status,
            why,
            facts.filled_qty or None,
            facts.avg_price,
            orders=[cid, *cancelled],
            failure=action.failure,
        )

    def _next_close_id(self, signal: SignalRow, role: Role) -> str:
        """A reversal may need a second close (the first left part of the position): each
        close of a signal gets its own client id, never one already used."""
        taken = set(
            existing_rows(
                self.store, [client_order_id(signal.signal_id, role, n) for n in range(MAX_CLOSES)]
            )
        )
        for attempt in range(MAX_CLOSES):
            cid = client_order_id(signal.signal_id, role, attempt)
            if cid not in taken:
                return cid
        self._reject(signal, "close", f"closed {MAX_CLOSES} times already; close it by hand")
        raise AssertionError("unreachable")

    def _cancel_leg_protection(self, symbol: str, close: OrderRequest) -> list[str]:
        """Cancel what protected the leg this close flattened. A failure is recorded and
        left to reconcile (which cancels orphans): the position is already closed."""
        leg = close.position_side or "BOTH"
        try:
            book = [resting_order(o) for o in self.exchange.open_orders(symbol, conditional=True)]
        except (ExchangeRejected, ExchangeUnavailable) as exc:
            self._event(
                "protection_not_cancelled",
                "warning",
                symbol,
                f"could not read the open stops: {exc}; reconcile cancels them",
                {},
            )
            return []
        cancelled = []
        for order in book:
            if order.symbol != symbol or order.position_side != leg or not order.reduces:
                continue
            try:
                self.exchange.cancel_order(symbol, order.exchange_order_id, conditional=True)
            except (ExchangeRejected, ExchangeUnavailable) as exc:
                self._event(
                    "protection_not_cancelled",
                    "warning",
                    symbol,
                    f"cancel {order.client_order_id} failed: {exc}; reconcile retries",
                    {},
                )
                continue
            cancelled.append(order.client_order_id)
            self.batch.update_order(order.client_order_id, status=OrderStatus.CANCELED.value)
        return cancelled

    # --- resuming signals a previous run left in flight ----------------------------------

    def resume(self, signal: SignalRow) -> Outcome:
        try:
            return self._guarded(signal, lambda: self._resume(signal))
        finally:
            self.commit()

    def _resume(self, signal: SignalRow) -> Outcome:
        self._resuming.add(signal.seq)
        rows = orders_by_role(self.store, signal.seq)
        for role_rows in rows.values():
            for row in role_rows:
                self.sender.track(row, row.request())
        if Role.ENTRY.value not in rows:
            for role in (Role.EXIT, Role.REVERSE_EXIT):
                if role.value in rows:
                    last = rows[role.value][-1]
                    position = self.account.position(signal.symbol) if self.account else None
                    qty = position.qty if position else None
                    return self._drive_close(signal, role, last.client_order_id, qty)
        cids = {Role(role): role_rows[-1].client_order_id for role, role_rows in rows.items()}
        return self._drive_entry(signal, cids)

    def _guarded(self, signal: SignalRow, work: Callable[[], Outcome]) -> Outcome:
        """One signal's trouble never stops the others: an exchange error that escapes the
        lifecycle is this signal's outcome, and the signal stays where it is."""
        try:
            return work()
        except _Abort as abort:
            return abort.outcome
        except (ExchangeRejected, ExchangeUnavailable) as exc:
            status = self.batch.signal_status(signal.seq) or signal.status
            reason = f"stopped by an exchange error: {exc}; {status}, tried again next run"
            self._event(
                "signal_interrupted", "warning", signal.symbol, f"{signal.signal_id}: {reason}", {}
            )
            return Outcome(signal, status, reason, failure=True)

    # --- checks and sizing ---------------------------------------------------------------

    def _rules_for(self, signal: SignalRow) -> MarketRules:
        rules = self.rules.get(signal.symbol)
        if rules is None:
            self._reject(
                signal,
                "market",
                f"{signal.symbol} is not a listed USDⓈ-M perpetual on {self.exchange.host}; "
                "check the symbol (execute --refresh-markets reloads the list)",
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
                signal,
                "price",
                f"no price for {signal.symbol}: the signal has none and the exchange gave no "
                "mark price; give the signal an entry_price",
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

    def _request_for(
        self,
        signal: SignalRow,
        role: Role,
        cid: str,
        side: str,
        qty: Decimal,
        trigger: Decimal | None = None,
        leg: str | None = None,
    ) -> OrderRequest:
        """The request for one of the signal's orders. One-way mode: everything but the entry
        is reduce-only. Hedge mode: the leg (positionSide) says which position it acts on."""
        self._remember_position_mode()
        position_side = None
        if self.hedge:
            opened_by = signal.action if role is Role.ENTRY else closing_side(side)
            position_side = (
                leg if leg not in (None, "BOTH") else ("LONG" if opened_by == "BUY" else "SHORT")
            )
        kind = role.value if role in (Role.STOP_LOSS, Role.TAKE_PROFIT) else "market"
        return OrderRequest(
            symbol=signal.symbol,
            side=side,
            quantity=qty,
            client_order_id=cid,
            reduce_only=role is not Role.ENTRY,  # hedge mode: sent as positionSide instead
            position_side=position_side,
            trigger_price=trigger,
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
        clock_start = signal.requeued_at or signal.signal_ts or signal.received_at
        return (self.ctx.now() - clock_start).total_seconds()

    def _expired(self, signal: SignalRow) -> bool:
        return self._age_s(signal) > self.settings.risk.signal_ttl_s


def _result(
    exchange: Exchange | None, outcomes: list[Outcome], header: str, dry_run: bool
) -> Result:
    host = exchange.host if exchange is not None else None
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
        "notional",
        "sizing",
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
            o.notional,
            describe_sizing(o.sizing),
            o.reason or " ".join(o.orders),
        ]
        for o in outcomes
    ]
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    result = Result(
        data={
            "exchange": host,
            "dry_run": dry_run,
            "counts": counts,
            "signals": [o.as_dict() for o in outcomes],
        },
        tables=[Table("signals" + (" (dry run: nothing sent)" if dry_run else ""), columns, rows)],
        lines=[header + (" · DRY RUN" if dry_run else "")],
        summary={"counts": counts, "exchange": host, "dry_run": dry_run},
    )
    if failed:
        result.exit_code, result.outcome = ExitCode.FAILURE, "failed"
        result.error = "; ".join(f"{o.signal.signal_id}: {o.reason}" for o in failed)
    return result


def _stop_failure(facts: EntrySignal) -> str:
    if facts.stop is not None and facts.stop.error:
        return facts.stop.error
    return f"filled at {facts.fill_price}, already beyond the stop {facts.stop_price}"
