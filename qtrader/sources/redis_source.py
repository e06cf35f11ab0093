"""Redis: a Stream read from a checkpoint (`?stream=NAME`), or a JSON list key (`?key=NAME`).

`redis://host:port/db` with neither reads the seeds' stream `quantum:stream:trade.intent`.
Stream entries are flat fields (`symbol=BTCUSDT side=BUY …`) or one field holding a JSON
object. The checkpoint is the last entry id read, stored in DuckDB with the signals.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from qtrader.config import SignalsSettings
from qtrader.domain.signal import RawRecord
from qtrader.errors import SourceUnavailable, UsageError
from qtrader.secrets import redact_url
from qtrader.sources import Batch, CursorReader, Source
from qtrader.sources.documents import records_from_document
from qtrader.store.state import cursor_key

DEFAULT_STREAM = "quantum:stream:trade.intent"
_OUR_PARAMS = ("stream", "key")


def redis_source(spec: str, settings: SignalsSettings) -> Source:
    parts = urlsplit(spec)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    stream, key = params.pop("stream", None), params.pop("key", None)
    if stream is not None and key is not None:
        raise UsageError(f"{redact_url(spec)}: give ?stream=NAME or ?key=NAME, not both")
    if (stream, key) == (None, None):
        stream = DEFAULT_STREAM
    if stream == "" or key == "":
        raise UsageError(f"{redact_url(spec)}: the stream or key name is empty")
    connect_url = urlunsplit(parts._replace(query=urlencode(params)))
    base = _Redis(connect_url, settings.redis_timeout_s)
    if key is not None:
        return RedisKey(base, key)
    assert stream is not None
    return RedisStream(base, stream, settings.redis_batch)


@dataclass
class _Redis:
    url: str
    timeout_s: Decimal

    @property
    def safe_url(self) -> str:
        return redact_url(self.url)

    def client(self) -> Any:
        try:
            import redis
        except ImportError:
            raise UsageError(
                "Redis sources need the redis package: pip install 'qtrader[redis]'"
            ) from None
        timeout = float(self.timeout_s)
        return redis.Redis.from_url(
            self.url, socket_timeout=timeout, socket_connect_timeout=timeout
        )

    @contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """Turn redis-py exceptions into qtrader's, without leaking a password."""
        import redis

        try:
            yield
        except redis.ResponseError as exc:
            raise UsageError(f"{self.safe_url}: {what} failed: {exc}") from None
        except redis.RedisError as exc:
            raise SourceUnavailable(
                f"cannot read {what} from Redis at {self.safe_url}: {exc}; "
                "check that redis-server is running and the URL is right"
            ) from None


@dataclass
class RedisStream:
    redis: _Redis
    stream: str
    batch_size: int

    @property
    def label(self) -> str:
        return f"{self.redis.safe_url}?stream={self.stream}"

    @property
    def cursor_key(self) -> str:
        return cursor_key(self.label)

    def batches(self, read_cursor: CursorReader) -> Iterator[Batch]:
        last = read_cursor(self.cursor_key)
        with self.redis.errors(f"stream {self.stream}"):
            client = self.redis.client()
            while True:
                low = f"({last}" if last else "-"
                entries = client.xrange(self.stream, min=low, max="+", count=self.batch_size)
                if not entries:
                    return
                last = _text(entries[-1][0])
                records = [self._record(_text(eid), fields) for eid, fields in entries]
                yield Batch(records, cursor=(self.cursor_key, last))
                if len(entries) < self.batch_size:
                    return

    def _record(self, entry_id: str, fields: dict[bytes, bytes]) -> RawRecord:
        location = f"{self.label}#{entry_id}"
        identity = f"{self.stream}/{entry_id}"
        if len(fields) == 1:
            (value,) = fields.values()
            if value.lstrip().startswith(b"{"):
                return RawRecord(location=location, payload=value, entry_id=identity)
        try:
            data = {k.decode("utf-8"): v.decode("utf-8") for k, v in fields.items()}
        except UnicodeDecodeError:
            flat = b" ".join(k + b"=" + v for k, v in fields.items())
            return RawRecord(location=location, payload=flat, entry_id=identity)
        return RawRecord(location=location, data=data, entry_id=identity)


@dataclass
class RedisKey:
    redis: _Redis
    key: str

    @property
    def label(self) -> str:
        return f"{self.redis.safe_url}?key={self.key}"

    def batches(self, read_cursor: CursorReader) -> Iterator[Batch]:
        with self.redis.errors(f"key {self.key}"):
            client = self.redis.client()
            kind = _text(client.type(self.key))
            if kind == "none":
                return
            if kind == "string":
                yield Batch(records_from_document(client.get(self.key), self.label))
            elif kind == "list":
                items = client.lrange(self.key, 0, -1)
                yield Batch(
                    [
                        RawRecord(location=f"{self.label}[{i}]", payload=item)
                        for i, item in enumerate(items)
                    ]
                )
            else:
                raise UsageError(
                    f"{self.label}: the key holds a Redis {kind}; expected a string with a "
                    "JSON list, or a list of JSON objects"
                )


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


@dataclass
class StreamWatch:
    """`qtrader run` between ticks: wait for a new entry on the stream (a blocking XREAD that
    reads past the last entry seen before the tick, and consumes nothing; pull-signals reads
    from its own checkpoint). Redis down: it sleeps until the next tick instead."""

    source: RedisStream
    block_s: float = 1.0  # how often a stop request is looked at while blocked

    def __post_init__(self) -> None:
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            import redis

            timeout = float(self.source.redis.timeout_s)
            self._client = redis.Redis.from_url(
                self.source.redis.url,
                socket_timeout=self.block_s + max(timeout, 1.0),
                socket_connect_timeout=timeout,
            )
        return self._client

    def mark(self) -> str | None:
        """The stream's last entry id now ("0-0" when empty); None when Redis cannot say."""
        import redis

        try:
            last = self.client().xrevrange(self.source.stream, count=1)
        except redis.RedisError:
            return None
        return _text(last[0][0]) if last else "0-0"

    def wait(self, until: float, mark: str | None, stopped: Any) -> None:
        """Until the monotonic time `until`, a stop, or an entry after `mark`."""
        import time

        import redis

        while not stopped() and (left := until - time.monotonic()) > 0:
            chunk = min(left, self.block_s)
            if mark is None:
                time.sleep(min(chunk, 0.2))
                continue
            try:
                got = self.client().xread(
                    {self.source.stream: mark}, count=1, block=max(int(chunk * 1000), 1)
                )
            except redis.RedisError:
                time.sleep(min(chunk, 0.2))
                continue
            if got:
                return
