"""Sizing and rounding: from a signal and the account to an order the exchange accepts.

Quantities are base-asset contracts, rounded *down* to the step size (never more than asked);
trigger prices are rounded to the tick size toward the entry (a stop a tick tighter, a target
a tick nearer), which is the safe side for both. Every rejection is a reason, not an
exchange error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from qtrader.domain.market import MarketRules
from qtrader.domain.numbers import plain

CONFIDENCE_MULTIPLIER_CAP = Decimal("1.5")  # the seeds' sizing: confidence / threshold, capped
SIZING_METHODS = ("auto", "risk", "notional", "signal")


class SizingRejected(ValueError):
    """The signal cannot become an order; the message says why, with the numbers."""


@dataclass(frozen=True)
class SizingInputs:
    method: str  # auto | risk | notional | signal
    equity: Decimal
    available: Decimal
    leverage: int
    max_position_usd: Decimal
    risk_per_trade: Decimal
    confidence_threshold: Decimal


@dataclass(frozen=True)
class Sizing:
    notional: Decimal  # what the method asked for, after caps
    quantity: Decimal  # rounded to the step
    price: Decimal  # the price the quantity was computed at
    explain: dict[str, Any] = field(default_factory=dict)


def target_notional(
    inputs: SizingInputs,
    entry_price: Decimal,
    stop_price: Decimal,
    confidence: Decimal | None,
    signal_notional: Decimal | None,
) -> tuple[Decimal, dict[str, Any]]:
    used = method_used(inputs.method, signal_notional)
    explain: dict[str, Any] = {"method": inputs.method, "used": used}
    if used == "signal":
        if signal_notional is None:
            raise SizingRejected(
                "sizing is 'signal' but the signal has no position_size_usd; add one to the "
                "signal or set risk.sizing = auto"
            )
        notional = signal_notional
    elif used == "notional":
        notional = inputs.max_position_usd
    else:
        stop_distance = abs(entry_price - stop_price) / entry_price
        if stop_distance <= 0:
            raise SizingRejected(f"stop {stop_price} equals the entry price; cannot size by risk")
        multiplier = Decimal(1)
        if confidence is not None and inputs.confidence_threshold > 0:
            multiplier = min(confidence / inputs.confidence_threshold, CONFIDENCE_MULTIPLIER_CAP)
        risk_amount = inputs.equity * inputs.risk_per_trade * multiplier
        notional = risk_amount / stop_distance
        explain |= {
            "equity": inputs.equity,
            "risk_amount": _q(risk_amount),
            "confidence_multiplier": _q(multiplier),
            "stop_distance": _q(stop_distance),
        }
    explain["notional_requested"] = _q(notional)
    if notional > inputs.max_position_usd:
        explain["capped_by"] = f"max_position_usd {inputs.max_position_usd}"
        notional = inputs.max_position_usd
    margin_cap = inputs.available * inputs.leverage
    if notional > margin_cap:
        explain["capped_by"] = f"available {_q(inputs.available)} x leverage {inputs.leverage}"
        notional = margin_cap
    explain["notional"] = _q(notional)
    return notional, explain


def method_used(method: str, signal_notional: Decimal | None) -> str:
    """`auto` trades the signal's own size when it has one, else sizes by risk."""
    if method == "auto":
        return "signal" if signal_notional is not None else "risk"
    return method


def sizing_summary(numbers: dict[str, Any], order_notional: Decimal | None) -> dict[str, Any]:
    """What a user sees of a sizing decision: the notional, the method used (and the one
    configured), what was asked for, and the cap or rule that bound it (None: nothing did)."""
    explain = numbers.get("sizing") or {}
    notional = order_notional if order_notional is not None else explain.get("notional")
    return {
        "notional": _q(notional) if notional is not None else None,
        "method": explain.get("method"),
        "used": explain.get("used"),
        "requested": explain.get("notional_requested"),
        "bound_by": explain.get("capped_by"),
    }


