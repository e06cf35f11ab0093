"""OKX v5 error codes → qtrader's exchange errors.

OKX answers every request with an envelope `{"code": "...", "msg": "...", "data": [...]}`;
an order endpoint's refusal is `code "1"` with the reason per item in `data[i].sCode/sMsg`.
ccxt maps many codes to its exception classes but leaves others as a plain `ExchangeError`
with the body in the message (51169/51170 reduce-only, 51065 algo id exists, 51088 one
position-level TP/SL only, 51149 order timeout), and maps a bare HTTP 429 to
`ExchangeNotAvailable`. So the code is read from the body here, first `sCode` then `code`:
exchange/codes.py's OKX table gives a refusal its meaning (a `Refusal`), TRANSPORT below
names the codes that are not refusals; ccxt's class decides only where the body has none.
"""

from __future__ import annotations

import re

import ccxt

from qtrader.domain.orders import Refusal
from qtrader.errors import ConfigError
from qtrader.exchange.codes import OKX, OKX_FIXES, refusal_of
from qtrader.exchange.port import ExchangeRejected, ExchangeUnavailable, NotSentError
from qtrader.network import describe_network_failure
from qtrader.secrets import mask

_S_CODE = re.compile(r'"sCode"\s*:\s*"(\d+)"')
_S_MSG = re.compile(r'"sMsg"\s*:\s*"((?:[^"\\]|\\.)*)"')
_CODE = re.compile(r'"code"\s*:\s*"?(\d+)')
_MSG = re.compile(r'"msg"\s*:\s*"((?:[^"\\]|\\.)*)"')
_HTTP_429 = re.compile(r"\b429\b")
_REQUEST = re.compile(r"\b(?:GET|POST|PUT|DELETE) (https?://\S+)")

# Codes that are not a refusal of the request (those are in exchange/codes.py, OKX):
#   rate_limited     not acted on (50011, 50061, 50040; a bare HTTP 429): wait, send again
#   clock_skew       not acted on (50102 timestamp expired, also an entry past its expTime)
#   outcome_unknown  may have been acted on (51149 order timeout, 50004 endpoint timeout):
#                    the order is looked up by its client id before anything else
#   unavailable      the exchange could not serve it (maintenance, busy, system error)
POS_SIDE_CODE = 51000  # "Parameter posSide error"
TRANSPORT: dict[int, str] = {
    50011: "rate_limited",
    50061: "rate_limited",
    50040: "rate_limited",
    50102: "clock_skew",
    51149: "outcome_unknown",
    50004: "outcome_unknown",
    50001: "unavailable",
    50013: "unavailable",
    50026: "unavailable",
}


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


def translate(exc: ccxt.BaseError) -> Exception:
    """ccxt's exception from the okx class → qtrader's, decided by OKX's code first."""
    text = mask(str(exc))
    code, message = code_and_message(text)
    kind = TRANSPORT.get(code) if code is not None else None
    refusal = refusal_of(OKX, code)
    said = f"({code}) {message}" if code is not None else message
    if kind == "clock_skew" or (code is None and isinstance(exc, ccxt.InvalidNonce)):
        return OkxClockSkew(f"OKX: request timestamp expired {said}; resync the clock")
    if kind == "rate_limited" or (code is None and _is_rate_limit(exc, text)):
        return NotSentError(f"rate limited by OKX {said if code else '(HTTP 429)'}")
    known = code in OKX or code in OKX_FIXES  # e.g. 51010 (account mode): ccxt says "permission"
    if refusal is Refusal.AUTH or (
        not known and isinstance(exc, ccxt.AuthenticationError | ccxt.PermissionDenied)
    ):
        fix = OKX_FIXES.get(code or 0, "check OKX_API_KEY, OKX_API_SECRET and OKX_API_PASSPHRASE")
        return OkxAuthFailed(f"OKX refused the API key {said} — {fix}")
    if refusal is Refusal.NOT_FOUND or (code is None and isinstance(exc, ccxt.OrderNotFound)):
        return ExchangeRejected(code, message, Refusal.NOT_FOUND)
    if kind in ("outcome_unknown", "unavailable"):
        what = "did not say whether it acted" if kind == "outcome_unknown" else "is unavailable"
        return ExchangeUnavailable(f"OKX {what} {said}")
    url = _REQUEST.search(str(exc))
    network = describe_network_failure(exc, url.group(1) if url else None)
    if network is not None and (code is None or isinstance(exc, ccxt.NetworkError)):
        return ExchangeUnavailable(mask(f"OKX did not answer: {network}"))
    if code is None and isinstance(exc, ccxt.NetworkError):
        return ExchangeUnavailable(f"OKX did not answer properly: {message}")
    if code == POS_SIDE_CODE and "posside" in message.lower():
        # posSide missing (long/short mode) or not allowed (net mode): the account's position
        # mode differs from the one qtrader cached
        refusal = Refusal.POSITION_MODE_CHANGED
    if code is not None or isinstance(exc, ccxt.ExchangeError):
        return ExchangeRejected(code, message, refusal, OKX_FIXES.get(code or 0))
    return ExchangeUnavailable(f"exchange error: {message}")


def _is_rate_limit(exc: ccxt.BaseError, text: str) -> bool:
    if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
        return True
    # ccxt maps a bare HTTP 429 to ExchangeNotAvailable: the status is in its message
    return isinstance(exc, ccxt.ExchangeNotAvailable) and bool(_HTTP_429.search(text))
