"""Settings: defaults → profile → qtrader.toml → seed env names → QTRADER_* env → flags.

Validated once into frozen dataclasses; an unknown key or a bad value raises ConfigError
naming the key and where it came from. Secrets are never settings: keys are read from the
environment by the exchange adapter and never stored here.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import typing
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from qtrader.errors import ConfigError

MODES = ("paper", "testnet", "live")
EXCHANGES = ("binanceusdm", "bybit", "okx")  # ccxt ids; USDT-margined perpetuals on each
DEFAULT_CONFIG_FILE = "qtrader.toml"
DEFAULT_DB = "data/qtrader.duckdb"


def setting(default: Any, help: str, **rules: Any) -> Any:
    return field(default=default, metadata={"help": help, **rules})


@dataclass(frozen=True)
class ExchangeSettings:
    name: str = setting(
        "binanceusdm",
        "exchange: binanceusdm | bybit | okx (USDT perpetuals; also --exchange)",
        choices=EXCHANGES,
    )
    mode: str = setting(
        "paper", "paper | testnet | live (live also needs confirmation)", choices=MODES
    )
    api_url: str | None = setting(
        None, "replace scheme+host of every REST endpoint (proxy, emulator)"
    )
    margin_mode: str = setting("isolated", "isolated | cross", choices=("isolated", "cross"))
    markets_ttl_s: int = setting(3600, "seconds the cached market list stays fresh", min=0)
    timeout_s: Decimal = setting(Decimal("10"), "HTTP timeout of one exchange request", gt=0)
    read_retries: int = setting(4, "attempts for a read on network errors/429/5xx", min=1, max=10)
    retry_wait_s: Decimal = setting(Decimal("0.5"), "first back-off between attempts", min=0)
    unknown_order_grace_s: int = setting(
        60, "an order of unknown outcome not found after this long is given up", min=5
    )


@dataclass(frozen=True)
class RiskSettings:
    sizing: str = setting(
        "auto",
        "auto (the signal's position_size_usd, else risk) | risk | notional | signal",
        choices=("auto", "risk", "notional", "signal"),
    )
    risk_per_trade: Decimal = setting(
        Decimal("0.01"), "fraction of equity risked per trade", gt=0, max=1
    )
    max_leverage: int = setting(
        3, "leverage cap; a signal asking for more is clamped", min=1, max=125
    )
    max_position_usd: Decimal = setting(
        Decimal("1000"), "max notional of one position (USDT)", gt=0
    )
    confidence_threshold: Decimal = setting(Decimal("0.55"), "min signal confidence", min=0, max=1)
    max_drawdown_pct: Decimal = setting(
        Decimal("4"), "halt when equity falls this % from peak", gt=0, max=100
    )
    daily_loss_limit_pct: Decimal | None = setting(
        Decimal("5"), "halt on this % daily loss", gt=0, max=100
    )
    max_open_positions: int | None = setting(5, "max concurrently open positions", min=1)
    max_total_exposure_usd: Decimal | None = setting(Decimal("3000"), "max sum of notionals", gt=0)
    max_exposure_x_equity: Decimal | None = setting(
        Decimal("3"), "max sum of notionals as a multiple of equity", gt=0
    )
    max_symbol_exposure_usd: Decimal | None = setting(
        None, "max notional on one symbol (with pyramiding)", gt=0
    )
    max_trades_per_hour: int | None = setting(20, "max entries per rolling hour", min=1)
    max_trades_per_day: int | None = setting(100, "max entries per UTC day", min=1)
    pyramiding: bool = setting(False, "allow adding to an open position")
    max_entries_per_symbol: int = setting(
        3, "with pyramiding: entries into one open position", min=1
    )
    opposite_signal: str = setting(
        "ignore",
        "a signal against an open position: ignore | close | reverse",
        choices=("ignore", "close", "reverse"),
    )
    allowed_symbols: tuple[str, ...] = setting((), "trade only these symbols (empty: all)")
    denied_symbols: tuple[str, ...] = setting((), "never trade these symbols")
    cooldown_after_stop_s: int | None = setting(
        900, "no new entry on a symbol this long after its stop fired", min=1
    )
    max_consecutive_losses: int | None = setting(
        5, "halt after this many losing trades in a row", min=1
    )
    exchange_failure_runs: int | None = setting(
        3, "stop new entries after this many runs in a row whose exchange requests failed", min=1
    )
    max_price_drift_pct: Decimal | None = setting(
        Decimal("1"), "skip when the price moved this % from the signal's", gt=0
    )
    default_stop_loss_pct: Decimal = setting(
        Decimal("2"), "stop distance when a signal has none", gt=0, max=50
    )
    default_take_profit_pct: Decimal | None = setting(
        Decimal("4"), "target distance when a signal has none", gt=0
    )
    signal_ttl_s: int = setting(300, "signals older than this expire instead of trading", min=1)


@dataclass(frozen=True)
class SignalsSettings:
    max_record_bytes: int = setting(65536, "a larger record is stored invalid", min=256)
    max_leverage: int = setting(
        125, "a signal asking for more leverage is invalid (absurd)", min=1, max=125
    )
    http_timeout_s: Decimal = setting(Decimal("10"), "HTTP source timeout (connect and read)", gt=0)
    http_retries: int = setting(3, "attempts on connection errors and 5xx", min=1, max=20)
    http_retry_wait_s: Decimal = setting(
        Decimal("1"), "first back-off between HTTP attempts", min=0
    )
    http_max_bytes: int = setting(10_000_000, "largest HTTP response read", min=1024)
    redis_batch: int = setting(
        1000, "stream entries read and committed per batch", min=1, max=100_000
    )
    redis_timeout_s: Decimal = setting(Decimal("5"), "Redis connect/read timeout", gt=0)


@dataclass(frozen=True)
class ReconcileSettings:
    winner_r: Decimal = setting(
        Decimal("1"), "an open position at this R-multiple or more is a WINNER"
    )
    toxic_r: Decimal = setting(Decimal("-0.5"), "at this R-multiple or less it is TOXIC")
    toxic_after_s: int = setting(14400, "losing for this long makes a position TOXIC", min=1)
    max_holding_s: int | None = setting(None, "close positions older than this (off)", min=60)
    idle_every_s: int = setting(
        300,
        "tick/run: with nothing open or in flight, reconcile with the exchange only this often "
        "(0: every tick); the reconcile command always does",
        min=0,
    )


@dataclass(frozen=True)
class AlertsSettings:
    min_interval_s: int = setting(300, "one alert per kind and symbol at most this often", min=0)
    loss_usd: Decimal | None = setting(None, "alert on a closed trade losing more than this", gt=0)


@dataclass(frozen=True)
class PublishSettings:
    redis_url: str | None = setting(None, "publish execution results to this Redis (off)")
    stream: str = setting("quantum:stream:trade.execution.result", "the stream they go to")
    maxlen: int = setting(100_000, "keep about this many entries in the stream", min=100)


@dataclass(frozen=True)
class RetentionSettings:
    keep_days: int = setting(
        30,
        "qtrader prune (the daily job) archives journal rows, runs, equity snapshots and "
        "finished signals older than this many days; 0: keep everything",
        min=0,
    )
    archive_dir: str = setting(
        "", "where the Parquet archive goes [default: archive/ beside the database]"
    )


@dataclass(frozen=True)
class PaperSettings:
    prices: str = setting(
        "live",
        "live (Binance public market data, no keys) | an OHLCV .csv/.csv.gz/.parquet file replayed",
    )
    balance: Decimal = setting(Decimal("10000"), "USDT a new paper account starts with", gt=0)
    taker_fee_pct: Decimal = setting(
        Decimal("0.05"), "taker fee, % of notional (every qtrader order takes)", min=0, max=1
    )
    slippage_bps: Decimal = setting(
        Decimal("2"), "market-order slippage without an order book (bps)", min=0, max=500
    )
    impact_bps_per_10k: Decimal = setting(
        Decimal("1"), "extra slippage per 10,000 USDT of order notional (bps)", min=0, max=500
    )


@dataclass(frozen=True)
class ExploreSettings:
    every_s: int = setting(
        300,
        "after a run that wrote, refresh the Parquet copy for notebooks (<db>.explore/) if it "
        "is older than this; 0 = never",
        min=0,
    )


@dataclass(frozen=True)
class Settings:
    exchange: ExchangeSettings = field(default_factory=ExchangeSettings)
    risk: RiskSettings = field(default_factory=RiskSettings)
    signals: SignalsSettings = field(default_factory=SignalsSettings)
    reconcile: ReconcileSettings = field(default_factory=ReconcileSettings)
    alerts: AlertsSettings = field(default_factory=AlertsSettings)
    publish: PublishSettings = field(default_factory=PublishSettings)
    paper: PaperSettings = field(default_factory=PaperSettings)
    explore: ExploreSettings = field(default_factory=ExploreSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    profile: str | None = None
    config_file: str | None = None
    # "section.key" → (source, where): source is default | profile | file | env | flag
    origins: dict[str, tuple[str, str]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def mode(self) -> str:
        return self.exchange.mode

    def effective(self) -> list[dict[str, Any]]:
        """Every setting in effect: section, key, value (secrets masked), source and where."""
        from qtrader.secrets import mask, redact_url

        rows = []
        for section, cls in SECTIONS.items():
            values = getattr(self, section)
            for f in dataclasses.fields(cls):
                value = getattr(values, f.name)
                if isinstance(value, str) and "://" in value:
                    value = redact_url(value)
                elif isinstance(value, str):
                    value = mask(value)
                source, where = self.origins.get(f"{section}.{f.name}", ("default", ""))
                rows.append(
                    {
                        "setting": f"{section}.{f.name}",
                        "value": value,
                        "source": source,
                        "where": where,
                        "env": f"QTRADER_{section.upper()}_{f.name.upper()}",
                    }
                )
        return rows


SECTIONS: dict[str, type] = {
    "exchange": ExchangeSettings,
    "risk": RiskSettings,
    "signals": SignalsSettings,
    "reconcile": ReconcileSettings,
    "alerts": AlertsSettings,
    "publish": PublishSettings,
    "paper": PaperSettings,
    "explore": ExploreSettings,
    "retention": RetentionSettings,
}

# The seeds' presets (seed 003, "Customization Examples").
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "conservative": {
        "risk": {
            "risk_per_trade": "0.001",
            "max_leverage": 1,
            "max_position_usd": 50,
            "confidence_threshold": "0.75",
            "max_drawdown_pct": "2.0",
            "daily_loss_limit_pct": "1.0",
            "max_open_positions": 3,
            "max_total_exposure_usd": 150,
            "max_exposure_x_equity": "1",
            "max_trades_per_hour": 5,
            "max_trades_per_day": 20,
            "cooldown_after_stop_s": 3600,
            "max_consecutive_losses": 3,
            "max_price_drift_pct": "0.5",
        }
    },
    "aggressive": {
        "risk": {
            "risk_per_trade": "0.02",
            "max_leverage": 5,
            "max_position_usd": 5000,
            "confidence_threshold": "0.50",
            "max_drawdown_pct": "6.0",
            "daily_loss_limit_pct": "8.0",
            "max_open_positions": 10,
            "max_total_exposure_usd": 25000,
            "max_exposure_x_equity": "5",
            "max_trades_per_hour": 60,
            "max_trades_per_day": 400,
            "cooldown_after_stop_s": 300,
            "max_consecutive_losses": 8,
            "max_price_drift_pct": "2.0",
        }
    },
}

# The seeds' deployment variables (seed 003) that map one-to-one onto a setting.
# TESTNET / PAPER_TRADING are deliberately not mapped: "both false" meant mainnet there,
# and mainnet is never reached by an absent or mistyped variable here.
SEED_ENV: dict[str, tuple[str, str]] = {
    "MAX_RISK_PER_TRADE": ("risk", "risk_per_trade"),
    "MAX_LEVERAGE": ("risk", "max_leverage"),
    "MAX_POSITION_SIZE": ("risk", "max_position_usd"),
    "CONFIDENCE_THRESHOLD": ("risk", "confidence_threshold"),
    "MAX_DRAWDOWN": ("risk", "max_drawdown_pct"),
}

# QTRADER_* variables that are not QTRADER_<SECTION>_<KEY> settings.
OTHER_ENV = {
    "QTRADER_DB": "DuckDB file",
    "QTRADER_CONFIG": "settings file",
    "QTRADER_PROFILE": "settings profile",
    "QTRADER_API_URL": "short form of QTRADER_EXCHANGE_API_URL",
    "QTRADER_API_KEY": "exchange API key (secret)",
    "QTRADER_API_SECRET": "exchange API secret (secret)",
    "QTRADER_API_PASSPHRASE": "exchange API passphrase, OKX (secret)",
    "QTRADER_LIVE_CONFIRM": "yes = confirm --live",
    "QTRADER_LOG_LEVEL": "log level",
    "QTRADER_LOG_FILE": "also write JSON-lines logs here (rotated)",
    "QTRADER_TELEGRAM_TOKEN": "alerts: Telegram bot token (secret)",
    "QTRADER_TELEGRAM_CHAT_ID": "alerts: Telegram chat id",
    "QTRADER_WEBHOOK_URL": "alerts: JSON webhook URL (secret)",
    # read by the job scripts in jobs/, not by qtrader itself
    "QTRADER_ENV_FILE": "jobs: the environment file",
    "QTRADER_BIN": "jobs: the qtrader command",
    "QTRADER_LOG_DIR": "jobs: where job logs go",
    "QTRADER_LOCK_DIR": "jobs: where flock files go",
    "QTRADER_REPORT_DIR": "jobs: where daily reports go",
    "QTRADER_SIGNAL_SOURCE": "jobs: tick's --from",
    "QTRADER_HOME": "jobs: the checkout they run in",
    "QTRADER_LOG_MAX_BYTES": "jobs: a job log past this size is rotated",
    "QTRADER_LOCK_TIMEOUT": "seconds to wait for the DuckDB lock",
}


@dataclass(frozen=True)
class SettingsRequest:
    """What the command line asked for; everything here beats files and environment."""

    config: str | None = None
    profile: str | None = None
    mode: str | None = None
    exchange: str | None = None  # --exchange


def load_settings(request: SettingsRequest, environ: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if environ is None else environ)
    config_path = _config_path(request.config, env)
    file_values = _read_toml(config_path) if config_path else {}

    profile = request.profile or env.get("QTRADER_PROFILE") or file_values.pop("profile", None)
    file_values.pop("profile", None)
    raw: dict[str, dict[str, tuple[Any, str]]] = {name: {} for name in SECTIONS}
    origins: dict[str, tuple[str, str]] = {}
    layers: list[tuple[str, Any]] = []
    if profile is not None:
        layers.append(("profile", lambda: _layer_profile(raw, profile)))
    layers += [
        ("file", lambda: _layer_file(raw, file_values, str(config_path))),
        ("env", lambda: _layer_seed_env(raw, env)),
        ("env", lambda: _layer_qtrader_env(raw, env)),
    ]
    for source, layer in layers:
        before = {(s, k): v for s, values in raw.items() for k, v in values.items()}
        layer()
        for section, values in raw.items():
            for key, value in values.items():
                if before.get((section, key)) is not value:
                    origins[f"{section}.{key}"] = (source, value[1])
    if request.mode:
        raw["exchange"]["mode"] = (request.mode, f"--{request.mode}")
        origins["exchange.mode"] = ("flag", f"--{request.mode}")
    if request.exchange:
        raw["exchange"]["name"] = (request.exchange, "--exchange")
        origins["exchange.name"] = ("flag", "--exchange")

    sections = {name: _build_section(cls, raw[name]) for name, cls in SECTIONS.items()}
    return Settings(
        **sections,
        profile=profile,
        config_file=str(config_path) if config_path else None,
        origins=origins,
    )


def describe_settings() -> list[tuple[str, str, str, str]]:
    """(env var, toml key, default, help) for every setting, for docs and `--help`."""
    rows = []
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            env = f"QTRADER_{section.upper()}_{f.name.upper()}"
            default = ", ".join(f.default) if isinstance(f.default, tuple) else str(f.default)
            rows.append((env, f"[{section}] {f.name}", default or "(empty)", f.metadata["help"]))
    return rows


def _config_path(explicit: str | None, env: dict[str, str]) -> Path | None:
    chosen = explicit or env.get("QTRADER_CONFIG")
    if chosen:
        path = Path(chosen)
        if not path.is_file():
            raise ConfigError(f"config file {chosen} does not exist; check --config/QTRADER_CONFIG")
        return path
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}; fix the TOML syntax there") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from None


def _layer_profile(raw: dict, profile: str) -> None:
    if profile not in PROFILES:
        raise ConfigError(
            f"unknown profile {profile!r}; choose one of: {', '.join(sorted(PROFILES))}"
        )
    for section, values in PROFILES[profile].items():
        for key, value in values.items():
            raw[section][key] = (value, f"profile {profile}")


def _layer_file(raw: dict, values: dict[str, Any], origin: str) -> None:
    for section, table in values.items():
        if section not in SECTIONS:
            raise ConfigError(
                f"{origin}: unknown section [{section}]{_did_you_mean(section, SECTIONS)}"
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{origin}: {section} must be a [section] table")
        for key, value in table.items():
            _check_known(section, key, origin)
            raw[section][key] = (value, f"{origin} [{section}] {key}")


def _layer_seed_env(raw: dict, env: dict[str, str]) -> None:
    for name, (section, key) in SEED_ENV.items():
        if name in env:
            raw[section][key] = (env[name], name)


def _layer_qtrader_env(raw: dict, env: dict[str, str]) -> None:
    if "QTRADER_API_URL" in env:
        raw["exchange"]["api_url"] = (env["QTRADER_API_URL"], "QTRADER_API_URL")
    for name, value in sorted(env.items()):
        if not name.startswith("QTRADER_") or name in OTHER_ENV:
            continue
        section, _, key = name[len("QTRADER_") :].lower().partition("_")
        if section not in SECTIONS or not key:
            known = [*OTHER_ENV, *(f"QTRADER_{s.upper()}_…" for s in SECTIONS)]
            raise ConfigError(
                f"unknown environment variable {name}{_did_you_mean(name, known)}; "
                "unset it or fix its name"
            )
        _check_known(section, key, name)
        raw[section][key] = (value, name)


def _check_known(section: str, key: str, origin: str) -> None:
    names = [f.name for f in dataclasses.fields(SECTIONS[section])]
    if key not in names:
        raise ConfigError(f"{origin}: unknown setting [{section}] {key}{_did_you_mean(key, names)}")


def _did_you_mean(word: str, candidates: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _build_section(cls: type, values: dict[str, tuple[Any, str]]) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in values:
            value, origin = values[f.name]
            kwargs[f.name] = _coerce(value, hints[f.name], f.metadata, origin)
    return cls(**kwargs)


_NONE_WORDS = {"", "none", "off", "null"}
_TRUE_WORDS = {"true", "yes", "1", "on"}
_FALSE_WORDS = {"false", "no", "0", "off"}


def _coerce(value: Any, hint: Any, rules: dict[str, Any], origin: str) -> Any:
    args = typing.get_args(hint)
    optional = type(None) in args  # `X | None`: unwrap X; a tuple[...] keeps its args
    base = next(a for a in args if a is not type(None)) if optional else hint
    if optional and isinstance(value, str) and value.strip().lower() in _NONE_WORDS:
        return None
    if typing.get_origin(base) is tuple:
        result: Any = _to_symbols(value, origin)
    elif base is bool:
        result = _to_bool(value, origin)
    elif base is int:
        result = _to_int(value, origin)
    elif base is Decimal:
        result = _to_decimal(value, origin)
    else:
        if not isinstance(value, str):
            raise ConfigError(f"{origin}: expected text, got {value!r}")
        result = value.strip()
    _check_rules(result, rules, origin)
    return result


def _to_symbols(value: Any, origin: str) -> tuple[str, ...]:
    """A TOML array, or text separated by commas/spaces: `BTCUSDT, ETHUSDT`."""
    from qtrader.domain.signal import InvalidSignal, normalise_symbol

    items = value if isinstance(value, list) else str(value).replace(",", " ").split()
    if not all(isinstance(item, str) for item in items):
        raise ConfigError(f"{origin}: expected symbols like BTCUSDT, got {value!r}")
    try:  # every spelling a signal may use: BTC-USDT, BTC/USDT, … → BTCUSDT
        return tuple(sorted({normalise_symbol(item) for item in items if item.strip()}))
    except InvalidSignal as exc:
        raise ConfigError(f"{origin}: {exc}") from None


def _to_bool(value: Any, origin: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE_WORDS | _FALSE_WORDS:
        return value.strip().lower() in _TRUE_WORDS
    raise ConfigError(f"{origin}: expected true or false, got {value!r}")


def _to_int(value: Any, origin: str) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{origin}: expected a whole number, got {value!r}")
    number = _to_decimal(value, origin)
    if number != number.to_integral_value():
        raise ConfigError(f"{origin}: expected a whole number, got {value!r}")
    return int(number)


def _to_decimal(value: Any, origin: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{origin}: expected a number, got {value!r}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ConfigError(f"{origin}: expected a number, got {value!r}") from None
    if not number.is_finite():
        raise ConfigError(f"{origin}: expected a finite number, got {value!r}")
    return number


def _check_rules(value: Any, rules: dict[str, Any], origin: str) -> None:
    if "choices" in rules and value not in rules["choices"]:
        raise ConfigError(f"{origin}: {value!r} is not one of {', '.join(rules['choices'])}")
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return
    if "min" in rules and value < rules["min"]:
        raise ConfigError(f"{origin}: {value} is below the minimum {rules['min']}")
    if "gt" in rules and value <= rules["gt"]:
        raise ConfigError(f"{origin}: {value} must be greater than {rules['gt']}")
    if "max" in rules and value > rules["max"]:
        raise ConfigError(f"{origin}: {value} is above the maximum {rules['max']}")
