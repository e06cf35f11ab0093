"""requeue: put expired or rejected signals back to pending, with a fresh TTL clock.

Only a signal that never produced an order is requeued: one whose entry reached the exchange
(even rejected there) keeps its orders and its client ids, and is pulled again under a new
id instead (invariant 1: one signal never produces two entry orders). Each requeue is an
event; ids that cannot be requeued are listed with the reason and make the run exit 2.
"""

from __future__ import annotations

from typing import Any

from qtrader.errors import ExitCode
from qtrader.output import Result, Table
from qtrader.steps import RunContext
from qtrader.store.batch import WriteBatch

REQUEUEABLE = ("expired", "rejected")


def requeue(ctx: RunContext, signal_ids: list[str]) -> Result:
    now = ctx.now()
    batch = WriteBatch(ctx.run_id, ctx.mode)
    rows: list[dict[str, Any]] = []
    requeued: list[tuple[int, str]] = []
    for signal_id in dict.fromkeys(signal_ids):
        found = ctx.store.fetchall(
            "SELECT seq, status, reason, symbol, "
            " (SELECT count(*) FROM orders o WHERE o.signal_seq = s.seq) AS orders "
            "FROM signals s WHERE signal_id = ? AND status <> 'conflict' ORDER BY seq",
            [signal_id],
        )
        row = {"signal_id": signal_id, "requeued": False, "was": None, "reason": None}
        if not found:
            row["reason"] = 'no such signal; list them with: qtrader sql "SELECT signal_id, '
            row["reason"] += 'status, reason FROM signals ORDER BY seq DESC LIMIT 20"'
        else:
            seq, status, reason, symbol, orders = found[-1]
            row["was"] = status
            if status not in REQUEUEABLE:
                row["reason"] = f"it is {status}; only expired or rejected signals are requeued"
            elif orders:
                row["reason"] = (
                    f"it has {orders} order(s) on the exchange record; requeueing could send a "
                    "second entry: pull it again under a new intent_id"
                )
            else:
                row |= {"requeued": True, "reason": f"was {status}: {reason}"}
                requeued.append((seq, signal_id))
                batch.event(
                    "signal_requeued",
                    "info",
                    symbol,
                    f"{signal_id} put back to pending (was {status}: {reason})",
                    {"signal_id": signal_id, "seq": seq, "was": status, "reason": reason},
                )
        rows.append(row)
    with ctx.store.transaction():
        for seq, _ in requeued:
            ctx.store.execute(
                "UPDATE signals SET status = 'pending', reason = NULL, requeued_at = ?, "
                "updated_at = ? WHERE seq = ?",
                [now, now, seq],
            )
        batch.write_within(ctx.store)  # the events, in the same transaction
    refused = [r for r in rows if not r["requeued"]]
    result = Result(
        data={"requeued": [r["signal_id"] for r in rows if r["requeued"]], "signals": rows},
        lines=[
            f"{len(requeued)} signal(s) back to pending; the TTL clock "
            f"(risk.signal_ttl_s = {ctx.settings.risk.signal_ttl_s} s) starts now"
        ],
        tables=[
            Table(
                "signals",
                ["signal_id", "requeued", "was", "reason"],
                [
                    [r["signal_id"], "yes" if r["requeued"] else "no", r["was"], r["reason"]]
                    for r in rows
                ],
            )
        ],
        summary={"requeued": len(requeued), "refused": len(refused)},
    )
    if refused:
        result.exit_code, result.outcome = ExitCode.USAGE, "usage"
        result.error = "; ".join(f"{r['signal_id']}: {r['reason']}" for r in refused)
    return result
