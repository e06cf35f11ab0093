"""Risk: the explicit, recorded gate between a signal and an order (pure, no I/O).

`evaluate` takes a candidate entry, the account as qtrader knows it (from the exchange and
DuckDB, never from the signal) and the limits, and returns a Decision: accept with a size,
or reject/skip with the rule that decided and the numbers it compared. `breaker` says
whether the account itself must stop trading (daily loss, drawdown, losing streak).
The caller folds each accepted entry back into the state (`with_entry`), so a burst of
signals in one run sees the earlier ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from qtrader.domain.numbers import plain
from qtrader.domain.sizing import SizingInputs, SizingRejected, target_notional

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class RiskLimits:
    sizing: str = "auto"  # auto | risk | notional | signal
    risk_per_trade: Decimal = Decimal("0.01")
    max_leverage: int = 3
    max_position_usd: Decimal = Decimal("1000")
    confidence_threshold: Decimal = Decimal("0.55")
    max_drawdown_pct: Decimal | None = Decimal("4")
    daily_loss_limit_pct: Decimal | None = Decimal("5")
    max_open_positions: int | None = 5
    max_total_exposure_usd: Decimal | None = Decimal("3000")
    max_exposure_x_equity: Decimal | None = Decimal("3")
    max_symbol_exposure_usd: Decimal | None = None
    max_trades_per_hour: int | None = 20
    max_trades_per_day: int | None = 100
    pyramiding: bool = False
    max_entries_per_symbol: int = 3
    opposite_signal: str = "ignore"  # ignore | close | reverse
    allowed_symbols: tuple[str, ...] = ()
    denied_symbols: tuple[str, ...] = ()
    cooldown_after_stop_s: int | None = 900
    max_consecutive_losses: int | None = 5
    max_price_drift_pct: Decimal | None = Decimal("1")


@dataclass(frozen=True)
class Holding:
    side: str  # BUY (long) | SELL (short)
    notional: Decimal
    entries: int = 1


@dataclass(frozen=True)
class AccountState:
    now: datetime
    equity: Decimal
    available: Decimal
    holdings: dict[str, Holding] = field(default_factory=dict)
    start_of_day_equity: Decimal | None = None
    peak_equity: Decimal | None = None
    entries_last_hour: int = 0
    entries_today: int = 0
    last_stop_at: dict[str, datetime] = field(default_factory=dict)
    consecutive_losses: int = 0
    halted: str | None = None

    @property
    def total_exposure(self) -> Decimal:
        return sum((h.notional for h in self.holdings.values()), Decimal(0))

    def with_entry(
        self, symbol: str, side: str, notional: Decimal, margin: Decimal
    ) -> AccountState:
        """The state after an accepted entry, for the next signal of the same run."""
        held = self.holdings.get(symbol)
        holdings = dict(self.holdings)
        if held is None or held.side != side:
            holdings[symbol] = Holding(side, notional)
        else:
            holdings[symbol] = Holding(side, held.notional + notional, held.entries + 1)
        return replace(
            self,
            holdings=holdings,
            available=self.available - margin,
            entries_last_hour=self.entries_last_hour + 1,
            entries_today=self.entries_today + 1,
        )

    def without(self, symbol: str) -> AccountState:
        holdings = {s: h for s, h in self.holdings.items() if s != symbol}
        return replace(self, holdings=holdings)


@dataclass(frozen=True)
class Candidate:
    symbol: str
    side: str  # BUY | SELL
    confidence: Decimal | None
    price: Decimal  # the price it is sized at (signal's, else mark)
    stop_price: Decimal  # the stop it would get
    leverage: int | None = None  # asked for by the signal
    position_size_usd: Decimal | None = None
    signal_price: Decimal | None = None  # for the drift guard
    mark_price: Decimal | None = None


@dataclass(frozen=True)
class Decision:
    outcome: str  # accept | reverse | close | reject | skip
    rule: str | None
    reason: str
    notional: Decimal | None = None
    leverage: int | None = None
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def enters(self) -> bool:
        return self.outcome in ("accept", "reverse")


@dataclass(frozen=True)
class Breaker:
    kind: str  # daily_loss | drawdown | losing_streak
    reason: str
    numbers: dict[str, Any]
    clears: str  # next_utc_day | resume


class _Stop(Exception):
    def __init__(self, decision: Decision) -> None:
        self.decision = decision


def evaluate(c: Candidate, account: AccountState, limits: RiskLimits) -> Decision:
    try:
        return _evaluate(c, account, limits)
    except _Stop as stop:
        return stop.decision


def _evaluate(c: Candidate, account: AccountState, limits: RiskLimits) -> Decision:
    if account.halted:
        _reject("halted", f"trading is halted: {account.halted}; see qtrader status")
    _check_symbol(c, limits)
    _check_confidence(c, limits)
    _check_cooldown(c, account, limits)
    _check_drift(c, limits)
    outcome, account = _check_existing_position(c, account, limits)
    _check_open_positions(c, account, limits)
    _check_trade_counts(account, limits)
    leverage, leverage_numbers = _leverage(c, limits)
    notional, numbers = _size(c, account, limits, leverage)
    numbers |= leverage_numbers
    verb = "reverse into" if outcome == "reverse" else "enter"
    return Decision(
        outcome,
        None,
        f"{verb} {c.side} {c.symbol} for {plain(notional)} USDT",
        notional,
        leverage,
        numbers,
    )


def breaker(account: AccountState, limits: RiskLimits) -> Breaker | None:
    """The first circuit breaker the account's own numbers trip, if any."""
    tripped = breakers(account, limits)
    return tripped[0] if tripped else None


