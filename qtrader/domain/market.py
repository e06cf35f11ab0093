"""Market rules: what the exchange will accept for a symbol (pure, from exchangeInfo filters)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class MarketRules:
    symbol: str  # exchange id, BTCUSDT
    unified: str  # ccxt symbol, BTC/USDT:USDT
    status: str  # TRADING, SETTLING, ...
    step_size: Decimal  # MARKET_LOT_SIZE step (market orders), else LOT_SIZE
    min_qty: Decimal
    max_qty: Decimal | None
    tick_size: Decimal
    min_notional: Decimal

    @property
    def trading(self) -> bool:
        return self.status == "TRADING"


def rules_from_binance(unified: str, info: Mapping[str, Any]) -> MarketRules:
    """Read a Binance USDⓈ-M exchangeInfo symbol entry (as ccxt keeps it in market['info'])."""
    filters = {f.get("filterType"): f for f in info.get("filters", [])}
    lot = filters.get("MARKET_LOT_SIZE") or filters.get("LOT_SIZE") or {}
    limit_lot = filters.get("LOT_SIZE") or lot
    step = _positive(lot.get("stepSize")) or _positive(limit_lot.get("stepSize"))
    return MarketRules(
        symbol=str(info.get("symbol", "")),
        unified=unified,
        status=str(info.get("status", "UNKNOWN")),
        step_size=step or Decimal("1"),
        min_qty=max(_dec(lot.get("minQty")), _dec(limit_lot.get("minQty"))),
        max_qty=_positive(lot.get("maxQty")),
        tick_size=_positive(filters.get("PRICE_FILTER", {}).get("tickSize")) or Decimal("0.01"),
        min_notional=_dec(filters.get("MIN_NOTIONAL", {}).get("notional")),
    )


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def _positive(value: Any) -> Decimal | None:
    number = _dec(value)
    return number if number > 0 else None


def rules_from_bybit(unified: str, info: Mapping[str, Any]) -> MarketRules:
    """Read a Bybit v5 linear instruments-info entry (as ccxt keeps it in market['info'])."""
    lot = info.get("lotSizeFilter") or {}
    price = info.get("priceFilter") or {}
    status = str(info.get("status", "UNKNOWN"))
    return MarketRules(
        symbol=str(info.get("symbol", "")),
        unified=unified,
        status="TRADING" if status == "Trading" else status.upper(),
        step_size=_positive(lot.get("qtyStep")) or Decimal("1"),
        min_qty=_dec(lot.get("minOrderQty")),
        # a market order's ceiling is maxMktOrderQty (maxOrderQty is for limit orders)
        max_qty=_positive(lot.get("maxMktOrderQty")) or _positive(lot.get("maxOrderQty")),
        tick_size=_positive(price.get("tickSize")) or Decimal("0.01"),
        min_notional=_dec(lot.get("minNotionalValue")),
    )
