"""status: the state at a glance (mode, halts, account, positions, signals, last runs).

Equity, day PnL and open positions are read live from the exchange when it answers (one
attempt, no retries: status must be quick), and marked `live`; otherwise they are what the
last reconcile stored, marked with its age.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal
from typing import Any

from qtrader.domain.numbers import plain
from qtrader.errors import QtraderError
from qtrader.exchange import replaying
from qtrader.output import Result, Table, mode_label
from qtrader.steps import RunContext
from qtrader.steps.halting import in_force
from qtrader.store.recovery import pending_halts
from qtrader.store.runs import last_runs
from qtrader.store.signals import counts_by_status

SIGNAL_STATUSES = ("pending", "executed", "rejected", "skipped", "expired", "invalid", "conflict")


def status(ctx: RunContext) -> Result:
    held = in_force(ctx)
    kinds = {h.kind for h in held}
    # close-all's halts still in a recovery file (this reader could not import it) count too
    held += [h for h in pending_halts(ctx.store.path, ctx.mode) if h.kind not in kinds]
    halts = [h.as_dict() for h in held]
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
        f"mode       {mode_label(ctx.mode, ctx.settings.exchange.name)}",
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
    try:
        account, details = _live(ctx)
        positions = _merge_live(details, positions, position_columns)
    except QtraderError as exc:  # unreachable, no keys…: what the last reconcile stored
        account = _last_reconcile(ctx, str(exc))
    data["account"] = account
    lines.insert(3, f"account    {_account_line(account)}")
    data["positions"] = [dict(zip(position_columns, row, strict=True)) for row in positions]
    run_columns = ["command", "run_id", "mode", "started_at", "ended_at", "outcome", "exit_code"]
    tables = [
        Table(f"open positions ({_as_of(account)})", position_columns, positions),
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


def _live(ctx: RunContext) -> tuple[dict[str, Any], list[Any]]:
    """The account and positions from the exchange now (QtraderError when it cannot)."""
    from qtrader.exchange import open_exchange

    settings = ctx.settings
    quick = dataclasses.replace(
        settings, exchange=dataclasses.replace(settings.exchange, read_retries=1)
    )
    exchange = open_exchange(quick, ctx.yes_live, store=ctx.store)
    account = exchange.account()
    details = exchange.position_details()
    now = ctx.now()
    return (
        {
            "source": "live",
            "as_of": now,
            "age_s": 0,
            "equity": plain(account.equity),
            "wallet_balance": plain(account.wallet_balance),
            "unrealized_pnl": plain(account.equity - account.wallet_balance),
            "day_pnl": _day_pnl(ctx, account.equity, now),
            "not_live_because": None,
        },
        details,
    )


def _last_reconcile(ctx: RunContext, why: str) -> dict[str, Any]:
    row = ctx.store.fetchone(
        "SELECT ts, wallet_balance, unrealized_pnl, equity FROM equity WHERE mode = ? "
        "ORDER BY ts DESC LIMIT 1",
        [ctx.mode],
    )
    if row is None:
        return {"source": None, "as_of": None, "age_s": None, "equity": None,
                "wallet_balance": None, "unrealized_pnl": None, "day_pnl": None,
                "not_live_because": why}  # fmt: skip
    ts, wallet, unrealized, equity = row
    return {
        "source": "last_reconcile",
        "as_of": ts,
        "age_s": round((ctx.now() - ts).total_seconds()),
        "equity": plain(equity),
        "wallet_balance": plain(wallet),
        "unrealized_pnl": plain(unrealized),
        "day_pnl": _day_pnl(ctx, equity, ts),
        "not_live_because": why,
    }


def _day_pnl(ctx: RunContext, equity: Decimal, at: datetime) -> Decimal | None:
    """Equity now minus equity at the start of its UTC day (the first snapshot that day, else
    the last one before it)."""
    day_start = at.replace(hour=0, minute=0, second=0, microsecond=0)
    row = ctx.store.fetchone(
        "SELECT coalesce("
        " (SELECT equity FROM equity WHERE mode = ? AND ts >= ? ORDER BY ts LIMIT 1),"
        " (SELECT equity FROM equity WHERE mode = ? AND ts < ? ORDER BY ts DESC LIMIT 1))",
        [ctx.mode, day_start, ctx.mode, day_start],
    )
    if row is None or row[0] is None:
        return None
    return plain(equity - row[0])


def _merge_live(details: list[Any], stored: list[list[Any]], columns: list[str]) -> list[list]:
    """Live positions, with qtrader's own knowledge (stop, R, class, origin) where it has it."""
    known = {row[0]: dict(zip(columns, row, strict=True)) for row in stored}
    rows = []
    for d in sorted(details, key=lambda d: (d.symbol, d.position_side)):
        mine = known.get(d.symbol, {})
        live = {
            "symbol": d.symbol,
            "side": "long" if d.side == "BUY" else "short",
            "qty": plain(d.qty),
            "entry_price": plain(d.entry_price),
            "mark_price": plain(d.mark_price),
            "unrealized_pnl": plain(d.unrealized_pnl),
        }
        rows.append([live.get(c, mine.get(c)) for c in columns])
    return rows


def _as_of(account: dict[str, Any]) -> str:
    if account["source"] == "live":
        return "LIVE from the exchange"
    if account["source"] is None:
        return "no reconcile yet"
    return f"as of the last reconcile, {_age(account['age_s'])} ago"


def _age(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"


def _account_line(account: dict[str, Any]) -> str:
    if account["source"] is None:
        text = "unknown: the exchange did not answer and nothing was reconciled yet"
    else:
        day = account["day_pnl"]
        day_text = "-" if day is None else f"{day:+}"
        text = (
            f"equity {account['equity']} USDT, day PnL {day_text} USDT, unrealized "
            f"{account['unrealized_pnl']} ({_as_of(account)})"
        )
    if account["not_live_because"]:
        text += f"; not live: {account['not_live_because']}"
    return text
