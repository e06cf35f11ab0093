"""Errors as the contract promises them: exit codes as documented, one JSON document on
stdout under --json (usage errors too), --version, and doctor saying what it means."""

from __future__ import annotations

import json

import duckdb
import pytest

from qtrader import __version__
from qtrader.cli import app
from tests.conftest import invoke, invoke_json, runner


@pytest.mark.parametrize(
    ("description", "args", "command", "error"),
    [
        ("unknown command", ["bogus"], None, "No such command 'bogus'."),
        ("unknown option", ["status", "--nope"], "status", "No such option: --nope"),
        ("bad option value", ["execute", "--max", "0"], "execute", "Invalid value for '--max'"),
        ("missing argument", ["sql"], "sql", "Missing argument 'query'."),
        ("two modes", ["--paper", "--live", "status"], "status", "choose one of --paper, --testnet, --live"),
    ],
)  # fmt: skip
def test_usage_errors_under_json_print_one_document(description, args, command, error):
    result = runner.invoke(app, ["--json", *args])
    assert result.exit_code == 2, description
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, (description, result.stdout)
    doc = json.loads(lines[0])
    assert (doc["ok"], doc["exit_code"], doc["command"]) == (False, 2, command)
    assert error in doc["error"], (description, doc)
    assert error in result.stderr  # the human line is still on stderr


def test_usage_error_without_json_prints_nothing_on_stdout():
    result = runner.invoke(app, ["bogus"])
    assert result.exit_code == 2 and result.stdout == ""


