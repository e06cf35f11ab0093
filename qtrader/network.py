"""Why a request never got an answer, told apart: TLS, refused, DNS, timeout.

ccxt folds every transport failure into one message ("binanceusdm GET <url>"); the cause
chain still holds the requests/urllib3/socket exception. `describe_network_failure` walks
it and returns one sentence with the URL (secrets masked) and the fix.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from urllib.parse import urlsplit

from qtrader.secrets import redact_url

TLS, REFUSED, DNS, TIMEOUT, CONNECTION = "tls", "refused", "dns", "timeout", "connection"

_FIXES = {
    TLS: (
        "TLS certificate verification failed for {url} ({detail}); the server's certificate is "
        "not trusted. If {where} points at a proxy or emulator with its own "
        "certificate, give its CA with REQUESTS_CA_BUNDLE=/path/ca.pem; otherwise something "
        "intercepts HTTPS here (corporate proxy, antivirus): fix that, and check the clock"
    ),
    REFUSED: (
        "connection refused by {host}: nothing accepts connections there ({url}). Check "
        "{where} (is the proxy or emulator running, right port?)"
    ),
    DNS: (
        "cannot resolve the host name {host} ({url}): check its spelling in {where}, and "
        "this machine's DNS and network"
    ),
    TIMEOUT: (
        "no answer from {host} in time ({url}): check the network or "
        "firewall, or raise {timeout_setting}"
    ),
    CONNECTION: (
        "the connection to {host} failed ({detail}) ({url}): check the network, or {where}"
    ),
}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and contexts, and exceptions held in args or `.reason`."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        nested += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        todo += [n for n in nested if isinstance(n, BaseException)]


def network_failure_kind(exc: BaseException) -> str | None:
    """tls | refused | dns | timeout | connection, or None when it is not a transport error."""
    chain = list(_chain(exc))
    names = {type(e).__name__ for e in chain}
    text = " ".join(str(e) for e in chain)
    if any(isinstance(e, ssl.SSLError) for e in chain) or "SSLError" in names:
        return TLS
    if any(isinstance(e, socket.gaierror) for e in chain) or "NameResolutionError" in names:
        return DNS
    if any(isinstance(e, TimeoutError | socket.timeout) for e in chain) or any(
        n.endswith("Timeout") or n.endswith("TimeoutError") for n in names
    ):
        return TIMEOUT
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "refused" in text.lower():
        return REFUSED
    if "ConnectionError" in names or any(isinstance(e, ConnectionError) for e in chain):
        return CONNECTION
    return None


EXCHANGE_URL = "exchange.api_url / QTRADER_API_URL"
EXCHANGE_TIMEOUT = "QTRADER_EXCHANGE_TIMEOUT_S"


def describe_network_failure(
    exc: BaseException,
    url: str | None,
    where: str = EXCHANGE_URL,
    timeout_setting: str = EXCHANGE_TIMEOUT,
) -> str | None:
    """One sentence: what failed, the URL (masked) and the fix; None if not a network error.
    `where` names the setting that holds the URL, `timeout_setting` the one to raise."""
    kind = network_failure_kind(exc)
    if kind is None:
        return None
    shown = redact_url(url) if url else "(unknown URL)"
    host = _host(url) if url else "the server"
    detail = _detail(exc, kind)
    return _FIXES[kind].format(
        url=shown, host=host, detail=detail, where=where, timeout_setting=timeout_setting
    )


def _host(url: str) -> str:
    """host[:port], never the user:password part."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "the server"
    host = parts.hostname or "the server"
    return f"{host}:{port}" if port else host


def _detail(exc: BaseException, kind: str) -> str:
    for e in _chain(exc):
        if kind == TLS and isinstance(e, ssl.SSLCertVerificationError):
            return e.verify_message or str(e)
    for e in _chain(exc):
        if kind == TLS and isinstance(e, ssl.SSLError):
            return e.reason or str(e)
    innermost = list(_chain(exc))[-1]
    return f"{type(innermost).__name__}: {innermost}"[:200]
