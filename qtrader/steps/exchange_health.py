"""The exchange-health breaker, assessed after every run that used the exchange.

A run whose requests failed to get an answer (timeouts, 5xx, internal errors, rate limits:
`exchange_calls.unhealthy`) counts one; a run whose requests all got an answer resets the
count. After `risk.exchange_failure_runs` such runs in a row the `exchange_unhealthy` halt is
added: new entries stop, while protection, CLOSE signals and reconcile go on (each new entry
into an exchange that does not answer is one more order of unknown outcome). The first
healthy run lifts it. Both are events that alert (`exchange_unhealthy`, `exchange_healthy`).
"""

from __future__ import annotations

from loguru import logger

from qtrader.domain.halts import health_after
from qtrader.steps import RunContext
from qtrader.steps.halting import halt, lift_kind
from qtrader.store.batch import WriteBatch
from qtrader.store.state import get_state, set_state

KIND = "exchange_unhealthy"


def assess(ctx: RunContext) -> None:
    row = ctx.store.fetchone(
        "SELECT count(*), count(*) FILTER (WHERE unhealthy) FROM exchange_calls WHERE run_id = ?",
        [ctx.run_id],
    )
    calls, failed = (int(row[0]), int(row[1])) if row else (0, 0)
    if calls == 0:
        return  # the run did not talk to the exchange: it says nothing about its health
    key = f"exchange_failed_runs:{ctx.mode}"
    health = health_after(
        int(get_state(ctx.store, key) or 0), failed > 0, ctx.settings.risk.exchange_failure_runs
    )
    batch = WriteBatch(ctx.run_id, ctx.mode)
    with ctx.store.transaction():
        set_state(ctx.store, key, health.failed_runs)
        if health.trip:
            reason = (
                f"exchange unhealthy: {health.failed_runs} runs in a row had requests that "
                f"got no answer ({failed} of {calls} this run); new entries stop, "
                "protection and closes go on"
            )
            _, new = halt(ctx, batch, KIND, reason, {"failed_runs": health.failed_runs}, KIND)
            if new:
                logger.error(reason)
        if health.lift:
            lift_kind(ctx, batch, KIND, "exchange healthy again: new entries resume",
                      event="exchange_healthy")  # fmt: skip
    batch.commit(ctx.store)
