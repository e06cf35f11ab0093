"""The Exchange port and its adapters. `open_exchange` is the one place a mode becomes an
adapter, and where mainnet is refused unless confirmed."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from qtrader.config import Settings
from qtrader.errors import ConfigError, UsageError
from qtrader.exchange.port import Exchange

if TYPE_CHECKING:
    from qtrader.store import Store

KEY_VARS = (("BINANCE_API_KEY", "BINANCE_API_SECRET"), ("QTRADER_API_KEY", "QTRADER_API_SECRET"))


def live_confirmed(yes_live: bool, environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return yes_live or env.get("QTRADER_LIVE_CONFIRM", "").strip().lower() == "yes"


def open_exchange(
    settings: Settings,
    yes_live: bool,
    environ: dict[str, str] | None = None,
    store: Store | None = None,
) -> Exchange:
    env = dict(os.environ if environ is None else environ)
    mode = settings.mode
    if mode == "paper":
        if store is None:
            raise ValueError("the paper exchange keeps its books in the store: pass store=")
        return open_paper(settings, store)
    check_exchange_access(settings, yes_live, env)
    return _binance(settings, mode, *_keys(env, mode), store=store)


def check_exchange_access(
    settings: Settings, yes_live: bool, environ: dict[str, str] | None = None
) -> None:
    """What open_exchange refuses (mainnet unconfirmed, no keys), without opening it: a run
    with nothing to send still reports a set-up that would fail at the next signal."""
    env = dict(os.environ if environ is None else environ)
    if settings.mode == "paper":
        return
    if settings.mode == "live" and not live_confirmed(yes_live, env):
        raise UsageError(
            "--live sends real orders with real money; confirm with --yes-live or "
            "QTRADER_LIVE_CONFIRM=yes"
        )
    _keys(env, settings.mode)


def _binance(
    settings: Settings, mode: str, api_key: str, api_secret: str, store: Store | None = None
) -> Exchange:
    from qtrader.exchange.binance import BinanceUsdm  # ccxt is heavy: import only when trading

    ex = settings.exchange
    return BinanceUsdm(
        mode=mode,
        api_key=api_key,
        api_secret=api_secret,
        api_url=ex.api_url,
        timeout_s=float(ex.timeout_s),
        read_retries=ex.read_retries,
        retry_wait_s=float(ex.retry_wait_s),
        before_network=store.release if store is not None else None,  # the lock, never held
    )


def _keys(env: dict[str, str], mode: str) -> tuple[str, str]:
    for key_var, secret_var in KEY_VARS:
        if env.get(key_var) and env.get(secret_var):
            return env[key_var].strip(), env[secret_var].strip()
    kind = "Binance demo-trading" if mode == "testnet" else "Binance mainnet"
    raise ConfigError(
        f"no API keys: set BINANCE_API_KEY and BINANCE_API_SECRET to your {kind} keys "
        "(environment only; qtrader never reads keys from files or stores them)"
    )


def replaying(settings: Settings) -> bool:
    return settings.mode == "paper" and settings.paper.prices.strip().lower() != "live"


def market_now(settings: Settings, store: Store) -> Callable[[], datetime] | None:
    """The market's clock for a run: the replay clock (fixed for the run) when paper mode
    replays a file, else None (the wall clock)."""
    if not replaying(settings):
        return None
    from qtrader.exchange.prices import replay_clock

    moment = replay_clock(store, settings.paper.prices)
    return lambda: moment


def open_paper(settings: Settings, store: Store) -> Exchange:
    """The paper exchange, on replayed candles or on Binance's public market data."""
    from qtrader.exchange.paper import PaperExchange
    from qtrader.exchange.prices import LivePrices, ReplayPrices

    paper = settings.paper
    now = market_now(settings, store)
    if now is not None:
        return PaperExchange(store, paper, ReplayPrices(store, paper.prices), now)
    from qtrader.clock import wall_utcnow

    public = _binance(settings, "live", "", "")  # public market data only: no keys, no orders
    return PaperExchange(store, paper, LivePrices(public), wall_utcnow)
