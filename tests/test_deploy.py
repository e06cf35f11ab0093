"""deploy/: the systemd units and the logrotate snippet say what they mean."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).parent.parent / "deploy"
UNITS = sorted(DEPLOY.glob("*.service")) + sorted(DEPLOY.glob("*.timer"))


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser


def test_the_run_service_stops_cleanly_and_does_not_retry_a_bad_configuration():
    service = unit(DEPLOY / "qtrader.service")["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv[1:4] == ["run", "--every", "10s"] and "--from" in argv
    assert service["KillSignal"] == "SIGTERM" and service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"  # exit 2: configuration, never retried
    assert service["EnvironmentFile"] == "/etc/qtrader.env"
    assert service["Environment"].startswith("QTRADER_")  # configparser keeps the last one


def test_each_timer_starts_a_job_that_exists():
    for timer in DEPLOY.glob("*.timer"):
        service = unit(timer.with_suffix(".service"))["Service"]
        job = Path(service["ExecStart"]).name
        assert (DEPLOY.parent / "jobs" / job).exists(), job
        assert service["Type"] == "oneshot"
        assert unit(timer)["Timer"]["OnCalendar"]


def test_logrotate_covers_the_job_logs():
    text = (DEPLOY / "logrotate.d" / "qtrader").read_text()
    assert "/srv/qtrader/logs/*.log" in text and "rotate 14" in text and "maxsize 10M" in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_accepts_every_unit(tmp_path):
    """systemd-analyze verify, with the programs pointed at ones this machine has."""
    for path in UNITS:
        text = path.read_text()
        for program in ("/srv/qtrader/.venv/bin/qtrader", "/srv/qtrader/jobs/tick",
                        "/srv/qtrader/jobs/daily-report"):  # fmt: skip
            text = text.replace(program, "/bin/true")
        (tmp_path / path.name).write_text(text)
    names = [str(tmp_path / p.name) for p in UNITS]
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *names],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    complaints = [line for line in result.stderr.splitlines()
                  if any(word in line for word in ("Unknown", "ignoring", "Failed", "rror"))]  # fmt: skip
    assert result.returncode == 0 and complaints == [], result.stderr
