"""Markets for a run: from the DuckDB cache while fresh, else from the exchange (and cached)."""

from __future__ import annotations

from qtrader.domain.market import MarketRules
from qtrader.exchange.port import Exchange
from qtrader.store import Store
from qtrader.store.exchange_cache import cached_markets, save_markets


def load_markets(
    store: Store, exchange: Exchange, mode: str, ttl_s: int, refresh: bool = False
) -> dict[str, MarketRules]:
    markets = None if refresh else cached_markets(store, mode, ttl_s)
    if markets is None:
        markets = exchange.fetch_markets()
        if not (store.sandbox or store.read_only):  # a dry run or a reader writes nothing
            save_markets(store, mode, markets)
    return exchange.use_markets(markets)
