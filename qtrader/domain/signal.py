"""Signals: one model for both shapes the AI engine sends, and a total validator.

Shapes accepted (seeds 000 and 003):
- TradeIntent: symbol, side, position_size_usd, leverage, entry_price, stop_loss,
  take_profit, confidence, timestamp;
- auto-executor signal: symbol, action BUY/SELL/CLOSE/HOLD, confidence, price, pnl, drawdown.
  Its `pnl` and `drawdown` are kept in the raw payload only: risk reads the account,
  never what a signal says about it.

`parse_record` never raises: every input ends as a `ParsedRecord` that is either a valid
`Signal` or carries the reason it is invalid. Identity: the payload's own `id`/`intent_id`,
else the source's entry id (a Redis stream id), else a hash of the normalised content
(for an invalid record without an id: a hash of its location and bytes).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from qtrader.domain.numbers import WIDE, plain


class Action(StrEnum):
    BUY = "BUY"
    SELL = "SELL"
    CLOSE = "CLOSE"
    HOLD = "HOLD"


ACTION_WORDS = {
    "BUY": Action.BUY,
    "LONG": Action.BUY,
    "SELL": Action.SELL,
    "SHORT": Action.SELL,
    "CLOSE": Action.CLOSE,
    "EXIT": Action.CLOSE,
    "HOLD": Action.HOLD,
}
ID_FIELDS = ("id", "intent_id")
MAX_ID_LEN = 128
MAX_TEXT_FIELD_LEN = 4096
MAX_ABS_NUMBER = Decimal("1e15")
DECIMAL_PLACES = Decimal("1e-18")  # the store's DECIMAL(38,18)
_ID_PATTERN = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, no spaces
_SYMBOL_PATTERN = re.compile(r"^[A-Z0-9]{2,30}$")
_OLDEST = datetime(2000, 1, 1)
_NEWEST = datetime(2100, 1, 1)


@dataclass(frozen=True)
class Limits:
    max_record_bytes: int = 65536
    max_leverage: int = 125


@dataclass(frozen=True)
class RawRecord:
    """One record as a source delivered it, before anything is trusted.

    Exactly one of `data` (a mapping, e.g. a CSV row or flat Redis fields) and
    `payload` (bytes or text holding JSON) is set.
    """

    location: str
    payload: bytes | str | None = None
    data: Mapping[str, Any] | None = None
    entry_id: str | None = None
    defect: str | None = None  # the source already knows why this record is unusable


@dataclass(frozen=True)
class Signal:
    signal_id: str
    shape: str  # "trade_intent" | "auto_executor"
    symbol: str  # exchange id, e.g. BTCUSDT
    action: Action
    confidence: Decimal | None = None
    position_size_usd: Decimal | None = None
    leverage: Decimal | None = None
    entry_price: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    signal_ts: datetime | None = None  # naive UTC


@dataclass(frozen=True)
class ParsedRecord:
    signal_id: str
    content_hash: str
    raw_text: str
    location: str
    signal: Signal | None = None
    reason: str | None = None

    @property
    def valid(self) -> bool:
        return self.signal is not None


class InvalidSignal(ValueError):
    """Internal to this module: a reason the record is rejected."""


def parse_record(record: RawRecord, limits: Limits = Limits()) -> ParsedRecord:
    raw_text, raw_hash = _raw_text_and_hash(record)
    raw_text = _truncated(raw_text, raw_hash, limits.max_record_bytes)
    # An unusable record is identified by where it was found as well as by its bytes, so
    # two identical bad lines are both kept, and re-reading the same file stores neither again.
    fallback_id = record.entry_id or f"raw-{_sha256(f'{record.location}|{raw_hash}'.encode())[:32]}"
    try:
        obj = _decode(record, limits)
    except InvalidSignal as exc:
        return ParsedRecord(fallback_id, raw_hash, raw_text, record.location, reason=str(exc))
    own_id = _own_id(obj)
    try:
        if isinstance(own_id, InvalidSignal):
            raise own_id
        fields = _normalise(obj, limits)
    except InvalidSignal as exc:
        signal_id = own_id if isinstance(own_id, str) else fallback_id
        return ParsedRecord(signal_id, raw_hash, raw_text, record.location, reason=str(exc))
    content_hash = _content_hash(fields)
    signal_id = own_id or record.entry_id or f"h-{content_hash[:32]}"
    signal = Signal(signal_id=signal_id, **fields)
    return ParsedRecord(signal_id, content_hash, raw_text, record.location, signal=signal)


# --- decoding ---------------------------------------------------------------------------


def _raw_text_and_hash(record: RawRecord) -> tuple[str, str]:
    if record.data is not None:
        text = _canonical_json(record.data)
        return _storable(text), _sha256(text.encode("utf-8", "surrogatepass"))
    payload = record.payload if record.payload is not None else b""
    data = payload if isinstance(payload, bytes) else payload.encode("utf-8", "surrogatepass")
    text = data.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    return _storable(text), _sha256(data)


def _truncated(text: str, digest: str, limit: int) -> str:
    """An oversized record keeps its head as evidence; its identity is the full hash."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[truncated: {len(text)} characters in all, sha256 {digest}]"


