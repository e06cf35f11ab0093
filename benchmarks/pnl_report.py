"""Budget: `pnl-report` over 1,000,000 fills and their positions under 3 s and 1 GB.

Generates (in DuckDB SQL, reproducibly) 500,000 closed positions on 20 symbols over ~3 years,
each with an entry and an exit fill (1,000,000 fills), funding rows every 8 h and hourly
equity snapshots, then runs `qtrader --json pnl-report` in a fresh process and reports its
wall time and peak memory (max RSS of the child).

    python benchmarks/pnl_report.py [--positions 500000] [--html] [--plot]

--html / --plot also write the HTML report / the PNG (25,000 equity snapshots drawn, the last
1,000 trades listed and marked), to measure what the outputs add to the same budget.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from qtrader.store import open_store

BUDGET_S, BUDGET_MB = 3.0, 1024

POSITIONS = """
INSERT INTO positions (position_id, mode, symbol, side, position_side, qty, entry_price,
    opened_at, origin, stop_loss, status, closed_at, exit_price, exit_reason, realized_pnl,
    fees, funding, updated_at)
SELECT i, 'live', 'S' || (i % 20) || 'USDT', CASE WHEN i % 2 = 0 THEN 'BUY' ELSE 'SELL' END,
       'BOTH', 0.01, 100 + (i % 1000), TIMESTAMP '2024-01-01' + INTERVAL (i * 180) SECOND,
       'qtrader', 98 + (i % 1000), 'closed',
       TIMESTAMP '2024-01-01' + INTERVAL (i * 180 + 3600) SECOND,
       100 + (i % 1000) + ((hash(i) % 400)::INT - 200) / 100.0,
       CASE WHEN (i * 7919) % 5 < 3 THEN 'take_profit' ELSE 'stop_loss' END,
       ((hash(i) % 400)::INT - 190) / 1000.0, 0.0008, -0.0001, TIMESTAMP '2024-01-01'
FROM range(?) t(i)
"""
FILLS = """
INSERT INTO fills
SELECT 'live', symbol, position_id || '-' || leg, position_id::VARCHAR, NULL,
       CASE WHEN (side = 'BUY') = (leg = 0) THEN 'BUY' ELSE 'SELL' END, 'BOTH', qty,
       CASE WHEN leg = 0 THEN entry_price ELSE exit_price END, 0.0004, 'USDT',
       CASE WHEN leg = 0 THEN 0 ELSE realized_pnl END, false,
       CASE WHEN leg = 0 THEN opened_at ELSE closed_at END, '{}'
FROM positions, (SELECT unnest([0, 1]) AS leg)
"""
INCOME = """
INSERT INTO income
SELECT 'live', 'f' || d, 'FUNDING_FEE', 'S' || (d % 20) || 'USDT', -0.01, 'USDT', NULL,
       TIMESTAMP '2024-01-01' + INTERVAL (d * 8) HOUR, '{}'
FROM range(3 * 1042) t(d)
"""
EQUITY = """
INSERT INTO equity
SELECT TIMESTAMP '2024-01-01' + INTERVAL (h) HOUR, 'live', 0,
       10000 + h * 0.05 + 20 * sin(h / 50.0), 0, 10000 + h * 0.05 + 20 * sin(h / 50.0)
FROM range(24 * 1042) t(h)
"""


def generate(db: Path, positions: int) -> tuple[int, int]:
    store = open_store(str(db))
    store.execute(POSITIONS, [positions])
    for sql in (FILLS, INCOME, EQUITY):
        store.execute(sql)
    counts = store.fetchone("SELECT (SELECT count(*) FROM fills), (SELECT count(*) FROM positions)")
    store.close()
    assert counts is not None
    return int(counts[0]), int(counts[1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--positions", type=int, default=500_000)
    parser.add_argument("--html", action="store_true", help="also write the HTML report")
    parser.add_argument("--plot", action="store_true", help="also draw the PNG")
    parser.add_argument("--generate-into", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate_into:
        print(json.dumps(generate(Path(args.generate_into), args.positions)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        # generated in another process, and the report's peak RSS read for its own process
        # (RUSAGE_CHILDREN's max would be the generator's)
        made = subprocess.run(
            [sys.executable, __file__, "--positions", str(args.positions), "--generate-into",
             str(db)], capture_output=True, text=True, check=True)  # fmt: skip
        fills, positions = json.loads(made.stdout)
        command = [sys.executable, "-m", "qtrader", "--db", str(db), "--json", "--log-level",
                   "error", "pnl-report", "--mode", "live"]  # fmt: skip
        outputs = []
        if args.html:
            outputs += ["--html", str(Path(tmp) / "report.html")]
        if args.plot:
            outputs += ["--plot", str(Path(tmp) / "report.png")]
        command += outputs
        out = Path(tmp) / "report.json"
        start = time.perf_counter()
        with out.open("w") as stdout:
            child = subprocess.Popen(command, stdout=stdout, stderr=subprocess.DEVNULL)
            _, status, usage = os.wait4(child.pid, 0)  # this child's own peak and CPU time
        seconds = time.perf_counter() - start
        returncode = os.waitstatus_to_exitcode(status)
        cpu = usage.ru_utime + usage.ru_stime
        peak_mb = usage.ru_maxrss / 1024
        stdout_text = out.read_text()
        html = Path(tmp) / "report.html"
        html_bytes = html.stat().st_size if html.exists() else None
    doc = json.loads(stdout_text)
    report = {
        "fills": fills,
        "positions": positions,
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu, 3),  # wall time minus waiting for a busy machine's cores
        "peak_rss_mb": round(peak_mb, 1),
        "trades_reported": doc["trades"]["trades"],
        "outputs": outputs[::2],
        "html_bytes": html_bytes,
        "budget": {"seconds": BUDGET_S, "mb": BUDGET_MB},
        "ok": returncode == 0 and seconds < BUDGET_S and peak_mb < BUDGET_MB,
    }
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
