"""Where the paper exchange gets its prices.

- `ReplayPrices`: an OHLCV file (CSV, gzipped CSV or Parquet) read by DuckDB and replayed on
  the paper clock (`qtrader clock`). Columns: `symbol` (exchange id, BTCUSDT), `ts` (the
  candle's open time: a timestamp, ISO text or epoch milliseconds), `open`, `high`, `low`,
  `close`, and optionally `funding_rate` (set on the candles at funding times).
- `LivePrices`: Binance's public market data through ccxt (mark prices, order book, 1-minute
  candles, funding history), no keys; the clock is the wall clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from qtrader.clock import from_ms, to_ms
from qtrader.domain.matching import Candle
from qtrader.errors import ConfigError
from qtrader.exchange.port import ExchangeUnavailable
from qtrader.store import Store
from qtrader.store.state import get_state, set_state

CLOCK_KEY = "paper:clock"
REQUIRED_COLUMNS = ("symbol", "ts", "open", "high", "low", "close")


class PriceSource(Protocol):
    label: str
    replay: bool

    def markets(self) -> list[dict[str, Any]] | None: ...  # None: the bundled snapshot
    def mark_prices(self, at: datetime) -> dict[str, Decimal]: ...
    def book(self, symbol: str, side: str) -> list[tuple[Decimal, Decimal]] | None: ...
    def candles(self, symbol: str, start: datetime, end: datetime) -> list[Candle]: ...
    def funding(
        self, symbol: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, Decimal, Decimal]]: ...


class ReplayPrices:
    """Candles from a file; a candle counts as known once it has closed (open time plus the
    bar interval at or before the clock)."""

    replay = True

    def __init__(self, store: Store, path: str) -> None:
        self.store = store
        self.path = Path(path).expanduser()
        self.label = f"replay of {path}"
        self._load()
        self.interval = self._interval()

    def _load(self) -> None:
        if not self.path.is_file():
            raise ConfigError(
                f"[paper] prices: no OHLCV file at {self.path} (use `live` or a .csv/.parquet)"
            )
        reader = "read_parquet" if self.path.suffix == ".parquet" else "read_csv"
        source = f"{reader}(?)"
        try:
            described = self.store.fetchall(f"DESCRIBE SELECT * FROM {source}", [str(self.path)])
        except Exception as exc:
            raise ConfigError(f"[paper] prices: cannot read {self.path}: {exc}") from None
        types = {row[0].lower(): row[1] for row in described}
        missing = [c for c in REQUIRED_COLUMNS if c not in types]
        if missing:
            raise ConfigError(
                f"[paper] prices: {self.path} lacks column(s) {', '.join(missing)} "
                f"(needs {', '.join(REQUIRED_COLUMNS)}, optional funding_rate)"
            )
        if reader == "read_csv":  # text → DECIMAL exactly (no detour through a double)
            source = "read_csv(?, all_varchar = true)"
        numeric_ts = types["ts"] in ("BIGINT", "INTEGER", "HUGEINT", "UBIGINT", "DOUBLE")
        ts = "epoch_ms(CAST(ts AS BIGINT))" if numeric_ts else "CAST(ts AS TIMESTAMP)"
        funding = "CAST(funding_rate AS DECIMAL(18, 10))" if "funding_rate" in types else "NULL"
        price = "CAST({} AS DECIMAL(38, 12))"
        self.store.execute(
            "CREATE OR REPLACE TEMP TABLE paper_candles AS SELECT upper(symbol) AS symbol, "
            f"{ts} AS ts, {price.format('open')} AS open, {price.format('high')} AS high, "
            f"{price.format('low')} AS low, {price.format('close')} AS close, "
            f"{funding} AS funding_rate FROM {source} ORDER BY symbol, ts",
            [str(self.path)],
        )

    def _interval(self) -> timedelta:
        row = self.store.fetchone(
            "SELECT min(d) FROM (SELECT ts - lag(ts) OVER (PARTITION BY symbol ORDER BY ts) AS d "
            "FROM paper_candles) WHERE d > INTERVAL 0 SECOND"
        )
        return row[0] if row and row[0] is not None else timedelta(minutes=1)

    def span(self) -> tuple[datetime, datetime]:
        """When the data starts, and when its last candle closes."""
        first, last = self.store.fetchone("SELECT min(ts), max(ts) FROM paper_candles") or (None,)
        if first is None:
            raise ConfigError(f"[paper] prices: {self.path} has no candles")
        return first, last + self.interval

    def markets(self) -> list[dict[str, Any]] | None:
        return None  # a file has no market rules: the bundled exchangeInfo snapshot applies

    def mark_prices(self, at: datetime) -> dict[str, Decimal]:
        rows = self.store.fetchall(
            "SELECT symbol, arg_max(close, ts) FROM paper_candles WHERE ts + ? <= ? "
            "GROUP BY symbol",
            [self.interval, at],
        )
        return {symbol: _dec(close) for symbol, close in rows}

    def book(self, symbol: str, side: str) -> list[tuple[Decimal, Decimal]] | None:
        return None  # candles carry no book: market orders pay the slippage model

    def candles(self, symbol: str, start: datetime, end: datetime) -> list[Candle]:
        rows = self.store.fetchall(
            "SELECT ts, open, high, low, close, funding_rate FROM paper_candles "
            "WHERE symbol = ? AND ts >= ? AND ts + ? <= ? ORDER BY ts",
            [symbol, start, self.interval, end],
        )
        return [Candle(symbol, r[0], *(_dec(v) for v in r[1:5]), _opt(r[5])) for r in rows]

    def funding(
        self, symbol: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, Decimal, Decimal]]:
        """(time, rate, mark) at each funding time in (start, end]: the candle opening then."""
        rows = self.store.fetchall(
            "SELECT ts, funding_rate, open FROM paper_candles WHERE symbol = ? "
            "AND funding_rate IS NOT NULL AND ts > ? AND ts <= ? ORDER BY ts",
            [symbol, start, end],
        )
        return [(ts, _dec(rate), _dec(mark)) for ts, rate, mark in rows]


def replay_clock(store: Store, prices_path: str) -> datetime:
    """The paper clock; a new one starts when the data's first candle has closed."""
    stored = get_state(store, CLOCK_KEY)
    if stored is not None:
        return datetime.fromisoformat(stored)
    prices = ReplayPrices(store, prices_path)
    start = prices.span()[0] + prices.interval
    set_state(store, CLOCK_KEY, start.isoformat())
    return start