def _storable(text: str) -> str:
    """Lone surrogates cannot be stored as UTF-8; keep the evidence, escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _decode(record: RawRecord, limits: Limits) -> dict[str, Any]:
    if record.defect:
        raise InvalidSignal(record.defect)
    if record.data is not None:
        for key, value in record.data.items():
            if _has_surrogates(key) or _has_surrogates(value):
                raise InvalidSignal(f"field {_short(key)} is not valid UTF-8")
        size = sum(len(str(k)) + len(str(v)) for k, v in record.data.items())
        if size > limits.max_record_bytes:
            raise InvalidSignal(f"record is {size} bytes, larger than {limits.max_record_bytes}")
        return dict(record.data)
    payload = record.payload if record.payload is not None else b""
    if isinstance(payload, str):
        try:
            payload = payload.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidSignal(f"text is not valid Unicode at character {exc.start}") from None
    if len(payload) > limits.max_record_bytes:
        raise InvalidSignal(
            f"record is {len(payload)} bytes, larger than {limits.max_record_bytes}"
        )
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidSignal(f"not valid UTF-8 at byte offset {exc.start}") from None
    if not text.strip():
        raise InvalidSignal("empty record")
    obj = _loads_strict(text)
    if not isinstance(obj, dict):
        raise InvalidSignal(f"expected a JSON object, got {_json_kind(obj)}")
    return obj


def _has_surrogates(value: Any) -> bool:
    return isinstance(value, str) and any("\ud800" <= ch <= "\udfff" for ch in value)


def _loads_strict(text: str) -> Any:
    def reject_constant(name: str) -> Any:
        raise InvalidSignal(f"{name} is not a number JSON allows")

    def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for key, value in pairs:
            if key in obj:
                raise InvalidSignal(f"duplicate key {key!r}")
            obj[key] = value
        return obj

    try:
        return json.loads(text, parse_constant=reject_constant, object_pairs_hook=no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise InvalidSignal(f"malformed JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise InvalidSignal("JSON nested too deeply") from None


def _json_kind(obj: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(obj), "a number"
    )


# --- normalising ------------------------------------------------------------------------


def _own_id(obj: Mapping[str, Any]) -> str | InvalidSignal | None:
    for name in ID_FIELDS:
        value = obj.get(name)
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            return InvalidSignal(f"{name} must be text or a whole number, got {_short(value)}")
        text = str(value).strip()
        if not _ID_PATTERN.match(text):
            return InvalidSignal(
                f"{name} must be 1-{MAX_ID_LEN} printable ASCII characters without spaces"
            )
        return text
    return None


def _normalise(obj: Mapping[str, Any], limits: Limits) -> dict[str, Any]:
    for key, value in obj.items():
        if isinstance(value, str) and len(value) > MAX_TEXT_FIELD_LEN:
            raise InvalidSignal(f"field {key!r} is {len(value)} characters long")
    action = _action(obj)
    shape = "trade_intent" if "side" in obj else "auto_executor"
    fields: dict[str, Any] = {
        "shape": shape,
        "symbol": normalise_symbol(_required(obj, "symbol")),
        "action": action,
        "confidence": _number(obj, "confidence"),
        "position_size_usd": _number(obj, "position_size_usd", positive=True),
        "leverage": _number(obj, "leverage", positive=True),
        "entry_price": _entry_price(obj),
        "stop_loss": _number(obj, "stop_loss", positive=True),
        "take_profit": _number(obj, "take_profit", positive=True),
        "signal_ts": _timestamp(obj.get("timestamp")),
    }
    _check_confidence(fields["confidence"], action)
    _check_leverage(fields["leverage"], limits)
    _check_protection_sides(action, fields)
    return fields


def _required(obj: Mapping[str, Any], name: str) -> Any:
    value = obj.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidSignal(f"missing field {name!r}")
    return value


def _action(obj: Mapping[str, Any]) -> Action:
    given = {name: obj[name] for name in ("side", "action") if obj.get(name) not in (None, "")}
    if not given:
        raise InvalidSignal("missing field 'side' (TradeIntent) or 'action' (BUY/SELL/CLOSE/HOLD)")
    actions = set()
    for name, value in given.items():
        word = value.strip().upper() if isinstance(value, str) else None
        if word not in ACTION_WORDS:
            raise InvalidSignal(
                f"unknown {name} {_short(value)}; expected one of BUY, SELL, CLOSE, HOLD"
            )
        actions.add(ACTION_WORDS[word])
    if len(actions) > 1:
        raise InvalidSignal(f"side and action disagree: {given['side']!r} vs {given['action']!r}")
    return actions.pop()


def normalise_symbol(value: Any) -> str:
    """`BTCUSDT`, `btcusdt`, `BTC/USDT`, `BTC-USDT` and `BTC/USDT:USDT` all become `BTCUSDT`."""
    if not isinstance(value, str):
        raise InvalidSignal(f"symbol must be text, got {_short(value)}")
    text = value.strip().upper()
    if "-" in text and "/" not in text:  # BTC-USDT, and OKX's BTC-USDT-SWAP
        text = text.removesuffix("-SWAP").replace("-", "/", 1)
    if "/" in text:
        base, _, rest = text.partition("/")
        quote, _, settle = rest.partition(":")
        if "-" in settle:
            raise InvalidSignal(f"symbol {value!r} is a dated contract; only perpetuals are traded")
        if settle and settle != quote:
            raise InvalidSignal(f"symbol {value!r} is coin-margined; only USDⓈ-M is traded")
        text = base + quote
    if not _SYMBOL_PATTERN.match(text):
        raise InvalidSignal(f"symbol {_short(value)} is not a futures symbol like BTCUSDT")
    return text


def _entry_price(obj: Mapping[str, Any]) -> Decimal | None:
    entry = _number(obj, "entry_price", positive=True)
    price = _number(obj, "price", positive=True)
    if entry is not None and price is not None and entry != price:
        raise InvalidSignal(f"entry_price {entry} and price {price} disagree")
    return entry if entry is not None else price


def _number(obj: Mapping[str, Any], name: str, positive: bool = False) -> Decimal | None:
    value = obj.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidSignal(f"{name} must be a number, got {_short(value)}")
    try:
        number = Decimal(value.strip() if isinstance(value, str) else repr(value))
    except (InvalidOperation, ValueError):
        raise InvalidSignal(f"{name} must be a number, got {_short(value)}") from None
    if not number.is_finite():
        raise InvalidSignal(f"{name} is {value!r}; it must be a finite number")
    if abs(number) >= MAX_ABS_NUMBER:
        raise InvalidSignal(f"{name} {_short(value)} is absurdly large")
    number = plain(number.quantize(DECIMAL_PLACES, context=WIDE))
    if positive and number <= 0:
        raise InvalidSignal(f"{name} must be greater than 0, got {_short(value)}")
    return number


def _check_confidence(confidence: Decimal | None, action: Action) -> None:
    if confidence is None:
        if action in (Action.BUY, Action.SELL):
            raise InvalidSignal("missing field 'confidence' (needed for BUY/SELL)")
        return
    if not 0 <= confidence <= 1:
        raise InvalidSignal(f"confidence {confidence} is outside [0, 1]")


def _check_leverage(leverage: Decimal | None, limits: Limits) -> None:
    if leverage is None:
        return
    if leverage != leverage.to_integral_value():
        raise InvalidSignal(f"leverage {leverage} must be a whole number")
    if leverage > limits.max_leverage:
        raise InvalidSignal(f"leverage {leverage} is above {limits.max_leverage}x")


def _check_protection_sides(action: Action, f: dict[str, Any]) -> None:
    if action not in (Action.BUY, Action.SELL):
        return
    long = action is Action.BUY
    entry, stop, target = f["entry_price"], f["stop_loss"], f["take_profit"]
    word = "below" if long else "above"
    other = "above" if long else "below"
    if entry is not None and stop is not None and (stop >= entry if long else stop <= entry):
        raise InvalidSignal(f"stop_loss {stop} must be {word} entry {entry} for a {action}")
    if entry is not None and target is not None and (target <= entry if long else target >= entry):
        raise InvalidSignal(f"take_profit {target} must be {other} entry {entry} for a {action}")
    if stop is not None and target is not None and (stop >= target if long else stop <= target):
        raise InvalidSignal(f"stop_loss {stop} must be {word} take_profit {target} for a {action}")


def _timestamp(value: Any) -> datetime | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise InvalidSignal(f"timestamp must be ISO 8601 or epoch seconds/ms, got {value!r}")
    try:
        ts = _parse_timestamp(value)
    except (ValueError, OSError, ArithmeticError):
        raise InvalidSignal(
            f"timestamp {_short(value)} is not ISO 8601 or epoch seconds/milliseconds"
        ) from None
    if not _OLDEST <= ts < _NEWEST:
        raise InvalidSignal(f"timestamp {_short(value)} is outside 2000-2100")
    return ts


def _parse_timestamp(value: Any) -> datetime:
    if isinstance(value, str):
        text = value.strip()
        try:
            number = Decimal(text)
        except InvalidOperation:
            parsed = datetime.fromisoformat(text)
            if parsed.tzinfo is not None:
                parsed = parsed.astimezone(UTC).replace(tzinfo=None)
            return parsed
    elif isinstance(value, int | float):
        number = Decimal(repr(value))
    else:
        raise ValueError(value)
    if not number.is_finite():
        raise ValueError(value)
    seconds = number / 1000 if abs(number) > Decimal("1e11") else number
    return datetime.fromtimestamp(float(seconds), UTC).replace(tzinfo=None)


# --- identity ---------------------------------------------------------------------------


def _content_hash(fields: dict[str, Any]) -> str:
    """Hash of meaning, not bytes: `"50000"` in a CSV and `50000.0` in JSON are one signal."""
    canonical = {k: (str(v) if v is not None else None) for k, v in fields.items() if k != "shape"}
    return _sha256(_canonical_json(canonical).encode("utf-8"))


def _canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
