"""Keep secrets out of logs, the database and error messages.

Secrets only ever come from the environment. Anything qtrader prints or stores passes
through `mask()`, which replaces the values of the secret variables below and the
password part of URLs (`redis://:pw@host`, `https://user:pw@host`) and secret-looking query
values in any URL in the text (`?…&signature=…`, `apiKey=…`, `token=…`).
"""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SECRET_ENV_VARS = (
    "BINANCE_API_KEY",
    "BINANCE_API_SECRET",
    "QTRADER_API_KEY",
    "QTRADER_API_SECRET",
    "QTRADER_API_PASSPHRASE",
    "BYBIT_API_KEY",
    "BYBIT_API_SECRET",
    "OKX_API_KEY",
    "OKX_API_SECRET",
    "OKX_API_PASSPHRASE",
    "QTRADER_TELEGRAM_TOKEN",
    "QTRADER_WEBHOOK_URL",
    "REDIS_PASSWORD",
)
_SECRET_NAME = re.compile(
    r"(SECRET|TOKEN|PASSWORD|PASSWD|PASSPHRASE|API_KEY|PRIVATE_KEY)", re.IGNORECASE
)
_SECRET_QUERY_KEYS = re.compile(r"(secret|token|password|passwd|key|signature|auth)", re.I)
_URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")
_SECRET_QUERY_VALUE = re.compile(
    r"(?P<key>[?&][^=&\s?#]*(?:secret|token|password|passwd|key|signature|auth)[^=&\s?#]*=)"
    r"(?P<value>[^&\s#\"')]+)",
    re.IGNORECASE,
)
MASK = "***"
_MIN_SECRET_LEN = 6  # shorter values would mask ordinary words


def secret_values(environ: dict[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    values = {
        value
        for name, value in env.items()
        if (name in SECRET_ENV_VARS or _SECRET_NAME.search(name)) and len(value) >= _MIN_SECRET_LEN
    }
    # Longest first, so a secret that contains another is masked whole.
    return sorted(values, key=len, reverse=True)


def mask(text: str, environ: dict[str, str] | None = None) -> str:
    for value in secret_values(environ):
        text = text.replace(value, MASK)
    text = _SECRET_QUERY_VALUE.sub(lambda m: f"{m['key']}{MASK}", text)  # ?signature=…
    return _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)


def redact_url(url: str) -> str:
    """A URL safe to print and store: no password, no secret-looking query values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return mask(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{user}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, MASK if _SECRET_QUERY_KEYS.search(k) else v) for k, v in pairs], safe=":/*"
        )
    return mask(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


def redact_argv(argv: list[str]) -> list[str]:
    return [redact_url(arg) if "://" in arg else mask(arg) for arg in argv]
