"""The Exchange port and its adapters. `open_exchange` is the one place a mode becomes an
adapter, and where mainnet is refused unless confirmed."""

from __future__ import annotations

import os

from qtrader.config import Settings
from qtrader.errors import ConfigError, UsageError
from qtrader.exchange.port import Exchange

KEY_VARS = (("BINANCE_API_KEY", "BINANCE_API_SECRET"), ("QTRADER_API_KEY", "QTRADER_API_SECRET"))


def live_confirmed(yes_live: bool, environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return yes_live or env.get("QTRADER_LIVE_CONFIRM", "").strip().lower() == "yes"


def open_exchange(
    settings: Settings, yes_live: bool, environ: dict[str, str] | None = None
) -> Exchange:
    env = dict(os.environ if environ is None else environ)
    mode = settings.mode
    if mode == "paper":
        raise UsageError(
            "paper mode has no simulator yet (it arrives with the paper-mode issue), and qtrader "
            "does not pretend to fill orders; use --testnet for real orders on Binance demo money"
        )
    if mode == "live" and not live_confirmed(yes_live, env):
        raise UsageError(
            "--live sends real orders with real money; confirm with --yes-live or "
            "QTRADER_LIVE_CONFIRM=yes"
        )
    api_key, api_secret = _keys(env, mode)
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