def breakers(account: AccountState, limits: RiskLimits) -> list[Breaker]:
    """Every circuit breaker the account's own numbers trip (each is its own halt)."""
    tripped: list[Breaker] = []
    sod = account.start_of_day_equity
    if limits.daily_loss_limit_pct is not None and sod and sod > 0:
        loss_pct = (sod - account.equity) / sod * HUNDRED
        if loss_pct >= limits.daily_loss_limit_pct:
            tripped.append(
                Breaker(
                    "daily_loss",
                    f"daily loss {_pct(loss_pct)}% >= limit "
                    f"{limits.daily_loss_limit_pct}% (equity {plain(account.equity)}, "
                    f"start of day {plain(sod)})",
                    {
                        "loss_pct": _pct(loss_pct),
                        "limit_pct": limits.daily_loss_limit_pct,
                        "equity": account.equity,
                        "start_of_day_equity": sod,
                    },
                    "next_utc_day",
                )
            )
    peak = account.peak_equity
    if limits.max_drawdown_pct is not None and peak and peak > 0:
        drawdown_pct = (peak - account.equity) / peak * HUNDRED
        if drawdown_pct >= limits.max_drawdown_pct:
            tripped.append(
                Breaker(
                    "drawdown",
                    f"drawdown {_pct(drawdown_pct)}% from peak {plain(peak)} "
                    f">= limit {limits.max_drawdown_pct}%",
                    {
                        "drawdown_pct": _pct(drawdown_pct),
                        "limit_pct": limits.max_drawdown_pct,
                        "equity": account.equity,
                        "peak_equity": peak,
                    },
                    "resume",
                )
            )
    streak = limits.max_consecutive_losses
    if streak is not None and account.consecutive_losses >= streak:
        tripped.append(
            Breaker(
                "losing_streak",
                f"{account.consecutive_losses} losing trades in a row >= limit {streak}",
                {"consecutive_losses": account.consecutive_losses, "limit": streak},
                "resume",
            )
        )
    return tripped


# --- the rules, in the order they are applied ------------------------------------------


def _reject(rule: str, reason: str, **numbers: Any) -> None:
    raise _Stop(Decision("reject", rule, reason, numbers=numbers))


