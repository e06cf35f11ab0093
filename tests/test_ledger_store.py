"""steps/ledger.py: re-deriving only the tail, run after run, gives the same positions as
deriving everything at once, and the stored positions sum to the stored ledger."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal as D

import pytest

from qtrader.steps.ledger import derive_symbol
from qtrader.store import open_store

T0 = datetime(2026, 11, 1)
COLUMNS = (
    "position_side, side, qty, entry_price, opened_at, closed_at, status, exit_price, "
    "realized_pnl, fees, funding, open_trade_id, opened_by, close_trade_id"
)


def random_ledger(seed: int) -> tuple[list[tuple], list[tuple]]:
    rng = random.Random(seed)
    fills, funding, clock = [], [], 0
    for n in range(rng.randint(5, 40)):
        clock += rng.choice([0, 1, 5, 60])
        leg = rng.choice(["BOTH", "BOTH", "LONG", "SHORT"])
        fills.append((
            str(1000 + n), f"o{n}", rng.choice(["BUY", "SELL"]), leg, D(rng.randint(1, 30)) / 10,
            D(rng.randint(900, 1100)), D(rng.randint(0, 10**5)) / 10**8,
            D(rng.randint(-(10**6), 10**6)) / 10**6, T0 + timedelta(seconds=clock),
        ))  # fmt: skip
        if rng.random() < 0.3:
            funding.append(
                (f"f{n}", D(rng.randint(-1000, 1000)) / 10**5, T0 + timedelta(seconds=clock + 1))
            )
    return fills, funding


def store_fills(store, fills, funding) -> None:
    for tid, oid, side, leg, qty, price, fee, pnl, ts in fills:
        store.execute("INSERT INTO fills VALUES ('live', 'BTCUSDT', ?, ?, NULL, ?, ?, ?, ?, ?, 'USDT', ?, "
                      "false, ?, '{}', 'binanceusdm')", [tid, oid, side, leg, qty, price, fee, pnl, ts])  # fmt: skip
    for tran, amount, ts in funding:
        store.execute("INSERT INTO income VALUES ('live', ?, 'FUNDING_FEE', 'BTCUSDT', ?, 'USDT', NULL, ?, "
                      "'{}', 'binanceusdm')", [tran, amount, ts])  # fmt: skip


@pytest.mark.parametrize("seed", range(25))
def test_tail_re_derivation_equals_deriving_everything(tmp_path, seed):
    fills, funding = random_ledger(seed)
    rng = random.Random(seed)
    cut = sorted(rng.sample(range(1, len(fills)), k=min(3, len(fills) - 1)))
    stepwise = open_store(str(tmp_path / "a.duckdb"))
    start = 0
    for end in [*cut, len(fills)]:  # a reconcile after each batch of fills
        batch = fills[start:end]
        upto = batch[-1][-1]
        store_fills(
            stepwise,
            batch,
            [f for f in funding if f[2] <= upto and (start == 0 or f[2] > fills[start - 1][-1])],
        )
        derive_symbol(stepwise, "live", "BTCUSDT")
        start = end
    store_fills(stepwise, [], [f for f in funding if f[2] > fills[-1][-1]])
    derive_symbol(stepwise, "live", "BTCUSDT")
    once = open_store(str(tmp_path / "b.duckdb"))
    store_fills(once, fills, funding)
    derive_symbol(once, "live", "BTCUSDT")
    order = f"SELECT {COLUMNS} FROM positions ORDER BY opened_at, position_side, open_trade_id"
    assert stepwise.fetchall(order) == once.fetchall(order)
    totals = stepwise.fetchone("SELECT sum(realized_pnl), sum(fees), sum(funding) FROM positions")
    ledger = stepwise.fetchone(
        "SELECT (SELECT sum(realized_pnl) FROM fills), (SELECT sum(fee) FROM fills), "
        "(SELECT coalesce(sum(amount), 0) FROM income)"
    )
    assert totals == ledger
    stepwise.close()
    once.close()
