"""The risk engine (pure): every rule, every sizing method, the breakers, and properties."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qtrader.domain.risk import AccountState, Candidate, Holding, RiskLimits, breaker, evaluate

NOW = datetime(2026, 11, 21, 12, 0, 0)
LIMITS = RiskLimits()
ACCOUNT = AccountState(now=NOW, equity=D("10000"), available=D("10000"))
BTC = Candidate(symbol="BTCUSDT", side="BUY", confidence=D("0.55"), price=D("50000"),
                stop_price=D("49000"))  # fmt: skip


def test_issue_example_risk_sizing_then_capped_by_max_position():
    # equity 10,000, risk 1 %, stop 2 % away → 5,000 USDT notional, capped to 1,000
    decision = evaluate(BTC, ACCOUNT, LIMITS)
    assert decision.outcome == "accept"
    assert decision.numbers["sizing"]["notional_requested"] == D("5000")
    assert decision.notional == D("1000")
    assert decision.numbers["sizing"]["capped_by"] == "max_position_usd 1000"


SIZING = [
    ("risk, confidence at threshold: multiplier 1", "risk", D("0.55"), None, {}, D("5000")),
    ("risk, high confidence: multiplier capped at 1.5", "risk", D("0.99"), None, {}, D("7500")),
    ("risk, 0.66 confidence: multiplier 1.2", "risk", D("0.66"), None, {}, D("6000")),
    ("notional: max_position_usd", "notional", D("0.7"), None, {"max_position_usd": D("250")}, D("250")),
    ("signal: its position_size_usd", "signal", D("0.7"), D("425"), {}, D("425")),
    ("auto with a signal size: that size", "auto", D("0.7"), D("60"), {}, D("60")),
    ("auto without one: risk sizing", "auto", D("0.55"), None, {}, D("5000")),
]  # fmt: skip


@pytest.mark.parametrize(("description", "method", "confidence", "size", "overrides", "requested"),
                         SIZING, ids=[s[0] for s in SIZING])  # fmt: skip
def test_sizing_methods(description, method, confidence, size, overrides, requested):
    unbounded = {"max_position_usd": D("1e9"), "max_total_exposure_usd": None,
                 "max_exposure_x_equity": None}  # fmt: skip
    limits = replace(LIMITS, sizing=method, **(unbounded | overrides))
    c = replace(BTC, confidence=confidence, position_size_usd=size)
    decision = evaluate(c, replace(ACCOUNT, available=D("1e9")), limits)
    assert decision.outcome == "accept", decision.reason
    assert decision.numbers["sizing"]["notional_requested"] == requested, description


def held(side="BUY", notional="500", entries=1):
    return Holding(side, D(notional), entries)


RULES = [
    ("halted", {}, {"halted": "kill switch"}, {}, "reject", "halted"),
    ("denied symbol", {"denied_symbols": ("BTCUSDT",)}, {}, {}, "reject", "denied_symbols"),
    ("not in allowed list", {"allowed_symbols": ("ETHUSDT",)}, {}, {}, "reject", "allowed_symbols"),
    ("confidence below threshold", {}, {}, {"confidence": D("0.54")}, "reject", "confidence_threshold"),
    ("cooldown after a stop-out", {}, {"last_stop_at": {"BTCUSDT": NOW - timedelta(seconds=60)}}, {},
     "reject", "cooldown_after_stop"),
    ("cooldown over", {}, {"last_stop_at": {"BTCUSDT": NOW - timedelta(seconds=901)}}, {}, "accept", None),
    ("price drifted 1.2 %", {}, {}, {"signal_price": D("50000"), "mark_price": D("50600")}, "skip",
     "price_drift"),
    ("price drifted 0.8 %", {}, {}, {"signal_price": D("50000"), "mark_price": D("50400")}, "accept", None),
    ("same side, pyramiding off", {}, {"holdings": {"BTCUSDT": held()}}, {}, "skip", "pyramiding"),
    ("same side, pyramiding on", {"pyramiding": True}, {"holdings": {"BTCUSDT": held()}}, {}, "accept", None),
    ("pyramiding up to max entries", {"pyramiding": True, "max_entries_per_symbol": 2},
     {"holdings": {"BTCUSDT": held(entries=2)}}, {}, "skip", "max_entries_per_symbol"),
    ("opposite side, ignore", {}, {"holdings": {"BTCUSDT": held("SELL")}}, {}, "skip", "opposite_signal"),
    ("opposite side, close", {"opposite_signal": "close"}, {"holdings": {"BTCUSDT": held("SELL")}}, {},
     "close", "opposite_signal"),
    ("opposite side, reverse", {"opposite_signal": "reverse"}, {"holdings": {"BTCUSDT": held("SELL")}},
     {}, "reverse", None),
    ("max open positions", {"max_open_positions": 2},
     {"holdings": {"ETHUSDT": held(), "SOLUSDT": held()}}, {}, "reject", "max_open_positions"),
    ("max trades per hour", {"max_trades_per_hour": 3}, {"entries_last_hour": 3}, {}, "reject",
     "max_trades_per_hour"),
    ("max trades per day", {"max_trades_per_day": 10}, {"entries_today": 10}, {}, "reject",
     "max_trades_per_day"),
    ("total exposure full", {"max_total_exposure_usd": D("1000")}, {"holdings": {"ETHUSDT": held(notional="1000")}},
     {}, "reject", "max_total_exposure_usd"),
    ("exposure x equity full", {"max_exposure_x_equity": D("0.1")}, {"holdings": {"ETHUSDT": held(notional="1000")}},
     {}, "reject", "max_exposure_x_equity"),
    ("symbol exposure full", {"pyramiding": True, "max_symbol_exposure_usd": D("500")},
     {"holdings": {"BTCUSDT": held(notional="500")}}, {}, "reject", "max_symbol_exposure_usd"),
    ("sizing=signal without a size", {"sizing": "signal"}, {}, {}, "reject", "sizing"),
]  # fmt: skip


@pytest.mark.parametrize(("description", "limits", "account", "candidate", "outcome", "rule"),
                         RULES, ids=[r[0] for r in RULES])  # fmt: skip
def test_rules(description, limits, account, candidate, outcome, rule):
    decision = evaluate(
        replace(BTC, **candidate), replace(ACCOUNT, **account), replace(LIMITS, **limits)
    )
    assert (decision.outcome, decision.rule) == (outcome, rule), f"{description}: {decision.reason}"
    assert decision.reason


def test_caps_are_recorded_with_their_numbers():
    account = replace(ACCOUNT, holdings={"ETHUSDT": held(notional="2700")})
    decision = evaluate(BTC, account, LIMITS)  # 3,000 total - 2,700 = 300 room
    assert (
        decision.notional == D("300")
        and decision.numbers["sizing"]["capped_by"] == "max_total_exposure_usd"
    )
    clamped = evaluate(replace(BTC, leverage=20), ACCOUNT, LIMITS)
    assert (
        clamped.leverage,
        clamped.numbers["leverage_requested"],
        clamped.numbers["leverage_clamped"],
    ) == (3, 20, True)
    margin = evaluate(BTC, replace(ACCOUNT, available=D("100")), LIMITS)
    assert (
        margin.notional == D("300")
        and margin.numbers["sizing"]["capped_by"] == "available 100 x leverage 3"
    )


def test_with_entry_lets_the_next_signal_see_the_first():
    first = evaluate(BTC, ACCOUNT, LIMITS)
    after = ACCOUNT.with_entry("BTCUSDT", "BUY", first.notional, first.notional / 3)
    assert evaluate(BTC, after, LIMITS).rule == "pyramiding"
    assert after.entries_last_hour == 1 and after.total_exposure == D("1000")


BREAKERS = [
    ("daily loss 5 % trips", {"start_of_day_equity": D("10000"), "equity": D("9500")}, "daily_loss", "next_utc_day"),
    ("daily loss 4.99 % does not", {"start_of_day_equity": D("10000"), "equity": D("9501")}, None, None),
    ("drawdown 4 % from peak trips", {"peak_equity": D("12500"), "equity": D("12000")}, "drawdown", "resume"),
    ("losing streak of 5 trips", {"consecutive_losses": 5}, "losing_streak", "resume"),
    ("nothing wrong", {"start_of_day_equity": D("10000"), "peak_equity": D("10000")}, None, None),
]  # fmt: skip


@pytest.mark.parametrize(("description", "account", "kind", "clears"), BREAKERS,
                         ids=[b[0] for b in BREAKERS])  # fmt: skip
def test_breakers(description, account, kind, clears):
    tripped = breaker(replace(ACCOUNT, **account), LIMITS)
    assert (tripped.kind if tripped else None, tripped.clears if tripped else None) == (
        kind,
        clears,
    )


money = st.decimals(
    min_value=D("0"), max_value=D("1e7"), places=2, allow_nan=False, allow_infinity=False
)
limits_st = st.builds(
    RiskLimits,
    sizing=st.sampled_from(["auto", "risk", "notional", "signal"]),
    risk_per_trade=st.decimals(min_value=D("0.001"), max_value=D("0.1"), places=3),
    max_leverage=st.integers(1, 125),
    max_position_usd=st.decimals(min_value=D("1"), max_value=D("1e6"), places=2),
    max_total_exposure_usd=st.one_of(
        st.none(), st.decimals(min_value=D("1"), max_value=D("1e6"), places=2)
    ),
    max_exposure_x_equity=st.one_of(
        st.none(), st.decimals(min_value=D("0.1"), max_value=D("10"), places=1)
    ),
    max_symbol_exposure_usd=st.one_of(
        st.none(), st.decimals(min_value=D("1"), max_value=D("1e6"), places=2)
    ),
    pyramiding=st.booleans(),
    opposite_signal=st.sampled_from(["ignore", "close", "reverse"]),
)
holdings_st = st.dictionaries(
    st.sampled_from(["BTCUSDT", "ETHUSDT", "SOLUSDT"]),
    st.builds(
        Holding, side=st.sampled_from(["BUY", "SELL"]), notional=money, entries=st.integers(1, 5)
    ),
    max_size=3,
)
account_st = st.builds(AccountState, now=st.just(NOW), equity=money, available=money, holdings=holdings_st,
                       halted=st.one_of(st.none(), st.just("kill switch")))  # fmt: skip
candidate_st = st.builds(
    Candidate, symbol=st.sampled_from(["BTCUSDT", "ETHUSDT", "SOLUSDT"]), side=st.sampled_from(["BUY", "SELL"]),
    confidence=st.one_of(st.none(), st.decimals(min_value=D("0"), max_value=D("1"), places=2)),
    price=st.decimals(min_value=D("0.01"), max_value=D("1e5"), places=2),
    stop_price=st.decimals(min_value=D("0.01"), max_value=D("1e5"), places=2),
    leverage=st.one_of(st.none(), st.integers(1, 200)),
    position_size_usd=st.one_of(st.none(), money),
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(candidate_st, account_st, limits_st)
def test_an_accepted_order_never_exceeds_any_cap(c, account, limits):
    decision = evaluate(c, account, limits)
    assert decision.reason
    if account.halted:
        assert not decision.enters
        return
    if not decision.enters:
        return
    n = decision.notional
    assert n is not None and n > 0
    assert 1 <= decision.leverage <= limits.max_leverage
    assert n <= limits.max_position_usd
    assert n <= account.available * decision.leverage
    base = account.total_exposure - (account.holdings[c.symbol].notional
                                     if decision.outcome == "reverse" else 0)  # fmt: skip
    if limits.max_total_exposure_usd is not None:
        assert base + n <= limits.max_total_exposure_usd
    if limits.max_exposure_x_equity is not None:
        assert base + n <= limits.max_exposure_x_equity * account.equity
    if limits.max_symbol_exposure_usd is not None:
        on_symbol = (
            account.holdings[c.symbol].notional
            if decision.outcome == "accept" and c.symbol in account.holdings
            else 0
        )
        assert on_symbol + n <= limits.max_symbol_exposure_usd
