"""The paper exchange's matching rules, worked by hand (qtrader/domain/matching.py)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal as D

import pytest

from qtrader.domain.matching import (
    Candle,
    PositionChange,
    Resting,
    apply_fill,
    fire_price,
    firing_order,
    funding_payment,
    slipped_price,
    to_tick,
    walk_book,
)

T = datetime(2026, 11, 20, 10, 0)


def bar(o: str, h: str, low: str, c: str) -> Candle:
    return Candle("BTCUSDT", T, D(o), D(h), D(low), D(c))


@pytest.mark.parametrize(
    ("side", "kind", "trigger", "candle", "expected"),
    [
        # a long's stop (SELL) fires when the low reaches it; at the trigger, or the open on a gap
        ("SELL", "stop_loss", "49000", bar("49500", "49600", "48900", "49100"), "49000"),
        ("SELL", "stop_loss", "49000", bar("48800", "48900", "48700", "48750"), "48800"),
        ("SELL", "stop_loss", "49000", bar("49500", "49600", "49001", "49100"), None),
        # a long's target (SELL) fires when the high reaches it; a gap up fills at the open
        ("SELL", "take_profit", "52000", bar("51900", "52100", "51800", "52050"), "52000"),
        ("SELL", "take_profit", "52000", bar("52300", "52400", "52200", "52250"), "52300"),
        # a short's stop (BUY) fires on a rise, its target (BUY) on a fall
        ("BUY", "stop_loss", "3060", bar("3070", "3080", "3065", "3075"), "3070"),
        ("BUY", "stop_loss", "3060", bar("3050", "3061", "3040", "3055"), "3060"),
        ("BUY", "take_profit", "2880", bar("2900", "2910", "2870", "2890"), "2880"),
        ("BUY", "take_profit", "2880", bar("2900", "2910", "2881", "2890"), None),
    ],
)
def test_fire_price(side, kind, trigger, candle, expected):
    price = fire_price(Resting("o", side, kind, D(trigger)), candle)
    assert price == (D(expected) if expected else None)


def test_a_bar_reaching_both_stop_and_target_fires_the_stop_first():
    target = Resting("tp", "SELL", "take_profit", D("52000"))
    stop = Resting("sl", "SELL", "stop_loss", D("49000"))
    fired = firing_order([target, stop], bar("50000", "52500", "48500", "50000"))
    assert [(o.order_id, p) for o, p in fired] == [("sl", D("49000")), ("tp", D("52000"))]


def test_slippage_widens_with_size_and_goes_against_the_trader():
    # 2 bps + 1 bp per 10,000 USDT: 50,000 USDT pays 7 bps
    assert slipped_price(D("100"), "BUY", D("50000"), D("2"), D("1")) == D("100.07")
    assert slipped_price(D("100"), "SELL", D("50000"), D("2"), D("1")) == D("99.93")
    assert to_tick(D("100.071"), D("0.01"), "BUY") == D("100.08")
    assert to_tick(D("99.939"), D("0.01"), "SELL") == D("99.93")


def test_walking_the_book():
    asks = [(D("100"), D("1")), (D("101"), D("2"))]
    assert walk_book(asks, D("2")) == D("100.5")
    assert walk_book(asks, D("4")) is None  # too thin: the caller uses the slippage model


def test_fills_move_a_one_way_position():
    assert apply_fill(D(0), D(0), "BUY", D("2"), D("100")) == PositionChange(D(2), D(100), D(0))
    # adding averages the entry: (2 × 100 + 2 × 110) / 4 = 105
    assert apply_fill(D(2), D(100), "BUY", D("2"), D("110")) == PositionChange(D(4), D(105), D(0))
    # reducing a long realizes (price − entry) × qty
    assert apply_fill(D(4), D(105), "SELL", D("1"), D("115")) == PositionChange(D(3), D(105), D(10))
    # closing a short: (entry − price) × qty
    assert apply_fill(D(-3), D(100), "BUY", D("3"), D("90")) == PositionChange(D(0), D(0), D(30))
    # a flip closes all and opens the rest at the fill price
    assert apply_fill(D(1), D(100), "SELL", D("3"), D("90")) == PositionChange(D(-2), D(90), D(-10))


def test_funding_longs_pay_shorts_when_the_rate_is_positive():
    assert funding_payment(D("0.02"), D("50000"), D("0.0001")) == D("-0.1")
    assert funding_payment(D("-0.333"), D("3000"), D("0.0001")) == D("0.0999")
    assert funding_payment(D("6"), D("140"), D("-0.00005")) == D("0.042")