def describe_sizing(summary: dict[str, Any] | None) -> str | None:
    """One table cell: `signal (auto)`, `risk, capped by max_position_usd 1000`."""
    if not summary or not summary.get("used"):
        return None
    text = summary["used"]
    if summary.get("method") == "auto":
        text += " (auto)"
    if summary.get("bound_by"):
        text += f", capped by {summary['bound_by']}"
    return text


def smallest_order(price: Decimal, rules: MarketRules) -> Decimal:
    """The smallest order notional the market accepts at this price (min qty and min notional
    after rounding to the step)."""
    quantity = max(
        rules.min_qty, rules.step_size, round_up(rules.min_notional / price, rules.step_size)
    )
    return plain(quantity * price)


def order_quantity(notional: Decimal, price: Decimal, rules: MarketRules) -> Decimal:
    """notional ÷ price, rounded down to the step; checked against min qty and min notional."""
    if price <= 0:
        raise SizingRejected(f"price {price} is not positive")
    raw = notional / price
    quantity = round_down(raw, rules.step_size)
    if quantity < rules.min_qty or quantity <= 0:
        raise SizingRejected(
            f"{rules.symbol}: {_q(notional)} USDT at {price} is {_q(raw)} contracts, below the "
            f"minimum quantity {rules.min_qty} (step {rules.step_size}); minimum notional "
            f"{rules.min_notional} USDT: the smallest order is {smallest_order(price, rules)} "
            "USDT; raise the size (position_size_usd, or the risk settings)"
        )
    if rules.max_qty is not None and quantity > rules.max_qty:
        quantity = round_down(rules.max_qty, rules.step_size)
    if quantity * price < rules.min_notional:
        raise SizingRejected(
            f"{rules.symbol}: order notional {_q(quantity * price)} USDT ({quantity} at {price})"
            f" is below the exchange minimum {rules.min_notional} USDT: the smallest order is "
            f"{smallest_order(price, rules)} USDT; raise the size (position_size_usd, or the "
            "risk settings)"
        )
    return quantity


def stop_price_for(
    side: str, fill: Decimal, given: Decimal | None, default_pct: Decimal, rules: MarketRules
) -> Decimal:
    """The stop-loss trigger: the signal's, else `default_pct` from the fill; rounded toward it."""
    raw = given if given is not None else _offset(fill, default_pct, toward_loss=True, side=side)
    return round_toward_entry(raw, side, "stop_loss", rules.tick_size)


def take_profit_price_for(
    side: str, fill: Decimal, given: Decimal | None, default_pct: Decimal | None, rules: MarketRules
) -> Decimal | None:
    if given is None and default_pct is None:
        return None
    raw = given if given is not None else _offset(fill, default_pct, toward_loss=False, side=side)
    return round_toward_entry(raw, side, "take_profit", rules.tick_size)


def protection_is_valid(side: str, reference: Decimal, stop: Decimal) -> bool:
    """A long's stop must be below the price, a short's above, or it would trigger at once."""
    return stop < reference if side == "BUY" else stop > reference


def round_toward_entry(price: Decimal, side: str, kind: str, tick: Decimal) -> Decimal:
    below_entry = (side == "BUY") == (kind == "stop_loss")  # long stop / short target
    return round_up(price, tick) if below_entry else round_down(price, tick)


def round_down(value: Decimal, step: Decimal) -> Decimal:
    return plain((value / step).to_integral_value(rounding=ROUND_FLOOR) * step)


def round_up(value: Decimal, step: Decimal) -> Decimal:
    return plain((value / step).to_integral_value(rounding=ROUND_CEILING) * step)


def _offset(fill: Decimal, pct: Decimal, toward_loss: bool, side: str) -> Decimal:
    down = (side == "BUY") == toward_loss
    factor = Decimal(1) - pct / 100 if down else Decimal(1) + pct / 100
    return fill * factor


def _q(value: Decimal) -> Decimal:
    return plain(value.quantize(Decimal("0.00000001")))
