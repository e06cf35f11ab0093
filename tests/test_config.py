"""Settings: toml + QTRADER_* env + seed env names + profiles, validated once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from qtrader.config import SettingsRequest, load_settings
from qtrader.errors import ConfigError
from tests.conftest import invoke, invoke_json


def load(env: dict[str, str] | None = None, **request: str) -> object:
    return load_settings(SettingsRequest(**request), environ=env or {})


def test_defaults_are_the_seeds_values():
    s = load()
    assert s.mode == "paper"
    assert (s.risk.risk_per_trade, s.risk.max_leverage, s.risk.max_position_usd) == (
        Decimal("0.01"),
        3,
        Decimal("1000"),
    )
    assert (s.risk.confidence_threshold, s.risk.max_drawdown_pct) == (Decimal("0.55"), Decimal("4"))
    assert s.risk.sizing == "auto" and s.risk.pyramiding is False
    assert s.exchange.margin_mode == "isolated" and s.exchange.name == "binanceusdm"


def test_toml_then_env_then_flags(tmp_path):
    (tmp_path / "qtrader.toml").write_text(
        '[exchange]\nmode = "testnet"\n[risk]\nmax_leverage = 2\nmax_position_usd = 250\n'
    )
    s = load({"QTRADER_RISK_MAX_LEVERAGE": "1"})
    assert s.config_file == "qtrader.toml"
    assert (s.mode, s.risk.max_leverage, s.risk.max_position_usd) == ("testnet", 1, Decimal("250"))
    assert load(mode="paper").mode == "paper"


def test_profiles_carry_the_seed_presets(tmp_path):
    c = load(profile="conservative").risk
    assert (c.risk_per_trade, c.max_leverage, c.max_position_usd, c.confidence_threshold,
            c.max_drawdown_pct) == (Decimal("0.001"), 1, Decimal("50"), Decimal("0.75"), Decimal("2"))  # fmt: skip
    a = load({"QTRADER_PROFILE": "aggressive"}).risk
    assert (a.risk_per_trade, a.max_leverage, a.max_position_usd, a.confidence_threshold,
            a.max_drawdown_pct) == (Decimal("0.02"), 5, Decimal("5000"), Decimal("0.5"), Decimal("6"))  # fmt: skip
    # a profile named in the file; explicit values beat the profile
    (tmp_path / "qtrader.toml").write_text('profile = "conservative"\n[risk]\nmax_leverage = 2\n')
    s = load()
    assert s.profile == "conservative" and s.risk.max_leverage == 2
    assert s.risk.max_position_usd == Decimal("50")


def test_seed_deployment_variables_are_accepted_and_qtrader_names_win():
    env = {"MAX_RISK_PER_TRADE": "0.005", "MAX_LEVERAGE": "2", "MAX_POSITION_SIZE": "300",
           "CONFIDENCE_THRESHOLD": "0.6", "MAX_DRAWDOWN": "3.5"}  # fmt: skip
    r = load(env).risk
    assert (r.risk_per_trade, r.max_leverage, r.max_position_usd, r.confidence_threshold,
            r.max_drawdown_pct) == (Decimal("0.005"), 2, Decimal("300"), Decimal("0.6"), Decimal("3.5"))  # fmt: skip
    assert load({**env, "QTRADER_RISK_MAX_LEVERAGE": "1"}).risk.max_leverage == 1


def test_seed_testnet_and_paper_variables_never_choose_the_mode():
    assert load({"TESTNET": "false", "PAPER_TRADING": "false"}).mode == "paper"


def test_api_url_short_form():
    assert load({"QTRADER_API_URL": "http://127.0.0.1:9"}).exchange.api_url == "http://127.0.0.1:9"


def test_optional_limits_can_be_switched_off():
    assert load({"QTRADER_RISK_DAILY_LOSS_LIMIT_PCT": "off"}).risk.daily_loss_limit_pct is None


BAD = [
    ("unknown key in file", "[risk]\nmax_levrage = 2\n", {},
     "qtrader.toml: unknown setting [risk] max_levrage (did you mean max_leverage?)"),
    ("unknown section", "[rsk]\nmax_leverage = 2\n", {}, "unknown section [rsk] (did you mean risk?)"),
    ("bad value in file", "[risk]\nmax_leverage = 'lots'\n", {},
     "qtrader.toml [risk] max_leverage: expected a number, got 'lots'"),
    ("out of range", "[risk]\nmax_leverage = 500\n", {}, "max_leverage: 500 is above the maximum 125"),
    ("not a choice", '[exchange]\nmode = "mainnet"\n', {},
     "[exchange] mode: 'mainnet' is not one of paper, testnet, live"),
    ("toml syntax", "[risk\n", {}, "qtrader.toml: "),
    ("unknown env var", "", {"QTRADER_RISK_MAX_LEVERAGES": "2"},
     "QTRADER_RISK_MAX_LEVERAGES: unknown setting [risk] max_leverages"),
    ("unknown QTRADER_ variable", "", {"QTRADER_MODE": "live"}, "unknown environment variable QTRADER_MODE"),
    ("bad env value", "", {"QTRADER_RISK_PYRAMIDING": "maybe"},
     "QTRADER_RISK_PYRAMIDING: expected true or false, got 'maybe'"),
    ("bad seed value", "", {"MAX_LEVERAGE": "3.5"}, "MAX_LEVERAGE: expected a whole number, got '3.5'"),
    ("non-finite", "", {"QTRADER_RISK_MAX_POSITION_USD": "inf"}, "expected a finite number"),
    ("unknown profile", "", {"QTRADER_PROFILE": "yolo"}, "unknown profile 'yolo'"),
]  # fmt: skip


@pytest.mark.parametrize(("description", "toml", "env", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_settings_name_the_key(tmp_path, description, toml, env, message):
    if toml:
        (tmp_path / "qtrader.toml").write_text(toml)
    with pytest.raises(ConfigError) as exc:
        load(env)
    assert message in str(exc.value), description


def test_bad_setting_exits_2_with_one_line_naming_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("QTRADER_RISK_MAX_LEVERAGE", "abc")
    result = invoke("status")
    assert result.exit_code == 2
    assert result.stderr == "error: QTRADER_RISK_MAX_LEVERAGE: expected a number, got 'abc'\n"


def test_missing_config_file_exits_2(tmp_path):
    code, doc = invoke_json("--config", "nope.toml", "status")
    assert code == 2 and doc["ok"] is False
    assert "config file nope.toml does not exist" in doc["error"]


def test_conflicting_mode_flags_exit_2():
    result = invoke("--paper", "--testnet", "status")
    assert result.exit_code == 2
    assert "choose one of --paper, --testnet, --live" in result.output


def test_mode_flag_reaches_the_output(tmp_path):
    code, doc = invoke_json("--testnet", "status")
    assert code == 0 and doc["mode"] == "testnet"
    assert "mode TESTNET" in invoke("status", "--testnet").stdout
