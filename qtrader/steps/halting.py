"""The halts of the run's mode, for the steps: add one (with its event), refuse while one
holds, lift what lifts itself, and `resume`. The rules live in domain/halts.py."""

from __future__ import annotations

from loguru import logger

from qtrader.domain.halts import Halt, expired, how_it_lifts
from qtrader.errors import ExitCode, Halted
from qtrader.output import Result
from qtrader.steps import RunContext
from qtrader.store.batch import WriteBatch
from qtrader.store.halts import add_halt, all_halts, halts_in_force, remove_halts


def halt(
    ctx: RunContext,
    batch: WriteBatch,
    kind: str,
    reason: str,
    numbers: dict,
    event: str | None,
) -> tuple[Halt, bool]:
    """Add a halt to the mode's set (never weakening another); the event (if any) is
    buffered in `batch` only when the halt is new, so a lasting condition does not repeat it."""
    now = ctx.now()
    kept, new = add_halt(
        ctx.store, Halt(ctx.mode, kind, reason, now, now.date(), numbers), ctx.run_id
    )
    if new and event:
        data = {"kind": kind, "lifts": kept.lifts, **numbers}
        batch.event(event, "critical", None, reason, data)
    return kept, new


def in_force(ctx: RunContext) -> list[Halt]:
    return halts_in_force(ctx.store, ctx.mode, ctx.now())


def lift_expired(ctx: RunContext, batch: WriteBatch) -> list[Halt]:
    """Delete the daily-loss halts whose UTC day is over, each with a `halt_cleared` event."""
    now = ctx.now()
    over = [h for h in all_halts(ctx.store, ctx.mode) if expired(h, now)]
    remove_halts(ctx.store, ctx.mode, [h.kind for h in over])
    for h in over:
        message = f"{h.kind} halt of {h.day} lifted: a new UTC day"
        batch.event("halt_cleared", "info", None, message, h.as_dict())
        logger.info(message)
    return over


def lift_kind(
    ctx: RunContext, batch: WriteBatch, kind: str, message: str, event: str = "halt_cleared"
) -> Halt | None:
    """Lift one kind that lifts itself (exchange_unhealthy after a healthy run)."""
    held = {h.kind: h for h in all_halts(ctx.store, ctx.mode)}.get(kind)
    if held is None:
        return None
    remove_halts(ctx.store, ctx.mode, [kind])
    batch.event(event, "warning", None, message, held.as_dict())
    logger.info(message)
    return held


def refuse_if_halted(ctx: RunContext, dry_run: bool = False) -> list[Halt]:
    """Exit 3 while a halt that stops everything holds. Returns the halts in force (those
    left stop new entries only). A dry run reads and lifts nothing."""
    if not dry_run:
        batch = WriteBatch(ctx.run_id, ctx.mode)
        lift_expired(ctx, batch)
        batch.commit(ctx.store)
    halts = in_force(ctx)
    blocking = [h for h in halts if h.stops_everything]
    if blocking:
        raise Halted(halted_message(blocking))
    return halts


def halted_message(halts: list[Halt]) -> str:
    parts = [f"{h.reason} ({h.kind}; {how_it_lifts(h.lifts)})" for h in halts]
    return "trading is halted: " + "; and ".join(parts)


def resume_all(ctx: RunContext) -> list[Halt]:
    """`resume`: lift every halt of the mode, whatever its kind."""
    held = all_halts(ctx.store, ctx.mode)
    remove_halts(ctx.store, ctx.mode, [h.kind for h in held])
    return held


def failure_wins(result: Result, halted: Halted) -> Result:
    """A run that found a halt *and* failed (a stop not placed) exits 1, never 3: jobs treat 3
    as quiet, and the failure is what a person must act on. The halt is named in the error."""
    if result.exit_code != ExitCode.FAILURE:
        raise halted
    result.error = f"{result.error}; and {halted}"
    result.data["halted"] = str(halted)
    return result
