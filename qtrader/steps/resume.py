"""resume: lift every halt of the run's mode (kill switch and circuit breakers), recorded
as one event per halt lifted. Halts of other modes stay.

The drawdown peak and the losing streak count again from this moment, so a breaker that
tripped on them does not trip again at once on the same history.
"""

from __future__ import annotations

from qtrader.output import Result
from qtrader.steps import RunContext
from qtrader.steps.halting import resume_all
from qtrader.store.batch import WriteBatch
from qtrader.store.risk_state import mark_risk_reset


def resume(ctx: RunContext) -> Result:
    with ctx.store.transaction():
        lifted = resume_all(ctx)
        if lifted:
            mark_risk_reset(ctx.store, ctx.mode)
    if not lifted:
        return Result(
            data={"resumed": False, "lifted": []},
            lines=[f"{ctx.mode.upper()} is not halted: nothing to lift"],
        )
    batch = WriteBatch(ctx.run_id, ctx.mode)
    for h in lifted:
        batch.event(
            "halt_lifted", "warning", None, f"halt lifted by resume: {h.reason}", h.as_dict()
        )
    batch.commit(ctx.store)
    return Result(
        data={"resumed": True, "lifted": [h.as_dict() for h in lifted]},
        lines=[
            *(
                f"lifted {h.kind}: {h.reason} (since {h.since:%Y-%m-%d %H:%M:%S} UTC)"
                for h in lifted
            ),
            "the drawdown peak and the losing streak count again from now",
        ],
        summary={"lifted": [h.kind for h in lifted]},
    )
