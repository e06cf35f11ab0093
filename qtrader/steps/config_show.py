"""config: every setting in effect, its value and where it came from; secrets masked.

Sources, weakest first: default → profile → file (qtrader.toml / --config) → env
(QTRADER_<SECTION>_<KEY>, QTRADER_API_URL, the seeds' names) → flag (--paper/--testnet/--live).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from qtrader.config import DEFAULT_CONFIG_FILE, DEFAULT_DB, Settings
from qtrader.exchange import key_vars
from qtrader.output import Result, Table
from qtrader.steps import RunContext


def show_config(ctx: RunContext) -> Result:
    settings = ctx.settings
    context = [
        _row("db", str(Path(ctx.store.path).resolve()), *_db_source(ctx.store.path)),
        _row("config_file", _abs(settings.config_file), *_config_source(settings.config_file)),
        _row("profile", settings.profile, *_profile_source(settings.profile)),
        *_keys(settings.exchange.name),
    ]
    rows = context + settings.effective()
    changed = [r for r in rows if r["source"] != "default"]
    return Result(
        data={"settings": rows},
        lines=[
            f"{len(rows)} settings; {len(changed)} not at their default. Sources: default, "
            "profile, file, env, flag"
        ],
        tables=[
            Table(
                "settings in effect",
                ["setting", "value", "source", "where"],
                [[r["setting"], _shown(r["value"]), r["source"], r["where"]] for r in rows],
            )
        ],
    )


def brief_line(settings: Settings, db: str) -> str:
    """What a job trades with, on one line: mode, database, settings file, the main limits."""
    risk = settings.risk
    return (
        f"mode {settings.mode} · db {Path(db).resolve()} · config "
        f"{_abs(settings.config_file) or 'none'} · profile {settings.profile or 'none'} · "
        f"max_position_usd {risk.max_position_usd} · max_leverage {risk.max_leverage}"
    )


def _row(setting: str, value: Any, source: str, where: str) -> dict[str, Any]:
    return {"setting": setting, "value": value, "source": source, "where": where, "env": None}


def _abs(path: str | None) -> str | None:
    return str(Path(path).resolve()) if path else None


def _db_source(path: str) -> tuple[str, str]:
    if os.environ.get("QTRADER_DB") == path:
        return "env", "QTRADER_DB"
    if path == DEFAULT_DB:
        return "default", ""
    return "flag", "--db"


def _config_source(path: str | None) -> tuple[str, str]:
    if path is None:
        return "default", f"no {DEFAULT_CONFIG_FILE} here"
    if os.environ.get("QTRADER_CONFIG") == path:
        return "env", "QTRADER_CONFIG"
    if path == DEFAULT_CONFIG_FILE:
        return "default", f"./{DEFAULT_CONFIG_FILE}"
    return "flag", "--config"


def _profile_source(profile: str | None) -> tuple[str, str]:
    if profile is None:
        return "default", ""
    if os.environ.get("QTRADER_PROFILE") == profile:
        return "env", "QTRADER_PROFILE"
    return "flag", "--profile (or profile = in the file)"


def _keys(exchange: str) -> list[dict[str, Any]]:
    rows = []
    for names in key_vars(exchange):
        key, secret = os.environ.get(names.key, ""), os.environ.get(names.secret, "")
        if key or secret:
            shown = f"{key[:4]}…" if key else "(not set)"
            rows.append(_row("api_key", shown, "env", names.key))
            rows.append(_row("api_secret", "***" if secret else "(not set)", "env", names.secret))
            if names.passphrase and exchange == "okx":
                given = os.environ.get(names.passphrase, "")
                rows.append(
                    _row("api_passphrase", "***" if given else "(not set)", "env", names.passphrase)
                )
            return rows
    own = key_vars(exchange)[0]
    return [_row("api_key", "(not set)", "default", f"{own.key} / {own.secret}")]


def _shown(value: Any) -> Any:
    if isinstance(value, tuple):
        return ", ".join(value) or "(empty)"
    return value
