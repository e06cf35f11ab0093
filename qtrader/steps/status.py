"""status: the state at a glance (mode, halts, signals by status, last run of each command)."""

from __future__ import annotations

from decimal import Decimal

from qtrader.domain.numbers import plain
from qtrader.exchange import replaying
from qtrader.output import Result, Table, mode_label
from qtrader.steps import RunContext
from qtrader.steps.halting import in_force
from qtrader.store.runs import last_runs
from qtrader.store.signals import counts_by_status

SIGNAL_STATUSES = ("pending", "executed", "rejected", "skipped", "expired", "invalid", "conflict")


def status(ctx: RunContext) -> Result:
    halts = [h.as_dict() for h in in_force(ctx)]
    counts = counts_by_status(ctx.store)
    signals = {name: counts.get(name, 0) for name in SIGNAL_STATUSES} | counts
    runs = [r for r in last_runs(ctx.store) if r["run_id"] != ctx.run_id]
    settings = ctx.settings
    data = {
        "db": ctx.store.path,
        "config_file": settings.config_file,
        "profile": settings.profile,
        "halts": halts,
        "signals": signals,
        "last_runs": runs,
    }
    halt_lines = [f"HALTED ({h['kind']}): {h['reason']}; {h['how_it_lifts']}" for h in halts] or [
        "none"
    ]
    lines = [
        f"database   {ctx.store.path}",
        f"settings   {settings.config_file or 'defaults'}"
        + (f" (profile {settings.profile})" if settings.profile else ""),
        f"mode       {mode_label(ctx.mode)}",
        f"halt       {halt_lines[0]}",
        *(f"           {line}" for line in halt_lines[1:]),
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
        "r_multiple",
        "classification",
        "origin",
    ]
    positions = [
        [plain(v) if isinstance(v, Decimal) else v for v in row]
        for row in ctx.store.fetchall(
            f"SELECT {', '.join(position_columns)} FROM positions "
            "WHERE mode = ? AND status = 'open' ORDER BY symbol",
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
