"""Per-mode exchange caches: the market list, the position mode, per-symbol set-up."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from qtrader.clock import utcnow
from qtrader.store.db import Store
from qtrader.store.state import get_state, set_state


def cached_markets(store: Store, mode: str, ttl_s: int) -> list[dict[str, Any]] | None:
    row = store.fetchone("SELECT fetched_at, markets FROM market_cache WHERE mode = ?", [mode])
    if row is None or _stale(row[0], ttl_s):
        return None
    return json.loads(row[1])


def save_markets(store: Store, mode: str, markets: list[dict[str, Any]]) -> None:
    store.execute(
        "INSERT INTO market_cache (mode, fetched_at, markets) VALUES (?, ?, ?) "
        "ON CONFLICT (mode) DO UPDATE SET fetched_at = excluded.fetched_at, "
        "markets = excluded.markets",
        [mode, utcnow(), json.dumps(markets, default=str)],
    )


def cached_hedge_mode(store: Store, mode: str, ttl_s: int) -> bool | None:
    value = get_state(store, f"position_mode:{mode}")
    if value is None or _stale(datetime.fromisoformat(value["checked_at"]), ttl_s):
        return None
    return bool(value["hedge"])


def save_hedge_mode(store: Store, mode: str, hedge: bool) -> None:
    set_state(store, f"position_mode:{mode}", {"hedge": hedge, "checked_at": utcnow().isoformat()})


def forget_symbol_setups(store: Store, mode: str) -> int:
    """Drop the per-symbol margin mode and leverage memory: the next trade sets them again."""
    row = store.fetchone("SELECT count(*) FROM symbol_setup WHERE mode = ?", [mode])
    store.execute("DELETE FROM symbol_setup WHERE mode = ?", [mode])
    return int(row[0]) if row else 0


def save_symbol_setup(store: Store, mode: str, symbol: str, leverage: int, margin: str) -> None:
    store.execute(
        "INSERT INTO symbol_setup VALUES (?, ?, ?, ?, ?) ON CONFLICT (mode, symbol) DO UPDATE "
        "SET leverage = excluded.leverage, margin_mode = excluded.margin_mode, "
        "updated_at = excluded.updated_at",
        [mode, symbol, leverage, margin, utcnow()],
    )


def _stale(fetched_at: datetime, ttl_s: int) -> bool:
    return utcnow() - fetched_at > timedelta(seconds=ttl_s)


def symbol_setups(store: Store, mode: str) -> dict[str, tuple[int, str]]:
    """Every symbol's remembered (leverage, margin mode) for this mode, in one query."""
    rows = store.fetchall(
        "SELECT symbol, leverage, margin_mode FROM symbol_setup WHERE mode = ?", [mode]
    )
    return {symbol: (int(leverage), str(margin)) for symbol, leverage, margin in rows}
