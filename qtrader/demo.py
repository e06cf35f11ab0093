"""`qtrader demo`: the whole pipeline offline, in PAPER mode, on bundled data.

It creates a new folder with a new DuckDB file and a settings file that points the paper
exchange at the bundled candles (`data/demo/candles.csv.gz`), then runs the real commands
one after another, each printed before it runs, exactly as a person or cron would:
clock → pull-signals → execute → (clock --advance, reconcile) until the data ends →
pnl-report with its PNG and HTML report. Nothing here is special to the demo but the data.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from qtrader.clock import wall_utcnow
from qtrader.errors import ExitCode

CHECKOUT = Path(__file__).resolve().parents[1]
SIGNALS = "data/sample_signals.jsonl"
CANDLES = "data/demo/candles.csv.gz"
START = datetime(2026, 11, 20, 9, 3)  # three minutes after the sample signals were sent
END = datetime(2026, 11, 23)  # when the bundled candles end
STEP = timedelta(hours=12)

Command = Callable[[list[str]], int]


def find_data(root: Path | None = None) -> Path:
    """The folder holding data/ (the current directory, else the source checkout)."""
    for base in ([root] if root else []) + [Path.cwd(), CHECKOUT]:
        if (base / CANDLES).is_file() and (base / SIGNALS).is_file():
            return base
    raise FileNotFoundError(
        f"the demo needs {CANDLES} and {SIGNALS}: run it from the qtrader source checkout"
    )


def new_folder(out: Path) -> Path:
    folder = out / f"demo-{wall_utcnow():%Y%m%d-%H%M%S}"
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = out / f"demo-{wall_utcnow():%Y%m%d-%H%M%S}-{suffix}"
    folder.mkdir(parents=True)
    return folder


def write_settings(folder: Path, candles: Path) -> Path:
    settings = folder / "qtrader.toml"
    settings.write_text(
        "# Written by `qtrader demo`: paper mode on the bundled candles.\n"
        '[exchange]\nmode = "paper"\n\n'
        f"[paper]\nprices = {str(candles)!r}\n".replace("'", '"')
    )
    return settings


def run_demo(out: Path, command: Command, say: Callable[[str], None]) -> int:
    """Runs the pipeline through `command` (argv → exit code); returns the worst exit code
    (1 when a step failed; halts and rejections are part of the story, not failures)."""
    base = find_data()
    folder = new_folder(out)
    db, settings = folder / "qtrader.duckdb", write_settings(folder, base / CANDLES)
    say(f"PAPER demo · offline · new database {db}")
    say(f"settings {settings} · candles {base / CANDLES}\n")
    common = ["--db", str(db), "--config", str(settings), "--paper"]
    worst = 0

    def step(*args: str) -> None:
        nonlocal worst
        say(f"\n$ qtrader {shlex.join([*common, *args])}")
        code = command([*common, *args])
        if code not in (ExitCode.OK, ExitCode.HALTED):
            worst = max(worst, int(code))

    step("clock", "--to", START.isoformat())
    step("pull-signals", "--from", str(base / SIGNALS))
    step("execute")
    moment = START
    while moment < END:
        moment = min(moment + STEP, END)
        step("clock", "--to", moment.isoformat())
        step("reconcile")
    step("pnl-report", "--plot", str(folder / "pnl.png"), "--html", str(folder / "report.html"))
    say(f"\nPAPER demo done · database {db}")
    say(f"report {folder / 'report.html'} (open it in a browser) · chart {folder / 'pnl.png'}")
    say(f"explore: {_qtrader()} --db {db} --config {settings} sql 'SELECT * FROM v_trades'")
    return worst


def _qtrader() -> str:
    """How to call qtrader from here: the virtual env's script when that is where we run."""
    script = Path(sys.executable).parent / "qtrader"
    return str(script.relative_to(Path.cwd())) if script.is_relative_to(Path.cwd()) else "qtrader"


def cli_command() -> Command:
    import typer

    from qtrader.cli import app

    click_command = typer.main.get_command(app)

    def command(argv: list[str]) -> int:
        sys.stdout.flush()
        code = click_command.main(args=argv, prog_name="qtrader", standalone_mode=False)
        sys.stdout.flush()
        return int(code or 0)

    return command
