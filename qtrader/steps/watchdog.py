"""The protection watchdog, run by reconcile: every open position ends the run with exactly one
stop-loss on the exchange that covers it (and its take-profit, if it had one).

- a missing stop is placed (at the position's intended stop, else the default distance from
  the entry); if that price is already crossed, the position is closed instead;
- a stop whose quantity no longer matches the position (after a partial close) is replaced;
- duplicate stops are cancelled;
- reduce-only stops and targets whose position is gone (orphans) are cancelled;
- positions held longer than `reconcile.max_holding_s` are closed (time exit).
Every repair is an event; every order placed has its row written before it is sent.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from loguru import logger

from qtrader.domain.numbers import plain
from qtrader.domain.orders import OrderStatus, Role, client_order_id, closing_side
from qtrader.domain.sizing import protection_is_valid, round_toward_entry
from qtrader.exchange.port import (
    Exchange,
    ExchangeRejected,
    ExchangeUnavailable,
    OrderReport,
    OrderRequest,
    PositionDetail,
)
from qtrader.steps import RunContext
from qtrader.steps.sending import send_recorded
from qtrader.store.batch import WriteBatch

STOP_TYPES = ("STOP_MARKET", "STOP")
TARGET_TYPES = ("TAKE_PROFIT_MARKET", "TAKE_PROFIT")


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
        self.repairs: list[dict[str, Any]] = []

    def run(self, details: list[PositionDetail], open_algo: list[OrderReport]) -> list[dict]:
        positions = self._local_positions()
        covered: set[str] = set()
        for detail in details:
            key = (detail.symbol, detail.position_side)
            mine = [o for o in open_algo if _protects(o, detail)]
            covered |= {o.client_order_id for o in mine}
            position = positions.get(key, {})
            if self._time_exit(detail, position, mine):
                continue
            self._keep_one_stop(detail, position, [o for o in mine if _kind(o) in STOP_TYPES])
            self._keep_target(detail, position, [o for o in mine if _kind(o) in TARGET_TYPES])
        for order in open_algo:
            if order.client_order_id not in covered and _reduces(order):
                self._cancel(order, "orphan_cancelled", "its position is gone")
        self.batch.commit(self.ctx.store)
        return self.repairs

    # --- the rules -----------------------------------------------------------------------

    def _keep_one_stop(
        self, detail: PositionDetail, position: dict, stops: list[OrderReport]
    ) -> None:
        good = [s for s in stops if _covers(s, detail)]
        for stale in [s for s in stops if not _covers(s, detail)]:
            self._cancel(
                stale, "stop_resized", f"its quantity {_qty(stale)} != position {detail.qty}"
            )
        for duplicate in good[1:]:
            self._cancel(duplicate, "duplicate_stop_cancelled", "a second stop for one position")
        if not good:
            self._place_stop(detail, position)

    def _keep_target(
        self, detail: PositionDetail, position: dict, targets: list[OrderReport]
    ) -> None:
        for duplicate in targets[1:]:
            self._cancel(
                duplicate, "duplicate_target_cancelled", "a second target for one position"
            )
        intended = position.get("take_profit")
        if targets or intended is None:
            return
        if not protection_is_valid(closing_side(detail.side), detail.mark_price, intended):
            return  # the target is already crossed: the position is at a profit, leave it
        self._place(detail, position, Role.TAKE_PROFIT, Decimal(intended), "take_profit_replaced")

    def _place_stop(self, detail: PositionDetail, position: dict) -> None:
        settings = self.ctx.settings.risk
        stop = position.get("stop_loss")
        if stop is None:
            distance = settings.default_stop_loss_pct / 100
            raw = detail.entry_price * (1 - distance if detail.side == "BUY" else 1 + distance)
            stop = round_toward_entry(raw, detail.side, "stop_loss", self._tick(detail.symbol))
        stop = Decimal(stop)
        if not protection_is_valid(detail.side, detail.mark_price, stop):
            self._close(
                detail,
                position,
                "stop_crossed_closed",
                f"stop {plain(stop)} is already crossed (mark {detail.mark_price})",
            )
            return
        self._place(detail, position, Role.STOP_LOSS, stop, "stop_replaced")

    def _time_exit(
        self, detail: PositionDetail, position: dict, protective: list[OrderReport]
    ) -> bool:
        limit = self.ctx.settings.reconcile.max_holding_s
        opened = position.get("opened_at")
        if limit is None or opened is None:
            return False
        age = (self.ctx.now() - opened).total_seconds()
        if age < limit:
            return False
        if self._close(
            detail, position, "time_exit", f"held {age:.0f} s; max_holding_s is {limit}"
        ):
            self.ctx.store.execute(
                "UPDATE positions SET exit_reason = 'time_exit' WHERE position_id = ?",
                [position["position_id"]],
            )
            for order in protective:
                self._cancel(order, "time_exit_cancelled", "its position was closed for time")
        return True

    # --- actions -------------------------------------------------------------------------

    def _place(
        self, detail: PositionDetail, position: dict, role: Role, trigger: Decimal, event: str
    ) -> None:
        key = f"position:{position.get('position_id')}:{detail.symbol}:{detail.position_side}"
        cid = client_order_id(f"{key}:run:{self.ctx.run_id}", role)
        request = _closing_request(detail, cid, role.value, trigger)
        what = f"{role.value} at {plain(trigger)} for {detail.qty}"
        self._send(request, role, position, event, what)

    def _close(self, detail: PositionDetail, position: dict, event: str, why: str) -> bool:
        cid = client_order_id(
            f"close:{detail.symbol}:{detail.position_side}:run:{self.ctx.run_id}", Role.EXIT
        )
        request = _closing_request(detail, cid, "market", None)
        return self._send(request, Role.EXIT, position, event, f"closed {detail.qty}: {why}")

    def _send(
        self, request: OrderRequest, role: Role, position: dict, event: str, what: str
    ) -> bool:
        report, error = send_recorded(
            self.ctx, self.batch, self.exchange, request, role, position.get("signal_seq")
        )
        if report is None:
            self._repair(
                event, request.symbol, f"{what} FAILED: {error}", ok=False, severity="critical"
            )
            return False
        self._repair(event, request.symbol, what, ok=True)
        return True

    def _cancel(self, order: OrderReport, event: str, why: str) -> None:
        assert order.symbol is not None and order.exchange_order_id is not None
        try:
            self.exchange.cancel_order(order.symbol, order.exchange_order_id, conditional=True)
        except (ExchangeRejected, ExchangeUnavailable) as exc:
            self._repair(
                event, order.symbol, f"cancel {order.client_order_id} FAILED: {exc}", ok=False
            )
            return
        self.batch.update_order(order.client_order_id, status=OrderStatus.CANCELED.value)
        self._repair(event, order.symbol, f"cancelled {order.client_order_id}: {why}", ok=True)

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


def _closing_request(
    detail: PositionDetail, cid: str, kind: str, trigger: Decimal | None
) -> OrderRequest:
    """An order that reduces this position: reduce-only in one-way mode, its leg in hedge mode."""
    one_way = detail.position_side == "BOTH"
    return OrderRequest(
        symbol=detail.symbol,
        side=closing_side(detail.side),
        quantity=detail.qty,
        client_order_id=cid,
        reduce_only=one_way,
        position_side=None if one_way else detail.position_side,
        trigger_price=trigger,
        kind=kind,
    )


def _kind(order: OrderReport) -> str:
    return str(order.raw.get("orderType") or order.raw.get("type") or "")


def _reduces(order: OrderReport) -> bool:
    return bool(order.raw.get("reduceOnly") or order.raw.get("closePosition"))


def _protects(order: OrderReport, detail: PositionDetail) -> bool:
    same_side = order.raw.get("side") == closing_side(detail.side)
    same_leg = order.raw.get("positionSide", "BOTH") == detail.position_side
    hedge_leg = detail.position_side != "BOTH" and same_leg
    return (
        order.symbol == detail.symbol and same_side and same_leg and (_reduces(order) or hedge_leg)
    )


def _qty(order: OrderReport) -> Decimal:
    return Decimal(str(order.raw.get("quantity") or order.raw.get("origQty") or "0"))


def _covers(order: OrderReport, detail: PositionDetail) -> bool:
    return bool(order.raw.get("closePosition")) or _qty(order) == detail.qty
