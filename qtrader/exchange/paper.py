"""The paper exchange: an honest simulator behind the same Exchange port as Binance.

Its books (orders, fills, income ledger, positions) live in DuckDB tables `paper_*`, so each
stateless run continues where the last stopped, and qtrader's own records are filled in from
it by the same steps that read Binance. It applies Binance's rules, answering with Binance's
codes: unknown symbol (-1121), quantity or price off the step/tick (-1111), quantity below
the minimum (-4003), notional below the minimum unless reduce-only (-4164), margin
insufficient (-2019), reduce-only with nothing to reduce (-2022), a trigger that would fire
at once (-2021), a client id already open (-4116).

Market orders walk the order book when the price source has one, else pay the slippage
model (`[paper] slippage_bps` + `impact_bps_per_10k`); every fill pays the taker fee.
Resting stops and targets fire against the candles since the exchange last caught up (see
`qtrader.domain.matching` for the rules), and open positions pay or receive funding at the
funding times the price source knows. Not simulated: liquidation, partial fills, hedge mode,
limit orders (qtrader sends none).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from importlib import resources
from typing import Any

from qtrader.clock import to_ms
from qtrader.config import PaperSettings
from qtrader.domain import matching
from qtrader.domain.market import MarketRules, rules_from_binance
from qtrader.domain.numbers import plain
from qtrader.domain.orders import BINANCE_STATUS, Refusal
from qtrader.exchange.codes import BINANCE, BINANCE_FIXES, refusal_of
from qtrader.exchange.port import (
    Account,
    ExchangeRejected,
    Fill,
    IncomeRow,
    OrderReport,
    OrderRequest,
    PositionDetail,
    PositionInfo,
)
from qtrader.exchange.prices import PriceSource
from qtrader.store import Store
from qtrader.store.state import get_state, set_state

DEFAULT_LEVERAGE = 20  # Binance's default for a symbol never set
CAUGHT_UP_KEY = "paper:caught_up_to"
# paper_orders columns, named as Binance names them in its order answers
_ORDER_KEYS = (
    *("orderId", "clientOrderId", "symbol", "side", "kind", "conditional", "quantity"),
    *("triggerPrice", "reduceOnly", "status", "executedQty", "avgPrice", "time", "note"),
)
_TYPES = {"market": "MARKET", "stop_loss": "STOP_MARKET", "take_profit": "TAKE_PROFIT_MARKET"}


def bundled_markets() -> list[dict[str, Any]]:
    """The USDⓈ-M perpetuals of the bundled exchangeInfo snapshot, shaped as ccxt markets."""
    text = resources.files(__package__).joinpath("binance_exchange_info.json").read_text()
    markets = []
    for entry in json.loads(text)["symbols"]:
        if entry.get("contractType") != "PERPETUAL":
            continue
        base, quote = entry["baseAsset"], entry["quoteAsset"]
        markets.append(
            {
                "id": entry["symbol"],
                "symbol": f"{base}/{quote}:{entry['marginAsset']}",
                "linear": True,
                "swap": True,
                "info": entry,
            }
        )
    return markets


class PaperExchange:
    name = "paper"  # Binance's rules, simulated

    def __init__(
        self,
        store: Store,
        settings: PaperSettings,
        prices: PriceSource,
        now: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.settings = settings
        self.prices = prices
        self.now = now
        self._rules: dict[str, MarketRules] = {}
        self._journal: list[dict[str, Any]] = []
        self._ready = False
        self._last_ts: int | None = None  # the latest ledger time written (ms)

    @property
    def host(self) -> str:
        return f"PAPER ({self.prices.label})"

    # --- markets and account -------------------------------------------------------------

    def fetch_markets(self) -> list[dict[str, Any]]:
        markets = self.prices.markets()
        return markets if markets is not None else bundled_markets()

    def use_markets(self, markets: list[dict[str, Any]]) -> dict[str, MarketRules]:
        self._rules = {
            m["id"]: rules_from_binance(m["symbol"], m.get("info") or {}) for m in markets
        }
        return self._rules

    def market_rules(self, symbol: str) -> MarketRules | None:
        if not self._rules:
            self.use_markets(self.fetch_markets())
        return self._rules.get(symbol)

    def sync_clock(self) -> int:
        return 0  # the paper exchange keeps the paper clock itself

    def hedge_mode(self) -> bool:
        return False  # paper is one-way

    def account(self) -> Account:
        self._prepare()
        wallet = self._wallet()
        marks = self.mark_prices()
        positions, unrealized, margin = [], Decimal(0), Decimal(0)
        for symbol, qty, entry, leverage in self._positions():
            mark = marks.get(symbol, entry)
            unrealized += (mark - entry) * qty
            margin += abs(qty) * entry / leverage
            side = "BUY" if qty > 0 else "SELL"
            positions.append(PositionInfo(symbol, side, abs(qty), "BOTH", abs(qty) * mark))
        equity = wallet + unrealized
        return Account(wallet, equity, max(equity - margin, Decimal(0)), positions)

    def mark_prices(self) -> dict[str, Decimal]:
        return self.prices.mark_prices(self.now())

    def position_details(self) -> list[PositionDetail]:
        self._prepare()
        marks = self.mark_prices()
        details = []
        for symbol, qty, entry, _ in self._positions():
            mark = marks.get(symbol, entry)
            details.append(
                PositionDetail(
                    symbol=symbol,
                    side="BUY" if qty > 0 else "SELL",
                    qty=abs(qty),
                    position_side="BOTH",
                    entry_price=entry,
                    mark_price=mark,
                    unrealized_pnl=(mark - entry) * qty,
                    notional=abs(qty) * mark,
                )
            )
        return details

    def set_leverage(self, symbol: str, leverage: int) -> None:
        self._rules_or_reject(symbol)
        if not 1 <= leverage <= 125:
            raise ExchangeRejected(-4028, f"Leverage {leverage} is not valid", Refusal.OTHER)
        self._upsert_position(symbol, leverage=leverage)

    def set_margin_mode(self, symbol: str, mode: str) -> None:
        self._rules_or_reject(symbol)
        self._upsert_position(symbol, margin_mode=mode)

    def liquidation_order_ids(self, symbol: str, since_ms: int | None = None) -> set[str]:
        return set()  # liquidation is not simulated

    def journal(self) -> list[dict[str, Any]]:
        entries, self._journal = self._journal, []
        return entries

    # --- orders --------------------------------------------------------------------------

    def place_order(self, request: OrderRequest) -> OrderReport:
        self._prepare()
        started = time.perf_counter()
        try:
            report = self._place(request)
        except ExchangeRejected as exc:
            self._log("place_order", request, {"code": exc.code, "msg": exc.exchange_message})
            raise
        self._log("place_order", request, report.raw, started)
        return report

    def _place(self, request: OrderRequest) -> OrderReport:
        rules = self._rules_or_reject(request.symbol)
        qty = request.quantity or Decimal(0)
        conditional = request.kind != "market"
        self._check_quantity(rules, qty)
        if self._open_client_id(request.client_order_id):
            raise _rejected(-4116, "ClientOrderId is duplicated.")
        mark = self.mark_prices().get(request.symbol)
        if mark is None:
            raise _rejected(
                None, f"paper: no price for {request.symbol} at {self.now():%Y-%m-%d %H:%M}"
            )
        if conditional:
            self._check_trigger(rules, request, mark)
            return self._rest(request, qty)
        position = self._position(request.symbol)
        if request.reduce_only:
            qty = self._reducible(position, request.side, qty)
        else:
            self._check_entry(rules, request, qty, mark, position)
        return self._fill_market(request, rules, qty, mark, self.now())

    def _check_quantity(self, rules: MarketRules, qty: Decimal) -> None:
        if qty <= 0 or qty % rules.step_size != 0:
            raise _rejected(-1111, "Precision is over the maximum defined for this asset.")
        if qty < rules.min_qty:
            raise _rejected(-4003, "Quantity less than or equal to zero.")
        if rules.max_qty is not None and qty > rules.max_qty:
            raise _rejected(-4005, "Quantity greater than max quantity.")

    def _check_trigger(self, rules: MarketRules, request: OrderRequest, mark: Decimal) -> None:
        trigger = request.trigger_price
        if trigger is None or trigger <= 0 or trigger % rules.tick_size != 0:
            raise _rejected(-1111, "Precision is over the maximum defined for this asset.")
        if matching.would_fire_now(matching.Resting("", request.side, request.kind, trigger), mark):
            raise _rejected(-2021, "Order would immediately trigger.")

    def _check_entry(
        self,
        rules: MarketRules,
        request: OrderRequest,
        qty: Decimal,
        mark: Decimal,
        position: tuple[Decimal, Decimal, int] | None,
    ) -> None:
        if not rules.trading:
            raise _rejected(-4140, "Invalid symbol status for opening position.")
        notional = qty * mark
        if notional < rules.min_notional:
            raise _rejected(
                -4164,
                f"Order's notional must be no smaller than {_text(rules.min_notional)} "
                "(unless you choose reduce only).",
            )
        leverage = position[2] if position else DEFAULT_LEVERAGE
        needed = notional / leverage + matching.fee(qty, mark, self.settings.taker_fee_pct)
        if needed > self.account().available:
            raise _rejected(-2019, "Margin is insufficient.")

    @staticmethod
    def _reducible(
        position: tuple[Decimal, Decimal, int] | None, side: str, qty: Decimal
    ) -> Decimal:
        held = position[0] if position else Decimal(0)
        opposite = held < 0 if side == "BUY" else held > 0
        if held == 0 or not opposite:
            raise _rejected(-2022, "ReduceOnly Order is rejected.")
        return min(qty, abs(held))

    def _rest(self, request: OrderRequest, qty: Decimal) -> OrderReport:
        order_id = self._next_id("")
        now = self.now()
        self.store.execute(
            "INSERT INTO paper_orders VALUES (?, ?, ?, ?, 'BOTH', ?, true, ?, ?, ?, 'NEW', 0, "
            "NULL, ?, ?, NULL)",
            [
                order_id,
                request.client_order_id,
                request.symbol,
                request.side,
                request.kind,
                qty,
                request.trigger_price,
                request.reduce_only,
                now,
                now,
            ],
        )
        return self._order(order_id)

    def _fill_market(
        self,
        request: OrderRequest,
        rules: MarketRules,
        qty: Decimal,
        price: Decimal,
        moment: datetime,
        order_id: str | None = None,
    ) -> OrderReport:
        """A taker fill, fee, position and ledger, in one commit. An order filling now walks
        the order book when there is one; a trigger that fired in the past (order_id given)
        cannot see that moment's book and pays the slippage model."""
        book = self.prices.book(request.symbol, request.side) if order_id is None else None
        fill_price = self._taker_price(request.side, qty, price, rules, book)
        with self.store.transaction():
            if order_id is None:
                order_id = self._next_id("")
                self.store.execute(
                    "INSERT INTO paper_orders VALUES (?, ?, ?, ?, 'BOTH', 'market', false, ?, "
                    "NULL, ?, 'FILLED', ?, ?, ?, ?, NULL)",
                    [
                        order_id,
                        request.client_order_id,
                        request.symbol,
                        request.side,
                        qty,
                        request.reduce_only,
                        qty,
                        fill_price,
                        moment,
                        moment,
                    ],
                )
            else:
                self.store.execute(
                    "UPDATE paper_orders SET status = 'FILLED', filled_qty = ?, avg_price = ?, "
                    "updated_at = ? WHERE order_id = ?",
                    [qty, fill_price, moment, order_id],
                )
            self._book_fill(order_id, request.symbol, request.side, qty, fill_price, moment)
        return self._order(order_id)

    def _taker_price(
        self,
        side: str,
        qty: Decimal,
        price: Decimal,
        rules: MarketRules,
        book: list[tuple[Decimal, Decimal]] | None,
    ) -> Decimal:
        walked = matching.walk_book(book, qty) if book else None
        if walked is None:
            walked = matching.slipped_price(
                price,
                side,
                qty * price,
                self.settings.slippage_bps,
                self.settings.impact_bps_per_10k,
            )
        return matching.to_tick(walked, rules.tick_size, side)

    def _book_fill(
        self, order_id: str, symbol: str, side: str, qty: Decimal, price: Decimal, moment: datetime
    ) -> None:
        position = self._position(symbol)
        held, entry = (position[0], position[1]) if position else (Decimal(0), Decimal(0))
        change = matching.apply_fill(held, entry, side, qty, price)
        fee = matching.fee(qty, price, self.settings.taker_fee_pct)
        trade_id, ts_ms = self._next_id("T"), self._next_ts(moment)
        self.store.execute(
            "INSERT INTO paper_fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, false, ?)",
            [trade_id, order_id, symbol, side, qty, price, fee, change.realized_pnl, ts_ms],
        )
        if change.realized_pnl != 0:
            self._ledger(symbol, "REALIZED_PNL", change.realized_pnl, ts_ms, trade_id)
        self._ledger(symbol, "COMMISSION", -fee, ts_ms, trade_id)
        self._upsert_position(symbol, qty=change.qty, entry_price=change.entry_price, at=moment)

    def order_by_client_id(self, symbol: str, client_id: str, conditional: bool) -> OrderReport:
        self._prepare()
        row = self.store.fetchone(
            "SELECT order_id FROM paper_orders WHERE symbol = ? AND client_id = ? "
            "AND conditional = ? ORDER BY created_at DESC, order_id DESC LIMIT 1",
            [symbol, client_id, conditional],
        )
        if row is None:
            raise _rejected(-2013, "Order does not exist.")
        return self._order(row[0])

    def open_orders(self, symbol: str | None, conditional: bool) -> list[OrderReport]:
        self._prepare()
        rows = self.store.fetchall(
            "SELECT order_id FROM paper_orders WHERE status = 'NEW' AND conditional = ? "
            "AND (? IS NULL OR symbol = ?) ORDER BY order_id",
            [conditional, symbol, symbol],
        )
        return [self._order(r[0]) for r in rows]

    def cancel_order(self, symbol: str, exchange_order_id: str, conditional: bool) -> None:
        self._prepare()
        found = self.store.fetchone(
            "SELECT status FROM paper_orders WHERE order_id = ? AND symbol = ?",
            [exchange_order_id, symbol],
        )
        if found is None or found[0] != "NEW":
            raise _rejected(-2011, "Unknown order sent.")
        self._set_status(exchange_order_id, "CANCELED", "canceled")

    def cancel_all(self, symbol: str, conditional: bool) -> None:
        self._prepare()
        self.store.execute(
            "UPDATE paper_orders SET status = 'CANCELED', note = 'canceled', updated_at = ? "
            "WHERE symbol = ? AND conditional = ? AND status = 'NEW'",
            [self.now(), symbol, conditional],
        )

    # --- ledgers -------------------------------------------------------------------------

    def fills(self, symbol: str, since_ms: int | None = None) -> list[Fill]:
        self._prepare()
        rows = self.store.fetchall(
            "SELECT trade_id, order_id, symbol, side, qty, price, fee, realized_pnl, maker, "
            "ts_ms FROM paper_fills WHERE symbol = ? AND ts_ms >= ? ORDER BY ts_ms",
            [symbol, since_ms or 0],
        )
        return [
            Fill(
                trade_id=r[0],
                order_id=r[1],
                symbol=r[2],
                side=r[3],
                position_side="BOTH",
                qty=r[4],
                price=r[5],
                commission=r[6],
                commission_asset="USDT",
                realized_pnl=r[7],
                maker=r[8],
                ts_ms=r[9],
                raw={"paper": True, "id": r[0], "orderId": r[1]},
            )
            for r in rows
        ]

    def income(self, since_ms: int | None = None) -> list[IncomeRow]:
        self._prepare()
        rows = self.store.fetchall(
            "SELECT tran_id, symbol, income_type, amount, trade_id, ts_ms, info "
            "FROM paper_income WHERE ts_ms >= ? ORDER BY ts_ms, tran_id",
            [since_ms or 0],
        )
        return [
            IncomeRow(
                tran_id=r[0],
                symbol=r[1],
                income_type=r[2],
                amount=r[3],
                asset="USDT",
                trade_id=r[4],
                ts_ms=r[5],
                raw={"paper": True, "info": r[6]},
            )
            for r in rows
        ]

    # --- the passing of time: triggers and funding since the last catch-up ---------------

    def _prepare(self) -> None:
        """Once per run: open the account if new, then let the market move to now."""
        if self._ready:
            return
        self._ready = True
        if self.store.fetchone("SELECT count(*) FROM paper_income")[0] == 0:
            moment = self.now()
            self._ledger(None, "TRANSFER", self.settings.balance, self._next_ts(moment), None,
                         "paper account opened")  # fmt: skip
            set_state(self.store, CAUGHT_UP_KEY, moment.isoformat())
        self._catch_up()

    def _catch_up(self) -> None:
        """Fire the resting orders and pay the funding the prices since the last catch-up
        call for, in time order."""
        now = self.now()
        stored = get_state(self.store, CAUGHT_UP_KEY)
        since = datetime.fromisoformat(stored) if stored else now
        if now > since:
            resting = self._resting()
            for kind, moment, payload in self._events(since, now, set(resting)):
                if kind == "funding":
                    self._fund(*payload, moment)
                else:
                    self._trigger(payload, resting[payload.symbol])
        set_state(self.store, CAUGHT_UP_KEY, max(now, since).isoformat())

    def _resting(self) -> dict[str, list[matching.Resting]]:
        by_symbol: dict[str, list[matching.Resting]] = {}
        for order_id, symbol, side, kind, trigger in self.store.fetchall(
            "SELECT order_id, symbol, side, kind, trigger_price FROM paper_orders "
            "WHERE status = 'NEW' AND conditional ORDER BY order_id"
        ):
            by_symbol.setdefault(symbol, []).append(matching.Resting(order_id, side, kind, trigger))
        return by_symbol

    def _events(
        self, since: datetime, now: datetime, resting: set[str]
    ) -> list[tuple[str, datetime, Any]]:
        held = {symbol for symbol, *_ in self._positions()}
        events: list[tuple[str, datetime, Any]] = []
        for symbol in sorted(held | resting):
            for moment, rate, mark in self.prices.funding(symbol, since, now):
                events.append(("funding", moment, (symbol, rate, mark)))
            if symbol in resting:
                events += [("candle", c.ts, c) for c in self.prices.candles(symbol, since, now)]
        # funding at a moment is paid on the position held then, before that minute trades
        return sorted(events, key=lambda e: (e[1], e[0] != "funding"))

    def _fund(self, symbol: str, rate: Decimal, mark: Decimal, moment: datetime) -> None:
        position = self._position(symbol)
        if position is None or position[0] == 0:
            return
        amount = matching.funding_payment(position[0], mark, rate)
        self._ledger(symbol, "FUNDING_FEE", amount, self._next_ts(moment), None,
                     f"rate {rate} mark {mark}")  # fmt: skip

    def _trigger(self, candle: matching.Candle, resting: list[matching.Resting]) -> None:
        for order, price in matching.firing_order(resting, candle):
            resting.remove(order)
            self._fire(order, price, candle)

    def _fire(self, order: matching.Resting, price: Decimal, candle: matching.Candle) -> None:
        client_id, qty, reduce_only = self.store.fetchone(
            "SELECT client_id, qty, reduce_only FROM paper_orders WHERE order_id = ?",
            [order.order_id],
        )
        request = OrderRequest(candle.symbol, order.side, qty, client_id, reduce_only,
                               kind=order.kind)  # fmt: skip
        rules = self._rules_or_reject(candle.symbol)
        if reduce_only:
            try:
                qty = self._reducible(self._position(candle.symbol), order.side, qty)
            except ExchangeRejected:
                self._set_status(order.order_id, "EXPIRED", "triggered with nothing to reduce")
                return
        self._fill_market(request, rules, qty, price, candle.ts, order_id=order.order_id)

    # --- plumbing ------------------------------------------------------------------------

    def _rules_or_reject(self, symbol: str) -> MarketRules:
        rules = self.market_rules(symbol)
        if rules is None:
            raise _rejected(-1121, "Invalid symbol.")
        return rules

    def _wallet(self) -> Decimal:
        return self.store.fetchone("SELECT coalesce(sum(amount), 0) FROM paper_income")[0]

    def _positions(self) -> list[tuple[str, Decimal, Decimal, int]]:
        return self.store.fetchall(
            "SELECT symbol, qty, entry_price, leverage FROM paper_positions WHERE qty <> 0 "
            "ORDER BY symbol"
        )

    def _position(self, symbol: str) -> tuple[Decimal, Decimal, int] | None:
        return self.store.fetchone(
            "SELECT qty, entry_price, leverage FROM paper_positions WHERE symbol = ?", [symbol]
        )

    def _upsert_position(self, symbol: str, at: datetime | None = None, **values: Any) -> None:
        moment = at or self.now()
        if self._position(symbol) is None:
            self.store.execute(
                "INSERT INTO paper_positions VALUES (?, 0, 0, ?, 'isolated', ?)",
                [symbol, DEFAULT_LEVERAGE, moment],
            )
        assignments = ", ".join(f"{column} = ?" for column in values)
        self.store.execute(
            f"UPDATE paper_positions SET {assignments}, updated_at = ? WHERE symbol = ?",
            [*values.values(), moment, symbol],
        )

    def _open_client_id(self, client_id: str) -> bool:
        row = self.store.fetchone(
            "SELECT count(*) FROM paper_orders WHERE client_id = ? AND status = 'NEW'", [client_id]
        )
        return bool(row and row[0])

    def _ledger(
        self,
        symbol: str | None,
        income_type: str,
        amount: Decimal,
        ts_ms: int,
        trade_id: str | None,
        info: str | None = None,
    ) -> None:
        self.store.execute(
            "INSERT INTO paper_income VALUES (?, ?, ?, ?, ?, ?, ?)",
            [self._next_id("I"), symbol, income_type, amount, trade_id, ts_ms, info],
        )

    def _set_status(self, order_id: str, status: str, note: str) -> None:
        self.store.execute(
            "UPDATE paper_orders SET status = ?, note = ?, updated_at = ? WHERE order_id = ?",
            [status, note, self.now(), order_id],
        )

    def _next_id(self, prefix: str) -> str:
        (number,) = self.store.fetchone("SELECT nextval('paper_ids')")
        return f"PAPER-{prefix}{number}"

    def _next_ts(self, moment: datetime) -> int:
        """Ledger times in ms, strictly increasing across runs (reconcile's cursors rely on
        it, and the paper clock does not move within a run)."""
        if self._last_ts is None:
            (last,) = self.store.fetchone(
                "SELECT greatest((SELECT max(ts_ms) FROM paper_fills), "
                "(SELECT max(ts_ms) FROM paper_income))"
            )
            self._last_ts = last or 0
        self._last_ts = max(to_ms(moment), self._last_ts + 1)
        return self._last_ts

    def _order(self, order_id: str) -> OrderReport:
        row = self.store.fetchone(
            "SELECT order_id, client_id, symbol, side, kind, conditional, qty, trigger_price, "
            "reduce_only, status, filled_qty, avg_price, created_at, note FROM paper_orders "
            "WHERE order_id = ?",
            [order_id],
        )
        raw = dict(zip(_ORDER_KEYS, row, strict=True))
        raw.update(
            paper=True,
            orderType=_TYPES[raw["kind"]],
            type=_TYPES[raw["kind"]],
            positionSide="BOTH",
            closePosition=False,
        )
        raw = {k: (_text(v) if isinstance(v, Decimal) else v) for k, v in raw.items()}
        raw["time"] = str(raw["time"])
        return OrderReport(
            client_order_id=row[1],
            exchange_order_id=row[0],
            status=BINANCE_STATUS[row[9]],
            filled_qty=row[10],
            avg_price=row[11],
            raw=raw,
            symbol=row[2],
        )

    def _log(
        self, path: str, request: OrderRequest, response: Any, started: float | None = None
    ) -> None:
        """The journal (exchange_calls): what was asked of the paper exchange and its answer."""
        params = {
            "symbol": request.symbol,
            "side": request.side,
            "quantity": _text(request.quantity) if request.quantity else None,
            "type": _TYPES.get(request.kind, request.kind),
            "reduceOnly": request.reduce_only,
            "newClientOrderId": request.client_order_id,
        }
        if request.trigger_price is not None:
            params["triggerPrice"] = _text(request.trigger_price)
        entry: dict[str, Any] = {
            "method": "PAPER",
            "path": path,
            "params": params,
            "ts_ms": int(time.time() * 1000),
            "response": response,
        }
        if started is not None:
            entry["ms"] = round((time.perf_counter() - started) * 1000, 2)
        self._journal.append(entry)


def _text(number: Decimal) -> str:
    """Numbers as Binance sends them: text, without trailing zeros."""
    return str(plain(number))


def _rejected(code: int, message: str) -> ExchangeRejected:
    """A refusal as Binance words it (the paper exchange follows Binance's rules)."""
    return ExchangeRejected(code, message, refusal_of(BINANCE, code), BINANCE_FIXES.get(code))