def _skip(rule: str, reason: str, **numbers: Any) -> None:
    raise _Stop(Decision("skip", rule, reason, numbers=numbers))


def _check_symbol(c: Candidate, limits: RiskLimits) -> None:
    if c.symbol in limits.denied_symbols:
        _reject(
            "denied_symbols",
            f"{c.symbol} is in risk.denied_symbols; remove it there to trade it",
        )
    if limits.allowed_symbols and c.symbol not in limits.allowed_symbols:
        _reject(
            "allowed_symbols",
            f"{c.symbol} is not in risk.allowed_symbols; add it there to trade it",
        )


def _check_confidence(c: Candidate, limits: RiskLimits) -> None:
    if c.confidence is not None and c.confidence < limits.confidence_threshold:
        _reject(
            "confidence_threshold",
            f"confidence {c.confidence} < threshold {limits.confidence_threshold}; "
            "lower risk.confidence_threshold to accept such signals",
            confidence=c.confidence,
            threshold=limits.confidence_threshold,
        )


def _check_cooldown(c: Candidate, account: AccountState, limits: RiskLimits) -> None:
    stopped = account.last_stop_at.get(c.symbol)
    if limits.cooldown_after_stop_s is None or stopped is None:
        return
    elapsed = (account.now - stopped).total_seconds()
    if elapsed < limits.cooldown_after_stop_s:
        _reject(
            "cooldown_after_stop",
            f"{c.symbol} stopped out {elapsed:.0f} s ago; cooldown is "
            f"{limits.cooldown_after_stop_s} s; send the signal again after it "
            "(or shorten risk.cooldown_after_stop_s)",
            elapsed_s=round(elapsed),
        )


def _check_drift(c: Candidate, limits: RiskLimits) -> None:
    if limits.max_price_drift_pct is None or c.signal_price is None or c.mark_price is None:
        return
    drift = abs(c.mark_price - c.signal_price) / c.signal_price * HUNDRED
    if drift > limits.max_price_drift_pct:
        _skip(
            "price_drift",
            f"price moved {_pct(drift)}% from the signal's {plain(c.signal_price)} to "
            f"{plain(c.mark_price)}; limit {limits.max_price_drift_pct}%; send a fresh signal "
            "at today's price (or raise risk.max_price_drift_pct)",
            drift_pct=_pct(drift),
        )


def _check_existing_position(
    c: Candidate, account: AccountState, limits: RiskLimits
) -> tuple[str, AccountState]:
    held = account.holdings.get(c.symbol)
    if held is None:
        return "accept", account
    side = "long" if held.side == "BUY" else "short"
    if held.side == c.side:
        if not limits.pyramiding:
            _skip(
                "pyramiding",
                f"already {side} {c.symbol}; pyramiding is off (risk.pyramiding = true adds)",
            )
        if held.entries >= limits.max_entries_per_symbol:
            _skip(
                "max_entries_per_symbol",
                f"{c.symbol} already has {held.entries} entries; limit "
                f"{limits.max_entries_per_symbol} (risk.max_entries_per_symbol)",
                entries=held.entries,
            )
        return "accept", account
    if limits.opposite_signal == "close":
        raise _Stop(
            Decision(
                "close",
                "opposite_signal",
                f"{c.side} against an open {side} {c.symbol}: closing it "
                "(risk.opposite_signal = close)",
            )
        )
    if limits.opposite_signal == "reverse":
        return "reverse", account.without(c.symbol)
    _skip(
        "opposite_signal",
        f"a {side} {c.symbol} position is open; opposite signals are "
        "ignored (risk.opposite_signal = close or reverse acts on them)",
    )
    raise AssertionError("unreachable")  # pragma: no cover


def _check_open_positions(c: Candidate, account: AccountState, limits: RiskLimits) -> None:
    if limits.max_open_positions is None or c.symbol in account.holdings:
        return
    if len(account.holdings) >= limits.max_open_positions:
        _reject(
            "max_open_positions",
            f"{len(account.holdings)} positions open; limit {limits.max_open_positions}: "
            "close one, or raise risk.max_open_positions",
            open_positions=len(account.holdings),
        )


