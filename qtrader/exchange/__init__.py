"""The Exchange port and its adapters. `open_exchange` is the one place a mode becomes an
adapter, and where mainnet is refused unless confirmed."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from qtrader.config import Settings
from qtrader.errors import ConfigError, UsageError
from qtrader.exchange.port import Exchange

if TYPE_CHECKING:
    from qtrader.store import Store


@dataclass(frozen=True)
class KeyNames:
    """The environment variables one exchange's credentials are read from."""

    key: str
    secret: str
    passphrase: str | None = None  # OKX only


@dataclass(frozen=True)
class Credentials:
    api_key: str
    secret: str
    passphrase: str | None = None
    source: str = ""  # the variable the key came from (never the key)


GENERIC_KEYS = KeyNames("QTRADER_API_KEY", "QTRADER_API_SECRET", "QTRADER_API_PASSPHRASE")
KEY_NAMES: dict[str, tuple[KeyNames, ...]] = {
    "binanceusdm": (KeyNames("BINANCE_API_KEY", "BINANCE_API_SECRET"), GENERIC_KEYS),
    "bybit": (KeyNames("BYBIT_API_KEY", "BYBIT_API_SECRET"), GENERIC_KEYS),
    "okx": (KeyNames("OKX_API_KEY", "OKX_API_SECRET", "OKX_API_PASSPHRASE"), GENERIC_KEYS),
}
KEY_VARS = tuple((k.key, k.secret) for k in KEY_NAMES["binanceusdm"])  # Binance's, as before
DEMO_NAMES = {
    "binanceusdm": "Binance demo-trading",
    "bybit": "Bybit demo-trading (made on bybit.com in Demo Trading mode, not testnet)",
    "okx": "OKX demo-trading",
}
LIVE_NAMES = {"binanceusdm": "Binance mainnet", "bybit": "Bybit mainnet", "okx": "OKX mainnet"}

# name → opener(settings, mode, credentials, store). An exchange validation accepts but this
# version cannot trade yet is listed with None (a clear ConfigError, never a silent fallback).
Opener = Callable[["Settings", str, Credentials, "Store | None"], Exchange]


def key_vars(exchange: str) -> tuple[KeyNames, ...]:
    return KEY_NAMES.get(exchange, KEY_NAMES["binanceusdm"])


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
    opener = _opener(settings.exchange.name)
    return opener(settings, mode, credentials(env, mode, settings.exchange.name), store)


def check_exchange_access(
    settings: Settings, yes_live: bool, environ: dict[str, str] | None = None
) -> None:
    """What open_exchange refuses (mainnet unconfirmed, an exchange not supported yet, no
    keys), without opening it: a run with nothing to send still reports a set-up that would
    fail at the next signal."""
    env = dict(os.environ if environ is None else environ)
    if settings.mode == "paper":
        return
    if settings.mode == "live" and not live_confirmed(yes_live, env):
        raise UsageError(
            "--live sends real orders with real money; confirm with --yes-live or "
            "QTRADER_LIVE_CONFIRM=yes"
        )
    _opener(settings.exchange.name)
    credentials(env, settings.mode, settings.exchange.name)


def _opener(name: str) -> Opener:
    openers: dict[str, Opener | None] = {"binanceusdm": _binance, "bybit": _bybit, "okx": _okx}
    opener = openers.get(name)
    if opener is None:
        raise ConfigError(
            f"exchange {name!r} is not yet supported by this qtrader version; "
            f"supported: {', '.join(n for n, o in openers.items() if o is not None)}"
        )
    return opener


def _common(
    settings: Settings, mode: str, creds: Credentials, store: Store | None
) -> dict[str, Any]:
    """What every adapter is opened with."""
    ex = settings.exchange
    return {
        "mode": mode,
        "api_key": creds.api_key,
        "api_secret": creds.secret,
        "api_url": ex.api_url,
        "timeout_s": float(ex.timeout_s),
        "read_retries": ex.read_retries,
        "retry_wait_s": float(ex.retry_wait_s),
        "before_network": store.release if store is not None else None,  # the lock, never held
    }


def _binance(
    settings: Settings, mode: str, creds: Credentials, store: Store | None = None
) -> Exchange:
    from qtrader.exchange.binance import BinanceUsdm  # ccxt is heavy: import only when trading

    return BinanceUsdm(**_common(settings, mode, creds, store))


def _bybit(
    settings: Settings, mode: str, creds: Credentials, store: Store | None = None
) -> Exchange:
    from qtrader.exchange.bybit import BybitLinear  # ccxt is heavy: import only when trading

    wait = min(1.0, float(settings.exchange.retry_wait_s) * 2)
    return BybitLinear(**_common(settings, mode, creds, store), lookup_wait_s=wait)


def _okx(settings: Settings, mode: str, creds: Credentials, store: Store | None = None) -> Exchange:
    from qtrader.exchange.okx import EXP_TIME_S, OkxSwap  # ccxt is heavy: import when trading

    ex = settings.exchange
    return OkxSwap(
        **_common(settings, mode, creds, store),
        passphrase=creds.passphrase or "",
        margin_mode=ex.margin_mode,
        # an entry must be dead on OKX well before it may be given up as never arrived
        exp_time_s=min(EXP_TIME_S, ex.unknown_order_grace_s / 2),
    )


def credentials(env: dict[str, str], mode: str, exchange: str) -> Credentials:
    """The exchange's own variables first, then QTRADER_API_*; never from a file."""
    for names in key_vars(exchange):
        key, secret = env.get(names.key, "").strip(), env.get(names.secret, "").strip()
        if not (key and secret):
            continue
        passphrase = env.get(names.passphrase, "").strip() if names.passphrase else None
        if exchange == "okx" and not passphrase:
            continue
        return Credentials(key, secret, passphrase or None, names.key)
    own = key_vars(exchange)[0]
    wanted = " and ".join(v for v in (own.key, own.secret, own.passphrase) if v)
    kind = DEMO_NAMES.get(exchange, exchange) if mode == "testnet" else LIVE_NAMES.get(exchange)
    raise ConfigError(
        f"no API keys: set {wanted} to your {kind} keys "
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

    # public market data only: no keys, no orders (paper follows Binance's rules)
    public = _binance(settings, "live", Credentials("", ""))
    return PaperExchange(store, paper, LivePrices(public), wall_utcnow)
