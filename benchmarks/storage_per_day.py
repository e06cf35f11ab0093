"""Budget: a year at the seeds' load under 1 GB with 30-day retention; near zero growth idle;
job logs bounded.

Drives the pipeline in one process against the Binance wire-format stand-in from the tests
(`responses`, no network), minute by minute on an accelerated clock (qtrader's clock is
moved one minute per iteration; nothing sleeps):

- `--load idle`: no signals; `--load seeds`: 20 signals a minute over 5 symbols (most are
  refused by the risk limits, as the seeds' stream would be).
- `--chain old`: each minute pull-signals, execute, reconcile (jobs/tick before) and
  reconcile again (jobs/reconcile); `--chain tick`: each minute one `qtrader tick`.

It reports the file's bytes and rows per table after the run, the job log's bytes (each
command's stdout and stderr plus the lines jobs/lib.sh adds), and, with `--chain tick`, the
bytes left after `qtrader prune` of everything prunable: what a year costs with 30-day
retention is extrapolated from those (kept rows × 365 days + prunable rows × 30 days).

Run it against another checkout's code (e.g. the commit before this change) with
BENCH_QTRADER_CODE=/path/to/checkout (`--chain old` only there: it has no tick or prune).

DuckDB stores data in 256 KB blocks, one set per table, so a small growth is measured
coarsely; the data's own growth is taken from a copy written at once (COPY FROM DATABASE),
and what stays after prune is bounded from its row counts (2 KB a row, well above what
those narrow tables take).

    python benchmarks/storage_per_day.py --load idle --chain tick --minutes 1440
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(os.environ.get("BENCH_QTRADER_CODE") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import responses  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import qtrader.clock as clock  # noqa: E402
from qtrader.cli import app  # noqa: E402
from tests.binance_fake import FakeBinance  # noqa: E402

START = datetime(2026, 11, 2, 0, 0)
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT")
TABLES = ("runs", "exchange_calls", "equity", "signals", "decisions", "orders", "fills",
          "income", "positions", "events")  # fmt: skip
WARM_UP = 60  # minutes before the baseline: markets cached, first reconcile, first sample
JOB_LINE = 75  # bytes of one jobs/lib.sh log line ("2026-… tick start: qtrader …")


class _Clock(datetime):
    """qtrader.clock's datetime: now() is the simulated minute."""

    simulated = START

    @classmethod
    def now(cls, tz=None):
        value = cls.simulated
        return value.replace(tzinfo=UTC) if tz is not None else value


def signals(minute: int, count: int, marks: dict[str, str]) -> list[dict]:
    rng = random.Random(minute)
    out = []
    for i in range(count):
        symbol = rng.choice(SYMBOLS)
        price = float(marks.get(symbol, "100"))
        side = rng.choice(("BUY", "SELL"))
        sign = 1 if side == "BUY" else -1
        out.append({
            "intent_id": f"m{minute}-{i}", "symbol": symbol, "side": side,
            "confidence": round(rng.uniform(0.5, 0.95), 3), "position_size_usd": 200,
            "leverage": 2, "entry_price": price, "stop_loss": round(price * (1 - sign * 0.02), 4),
            "take_profit": round(price * (1 + sign * 0.04), 4),
            "timestamp": _Clock.simulated.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "model": "bench", "reasoning": "x" * 200,
        })  # fmt: skip
    return out


def drive(load: str, chain: str, minutes: int, workdir: Path) -> dict:
    db = workdir / "bench.duckdb"
    base = ["--db", str(db), "--log-level", "info", "--testnet"]
    runner = CliRunner()
    log_bytes = 0
    started = time.perf_counter()
    clock.datetime = _Clock  # type: ignore[misc]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeBinance().install(mock)
        for minute in range(minutes):
            _Clock.simulated = START + timedelta(minutes=minute)
            source = workdir / "signals.jsonl"
            count = 20 if load == "seeds" else 0
            batch = signals(minute, count, fake.marks)
            source.write_text("".join(json.dumps(s) + "\n" for s in batch))
            if chain == "old":
                commands = [["pull-signals", "--from", str(source)], ["execute"], ["reconcile"],
                            ["reconcile"]]  # fmt: skip
                log_bytes += JOB_LINE * (2 * len(commands))  # start and done per step
            else:
                commands = [["tick", "--from", str(source)]]
                log_bytes += JOB_LINE * 2 + 180  # start, done, and the settings line
            for command in commands:
                result = runner.invoke(app, [*base, *command])
                log_bytes += len(result.stdout.encode()) + len(getattr(result, "stderr", "") or "")
                if result.exit_code not in (0, 3):
                    raise SystemExit(f"{command} exited {result.exit_code}: {result.output}")
            if minute == WARM_UP - 1:
                baseline = {"file_bytes": file_bytes(db), "compact_bytes": compact_bytes(db)}
                log_bytes = 0
    wall = time.perf_counter() - started
    report = {"load": load, "chain": chain, "minutes": minutes, "wall_s": round(wall, 1),
              "baseline_after_warm_up": baseline, **measure(db),
              "compact_bytes": compact_bytes(db), "job_log_bytes": log_bytes}  # fmt: skip
    if chain == "tick":
        report["after_prune"] = prune_everything(db, runner, base)
    return report


