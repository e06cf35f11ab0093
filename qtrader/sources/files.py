"""Files (.jsonl, .json, .csv) and standard input."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import BinaryIO

from qtrader.domain.signal import RawRecord
from qtrader.errors import UsageError
from qtrader.sources import Batch, CursorReader, Source
from qtrader.sources.documents import records_from_document, records_from_lines

BATCH_SIZE = 5000
JSONL_SUFFIXES = (".jsonl", ".ndjson")


def file_source(path: Path) -> Source:
    if not path.is_file():
        raise UsageError(f"signal file {path} does not exist (or is not a file); check --from")
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return JsonLinesFile(path)
    if suffix == ".json":
        return JsonFile(path)
    if suffix == ".csv":
        return CsvFile(path, _csv_header_delimiter(path))
    raise UsageError(
        f"cannot tell the format of {path}: name it .jsonl, .json or .csv, or pipe it to --from -"
    )


def _chunked(records: Iterator[RawRecord]) -> Iterator[Batch]:
    while chunk := list(islice(records, BATCH_SIZE)):
        yield Batch(chunk)


@dataclass
class JsonLinesFile:
    path: Path

    @property
    def label(self) -> str:
        return str(self.path)

    def batches(self, read_cursor: CursorReader) -> Iterator[Batch]:
        with self.path.open("rb") as handle:
            yield from _chunked(records_from_lines(handle, self.label))


@dataclass
class JsonFile:
    path: Path

    @property
    def label(self) -> str:
        return str(self.path)

    def batches(self, read_cursor: CursorReader) -> Iterator[Batch]:
        yield from _chunked(iter(records_from_document(self.path.read_bytes(), self.label)))


@dataclass
class CsvFile:
    path: Path
    delimiter: str = ","

    @property
    def label(self) -> str:
        return str(self.path)

    def batches(self, read_cursor: CursorReader) -> Iterator[Batch]:
        # surrogateescape keeps undecodable bytes as evidence; the validator rejects them.
        # utf-8-sig drops a leading byte order mark.
        with self.path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
            yield from _chunked(self._records(handle, self.delimiter))

    def _records(self, handle: io.TextIOBase, delimiter: str) -> Iterator[RawRecord]:
        reader = csv.DictReader(handle, restkey="__extra__", delimiter=delimiter)
        header = reader.fieldnames or []
        for row in reader:
            location = f"{self.label}:{reader.line_num}"
            extra = row.pop("__extra__", None)
            if extra is not None:
                text = delimiter.join([*(str(v) for v in row.values()), *extra])
                yield RawRecord(
                    location=location,
                    payload=text,
                    defect=f"CSV row has {len(header) + len(extra)} fields; "
                    f"the header has {len(header)}",
                )
                continue
            yield RawRecord(location=location, data={k: v for k, v in row.items() if v})


CSV_DELIMITERS = (",", ";", "\t", "|")
CSV_FIELDS = ("symbol", "side", "action")  # a header names at least one of these


def _csv_header_delimiter(path: Path) -> str:
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        return csv_delimiter(handle.readline(), str(path))


def csv_delimiter(header: str, label: str) -> str:
    """The delimiter of a CSV file, from its header line: the one of `, ; TAB |` that splits it
    into names qtrader knows. A header it cannot read is a usage error that shows it."""
    for delimiter in CSV_DELIMITERS:
        names = {name.strip().strip('"').lower() for name in header.split(delimiter)}
        if names & set(CSV_FIELDS):
            return delimiter
    shown = header.strip()[:80]
    raise UsageError(
        f"{label}: cannot read the CSV header {shown!r}: expected column names such as "
        "symbol,side,position_size_usd separated by one of , ; TAB |; fix the header line"
    )


@dataclass
class StdinSource:
    stream: BinaryIO
    label: str = "stdin"

    def batches(self, read_cursor: CursorReader) -> Iterator[Batch]:
        yield from _chunked(iter(records_from_document(self.stream.read(), self.label)))
