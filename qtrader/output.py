"""Step results and the one function that renders them (table or one JSON document)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TextIO

from qtrader.domain.numbers import plain
from qtrader.errors import ExitCode

MODE_LABELS = {"paper": "PAPER", "testnet": "TESTNET", "live": "LIVE"}
EXCHANGE_LABELS = {"binanceusdm": "Binance", "bybit": "Bybit", "okx": "OKX"}


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str | None = None  # printed under the table, e.g. "… and 12 more"


@dataclass
class Result:
    data: dict[str, Any]
    tables: list[Table] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    exit_code: ExitCode = ExitCode.OK
    outcome: str = "ok"
    error: str | None = None  # set when exit_code != 0 though the step itself completed
    summary: dict[str, Any] | None = None  # kept in runs.summary (small: counts, not lists)


def mode_label(mode: str | None, exchange: str | None = "binanceusdm") -> str:
    """`TESTNET (Bybit demo trading)`, `LIVE (Binance)`, `PAPER`: the mode, with the exchange."""
    label = MODE_LABELS.get(mode or "", str(mode).upper())
    venue = EXCHANGE_LABELS.get(exchange or "", exchange)
    if mode == "testnet" and venue:
        return f"{label} ({venue} demo trading)"
    if mode == "live" and venue:
        return f"{label} ({venue})"
    return label


def render(result: Result, header: dict[str, Any], as_json: bool, out: TextIO) -> None:
    if as_json:
        document = {
            **header,
            "ok": result.exit_code == ExitCode.OK,
            "exit_code": int(result.exit_code),
        }
        if result.error:
            document["error"] = result.error
        document.update(result.data)
        out.write(json.dumps(document, default=_json_default, ensure_ascii=False) + "\n")
        return
    label = mode_label(header.get("mode"), header.get("exchange_name"))
    parts = [f"qtrader {header['command']}", f"mode {label}"]
    if header.get("run_id") is not None:
        parts.append(f"run {header['run_id']}")
    out.write(" · ".join(parts) + "\n")
    for line in result.lines:
        out.write(line + "\n")
    for table in result.tables:
        out.write("\n" + format_table(table))


def render_error(
    message: str, code: int, header: dict[str, Any], as_json: bool, out: TextIO
) -> None:
    """Errors go to stderr as one line; with --json stdout still gets its one document."""
    if as_json:
        document = {**header, "ok": False, "exit_code": code, "error": message}
        out.write(json.dumps(document, default=_json_default, ensure_ascii=False) + "\n")


def format_table(table: Table) -> str:
    cells = [[_cell(v) for v in row] for row in table.rows]
    widths = [len(c) for c in table.columns]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = [table.title]
    if not cells:
        lines.append("  (none)")
    else:
        lines.append(
            "  " + "  ".join(c.ljust(w) for c, w in zip(table.columns, widths, strict=True))
        )
        for row in cells:
            lines.append("  " + "  ".join(_align(c, w) for c, w in zip(row, widths, strict=True)))
    if table.note:
        lines.append("  " + table.note)
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _align(cell: str, width: int) -> str:
    return cell.rjust(width) if _looks_numeric(cell) else cell.ljust(width)


def _looks_numeric(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, Decimal):
        return str(plain(value))
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat() + ("Z" if value.tzinfo is None else "")
    if isinstance(value, Decimal):
        return str(plain(value))  # DuckDB's DECIMAL(38,18) without its 18 trailing zeros
    return str(value)
