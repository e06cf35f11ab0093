"""Per-mode exchange caches: the market list, the position mode, per-symbol set-up."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from qtrader.clock import utcnow
from qtrader.store.db import Store
from qtrader.store.state import get_state, set_state


def cached_markets(store: Store, mode: str, ttl_s: int) -> list[dict[str, Any]] | None:
    row = store.fetchone(
        "SELECT fetched_at, markets, exchange FROM market_cache WHERE mode = ?", [mode]
    )
    if row is None or _stale(row[0], ttl_s) or row[2] != store.exchange:
        return None  # another exchange's markets are no use
    return json.loads(row[1])


def save_markets(store: Store, mode: str, markets: list[dict[str, Any]]) -> None:
    store.execute(
        "INSERT INTO market_cache (mode, fetched_at, markets, exchange) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (mode) DO UPDATE SET fetched_at = excluded.fetched_at, "
        "markets = excluded.markets, exchange = excluded.exchange",
        [mode, utcnow(), json.dumps(markets, default=str), store.exchange],
    )


def cached_hedge_mode(store: Store, mode: str, ttl_s: int) -> bool | None:
    value = get_state(store, _position_mode_key(store, mode))
    if value is None or _stale(datetime.fromisoformat(value["checked_at"]), ttl_s):
        return None
    return bool(value["hedge"])


def save_hedge_mode(store: Store, mode: str, hedge: bool) -> None:
    set_state(
        store, _position_mode_key(store, mode), {"hedge": hedge, "checked_at": utcnow().isoformat()}
    )


def _position_mode_key(store: Store, mode: str) -> str:
    if store.exchange == "binanceusdm":
        return f"position_mode:{mode}"  # the key before there was a second exchange
    return f"position_mode:{store.exchange}:{mode}"


def forget_symbol_setups(store: Store, mode: str) -> int:
    """Drop the per-symbol margin mode and leverage memory: the next trade sets them again."""
    row = store.fetchone(
        "SELECT count(*) FROM symbol_setup WHERE mode = ? AND exchange = ?", [mode, store.exchange]
    )
    store.execute(
        "DELETE FROM symbol_setup WHERE mode = ? AND exchange = ?", [mode, store.exchange]
    )
    return int(row[0]) if row else 0


def save_symbol_setup(store: Store, mode: str, symbol: str, leverage: int, margin: str) -> None:
    store.execute(
        "INSERT INTO symbol_setup (mode, symbol, leverage, margin_mode, updated_at, exchange) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (mode, symbol) DO UPDATE "
        "SET leverage = excluded.leverage, margin_mode = excluded.margin_mode, "
        "updated_at = excluded.updated_at, exchange = excluded.exchange",
        [mode, symbol, leverage, margin, utcnow(), store.exchange],
    )


def _stale(fetched_at: datetime, ttl_s: int) -> bool:
    return utcnow() - fetched_at > timedelta(seconds=ttl_s)


def symbol_setups(store: Store, mode: str) -> dict[str, tuple[int, str]]:
    """Every symbol's remembered (leverage, margin mode) for this mode, in one query."""
    rows = store.fetchall(
        "SELECT symbol, leverage, margin_mode FROM symbol_setup WHERE mode = ? AND exchange = ?",
        [mode, store.exchange],
    )
    return {symbol: (int(leverage), str(margin)) for symbol, leverage, margin in rows}
