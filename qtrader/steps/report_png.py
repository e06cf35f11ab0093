"""pnl-report --plot: the same chart as the HTML report, drawn with matplotlib into a PNG."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from qtrader.errors import UsageError

GREEN, RED, BLUE = "#2ca02c", "#d62728", "#1f77b4"


def render_png(view: dict[str, Any], path: Path) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.dates as mdates
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'qtrader[plots]'") from None
    chart = view["chart"]
    fig, (ax_eq, ax_dd, ax_pnl) = plt.subplots(
        3, 1, figsize=(11, 8.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.2, 1.5]}
    )
    if chart.equity:
        ax_eq.plot(*zip(*chart.equity, strict=True), color=BLUE, linewidth=1.5)
        for win in (True, False):
            marks = [m for m in chart.markers if m.win is win]
            if marks:
                ax_eq.scatter(
                    [m.at for m in marks],
                    [m.equity for m in marks],
                    marker="^" if win else "v",
                    color=GREEN if win else RED,
                    s=46,
                    zorder=3,
                    label=f"{'winning' if win else 'losing'} trade closed ({len(marks)})",
                )
        if chart.markers:
            ax_eq.legend(loc="upper left", fontsize=8, frameon=False)
        times, drawdown = zip(*chart.drawdown_pct, strict=True)
        ax_dd.fill_between(times, drawdown, 0, color=RED, alpha=0.35)
        ax_dd.plot(times, drawdown, color=RED, linewidth=0.8)
    else:
        ax_eq.text(
            0.5, 0.5, "no equity snapshots in this range", ha="center", transform=ax_eq.transAxes
        )
    if chart.bars:
        values = [b.net_pnl for b in chart.bars]
        ax_pnl.bar(
            [b.start for b in chart.bars],
            values,
            width=0.96,  # days: each bar covers its own UTC day, from 00:00
            align="edge",
            color=[GREEN if v >= 0 else RED for v in values],
        )
        ax_pnl.axhline(0, color="#888", linewidth=0.6)
    if chart.start is not None and chart.end is not None:
        start, end = chart.start, chart.end
        if end <= start:
            start, end = start - timedelta(hours=12), end + timedelta(hours=12)
        ax_pnl.set_xlim(start, end)
    fig.suptitle(view["title"], fontsize=11, fontweight="bold")
    ax_eq.set_title(view["summary"], fontsize=9)
    ax_eq.set_ylabel("equity (USDT)")
    ax_dd.set_ylabel("drawdown %")
    ax_pnl.set_ylabel("daily net PnL")
    ax_pnl.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=3, maxticks=12))
    ax_pnl.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d\n%H:%M"))
    for ax in (ax_eq, ax_dd, ax_pnl):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
