"""Signal sources: where raw records come from. They parse nothing beyond framing.

A source yields `Batch`es of `RawRecord`s. A batch may carry a cursor (state key, value)
that the step commits in the same transaction as the batch's signals, which makes a
checkpointed source (a Redis Stream) exactly-once: a crash before the commit re-reads
the batch, and the signal-id dedupe absorbs anything read twice.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from qtrader.config import SignalsSettings
from qtrader.domain.signal import RawRecord
from qtrader.errors import UsageError

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
HTTP_SCHEMES = ("http://", "https://")


@dataclass(frozen=True)
class Batch:
    records: list[RawRecord]
    cursor: tuple[str, str] | None = None  # (state key, new value)


CursorReader = Callable[[str], "str | None"]


class Source(Protocol):
    label: str  # how the source is named in output and in signals.source (secrets masked)

    def batches(self, read_cursor: CursorReader) -> Iterator[Batch]: ...


def open_source(spec: str, settings: SignalsSettings, stdin: BinaryIO | None = None) -> Source:
    if spec == "-":
        from qtrader.sources.files import StdinSource

        return StdinSource(stdin or sys.stdin.buffer)
    lowered = spec.lower()
    if lowered.startswith(REDIS_SCHEMES):
        from qtrader.sources.redis_source import redis_source

        return redis_source(spec, settings)
    if lowered.startswith(HTTP_SCHEMES):
        from qtrader.sources.http import HttpSource

        return HttpSource(spec, settings)
    if "://" in spec:
        raise UsageError(
            f"unsupported source {spec!r}; use a file path, '-', redis://…?stream=NAME, "
            "redis://…?key=NAME or an http(s):// URL"
        )
    from qtrader.sources.files import file_source

    return file_source(Path(spec))
