"""The account as the risk engine sees it, and the circuit breakers, for execute and reconcile."""

from __future__ import annotations

from typing import Any

from qtrader.domain.halts import how_it_lifts, lifts_for
from qtrader.domain.risk import AccountState, Holding, RiskLimits, breakers
from qtrader.errors import Halted
from qtrader.exchange.port import Account
from qtrader.steps import RunContext
from qtrader.steps.halting import halt
from qtrader.store.batch import WriteBatch
from qtrader.store.risk_state import (
    consecutive_losses,
    entry_counts,
    equity_marks,
    last_stop_outs,
    open_entry_counts,
    record_equity,
    risk_reset_at,
)


def risk_limits(settings: Any) -> RiskLimits:
    r = settings.risk
    return RiskLimits(**{f: getattr(r, f) for f in RiskLimits.__dataclass_fields__})


def account_state(ctx: RunContext, account: Account) -> AccountState:
    """The exchange's numbers and DuckDB's history; also stores an equity snapshot."""
    store, mode, now = ctx.store, ctx.mode, ctx.now()
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    record_equity(store, mode, ctx.run_id, account.wallet_balance, account.equity)
    reset = risk_reset_at(store, mode)
    start_of_day, peak = equity_marks(store, mode, day_start, reset)
    last_hour, today = entry_counts(store, mode, now, day_start)
    entries = open_entry_counts(store, mode)
    holdings = {
        p.symbol: Holding(p.side, p.notional, entries.get(p.symbol, 1)) for p in account.positions
    }
    return AccountState(
        now=now,
        equity=account.equity,
        available=account.available,
        holdings=holdings,
        start_of_day_equity=start_of_day,
        peak_equity=peak,
        entries_last_hour=last_hour,
        entries_today=today,
        last_stop_at=last_stop_outs(store, mode),
        consecutive_losses=consecutive_losses(store, mode, reset),
    )


def trip_breakers(
    ctx: RunContext,
    state: AccountState,
    limits: RiskLimits,
    batch: WriteBatch,
    dry_run: bool = False,
) -> str | None:
    """Add a halt for every breaker that trips, and raise Halted (exit 3) when one does.
    Each breaker is its own halt: none replaces or weakens another (or the kill switch).
    A dry run halts nothing: it returns what would trip, for its report."""
    tripped = breakers(state, limits)
    if not tripped:
        return None
    if dry_run:
        return "a circuit breaker would trip: " + "; ".join(b.reason for b in tripped)
    for b in tripped:
        halt(ctx, batch, b.kind, b.reason, b.numbers, "breaker_tripped")
    batch.commit(ctx.store)
    first = tripped[0]
    raise Halted(
        f"circuit breaker tripped: {first.reason}; {how_it_lifts(lifts_for(first.kind))}"
        + "".join(f"; and {b.reason}" for b in tripped[1:])
    )
