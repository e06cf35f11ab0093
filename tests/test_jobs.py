"""The cron job scripts, with a fake qtrader that records its calls and exits as told."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

JOBS = Path(__file__).parent.parent / "jobs"
FAKE = """#!/usr/bin/env bash
echo "$*" >> "$FAKE_CALLS"
name=$(echo "$1" | tr - _)
sleep "${FAKE_SLEEP:-0}"
[ -n "${FAKE_ERR:-}" ] && echo "error: $FAKE_ERR" >&2
rc_var="FAKE_RC_$name"
exit "${!rc_var:-0}"
"""


@pytest.fixture
def job_env(tmp_path: Path) -> dict[str, str]:
    fake = tmp_path / "fake-qtrader"
    fake.write_text(FAKE)
    fake.chmod(0o755)
    env_file = tmp_path / "qtrader.env"
    env_file.write_text("QTRADER_SIGNAL_SOURCE=signals.jsonl\n")
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("QTRADER_", "FAKE_"))},
        "QTRADER_BIN": str(fake),
        "QTRADER_ENV_FILE": str(env_file),
        "QTRADER_LOG_DIR": str(tmp_path / "logs"),
        "QTRADER_LOCK_DIR": str(tmp_path),
        "QTRADER_REPORT_DIR": str(tmp_path / "reports"),
        "FAKE_CALLS": str(tmp_path / "calls"),
    }


def run(job: str, env: dict[str, str], **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(JOBS / job)], env={**env, **extra}, capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def calls(env: dict[str, str]) -> list[str]:
    path = Path(env["FAKE_CALLS"])
    return path.read_text().splitlines() if path.exists() else []


def test_tick_chains_the_steps_in_order_with_the_env_file(job_env):
    result = run("tick", job_env)
    assert result.returncode == 0 and result.stderr == ""
    assert calls(job_env) == ["pull-signals --from signals.jsonl", "execute", "reconcile"]
    log = (Path(job_env["QTRADER_LOG_DIR"]) / "tick.log").read_text()
    assert "start: qtrader execute" in log and "done: reconcile" in log


def test_a_halt_stops_the_chain_quietly(job_env):
    result = run("tick", job_env, FAKE_RC_execute="3")
    assert result.returncode == 3 and result.stderr == ""  # nothing for cron to mail
    assert calls(job_env) == ["pull-signals --from signals.jsonl", "execute"]
    assert "halted: execute" in (Path(job_env["QTRADER_LOG_DIR"]) / "tick.log").read_text()


def test_a_failure_is_reported_and_reconcile_still_runs(job_env):
    result = run("tick", job_env, FAKE_RC_pull_signals="1")
    assert result.returncode == 1
    assert "qtrader pull-signals failed (exit 1)" in result.stderr
    assert calls(job_env)[-1] == "reconcile"


def test_a_failed_repair_is_mailed_with_qtraders_error_line(job_env):
    """reconcile exits 1 when a stop could not be placed, even while halted: cron mails it."""
    result = run("reconcile", job_env, FAKE_RC_reconcile="1",
                 FAKE_ERR="stop_replaced BTCUSDT: stop_loss at 49000 FAILED; and trading is halted")  # fmt: skip
    assert result.returncode == 1
    assert "qtrader reconcile failed (exit 1): stop_replaced BTCUSDT" in result.stderr


def test_a_database_held_by_another_process_is_loud(job_env):
    result = run("tick", job_env, FAKE_RC_pull_signals="4",
                 FAKE_ERR="database x is busy: held by PID 42 (python3 notebook.py)")  # fmt: skip
    assert result.returncode == 4
    assert "could not open the database (exit 4): database x is busy: held by PID 42" in (
        result.stderr
    )
    assert calls(job_env) == ["pull-signals --from signals.jsonl"]


def test_two_started_together_only_one_runs(job_env):
    slow = {**job_env, "FAKE_SLEEP": "2"}
    first = subprocess.Popen([str(JOBS / "reconcile")], env=slow, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(0.5)
    started = time.monotonic()
    second = run("reconcile", slow)
    assert time.monotonic() - started < 1.5  # it did not wait
    assert second.returncode == 0 and "another run holds" in second.stderr
    first.communicate(timeout=30)
    assert first.returncode == 0
    assert calls(job_env) == ["reconcile"]


def test_daily_report_writes_into_a_dated_folder(job_env):
    result = run("daily-report", job_env)
    assert result.returncode == 0
    (call,) = calls(job_env)
    assert call.startswith("pnl-report --since ") and "--csv" in call and "equity.png" in call
    assert "--html" in call and "report.html" in call  # beside the CSVs, same dated folder
    assert any((Path(job_env["QTRADER_REPORT_DIR"])).iterdir())