def _check_trade_counts(account: AccountState, limits: RiskLimits) -> None:
    if (
        limits.max_trades_per_hour is not None
        and account.entries_last_hour >= limits.max_trades_per_hour
    ):
        _reject(
            "max_trades_per_hour",
            f"{account.entries_last_hour} entries in the last hour; limit "
            f"{limits.max_trades_per_hour}: wait, or raise risk.max_trades_per_hour",
            entries=account.entries_last_hour,
        )
    if limits.max_trades_per_day is not None and account.entries_today >= limits.max_trades_per_day:
        _reject(
            "max_trades_per_day",
            f"{account.entries_today} entries today (UTC); limit {limits.max_trades_per_day}: "
            "wait for the next UTC day, or raise risk.max_trades_per_day",
            entries=account.entries_today,
        )


def _leverage(c: Candidate, limits: RiskLimits) -> tuple[int, dict[str, Any]]:
    asked = c.leverage if c.leverage is not None else limits.max_leverage
    leverage = max(1, min(asked, limits.max_leverage))
    return leverage, {
        "leverage_requested": asked,
        "leverage": leverage,
        "leverage_clamped": asked != leverage,
    }


def _size(
    c: Candidate, account: AccountState, limits: RiskLimits, leverage: int
) -> tuple[Decimal, dict[str, Any]]:
    inputs = SizingInputs(
        method=limits.sizing,
        equity=account.equity,
        available=account.available,
        leverage=leverage,
        max_position_usd=limits.max_position_usd,
        risk_per_trade=limits.risk_per_trade,
        confidence_threshold=limits.confidence_threshold,
    )
    try:
        notional, explain = target_notional(
            inputs, c.price, c.stop_price, c.confidence, c.position_size_usd
        )
    except SizingRejected as exc:
        _reject("sizing", str(exc))
    caps: list[tuple[str, Decimal, str]] = []
    if limits.max_total_exposure_usd is not None:
        room = limits.max_total_exposure_usd - account.total_exposure
        caps.append(
            (
                "max_total_exposure_usd",
                room,
                f"total exposure {plain(account.total_exposure)} of "
                f"{limits.max_total_exposure_usd} USDT",
            )
        )
    if limits.max_exposure_x_equity is not None:
        ceiling = limits.max_exposure_x_equity * account.equity
        caps.append(
            (
                "max_exposure_x_equity",
                ceiling - account.total_exposure,
                f"total exposure {plain(account.total_exposure)} of {plain(ceiling)} USDT "
                f"({limits.max_exposure_x_equity}x equity)",
            )
        )
    held = account.holdings.get(c.symbol)
    if limits.max_symbol_exposure_usd is not None:
        on_symbol = held.notional if held else Decimal(0)
        caps.append(
            (
                "max_symbol_exposure_usd",
                limits.max_symbol_exposure_usd - on_symbol,
                f"{c.symbol} exposure {plain(on_symbol)} of {limits.max_symbol_exposure_usd}",
            )
        )
    for rule, room, text in caps:
        if room <= 0:
            _reject(
                rule,
                f"no room left: {text}; close a position, or raise risk.{rule}",
                room=plain(room),
            )
        if notional > room:
            notional = room
            explain["capped_by"] = rule
    if notional <= 0:
        binding = explain.get("capped_by", "sizing")
        _reject(
            "available_margin" if str(binding).startswith("available") else "sizing",
            f"nothing left to trade: sized to {plain(notional)} USDT ({binding}); add margin "
            "to the futures wallet, or close a position",
            equity=account.equity,
            available=account.available,
        )
    explain["notional"] = plain(notional)
    return notional, {"sizing": explain}


def _pct(value: Decimal) -> Decimal:
    return plain(value.quantize(Decimal("0.01")))
