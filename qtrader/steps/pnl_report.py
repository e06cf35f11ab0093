"""pnl-report: realized/unrealized PnL, fees, funding, trade and equity statistics, the seeds'
go-live checklist; as a table, JSON, CSV/Parquet files of the views, a PNG and an HTML page.

Every number comes from DuckDB SQL over the public views (store/reports.py); this module
only assembles them once into `data` (what --json prints) and hands that same `data`, with
the chart model (domain/report_chart.py), to the renderers: report_html.py and report_png.py.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from qtrader import __version__
from qtrader.clock import wall_utcnow
from qtrader.config import MODES
from qtrader.domain.numbers import plain
from qtrader.domain.report_chart import build_chart
from qtrader.domain.signal import InvalidSignal, normalise_symbol
from qtrader.errors import UsageError
from qtrader.output import Result, Table, mode_label
from qtrader.steps import RunContext
from qtrader.steps.ledger import rederive_if_migrated
from qtrader.store.reports import (
    Filters,
    by_day,
    by_symbol,
    equity_snapshots,
    equity_stats,
    failed_runs,
    known_symbols,
    open_totals,
    recent_trades,
    trade_stats,
)

TRADES_SHOWN = 1000  # the HTML table and the chart's markers: the range's last trades
MIN_DAILY_RETURNS = 30  # days of equity changes before annualised statistics mean anything
ANNUALISED = ("annual_return", "volatility", "sharpe", "sortino", "calmar")
VIEWS = ("v_trades", "v_daily_pnl", "v_open_positions", "v_equity")
# The seeds' "When to switch to real trading" checklist (seed 003).
GO_LIVE = (
    ("100+ trades", lambda t, e, f: t["trades"] >= 100, lambda t, e, f: f"{t['trades']} trades"),
    (
        "win rate > 60 %",
        lambda t, e, f: (t["win_rate"] or 0) > 0.60,
        lambda t, e, f: f"{_pct(t['win_rate'])} %",
    ),
    (
        "max drawdown < 5 %",
        lambda t, e, f: e["days"] > 0 and e["max_drawdown_frac"] < 0.05,
        lambda t, e, f: f"{_pct(e['max_drawdown_frac'])} %" if e["days"] else "no equity data",
    ),
    ("no system errors", lambda t, e, f: f == 0, lambda t, e, f: f"{f} failed run(s)"),
)
NOT_MEASURED = (
    "risk management validated",
    "circuit breakers tested",
    "governance alerts working",
    "full confidence in system",
)


def pnl_report(
    ctx: RunContext,
    since: datetime | None = None,
    until: datetime | None = None,
    symbol: str | None = None,
    mode: str | None = None,
    csv_dir: str | None = None,
    parquet_dir: str | None = None,
    plot: str | None = None,
    html: str | None = None,
) -> Result:
    rederive_if_migrated(ctx.store)  # first run after migration 0007
    if mode is not None and mode not in MODES:
        raise UsageError(f"--mode {mode!r} is not a mode; use one of: {', '.join(MODES)}")
    mode = mode or ctx.mode
    f = Filters(mode=mode, since=since, until=until, symbol=_symbol(ctx, mode, symbol))
    trades = trade_stats(ctx.store, f)
    opened = open_totals(ctx.store, f)
    equity = _enough_data(equity_stats(ctx.store, f))
    checklist = _checklist(trades, equity, failed_runs(ctx.store, f))
    totals = {
        "realized_pnl": trades["realized_pnl"],
        "unrealized_pnl": opened["unrealized_pnl"],
        "fees": trades["fees"],
        "funding": trades["funding"],
        "net_pnl": trades["net_pnl"],
        # what the open positions have booked so far (entry fees, funding, partial closes):
        # with these, the totals equal the exchange's ledger, not only the closed trades
        "open_realized_pnl": opened["realized_pnl"],
        "open_fees": opened["fees"],
        "open_funding": opened["funding"],
        "net_incl_unrealized": trades["net_pnl"]
        + opened["unrealized_pnl"]
        + opened["realized_pnl"]
        - opened["fees"]
        + opened["funding"],
        "open_positions": opened["open_positions"],
    }
    files = _export(ctx, f, csv_dir, "csv") + _export(ctx, f, parquet_dir, "parquet")
    symbols, days = by_symbol(ctx.store, f), by_day(ctx.store, f)
    data = {
        "filters": {"mode": f.mode, "since": since, "until": until, "symbol": f.symbol},
        "totals": totals,
        "trades": trades,
        "equity": equity,
        "by_symbol": symbols,
        "by_day": days,
        "go_live_checklist": checklist,
        "files": files,
    }
    if plot or html:
        view = report_view(ctx, f, data)
        if plot:
            from qtrader.steps.report_png import render_png

            files.append(render_png(view, Path(plot)))
        if html:
            files.append(_write_html(view, Path(html)))
    empty = trades["trades"] == 0
    lines = [f"pnl-report · mode {f.mode.upper()}" + (f" · {f.symbol}" if f.symbol else "")]
    if empty:
        lines.append("no closed trades in this range")
    lines += [f"wrote {path}" for path in files]
    return Result(
        data=data,
        lines=lines,
        tables=[] if empty else _tables(data),
        summary={"trades": trades["trades"], "net_pnl": trades["net_pnl"]},
    )


def _symbol(ctx: RunContext, mode: str, symbol: str | None) -> str | None:
    """The symbol as stored (`BTC/USDT`, `BTC-USDT`, `btcusdt` → `BTCUSDT`); one this mode
    never held is a usage error that lists the ones it did."""
    if symbol is None:
        return None
    known = known_symbols(ctx.store, mode)
    try:
        name = normalise_symbol(symbol)
    except InvalidSignal as exc:
        raise UsageError(f"--symbol: {exc}") from None
    if name not in known:
        listed = ", ".join(known) if known else "none yet"
        raise UsageError(f"--symbol {symbol!r}: no {mode} trades in {name}; known: {listed}")
    return name


def _enough_data(equity: dict[str, Any]) -> dict[str, Any]:
    """Annualised statistics from a few days are noise (a Sortino of 1,147 from 3 days):
    below MIN_DAILY_RETURNS they are None, and `needs_more_data` says how much is missing."""
    have = equity.get("returns") or 0
    equity["needs_more_data"] = {}
    if have < MIN_DAILY_RETURNS:
        for name in ANNUALISED:
            equity[name] = None
            equity["needs_more_data"][name] = f"needs {MIN_DAILY_RETURNS} daily returns, has {have}"
    return equity


def _checklist(trades: dict, equity: dict, failed: int) -> list[dict[str, Any]]:
    rows = [
        {
            "check": name,
            "pass": bool(test(trades, equity, failed)),
            "value": show(trades, equity, failed),
        }
        for name, test, show in GO_LIVE
    ]
    rows += [
        {"check": name, "pass": None, "value": "not measurable by qtrader"} for name in NOT_MEASURED
    ]
    return rows


def _export(ctx: RunContext, f: Filters, directory: str | None, fmt: str) -> list[str]:
    if not directory:
        return []
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for view in VIEWS:
        where, params = _view_filter(view, f)
        path = folder / f"{view}.{fmt}"
        options = "FORMAT csv, HEADER" if fmt == "csv" else "FORMAT parquet"
        query = f"SELECT * FROM {view} WHERE {where}"
        ctx.store.execute(f"COPY ({query}) TO '{_sql_path(path)}' ({options})", params)
        written.append(str(path))
    return written


def _view_filter(view: str, f: Filters) -> tuple[str, list[Any]]:
    if view == "v_trades":
        return f.trades_where()
    if view == "v_daily_pnl":
        return f.days_where("day")
    if view == "v_equity":
        return f.days_where("ts")
    return "mode = ?" + (" AND symbol = ?" if f.symbol else ""), [f.mode] + (
        [f.symbol] if f.symbol else []
    )


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def report_view(ctx: RunContext, f: Filters, data: dict[str, Any]) -> dict[str, Any]:
    """What the PNG and the HTML draw: the report's `data` (the numbers --json prints), the
    chart model from every equity snapshot, the last trades, and the title lines."""
    trades = recent_trades(ctx.store, f, TRADES_SHOWN)
    chart = build_chart(equity_snapshots(ctx.store, f), trades, data["by_day"], f.since, f.until)
    return {
        "data": data,
        "chart": chart,
        "trades": trades,
        "trades_total": data["trades"]["trades"],
        "title": report_title(f, chart.start, chart.end, ctx.store.path),
        "summary": report_summary(data),
        "meta": f"written {wall_utcnow():%Y-%m-%d %H:%M:%S} UTC by qtrader {__version__} · "
        f"equity from {chart.snapshots:,} snapshots"
        + (f" · trade markers: the last {len(trades):,}" if trades else ""),
        "chart_notes": [
            *chart.notes,
            *(
                [
                    "Equity, drawdown and the daily bars are the whole account's; the trades "
                    f"(markers and table) are {f.symbol}'s."
                ]
                if f.symbol
                else []
            ),
            "Drawdown is drawn from every snapshot; the max drawdown statistic uses each UTC "
            "day's last snapshot. Daily bars cover their UTC day, 00:00 to 24:00.",
        ],
    }


def report_title(f: Filters, start: datetime | None, end: datetime | None, db: str) -> str:
    period = f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC" if start and end else "no data"
    symbol = f" · {f.symbol}" if f.symbol else ""
    return f"qtrader PnL · {mode_label(f.mode)}{symbol} · {period} · {db}"


def report_summary(data: dict[str, Any]) -> str:
    t, e, totals = data["trades"], data["equity"], data["totals"]
    parts = [
        f"{t['trades']} trades",
        f"net {_fmt(totals['net_pnl'])} USDT",
        f"win rate {_pct(t['win_rate'])} %" if t["win_rate"] is not None else "win rate n/a",
        f"max drawdown {_pct(e['max_drawdown_frac'])} %" if e.get("days") else "no equity data",
        f"{totals['open_positions']} open (unrealized {_fmt(totals['unrealized_pnl'])})",
    ]
    return " · ".join(parts)


def _write_html(view: dict[str, Any], path: Path) -> str:
    from qtrader.steps.report_html import render_html

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(view), encoding="utf-8")
    return str(path)


def _tables(data: dict[str, Any]) -> list[Table]:
    t, e, totals = data["trades"], data["equity"], data["totals"]
    summary = [[k, _fmt(v)] for k, v in totals.items()]
    stats = [
        ["trades", t["trades"]],
        ["win rate %", _pct(t["win_rate"])],
        ["avg win", _fmt(t["avg_win"])],
        ["avg loss", _fmt(t["avg_loss"])],
        ["payoff ratio", _fmt(t["payoff_ratio"])],
        ["profit factor", _fmt(t["profit_factor"])],
        ["expectancy", _fmt(t["expectancy"])],
        ["largest win", _fmt(t["largest_win"])],
        ["largest loss", _fmt(t["largest_loss"])],
        ["longest losing streak", t["longest_losing_streak"]],
        ["avg holding (h)", _fmt(t["avg_holding_s"] / 3600 if t["avg_holding_s"] else None)],
    ]
    equity = [
        ["days", e["days"]],
        ["total return %", _pct(e["total_return"])],
        ["annual return %", _stat(e, "annual_return", _pct)],
        ["max drawdown", _fmt(e["max_drawdown"])],
        ["max drawdown %", _pct(e["max_drawdown_frac"])],
        ["drawdown peak → trough", _peak_to_trough(e)],
        ["Sharpe", _stat(e, "sharpe", _fmt)],
        ["Sortino", _stat(e, "sortino", _fmt)],
        ["Calmar", _stat(e, "calmar", _fmt)],
        ["volatility %", _stat(e, "volatility", _pct)],
    ]
    symbols = [
        [r["symbol"], r["trades"], _pct(r["win_rate"]), _fmt(r["net_pnl"]), _fmt(r["fees"])]
        for r in data["by_symbol"]
    ]
    days = [
        [
            r["day"],
            _fmt(r["realized_pnl"]),
            _fmt(r["fees"]),
            _fmt(r["funding"]),
            _fmt(r["net_pnl"]),
            r["trades"],
            _fmt(r["equity"]),
        ]
        for r in data["by_day"][-31:]
    ]
    checks = [
        [c["check"], {True: "PASS", False: "FAIL", None: "-"}[c["pass"]], c["value"]]
        for c in data["go_live_checklist"]
    ]
    return [
        Table("totals (USDT)", ["item", "value"], summary),
        Table("trades", ["statistic", "value"], stats),
        Table("equity (daily, 365-day annualisation)", ["statistic", "value"], equity),
        Table("by symbol", ["symbol", "trades", "win %", "net pnl", "fees"], symbols),
        Table(
            "by day (last 31)",
            ["day", "realized", "fees", "funding", "net", "trades", "equity"],
            days,
        ),
        Table("go-live checklist", ["check", "result", "value"], checks),
    ]


def _stat(e: dict[str, Any], name: str, show: Any) -> Any:
    missing = e.get("needs_more_data", {}).get(name)
    return f"n/a: {missing}" if missing else show(e[name])


def _peak_to_trough(e: dict[str, Any]) -> str:
    if e.get("max_drawdown_trough") is None:
        return "no drawdown" if e.get("days") else "no equity data"
    return f"{e['max_drawdown_peak']} → {e['max_drawdown_trough']}"


def _fmt(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return plain(value.quantize(Decimal("0.0001")))
    if isinstance(value, float):
        return round(value, 4)
    return value


def _pct(value: Any) -> Any:
    return None if value is None else round(float(value) * 100, 2)
