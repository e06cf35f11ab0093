"""Positions from the exchange's fills ledger (pure): invariant 8.

One symbol's fills, per leg (`BOTH` in one-way mode, `LONG`/`SHORT` in hedge mode), taken in
the exchange's order (its timestamp, then its trade id), move a running net quantity
(BUY +, SELL −):

- a fill from zero opens a position; a return to exactly zero closes it;
- a fill that crosses zero closes one position and opens the next: its quantity is split
  into the part that closed (all of the fill's realized PnL, and its share of the fee, pro
  rata to quantity, rounded to 1e-8) and the part that opened (the rest of the fee);
- a quantity held before the ledger's first fill (a position opened before the window the
  exchange still returns) is carried in as an opening balance.

Every fill therefore belongs to exactly one position (a flip's two parts to two), and the
sum over positions of quantity, fee and realized PnL is the sum over the ledger.

Funding rows carry a symbol and a time, no leg: each belongs to the symbol's position open
at its time (when the symbol is flat, to the last one opened before it, which closed
between the funding instant and the moment the row was booked; before the first position,
to the first one). With two hedge legs open at once it goes to the one opened last.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

FEE_QUANTUM = Decimal("1e-8")
ZERO = Decimal(0)


@dataclass(frozen=True)
class LedgerFill:
    trade_id: str
    order_id: str
    side: str  # BUY | SELL
    qty: Decimal  # > 0
    price: Decimal
    fee: Decimal  # paid (positive)
    realized_pnl: Decimal
    ts: datetime  # the exchange's time
    position_side: str = "BOTH"


@dataclass(frozen=True)
class Funding:
    key: str  # the income row's tran id
    amount: Decimal  # signed: positive = received
    ts: datetime


@dataclass(frozen=True)
class Opening:
    """A quantity held before the ledger's first fill (signed: > 0 long)."""

    qty: Decimal
    entry_price: Decimal | None
    at: datetime


@dataclass(frozen=True)
class Part:
    """A fill's share in one position (the whole fill, or one side of a flip)."""

    trade_id: str
    order_id: str
    qty: Decimal
    price: Decimal
    fee: Decimal
    realized_pnl: Decimal
    ts: datetime
    adds: bool  # increases the position (else reduces it)


@dataclass
class Lifecycle:
    position_side: str
    side: str  # BUY (long) | SELL (short)
    opened_at: datetime
    opened_by: str  # flat | flip | carried
    carried: Decimal = ZERO  # absolute quantity carried in (opened_by == carried)
    carried_entry: Decimal | None = None
    parts: list[Part] = field(default_factory=list)
    funding: list[Funding] = field(default_factory=list)
    open_qty: Decimal = ZERO  # absolute quantity still open
    closed_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    @property
    def open_trade_id(self) -> str:
        return self.parts[0].trade_id if self.opened_by != "carried" else "carried"

    @property
    def opening_order_id(self) -> str | None:
        adds = [p for p in self.parts if p.adds]
        return adds[0].order_id if adds and self.opened_by != "carried" else None

    @property
    def closing_part(self) -> Part | None:
        return self.parts[-1] if self.closed_at is not None else None

    @property
    def qty(self) -> Decimal:
        """The quantity opened in all (carried-in plus every add)."""
        return self.carried + sum((p.qty for p in self.parts if p.adds), ZERO)

    @property
    def entry_price(self) -> Decimal | None:
        carried_entry = self.carried_entry
        if self.carried and carried_entry is None:
            carried_entry = self._implied_carried_entry()
            if carried_entry is None:
                return None
        adds = sum((p.qty * p.price for p in self.parts if p.adds), ZERO)
        notional = adds + self.carried * (carried_entry or ZERO)
        qty = self.qty
        return notional / qty if qty else None

    def _implied_carried_entry(self) -> Decimal | None:
        """A carried quantity's entry price, from what its reductions realized (exact when
        nothing was added before them): pnl = (exit − entry) × qty × direction."""
        reductions = [p for p in self.parts if not p.adds]
        qty = sum((p.qty for p in reductions), ZERO)
        if not reductions or any(p.adds for p in self.parts) or qty == 0:
            return None
        direction = 1 if self.side == "BUY" else -1
        exit_value = sum((p.qty * p.price for p in reductions), ZERO)
        pnl = sum((p.realized_pnl for p in reductions), ZERO)
        return (exit_value - direction * pnl) / qty

    @property
    def exit_price(self) -> Decimal | None:
        reductions = [p for p in self.parts if not p.adds]
        qty = sum((p.qty for p in reductions), ZERO)
        return sum((p.qty * p.price for p in reductions), ZERO) / qty if qty else None

    @property
    def realized_pnl(self) -> Decimal:
        return sum((p.realized_pnl for p in self.parts), ZERO)

    @property
    def fees(self) -> Decimal:
        return sum((p.fee for p in self.parts), ZERO)

    @property
    def funding_total(self) -> Decimal:
        return sum((f.amount for f in self.funding), ZERO)


def ledger_order(fill: LedgerFill) -> tuple:
    """The exchange's order: its time, then its trade id (numerically when it is a number)."""
    tid = fill.trade_id
    return (fill.ts, 0, int(tid), tid) if tid.isdigit() else (fill.ts, 1, 0, tid)


