"""Decimal helpers shared by the domain modules."""

from __future__ import annotations

from decimal import Context, Decimal

WIDE = Context(prec=60)  # room for 15 integer + 18 fractional digits and then some


def plain(number: Decimal) -> Decimal:
    """Canonical form: no trailing zeros and no exponent (`1E+3` → `1000`, `0.50` → `0.5`)."""
    reduced = number.normalize(context=WIDE)
    return reduced.quantize(Decimal(1)) if reduced.as_tuple().exponent > 0 else reduced
