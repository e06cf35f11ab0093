"""pnl-report --html: one self-contained HTML file, charts drawn as inline SVG.

Nothing is fetched when it is opened: no script, no font, no image from anywhere (a
Content-Security-Policy says so to the browser too). Every number shown is the JSON
report's number: a cell carries its JSON path in `data-key` and the exact JSON value in
`data-value`, so a test (or a person) can check one against the other.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from decimal import Decimal
from html import escape
from typing import Any

from qtrader.domain.report_chart import Chart
from qtrader.output import _json_default

WIDTH, LEFT, RIGHT = 960, 78, 16
PANELS = (("equity (USDT)", 40, 250), ("drawdown %", 320, 90), ("daily net PnL (USDT)", 440, 130))
HEIGHT = 610
GREEN, RED, BLUE, GREY = "#2ca02c", "#d62728", "#1f77b4", "#888888"

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;
max-width:1000px;color:#222;padding:0 12px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}
.summary{font-size:15px;margin:4px 0}.meta{color:#666;font-size:12px}
table{border-collapse:collapse;margin:4px 0 8px;font-size:13px}
th,td{padding:3px 10px;border-bottom:1px solid #e4e4e4;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.pos{color:#1a7f1a}.neg{color:#c0262d}.note{color:#666;font-size:12px}
.grid{display:flex;flex-wrap:wrap;gap:8px 40px}
svg text{font:11px system-ui,sans-serif;fill:#444}
.pass{color:#1a7f1a;font-weight:600}.fail{color:#c0262d;font-weight:600}
"""
CSP = "default-src 'none'; style-src 'unsafe-inline'"


def render_html(view: dict[str, Any]) -> str:
    data, chart = view["data"], view["chart"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(view['title'])}</title><style>{CSS}</style></head><body>",
        f'<h1 id="title">{escape(view["title"])}</h1>',
        f'<p class="summary" id="summary">{escape(view["summary"])}</p>',
        f'<p class="meta">{escape(view["meta"])}</p>',
        _svg(chart),
        *(f'<p class="note">{escape(note)}</p>' for note in view["chart_notes"]),
        _statistics(data),
        _by_symbol(data["by_symbol"]),
        _trades(view["trades"], view["trades_total"]),
        _by_day(data["by_day"]),
        _checklist(data["go_live_checklist"]),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


# --- numbers --------------------------------------------------------------------------


def json_value(value: Any) -> str:
    """The value exactly as `pnl-report --json` writes it (strings without their quotes)."""
    text = json.dumps(value, default=_json_default, ensure_ascii=False)
    return text[1:-1] if text.startswith('"') else text


def shown(value: Any, kind: str) -> str:
    if value is None:
        return "n/a"
    if kind == "pct":
        return f"{float(value) * 100:.2f} %"
    if kind == "money":
        number = Decimal(str(value))
        return f"{number.quantize(Decimal('0.0001')):,}"
    if kind == "ratio":
        return f"{float(value):.4f}"
    if kind == "hours":
        return f"{float(value) / 3600:.2f} h"
    return escape(str(value))


SIGNED = ("pnl", "net_", "expectancy", "largest_", "avg_win", "avg_loss")


def _cell(key: str, value: Any, kind: str) -> str:
    sign = ""  # green/red only where the sign is the news (PnL), not for fees or equity
    if kind == "money" and value is not None and any(word in key for word in SIGNED):
        sign = " pos" if Decimal(str(value)) > 0 else " neg" if Decimal(str(value)) < 0 else ""
    return (
        f'<td class="num{sign}" data-key="{escape(key)}" data-kind="{kind}" '
        f'data-value="{escape(json_value(value))}">{shown(value, kind)}</td>'
    )