def file_bytes(db: Path) -> int:
    with duckdb.connect(str(db)) as conn:
        conn.execute("CHECKPOINT")
    return db.stat().st_size


def compact_bytes(db: Path) -> int:
    """The file's size if it were written at once (COPY FROM DATABASE into a new file)."""
    copy = db.with_name("compact-copy.duckdb")
    copy.unlink(missing_ok=True)
    with duckdb.connect(str(db)) as conn:
        conn.execute(f"ATTACH '{copy}' AS c; COPY FROM DATABASE bench TO c; DETACH c")
    size = copy.stat().st_size
    copy.unlink()
    return size


def measure(db: Path) -> dict:
    with duckdb.connect(str(db)) as conn:
        conn.execute("CHECKPOINT")
        rows = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    return {"file_bytes": db.stat().st_size, "rows": rows}


def prune_everything(db: Path, runner: CliRunner, base: list[str]) -> dict:
    """Everything prunable, as if it were old: the clock jumps 40 days, prune --older-than 30d.
    (The journal's times are the machine's real clock, not the simulated one: aged by hand.)"""
    _Clock.simulated = _Clock.simulated + timedelta(days=40)
    with duckdb.connect(str(db)) as conn:
        conn.execute("UPDATE exchange_calls SET ts = ts - INTERVAL 400 DAY")
    result = runner.invoke(app, [*base, "--json", "prune", "--older-than", "30d"])
    document = json.loads(result.stdout)
    assert document["ok"], document
    return {**measure(db), "archived_rows": document["counts"]}


KEPT_ROW_BOUND = 2048  # bytes: orders, fills, income, positions, events rows are far smaller


def extrapolate(report: dict) -> dict:
    """Per day from the growth after the warm-up hour; a year = 365 such days. With 30-day
    retention the file holds: the schema and caches, 30 days of prunable rows (compacted
    daily), one day not yet compacted, and a year of the rows prune keeps."""
    days = (report["minutes"] - WARM_UP) / 1440
    base = report["baseline_after_warm_up"]
    file_day = (report["file_bytes"] - base["file_bytes"]) / days
    data_day = (report["compact_bytes"] - base["compact_bytes"]) / days
    out = {"file_mb_per_day": round(file_day / 2**20, 3),
           "data_mb_per_day_written_at_once": round(data_day / 2**20, 3),
           "job_log_mb_per_day": round(report["job_log_bytes"] / days / 2**20, 3),
           "year_gb_without_retention": round(file_day * 365 / 2**30, 3)}  # fmt: skip
    if "after_prune" in report:
        kept_rows_day = sum(report["after_prune"]["rows"].values()) / (report["minutes"] / 1440)
        kept_day = kept_rows_day * KEPT_ROW_BOUND
        year = base["compact_bytes"] + data_day * 30 + file_day + kept_day * 365
        out["kept_rows_per_day"] = round(kept_rows_day)
        out["kept_mb_per_day_bound"] = round(kept_day / 2**20, 3)
        out["year_gb_with_30_day_retention"] = round(year / 2**30, 3)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--load", choices=("idle", "seeds"), default="idle")
    parser.add_argument("--chain", choices=("old", "tick"), default="tick")
    parser.add_argument("--minutes", type=int, default=1440)
    args = parser.parse_args()
    if args.minutes <= WARM_UP:
        parser.error(f"--minutes must exceed the {WARM_UP}-minute warm-up")
    from qtrader.exchange.binance import _JournalingBinance

    _JournalingBinance.throttle = lambda self, cost=None: None  # no pacing sleeps
    os.environ.update({"BINANCE_API_KEY": "bench-key-000000",
                       "BINANCE_API_SECRET": "bench-secret-000000",
                       "QTRADER_EXCHANGE_RETRY_WAIT_S": "0"})  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        report = drive(args.load, args.chain, args.minutes, Path(tmp))
    report["code"] = str(ROOT)
    report["extrapolated"] = extrapolate(report)
    print(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
