"""OKX v5 error codes → qtrader's exchange errors.

OKX answers every request with an envelope `{"code": "...", "msg": "...", "data": [...]}`;
an order endpoint's refusal is `code "1"` with the reason per item in `data[i].sCode/sMsg`.
ccxt maps many codes to its exception classes but leaves others as a plain `ExchangeError`
with the body in the message (51169/51170 reduce-only, 51065 algo id exists, 51088 one
position-level TP/SL only, 51149 order timeout), and maps a bare HTTP 429 to
`ExchangeNotAvailable`. So the code is read from the body here, first `sCode` then `code`,
and the table below decides; ccxt's class decides only where the body has no code.
"""

from __future__ import annotations

import re

import ccxt

from qtrader.errors import ConfigError
from qtrader.exchange.port import ExchangeRejected, ExchangeUnavailable, NotSentError
from qtrader.network import describe_network_failure
from qtrader.secrets import mask

_S_CODE = re.compile(r'"sCode"\s*:\s*"(\d+)"')
_S_MSG = re.compile(r'"sMsg"\s*:\s*"((?:[^"\\]|\\.)*)"')
_CODE = re.compile(r'"code"\s*:\s*"?(\d+)')
_MSG = re.compile(r'"msg"\s*:\s*"((?:[^"\\]|\\.)*)"')
_HTTP_429 = re.compile(r"\b429\b")
_REQUEST = re.compile(r"\b(?:GET|POST|PUT|DELETE) (https?://\S+)")

# What each code means to qtrader. Kinds:
#   rate_limited     not acted on (429, 50011, 50061): wait and send again
#   clock_skew       not acted on (50102 timestamp expired, also an entry past its expTime)
#   outcome_unknown  the request may have been acted on: look the order up by its client id
#   unavailable      the exchange could not serve it (maintenance, busy, system error)
#   auth             the key, secret or passphrase was refused, or the key lacks a permission
#   not_found        the order does not exist (lookups, cancels)
#   reduce_only_rejected / would_trigger / duplicate_id / one_stop_only / insufficient_margin /
#   bad_symbol / precision / min_size / account_mode / rejected: the exchange said no
_PAST = "the price is already past the {}: use one further from the price"
OKX_CODES: dict[int, tuple[str, str]] = {
    50011: ("rate_limited", "qtrader waits and sends again; lower the load if it persists"),
    50061: ("rate_limited", "the account's order rate limit: fewer orders per second"),
    50040: ("rate_limited", "too frequent operations: wait and try again"),
    50102: ("clock_skew", "the request arrived too late: check this machine's clock (NTP)"),
    50004: ("outcome_unknown", "the endpoint timed out: qtrader looks the order up first"),
    51149: ("outcome_unknown", "the order timed out: qtrader looks it up before any resend"),
    50001: ("unavailable", "OKX is under maintenance: try again later"),
    50013: ("unavailable", "OKX is busy: try again shortly"),
    50026: ("unavailable", "OKX system error: try again shortly"),
    50100: ("auth", "the API key is frozen: unfreeze it or make a new one"),
    50101: ("auth", "the key is for the other environment: demo keys need --testnet"),
    50103: ("auth", "set OKX_API_KEY"),
    50104: ("auth", "set OKX_API_PASSPHRASE (chosen when the key was made)"),
    50105: ("auth", "OKX_API_PASSPHRASE is wrong (it is the one chosen with the key)"),
    50110: ("auth", "this IP is not on the key's IP whitelist"),
    50111: ("auth", "check OKX_API_KEY: OKX does not know it"),
    50113: ("auth", "check OKX_API_SECRET: the signature did not verify"),
    50114: ("auth", "check OKX_API_KEY, OKX_API_SECRET and OKX_API_PASSPHRASE"),
    50119: ("auth", "check OKX_API_KEY: no such key (demo keys are made in Demo Trading)"),
    50120: ("auth", "give the key the Trade permission"),
    51603: ("not_found", ""),
    51400: ("not_found", ""),
    51401: ("not_found", ""),
    51402: ("not_found", ""),
    51169: ("reduce_only_rejected", "there is no position left to reduce: run qtrader reconcile"),
    51170: ("reduce_only_rejected", "reduce-only cannot add to a position: run qtrader reconcile"),
    51016: ("duplicate_id", "an order with this client id is pending: run qtrader reconcile"),
    51065: ("duplicate_id", "an algo order with this client id exists: run qtrader reconcile"),
    51088: ("one_stop_only", "OKX keeps one whole-position TP/SL: run qtrader reconcile"),
    51008: ("insufficient_margin", "add USDT to the trading account, or lower size or leverage"),
    51127: ("insufficient_margin", "the trading account has no USDT available: transfer some"),
    51131: ("insufficient_margin", "add USDT to the trading account"),
    51001: ("bad_symbol", "check the symbol; qtrader execute --refresh-markets reloads markets"),
    51121: ("precision", "the lot size changed: run qtrader execute --refresh-markets"),
    51020: ("min_size", "raise the size to at least the market's minimum (minSz contracts)"),
    51023: ("no_position", "there is no position to close"),
    51277: ("would_trigger", _PAST.format("target")),
    51278: ("would_trigger", _PAST.format("stop")),
    51279: ("would_trigger", _PAST.format("target")),
    51280: ("would_trigger", _PAST.format("stop")),
    51010: ("account_mode", "switch the OKX account to Spot and futures mode (Account mode)"),
    51000: ("rejected", "a parameter was refused: the request is in the journal (qtrader sql)"),
}
NOT_SENT_KINDS = {"rate_limited", "clock_skew"}


