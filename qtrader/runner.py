"""Runs one command: store → runs row → settings → step → runs row → render → exit code.

This is the one place that turns exceptions into exit codes and one-line messages, so
`cli.py` stays free of `try`. Messages are masked; tracebacks appear only with
`--log-level debug`. `cli.py` imports this module lazily, inside each command, which
keeps `qtrader --help` free of duckdb, loguru and the rest.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from qtrader.clock import market_clock
from qtrader.config import SettingsRequest, load_settings
from qtrader.errors import ConfigError, DatabaseBusy, QtraderError, exit_code_for
from qtrader.exchange import market_now
from qtrader.logs import bind_run, setup_logging
from qtrader.output import Result, render, render_error
from qtrader.secrets import mask, redact_url
from qtrader.steps import RunContext
from qtrader.store import Store, open_store
from qtrader.store.actor_lock import ACTORS, actor_lock
from qtrader.store.db import check_db_path, open_reader, open_sandbox
from qtrader.store.recovery import open_memory
from qtrader.store.runs import finish_run, other_exchange, set_run_mode, start_run

INTERRUPTED = 130
EMERGENCY_WAIT_S = 5.0  # close-all's longest wait for the file or another run before acting

Step = Callable[[RunContext], Result]


@dataclass(frozen=True)
class Invocation:
    """What the command line asked for, after merging global and per-command options."""

    command: str
    db: str
    params: dict[str, Any] = field(default_factory=dict)
    config: str | None = None
    profile: str | None = None
    mode: str | None = None
    exchange: str | None = None  # --exchange
    yes_live: bool = False
    as_json: bool = False
    log_level: str = "info"
    lock_timeout: float = 30.0
    sandbox: bool = False  # write nothing: one transaction, rolled back; no runs row
    read_only: bool = False  # a read-only connection; without sandbox: a reader (no runs row)
    acts_without_db: bool = False  # close-all: a locked file must not keep it off the exchange


def run(invocation: Invocation, step: Step) -> int:
    setup_logging(invocation.log_level, os.environ.get("QTRADER_LOG_FILE") or None)
    header: dict[str, Any] = {"command": invocation.command, "mode": None, "run_id": None}
    with ExitStack() as stack:
        if invocation.command in ACTORS and not invocation.sandbox:
            try:
                lock = actor_lock(invocation.db, _first_wait(invocation), invocation.command)
                stack.enter_context(lock)
            except DatabaseBusy as exc:
                if not invocation.acts_without_db:
                    _alert_busy(invocation, exc)
                    return _report_failure(exc, header, invocation)
                logger.warning("{}; close-all goes on regardless", exc)  # an emergency
        return _run_opened(invocation, step, header)


def _run_opened(invocation: Invocation, step: Step, header: dict[str, Any]) -> int:
    busy: DatabaseBusy | None = None
    try:
        if invocation.sandbox:
            store = open_sandbox(invocation.db, invocation.lock_timeout, invocation.read_only)
        elif invocation.read_only and not _reads_paper_books(invocation):
            store = open_reader(invocation.db, invocation.lock_timeout)
        else:
            store = open_store(invocation.db, _first_wait(invocation))
    except DatabaseBusy as exc:
        if not _acts_without_db(invocation):
            _alert_busy(invocation, exc)
            return _report_failure(exc, header, invocation)
        busy, store = exc, open_memory()
        logger.warning("{}; close-all goes on against the exchange and records later", exc)
    except BaseException as exc:
        return _report_failure(exc, header, invocation)
    if invocation.acts_without_db:
        store.keep_open = True  # close-all: once it has the file, it keeps it to the end
    try:
        run_id = _unique_run_id() if busy else None
        code = _run_recorded(invocation, step, store, header, run_id)
        if busy:
            _save_for_later(store, invocation, header["run_id"])
    finally:
        store.close()
    if not (busy or store.sandbox or store.read_only):
        _refresh_explore(invocation)
    return code


def _refresh_explore(invocation: Invocation) -> None:
    """The Parquet copy for notebooks, after a run that wrote; best-effort, never changes
    the run's outcome."""
    try:
        settings = load_settings(_settings_request(invocation))
    except QtraderError:
        return  # the run has said so already
    try:
        from qtrader.store.explore import refresh

        refresh(invocation.db, settings.explore.every_s, min(invocation.lock_timeout, 5.0))
    except Exception as exc:
        logger.warning("the explore copy was not refreshed: {}", mask(str(exc)))