TOTALS = (
    ("realized PnL", "realized_pnl"),
    ("fees", "fees"),
    ("funding", "funding"),
    ("net PnL (closed trades)", "net_pnl"),
    ("unrealized PnL", "unrealized_pnl"),
    ("booked by open positions", "open_realized_pnl"),
    ("fees of open positions", "open_fees"),
    ("funding of open positions", "open_funding"),
    ("net incl. unrealized", "net_incl_unrealized"),
    ("open positions", "open_positions"),
)
TRADE_STATS = (
    ("trades", "trades", "int"),
    ("wins", "wins", "int"),
    ("losses", "losses", "int"),
    ("win rate", "win_rate", "pct"),
    ("average win", "avg_win", "money"),
    ("average loss", "avg_loss", "money"),
    ("payoff ratio", "payoff_ratio", "ratio"),
    ("profit factor", "profit_factor", "ratio"),
    ("expectancy", "expectancy", "money"),
    ("largest win", "largest_win", "money"),
    ("largest loss", "largest_loss", "money"),
    ("longest losing streak", "longest_losing_streak", "int"),
    ("average holding", "avg_holding_s", "hours"),
)
EQUITY_STATS = (
    ("days", "days", "int"),
    ("daily returns", "returns", "int"),
    ("start equity", "start_equity", "ratio"),
    ("end equity", "end_equity", "ratio"),
    ("total return", "total_return", "pct"),
    ("annual return", "annual_return", "pct"),
    ("volatility", "volatility", "pct"),
    ("Sharpe", "sharpe", "ratio"),
    ("Sortino", "sortino", "ratio"),
    ("Calmar", "calmar", "ratio"),
    ("max drawdown (USDT)", "max_drawdown", "ratio"),
    ("max drawdown", "max_drawdown_frac", "pct"),
    ("drawdown peak", "max_drawdown_peak", "text"),
    ("drawdown trough", "max_drawdown_trough", "text"),
)


def _statistics(data: dict[str, Any]) -> str:
    totals = "".join(
        f"<tr><th>{label}</th>{_cell(f'totals.{key}', data['totals'][key], _kind(key))}</tr>"
        for label, key in TOTALS
    )
    trades = "".join(
        f"<tr><th>{label}</th>{_cell(f'trades.{key}', data['trades'][key], kind)}</tr>"
        for label, key, kind in TRADE_STATS
    )
    equity, missing = data["equity"], data["equity"].get("needs_more_data", {})
    rows = []
    for label, key, kind in EQUITY_STATS:
        note = missing.get(key)
        extra = f'<td class="note" data-note="{key}">{escape(note)}</td>' if note else "<td></td>"
        cell = _cell(f"equity.{key}", equity.get(key), kind)
        rows.append(f"<tr><th>{label}</th>{cell}{extra}</tr>")
    return (
        '<div class="grid">'
        f'<div><h2>Totals (USDT)</h2><table id="totals">{totals}</table></div>'
        f'<div><h2>Trades</h2><table id="trade-stats">{trades}</table></div>'
        "<div><h2>Equity (each UTC day's last snapshot, 365-day year)</h2>"
        f'<table id="equity-stats">{"".join(rows)}</table></div></div>'
    )


def _kind(key: str) -> str:
    return "int" if key == "open_positions" else "money"


def _by_symbol(rows: list[dict[str, Any]]) -> str:
    body = "".join(
        f"<tr><td>{escape(r['symbol'])}</td>{_cell(f'by_symbol.{i}.trades', r['trades'], 'int')}"
        f"{_cell(f'by_symbol.{i}.win_rate', r['win_rate'], 'pct')}"
        f"{_cell(f'by_symbol.{i}.fees', r['fees'], 'money')}"
        f"{_cell(f'by_symbol.{i}.funding', r['funding'], 'money')}"
        f"{_cell(f'by_symbol.{i}.net_pnl', r['net_pnl'], 'money')}</tr>"
        for i, r in enumerate(rows)
    )
    head = "<tr><th>symbol</th><th>trades</th><th>win rate</th><th>fees</th><th>funding</th>"
    return f'<h2>By symbol</h2><table id="by-symbol">{head}<th>net PnL</th></tr>{body}</table>'


