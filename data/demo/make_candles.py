"""Generate the demo's 1-minute candles: `python data/demo/make_candles.py` rewrites
`data/demo/candles.csv.gz` byte for byte (fixed seed, fixed gzip header).

The prices are synthetic, not market history: for each symbol a seeded random walk is pinned
(a Brownian bridge) to a few anchor prices, chosen so that the sample signals in
`data/sample_signals.jsonl` meet their fates over three days: the BTC long reaches its
take-profit, the ETH short its take-profit, the SOL long its stop-loss, and the BNB long is
still open at the end. Funding rates are set on the 00:00, 08:00 and 16:00 UTC candles.
Standard library only, so it runs anywhere.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import math
import random
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

START = datetime(2026, 11, 20)
HOURS = 72
SEED = 20261120
OUT = Path(__file__).with_name("candles.csv.gz")

# symbol: (tick size, per-minute volatility, [(hour, price), ...]); 09:00 is the signals' price
ANCHORS = {
    "BTCUSDT": (
        "0.1",
        0.0004,
        [(0, 95900), (9, 96250), (20, 97400), (30, 96600), (40, 100400), (50, 99800), (72, 98900)],
    ),
    "ETHUSDT": (
        "0.01",
        0.0005,
        [(0, 3505), (9, 3520.5), (16, 3490), (28, 3450), (36, 3370), (50, 3400), (72, 3420)],
    ),
    "SOLUSDT": (
        "0.01",
        0.0006,
        [(0, 142.2), (9, 143.0), (14, 142.4), (22, 139.6), (40, 141), (72, 144)],
    ),
    "BNBUSDT": ("0.01", 0.0004, [(0, 930), (9, 935.29), (30, 948), (50, 940), (72, 952)]),
    "XRPUSDT": ("0.0001", 0.0005, [(0, 2.05), (9, 2.07), (72, 2.10)]),
}
FUNDING_RATES = {
    "BTCUSDT": 0.0001,
    "ETHUSDT": 0.0001,
    "SOLUSDT": -0.00005,
    "BNBUSDT": 0.0001,
    "XRPUSDT": 0.00008,
}


def bridge(rng: random.Random, start: float, end: float, minutes: int, vol: float) -> list[float]:
    """Log-prices from `start` to `end` in `minutes` steps: a random walk pinned at both ends."""
    steps = [rng.gauss(0, vol) for _ in range(minutes)]
    walk, total = [0.0], 0.0
    for step in steps:
        total += step
        walk.append(total)
    drift = math.log(end / start)
    return [
        start * math.exp(w - walk[-1] * i / minutes + drift * i / minutes)
        for i, w in enumerate(walk)
    ]


def path(rng: random.Random, vol: float, anchors: list[tuple[int, float]]) -> list[float]:
    points = [float(anchors[0][1])]
    for (h0, p0), (h1, p1) in itertools.pairwise(anchors):
        points += bridge(rng, p0, p1, (h1 - h0) * 60, vol)[1:]
    return points


def candles(symbol: str, rng: random.Random) -> list[list[str]]:
    tick, vol, anchors = ANCHORS[symbol]
    step = Decimal(tick)
    prices = path(rng, vol, anchors)
    rows = []
    for minute in range(HOURS * 60):
        opened, closed = prices[minute], prices[minute + 1]
        high = max(opened, closed) * (1 + abs(rng.gauss(0, vol / 2)))
        low = min(opened, closed) * (1 - abs(rng.gauss(0, vol / 2)))
        ts = START + timedelta(minutes=minute)
        funding = FUNDING_RATES[symbol] if ts.minute == 0 and ts.hour % 8 == 0 else None
        rows.append(
            [
                symbol,
                ts.strftime("%Y-%m-%d %H:%M:%S"),
                *(str(Decimal(repr(v)).quantize(step)) for v in (opened, high, low, closed)),
                f"{funding:.8f}" if funding is not None else "",
            ]
        )
    return rows


def main() -> None:
    rng = random.Random(SEED)  # noqa: S311 -- reproducible data, not secrets
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["symbol", "ts", "open", "high", "low", "close", "funding_rate"])
    for symbol in ANCHORS:
        writer.writerows(candles(symbol, rng))
    with OUT.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        out.write(text.getvalue().encode())
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