def _alert_busy(invocation: Invocation, busy: DatabaseBusy) -> None:
    """A locked database stops every step, reconcile's stop repairs included: say so loudly
    (stderr does it too); best-effort."""
    try:
        from qtrader.alerts import alert_database_busy
        from qtrader.clock import wall_utcnow

        settings = load_settings(_settings_request(invocation))
        alert_database_busy(settings, mask(str(busy)), invocation.db, wall_utcnow())
    except Exception as exc:  # an alert must never change the run's outcome
        logger.warning("busy alert skipped: {}", mask(str(exc)))


def _settings_request(invocation: Invocation) -> SettingsRequest:
    return SettingsRequest(
        invocation.config, invocation.profile, invocation.mode, invocation.exchange
    )


def run_light(invocation: Invocation, answer: Callable[[Any, str], str]) -> int:
    """A command answered from the settings alone (`config --brief`): no database is opened
    and no run recorded; a bad setting still exits 2 with its message."""
    try:
        check_db_path(invocation.db)
        settings = load_settings(_settings_request(invocation))
        sys.stdout.write(answer(settings, invocation.db) + "\n")
    except BaseException as exc:
        return _report_failure(exc, {"command": invocation.command, "mode": None,
                                     "run_id": None}, invocation)  # fmt: skip
    return 0


def _first_wait(invocation: Invocation) -> float:
    """close-all does not wait long before acting: it can act without the file and records
    what it did afterwards (then it waits the whole --lock-timeout)."""
    if _acts_without_db(invocation):
        return min(invocation.lock_timeout, EMERGENCY_WAIT_S)
    return invocation.lock_timeout


def _acts_without_db(invocation: Invocation) -> bool:
    """close-all on testnet or live (the paper exchange keeps its books in the file)."""
    return invocation.acts_without_db and not _paper(invocation)


def _reads_paper_books(invocation: Invocation) -> bool:
    """status in paper mode asks the paper exchange, which catches up in the file."""
    return invocation.command == "status" and _paper(invocation)


def _paper(invocation: Invocation) -> bool:
    """Paper mode, or settings that do not load (the run reports them once it has the file).
    The paper exchange keeps its books in the file and catches up as it is read, so its
    readers and its close-all need the file for writing."""
    try:
        settings = load_settings(_settings_request(invocation))
    except QtraderError:
        return True
    return settings.mode == "paper"


def _unique_run_id() -> int:
    """A run id for the stand-in store that no earlier stand-in run had (its close orders'
    client ids derive from it); the import gives the run a real id."""
    return int(time.time() * 1000)


def _save_for_later(memory: Store, invocation: Invocation, run_id: int) -> None:
    from qtrader.store.recovery import write_recovery

    path = write_recovery(memory, invocation.db, run_id)
    try:
        open_store(invocation.db, invocation.lock_timeout).close()  # imports it
        where = f"imported into {invocation.db} now"
    except QtraderError as exc:
        where = f"the next qtrader run that opens {invocation.db} imports it ({exc})"
    sys.stderr.write(
        f"warning: the database was locked, so close-all acted on the exchange first and "
        f"saved what it did (its kill switch, orders, events) in {path}; {where}\n"
    )