class OkxClockSkew(NotSentError):
    """50102: the request arrived outside OKX's 30 s timestamp window (or past its expTime)."""


class OkxAuthFailed(ConfigError):
    """OKX refused the key, secret or passphrase (or the key lacks a permission)."""


def code_and_message(text: str) -> tuple[int | None, str]:
    """The per-item `sCode`/`sMsg` when there is one (order endpoints), else `code`/`msg`."""
    s_code, s_msg = _S_CODE.search(text), _S_MSG.search(text)
    if s_code and s_code.group(1) != "0":
        return int(s_code.group(1)), s_msg.group(1) if s_msg else text
    code, msg = _CODE.search(text), _MSG.search(text)
    if code and code.group(1) not in ("0", "1"):
        return int(code.group(1)), msg.group(1) if msg else text
    return None, (msg.group(1) if msg and msg.group(1) else text)


def kind_of_code(code: int | None) -> str | None:
    entry = OKX_CODES.get(code) if code is not None else None
    return entry[0] if entry else None


def fix_for(code: int | None) -> str:
    entry = OKX_CODES.get(code) if code is not None else None
    return entry[1] if entry else ""


def translate(exc: ccxt.BaseError) -> Exception:
    """ccxt's exception from the okx class → qtrader's, decided by OKX's code first."""
    text = mask(str(exc))
    code, message = code_and_message(text)
    kind = kind_of_code(code)
    fix = fix_for(code)
    said = f"({code}) {message}" + (f" — {fix}" if fix else "")
    if kind == "clock_skew" or (kind is None and isinstance(exc, ccxt.InvalidNonce)):
        return OkxClockSkew(f"OKX: request timestamp expired {said}")
    if kind == "rate_limited" or (code is None and _is_rate_limit(exc, text)):
        return NotSentError(f"rate limited by OKX {said if code else '(HTTP 429)'}")
    if kind == "auth" or (
        kind is None and isinstance(exc, ccxt.AuthenticationError | ccxt.PermissionDenied)
    ):
        return OkxAuthFailed(f"OKX refused the API key {said}")
    if kind == "not_found" or (kind is None and isinstance(exc, ccxt.OrderNotFound)):
        return ExchangeRejected(code, message, kind="not_found")
    if kind in ("outcome_unknown", "unavailable"):
        return ExchangeUnavailable(f"OKX did not act for sure {said}")
    url = _REQUEST.search(str(exc))
    network = describe_network_failure(exc, url.group(1) if url else None)
    if network is not None and (code is None or isinstance(exc, ccxt.NetworkError)):
        return ExchangeUnavailable(mask(f"OKX did not answer: {network}"))
    if code is None and isinstance(exc, ccxt.NetworkError):
        return ExchangeUnavailable(f"OKX did not answer properly: {message}")
    if kind is not None or code is not None or isinstance(exc, ccxt.ExchangeError):
        return OkxRejected(code, message, kind or "rejected")
    return ExchangeUnavailable(f"exchange error: {message}")


class OkxRejected(ExchangeRejected):
    """OKX said no. `kind` names what it refused (see OKX_CODES); `reason` ends with the fix."""

    @property
    def reason(self) -> str:
        fix = fix_for(self.code)
        return f"{self.exchange_message} — {fix}" if fix else self.exchange_message


def _is_rate_limit(exc: ccxt.BaseError, text: str) -> bool:
    if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
        return True
    # ccxt maps a bare HTTP 429 to ExchangeNotAvailable: the status is in its message
    return isinstance(exc, ccxt.ExchangeNotAvailable) and bool(_HTTP_429.search(text))
