"""The one order sender, shared by execute, the watchdog, reconcile and close-all.

Its protocol: an order's row is written (write-ahead) before the request leaves; one POST;
an unknown outcome is looked up by client id, and the lookup answers Found / NotFound /
CannotTell. What it learns about each order is kept as `OrderFacts`, the input of the pure
lifecycle rules (`domain/lifecycle.py`); every answer is also written to the order's row.

Nothing here decides what to do next: a rejection, an unknown outcome or a lookup that got
no answer are facts, not exceptions (except a ban, which stops the run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from qtrader.domain.lifecycle import OrderFacts
from qtrader.domain.orders import OrderStatus, Refusal, Role
from qtrader.domain.protection import Resting, resting_from_raw
from qtrader.exchange.port import (
    CannotTell,
    Exchange,
    ExchangeBanned,
    ExchangeRejected,
    ExchangeUnavailable,
    Found,
    Lookup,
    NotFound,
    NotSentError,
    OrderReport,
    OrderRequest,
)
from qtrader.store.batch import WriteBatch
from qtrader.store.db import Store
from qtrader.store.orders import OrderRow, request_columns

ROLE_NAMES = {
    Role.ENTRY: "entry",
    Role.STOP_LOSS: "stop-loss",
    Role.TAKE_PROFIT: "take-profit",
    Role.EXIT: "close",
    Role.REVERSE_EXIT: "close",
}


def look_up(exchange: Exchange, symbol: str, cid: str, conditional: bool) -> Lookup:
    """The order as the exchange knows it by client id. Only the exchange's own "does not
    exist" is NotFound; anything else that is not an answer is CannotTell."""
    try:
        return Found(exchange.order_by_client_id(symbol, cid, conditional))
    except ExchangeRejected as exc:
        if exc.kind == "not_found":
            return NotFound()
        return CannotTell(f"({exc.code}) {exc.exchange_message}")
    except ExchangeUnavailable as exc:
        return CannotTell(str(exc))


def resting_order(order: OrderReport) -> Resting:
    """A conditional order from the exchange's book, as the protection rules see it."""
    if order.resting is not None:
        return order.resting
    return resting_from_raw(order.client_order_id, order.exchange_order_id, order.symbol, order.raw)


def record_answer(batch: WriteBatch, cid: str, report: OrderReport) -> None:
    batch.update_order(
        cid,
        status=report.status.value,
        exchange_order_id=report.exchange_order_id,
        filled_qty=report.filled_qty,
        avg_price=report.avg_price,
        raw_response=report.raw,
        error=None,
    )


