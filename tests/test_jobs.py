"""The cron job scripts, with a fake qtrader that records its calls and exits as told."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

JOBS = Path(__file__).parent.parent / "jobs"
FAKE = """#!/usr/bin/env bash
if [ "$1" = config ]; then echo "mode ${FAKE_MODE:-paper} · db fake.duckdb"; exit "${FAKE_RC_config:-0}"; fi
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
    env_file.chmod(0o600)
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


def test_tick_runs_one_qtrader_tick_with_the_env_files_source(job_env):
    result = run("tick", job_env)
    assert result.returncode == 0 and result.stderr == ""
    assert calls(job_env) == ["tick --from signals.jsonl"]
    log = (Path(job_env["QTRADER_LOG_DIR"]) / "tick.log").read_text()
    assert "start: qtrader tick --from signals.jsonl" in log and "done: tick" in log


def test_a_halt_is_logged_quietly(job_env):
    result = run("tick", job_env, FAKE_RC_tick="3")
    assert result.returncode == 3 and result.stderr == ""  # nothing for cron to mail
    assert "halted: tick" in (Path(job_env["QTRADER_LOG_DIR"]) / "tick.log").read_text()


def test_a_failure_is_reported_with_the_settings_it_ran_with(job_env):
    result = run("tick", job_env, FAKE_RC_tick="1", FAKE_MODE="testnet",
                 FAKE_ERR="cannot read stream x from Redis")  # fmt: skip
    assert result.returncode == 1
    assert "qtrader tick failed (exit 1): cannot read stream x from Redis" in result.stderr
    assert "mode testnet · db fake.duckdb" in result.stderr


def test_a_failed_repair_is_mailed_with_qtraders_error_line(job_env):
    """reconcile exits 1 when a stop could not be placed, even while halted: cron mails it."""
    result = run("reconcile", job_env, FAKE_RC_reconcile="1",
                 FAKE_ERR="stop_replaced BTCUSDT: stop_loss at 49000 FAILED; and trading is halted")  # fmt: skip
    assert result.returncode == 1
    assert "qtrader reconcile failed (exit 1): stop_replaced BTCUSDT" in result.stderr


def test_a_database_held_by_another_process_is_loud(job_env):
    result = run("tick", job_env, FAKE_RC_tick="4",
                 FAKE_ERR="database x is busy: held by PID 42 (python3 notebook.py)")  # fmt: skip
    assert result.returncode == 4
    assert "could not open the database (exit 4): database x is busy: held by PID 42" in (
        result.stderr
    )
    assert calls(job_env) == ["tick --from signals.jsonl"]


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
    call, prune = calls(job_env)
    assert call.startswith("pnl-report --since ") and "--csv" in call and "equity.png" in call
    assert "--html" in call and "report.html" in call  # beside the CSVs, same dated folder
    assert prune == "prune"  # then retention: old rows to the archive, the file compacted
    assert any((Path(job_env["QTRADER_REPORT_DIR"])).iterdir())


def test_a_failed_prune_is_reported_by_the_daily_job(job_env):
    result = run("daily-report", job_env, FAKE_RC_prune="1", FAKE_ERR="archive: disk full")
    assert result.returncode == 1 and "qtrader prune failed (exit 1)" in result.stderr


# --- the user's settings, as cron runs the jobs: cwd $HOME, almost no environment ----------

REPO = JOBS.parent
QTRADER = REPO / ".venv" / "bin" / "qtrader"


