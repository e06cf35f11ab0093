"""What the risk engine needs to know about the account's history, from DuckDB.

Stop-outs, wins and losses come from the positions `reconcile` derives from the exchange's
fills, timed by the exchange's clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from qtrader.clock import utcnow
from qtrader.store.db import Store
from qtrader.store.state import get_state, set_state

RISK_RESET_KEY = "risk_reset_at"
_EPOCH = datetime(1970, 1, 1)
_CLOSING_ROLES = "('stop_loss', 'take_profit', 'exit', 'reverse_exit')"


def record_equity(store: Store, mode: str, run_id: int, wallet: Decimal, equity: Decimal) -> None:
    store.execute(
        "INSERT INTO equity (ts, mode, run_id, wallet_balance, unrealized_pnl, equity) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [utcnow(), mode, run_id, wallet, equity - wallet, equity],
    )


def risk_reset_at(store: Store, mode: str) -> datetime:
    """The last `resume` of this mode (before resume was per mode: the last one of any)."""
    value = get_state(store, f"{RISK_RESET_KEY}:{mode}") or get_state(store, RISK_RESET_KEY)
    return datetime.fromisoformat(value) if value else _EPOCH


def equity_marks(store: Store, mode: str, day_start: datetime, since: datetime) -> tuple:
    """(start-of-day equity, peak equity since the last `resume`)."""
    row = store.fetchone(
        "SELECT (SELECT equity FROM equity WHERE mode = ? AND ts >= ? ORDER BY ts LIMIT 1), "
        "(SELECT max(equity) FROM equity WHERE mode = ? AND ts >= ?)",
        [mode, day_start, mode, since],
    )
    return (row[0], row[1]) if row else (None, None)


def entry_counts(store: Store, mode: str, now: datetime, day_start: datetime) -> tuple[int, int]:
    row = store.fetchone(
        "SELECT count(*) FILTER (WHERE created_at >= ?), count(*) FILTER (WHERE created_at >= ?) "
        "FROM orders WHERE mode = ? AND role = 'entry' AND filled_qty > 0",
        [now - timedelta(hours=1), day_start, mode],
    )
    return (int(row[0]), int(row[1])) if row else (0, 0)


def last_stop_outs(store: Store, mode: str) -> dict[str, datetime]:
    """When each symbol's last stop-out happened, by the exchange's time of the closing fill."""
    rows = store.fetchall(
        "SELECT symbol, max(closed_at) FROM positions WHERE mode = ? AND status = 'closed' "
        "AND exit_reason = 'stop_loss' GROUP BY symbol",
        [mode],
    )
    return dict(rows)


def consecutive_losses(store: Store, mode: str, since: datetime) -> int:
    """Losing trades (net PnL < 0) in a row, newest first, closed since the last `resume`,
    in the exchange's order: the closing fill's time, then its trade id."""
    rows = store.fetchall(
        "SELECT net_pnl < 0 FROM v_trades t JOIN positions p USING (position_id) "
        "WHERE t.mode = ? AND t.closed_at >= ? ORDER BY t.closed_at DESC, "
        "try_cast(p.close_trade_id AS BIGINT) DESC NULLS LAST, p.close_trade_id DESC LIMIT 1000",
        [mode, since],
    )
    streak = 0
    for (loss,) in rows:
        if not loss:
            break
        streak += 1
    return streak


def open_entry_counts(store: Store, mode: str) -> dict[str, int]:
    """Entries into each symbol since its last closing fill (for max_entries_per_symbol)."""
    rows = store.fetchall(
        "SELECT symbol, count(*) FROM orders o WHERE mode = ? AND role = 'entry' "
        "AND filled_qty > 0 AND created_at > coalesce((SELECT max(updated_at) FROM orders x "
        f"WHERE x.mode = o.mode AND x.symbol = o.symbol AND x.role IN {_CLOSING_ROLES} "
        "AND x.status = 'filled'), ?) GROUP BY symbol",
        [mode, _EPOCH],
    )
    return {symbol: int(n) for symbol, n in rows}


def mark_risk_reset(store: Store, mode: str) -> None:
    """`resume`: the drawdown peak and the losing streak of this mode count from now."""
    set_state(store, f"{RISK_RESET_KEY}:{mode}", utcnow().isoformat())
