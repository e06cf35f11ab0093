"""doctor: is this machine ready to trade? Each check says PASS, WARN or FAIL, and the fix.

Exit 1 when any check fails. It sends no order: it reads the clock, the account, the position
mode and (on mainnet) the key's permissions, and looks at DuckDB and the signal source.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from qtrader.domain.numbers import plain
from qtrader.errors import ExitCode, QtraderError
from qtrader.exchange import DEMO_NAMES, LIVE_NAMES, key_vars, open_exchange
from qtrader.output import Result, Table, mode_label
from qtrader.steps import RunContext
from qtrader.steps.halting import in_force
from qtrader.store.exchange_cache import cached_hedge_mode, forget_symbol_setups, save_hedge_mode
from qtrader.store.migrations import available

MAX_SKEW_MS = 1000  # Binance rejects requests outside recvWindow; qtrader resyncs, but a host
# this far off is drifting and should run an NTP client


@dataclass
class Check:
    name: str
    status: str  # PASS | WARN | FAIL
    detail: str
    fix: str = ""


def doctor(ctx: RunContext) -> Result:
    checks = [
        *_setup(ctx),
        _database(ctx),
        _halt(ctx),
        *_exchange_checks(ctx),
        *_source_checks(),
    ]
    failed = [c for c in checks if c.status == "FAIL"]
    result = Result(
        data={"checks": [asdict(c) for c in checks], "failed": len(failed)},
        tables=[
            Table(
                "doctor",
                ["check", "status", "detail", "fix"],
                [[c.name, c.status, c.detail, c.fix] for c in checks],
            )
        ],
        summary={"failed": len(failed)},
    )
    if failed:
        result.exit_code, result.outcome = ExitCode.FAILURE, "failed"
        result.error = "; ".join(f"{c.name}: {c.detail}" for c in failed)
    return result


def _setup(ctx: RunContext) -> list[Check]:
    """What this run is pointed at: the mode and the settings file (`qtrader config` has all)."""
    config = ctx.settings.config_file
    return [
        Check("mode", "PASS", mode_label(ctx.mode, ctx.settings.exchange.name)),
        Check(
            "config file",
            "PASS",
            str(Path(config).resolve()) if config else "none: defaults and QTRADER_* environment",
        ),
    ]


def _database(ctx: RunContext) -> Check:
    latest = max(v for v, _, _ in available())
    row = ctx.store.fetchone("SELECT max(version) FROM schema_version")
    version = row[0] if row else None
    if version == latest:
        where = Path(ctx.store.path).resolve()
        return Check("database", "PASS", f"{where} writable, schema version {version}")
    return Check(
        "database",
        "FAIL",
        f"schema version {version}, expected {latest}",
        "run any qtrader command with this --db to migrate it",
    )


def _halt(ctx: RunContext) -> Check:
    halts = in_force(ctx)
    if not halts:
        return Check("halt", "PASS", "not halted")
    return Check(
        "halt",
        "WARN",
        "HALTED " + "; ".join(f"({h.kind}): {h.reason}" for h in halts),
        "qtrader resume, once the cause is understood",
    )


def _keys(mode: str, exchange: str) -> Check:
    for names in key_vars(exchange):
        key = os.environ.get(names.key, "")
        needed = [names.secret]
        if exchange == "okx" and names.passphrase:
            needed.append(names.passphrase)
        if key and all(os.environ.get(v) for v in needed):
            return Check(
                "api keys", "PASS", f"{names.key}={key[:4]}… and {' and '.join(needed)} are set"
            )
    own = key_vars(exchange)[0]
    wanted = " / ".join(v for v in (own.key, own.secret, own.passphrase) if v)
    kind = DEMO_NAMES.get(exchange) if mode == "testnet" else LIVE_NAMES.get(exchange)
    return Check(
        "api keys",
        "FAIL",
        f"{wanted} are not set",
        f"export your {kind} keys (environment only, never a file in the repo)",
    )


def _exchange_checks(ctx: RunContext) -> list[Check]:
    mode = ctx.mode
    if mode == "paper":
        return [_guarded("paper exchange", lambda: _paper(ctx))]
    keys = _keys(mode, ctx.settings.exchange.name)
    if keys.status == "FAIL":
        return [keys]
    checks = [keys]
    try:
        exchange = open_exchange(ctx.settings, ctx.yes_live, store=ctx.store)
    except QtraderError as exc:
        return [*checks, Check("exchange", "FAIL", str(exc), "see the message")]
    checks.append(Check("api url", "PASS", _api_url(ctx, exchange.host)))
    checks.append(_guarded("clock", lambda: _clock(exchange)))
    account = _guarded("futures account", lambda: _account(exchange))
    checks.append(account)
    if account.status == "FAIL" and "refused the API key" in account.detail:
        checks.append(
            Check(
                "key permissions",
                "FAIL",
                "not usable: the exchange refused the key (see futures account)",
                "fix the key first (its variables, futures permission, IP whitelist)",
            )
        )
    elif account.status == "FAIL":
        checks.append(
            Check(
                "key permissions",
                "WARN",
                "not checked: the futures account could not be read (see futures account)",
                "fix that first, then run doctor again",
            )
        )
    else:
        checks.append(_guarded("key permissions", lambda: _permissions(exchange)))
    if hasattr(exchange, "account_mode"):  # OKX: swaps need a futures-capable account mode
        checks.append(_guarded("account mode", lambda: _account_mode(exchange)))
    checks.append(_guarded("position mode", lambda: _position_mode(ctx, exchange)))
    forgotten = forget_symbol_setups(ctx.store, mode)
    where = "sent on every order" if exchange.name == "okx" else "set per symbol on its next trade"
    checks.append(
        Check(
            "margin mode",
            "PASS",
            f"{ctx.settings.exchange.margin_mode} ({where}"
            + (f"; {forgotten} cached symbol set-up(s) cleared)" if forgotten else ")"),
        )
    )
    checks.append(_markets_cache(ctx))
    return checks


def _api_url(ctx: RunContext, host: str) -> str:
    origin = ctx.settings.origins.get("exchange.api_url")
    return host + (f" (exchange.api_url from {origin[1]})" if origin else "")


def _paper(ctx: RunContext) -> Check:
    """PAPER: the simulator's prices are readable and its account opens; no keys involved."""
    exchange = open_exchange(ctx.settings, ctx.yes_live, store=ctx.store)
    account = exchange.account()
    marks = exchange.mark_prices()
    return Check(
        "paper exchange",
        "PASS",
        f"{exchange.host}: {len(marks)} symbols priced, equity {plain(account.equity)} USDT "
        "(simulated; run doctor with --testnet or --live to check Binance)",
    )