def _run_recorded(
    invocation: Invocation, step: Step, store: Store, header: dict, fixed_run_id: int | None = None
) -> int:
    # a sandboxed run or a reader leaves no trace, not even its runs row
    recorded = not (store.sandbox or store.read_only)
    run_id = (
        start_run(store, invocation.command, _safe_params(invocation.params), fixed_run_id)
        if recorded
        else 0
    )
    header["run_id"] = run_id or None
    bind_run(run_id, None)
    settings = None
    context = None
    try:
        settings = load_settings(_settings_request(invocation))
        header["mode"] = settings.mode
        header["exchange_name"] = settings.exchange.name
        store.exchange = settings.exchange.name
        if recorded:
            set_run_mode(store, run_id, settings.mode, settings.exchange.name)
        _one_exchange_per_mode(store, settings.mode, settings.exchange.name)
        bind_run(run_id, settings.mode)
        context = RunContext(
            settings=settings, store=store, run_id=run_id, yes_live=invocation.yes_live
        )
        with market_clock(market_now(settings, store)):
            result = step(context)
    except BaseException as exc:
        if isinstance(exc, DatabaseBusy):  # the file was taken mid-run: no more waiting on it
            _alert_busy(invocation, exc)
        elif recorded:
            _assess_exchange(context)
            _record_end(store, run_id, _outcome(exc), _exit_code(exc), _message(exc), None)
            _alert(store, run_id, settings)
        return _report_failure(exc, header, invocation)

    error = mask(result.error) if result.error else None
    if recorded:
        _assess_exchange(context)
        _record_end(store, run_id, result.outcome, int(result.exit_code), error, result.summary)
        _alert(store, run_id, settings)
    render(result, header, invocation.as_json, sys.stdout)
    if error:
        sys.stderr.write(f"error: {error}\n")
    return int(result.exit_code)


def _one_exchange_per_mode(store: Store, mode: str, exchange: str) -> None:
    """Positions, fills and caches of one mode come from one exchange: a file that holds
    another exchange's testnet or live records is refused (it would mix their ledgers)."""
    if mode == "paper":
        return
    other = other_exchange(store, mode, exchange)
    if other is not None:
        raise ConfigError(
            f"this database holds {mode} records of {other}; qtrader keeps one exchange per "
            f"mode in a file: use another --db for {exchange} (or --exchange {other})"
        )


def _assess_exchange(context: RunContext | None) -> None:
    """The exchange-health breaker counts this run (if it used the exchange); best-effort."""
    if context is None:
        return
    try:
        from qtrader.steps.exchange_health import assess

        assess(context)
    except Exception as exc:  # bookkeeping must never change the run's outcome
        logger.warning("exchange health not assessed: {}", mask(str(exc)))


def _alert(store: Store, run_id: int, settings: Any) -> None:
    """Alerts and published results for what this run recorded; best-effort, never changes
    the run's outcome."""
    if settings is None:
        return
    try:
        from qtrader.alerts import collect, configured, send_all
        from qtrader.clock import utcnow

        if configured():
            alerts = collect(store, run_id, settings.alerts.loss_usd)
            send_all(store, settings, settings.mode, alerts, utcnow())
        if settings.publish.redis_url:
            from qtrader.publish import publish_run

            publish_run(store, settings, run_id)
    except Exception as exc:  # an alert must never fail a step
        logger.warning("alerts skipped: {}", mask(str(exc)))


def _record_end(
    store: Store, run_id: int, outcome: str, code: int, error: str | None, summary: Any
) -> None:
    try:
        finish_run(store, run_id, outcome, code, error, summary)
    except Exception as exc:  # the run's own result matters more than its bookkeeping
        logger.warning("could not record the end of run {}: {}", run_id, exc)


def _report_failure(exc: BaseException, header: dict, invocation: Invocation) -> int:
    code = _exit_code(exc)
    message = _message(exc)
    if invocation.log_level == "debug" and not isinstance(exc, KeyboardInterrupt):
        logger.opt(exception=exc).debug("traceback")
    sys.stderr.write(f"error: {message}\n")
    render_error(message, code, header, invocation.as_json, sys.stdout)
    return code


def _exit_code(exc: BaseException) -> int:
    return INTERRUPTED if isinstance(exc, KeyboardInterrupt) else int(exit_code_for(exc))


def _outcome(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return exc.outcome if isinstance(exc, QtraderError) else "failed"


def _message(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted; everything committed before the interrupt is kept"
    if isinstance(exc, QtraderError):
        return mask(str(exc))
    return mask(
        f"internal error ({type(exc).__name__}: {exc}); this is a bug. "
        "Rerun with --log-level debug for the traceback and report it"
    )


def _safe_params(params: dict[str, Any]) -> dict[str, Any]:
    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return redact_url(value) if "://" in value else mask(value)
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    return {key: clean(value) for key, value in params.items()}
