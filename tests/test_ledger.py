"""Positions from the fills ledger (domain/ledger.py): table tests and a property test."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qtrader.domain.ledger import (
    ClosingOrder,
    Funding,
    LedgerFill,
    Opening,
    exit_reason,
    leg_lifecycles,
    lifecycles,
)
from qtrader.domain.numbers import plain

T0 = datetime(2026, 11, 1)


def fill(n: int, side: str, qty: str, price: str = "100", fee: str = "0", pnl: str = "0",
         leg: str = "BOTH", tid: str | None = None, s: int | None = None) -> LedgerFill:  # fmt: skip
    return LedgerFill(tid or str(n), f"o{n}", side, D(qty), D(price), D(fee), D(pnl),
                      T0 + timedelta(seconds=n if s is None else s), leg)  # fmt: skip


def text(number: D) -> str:
    return format(plain(number), "f")


def shape(positions) -> list[tuple]:
    return [
        (p.side, text(p.qty), text(p.open_qty), p.opened_by, p.is_open,
         [(x.trade_id, text(x.qty), text(x.fee), x.adds) for x in p.parts])
        for p in positions
    ]  # fmt: skip


CASES = [
    {
        "description": "open, then close: one closed position",
        "fills": [fill(1, "BUY", "1"), fill(2, "SELL", "1")],
        "expected": [("BUY", "1", "0", "flat", False, [("1", "1", "0", True), ("2", "1", "0", False)])],
    },
    {
        "description": "closed and reopened twice: three positions, each its own fills",
        "fills": [fill(1, "BUY", "1"), fill(2, "SELL", "1"), fill(3, "SELL", "2"),
                  fill(4, "BUY", "2"), fill(5, "BUY", "1")],
        "expected": [
            ("BUY", "1", "0", "flat", False, [("1", "1", "0", True), ("2", "1", "0", False)]),
            ("SELL", "2", "0", "flat", False, [("3", "2", "0", True), ("4", "2", "0", False)]),
            ("BUY", "1", "1", "flat", True, [("5", "1", "0", True)]),
        ],
    },
    {
        "description": "adds and partial closes stay one position",
        "fills": [fill(1, "BUY", "1"), fill(2, "BUY", "2"), fill(3, "SELL", "1.5"), fill(4, "SELL", "1.5")],
        "expected": [("BUY", "3", "0", "flat", False, [("1", "1", "0", True), ("2", "2", "0", True),
                                                       ("3", "1.5", "0", False), ("4", "1.5", "0", False)])],
    },
    {
        "description": "a flip splits the fill: quantity, and the fee pro rata",
        "fills": [fill(1, "BUY", "1", fee="0.04"), fill(2, "SELL", "3", fee="0.3", pnl="5")],
        "expected": [
            ("BUY", "1", "0", "flat", False, [("1", "1", "0.04", True), ("2", "1", "0.1", False)]),
            ("SELL", "2", "2", "flip", True, [("2", "2", "0.2", True)]),
        ],
    },
    {
        "description": "a fee that does not divide evenly: the parts still sum to the fill's fee",
        "fills": [fill(1, "SELL", "3"), fill(2, "BUY", "4", fee="0.00000001")],
        "expected": [
            ("SELL", "3", "0", "flat", False, [("1", "3", "0", True), ("2", "3", "0.00000001", False)]),
            ("BUY", "1", "1", "flip", True, [("2", "1", "0", True)]),
        ],
    },
    {
        "description": "the exchange's order: time first, then the trade id as a number",
        "fills": [fill(2, "SELL", "1", tid="10", s=5), fill(1, "BUY", "1", tid="9", s=5)],
        "expected": [("BUY", "1", "0", "flat", False, [("9", "1", "0", True), ("10", "1", "0", False)])],
    },
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c["description"] for c in CASES])
def test_lifecycles_from_fills(case):
    assert shape(leg_lifecycles("BOTH", case["fills"])) == case["expected"]


def test_prices_pnl_and_times():
    (first, second) = leg_lifecycles("BOTH", [
        fill(1, "BUY", "1", "100", fee="0.04"), fill(2, "BUY", "1", "110", fee="0.044"),
        fill(3, "SELL", "2", "120", fee="0.096", pnl="30"), fill(4, "SELL", "1", "119", fee="0.05"),
    ])  # fmt: skip
    assert (first.entry_price, first.exit_price, first.realized_pnl, first.fees) == (
        D(105), D(120), D(30), D("0.18"))  # fmt: skip
    assert (first.opened_at, first.closed_at) == (
        T0 + timedelta(seconds=1),
        T0 + timedelta(seconds=3),
    )
    assert first.opening_order_id == "o1" and first.closing_part.order_id == "o3"
    assert second.is_open and second.entry_price == D(119) and second.exit_price is None


def test_hedge_legs_are_separate_positions():
    positions = lifecycles([fill(1, "BUY", "1", leg="LONG"), fill(2, "SELL", "2", leg="SHORT"),
                            fill(3, "SELL", "1", leg="LONG")])  # fmt: skip
    assert [(p.position_side, p.side, p.is_open) for p in positions] == [
        ("LONG", "BUY", False), ("SHORT", "SELL", True)]  # fmt: skip


def test_a_carried_opening_balance_is_the_first_position():
    opening = Opening(D("0.5"), None, T0)
    (carried, later) = leg_lifecycles("BOTH", [fill(1, "SELL", "0.5", "3010", pnl="5"),
                                               fill(2, "BUY", "1", "3000")], opening)  # fmt: skip
    assert (carried.opened_by, carried.side, carried.qty, carried.is_open) == (
        "carried",
        "BUY",
        D("0.5"),
        False,
    )
    assert carried.entry_price == D(3000)  # implied by what closing it realized
    assert later.opened_by == "flat" and later.open_qty == 1


FUNDING_CASES = [
    {"description": "while open: the open position", "at": 2, "owner": 0},
    {"description": "at the instant one closes: the next one open (or the closed one)", "at": 3, "owner": 0},
    {"description": "while flat: the one that closed last", "at": 4, "owner": 0},
    {"description": "after reopening: the new one", "at": 6, "owner": 1},
    {"description": "before anything opened: the first", "at": 0, "owner": 0},
]  # fmt: skip


@pytest.mark.parametrize("case", FUNDING_CASES, ids=[c["description"] for c in FUNDING_CASES])
def test_funding_belongs_to_exactly_one_position(case):
    row = Funding("f", D("-0.1"), T0 + timedelta(seconds=case["at"]))
    positions = lifecycles([fill(1, "BUY", "1"), fill(3, "SELL", "1"), fill(5, "BUY", "1")], [row])
    assert [len(p.funding) for p in positions] == [int(i == case["owner"]) for i in range(2)]


# --- property: nothing double counted, nothing left out ---------------------------------------

steps = st.lists(
    st.tuples(
        st.sampled_from(["BUY", "SELL"]),
        st.integers(1, 40).map(lambda n: D(n) / 10),  # qty
        st.integers(1, 10**6).map(lambda n: D(n) / 10**8),  # fee
        st.integers(-(10**6), 10**6).map(lambda n: D(n) / 10**6),  # realized pnl
        st.integers(0, 3),  # seconds since the previous fill (0: same instant)
        st.sampled_from(["BOTH", "LONG", "SHORT"]),
    ),
    min_size=1,
    max_size=60,
)
funding_rows = st.lists(st.tuples(st.integers(-5, 200), st.integers(-(10**5), 10**5)), max_size=15)


@settings(max_examples=300, deadline=None)
@given(steps, funding_rows, st.integers(-3, 3))
def test_sums_over_positions_equal_sums_over_the_ledger(sequence, funding, carried):
    fills, clock = [], 0
    for n, (side, qty, fee, pnl, gap, leg) in enumerate(sequence):
        clock += gap
        fills.append(LedgerFill(str(1000 + n), f"o{n}", side, qty, D(100), fee, pnl,
                                T0 + timedelta(seconds=clock), leg))  # fmt: skip
    rows = [
        Funding(f"f{i}", D(a) / 10**6, T0 + timedelta(seconds=s))
        for i, (s, a) in enumerate(funding)
    ]
    openings = {"BOTH": Opening(D(carried), D(100), T0)} if carried else None
    positions = lifecycles(fills, rows, openings)

    # every fill's quantity, fee and pnl is accounted for exactly once
    assert sum((p.fees for p in positions), D(0)) == sum((f.fee for f in fills), D(0))
    assert sum((p.realized_pnl for p in positions), D(0)) == sum(
        (f.realized_pnl for f in fills), D(0)
    )
    for f in fills:
        parts = [x for p in positions for x in p.parts if x.trade_id == f.trade_id]
        assert sum((x.qty for x in parts), D(0)) == f.qty and 1 <= len(parts) <= 2
        assert sum((x.fee for x in parts), D(0)) == f.fee
    # every funding row belongs to exactly one position
    assigned = [r.key for p in positions for r in p.funding]
    assert sorted(assigned) == sorted(r.key for r in rows) and len(set(assigned)) == len(rows)
    # per leg: at most one open position, the last; what is open equals the running net
    for leg in ("BOTH", "LONG", "SHORT"):
        mine = [p for p in positions if p.position_side == leg]
        assert all(not p.is_open for p in mine[:-1])
        net = D(carried) if (leg == "BOTH" and carried) else D(0)
        net += sum(
            (f.qty if f.side == "BUY" else -f.qty for f in fills if f.position_side == leg), D(0)
        )
        open_signed = sum(
            (p.open_qty if p.side == "BUY" else -p.open_qty for p in mine if p.is_open), D(0)
        )
        assert open_signed == net
        for p in mine:  # a position's fills lie within [opened_at, closed_at]
            assert all(
                p.opened_at <= x.ts and (p.closed_at is None or x.ts <= p.closed_at)
                for x in p.parts
            )


REASONS = [
    {"description": "a stop-loss fired", "order": ClosingOrder("stop_loss", "execute"), "liq": False, "reason": "stop_loss"},
    {"description": "a take-profit fired", "order": ClosingOrder("take_profit", "execute"), "liq": False, "reason": "take_profit"},
    {"description": "a CLOSE signal", "order": ClosingOrder("exit", "execute"), "liq": False, "reason": "signal_close"},
    {"description": "a reversing signal", "order": ClosingOrder("reverse_exit", "execute"), "liq": False, "reason": "signal_close"},
    {"description": "close-all", "order": ClosingOrder("exit", "close-all"), "liq": False, "reason": "close_all"},
    {"description": "the watchdog's time exit", "order": ClosingOrder("exit", "reconcile", ("time_exit",)), "liq": False, "reason": "time_exit"},
    {"description": "the watchdog: stop crossed", "order": ClosingOrder("exit", "reconcile", ("stop_crossed_closed",)), "liq": False, "reason": "watchdog"},
    {"description": "execute: stop could not be placed", "order": ClosingOrder("exit", "execute", ("stop_loss_failed",)), "liq": False, "reason": "watchdog"},
    {"description": "the exchange's forced order", "order": None, "liq": True, "reason": "liquidation"},
    {"description": "someone outside qtrader", "order": None, "liq": False, "reason": "manual"},
]  # fmt: skip


@pytest.mark.parametrize("case", REASONS, ids=[c["description"] for c in REASONS])
def test_exit_reason_from_the_closing_order(case):
    assert exit_reason(case["order"], case["liq"]) == case["reason"]