def _guarded(name: str, check: Any) -> Check:
    try:
        return check()
    except QtraderError as exc:
        return Check(name, "FAIL", str(exc), _fix_for(str(exc)))


def _fix_for(message: str) -> str:
    if "refused the API key" in message:
        return "check the key, its futures permission and its IP whitelist"
    if "did not answer" in message or "cannot" in message:
        return "check the network and exchange.api_url"
    return "see the message"


def _clock(exchange: Any) -> Check:
    skew = exchange.sync_clock()
    detail = f"local clock is {skew:+d} ms off the exchange"
    if abs(skew) > MAX_SKEW_MS:
        return Check(
            "clock",
            "FAIL",
            f"{detail}, more than the {MAX_SKEW_MS} ms allowed: this clock is drifting",
            "install and run an NTP client (chrony, systemd-timesyncd)",
        )
    return Check("clock", "PASS", f"{detail}; requests are signed with the exchange's time")


def _account(exchange: Any) -> Check:
    account = exchange.account()
    detail = (
        f"equity {account.equity} USDT, available {account.available}, "
        f"{len(account.positions)} open position(s)"
    )
    if account.equity <= 0:
        return Check("futures account", "WARN", detail, "fund the futures wallet")
    return Check("futures account", "PASS", detail)


def _permissions(exchange: Any) -> Check:
    restrictions = exchange.api_restrictions()
    if restrictions is None:
        return Check("key permissions", "PASS", "demo trading: no withdrawal permission exists")
    if not restrictions.get("enableFutures"):
        return Check(
            "key permissions",
            "FAIL",
            "the key cannot trade futures",
            "enable Futures on the key in API Management",
        )
    if restrictions.get("enableWithdrawals"):
        return Check(
            "key permissions",
            "WARN",
            "the key can WITHDRAW funds",
            "disable withdrawals on a trading key",
        )
    if not restrictions.get("ipRestrict"):
        return Check(
            "key permissions",
            "WARN",
            "the key works from any IP",
            "restrict it to this machine's IP",
        )
    return Check("key permissions", "PASS", "futures on, withdrawals off, IP restricted")


def _account_mode(exchange: Any) -> Check:
    ok, name = exchange.account_mode()
    if ok:
        return Check("account mode", "PASS", f"{name}: swaps can be traded")
    return Check(
        "account mode",
        "FAIL",
        f"{name}: this account mode cannot trade swaps",
        "switch the account to Spot and futures mode (OKX: Settings → Account mode)",
    )


def _position_mode(ctx: RunContext, exchange: Any) -> Check:
    """Read fresh from the exchange, and the cache execute uses is updated with it."""
    hedge = exchange.hedge_mode()
    cached = cached_hedge_mode(ctx.store, ctx.mode, ctx.settings.exchange.markets_ttl_s)
    save_hedge_mode(ctx.store, ctx.mode, hedge)
    detail = "hedge (dual-side)" if hedge else "one-way"
    if cached is not None and cached != hedge:
        detail += f" (changed: the cache said {'hedge' if cached else 'one-way'}; updated)"
    else:
        detail += " (cache refreshed)"
    if hedge and not getattr(exchange, "trades_hedge_mode", True):
        return Check(
            "position mode",
            "FAIL",
            f"{detail}: qtrader trades this exchange in one-way mode only",
            "switch the USDT perpetuals to one-way (Position mode) on the exchange",
        )
    return Check("position mode", "PASS", detail)


def _markets_cache(ctx: RunContext) -> Check:
    row = ctx.store.fetchone("SELECT fetched_at FROM market_cache WHERE mode = ?", [ctx.mode])
    if row is None:
        return Check("markets cache", "PASS", "empty: the next execute loads the markets")
    age_s = (ctx.now() - row[0]).total_seconds()
    stale = age_s > ctx.settings.exchange.markets_ttl_s
    return Check(
        "markets cache", "PASS", f"{age_s:.0f} s old" + (" (will refresh)" if stale else "")
    )


def _source_checks() -> list[Check]:
    source = os.environ.get("QTRADER_SIGNAL_SOURCE", "")
    if not source.lower().startswith(("redis://", "rediss://")):
        return []
    from qtrader.secrets import redact_url

    try:
        import redis

        url = source.split("?", 1)[0]
        redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3).ping()
    except Exception as exc:  # any failure to reach it is the finding
        return [
            Check(
                "redis",
                "FAIL",
                f"{redact_url(source)}: {type(exc).__name__}",
                "start redis-server or fix QTRADER_SIGNAL_SOURCE",
            )
        ]
    return [Check("redis", "PASS", f"{redact_url(source)} answers")]
