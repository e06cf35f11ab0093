"""HTTP(S): GET a JSON document (array, object, or {"signals": [...]}) or JSON lines.

Connection errors, timeouts and 5xx are retried with exponential back-off (tenacity);
a 4xx is not retried. The body is read up to `signals.http_max_bytes`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import requests
import tenacity

from qtrader import __version__
from qtrader.config import SignalsSettings
from qtrader.errors import SourceUnavailable
from qtrader.network import describe_network_failure
from qtrader.secrets import redact_url
from qtrader.sources import Batch, CursorReader
from qtrader.sources.documents import records_from_document


class _Transient(Exception):
    """A failure worth another attempt."""


@dataclass
class HttpSource:
    url: str
    settings: SignalsSettings

    @property
    def label(self) -> str:
        return redact_url(self.url)

    def batches(self, read_cursor: CursorReader) -> Iterator[Batch]:
        yield Batch(records_from_document(self.fetch(), self.label))

    def fetch(self) -> bytes:
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.settings.http_retries),
            wait=tenacity.wait_exponential(
                multiplier=float(self.settings.http_retry_wait_s), max=30
            ),
            retry=tenacity.retry_if_exception_type(_Transient),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._get_once()
        except _Transient as exc:
            raise SourceUnavailable(
                f"cannot fetch signals from {self.label} after "
                f"{self.settings.http_retries} attempts: {exc}"
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _get_once(self) -> bytes:
        timeout = float(self.settings.http_timeout_s)
        headers = {"Accept": "application/json", "User-Agent": f"qtrader/{__version__}"}
        try:
            with requests.get(self.url, timeout=timeout, headers=headers, stream=True) as resp:
                if resp.status_code >= 500:
                    raise _Transient(f"HTTP {resp.status_code}")
                if resp.status_code >= 400:
                    raise SourceUnavailable(
                        f"{self.label} answered HTTP {resp.status_code} {resp.reason}; "
                        "check the URL and any credentials"
                    )
                return self._read_limited(resp)
        except (requests.ConnectionError, requests.Timeout) as exc:
            why = describe_network_failure(
                exc, self.url, "the --from URL", "QTRADER_SIGNALS_HTTP_TIMEOUT_S"
            )
            raise _Transient(why or type(exc).__name__) from None

    def _read_limited(self, resp: requests.Response) -> bytes:
        limit = self.settings.http_max_bytes
        body = bytearray()
        for chunk in resp.iter_content(chunk_size=65536):
            body.extend(chunk)
            if len(body) > limit:
                raise SourceUnavailable(
                    f"{self.label}: response is larger than {limit} bytes "
                    "(signals.http_max_bytes); is this the right URL?"
                )
        return bytes(body)
