"""The protection watchdog, run by reconcile: every open position ends the run with exactly one
stop-loss on the exchange that covers it (and its take-profit, if it had one).

The rules are pure (`domain/protection.py`): a missing stop is placed at the position's
intended stop (its own, else its signal's, else the price the resting stop had, else the
default distance from the entry); a stop that no longer covers the position is replaced by
placing the new one *before* cancelling the old; duplicates are cancelled, keeping the
signal's own; a position whose stop is already crossed is closed, then its protection
cancelled; orders that can only reduce a position that is gone are cancelled; positions held
longer than `reconcile.max_holding_s` are closed. A cancel whose replacement failed is
skipped: the old stop keeps covering. Every repair is an event; every order placed has its row
written before it is sent.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from loguru import logger

from qtrader.domain.lifecycle import OrderFacts
from qtrader.domain.numbers import plain
from qtrader.domain.orders import OrderStatus, Refusal, Role, client_order_id, closing_side
from qtrader.domain.protection import (
    ClosePosition,
    Held,
    Intended,
    Kind,
    Place,
    Repair,
    Resting,
    orphans,
    repairs,
)
from qtrader.domain.sizing import round_toward_entry, stop_price_for, take_profit_price_for
from qtrader.errors import QtraderError
from qtrader.exchange.port import (
    Exchange,
    ExchangeBanned,
    ExchangeRejected,
    ExchangeUnavailable,
    OrderReport,
    OrderRequest,
    PositionDetail,
)
from qtrader.steps import RunContext
from qtrader.steps.sending import OrderSender, describe, resting_order, send_once
from qtrader.store.batch import WriteBatch

PLACED, FAILED, CLOSED = "placed", "failed", "closed"


def guard(
    ctx: RunContext,
    exchange: Exchange,
    batch: WriteBatch,
    details: list[PositionDetail],
    open_algo: list[OrderReport],
) -> list[dict[str, Any]]:
    return _Watchdog(ctx, exchange, batch).run(details, open_algo)


class _Watchdog:
    def __init__(self, ctx: RunContext, exchange: Exchange, batch: WriteBatch) -> None:
        self.ctx = ctx
        self.exchange = exchange
        self.batch = batch
        self.sender = OrderSender(exchange, batch, ctx.now)
        self.repairs: list[dict[str, Any]] = []
        self._owned: frozenset[str] | None = None
        self._book: list[Resting] = []

    def run(self, details: list[PositionDetail], open_algo: list[OrderReport]) -> list[dict]:
        positions = self._local_positions()
        book = [resting_order(o) for o in open_algo]
        self._book = book
        held = [_held(d) for d in details]
        for position_now in held:
            position = positions.get((position_now.symbol, position_now.position_side), {})
            mine = [o for o in book if position_now.protected_by(o)]
            if self._time_exit(position_now, position, mine):
                continue
            intended = self._intended(position_now, position)
            plan = repairs(position_now, book, intended, self._default_stop(position_now))
            self._carry_out(position_now, position, plan, mine)
        for cancel in orphans(held, book):
            self._cancel(cancel.order, cancel.event, cancel.why)
        self.batch.commit(self.ctx.store)
        return self.repairs

    # --- carrying out the repairs, in order ----------------------------------------------

    def _carry_out(
        self, held: Held, position: dict, plan: list[Repair], protection: list[Resting]
    ) -> None:
        failed: set[Kind] = set()
        for repair in plan:
            if isinstance(repair, Place):
                placed = self._place(held, position, repair)
                if placed == CLOSED:
                    self._cancel_all(protection)
                    return
                if placed == FAILED:
                    failed.add(repair.kind)
            elif isinstance(repair, ClosePosition):
                if not self._close(held, position, repair.event, repair.why):
                    return  # not closed: its protection stays where it is
                self._mark_exit(position, "watchdog")
            elif repair.after in failed:
                self._repair(
                    repair.event,
                    held.symbol,
                    f"kept {repair.order.client_order_id}: its replacement failed",
                    ok=False,
                )
            else:
                self._cancel(repair.order, repair.event, repair.why)

    def _cancel_all(self, protection: list[Resting]) -> None:
        for order in protection:
            self._cancel(order, "closed_protection_cancelled", "its position was closed")

    def _place(self, held: Held, position: dict, repair: Place) -> str:
        role = Role.STOP_LOSS if repair.kind is Kind.STOP else Role.TAKE_PROFIT
        key = f"position:{position.get('position_id')}:{held.symbol}:{held.position_side}"
        cid = client_order_id(f"{key}:run:{self.ctx.run_key}", role)
        request = _closing_request(held, cid, role.value, repair.trigger)
        facts = self._send(request, role, position)
        if facts.status in (OrderStatus.OPEN, OrderStatus.FILLED):
            self._repair(repair.event, held.symbol, repair.why, ok=True)
            return PLACED
        refused = facts.status is OrderStatus.REJECTED
        if role is Role.STOP_LOSS and refused and not self._still_covered(held):
            # invariant 2: the exchange will not take a stop and none covers: close
            crossed = facts.refusal is Refusal.WOULD_TRIGGER_NOW
            event = "stop_crossed_closed" if crossed else "stop_failed_closed"
            why = f"{repair.why} could not be placed ({facts.error})"
            if self._close(held, position, event, why):
                self._mark_exit(position, "watchdog")
                return CLOSED
        self._repair(repair.event, held.symbol, f"{repair.why} FAILED: {describe(facts)}", ok=False)
        return FAILED

    def _still_covered(self, held: Held) -> bool:
        """Resting stops for at least the whole position: a close-position stop, or
        reduce-only ones whose quantities add up to it (the stops of several entries into
        one position, which a resize could not replace at the exchange's order limit)."""
        stops = [o for o in self._book if o.kind is Kind.STOP and held.protected_by(o)]
        if any(o.qty is None for o in stops):
            return True
        return sum((o.qty or Decimal(0) for o in stops), Decimal(0)) >= held.qty

    def _close(self, held: Held, position: dict, event: str, why: str) -> bool:
        cid = client_order_id(
            f"close:{held.symbol}:{held.position_side}:run:{self.ctx.run_key}", Role.EXIT
        )
        request = _closing_request(held, cid, "market", None)
        facts = self._send(request, Role.EXIT, position)
        if facts.filled_qty > 0 and not facts.in_flight:
            self._repair(event, held.symbol, f"closed {facts.filled_qty}: {why}", ok=True)
            return True
        if facts.refusal is Refusal.NOTHING_TO_REDUCE:  # e.g. its stop fired after our read
            self._repair(event, held.symbol, f"already flat ({why}): nothing to close", ok=True)
            return True
        self._repair(
            event,
            held.symbol,
            f"close {held.qty} ({why}) FAILED: {describe(facts)}",
            ok=False,
            severity="critical",
        )
        return False

    def _send(self, request: OrderRequest, role: Role, position: dict) -> OrderFacts:
        try:
            return send_once(self.ctx.store, self.sender, request, role, position.get("signal_seq"))
        except ExchangeBanned:
            raise
        except QtraderError as exc:  # e.g. a symbol whose market is not loaded
            return OrderFacts(OrderStatus.REJECTED, error=str(exc))

    def _cancel(self, order: Resting, event: str, why: str) -> None:
        try:
            self.exchange.cancel_order(order.symbol, order.exchange_order_id, conditional=True)
        except (ExchangeRejected, ExchangeUnavailable) as exc:
            self._repair(
                event, order.symbol, f"cancel {order.client_order_id} FAILED: {exc}", ok=False
            )
            return
        self.batch.update_order(order.client_order_id, status=OrderStatus.CANCELED.value)
        self._repair(event, order.symbol, f"cancelled {order.client_order_id}: {why}", ok=True)

    def _time_exit(self, held: Held, position: dict, protective: list[Resting]) -> bool:
        limit = self.ctx.settings.reconcile.max_holding_s
        opened = position.get("opened_at")
        if limit is None or opened is None:
            return False
        age = (self.ctx.now() - opened).total_seconds()
        if age < limit:
            return False
        if not self._close(
            held, position, "time_exit", f"held {age:.0f} s; max_holding_s is {limit}"
        ):
            return False  # still open: it gets its protection checked like any other
        self._mark_exit(position, "time_exit")
        for order in protective:  # closed first, cancelled after
            self._cancel(order, "time_exit_cancelled", "its position was closed for time")
        return True

    # --- what the position should have ---------------------------------------------------

    def _intended(self, held: Held, position: dict) -> Intended:
        """The position's own stop and target; when its row has none (a crash between the
        entry and its stop), its signal's, at the signal's prices. Orders placed for a
        signal are the ones kept when there are two."""
        stop, target = position.get("stop_loss"), position.get("take_profit")
        signal = self._signal_of(position.get("signal_seq"))
        if signal is not None:
            _, action, signal_stop, signal_target = signal
            rules = self.exchange.market_rules(held.symbol)
            risk = self.ctx.settings.risk
            if stop is None and signal_stop is not None and rules is not None:
                stop = stop_price_for(
                    action, held.entry_price, signal_stop, risk.default_stop_loss_pct, rules
                )
            if target is None and signal_target is not None and rules is not None:
                target = take_profit_price_for(
                    action, held.entry_price, signal_target, risk.default_take_profit_pct, rules
                )
        return Intended(
            stop=plain(Decimal(stop)) if stop is not None else None,
            target=plain(Decimal(target)) if target is not None else None,
            preferred=self._signal_orders(),
        )

    def _signal_orders(self) -> frozenset[str]:
        if self._owned is None:
            rows = self.ctx.store.fetchall(
                "SELECT client_order_id FROM orders WHERE mode = ? AND signal_seq IS NOT NULL "
                "AND role IN ('stop_loss', 'take_profit') AND status = 'open'",
                [self.ctx.mode],
            )
            self._owned = frozenset(cid for (cid,) in rows)
        return self._owned

    def _signal_of(self, seq: int | None) -> tuple | None:
        if seq is None:
            return None
        return self.ctx.store.fetchone(
            "SELECT signal_id, action, stop_loss, take_profit FROM signals WHERE seq = ?", [seq]
        )

    def _default_stop(self, held: Held) -> Decimal:
        distance = self.ctx.settings.risk.default_stop_loss_pct / 100
        raw = held.entry_price * (1 - distance if held.side == "BUY" else 1 + distance)
        return round_toward_entry(raw, held.side, "stop_loss", self._tick(held.symbol))

    # --- bookkeeping ---------------------------------------------------------------------

    def _mark_exit(self, position: dict, reason: str) -> None:
        if position.get("position_id") is not None:
            self.ctx.store.execute(
                "UPDATE positions SET exit_reason = ? WHERE position_id = ?",
                [reason, position["position_id"]],
            )

    def _repair(
        self, action: str, symbol: str, detail: str, ok: bool, severity: str = "warning"
    ) -> None:
        self.repairs.append({"action": action, "symbol": symbol, "detail": detail, "ok": ok})
        self.batch.event(action, severity if ok else "critical", symbol, detail, {"ok": ok})
        logger.warning("watchdog: {} {}: {}", action, symbol, detail)

    def _tick(self, symbol: str) -> Decimal:
        rules = self.exchange.market_rules(symbol)
        return rules.tick_size if rules else Decimal("0.01")

    def _local_positions(self) -> dict[tuple[str, str], dict[str, Any]]:
        rows = self.ctx.store.fetchall(
            "SELECT position_id, symbol, position_side, stop_loss, take_profit, opened_at, "
            "signal_seq "
            "FROM positions WHERE mode = ? AND status = 'open'",
            [self.ctx.mode],
        )
        keys = (
            "position_id",
            "symbol",
            "position_side",
            "stop_loss",
            "take_profit",
            "opened_at",
            "signal_seq",
        )
        return {(r[1], r[2]): dict(zip(keys, r, strict=True)) for r in rows}


def _held(detail: PositionDetail) -> Held:
    return Held(
        detail.symbol,
        detail.side,
        detail.position_side,
        detail.qty,
        detail.entry_price,
        detail.mark_price,
    )


def _closing_request(held: Held, cid: str, kind: str, trigger: Decimal | None) -> OrderRequest:
    """An order that reduces this position: reduce-only in one-way mode, its leg in hedge mode."""
    one_way = held.position_side == "BOTH"
    return OrderRequest(
        symbol=held.symbol,
        side=closing_side(held.side),
        quantity=held.qty,
        client_order_id=cid,
        reduce_only=one_way,
        position_side=None if one_way else held.position_side,
        trigger_price=trigger,
        kind=kind,
    )
