"""`qtrader demo`, the README's main command: offline, in a fresh process, it must end with
closed trades that paid fees, a report and its chart, every step labelled PAPER."""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from qtrader.domain.numbers import plain
from tests.conftest import query


def test_the_demo_runs_the_whole_pipeline_offline(tmp_path: Path):
    done = subprocess.run([sys.executable, "-m", "qtrader", "demo", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    (folder,) = (tmp_path / "out").iterdir()
    db = folder / "qtrader.duckdb"
    assert f"new database {db}" in out
    headers = re.findall(r"^qtrader (\S+) · mode (\S+)", out, flags=re.MULTILINE)
    assert {command for command, _ in headers} == {
        "clock", "pull-signals", "execute", "reconcile", "pnl-report"}  # fmt: skip
    assert all(mode == "PAPER" for _, mode in headers)
    assert (folder / "pnl.png").stat().st_size > 10_000
    assert "trade-marker" in (folder / "report.html").read_text()

    trades = query(db, "SELECT symbol, exit_reason, fees, net_pnl, mode FROM v_trades")
    assert len(trades) >= 3
    assert {reason for _, reason, *_ in trades} >= {"stop_loss", "take_profit"}
    assert all(fees > 0 and mode == "paper" for _, _, fees, _, mode in trades)
    assert query(db, "SELECT count(*) FROM fills WHERE fee > 0")[0][0] >= 6
    assert query(db, "SELECT count(*) FROM income WHERE income_type = 'FUNDING_FEE'")[0][0] > 0
    # the report's totals agree with the trades it lists
    net = plain(round(sum((row[3] for row in trades), Decimal(0)), 4))
    assert re.search(rf"^  net_pnl +{re.escape(str(net))}$", out, flags=re.MULTILINE), net