def _trades(rows: list[dict[str, Any]], total: int) -> str:
    columns = (
        ("closed (UTC)", "closed_at", "time"),
        ("symbol", "symbol", "text"),
        ("side", "side", "text"),
        ("qty", "qty", "money"),
        ("entry", "entry_price", "money"),
        ("exit", "exit_price", "money"),
        ("fees", "fees", "money"),
        ("funding", "funding", "money"),
        ("net PnL", "net_pnl", "money"),
        ("return", "return_pct", "ratio"),
        ("exit reason", "exit_reason", "text"),
    )
    head = "".join(f"<th>{label}</th>" for label, _, _ in columns)
    body = []
    for row in rows:
        cells = []
        for _, key, kind in columns:
            value = row[key]
            if kind == "time":
                cells.append(f'<td data-col="{key}">{value:%Y-%m-%d %H:%M:%S}</td>')
            elif kind == "text":
                cells.append(f'<td data-col="{key}">{escape(str(value or "-"))}</td>')
            else:
                cell = _cell(f"{key}", value, kind).replace("data-key=", "data-col=", 1)
                cells.append(cell)
        body.append(f'<tr data-position-id="{row["position_id"]}">{"".join(cells)}</tr>')
    note = (
        f'<p class="note">the last {len(rows):,} of {total:,} trades; '
        "<code>--csv</code> writes them all</p>"
        if total > len(rows)
        else ""
    )
    empty = "" if rows else '<tr><td colspan="11">no closed trades in this range</td></tr>'
    return (
        f'<h2>Trades ({total:,})</h2><table id="trades"><tr>{head}</tr>{"".join(body)}{empty}'
        f"</table>{note}"
    )


def _by_day(rows: list[dict[str, Any]]) -> str:
    body = "".join(
        f"<tr><td>{r['day']}</td>"
        + "".join(
            _cell(f"by_day.{i}.{key}", r[key], "int" if key == "trades" else "money")
            for key in ("realized_pnl", "fees", "funding", "net_pnl", "trades", "equity")
        )
        + "</tr>"
        for i, r in enumerate(rows)
    )
    head = "".join(
        f"<th>{h}</th>" for h in ("day", "realized", "fees", "funding", "net", "trades", "equity")
    )
    return f'<h2>By UTC day</h2><table id="by-day"><tr>{head}</tr>{body}</table>'


def _checklist(rows: list[dict[str, Any]]) -> str:
    body = []
    for i, row in enumerate(rows):
        word, css = {True: ("PASS", "pass"), False: ("FAIL", "fail"), None: ("-", "")}[row["pass"]]
        body.append(
            f"<tr><td>{escape(row['check'])}</td>"
            f'<td class="{css}" data-key="go_live_checklist.{i}.pass" '
            f'data-value="{json_value(row["pass"])}">{word}</td>'
            f"<td>{escape(str(row['value']))}</td></tr>"
        )
    return f'<h2>Go-live checklist</h2><table id="checklist">{"".join(body)}</table>'


# --- the chart ------------------------------------------------------------------------


def _svg(chart: Chart) -> str:
    if chart.start is None or chart.end is None:
        return '<p class="note" id="chart">no equity snapshots and no trades in this range</p>'
    start, end = chart.start, chart.end
    if end <= start:
        start, end = start - timedelta(hours=12), end + timedelta(hours=12)
    span = (end - start).total_seconds()

    def x(moment: datetime) -> float:
        return LEFT + (moment - start).total_seconds() / span * (WIDTH - LEFT - RIGHT)

    out = [
        f'<svg id="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" '
        'aria-label="equity, drawdown and daily PnL">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>',
    ]
    out += _day_grid(start, end, x)
    (eq_label, eq_top, eq_h), (dd_label, dd_top, dd_h), (pnl_label, pnl_top, pnl_h) = PANELS
    equity = [v for _, v in chart.equity]
    out += _panel(eq_label, eq_top, eq_h, equity or [0.0], pad=True)
    if chart.equity:
        ys = _scale(equity, eq_top, eq_h, pad=True)
        points = " ".join(f"{x(t):.1f},{ys(v):.1f}" for t, v in chart.equity)
        out.append(
            f'<polyline id="equity-line" fill="none" stroke="{BLUE}" stroke-width="1.8" '
            f'points="{points}"/>'
        )
        for m in chart.markers:
            out.append(_marker(x(m.at), ys(m.equity), m))
    else:
        out.append(_empty_text(eq_top + eq_h / 2, "no equity snapshots in this range"))
    drawdown = [v for _, v in chart.drawdown_pct]
    out += _panel(dd_label, dd_top, dd_h, [*drawdown, 0.0])
    if chart.drawdown_pct:
        ys = _scale([*drawdown, 0.0], dd_top, dd_h)
        first, last = chart.drawdown_pct[0][0], chart.drawdown_pct[-1][0]
        area = " ".join(f"{x(t):.1f},{ys(v):.1f}" for t, v in chart.drawdown_pct)
        out.append(
            f'<polygon id="drawdown-area" fill="{RED}" fill-opacity="0.35" stroke="{RED}" '
            f'points="{x(first):.1f},{ys(0):.1f} {area} {x(last):.1f},{ys(0):.1f}"/>'
        )
    pnl = [b.net_pnl for b in chart.bars]
    out += _panel(pnl_label, pnl_top, pnl_h, [*pnl, 0.0])
    if chart.bars:
        ys = _scale([*pnl, 0.0], pnl_top, pnl_h)
        for bar in chart.bars:
            left, right = x(bar.start) + 1, x(bar.end) - 1
            top, bottom = sorted((ys(bar.net_pnl), ys(0.0)))
            colour = GREEN if bar.net_pnl >= 0 else RED
            out.append(
                f'<rect class="day-bar" data-day="{bar.day}" x="{left:.1f}" y="{top:.1f}" '
                f'width="{max(right - left, 1):.1f}" height="{max(bottom - top, 1):.1f}" '
                f'fill="{colour}"><title>{bar.day}: net {bar.net_pnl:+.2f} USDT</title></rect>'
            )
    out.append("</svg>")
    return "\n".join(out)


