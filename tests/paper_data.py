"""Candle files for paper-mode tests: flat prices with a few hand-written bars."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

START = datetime(2026, 11, 20, 9, 0)


def write_candles(
    path: Path,
    flat: dict[str, str],
    bars: dict[tuple[str, str], tuple[str, str, str, str]] | None = None,
    funding: dict[tuple[str, str], str] | None = None,
    minutes: int = 120,
) -> Path:
    """`minutes` 1-minute bars per symbol from 09:00, each o=h=l=c=`flat[symbol]`, except
    `bars[(symbol, "HH:MM")]` = (open, high, low, close); `funding[(symbol, "HH:MM")]` sets
    that bar's funding rate."""
    bars, funding = bars or {}, funding or {}
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["symbol", "ts", "open", "high", "low", "close", "funding_rate"])
        for symbol, price in flat.items():
            for minute in range(minutes):
                ts = START + timedelta(minutes=minute)
                key = (symbol, f"{ts:%H:%M}")
                o, h, low, c = bars.get(key, (price, price, price, price))
                writer.writerow([symbol, f"{ts:%Y-%m-%d %H:%M:%S}", o, h, low, c,
                                 funding.get(key, "")])  # fmt: skip
    return path