def lifecycles(
    fills: Iterable[LedgerFill],
    funding: Iterable[Funding] = (),
    openings: dict[str, Opening] | None = None,
) -> list[Lifecycle]:
    """One symbol's positions, every leg, oldest first, with its funding assigned."""
    by_leg: dict[str, list[LedgerFill]] = {}
    for fill in fills:
        by_leg.setdefault(fill.position_side, []).append(fill)
    openings = openings or {}
    found: list[Lifecycle] = []
    for leg in sorted(set(by_leg) | set(openings)):
        found += leg_lifecycles(leg, by_leg.get(leg, []), openings.get(leg))
    found.sort(key=lambda c: (c.opened_at, c.position_side))
    assign_funding(found, funding)
    return found


def leg_lifecycles(
    leg: str, fills: Sequence[LedgerFill], opening: Opening | None = None
) -> list[Lifecycle]:
    done: list[Lifecycle] = []
    net = ZERO
    current: Lifecycle | None = None
    if opening is not None and opening.qty != 0:
        net = opening.qty
        current = Lifecycle(leg, _side(net), opening.at, "carried", abs(net),
                            opening.entry_price, open_qty=abs(net))  # fmt: skip
    for fill in sorted(fills, key=ledger_order):
        signed = fill.qty if fill.side == "BUY" else -fill.qty
        after = net + signed
        if current is None or net == 0:
            current = Lifecycle(leg, _side(signed), fill.ts, "flat")
            current.parts.append(_part(fill, fill.qty, fill.fee, fill.realized_pnl, adds=True))
        elif (net > 0) == (signed > 0):
            current.parts.append(_part(fill, fill.qty, fill.fee, fill.realized_pnl, adds=True))
        elif after == 0 or (after > 0) == (net > 0):
            current.parts.append(_part(fill, fill.qty, fill.fee, fill.realized_pnl, adds=False))
        else:  # through zero: split the fill
            closing = abs(net)
            fee = (fill.fee * closing / fill.qty).quantize(FEE_QUANTUM, ROUND_HALF_EVEN)
            current.parts.append(_part(fill, closing, fee, fill.realized_pnl, adds=False))
            current.closed_at, current.open_qty = fill.ts, ZERO
            done.append(current)
            current = Lifecycle(leg, _side(after), fill.ts, "flip")
            current.parts.append(_part(fill, abs(after), fill.fee - fee, ZERO, adds=True))
        net = after
        current.open_qty = abs(net)
        if net == 0:
            current.closed_at = fill.ts
            done.append(current)
            current = None
    if current is not None:
        done.append(current)
    return done


def assign_funding(positions: list[Lifecycle], funding: Iterable[Funding]) -> list[Funding]:
    """Give each funding row to one position (see the module's docstring); returns the rows
    no position could take (only when there is no position at all)."""
    if not positions:
        return list(funding)
    ordered = sorted(positions, key=lambda c: (c.opened_at, c.position_side))
    started, active = 0, []  # positions opened by the row's time; those not closed by then
    for row in sorted(funding, key=lambda r: (r.ts, r.key)):
        while started < len(ordered) and ordered[started].opened_at <= row.ts:
            active.append(ordered[started])
            started += 1
        active = [c for c in active if _open_at(c, row.ts)]
        latest = ordered[started - 1] if started else ordered[0]
        owner = active[-1] if active else latest
        owner.funding.append(row)
    return []


def _open_at(position: Lifecycle, ts: datetime) -> bool:
    return position.closed_at is None or ts < position.closed_at


def _side(signed: Decimal) -> str:
    return "BUY" if signed > 0 else "SELL"


def _part(fill: LedgerFill, qty: Decimal, fee: Decimal, pnl: Decimal, adds: bool) -> Part:
    return Part(fill.trade_id, fill.order_id, qty, fill.price, fee, pnl, fill.ts, adds)


# --- why a position closed ------------------------------------------------------------------

EXIT_REASONS = ("stop_loss", "take_profit", "signal_close", "close_all", "watchdog", "time_exit",
                "liquidation", "manual")  # fmt: skip


@dataclass(frozen=True)
class ClosingOrder:
    """What qtrader knows of the order whose fill closed a position."""

    role: str  # entry | stop_loss | take_profit | exit | reverse_exit
    command: str | None  # the command whose run sent it (runs.command)
    events: tuple[str, ...] = ()  # event kinds that run recorded for the symbol


def exit_reason(closing: ClosingOrder | None, liquidated: bool = False) -> str:
    """The closing fill's order decides: one of ours (by its role, and for a market exit by
    the run that sent it), the exchange's forced order, or else someone outside qtrader."""
    if closing is None:
        return "liquidation" if liquidated else "manual"
    if closing.role in ("stop_loss", "take_profit"):
        return closing.role
    if closing.command == "close-all":
        return "close_all"
    if "time_exit" in closing.events:
        return "time_exit"
    if {"stop_crossed_closed", "stop_loss_failed"} & set(closing.events):
        return "watchdog"
    if closing.command == "reconcile":
        return "watchdog"
    return "signal_close"