def set_replay_clock(store: Store, moment: datetime) -> None:
    set_state(store, CLOCK_KEY, moment.isoformat())


class LivePrices:
    """Binance's public market data (no keys; the client never sends an order)."""

    replay = False

    def __init__(self, client: Any) -> None:
        self.client = client  # a BinanceUsdm used for public reads only
        self.label = f"live prices from {client.host}"
        self._marks: dict[str, Decimal] | None = None

    def markets(self) -> list[dict[str, Any]]:
        return self._hinted(self.client.fetch_markets)

    def mark_prices(self, at: datetime) -> dict[str, Decimal]:
        if self._marks is None:  # one request per run
            self._marks = self._hinted(self.client.mark_prices)
        return self._marks

    def book(self, symbol: str, side: str) -> list[tuple[Decimal, Decimal]] | None:
        book = self._get("fapiPublicGetDepth", {"symbol": symbol})
        levels = book.get("asks" if side == "BUY" else "bids") or []
        return [(Decimal(str(p)), Decimal(str(q))) for p, q in levels] or None

    def candles(self, symbol: str, start: datetime, end: datetime) -> list[Candle]:
        """Every closed 1-minute kline in [start, end), a page of 1500 at a time."""
        found: list[Candle] = []
        cursor = start
        while cursor < end:
            rows = self._get(
                "fapiPublicGetKlines",
                {"symbol": symbol, "interval": "1m", "startTime": to_ms(cursor), "limit": 1500},
            )
            for row in rows:
                opened = from_ms(row[0])
                if opened >= cursor and opened + timedelta(minutes=1) <= end:
                    found.append(Candle(symbol, opened, *(Decimal(str(v)) for v in row[1:5])))
            if len(rows) < 1500:
                break
            cursor = from_ms(rows[-1][0]) + timedelta(minutes=1)
        return found

    def funding(
        self, symbol: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, Decimal, Decimal]]:
        rows = self._get(
            "fapiPublicGetFundingRate", {"symbol": symbol, "startTime": to_ms(start) + 1}
        )
        found = []
        for row in rows:
            moment = from_ms(row["fundingTime"])
            if start < moment <= end and row.get("markPrice") not in (None, ""):
                found.append((moment, Decimal(row["fundingRate"]), Decimal(row["markPrice"])))
        return found

    def _get(self, endpoint: str, params: dict[str, Any]) -> Any:
        """One of ccxt's implicit public endpoints, e.g. fapiPublicGetDepth."""
        return self._hinted(
            lambda: self.client.public_read(lambda ccxt: getattr(ccxt, endpoint)(params))
        )

    def _hinted(self, call: Any) -> Any:
        try:
            return call()
        except ExchangeUnavailable as exc:
            raise ExchangeUnavailable(
                f"{exc}; paper mode with live prices needs Binance's public market data. "
                "Offline, set [paper] prices to an OHLCV file (or run `qtrader demo`)"
            ) from None


def _dec(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _opt(value: Any) -> Decimal | None:
    return None if value is None else _dec(value)
