"""The command contract: exit codes, one JSON document, one-line errors, masked secrets."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime

import pytest

import qtrader.steps.status as status_step
from qtrader.cli import app
from qtrader.domain.halts import Halt
from qtrader.store import open_store
from qtrader.store.halts import add_halt
from tests.conftest import _free_port, invoke, invoke_json, query

API_SECRET = "sEcReT-abcdef0123456789"
API_KEY = "kEy-9876543210fedcba"


def run_qtrader(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qtrader", *args], input=input,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_real_subprocess_json_and_exit_codes(tmp_path):
    src = tmp_path / "s.jsonl"
    src.write_text(
        json.dumps({"symbol": "BTCUSDT", "action": "BUY", "confidence": 0.7}) + "\nbad\n"
    )
    ok = run_qtrader("pull-signals", "--from", str(src), "--json")
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    assert (doc["ok"], doc["mode"], doc["totals"]["new"], doc["totals"]["invalid"]) == (
        True,
        "paper",
        1,
        1,
    )
    strict = run_qtrader("pull-signals", "--from", str(src), "--strict", "--json")
    assert strict.returncode == 0  # nothing new, so nothing invalid in this run
    usage = run_qtrader("pull-signals")
    assert usage.returncode == 2 and "Missing option '--from'" in usage.stderr
    unknown = run_qtrader("frobnicate")
    assert unknown.returncode == 2
    status = run_qtrader("--json", "status")
    assert status.returncode == 0 and json.loads(status.stdout)["signals"]["invalid"] == 1


def test_python_m_and_console_script_agree():
    version = run_qtrader("version")
    assert version.returncode == 0 and version.stdout.startswith("qtrader 0.")


def test_internal_error_is_one_masked_line_and_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setenv("BINANCE_API_SECRET", API_SECRET)

    def broken(store):
        raise ZeroDivisionError(f"oops while signing with {API_SECRET}")

    monkeypatch.setattr(status_step, "counts_by_status", broken)
    result = invoke("status")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: internal error (ZeroDivisionError: oops while signing with ***); this is a bug. "
        "Rerun with --log-level debug for the traceback and report it\n")  # fmt: skip
    debug = invoke("--log-level", "debug", "status")
    assert debug.exit_code == 1
    assert "Traceback" in debug.stderr and "ZeroDivisionError" in debug.stderr
    assert API_SECRET not in debug.stderr


def test_json_errors_are_still_one_document(tmp_path):
    code, doc = invoke_json("pull-signals", "--from", "missing.jsonl")
    assert code == 2
    assert doc == {"command": "pull-signals", "mode": "paper", "exchange_name": "binanceusdm",
                   "run_id": 1, "ok": False, "exit_code": 2, "error": doc["error"]}  # fmt: skip


def test_keys_never_reach_logs_the_database_or_errors(tmp_path, db_path, monkeypatch):
    monkeypatch.setenv("BINANCE_API_KEY", API_KEY)
    monkeypatch.setenv("BINANCE_API_SECRET", API_SECRET)
    monkeypatch.setenv("QTRADER_SIGNALS_HTTP_RETRY_WAIT_S", "0")
    closed_port = _free_port()  # loopback only: nothing leaves this machine
    src = tmp_path / "s.jsonl"
    # a record that quotes the secret (an engine echoing its env, say) is evidence, and is
    # still stored as received; everything qtrader itself writes is masked
    src.write_text(json.dumps({"symbol": "BTCUSDT", "action": "BUY", "confidence": 0.7}) + "\n")
    result = invoke("--log-level", "debug", "pull-signals", "--from", str(src), "--from",
                    f"http://u:{API_SECRET}@127.0.0.1:{closed_port}/x?key={API_KEY}")  # fmt: skip
    assert (
        result.exit_code == 1
        and "cannot fetch signals from http://u:***@127.0.0.1" in result.stderr
    )
    everything = result.output + result.stderr
    assert API_SECRET not in everything and API_KEY not in everything
    dump = json.dumps(query(db_path, "SELECT * FROM runs") + query(db_path, "SELECT * FROM state"),
                      default=str)  # fmt: skip
    assert API_SECRET not in dump and API_KEY not in dump


def test_status_shows_mode_halt_counts_and_last_runs(tmp_path, db_path):
    src = tmp_path / "s.jsonl"
    src.write_text(json.dumps({"symbol": "BTCUSDT", "action": "HOLD"}) + "\n{\n")
    invoke("pull-signals", "--from", str(src))
    store = open_store(str(db_path))
    since = datetime(2026, 11, 21)
    add_halt(store, Halt("paper", "drawdown", "max drawdown 4.3% > 4%", since, since.date()), 1)
    store.close()
    code, doc = invoke_json("status")
    assert code == 0
    assert [(h["kind"], h["reason"]) for h in doc["halts"]] == [
        ("drawdown", "max drawdown 4.3% > 4%")
    ]
    assert (doc["signals"]["pending"], doc["signals"]["invalid"]) == (1, 1)
    assert [(r["command"], r["outcome"]) for r in doc["last_runs"]] == [("pull-signals", "ok")]
    human = invoke("status").stdout
    assert "HALTED (drawdown): max drawdown 4.3% > 4%; `qtrader resume` lifts it" in human
    assert "mode       PAPER" in human


def test_lock_timeout_option_and_env(tmp_path, monkeypatch):
    monkeypatch.setenv("QTRADER_LOCK_TIMEOUT", "abc")
    assert invoke("status").exit_code == 2


HEAVY = ("ccxt", "pandas", "duckdb", "loguru", "requests", "redis", "numpy")


@pytest.mark.parametrize("args", [["--help"], ["pull-signals", "--help"], ["status", "--help"]])
def test_help_imports_nothing_heavy(args):
    code = (
        "import sys\n"
        f"sys.argv = ['qtrader', *{args!r}]\n"
        "from qtrader.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print('LOADED', [m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "LOADED []" in out.stdout, out.stdout[-300:]


def test_every_command_has_help_text():
    import typer.main

    group = typer.main.get_group(app)
    for name, command in group.commands.items():
        assert command.help and len(command.help) > 20, name
        for param in command.params:
            assert getattr(param, "help", None), f"{name} {param.name} has no help"


def test_json_log_file_lines_carry_run_and_mode_and_no_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("BINANCE_API_SECRET", API_SECRET)
    log_file = tmp_path / "qtrader.jsonl"
    monkeypatch.setenv("QTRADER_LOG_FILE", str(log_file))
    src = tmp_path / "s.jsonl"
    src.write_text(json.dumps({"symbol": "BTCUSDT", "action": "BUY", "confidence": 0.7}) + "\n")
    monkeypatch.setenv("QTRADER_SIGNALS_HTTP_RETRY_WAIT_S", "0")
    invoke("--log-level", "debug", "pull-signals", "--from", str(src), "--from",
           f"http://127.0.0.1:{_free_port()}/x?token={API_SECRET}")  # fmt: skip
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert lines, "nothing was logged"
    assert all(line["record"]["extra"]["run_id"] == 1 for line in lines)
    assert all(line["record"]["extra"]["mode"] == "paper" for line in lines)
    assert API_SECRET not in log_file.read_text()
