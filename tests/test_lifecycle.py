"""The per-signal lifecycle and the protection rules as tables: one row per scenario of
issue 12, pure functions only (no CLI, no DuckDB, no network)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from qtrader.domain.lifecycle import (
    CancelProtection,
    CloseSignal,
    EntrySignal,
    Finish,
    GiveUp,
    LookUp,
    OrderFacts,
    Send,
    Wait,
    next_close_action,
    next_entry_action,
)
from qtrader.domain.orders import OrderStatus as S
from qtrader.domain.orders import Refusal, Role
from qtrader.domain.protection import (
    Cancel,
    ClosePosition,
    Held,
    Intended,
    Kind,
    Place,
    Resting,
    orphans,
    repairs,
)

GRACE = 60.0
FILLED = OrderFacts(S.FILLED, D("0.008"), D("50000"))
OPEN = OrderFacts(S.OPEN)


def entry_signal(entry=None, stop=None, target=None, exit_=None) -> EntrySignal:
    filled = entry is not None and entry.filled_qty > 0
    return EntrySignal(
        "BUY", entry, stop, target, exit_,
        stop_price=D("49000") if filled else None,
        target_price=D("52000") if filled else None,
        fill_price=D("50000") if filled else None,
    )  # fmt: skip


ENTRY_CASES = [
    # description, signal facts, expected action
    ("a fresh entry is sent", entry_signal(OrderFacts(S.SUBMITTING, never_sent=True)), Send(Role.ENTRY)),
    ("a row left by a killed run is looked up first", entry_signal(OrderFacts(S.SUBMITTING, age_s=5)), LookUp(Role.ENTRY)),
    ("a timeout is looked up, not re-sent", entry_signal(OrderFacts(S.UNKNOWN, sends=1)), LookUp(Role.ENTRY)),
    ("a 429 (never processed) is sent again", entry_signal(OrderFacts(S.UNKNOWN, sends=1, never_sent=True)), Send(Role.ENTRY)),
    ("1: a lookup with no answer waits, however old",
     entry_signal(OrderFacts(S.UNKNOWN, age_s=3600, cannot_tell="read timed out")), Wait("cannot ask the exchange: read timed out")),
    ("not found within the grace period waits", entry_signal(OrderFacts(S.UNKNOWN, age_s=10, lookups=1)),
     Wait("entry not found yet; looked up again next run")),
    ("not found past the grace period is given up, not re-sent",
     entry_signal(OrderFacts(S.UNKNOWN, age_s=61, lookups=1)),
     GiveUp(Role.ENTRY, "the exchange has no entry 61 s after it was sent; not re-sent")),
    ("3: a MARKET entry answered NEW/0 is looked up", entry_signal(OrderFacts(S.OPEN, lookups=1)), LookUp(Role.ENTRY)),
    ("3: still NEW after two lookups waits for the next run", entry_signal(OrderFacts(S.OPEN, lookups=2)),
     Wait("entry accepted but not filled yet; the next run looks it up")),
    ("an entry the exchange refused is rejected", entry_signal(OrderFacts(S.REJECTED, error="-2019 margin")),
     Finish("rejected", "-2019 margin")),
    ("a filled entry gets the signal's stop", entry_signal(FILLED), Send(Role.STOP_LOSS, D("0.008"), D("49000"))),
    ("5: a stop of unknown outcome is looked up", entry_signal(FILLED, OrderFacts(S.UNKNOWN, sends=1)), LookUp(Role.STOP_LOSS)),
    ("5: a stop lookup with no answer waits; no market close",
     entry_signal(FILLED, OrderFacts(S.UNKNOWN, sends=3, cannot_tell="503")),
     Wait("stop-loss outcome unknown (cannot ask the exchange: 503); not closed, looked up next run")),
    ("a stop the exchange does not have is placed again (its id is unique among open orders)",
     entry_signal(FILLED, OrderFacts(S.UNKNOWN, sends=1, lookups=1)), Send(Role.STOP_LOSS, D("0.008"), D("49000"))),
    ("2: a stop the exchange refused closes the position",
     entry_signal(FILLED, OrderFacts(S.REJECTED, error="-2021")), Send(Role.EXIT, D("0.008"))),
    ("a stop on the book: the target next", entry_signal(FILLED, OPEN), Send(Role.TAKE_PROFIT, D("0.008"), D("52000"))),
    ("a target of unknown outcome does not hold the signal",
     entry_signal(FILLED, OPEN, OrderFacts(S.UNKNOWN, sends=3, cannot_tell="timeout")),
     Finish("executed", "take-profit outcome unknown (cannot ask the exchange: timeout); reconcile checks it")),
    ("stop and target on the book: done", entry_signal(FILLED, OPEN, OPEN), Finish("executed")),
    ("the emergency close filled", entry_signal(FILLED, OrderFacts(S.REJECTED), exit_=FILLED),
     Finish("executed", "stop-loss could not be placed; position closed at once", failure=True)),
    ("the emergency close of unknown outcome waits",
     entry_signal(FILLED, OrderFacts(S.REJECTED), exit_=OrderFacts(S.UNKNOWN, cannot_tell="timeout")),
     Wait("stop-loss failed; emergency close outcome unknown (cannot ask the exchange: timeout)")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("description", "facts", "expected"), ENTRY_CASES, ids=[c[0] for c in ENTRY_CASES]
)
def test_entry_lifecycle(description, facts, expected):
    assert next_entry_action(facts, GRACE) == expected


def test_a_fill_beyond_its_own_stop_is_closed_at_once():
    facts = EntrySignal("BUY", FILLED, stop_price=D("50100"), fill_price=D("50000"))
    assert next_entry_action(facts, GRACE) == Send(Role.EXIT, D("0.008"))


CLOSE_CASES = [
    ("nothing open: skipped", CloseSignal(Role.EXIT, None, None), Finish("skipped", "no open position to close")),
    ("12: sized from the fresh read", CloseSignal(Role.EXIT, None, D("0.012")), Send(Role.EXIT, D("0.012"))),
    ("a close of unknown outcome is looked up", CloseSignal(Role.EXIT, OrderFacts(S.UNKNOWN, sends=1), D("0.01")), LookUp(Role.EXIT)),
    ("flat after the close: cancel its protection", CloseSignal(Role.EXIT, FILLED, D(0)), CancelProtection()),
    ("12: part still open keeps its stop", CloseSignal(Role.EXIT, FILLED, D("0.004")),
     Finish("executed", "closed 0.008; 0.004 still open and still protected", failure=True)),
    ("-2022: already flat", CloseSignal(Role.EXIT, OrderFacts(S.REJECTED, error_code=-2022, refusal=Refusal.NOTHING_TO_REDUCE), None),
     Finish("skipped", "the position was already flat (-2022)")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("description", "facts", "expected"), CLOSE_CASES, ids=[c[0] for c in CLOSE_CASES]
)
def test_close_lifecycle(description, facts, expected):
    assert next_close_action(facts, GRACE) == expected


# --- protection ----------------------------------------------------------------------------

LONG = Held("BTCUSDT", "BUY", "BOTH", D("0.005"), D("50000"), D("50000"))
HEDGE_LONG = Held("BTCUSDT", "BUY", "LONG", D("0.008"), D("50000"), D("50000"))


def stop(
    cid="sl", qty="0.008", trigger="49000", leg="BOTH", reduce_only=True, side="SELL"
) -> Resting:
    return Resting(cid, "1", "BTCUSDT", side, leg, Kind.STOP, D(qty), D(trigger), reduce_only)


def target(cid="tp", qty="0.008", trigger="52000", leg="BOTH", reduce_only=True) -> Resting:
    return Resting(cid, "2", "BTCUSDT", "SELL", leg, Kind.TARGET, D(qty), D(trigger), reduce_only)


NO_INTENT = Intended(None, None)
PROTECTION_CASES = [
    ("2: resize places the new stop before cancelling the old",
     LONG, [stop()], Intended(D("49000"), None),
     [Place(Kind.STOP, D("49000"), D("0.005"), "stop_resized", "stop at 49000 for 0.005"),
      Cancel(stop(), "stop_resized", "its quantity 0.008 != position 0.005", after=Kind.STOP)]),
    ("resize keeps the old stop's price when nothing else names one",
     LONG, [stop(trigger="48800")], NO_INTENT,
     [Place(Kind.STOP, D("48800"), D("0.005"), "stop_resized", "stop at 48800 for 0.005"),
      Cancel(stop(trigger="48800"), "stop_resized", "its quantity 0.008 != position 0.005", after=Kind.STOP)]),
    ("8: a missing stop takes the intended (signal's) price, not the default",
     LONG, [], Intended(D("48500"), None),
     [Place(Kind.STOP, D("48500"), D("0.005"), "stop_replaced", "stop at 48500 for 0.005")]),
    ("no intent: the default distance", LONG, [], NO_INTENT,
     [Place(Kind.STOP, D("49000"), D("0.005"), "stop_replaced", "stop at 49000 for 0.005")]),
    ("8: of two covering stops the signal's own is kept",
     LONG, [stop("watchdog", "0.005", "48500"), stop("signal", "0.005", "48500")],
     Intended(None, None, frozenset({"signal"})),
     [Cancel(stop("watchdog", "0.005", "48500"), "duplicate_stop_cancelled", "a second stop for one position")]),
    ("a crossed stop closes first, then cancels",
     Held("BTCUSDT", "BUY", "BOTH", D("0.008"), D("50000"), D("48000")), [target()], Intended(D("49000"), None),
     [ClosePosition("stop_crossed_closed", "stop 49000 is already crossed (mark 48000)"),
      Cancel(target(), "closed_protection_cancelled", "its position was closed")]),
    ("4: hedge-mode stops carry no reduceOnly and still count",
     HEDGE_LONG, [stop(leg="LONG", reduce_only=False), target(leg="LONG", reduce_only=False)], NO_INTENT, []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("description", "held", "resting", "intended", "expected"),
    PROTECTION_CASES,
    ids=[c[0] for c in PROTECTION_CASES],
)
def test_protection_repairs(description, held, resting, intended, expected):
    assert repairs(held, resting, intended, default_stop=D("49000")) == expected


def test_4_hedge_mode_orphans_are_recognised_by_side_and_leg():
    long_stop = stop(leg="LONG", reduce_only=False)
    opening_order = stop("entry-ish", leg="LONG", reduce_only=False, side="BUY")  # opens a leg
    assert orphans([], [long_stop, opening_order]) == [
        Cancel(long_stop, "orphan_cancelled", "its position is gone")
    ]
    assert orphans([HEDGE_LONG], [long_stop]) == []
