"""status: the state at a glance (mode, halt, signals by status, last run of each command)."""

from __future__ import annotations

from decimal import Decimal

from qtrader.domain.numbers import plain
from qtrader.exchange import replaying
from qtrader.output import Result, Table, mode_label
from qtrader.steps import RunContext
from qtrader.steps.risk_gate import how_it_lifts
from qtrader.store.risk_state import get_halt
from qtrader.store.runs import last_runs
from qtrader.store.signals import counts_by_status

SIGNAL_STATUSES = ("pending", "executed", "rejected", "skipped", "expired", "invalid", "conflict")


def status(ctx: RunContext) -> Result:
    halt = get_halt(ctx.store)
    counts = counts_by_status(ctx.store)
    signals = {name: counts.get(name, 0) for name in SIGNAL_STATUSES} | counts
    runs = [r for r in last_runs(ctx.store) if r["run_id"] != ctx.run_id]
    settings = ctx.settings
    data = {
        "db": ctx.store.path,
        "config_file": settings.config_file,
        "profile": settings.profile,
        "halt": halt,
        "signals": signals,
        "last_runs": runs,
    }
    halt_text = "none"
    if halt:
        lifts = how_it_lifts(halt.get("clears"))
        halt_text = f"HALTED ({halt.get('kind', 'halt')}): {halt.get('reason', '?')}; {lifts}"
    lines = [
        f"database   {ctx.store.path}",
        f"settings   {settings.config_file or 'defaults'}"
        + (f" (profile {settings.profile})" if settings.profile else ""),
        f"mode       {mode_label(ctx.mode)}",
        f"halt       {halt_text}",
    ]
    if ctx.mode == "paper":
        data["paper_prices"] = settings.paper.prices
        lines.insert(3, f"prices     {_paper_prices(ctx)}")
    position_columns = [
        "symbol",
        "side",
        "qty",
        "entry_price",
        "mark_price",
        "unrealized_pnl",
        "stop_loss",
        "take_profit",
        "r_multiple",
        "classification",
        "origin",
    ]
    positions = [  # the stop and target resting on the exchange, as reconcile last saw them
        [plain(v) if isinstance(v, Decimal) else v for v in row]
        for row in ctx.store.fetchall(
            f"SELECT {', '.join(position_columns)} FROM v_open_positions "
            "WHERE mode = ? ORDER BY symbol",
            [ctx.mode],
        )
    ]
    data["positions"] = [dict(zip(position_columns, row, strict=True)) for row in positions]
    run_columns = ["command", "run_id", "mode", "started_at", "ended_at", "outcome", "exit_code"]
    tables = [
        Table("open positions (as of the last reconcile)", position_columns, positions),
        Table("signals", ["status", "count"], [[k, v] for k, v in signals.items()]),
        Table("last run of each command", run_columns, [[r[c] for c in run_columns] for r in runs]),
    ]
    return Result(data=data, tables=tables, lines=lines)


def _paper_prices(ctx: RunContext) -> str:
    """Where PAPER's prices come from, and for a replay where its clock stands."""
    if not replaying(ctx.settings):
        return "PAPER on Binance's public market data (wall clock)"
    clock = f"{ctx.now():%Y-%m-%d %H:%M:%S}"
    return f"PAPER replay of {ctx.settings.paper.prices}, paper clock {clock} UTC"
