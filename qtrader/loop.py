"""`qtrader tick` and `qtrader run`: the pipeline's steps in one process.

A tick is pull-signals (when sources are given), execute, then reconcile when something is
open or in flight (else at most every `reconcile.idle_every_s`). Each step is one ordinary
run through `runner.run`: its own actor lock, one database open, its own `runs` row and exit
code, exactly as the separate commands; nothing is kept between steps or ticks but imports,
so a crash loses nothing and a restart carries on from the database.

`run` repeats ticks every `--every` and, with a Redis stream among its sources, starts the
next tick as soon as an entry lands (a blocking XREAD that consumes nothing; pull-signals
reads from its own checkpoint). SIGTERM and SIGINT stop it between steps: the step in hand
finishes (execute protects what filled), then it exits 0.
"""

from __future__ import annotations

import io
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import replace
from pathlib import Path
from typing import Any

from qtrader.domain.ticking import STOPS_THE_CHAIN, tick_exit_code
from qtrader.runner import Invocation, Step, run

StopFlag = Callable[[], bool]


def tick(base: Invocation, sources: list[str], stopped: StopFlag = lambda: False) -> int:
    """One tick; prints one header line (mode and database), then each step's output (with
    --json: one document holding the steps' documents)."""
    steps = _steps(sources)
    if not base.as_json:
        sys.stdout.write(_header(base) + "\n")
        sys.stdout.flush()
    codes: list[int] = []
    documents: list[Any] = []
    for command, step, params in steps:
        if stopped():
            break
        invocation = replace(base, command=command, params=params)
        if base.as_json:
            captured = io.StringIO()
            with redirect_stdout(captured):
                code = run(invocation, step)
            documents.append(_document(captured.getvalue()))
        else:
            code = run(invocation, step)
            sys.stdout.flush()
        codes.append(code)
        if code in STOPS_THE_CHAIN:
            break
    final = tick_exit_code(codes)
    if base.as_json:
        document = {"command": "tick", "mode": _mode(base), "db": str(Path(base.db).resolve()),
                    "ok": final == 0, "exit_code": final, "steps": documents}  # fmt: skip
        sys.stdout.write(json.dumps(document, ensure_ascii=False, default=str) + "\n")
    return final


def run_forever(
    base: Invocation, sources: list[str], every_s: float, max_ticks: int | None = None
) -> int:
    """Ticks until SIGTERM/SIGINT (exit 0) or `max_ticks`; a tick's failure is logged by its
    step and the loop goes on (the next tick retries), except a configuration error (2),
    which no retry fixes."""
    waiter = _waiter(sources)
    ticks = 0
    with stop_between_steps() as stopped:
        while not stopped():
            started = time.monotonic()
            mark = waiter.mark()
            last = tick(base, sources, stopped)
            ticks += 1
            if last == 2:
                return 2
            if last == 130 or (max_ticks is not None and ticks >= max_ticks):
                break
            waiter.wait(started + every_s, mark, stopped)
    return 0


@contextmanager
def stop_between_steps() -> Iterator[StopFlag]:
    """SIGTERM/SIGINT set a flag instead of killing the process mid-step; the loop checks it
    between steps. (execute's own deferred_interrupts take over while it sends orders.)"""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return

    def remember(signum: int, frame: object) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, remember) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield lambda: bool(received)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _steps(sources: list[str]) -> list[tuple[str, Step, dict[str, Any]]]:
    from qtrader.steps.execute import execute
    from qtrader.steps.pull_signals import pull_signals
    from qtrader.steps.tick import reconcile_if_due

    steps: list[tuple[str, Step, dict[str, Any]]] = []
    if sources:
        steps.append(("pull-signals", lambda ctx: pull_signals(ctx, sources, False),
                      {"sources": sources, "strict": False}))  # fmt: skip
    steps.append(("execute", lambda ctx: execute(ctx), {}))
    steps.append(("reconcile", reconcile_if_due, {"idle_every_s": "setting"}))
    return steps


def _mode(base: Invocation) -> str | None:
    from qtrader.config import SettingsRequest, load_settings
    from qtrader.errors import QtraderError

    try:
        request = SettingsRequest(base.config, base.profile, base.mode, base.exchange)
        return load_settings(request).mode
    except QtraderError:
        return None  # the first step reports the bad setting with its exit code


def _header(base: Invocation) -> str:
    from qtrader.output import mode_label

    mode = _mode(base)
    return f"qtrader tick · mode {mode_label(mode) if mode else '?'} · db {Path(base.db).resolve()}"


def _document(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return {"output": text}


# --- waiting between ticks --------------------------------------------------------------------


class _Sleeper:
    """No stream to watch: sleep until the next tick, waking often enough to see a stop."""

    def mark(self) -> str | None:
        return None

    def wait(self, until: float, mark: str | None, stopped: StopFlag) -> None:
        while not stopped() and (left := until - time.monotonic()) > 0:
            time.sleep(min(left, 0.2))


def _waiter(sources: list[str]) -> Any:
    from qtrader.config import SignalsSettings
    from qtrader.sources.redis_source import RedisStream, StreamWatch, redis_source

    for spec in sources:
        if spec.startswith(("redis://", "rediss://", "unix://")):
            source = redis_source(spec, SignalsSettings())
            if isinstance(source, RedisStream):
                return StreamWatch(source)
    return _Sleeper()
