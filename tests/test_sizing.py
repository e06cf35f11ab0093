"""Sizing, rounding and client ids (pure domain code)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from qtrader.domain.market import MarketRules, rules_from_binance
from qtrader.domain.orders import CLIENT_ID_PATTERN, Role, client_order_id
from qtrader.domain.sizing import (
    SizingInputs,
    SizingRejected,
    order_quantity,
    protection_is_valid,
    stop_price_for,
    take_profit_price_for,
    target_notional,
)

BTC = MarketRules("BTCUSDT", "BTC/USDT:USDT", "TRADING", step_size=D("0.001"), min_qty=D("0.001"),
                  max_qty=D("120"), tick_size=D("0.10"), min_notional=D("100"))  # fmt: skip
ETH = MarketRules("ETHUSDT", "ETH/USDT:USDT", "TRADING", step_size=D("0.001"), min_qty=D("0.001"),
                  max_qty=D("2000"), tick_size=D("0.01"), min_notional=D("20"))  # fmt: skip


def test_seed_bug_notional_is_never_used_as_quantity():
    # The seeds sent a BTC quantity of 425.455 for a ~425 USDT position at 50,000.
    qty = order_quantity(D("425.455"), D("50000"), BTC)
    assert qty == D("0.008")  # 425.455 / 50000 = 0.00850910 → rounded down to the step
    assert qty * D("50000") <= D("425.455")


def test_quantity_rounds_down_never_up():
    assert order_quantity(D("999.99"), D("3333.33"), ETH) == D("0.299")


def test_seed_ten_dollar_btc_order_is_rejected_with_a_clear_reason():
    with pytest.raises(SizingRejected) as exc:
        order_quantity(D("10"), D("96000"), BTC)
    assert "below the minimum quantity 0.001" in str(exc.value)
    with pytest.raises(SizingRejected) as exc:
        order_quantity(D("99"), D("50000"), BTC)  # 0.001 BTC = 50 USDT < 100 minimum
    assert "order notional 50 USDT (0.001 at 50000) is below the exchange minimum 100 USDT" in str(
        exc.value
    )


def test_max_quantity_caps_the_order():
    assert order_quantity(D("1e9"), D("50000"), BTC) == D("120")


@pytest.mark.parametrize(
    ("description", "side", "fill", "given", "expected"),
    [
        ("long stop from the signal, rounded up toward entry", "BUY", D("50000"), D("49000.04"), D("49000.10")),
        ("short stop from the signal, rounded down toward entry", "SELL", D("50000"), D("51000.06"), D("51000.00")),
        ("long default 2% below the fill", "BUY", D("50000"), None, D("49000.00")),
        ("short default 2% above the fill", "SELL", D("3000.55"), None, D("3060.50")),
    ],
)  # fmt: skip
def test_stop_prices(description, side, fill, given, expected):
    assert stop_price_for(side, fill, given, D("2"), BTC) == expected, description


def test_take_profit_prices_round_toward_entry_and_default_or_none():
    assert take_profit_price_for("BUY", D("50000"), D("52000.07"), None, BTC) == D("52000.00")
    assert take_profit_price_for("SELL", D("50000"), D("48000.01"), None, BTC) == D("48000.10")
    assert take_profit_price_for("BUY", D("50000"), None, D("4"), BTC) == D("52000.00")
    assert take_profit_price_for("BUY", D("50000"), None, None, BTC) is None


def test_a_stop_beyond_the_fill_would_trigger_at_once():
    assert protection_is_valid("BUY", D("50000"), D("49900"))
    assert not protection_is_valid("BUY", D("49800"), D("49900"))  # filled below the stop
    assert not protection_is_valid("SELL", D("50000"), D("49900"))


INPUTS = SizingInputs(method="risk", equity=D("10000"), available=D("10000"), leverage=3,
                      max_position_usd=D("1000"), risk_per_trade=D("0.01"),
                      confidence_threshold=D("0.55"))  # fmt: skip


def test_risk_sizing_is_risk_amount_over_stop_distance_scaled_by_confidence():
    # risk 100 USDT × min(0.66/0.55, 1.5)=1.2 → 120 USDT; stop 2% away → 6,000; capped at 1,000
    notional, explain = target_notional(INPUTS, D("50000"), D("49000"), D("0.66"), None)
    assert notional == D("1000") and explain["notional_requested"] == D("6000")
    assert explain["capped_by"] == "max_position_usd 1000"
    small = SizingInputs(**{**INPUTS.__dict__, "equity": D("1000")})
    notional, explain = target_notional(small, D("50000"), D("49000"), D("0.99"), None)
    assert explain["confidence_multiplier"] == D("1.5")  # capped
    assert notional == D("750")  # 1000 × 1% × 1.5 / 2%


def test_signal_and_notional_methods_and_the_margin_cap():
    sig = SizingInputs(**{**INPUTS.__dict__, "method": "signal", "available": D("100")})
    notional, explain = target_notional(sig, D("50000"), D("49000"), None, D("425"))
    assert notional == D("300") and explain["capped_by"] == "available 100 x leverage 3"
    with pytest.raises(SizingRejected, match="has no position_size_usd"):
        target_notional(sig, D("50000"), D("49000"), None, None)
    fixed = SizingInputs(**{**INPUTS.__dict__, "method": "notional"})
    assert target_notional(fixed, D("50000"), D("49000"), None, None)[0] == D("1000")


def test_rules_from_binance_exchange_info():
    info = {"symbol": "BTCUSDT", "status": "TRADING", "filters": [
        {"filterType": "PRICE_FILTER", "tickSize": "0.10", "minPrice": "261.10", "maxPrice": "809484"},
        {"filterType": "LOT_SIZE", "stepSize": "0.001", "minQty": "0.001", "maxQty": "1000"},
        {"filterType": "MARKET_LOT_SIZE", "stepSize": "0.001", "minQty": "0.001", "maxQty": "120"},
        {"filterType": "MIN_NOTIONAL", "notional": "100"}]}  # fmt: skip
    assert rules_from_binance("BTC/USDT:USDT", info) == BTC


def test_client_order_ids_are_deterministic_valid_and_distinct_per_role():
    ids = {client_order_id("sig-1", role) for role in Role}
    assert len(ids) == len(Role)
    assert client_order_id("sig-1", Role.ENTRY) == client_order_id("sig-1", Role.ENTRY)
    assert client_order_id("x" * 128, Role.STOP_LOSS, attempt=2).endswith("-sl2")
    assert all(CLIENT_ID_PATTERN.match(cid) and len(cid) <= 36 for cid in ids)
