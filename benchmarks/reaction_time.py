"""Budget: `qtrader run` sends an entry under 1 s (p50) after its signal lands on the stream.

Signal-to-entry latency, from the Redis stream entry's id (its millisecond timestamp) to the
journal row of the entry order (`exchange_calls.ts`, written when the exchange answered),
for the same signals two ways, against a real redis-server on 127.0.0.1 and the paper
exchange replaying a candle file (offline; Binance's own round trip is not in it):

- `run`: one `qtrader run --every 10s --from redis://…` process; signals arrive at random
  0.5–3 s apart;
- `cron`: a signal arriving at a random second of the minute waits for the next minute, then
  one `qtrader tick` process runs: measured as (seconds to the minute) + (the measured time
  from a tick process's start to its entry).

    python benchmarks/reaction_time.py
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import redis  # noqa: E402

from tests.paper_data import write_candles  # noqa: E402

SIGNAL = {"symbol": "BTCUSDT", "side": "BUY", "position_size_usd": 1000, "leverage": 2,
          "entry_price": 50000, "stop_loss": 49000, "take_profit": 52000, "confidence": 0.8,
          "timestamp": "2026-11-20T09:29:30Z"}  # fmt: skip
LIMITS = {"QTRADER_RISK_SIZING": "signal", "QTRADER_PAPER_SLIPPAGE_BPS": "0",
          "QTRADER_RISK_MAX_OPEN_POSITIONS": "1000", "QTRADER_RISK_MAX_TRADES_PER_HOUR": "100000",
          "QTRADER_RISK_PYRAMIDING": "true", "QTRADER_RISK_MAX_TOTAL_EXPOSURE_USD": "1e9",
          "QTRADER_RISK_MAX_ENTRIES_PER_SYMBOL": "100000",
          "QTRADER_RISK_MAX_POSITION_USD": "1e9"}  # fmt: skip
STREAM = "quantum:stream:trade.intent"


def start_redis() -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--bind",
                             "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, f"redis://127.0.0.1:{port}/0"


def latencies(db: Path) -> list[float]:
    """Seconds from each stream entry to its entry order's journal row."""
    with duckdb.connect(str(db), read_only=True) as conn:
        rows = conn.execute(
            "SELECT s.location, epoch_ms(c.ts) FROM signals s JOIN orders o ON "
            "o.signal_seq = s.seq AND o.role = 'entry' JOIN exchange_calls c ON "
            "c.client_order_id = o.client_order_id AND c.path = 'place_order'"
        ).fetchall()
    return [(sent - _entry_ms(location)) / 1000 for location, sent in rows]


def _entry_ms(location: str) -> int:
    """`redis://…?stream=NAME#1764000000000-0` → 1764000000000 (the entry id's time)."""
    return int(location.rsplit("#", 1)[1].split("-")[0])


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"n": len(ordered), "p50_s": round(statistics.median(ordered), 3),
            "p90_s": round(ordered[int(0.9 * (len(ordered) - 1))], 3),
            "max_s": round(ordered[-1], 3)}  # fmt: skip


def main() -> int:
    count = int(os.environ.get("SIGNALS", "20"))
    rng = random.Random(7)
    server, url = start_redis()
    client = redis.Redis.from_url(url)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            candles = write_candles(work / "c.csv", flat={"BTCUSDT": "50000"}, minutes=600)
            clean = {k: v for k, v in os.environ.items() if not k.startswith("QTRADER_")}
            env = {**clean, **LIMITS, "QTRADER_PAPER_PRICES": str(candles),
                   "PYTHONPATH": str(ROOT)}  # fmt: skip
            qtrader = [sys.executable, "-m", "qtrader", "--paper"]
            source = f"{url}?stream={STREAM}"

            # run: one long-lived process
            run_env = {**env, "QTRADER_DB": str(work / "run.db")}
            subprocess.run([*qtrader, "clock", "--to", "2026-11-20T09:30:00"], env=run_env,
                           check=True, capture_output=True)  # fmt: skip
            proc = subprocess.Popen([*qtrader, "run", "--every", "10s", "--from", source],
                                    env=run_env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)  # fmt: skip
            time.sleep(4)
            for i in range(count):
                time.sleep(rng.uniform(0.5, 3.0))
                client.xadd(STREAM, {"data": json.dumps({**SIGNAL, "intent_id": f"run-{i}"})})
            time.sleep(5)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
            run = latencies(work / "run.db")

            # cron: one tick process per minute; its own part measured, the wait modelled
            client.delete(STREAM)
            cron_env = {**env, "QTRADER_DB": str(work / "cron.db")}
            subprocess.run([*qtrader, "clock", "--to", "2026-11-20T09:30:00"], env=cron_env,
                           check=True, capture_output=True)  # fmt: skip
            own = []
            for i in range(min(count, 8)):
                client.xadd(STREAM, {"data": json.dumps({**SIGNAL, "intent_id": f"cron-{i}"})})
                started = time.time()
                subprocess.run([*qtrader, "tick", "--from", source], env=cron_env,
                               capture_output=True, check=False)  # fmt: skip
                with duckdb.connect(str(work / "cron.db"), read_only=True) as conn:
                    sent = conn.execute("SELECT max(epoch_ms(ts)) FROM exchange_calls WHERE "
                                        "path = 'place_order'").fetchone()[0]  # fmt: skip
                own.append(sent / 1000 - started)
            waits = [60 - rng.uniform(0, 60) for _ in range(10_000)]  # arrival: any second
            cron = [w + statistics.median(own) for w in waits]
    finally:
        client.close()
        server.terminate()
        server.wait(timeout=10)
    print(json.dumps({"run": summary(run), "cron": summary(cron),
                      "tick_process_start_to_entry": summary(own)}, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
