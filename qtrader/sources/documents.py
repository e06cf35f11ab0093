"""Framing shared by every source: a JSON document, or JSON lines."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from qtrader.domain.signal import RawRecord

LIST_KEYS = ("signals", "intents", "data")  # {"signals": [...]} wrappers
BOM = b"\xef\xbb\xbf"  # UTF-8 byte order mark, as Windows editors write it


def records_from_lines(
    lines: Iterable[bytes], label: str, first_line: int = 1
) -> Iterator[RawRecord]:
    """One record per non-blank line, located as label:line; a leading BOM is dropped."""
    for number, line in enumerate(lines, start=first_line):
        if number == 1:
            line = line.removeprefix(BOM)
        if line.strip():
            yield RawRecord(location=f"{label}:{number}", payload=line.rstrip(b"\r\n"))


def records_from_document(data: bytes, label: str) -> list[RawRecord]:
    """A JSON array or object (or an object wrapping a list); else JSON lines.

    Elements are re-serialised one by one so that a bad element (a NaN, a wrong type)
    is rejected on its own and the good ones still count.
    """
    data = data.removeprefix(BOM)
    document = _lenient_json(data)
    if document is _NOT_JSON:
        if data.count(b"\n") > 0:
            return list(records_from_lines(data.splitlines(), label))
        return [RawRecord(location=label, payload=data)]
    if isinstance(document, dict):
        for key in LIST_KEYS:
            if isinstance(document.get(key), list):
                return _elements(document[key], f"{label}:{key}")
        return [RawRecord(location=label, payload=data)]
    if isinstance(document, list):
        return _elements(document, label)
    return [RawRecord(location=label, payload=data)]


def _elements(items: list[Any], label: str) -> list[RawRecord]:
    return [
        RawRecord(location=f"{label}[{index}]", payload=json.dumps(item, ensure_ascii=False))
        for index, item in enumerate(items)
    ]


_NOT_JSON = object()


def _lenient_json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return _NOT_JSON