def _day_grid(start: datetime, end: datetime, x) -> list[str]:
    """A labelled line at UTC midnights: every day, or every k-th day when there are many
    (at most about 12), so the bars below line up with the days above."""
    first = datetime.combine(start.date(), datetime.min.time())
    days = max(1, (end - first).days + 1)
    every = max(1, -(-days // 12))
    lines = []
    moment = first if first >= start else first + timedelta(days=1)
    while moment <= end:
        px = x(moment)
        anchor = "end" if px > WIDTH - RIGHT - 40 else "middle"
        lines += [
            f'<line x1="{px:.1f}" x2="{px:.1f}" y1="30" y2="{HEIGHT - 30}" stroke="#eee"/>',
            f'<text x="{px:.1f}" y="{HEIGHT - 14}" text-anchor="{anchor}">{moment:%Y-%m-%d}</text>',
        ]
        moment += timedelta(days=every)
    return lines


def _bounds(values: list[float], pad: bool) -> tuple[float, float]:
    low, high = min(values), max(values)
    if pad or high == low:
        margin = (high - low) * 0.08 or max(abs(high) * 0.01, 1.0)
        low, high = low - margin, high + margin
    return low, high


def _scale(values: list[float], top: float, height: float, pad: bool = False):
    low, high = _bounds(values, pad)

    def y(value: float) -> float:
        return top + height - (value - low) / (high - low) * height

    return y


def _panel(label: str, top: float, height: float, values: list[float], pad=False) -> list[str]:
    y = _scale(values, top, height, pad)
    low, high = _bounds(values, pad)
    out = [
        f'<text x="{LEFT}" y="{top - 6}" font-weight="600">{escape(label)}</text>',
        f'<rect x="{LEFT}" y="{top}" width="{WIDTH - LEFT - RIGHT}" height="{height}" '
        'fill="none" stroke="#ccc"/>',
    ]
    step = (high - low) / 4
    decimals = min(6, max(0, 1 - math.floor(math.log10(step)))) if step > 0 else 2
    for i in range(5):
        value = low + step * i
        py = y(value)
        out.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{py:.1f}" y2="{py:.1f}" stroke="#f0f0f0"/>'
        )
        out.append(
            f'<text x="{LEFT - 6}" y="{py + 4:.1f}" text-anchor="end">{value:,.{decimals}f}</text>'
        )
    return out


def _marker(px: float, py: float, m) -> str:
    if m.win:
        shape = f"{px:.1f},{py - 9:.1f} {px - 6:.1f},{py + 2:.1f} {px + 6:.1f},{py + 2:.1f}"
    else:
        shape = f"{px:.1f},{py + 9:.1f} {px - 6:.1f},{py - 2:.1f} {px + 6:.1f},{py - 2:.1f}"
    colour = GREEN if m.win else RED
    return (
        f'<polygon class="trade-marker" points="{shape}" fill="{colour}" stroke="#fff" '
        f'stroke-width="0.8"><title>{escape(m.label)}</title></polygon>'
    )


def _empty_text(y: float, text: str) -> str:
    return f'<text x="{WIDTH / 2}" y="{y:.1f}" text-anchor="middle" fill="{GREY}">{text}</text>'