def test_version_option_and_command():
    for args in (["--version"], ["version"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and result.stdout == f"qtrader {__version__}\n"
    for args in (["--json", "--version"], ["--version", "--json"], ["version", "--json"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0
        assert json.loads(result.stdout) == {"command": "version", "ok": True, "exit_code": 0,
                                             "version": __version__}  # fmt: skip


@pytest.mark.parametrize("command", [["status"], ["sql", "SELECT 1"], ["pnl-report"]])
def test_read_only_database_file_exits_2_with_the_fix(command, db_path, monkeypatch):
    assert invoke("status").exit_code == 0  # the file exists
    message = f'IO Error: Cannot open file "{db_path}": Permission denied'

    def refuse(*args, **kwargs):
        raise duckdb.IOException(message)

    monkeypatch.setattr(duckdb, "connect", refuse)  # as a non-root user gets from chmod 444
    code, doc = invoke_json(*command)
    assert code == 2, doc
    assert doc["error"].startswith(f"cannot write the database {db_path} (IO Error")
    assert "chmod u+w" in doc["error"] and "--db/QTRADER_DB" in doc["error"]


@pytest.mark.usefixtures("exchange_env")
def test_doctor_clock_wording_is_consistent(binance):
    code, doc = invoke_json("--testnet", "doctor")
    assert code == 0, doc
    clock = {c["name"]: c for c in doc["checks"]}["clock"]
    assert (
        clock["status"] == "PASS"
        and "requests are signed with the exchange's time" in clock["detail"]
    )
    binance.server_time_offset_ms = -8000
    _code, doc = invoke_json("--testnet", "doctor")
    clock = {c["name"]: c for c in doc["checks"]}["clock"]
    assert clock["status"] == "FAIL" and "corrects" not in clock["detail"]
    assert "more than the 1000 ms allowed" in clock["detail"] and "NTP" in clock["fix"]


@pytest.mark.usefixtures("exchange_env")
def test_doctor_key_permissions_not_pass_after_the_key_was_refused(binance):
    binance.fail_next("/fapi/v3/account", "GET",
                      {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."})  # fmt: skip
    code, doc = invoke_json("--testnet", "doctor")
    checks = {c["name"]: c for c in doc["checks"]}
    assert code == 1
    assert checks["futures account"]["status"] == "FAIL"
    assert checks["key permissions"]["status"] == "FAIL"
    assert "refused the key" in checks["key permissions"]["detail"]


# --- the settings in effect -----------------------------------------------------------------


def test_config_shows_every_setting_with_its_source_and_masks_secrets(tmp_path, monkeypatch):
    (tmp_path / "qtrader.toml").write_text('profile = "conservative"\n[risk]\nmax_leverage = 2\n')
    monkeypatch.setenv("QTRADER_RISK_SIZING", "signal")
    monkeypatch.setenv("QTRADER_PUBLISH_REDIS_URL", "redis://:hunter22@127.0.0.1:6379/0")
    monkeypatch.setenv("BINANCE_API_KEY", "abcd-0123456789")
    monkeypatch.setenv("BINANCE_API_SECRET", "very-secret-value")
    code, doc = invoke_json("--testnet", "config")
    assert code == 0, doc
    rows = {r["setting"]: r for r in doc["settings"]}
    assert (rows["exchange.mode"]["value"], rows["exchange.mode"]["source"]) == ("testnet", "flag")
    assert rows["risk.max_leverage"]["source"] == "file" and rows["risk.max_leverage"]["value"] == 2
    assert rows["risk.max_leverage"]["where"].endswith("qtrader.toml [risk] max_leverage")
    assert (rows["risk.max_position_usd"]["source"], rows["risk.max_position_usd"]["value"]) == (
        "profile", "50")  # fmt: skip
    assert (rows["risk.sizing"]["source"], rows["risk.sizing"]["where"]) == (
        "env",
        "QTRADER_RISK_SIZING",
    )
    assert rows["risk.signal_ttl_s"] == {"setting": "risk.signal_ttl_s", "value": 300,
                                         "source": "default", "where": "",
                                         "env": "QTRADER_RISK_SIGNAL_TTL_S"}  # fmt: skip
    assert rows["publish.redis_url"]["value"] == "redis://:***@127.0.0.1:6379/0"
    assert rows["api_secret"]["value"] == "***" and rows["api_key"]["value"] == "abcd…"
    assert rows["db"]["source"] == "env" and rows["db"]["value"] == str(tmp_path / "qtrader.duckdb")
    assert rows["config_file"]["value"] == str(tmp_path / "qtrader.toml")
    everything = json.dumps(doc) + invoke("--testnet", "config").stdout
    assert "hunter22" not in everything and "very-secret-value" not in everything
    assert "0123456789" not in everything
    text = invoke("--testnet", "config").stdout
    assert "risk.max_leverage" in text and "file" in text and "QTRADER_RISK_SIZING" in text


@pytest.mark.usefixtures("exchange_env")
def test_doctor_shows_config_file_absolute_db_mode_and_api_url(binance, tmp_path):
    (tmp_path / "qtrader.toml").write_text("[risk]\nmax_leverage = 2\n")
    code, doc = invoke_json("--testnet", "doctor")
    assert code == 0, doc
    checks = {c["name"]: c for c in doc["checks"]}
    assert checks["mode"]["detail"] == "TESTNET (Binance demo trading)"
    assert checks["config file"]["detail"] == str(tmp_path / "qtrader.toml")
    assert checks["database"]["detail"].startswith(str(tmp_path / "qtrader.duckdb"))
    assert checks["api url"]["detail"] == "https://demo-fapi.binance.com"


@pytest.mark.usefixtures("exchange_env")
def test_doctor_key_permissions_not_pass_when_the_account_could_not_be_read(binance, monkeypatch):
    import requests

    monkeypatch.setenv("QTRADER_EXCHANGE_READ_RETRIES", "1")
    refused = requests.exceptions.ConnectionError(ConnectionRefusedError(111, "Connection refused"))
    binance.fail_next("/fapi/v3/account", "GET", refused)
    code, doc = invoke_json("--testnet", "doctor")
    checks = {c["name"]: c for c in doc["checks"]}
    assert code == 1
    assert "connection refused" in checks["futures account"]["detail"]
    assert checks["key permissions"]["status"] == "WARN"
    assert checks["key permissions"]["detail"].startswith("not checked")
