"""Normalisation and validation of both signal shapes (pure domain code)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qtrader.domain.signal import Action, Limits, RawRecord, normalise_symbol, parse_record

INTENT = {
    "intent_id": "i-1",
    "symbol": "BTCUSDT",
    "side": "BUY",
    "position_size_usd": 425.0,
    "leverage": 3,
    "entry_price": 50000.0,
    "stop_loss": 49000.0,
    "take_profit": 52000.0,
    "confidence": 0.78,
    "timestamp": "2026-01-16T07:30:00Z",
}
AUTO = {"symbol": "ETHUSDT", "action": "SELL", "confidence": 0.65, "price": 3500.0,
        "pnl": 0.0, "drawdown": 1.5}  # fmt: skip


def parse(obj: object, **limits: int):
    payload = obj if isinstance(obj, bytes | str) else json.dumps(obj)
    return parse_record(RawRecord(location="t:1", payload=payload), Limits(**limits))


def with_(base: dict, **changes: object) -> dict:
    out = {**base, **changes}
    return {k: v for k, v in out.items() if v is not ...}


def test_trade_intent_is_normalised():
    parsed = parse(INTENT)
    assert parsed.valid, parsed.reason
    s = parsed.signal
    assert (s.signal_id, s.shape, s.symbol, s.action) == (
        "i-1",
        "trade_intent",
        "BTCUSDT",
        Action.BUY,
    )
    assert s.position_size_usd == Decimal("425")
    assert s.entry_price == Decimal("50000") and s.stop_loss == Decimal("49000")
    assert s.confidence == Decimal("0.78") and s.leverage == Decimal("3")
    assert s.signal_ts == datetime(2026, 1, 16, 7, 30)


def test_auto_executor_signal_is_normalised_and_its_drawdown_is_not_trusted():
    parsed = parse(AUTO)
    assert parsed.valid, parsed.reason
    s = parsed.signal
    assert (s.shape, s.symbol, s.action, s.entry_price) == (
        "auto_executor",
        "ETHUSDT",
        Action.SELL,
        Decimal("3500"),
    )
    assert not hasattr(s, "drawdown")  # risk reads the account, never the signal's claim
    assert s.signal_id.startswith("h-")  # no id of its own: identity is the content hash


VALID_CASES = [
    ("lowercase symbol", with_(AUTO, symbol="ethusdt"), "symbol", "ETHUSDT"),
    ("ccxt unified symbol", with_(AUTO, symbol="ETH/USDT:USDT"), "symbol", "ETHUSDT"),
    ("spot-style unified symbol", with_(AUTO, symbol="ETH/USDT"), "symbol", "ETHUSDT"),
    ("LONG means BUY", with_(INTENT, side="long"), "action", Action.BUY),
    ("SHORT means SELL", with_(INTENT, side="SHORT", stop_loss=51000, take_profit=48000),
     "action", Action.SELL),
    ("CLOSE needs no confidence", {"symbol": "DOTUSDT", "action": "CLOSE"}, "action", Action.CLOSE),
    ("HOLD", with_(AUTO, action="hold"), "action", Action.HOLD),
    ("numbers as strings (Redis/CSV)", with_(AUTO, confidence="0.65", price="3500.50"),
     "entry_price", Decimal("3500.5")),
    ("epoch seconds", with_(INTENT, timestamp=1768548600), "signal_ts", datetime(2026, 1, 16, 7, 30)),
    ("epoch milliseconds", with_(INTENT, timestamp=1768548600000), "signal_ts",
     datetime(2026, 1, 16, 7, 30)),
    ("offset timestamp to UTC", with_(INTENT, timestamp="2026-01-16T08:30:00+01:00"),
     "signal_ts", datetime(2026, 1, 16, 7, 30)),
    ("integer id", with_(INTENT, intent_id=42), "signal_id", "42"),
    ("id field", with_(AUTO, id="abc-1"), "signal_id", "abc-1"),
    ("confidence bounds inclusive", with_(AUTO, confidence=1), "confidence", Decimal("1")),
    ("no stop given is allowed (execute applies the default)", with_(INTENT, stop_loss=...),
     "stop_loss", None),
]  # fmt: skip


@pytest.mark.parametrize(("description", "payload", "field", "expected"), VALID_CASES,
                         ids=[c[0] for c in VALID_CASES])  # fmt: skip
def test_valid_inputs(description, payload, field, expected):
    parsed = parse(payload)
    assert parsed.valid, f"{description}: {parsed.reason}"
    assert getattr(parsed.signal, field) == expected


INVALID_CASES = [
    ("malformed JSON", b'{"symbol": "BTCUSDT", ', "malformed JSON"),
    ("not an object", b"[1, 2]", "expected a JSON object, got an array"),
    ("a bare string", b'"BUY"', "expected a JSON object, got a string"),
    ("empty line", b"   ", "empty record"),
    ("non-UTF-8 bytes", b'{"symbol": "BTC\xff\xfeUSDT"}', "not valid UTF-8 at byte offset 15"),
    ("NaN", b'{"symbol":"BTCUSDT","action":"BUY","confidence":NaN}', "NaN is not a number"),
    ("Infinity", b'{"symbol":"BTCUSDT","action":"BUY","confidence":0.6,"price":Infinity}',
     "Infinity is not a number"),
    ("NaN as text", with_(AUTO, price="nan"), "price is 'nan'; it must be a finite number"),
    ("duplicate key", b'{"symbol":"A","symbol":"B"}', "duplicate key 'symbol'"),
    ("missing symbol", with_(AUTO, symbol=...), "missing field 'symbol'"),
    ("missing side and action", with_(AUTO, action=...), "missing field 'side'"),
    ("missing confidence on BUY", with_(AUTO, confidence=...), "missing field 'confidence'"),
    ("unknown action", with_(AUTO, action="YOLO"), "unknown action 'YOLO'"),
    ("side and action disagree", with_(AUTO, side="BUY"), "side and action disagree"),
    ("confidence above 1", with_(AUTO, confidence=72), "confidence 72 is outside [0, 1]"),
    ("confidence below 0", with_(AUTO, confidence=-0.1), "outside [0, 1]"),
    ("confidence is a bool", with_(AUTO, confidence=True), "confidence must be a number"),
    ("zero size", with_(INTENT, position_size_usd=0), "position_size_usd must be greater than 0"),
    ("negative size", with_(INTENT, position_size_usd=-425), "must be greater than 0"),
    ("negative price", with_(AUTO, price=-1), "price must be greater than 0"),
    ("absurd leverage", with_(INTENT, leverage=500), "leverage 500 is above 125x"),
    ("fractional leverage", with_(INTENT, leverage=2.5), "leverage 2.5 must be a whole number"),
    ("absurd number", with_(INTENT, position_size_usd=1e300), "absurdly large"),
    ("BUY stop above entry", with_(INTENT, stop_loss=51000), "stop_loss 51000 must be below entry"),
    ("BUY target below entry", with_(INTENT, take_profit=49500),
     "take_profit 49500 must be above entry"),
    ("SELL stop below entry", with_(INTENT, side="SELL", stop_loss=49000, take_profit=48000),
     "stop_loss 49000 must be above entry 50000 for a SELL"),
    ("stop beyond target without entry", with_(INTENT, entry_price=..., stop_loss=53000),
     "stop_loss 53000 must be below take_profit"),
    ("entry_price and price disagree", with_(INTENT, price=1), "disagree"),
    ("dated contract", with_(AUTO, symbol="BTC/USDT:USDT-261225"), "only perpetuals"),
    ("coin-margined", with_(AUTO, symbol="BTC/USD:BTC"), "coin-margined"),
    ("symbol with spaces", with_(AUTO, symbol="BTC USDT"), "is not a futures symbol"),
    ("symbol is a number", with_(AUTO, symbol=7), "symbol must be text"),
    ("bad timestamp", with_(INTENT, timestamp="yesterday"), "timestamp 'yesterday' is not ISO"),
    ("timestamp out of range", with_(INTENT, timestamp=10**16), "not ISO 8601"),
    ("oversized field", with_(AUTO, comment="x" * 5000), "field 'comment' is 5000 characters"),
    ("id with spaces", with_(AUTO, id="a b"), "id must be 1-128 printable ASCII"),
    ("id is an object", with_(AUTO, id={"x": 1}), "id must be text or a whole number"),
]  # fmt: skip


@pytest.mark.parametrize(("description", "payload", "reason"), INVALID_CASES,
                         ids=[c[0] for c in INVALID_CASES])  # fmt: skip
def test_invalid_inputs_carry_their_reason(description, payload, reason):
    parsed = parse(payload)
    assert not parsed.valid, description
    assert reason in parsed.reason, f"{description}: {parsed.reason!r}"
    assert parsed.raw_text  # the evidence is kept
    assert parsed.location == "t:1"


def test_oversized_record_is_rejected_by_the_configured_limit():
    parsed = parse(with_(AUTO, note="y" * 900), max_record_bytes=512)
    assert not parsed.valid and "larger than 512" in parsed.reason


def test_absurd_leverage_limit_is_a_setting():
    assert not parse(with_(INTENT, leverage=50), max_leverage=20).valid
    assert parse(with_(INTENT, leverage=50)).valid


def test_flat_fields_and_json_payload_of_the_same_signal_are_one_signal():
    flat = {k: str(v) for k, v in AUTO.items()}
    from_json = parse(AUTO)
    from_fields = parse_record(RawRecord(location="s#1", data=flat))
    assert from_fields.valid
    assert from_fields.content_hash == from_json.content_hash
    assert from_fields.signal_id == from_json.signal_id


def test_stream_entry_id_is_the_identity_when_the_payload_has_none():
    parsed = parse_record(RawRecord(location="s#1", payload=json.dumps(AUTO), entry_id="s/1-0"))
    assert parsed.signal_id == "s/1-0"
    own = parse_record(RawRecord(location="s#1", payload=json.dumps(INTENT), entry_id="s/1-0"))
    assert own.signal_id == "i-1"  # the payload's own id wins


def test_content_change_changes_the_hash_but_not_the_own_id():
    a, b = parse(INTENT), parse(with_(INTENT, confidence=0.9))
    assert a.signal_id == b.signal_id and a.content_hash != b.content_hash


def test_source_defect_is_the_reason():
    parsed = parse_record(RawRecord(location="f.csv:3", payload="a,b,c", defect="too many fields"))
    assert (parsed.valid, parsed.reason) == (False, "too many fields")


def test_non_utf8_in_flat_fields_is_rejected():
    parsed = parse_record(RawRecord(location="f.csv:2", data={"symbol": "BTC\udcffUSDT"}))
    assert not parsed.valid and "not valid UTF-8" in parsed.reason
    parsed.raw_text.encode("utf-8")  # storable


@pytest.mark.parametrize(
    ("given", "expected"),
    [("BTCUSDT", "BTCUSDT"), ("btcusdt", "BTCUSDT"), ("BTC/USDT:USDT", "BTCUSDT"),
     ("1000PEPE/USDT:USDT", "1000PEPEUSDT"), (" ethusdt ", "ETHUSDT"), ("BTC-USDT", "BTCUSDT"),
     ("BTC-USDT-SWAP", "BTCUSDT")],
)  # fmt: skip
def test_normalise_symbol(given, expected):
    assert normalise_symbol(given) == expected


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=20,
)  # fmt: skip
signal_like = st.fixed_dictionaries(
    {},
    optional={
        "symbol": st.one_of(st.text(max_size=12), st.sampled_from(["BTCUSDT", "ETH/USDT:USDT"])),
        "side": st.one_of(st.text(max_size=6), st.sampled_from(["BUY", "SELL", "long"])),
        "action": st.sampled_from(["BUY", "SELL", "CLOSE", "HOLD", "nope"]),
        "confidence": json_values,
        "price": json_values,
        "entry_price": json_values,
        "stop_loss": json_values,
        "take_profit": json_values,
        "leverage": json_values,
        "position_size_usd": json_values,
        "timestamp": json_values,
        "id": json_values,
        "intent_id": json_values,
    },
)


def _check_total(parsed) -> None:
    assert parsed.valid or parsed.reason, "every rejection carries a reason"
    assert parsed.valid != bool(parsed.reason)
    parsed.raw_text.encode("utf-8")  # always storable
    assert parsed.signal_id and parsed.content_hash


@settings(max_examples=400, deadline=None)
@given(st.one_of(json_values, signal_like))
def test_any_json_value_is_validated_without_an_exception(value):
    payload = json.dumps(value, allow_nan=True)
    _check_total(parse_record(RawRecord(location="h", payload=payload)))
    if isinstance(value, dict):
        _check_total(parse_record(RawRecord(location="h", data=value)))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_are_validated_without_an_exception(data):
    _check_total(parse_record(RawRecord(location="h", payload=data)))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_validated_without_an_exception(text):
    _check_total(parse_record(RawRecord(location="h", payload=text)))
