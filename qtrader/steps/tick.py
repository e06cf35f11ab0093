"""tick's reconcile: only when the database holds something the exchange must be asked about,
or the last reconcile is older than `reconcile.idle_every_s`. An idle tick opens no exchange
and imports no ccxt."""

from __future__ import annotations

from qtrader.domain.ticking import Activity, reconcile_due
from qtrader.output import Result
from qtrader.steps import RunContext

IDLE = "idle"  # the runs.outcome of a reconcile that found nothing to do


def activity(ctx: RunContext) -> Activity:
    row = ctx.store.fetchone(
        "SELECT (SELECT count(*) FROM positions WHERE mode = $1 AND status = 'open'), "
        "(SELECT count(*) FROM orders WHERE mode = $1 AND status IN "
        " ('submitting', 'unknown', 'open', 'partially_filled')), "
        "(SELECT count(*) FROM signals WHERE status = 'executing'), "
        "(SELECT max(started_at) FROM runs WHERE command = 'reconcile' AND mode = $1 "
        " AND outcome IS DISTINCT FROM $2 AND exit_code IN (0, 3))",
        [ctx.mode, IDLE],
    )
    assert row is not None
    return Activity(int(row[0]), int(row[1]), int(row[2]), row[3])


def reconcile_if_due(ctx: RunContext) -> Result:
    from qtrader.clock import wall_utcnow

    why = reconcile_due(activity(ctx), wall_utcnow(), ctx.settings.reconcile.idle_every_s)
    if why is None:
        return Result(
            data={"skipped": True, "reason": "idle: nothing open or in flight"},
            lines=[f"reconcile · {ctx.mode.upper()} · idle: nothing open, reconciled recently"],
            outcome=IDLE,
            summary={"skipped": True},
        )
    from qtrader.steps.reconcile import reconcile

    result = reconcile(ctx)
    result.data = {**result.data, "why": why}
    return result
