"""The qtrader command line: each command parses options, calls one step, renders.

Global options are defined once (GLOBAL_OPTIONS) and accepted both before the command
(`qtrader --json status`) and after it (`qtrader status --json`); the latter wins.
Everything heavy (duckdb, loguru, ccxt, pandas) is imported inside the commands, so
`qtrader --help` stays fast.
"""

import functools
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from typer._click.exceptions import ClickException  # Typer ≥ 0.25 vendors click here
from typer.core import TyperGroup

from qtrader import __version__

DEFAULT_DB = (
    "data/qtrader.duckdb"  # also qtrader.config.DEFAULT_DB; duplicated to keep --help light
)

HELP = """\
qtrader: turns an AI engine's trade signals into real orders on Binance USDⓈ-M futures,
with the stop-loss and take-profit on the exchange, risk limits, reconciliation and PnL.

Every command accepts --json (then stdout is exactly one JSON document). Logs go to stderr.

Exit codes: 0 done · 1 runtime failure · 2 bad usage or configuration ·
3 halted (kill switch or circuit breaker) · 4 database busy (lock held past --lock-timeout) ·
130 interrupted (Ctrl-C or SIGTERM; what was sent is protected first).
"""


class _JsonErrorsGroup(TyperGroup):
    """With --json anywhere on the line, a usage error too prints one JSON document on stdout
    (the error line still goes to stderr) and exits 2."""

    def main(self, args: Any = None, *pos: Any, standalone_mode: bool = True, **extra: Any) -> Any:
        import sys

        argv = list(sys.argv[1:] if args is None else args)
        if "--json" not in argv:
            return super().main(argv, *pos, standalone_mode=standalone_mode, **extra)
        command = next((a for a in argv if a in self.commands), None)
        if command == "version" or (command is None and "--version" in argv):
            document = {"command": "version", "ok": True, "exit_code": 0, "version": __version__}
            typer.echo(json.dumps(document))
            if not standalone_mode:
                return 0
            sys.exit(0)
        try:
            code = super().main(argv, *pos, standalone_mode=False, **extra)
        except ClickException as exc:
            exc.show()
            document = {"command": command, "mode": None, "run_id": None, "ok": False,
                        "exit_code": exc.exit_code, "error": exc.format_message()}  # fmt: skip
            typer.echo(json.dumps(document, ensure_ascii=False))
            code = exc.exit_code
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            code = 1
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="qtrader",
    cls=_JsonErrorsGroup,
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


@dataclass(frozen=True)
class GlobalOption:
    name: str
    flags: tuple[str, ...]
    type: Any
    default: Any
    help: str
    envvar: str | None = None


GLOBAL_OPTIONS = (
    GlobalOption("db", ("--db",), str, DEFAULT_DB, "DuckDB file.", "QTRADER_DB"),
    GlobalOption(
        "config",
        ("--config",),
        str | None,
        None,
        "Settings file [default: ./qtrader.toml if present].",
        "QTRADER_CONFIG",
    ),
    GlobalOption(
        "profile",
        ("--profile",),
        str | None,
        None,
        "Preset of risk limits: conservative | aggressive.",
        "QTRADER_PROFILE",
    ),
    GlobalOption("json", ("--json",), bool, False, "Print exactly one JSON document on stdout."),
    GlobalOption(
        "log_level",
        ("--log-level",),
        LogLevel,
        LogLevel.info,
        "Log level on stderr; debug also shows tracebacks.",
        "QTRADER_LOG_LEVEL",
    ),
    GlobalOption(
        "lock_timeout",
        ("--lock-timeout",),
        float,
        30.0,
        "Seconds to wait for another run's DuckDB lock, then exit 4.",
        "QTRADER_LOCK_TIMEOUT",
    ),
    GlobalOption(
        "exchange",
        ("--exchange",),
        str | None,
        None,
        "Exchange: binanceusdm | bybit | okx [default: binanceusdm; QTRADER_EXCHANGE_NAME].",
    ),
    GlobalOption("paper", ("--paper",), bool, False, "Paper mode, simulated [default]."),
    GlobalOption(
        "testnet", ("--testnet",), bool, False, "The exchange's demo trading (not its testnet)."
    ),
    GlobalOption("live", ("--live",), bool, False, "Mainnet, real money; needs --yes-live."),
    GlobalOption(
        "yes_live", ("--yes-live",), bool, False, "Confirm --live (or QTRADER_LIVE_CONFIRM=yes)."
    ),
)
GLOBAL_NAMES = tuple(option.name for option in GLOBAL_OPTIONS)
MODE_FLAGS = ("paper", "testnet", "live")


