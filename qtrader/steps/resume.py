"""resume: lift a halt (kill switch or circuit breaker), recorded as an event.

The drawdown peak and the losing streak count again from this moment, so a breaker that
tripped on them does not trip again at once on the same history.
"""

from __future__ import annotations

from qtrader.output import Result
from qtrader.steps import RunContext
from qtrader.store.batch import WriteBatch
from qtrader.store.risk_state import clear_halt, get_halt


def resume(ctx: RunContext) -> Result:
    halt = get_halt(ctx.store)
    if not halt:
        return Result(
            data={"resumed": False, "lifted": None}, lines=["not halted: nothing to lift"]
        )
    with ctx.store.transaction():
        clear_halt(ctx.store)
    batch = WriteBatch(ctx.run_id, ctx.mode)
    batch.event(
        "halt_lifted", "warning", None, f"halt lifted by resume: {halt.get('reason')}", halt
    )
    batch.commit(ctx.store)
    return Result(
        data={"resumed": True, "lifted": halt},
        lines=[
            f"lifted: {halt.get('reason')} (since {halt.get('since')})",
            "the drawdown peak and the losing streak count again from now",
        ],
        summary={"lifted": halt.get("kind")},
    )