class OrderSender:
    """Sends and looks up orders for one run, recording every answer in `batch`."""

    def __init__(self, exchange: Exchange, batch: WriteBatch, now: Callable[[], datetime]) -> None:
        self.exchange = exchange
        self.batch = batch
        self.now = now
        self.facts: dict[str, OrderFacts] = {}
        self.requests: dict[str, OrderRequest] = {}
        self.roles: dict[str, Role] = {}

    # --- rows ----------------------------------------------------------------------------

    def write(
        self,
        request: OrderRequest,
        role: Role,
        signal_seq: int | None = None,
        signal_id: str | None = None,
        revive: bool = False,
        maybe_sent: bool = False,
    ) -> None:
        """The write-ahead row (committed by the caller before the request is sent).
        `revive`: the row exists, written by a run that stopped before sending it.
        `maybe_sent`: an earlier run may have sent it without writing its row (a resumed
        signal's stop or target): it is looked up before it is sent."""
        columns = request_columns(request)
        if revive:
            del columns["client_order_id"]
            self.batch.update_order(
                request.client_order_id,
                status=OrderStatus.SUBMITTING.value,
                run_id=self.batch.run_id,
                error=None,
                created_at=self.now(),  # its grace period runs from this send on
                **columns,
            )
        else:
            self.batch.add_order(
                role=role.value,
                status=OrderStatus.SUBMITTING.value,
                signal_seq=signal_seq,
                signal_id=signal_id,
                **columns,
            )
        self.requests[request.client_order_id] = request
        self.roles[request.client_order_id] = role
        if maybe_sent:
            self.facts[request.client_order_id] = OrderFacts(OrderStatus.UNKNOWN)
        else:  # not sent yet: the first send is certainly the only copy
            self.facts[request.client_order_id] = OrderFacts(
                OrderStatus.SUBMITTING, never_sent=True
            )

    def track(self, row: OrderRow, request: OrderRequest | None = None) -> OrderFacts:
        """What the stored row says, as facts (a previous run's order)."""
        facts = self.facts.get(row.client_order_id)
        if facts is None:
            facts = OrderFacts(
                OrderStatus(row.status),
                row.filled_qty,
                row.avg_price,
                age_s=(self.now() - row.created_at).total_seconds(),
                error_code=row.error_code,
                error=row.error,
                refusal=Refusal(row.refusal) if row.refusal else None,
            )
            self.facts[row.client_order_id] = facts
        if request is not None:
            self.requests[row.client_order_id] = request
        self.roles[row.client_order_id] = Role(row.role)
        return facts

    def not_sent(self, cid: str) -> None:
        """The run stops before this written order was sent: a later run may send it."""
        self.batch.update_order(cid, status=OrderStatus.NOT_SENT.value)
        self.facts[cid] = replace(self.facts[cid], status=OrderStatus.NOT_SENT)

    # --- the exchange --------------------------------------------------------------------

    def send(self, cid: str) -> OrderFacts:
        """POST once. A ban is recorded and raised; everything else becomes facts."""
        request = self.requests[cid]
        before = self.facts.get(cid, OrderFacts(OrderStatus.SUBMITTING))
        sends = before.sends + 1
        # from here on it may reach the exchange, whatever happens to this process
        before = self._set(cid, replace(before, sends=sends, never_sent=False))
        try:
            report = self.exchange.place_order(request)
        except ExchangeBanned as exc:
            self.batch.update_order(cid, status=OrderStatus.UNKNOWN.value, error=str(exc))
            self._set(cid, replace(before, status=OrderStatus.UNKNOWN, sends=sends, lookups=0))
            raise
        except ExchangeRejected as exc:
            if exc.refusal is Refusal.DUPLICATE_CLIENT_ID:  # an earlier copy landed: look it up
                return self._unknown(cid, before, sends, str(exc), never_sent=False)
            self.batch.update_order(
                cid,
                status=OrderStatus.REJECTED.value,
                error_code=exc.code,
                refusal=exc.refusal.value,
                error=exc.exchange_message,
            )
            what = ROLE_NAMES.get(self.roles.get(cid, Role.ENTRY), "order")
            error = f"exchange rejected the {what} ({exc.code}): {exc.reason}"
            facts = replace(
                before,
                status=OrderStatus.REJECTED,
                sends=sends,
                error_code=exc.code,
                refusal=exc.refusal,
                error=error,
            )
            return self._set(cid, facts)
        except ExchangeUnavailable as exc:
            return self._unknown(cid, before, sends, str(exc), isinstance(exc, NotSentError))
        record_answer(self.batch, cid, report)
        return self._set(cid, self._from_report(before, report, sends=sends))

    def look_up(self, cid: str) -> OrderFacts:
        request = self.requests[cid]
        before = self.facts[cid]
        answer = look_up(self.exchange, request.symbol, cid, request.kind != "market")
        if isinstance(answer, Found):
            record_answer(self.batch, cid, answer.report)
            return self._set(cid, self._from_report(before, answer.report, sends=before.sends))
        if isinstance(answer, NotFound):
            return self._set(cid, replace(before, lookups=before.lookups + 1, cannot_tell=None))
        self.batch.update_order(cid, error=f"lookup got no answer: {answer.reason}")
        return self._set(cid, replace(before, cannot_tell=answer.reason))

    def give_up(self, cid: str, why: str) -> OrderFacts:
        self.batch.update_order(cid, status=OrderStatus.NOT_FOUND.value, error=why)
        return self._set(cid, replace(self.facts[cid], status=OrderStatus.NOT_FOUND, error=why))

    # --- plumbing ------------------------------------------------------------------------

    def _unknown(
        self, cid: str, before: OrderFacts, sends: int, error: str, never_sent: bool
    ) -> OrderFacts:
        self.batch.update_order(cid, status=OrderStatus.UNKNOWN.value, error=error)
        facts = replace(
            before,
            status=OrderStatus.UNKNOWN,
            sends=sends,
            lookups=0,
            cannot_tell=None,
            never_sent=never_sent,
            error=error,
        )
        return self._set(cid, facts)

    @staticmethod
    def _from_report(before: OrderFacts, report: OrderReport, sends: int) -> OrderFacts:
        return replace(
            before,
            status=report.status,
            filled_qty=report.filled_qty,
            avg_price=report.avg_price,
            lookups=before.lookups + 1,
            sends=sends,
            cannot_tell=None,
            never_sent=False,
            error=None,
        )

    def _set(self, cid: str, facts: OrderFacts) -> OrderFacts:
        self.facts[cid] = facts
        return facts


def existing_rows(store: Store, cids: list[str]) -> dict[str, str]:
    """Client id → status of the rows that already exist, among `cids` (one query)."""
    if not cids:
        return {}
    rows = store.fetchall(
        "SELECT client_order_id, status FROM orders WHERE client_order_id IN "
        "(SELECT unnest(?::VARCHAR[]))",
        [cids],
    )
    return dict(rows)


def send_once(
    store: Store,
    sender: OrderSender,
    request: OrderRequest,
    role: Role,
    signal_seq: int | None = None,
) -> OrderFacts:
    """Write the row, commit it, send, and look an unknown outcome up once: for the watchdog
    and close-all, whose orders are not tied to a signal's lifecycle."""
    sender.write(request, role, signal_seq)
    sender.batch.commit(store)  # durable before it is sent
    facts = sender.send(request.client_order_id)
    if facts.in_flight and not facts.never_sent:
        facts = sender.look_up(request.client_order_id)
    return facts


def describe(facts: OrderFacts) -> str:
    if facts.in_flight:
        return f"outcome unknown ({facts.cannot_tell or facts.error or 'no answer'})"
    if facts.status is OrderStatus.REJECTED:
        return f"rejected: {facts.error}"
    return str(facts.status)