def _parameters(at_root: bool) -> list[inspect.Parameter]:
    """The global options as signature parameters: with defaults and env vars at the root,
    without after a command (None/False there means "not given here")."""
    params = []
    for option in GLOBAL_OPTIONS:
        is_flag = option.type is bool
        annotation = option.type if is_flag or at_root else option.type | None
        default = option.default if (at_root or is_flag) else None
        typer_option = typer.Option(
            *option.flags,
            help=option.help,
            envvar=option.envvar if at_root else None,
            show_default=at_root and not is_flag,
        )
        params.append(
            inspect.Parameter(
                option.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=Annotated[annotation, typer_option],
            )
        )
    return params


def with_global_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Accept the global options after the command too, and merge them into ctx.obj."""

    @functools.wraps(command)
    def wrapper(ctx: typer.Context, **kwargs: Any) -> Any:
        given_here = {name: kwargs.pop(name) for name in GLOBAL_NAMES}
        root = ctx.find_root().obj or {}
        ctx.obj = {
            name: given_here[name] if given_here[name] not in (None, False) else root.get(name)
            for name in GLOBAL_NAMES
        }
        return command(ctx, **kwargs)

    own = list(inspect.signature(command).parameters.values())
    wrapper.__signature__ = inspect.Signature([*own, *_parameters(at_root=False)])  # type: ignore[attr-defined]
    return wrapper


def _root(ctx: typer.Context, **options: Any) -> None:
    ctx.obj = options


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"qtrader {__version__}")
        raise typer.Exit()


_VERSION = inspect.Parameter(
    "version",
    inspect.Parameter.KEYWORD_ONLY,
    default=False,
    annotation=Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            callback=_version_callback,
            is_eager=True,
        ),
    ],
)
_root.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
        *_parameters(at_root=True),
        _VERSION,
    ]
)
_root.__doc__ = HELP
app.callback()(_root)


def _mode(options: dict[str, Any]) -> str | None:
    chosen = [flag for flag in MODE_FLAGS if options.get(flag)]
    if len(chosen) > 1:
        raise typer.BadParameter(
            f"choose one of --paper, --testnet, --live (got {', '.join('--' + c for c in chosen)})"
        )
    return chosen[0] if chosen else None


def _run(
    ctx: typer.Context,
    command: str,
    step: Callable[[Any], Any],
    sandbox: bool = False,
    read_only: bool = False,
    acts_without_db: bool = False,
    light: Callable[[Any, str], str] | None = None,
    **params: Any,
) -> None:
    """`sandbox`: the run writes nothing to the database (dry runs, sql). `acts_without_db`:
    a locked database does not stop it (close-all records what it did afterwards). `light`:
    answer from the settings alone, without opening the database or recording a run."""
    from qtrader.runner import run, run_light

    invocation = _invocation(ctx, command, sandbox, read_only, acts_without_db, params)
    raise typer.Exit(run_light(invocation, light) if light else run(invocation, step))


def _invocation(
    ctx: typer.Context,
    command: str,
    sandbox: bool = False,
    read_only: bool = False,
    acts_without_db: bool = False,
    params: dict[str, Any] | None = None,
) -> Any:
    from qtrader.runner import Invocation

    options = ctx.obj
    level = options["log_level"]
    return Invocation(
        command=command,
        db=options["db"],
        params=params or {},
        config=options["config"],
        profile=options["profile"],
        mode=_mode(options),
        exchange=options["exchange"],
        yes_live=bool(options["yes_live"]),
        as_json=bool(options["json"]),
        log_level=level.value if isinstance(level, LogLevel) else str(level),
        lock_timeout=float(options["lock_timeout"]),
        sandbox=sandbox,
        read_only=read_only,
        acts_without_db=acts_without_db,
    )


@app.command("pull-signals")
@with_global_options
def pull_signals(
    ctx: typer.Context,
    sources: Annotated[
        list[str],
        typer.Option(
            "--from",
            "-f",
            help="Signal source, repeatable: FILE (.jsonl/.json/.csv), - (stdin), "
            "redis://HOST:PORT/DB?stream=NAME (checkpointed), redis://…?key=NAME, "
            "or an http(s):// URL. redis://HOST:PORT/DB alone reads quantum:stream:trade.intent.",
        ),
    ],
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Exit 1 if any record is invalid (all are still stored)."),
    ] = False,
) -> None:
    """Ingest signals: validate, store every record (invalid ones with their reason), dedupe."""
    from qtrader.steps.pull_signals import pull_signals as step

    _run(
        ctx,
        "pull-signals",
        lambda run_ctx: step(run_ctx, sources, strict),
        sources=sources,
        strict=strict,
    )


@app.command("execute")
@with_global_options
def execute(
    ctx: typer.Context,
    max_signals: Annotated[
        int | None,
        typer.Option("--max", min=1, help="Handle at most N pending signals (oldest first)."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Compute every decision and order; send no order, write nothing, never halt.",
        ),
    ] = False,
    refresh_markets: Annotated[
        bool,
        typer.Option("--refresh-markets", help="Reload markets and position mode now."),
    ] = False,
) -> None:
    """Pending signals → checks → sizing → entry, stop-loss and take-profit on the exchange."""
    from qtrader.steps.execute import execute as step

    _run(
        ctx,
        "execute",
        lambda run_ctx: step(run_ctx, max_signals, dry_run, refresh_markets),
        sandbox=dry_run,
        max=max_signals,
        dry_run=dry_run,
        refresh_markets=refresh_markets,
    )


@app.command("reconcile")
@with_global_options
def reconcile(ctx: typer.Context) -> None:
    """Make DuckDB agree with the exchange: fills, fees, funding, positions; repair protection."""
    from qtrader.steps.reconcile import reconcile as step

    _run(ctx, "reconcile", step)


_TICK_SOURCES = typer.Option(
    "--from",
    "-f",
    help="Signal source(s) for pull-signals, as pull-signals --from; none: no pull.",
)


@app.command("tick")
@with_global_options
def tick(
    ctx: typer.Context,
    sources: Annotated[list[str] | None, _TICK_SOURCES] = None,
) -> None:
    """One process for cron: pull-signals, execute, then reconcile when anything is open or
    in flight (else every reconcile.idle_every_s). Each step is recorded as its own run."""
    from qtrader.loop import tick as step

    raise typer.Exit(step(_invocation(ctx, "tick"), sources or []))


@app.command("run")
@with_global_options
def run_loop(
    ctx: typer.Context,
    sources: Annotated[list[str] | None, _TICK_SOURCES] = None,
    every: Annotated[
        str,
        typer.Option(
            "--every",
            help="Tick this often (10s, 500ms, 1m); a Redis stream source also wakes it as "
            "soon as an entry lands.",
        ),
    ] = "10s",
    max_ticks: Annotated[
        int | None, typer.Option("--max-ticks", min=1, help="Stop after N ticks.")
    ] = None,
) -> None:
    """Tick in a loop, under a supervisor (deploy/qtrader.service). SIGTERM stops it between
    steps with exit 0; a configuration error exits 2."""
    from qtrader.domain.ticking import parse_every
    from qtrader.loop import run_forever

    try:
        every_s = parse_every(every)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--every") from None
    raise typer.Exit(run_forever(_invocation(ctx, "tick"), sources or [], every_s, max_ticks))


@app.command("prune")
@with_global_options
def prune(
    ctx: typer.Context,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            help="Archive rows older than this (30d, 12w, 48h; at least 1d) "
            "[default: retention.keep_days].",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go; write nothing.")
    ] = False,
    no_compact: Annotated[
        bool, typer.Option("--no-compact", help="Delete, but do not rewrite the file.")
    ] = False,
    archive_sql: Annotated[
        bool,
        typer.Option(
            "--archive-sql",
            help="Only print a DuckDB script that reads the database and its archive together "
            "with the same views (duckdb -init FILE); prunes nothing, opens no database.",
        ),
    ] = False,
) -> None:
    """Move old journal rows, runs, equity snapshots and finished signals to zstd Parquet
    under the archive folder, delete them, compact the file. Trades, orders, fills, income,
    positions and events stay."""
    from qtrader.steps.prune import archive_script, prune_step

    _run(
        ctx,
        "prune",
        lambda run_ctx: prune_step(run_ctx, older_than, dry_run, not no_compact),
        light=archive_script if archive_sql else None,
        sandbox=dry_run,
        older_than=older_than,
        dry_run=dry_run,
        no_compact=no_compact,
    )


@app.command("pnl-report")
@with_global_options
def pnl_report(
    ctx: typer.Context,
    since: Annotated[
        datetime | None, typer.Option("--since", help="From this UTC date/time (inclusive).")
    ] = None,
    until: Annotated[
        datetime | None, typer.Option("--until", help="Up to this UTC date/time (exclusive).")
    ] = None,
    symbol: Annotated[str | None, typer.Option("--symbol", help="Only this symbol.")] = None,
    mode: Annotated[
        str | None,
        typer.Option("--mode", help="Report on paper, testnet or live [default: the run's mode]."),
    ] = None,
    csv_dir: Annotated[
        str | None, typer.Option("--csv", help="Write the views as CSV files into this folder.")
    ] = None,
    parquet_dir: Annotated[
        str | None, typer.Option("--parquet", help="Write the views as Parquet into this folder.")
    ] = None,
    plot: Annotated[
        str | None,
        typer.Option("--plot", help="Draw equity, drawdown and daily PnL to this PNG file."),
    ] = None,
    html: Annotated[
        str | None,
        typer.Option(
            "--html",
            help="Write the report as one self-contained HTML file (charts, trades, statistics).",
        ),
    ] = None,
) -> None:
    """PnL with fees and funding, trade and equity statistics, the go-live checklist."""
    from qtrader.steps.pnl_report import pnl_report as step

    _run(
        ctx,
        "pnl-report",
        lambda run_ctx: step(run_ctx, since, until, symbol, mode, csv_dir, parquet_dir, plot, html),
        since=str(since) if since else None,
        until=str(until) if until else None,
        symbol=symbol,
        mode=mode,
        csv=csv_dir,
        parquet=parquet_dir,
        plot=plot,
        html=html,
        read_only=True,
    )


@app.command("sql")
@with_global_options
def sql(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="One read-only statement (SELECT, WITH, …).")],
) -> None:
    """Run a read-only SQL query against the database (views: v_trades, v_daily_pnl, …)."""
    from qtrader.steps.sql import run_query as step

    _run(
        ctx, "sql", lambda run_ctx: step(run_ctx, query), sandbox=True, read_only=True, query=query
    )


@app.command("close-all")
@with_global_options
def close_all(
    ctx: typer.Context,
    symbols: Annotated[
        list[str] | None,
        typer.Option("--symbol", help="Only this symbol (repeatable); the halt still applies."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what is open and would be closed; do nothing.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="Do not ask; required when not run from a terminal.")
    ] = False,
) -> None:
    """Emergency: halt, cancel every order (regular and algo), close every position, verify flat."""
    import sys

    from qtrader.steps.close_all import close_all as step

    confirm = (lambda text: typer.confirm(text, err=True)) if sys.stdin.isatty() else None
    _run(
        ctx,
        "close-all",
        lambda run_ctx: step(run_ctx, symbols, dry_run, yes, confirm),
        sandbox=dry_run,
        acts_without_db=not dry_run,
        symbols=symbols or [],
        dry_run=dry_run,
        yes=yes,
    )


@app.command("clock")
@with_global_options
def clock(
    ctx: typer.Context,
    to: Annotated[
        datetime | None,
        typer.Option("--to", help="Move the paper clock to this UTC date/time."),
    ] = None,
    advance: Annotated[
        str | None, typer.Option("--advance", help="Move it forward by 90s, 15m, 4h, 2d …")
    ] = None,
) -> None:
    """Paper replay: show or move the paper clock (forward only, within the data)."""
    from qtrader.steps.paper_clock import paper_clock as step

    _run(
        ctx,
        "clock",
        lambda run_ctx: step(run_ctx, to, advance),
        to=str(to) if to else None,
        advance=advance,
    )


@app.command("config")
@with_global_options
def config(
    ctx: typer.Context,
    brief: Annotated[
        bool,
        typer.Option(
            "--brief",
            help="One line: mode, database, config file and the main limits; opens no database "
            "(the jobs print it first).",
        ),
    ] = False,
) -> None:
    """Every setting in effect: value and source (default, profile, file, env, flag); masked."""
    from qtrader.steps.config_show import brief_line, show_config

    _run(ctx, "config", show_config, light=brief_line if brief else None, brief=brief)


@app.command("doctor")
@with_global_options
def doctor(ctx: typer.Context) -> None:
    """Check keys, clock, account, permissions, position mode, database, halt and Redis."""
    from qtrader.steps.doctor import doctor as step

    _run(ctx, "doctor", step)


@app.command("resume")
@with_global_options
def resume(ctx: typer.Context) -> None:
    """Lift a halt (kill switch or circuit breaker) so execute trades again; recorded."""
    from qtrader.steps.resume import resume as step

    _run(ctx, "resume", step)


@app.command("requeue")
@with_global_options
def requeue(
    ctx: typer.Context,
    signal_ids: Annotated[
        list[str], typer.Argument(help="Signal ids (intent_id …) that expired or were rejected.")
    ],
) -> None:
    """Put expired or rejected signals back to pending, with a fresh TTL clock; recorded."""
    from qtrader.steps.requeue import requeue as step

    _run(ctx, "requeue", lambda run_ctx: step(run_ctx, signal_ids), signal_ids=signal_ids)


@app.command("status")
@with_global_options
def status(ctx: typer.Context) -> None:
    """State at a glance: mode, halt, signals by status, the last run of each command."""
    from qtrader.steps.status import status as step

    _run(ctx, "status", step, read_only=True)


@app.command("demo")
def demo(
    out: Annotated[
        str, typer.Option("--out", help="Folder for the demo's new database, settings and chart.")
    ] = "data/demo-runs",
) -> None:
    """Offline PAPER demo: new database, sample signals, bundled candles, every step, PnL."""
    from pathlib import Path

    from qtrader.demo import cli_command, run_demo

    try:
        code = run_demo(Path(out), cli_command(), typer.echo)
    except FileNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


@app.command("version")
def version() -> None:
    """Print qtrader's version."""
    _version_callback(True)


def main() -> None:
    app()