def cron_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """What cron gives a job: PATH, HOME, SHELL and the crontab's own variables."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "SHELL": "/bin/sh",
            "QTRADER_LOCK_DIR": str(tmp_path), **extra}  # fmt: skip


def checkout(tmp_path: Path, toml: str) -> Path:
    """A checkout (QTRADER_HOME) with its settings file and the real qtrader."""
    home = tmp_path / "srv"
    (home / "jobs").mkdir(parents=True)
    for job in JOBS.iterdir():
        (home / "jobs" / job.name).write_bytes(job.read_bytes())
        (home / "jobs" / job.name).chmod(0o755)
    (home / ".venv" / "bin").mkdir(parents=True)
    (home / ".venv" / "bin" / "qtrader").symlink_to(QTRADER)
    (home / "qtrader.toml").write_text(toml)
    return home


def run_from_home(home: Path, job: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(home / "jobs" / job)], env=env, cwd=env["HOME"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


SETTINGS = '[exchange]\nmode = "testnet"\n[risk]\nmax_position_usd = 50\n'


@pytest.mark.skipif(not QTRADER.exists(), reason="needs the venv's qtrader")
def test_a_job_started_from_home_uses_the_checkouts_settings_and_database(tmp_path):
    home = checkout(tmp_path, SETTINGS)
    env = cron_env(tmp_path)
    result = run_from_home(home, "daily-report", env)  # QTRADER_HOME unset: jobs/.. is home
    assert result.returncode == 0, result.stderr
    first = (home / "logs" / "daily-report.log").read_text().splitlines()[0]
    assert "mode testnet" in first and "max_position_usd 50" in first, first
    assert f"db {home}/data/qtrader.duckdb" in first and f"config {home}/qtrader.toml" in first
    # pnl-report is a reader (no runs row): prune's row shows the checkout's mode
    assert query_runs(home / "data" / "qtrader.duckdb") == [("prune", "testnet")]
    assert list(Path(env["HOME"]).rglob("*.duckdb")) == []  # no database where cron started


@pytest.mark.skipif(not QTRADER.exists(), reason="needs the venv's qtrader")
def test_qtrader_home_and_a_mode_in_the_env_file_keep_the_files_limits(tmp_path):
    """The env file may choose live; the limits still come from the checkout's qtrader.toml."""
    home = checkout(tmp_path, SETTINGS)
    env_file = tmp_path / "qtrader.env"
    env_file.write_text("QTRADER_EXCHANGE_MODE=live\nQTRADER_DB=data/other.duckdb\n")
    env_file.chmod(0o600)
    env = cron_env(tmp_path, QTRADER_HOME=str(home), QTRADER_ENV_FILE=str(env_file))
    result = subprocess.run(["/bin/sh", "-c", "$QTRADER_HOME/jobs/daily-report"], env=env,
                            cwd=env["HOME"], capture_output=True, text=True, timeout=120)  # fmt: skip
    first = (home / "logs" / "daily-report.log").read_text().splitlines()[0]
    assert "mode live" in first and "max_position_usd 50" in first, first
    assert f"db {home}/data/other.duckdb" in first
    assert f"env {env_file}" in first
    assert result.returncode in (0, 2)  # live without confirmation may refuse; never paper


def query_runs(db: Path) -> list[tuple]:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.execute("SELECT command, mode FROM runs ORDER BY run_id").fetchall()


@pytest.mark.parametrize(
    "description, content, mode, message",
    [
        ("windows line endings", "QTRADER_DB=data/q.duckdb\r\n", 0o600, "CRLF"),
        ("world-readable", "BINANCE_API_KEY=k\n", 0o644, "chmod 600"),
        ("group-readable", "BINANCE_API_KEY=k\n", 0o640, "chmod 600"),
        ("world-readable passphrase", "export OKX_API_PASSPHRASE=p\n", 0o644, "chmod 600"),
        ("not KEY=value", "this is not a setting\n", 0o600, "line 1 is not KEY=value"),
    ],
)
def test_an_unsafe_env_file_is_refused_before_anything_runs(job_env, tmp_path, description,
                                                            content, mode, message):  # fmt: skip
    env_file = Path(job_env["QTRADER_ENV_FILE"])
    env_file.write_text(content, newline="")
    env_file.chmod(mode)
    result = run("tick", job_env)
    assert result.returncode == 2, description
    assert message in result.stderr and str(env_file) in result.stderr
    assert calls(job_env) == []  # qtrader never ran


def test_an_empty_env_file_or_dev_null_is_fine_whoever_can_read_it(job_env):
    """An empty file holds no keys; any other file others can read is refused (above)."""
    env_file = Path(job_env["QTRADER_ENV_FILE"])
    env_file.write_text("")
    env_file.chmod(0o644)
    assert run("tick", job_env).returncode == 0
    assert run("tick", {**job_env, "QTRADER_ENV_FILE": "/dev/null"}).returncode == 0
    env_file.write_text("QTRADER_SIGNAL_SOURCE=s.jsonl\n")  # settings only: still refused
    assert run("tick", job_env).returncode == 2


def test_the_env_file_is_parsed_not_run(job_env, tmp_path):
    marker = tmp_path / "ran"
    env_file = Path(job_env["QTRADER_ENV_FILE"])
    env_file.write_text(f'# keys\nexport QTRADER_SIGNAL_SOURCE="a b.jsonl"\nX=$(touch {marker})\n')
    result = run("tick", job_env)
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    assert calls(job_env) == ["tick --from a b.jsonl"]


def test_settings_that_do_not_load_stop_the_job_loudly(job_env):
    result = run("reconcile", job_env, FAKE_RC_config="2")
    assert result.returncode == 2 and "cannot load its settings" in result.stderr
    assert calls(job_env) == []


def test_the_first_log_line_of_each_run_names_mode_and_database(job_env):
    run("reconcile", job_env, FAKE_MODE="testnet")
    first = (Path(job_env["QTRADER_LOG_DIR"]) / "reconcile.log").read_text().splitlines()[0]
    assert "mode testnet · db fake.duckdb" in first


def test_a_log_past_its_cap_is_rotated(job_env):
    log = Path(job_env["QTRADER_LOG_DIR"]) / "reconcile.log"
    log.parent.mkdir(parents=True)
    log.write_text("x" * 2000)
    run("reconcile", job_env, QTRADER_LOG_MAX_BYTES="1000")
    assert (log.parent / "reconcile.log.1").stat().st_size == 2000
    assert log.stat().st_size < 1000


def test_dot_env_is_git_ignored():
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO)
    assert ignored.returncode == 0
