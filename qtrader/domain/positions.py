"""Position intelligence (pure): an open position's R-multiple and its class.

R = unrealized PnL ÷ the risk taken at entry (|entry − stop| × qty). WINNER from
`winner_r` up; TOXIC at `toxic_r` or below, or when it has been losing for longer than
`toxic_after_s`; NEUTRAL otherwise. Without a stop there is no R, and the class comes from
the sign and age of the PnL alone.
"""

from __future__ import annotations

from decimal import Decimal

from qtrader.domain.numbers import plain


def r_multiple(
    entry: Decimal, stop: Decimal | None, qty: Decimal, unrealized: Decimal
) -> Decimal | None:
    if stop is None or entry <= 0 or qty <= 0:
        return None
    risk = abs(entry - stop) * qty
    return plain((unrealized / risk).quantize(Decimal("0.01"))) if risk > 0 else None


def classification(
    r: Decimal | None,
    unrealized: Decimal,
    age_s: float,
    winner_r: Decimal,
    toxic_r: Decimal,
    toxic_after_s: int,
) -> str:
    if r is not None and r >= winner_r:
        return "WINNER"
    if r is not None and r <= toxic_r:
        return "TOXIC"
    if unrealized < 0 and age_s >= toxic_after_s:
        return "TOXIC"
    return "NEUTRAL"
