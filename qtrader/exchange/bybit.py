"""Bybit v5 USDT perpetuals (category `linear`, Unified Trading Account) through ccxt's `bybit`
class, behind the Exchange port.

What differs from Binance, and how this adapter meets the same promises (EXCHANGES.md):
- it calls Bybit's v5 endpoints through ccxt's implicit methods (ccxt signs, maps HTTP errors
  and keeps the session), not the unified ones: those put `orderId=None` into a lookup by client
  id, send `qty: null` for a full close and route stops to trading-stop without an id;
- protection is one conditional reduce-only market order per leg (`triggerPrice`,
  `triggerDirection`, `triggerBy=MarkPrice`, `closeOnTrigger`), each with its own
  `orderLinkId`, so the one-stop-one-target model, place-before-cancel repairs and orphan
  cancels work as on Binance (there is no OCO: reconcile cancels the sibling);
- an order's creation is asynchronous: `/v5/order/create` answers with ids only, the fill is
  read by the lookup that follows; a lookup by client id asks `/v5/order/realtime` (open and
  the last 500 closed), then `/v5/order/history`, then asks both once more after a short
  wait before it concludes the order does not exist;
- position mode is one-way (`positionIdx` 0), margin mode is account-wide in UTA;
- funding comes from `/v5/execution/list` (execType Funding) where `execFee` is positive when
  *paid*: its sign is flipped to Binance's convention (positive = received);
- --testnet is Bybit *demo trading* (api-demo.bybit.com), not Bybit's testnet.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import ccxt

from qtrader.domain.market import MarketRules, rules_from_bybit
from qtrader.domain.orders import OrderStatus, Refusal
from qtrader.domain.protection import Kind, Resting
from qtrader.exchange.binance import (
    JOURNAL_BODY_LIMIT,
    ClockSkew,
    ExchangeAuthFailed,
    _header,
    _replace_hosts,
    _truncate,
)
from qtrader.exchange.codes import BYBIT, BYBIT_FIXES, refusal_of
from qtrader.exchange.port import (
    Account,
    ExchangeBanned,
    ExchangeRejected,
    ExchangeUnavailable,
    Fill,
    IncomeRow,
    NotSentError,
    OrderReport,
    OrderRequest,
    PositionDetail,
    PositionInfo,
)
from qtrader.exchange.reads import RetryingReads
from qtrader.network import describe_network_failure
from qtrader.secrets import mask

CATEGORY = "linear"
SETTLE = "USDT"
WINDOW_MS = 7 * 24 * 3600 * 1000  # execution/list answers at most 7 days per request
MAX_WINDOWS = 60  # how far a ledger read walks forward in one run (60 weeks)
MAX_PAGES = 20  # pages of one window (100 rows each)
MAX_SPLITS = 40  # halvings of a window with more rows than MAX_PAGES pages (7 days → 1 ms)
_RET_CODE = re.compile(r'"retCode"\s*:\s*"?(-?\d+)')
_RET_MSG = re.compile(r'"retMsg"\s*:\s*"((?:[^"\\]|\\.)*)"')
_REQUEST = re.compile(r"\b(?:GET|POST|PUT|DELETE) (https?://\S+)")
# server timeout (the gateway gave up waiting for the engine), system error, service
# restarting: the request may have been acted on, so the outcome is unknown (looked up)
_SERVER_BUSY = {10000, 10016, 10019}
_RATE_LIMITED = {10006, 10018}
_POSITION_IDX_MISMATCH = "position idx not match position mode"

BYBIT_STATUS = {
    "Created": OrderStatus.OPEN,  # accepted, not yet in the book
    "New": OrderStatus.OPEN,
    "Untriggered": OrderStatus.OPEN,  # a conditional order waiting for its trigger
    "PartiallyFilled": OrderStatus.PARTIALLY_FILLED,
    "Filled": OrderStatus.FILLED,
    "Triggered": OrderStatus.FILLED,  # the conditional fired: its market order is filling
    "Cancelled": OrderStatus.CANCELED,
    "PartiallyFilledCanceled": OrderStatus.CANCELED,
    "Deactivated": OrderStatus.CANCELED,  # a conditional cancelled before it fired
    "Rejected": OrderStatus.REJECTED,
}
_FILL_TYPES = ("Trade", "BustTrade", "AdlTrade", "Delivery")  # executions that move a position
_FORCED_TYPES = ("BustTrade", "AdlTrade")  # liquidation, auto-deleveraging


class RequestBudget:
    """Bybit's limits: 600 requests per 5 s per IP (HTTP 403 and a 10-minute ban beyond), and a
    per-endpoint budget per second that each answer reports (`X-Bapi-Limit-Status`: what is
    left, `X-Bapi-Limit-Reset-Timestamp`: when it refills). Sends at once while both have room;
    otherwise sleeps just long enough (never a fixed pause per request)."""

    IP_LIMIT = 600
    IP_WINDOW_S = 5.0
    HEADROOM = 0.8  # others on this IP

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self.sent: list[float] = []
        self.endpoint_left: dict[str, tuple[int, float]] = {}  # path → (left, reset at, s)
        self.slept_s = 0.0

    def wait_s(self, path: str) -> float:
        now = self.clock()
        self.sent = [t for t in self.sent if now - t < self.IP_WINDOW_S]
        wait = 0.0
        if len(self.sent) >= self.IP_LIMIT * self.HEADROOM:
            wait = self.sent[0] + self.IP_WINDOW_S - now
        left = self.endpoint_left.get(path)
        if left is not None and left[0] <= 0 and left[1] > now:
            wait = max(wait, left[1] - now)
        return max(wait, 0.0)

    def spend(self, path: str) -> float:
        wait = self.wait_s(path)
        if wait > 0:
            self.sleep(wait)
            self.slept_s += wait
        self.sent.append(self.clock())
        return wait

    def observe(self, path: str, left: str | None, reset_ms: str | None) -> None:
        try:
            self.endpoint_left[path] = (int(str(left)), int(str(reset_ms)) / 1000)
        except (TypeError, ValueError):
            return


class _JournalingBybit(ccxt.bybit):
    """ccxt's bybit that keeps a journal of every HTTP request and spends Bybit's budget."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.qt_journal: list[dict[str, Any]] = []
        self.qt_budget = RequestBudget()
        self.qt_before_network: Callable[[], None] = lambda: None
        self.qt_path = ""

    def throttle(self, cost=None):
        """Bybit's own limits (RequestBudget) instead of ccxt's cost × rateLimit sleep."""
        if self.qt_budget.wait_s(self.qt_path) > 0:
            self.qt_before_network()
        self.qt_budget.spend(self.qt_path)

    def fetch2(self, path, api=None, method="GET", params=None, config=None):
        self.qt_path = "/" + str(path)  # the budget is per endpoint
        return super().fetch2(path, api or ["public"], method, params or {}, config or {})

    def fetch(self, url, method="GET", headers=None, body=None):
        self.qt_before_network()  # never hold the DuckDB file across network I/O
        parts = urlsplit(url)
        entry: dict[str, Any] = {
            "method": method,
            "path": parts.path,
            "params": _params(parts.query, body),
            "ts_ms": int(time.time() * 1000),
        }
        self.qt_journal.append(entry)
        started = time.perf_counter()
        try:
            response = super().fetch(url, method, headers, body)
        except Exception as exc:
            entry["error"] = mask(str(exc))[:JOURNAL_BODY_LIMIT]
            entry["unhealthy"] = _unhealthy(exc)
            raise
        finally:
            entry["ms"] = round((time.perf_counter() - started) * 1000, 1)
        entry["response"] = _truncate(response)
        headers_in = self.last_response_headers
        self.qt_budget.observe(
            parts.path,
            _header(headers_in, "X-Bapi-Limit-Status"),
            _header(headers_in, "X-Bapi-Limit-Reset-Timestamp"),
        )
        return response


def _params(query: str, body: Any) -> dict[str, Any]:
    """What was sent: the query string, and the JSON body of a POST (never a header, so never
    the key or the signature)."""
    params: dict[str, Any] = dict(parse_qsl(query))
    if isinstance(body, str) and body.strip().startswith("{"):
        with contextlib.suppress(ValueError):
            params.update(json.loads(body))
    return params


def _unhealthy(exc: Exception) -> bool:
    if isinstance(exc, ccxt.InvalidNonce):
        return False
    if isinstance(exc, ccxt.OperationFailed):
        return True
    code = _code(mask(str(exc)))
    return code in _SERVER_BUSY


class BybitLinear(RetryingReads):
    """The ccxt adapter for Bybit USDT perpetuals. `mode` is testnet (demo trading) or live."""

    name = "bybit"
    clock_skew = ClockSkew
    trades_hedge_mode = False  # one-way only: positionIdx 0 on every order

    def __init__(
        self,
        mode: str,
        api_key: str,
        api_secret: str,
        api_url: str | None = None,
        timeout_s: float = 10.0,
        read_retries: int = 4,
        retry_wait_s: float = 0.5,
        before_network: Callable[[], None] | None = None,
        lookup_wait_s: float = 1.0,
    ) -> None:
        self.mode = mode
        self.read_retries = read_retries
        self.retry_wait_s = retry_wait_s
        self.lookup_wait_s = lookup_wait_s  # creation is asynchronous: ask again after this
        self.client = _JournalingBybit(
            {
                "apiKey": api_key,
                "secret": api_secret,
                "enableRateLimit": True,  # throttle(): RequestBudget
                "timeout": int(timeout_s * 1000),
                "options": {
                    "fetchMarkets": {"types": [CATEGORY]},
                    "adjustForTimeDifference": False,  # sync_clock() does it once per run
                    # UTA: saves the two account-type probes ccxt would otherwise send
                    "enableUnifiedAccount": True,
                    "enableUnifiedMargin": False,
                },
            }
        )
        if before_network is not None:
            self.client.qt_before_network = before_network
        if mode == "testnet":
            self.client.enable_demo_trading(True)  # api-demo.bybit.com, not Bybit's testnet
        if api_url:
            _replace_hosts(self.client, api_url)
        self._rules: dict[str, MarketRules] = {}

    # --- markets and account -------------------------------------------------------------

    @property
    def host(self) -> str:
        url = self.client.implode_hostname(self.client.urls["api"]["private"])
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"

    def fetch_markets(self) -> list[dict[str, Any]]:
        markets = self._read(self.client.fetch_markets)
        return [
            m for m in markets if m.get("linear") and m.get("swap") and m.get("settle") == SETTLE
        ]

    def use_markets(self, markets: list[dict[str, Any]]) -> dict[str, MarketRules]:
        self.client.set_markets(markets)
        self._rules = {m["id"]: rules_from_bybit(m["symbol"], m.get("info") or {}) for m in markets}
        return self._rules

    def market_rules(self, symbol: str) -> MarketRules | None:
        return self._rules.get(symbol)

    def api_restrictions(self) -> dict[str, Any] | None:
        """The key's permissions (GET /v5/user/query-api) in Binance's words for doctor; demo
        trading has no such endpoint (None)."""
        if self.mode == "testnet":
            return None
        info = self._result(self._read(self.client.privateGetV5UserQueryApi))
        permissions = info.get("permissions") or {}
        return {
            "enableFutures": bool(permissions.get("ContractTrade")),
            "enableWithdrawals": bool(permissions.get("Wallet"))
            and "Withdraw" in str(permissions.get("Wallet")),
            "ipRestrict": bool(info.get("ips")) and info.get("ips") != ["*"],
        }

    def sync_clock(self) -> int:
        """Server time offset in ms; ccxt signs every request with the corrected time."""
        return int(self._read(self.client.load_time_difference))

    def hedge_mode(self) -> bool:
        """Whether Bybit lists a hedge-mode leg (positionIdx 1 or 2) among the USDT
        perpetuals. qtrader trades Bybit in one-way mode (positionIdx 0): an account in hedge
        mode has its first order refused with what to do (see translate)."""
        rows = self._paged(
            self.client.privateGetV5PositionList,
            {"category": CATEGORY, "settleCoin": SETTLE, "limit": 200},
        )
        return any(str(r.get("positionIdx", 0)) in ("1", "2") for r in rows)

    def account(self) -> Account:
        wallet = self._result(
            self._read(
                lambda: self.client.privateGetV5AccountWalletBalance(
                    {"accountType": "UNIFIED", "coin": SETTLE}
                )
            )
        )
        rows = wallet.get("list") or [{}]
        row = rows[0]
        coin = next((c for c in row.get("coin") or [] if c.get("coin") == SETTLE), {})
        balance = _dec(coin.get("walletBalance"))
        equity = _dec(coin.get("equity")) if coin.get("equity") not in (None, "") else balance
        if row.get("totalAvailableBalance") not in (None, ""):
            available = _dec(row.get("totalAvailableBalance"))
        else:  # isolated margin: the account-level figures are empty
            available = balance - _dec(coin.get("totalPositionIM")) - _dec(coin.get("totalOrderIM"))
        positions = [
            PositionInfo(d.symbol, d.side, d.qty, d.position_side, d.notional)
            for d in self.position_details()
        ]
        return Account(
            wallet_balance=balance, equity=equity, available=available, positions=positions
        )

    def position_details(self) -> list[PositionDetail]:
        """Open USDT perpetual positions (GET /v5/position/list, settleCoin=USDT, paged)."""
        rows = self._paged(
            self.client.privateGetV5PositionList,
            {"category": CATEGORY, "settleCoin": SETTLE, "limit": 200},
        )
        details = []
        for r in rows:
            size = _dec(r.get("size"))
            if size == 0 or r.get("side") not in ("Buy", "Sell"):
                continue
            details.append(
                PositionDetail(
                    symbol=r["symbol"],
                    side=r["side"].upper(),
                    qty=size,
                    position_side=_POSITION_SIDES.get(str(r.get("positionIdx", 0)), "BOTH"),
                    entry_price=_dec(r.get("avgPrice")),
                    mark_price=_dec(r.get("markPrice")),
                    unrealized_pnl=_dec(r.get("unrealisedPnl")),
                    notional=abs(_dec(r.get("positionValue"))),
                )
            )
        return details

    def mark_prices(self) -> dict[str, Decimal]:
        result = self._result(
            self._read(lambda: self.client.publicGetV5MarketTickers({"category": CATEGORY}))
        )
        return {
            row["symbol"]: Decimal(str(row["markPrice"]))
            for row in result.get("list") or []
            if row.get("markPrice") not in (None, "")
        }

    def public_read(self, call: Any) -> Any:
        return self._read(lambda: call(self.client))

    def set_leverage(self, symbol: str, leverage: int) -> None:
        self._setting(
            lambda: self.client.privatePostV5PositionSetLeverage(
                {
                    "category": CATEGORY,
                    "symbol": self._known(symbol),
                    "buyLeverage": str(leverage),
                    "sellLeverage": str(leverage),
                }
            )
        )

    def set_margin_mode(self, symbol: str, mode: str) -> None:
        """Account-wide in UTA: ISOLATED_MARGIN or REGULAR_MARGIN (cross)."""
        self._known(symbol)
        wanted = "ISOLATED_MARGIN" if mode == "isolated" else "REGULAR_MARGIN"
        self._setting(
            lambda: self.client.privatePostV5AccountSetMarginMode({"setMarginMode": wanted})
        )

    # --- orders --------------------------------------------------------------------------

    def place_order(self, request: OrderRequest) -> OrderReport:
        """One POST /v5/order/create. Never retried blindly: only a request Bybit certainly
        did not act on (10002 timestamp, after a resync) is sent again, here, once."""
        body = self._order_body(request)

        def send() -> dict[str, Any]:
            return self.client.privatePostV5OrderCreate(body)

        try:
            answer = self._call(send)
        except ClockSkew:
            self.sync_clock()
            answer = self._call(send)
        result = self._result(answer)
        conditional = request.kind != "market"
        if not conditional:
            # Bybit answers a market order with its ids only: read what it did (filled, and
            # at what price) as the Binance adapter's RESULT answer says, so every caller
            # (execute, the watchdog, close-all) sees the fill. Without an answer, the ids
            # are still known and the step looks the order up later.
            try:  # a market order is done at once: the history first (one request)
                return self._look_up(request.symbol, request.client_order_id, history_first=True)
            except (ExchangeRejected, ExchangeUnavailable):
                pass
        return OrderReport(
            client_order_id=str(result.get("orderLinkId") or request.client_order_id),
            exchange_order_id=str(result["orderId"]) if result.get("orderId") else None,
            # created, not yet known to be filled: the lookup that follows reads the fill
            status=OrderStatus.OPEN,
            filled_qty=Decimal(0),
            avg_price=None,
            raw=dict(result),
            symbol=request.symbol,
            resting=_resting_of_request(request, result) if conditional else None,
        )

    def _order_body(self, request: OrderRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "category": CATEGORY,
            "symbol": self._known(request.symbol),
            "side": "Buy" if request.side == "BUY" else "Sell",
            "orderType": "Market",
            # 0 with reduceOnly + closeOnTrigger closes the whole position (ccxt would send null)
            "qty": str(request.quantity) if request.quantity is not None else "0",
            "orderLinkId": request.client_order_id,
            "positionIdx": 0,  # one-way mode
        }
        if request.reduce_only or request.quantity is None:
            body["reduceOnly"] = True
        if request.quantity is None:
            body["closeOnTrigger"] = True
        if request.kind in ("stop_loss", "take_profit"):
            body["triggerPrice"] = str(request.trigger_price)
            body["triggerDirection"] = _trigger_direction(request.side, request.kind)
            body["triggerBy"] = "MarkPrice"
            body["reduceOnly"] = True
            # may close even when margin is short: Bybit cancels other orders to make room
            body["closeOnTrigger"] = True
        return body

    def order_by_client_id(self, symbol: str, client_id: str, conditional: bool) -> OrderReport:
        """Open and recent orders (GET /v5/order/realtime), then the history (GET
        /v5/order/history); both once more after `lookup_wait_s`, since an order's creation
        is asynchronous. Only then "does not exist" (Refusal.NOT_FOUND)."""
        return self._look_up(symbol, client_id, history_first=False)

    def _look_up(self, symbol: str, client_id: str, history_first: bool) -> OrderReport:
        query = {"category": CATEGORY, "symbol": self._known(symbol), "orderLinkId": client_id}
        endpoints = [self.client.privateGetV5OrderRealtime, self.client.privateGetV5OrderHistory]
        if history_first:
            endpoints.reverse()
        for attempt in range(2):
            for endpoint in endpoints:
                found = self._result(self._read(lambda e=endpoint: e(dict(query))))
                rows = [r for r in found.get("list") or [] if r.get("orderLinkId") == client_id]
                if rows:
                    return _report(rows[0])
            if attempt == 0 and self.lookup_wait_s > 0:
                time.sleep(self.lookup_wait_s)
        raise ExchangeRejected(
            110001,
            f"Order does not exist: no order with orderLinkId {client_id}",
            Refusal.NOT_FOUND,
        )

    def open_orders(self, symbol: str | None, conditional: bool) -> list[OrderReport]:
        query: dict[str, Any] = {
            "category": CATEGORY,
            "orderFilter": "StopOrder" if conditional else "Order",
            "limit": 50,
        }
        if symbol:
            query["symbol"] = self._known(symbol)
        else:
            query["settleCoin"] = SETTLE
        rows = self._paged(self.client.privateGetV5OrderRealtime, query)
        return [_report(r) for r in rows if BYBIT_STATUS.get(r.get("orderStatus", "")) in _LIVE]

    def cancel_order(self, symbol: str, exchange_order_id: str, conditional: bool) -> None:
        body = {"category": CATEGORY, "symbol": self._known(symbol), "orderId": exchange_order_id}
        self._call(lambda: self.client.privatePostV5OrderCancel(body))

    def cancel_all(self, symbol: str, conditional: bool) -> None:
        """POST /v5/order/cancel-all for a symbol: regular orders, or conditional ones
        (orderFilter StopOrder) — close-all sends both."""
        body = {
            "category": CATEGORY,
            "symbol": self._known(symbol),
            "orderFilter": "StopOrder" if conditional else "Order",
        }
        self._call(lambda: self.client.privatePostV5OrderCancelAll(body))

    # --- ledgers -------------------------------------------------------------------------

    def fills(self, symbol: str, since_ms: int | None = None, limit: int = 100) -> list[Fill]:
        """Executions that moved the position (trades, liquidations, ADL), oldest first
        (GET /v5/execution/list, 7-day windows walked forward from `since_ms`)."""
        rows = self._executions({"symbol": symbol}, since_ms, limit)
        fills = [_fill(r) for r in rows if r.get("execType") in _FILL_TYPES]
        return sorted(fills, key=lambda f: (f.ts_ms, f.trade_id))

    def liquidation_order_ids(self, symbol: str, since_ms: int | None = None) -> set[str]:
        rows = self._executions({"symbol": symbol}, since_ms, 100)
        return {str(r["orderId"]) for r in rows if r.get("execType") in _FORCED_TYPES}

    def income(self, since_ms: int | None = None, limit: int = 100) -> list[IncomeRow]:
        """The income ledger in Binance's words, from every execution of the account's USDT
        perpetuals: FUNDING_FEE (sign flipped: positive = received), COMMISSION (negative =
        paid) and REALIZED_PNL (a closing fill's execPnl)."""
        rows = self._executions({}, since_ms, limit)
        income: list[IncomeRow] = []
        for r in rows:
            kind = r.get("execType")
            ts = int(r["execTime"])
            asset = str(r.get("feeCoin") or r.get("feeCurrency") or SETTLE)
            symbol = r.get("symbol")
            if kind == "Funding":
                amount = -_dec(r.get("execFee"))  # Bybit: positive = paid
                row = IncomeRow(str(r["execId"]), symbol, "FUNDING_FEE", amount, asset, None, ts, r)
                income.append(row)
            elif kind in _FILL_TYPES:
                trade = str(r["execId"])
                fee = -_dec(r.get("execFee"))
                income.append(IncomeRow(trade, symbol, "COMMISSION", fee, asset, trade, ts, r))
                pnl = _dec(r.get("execPnl"))
                if pnl != 0:
                    row = IncomeRow(trade, symbol, "REALIZED_PNL", pnl, SETTLE, trade, ts, r)
                    income.append(row)
        return sorted(income, key=lambda i: (i.ts_ms, i.tran_id, i.income_type))

    def _executions(self, where: dict[str, Any], since_ms: int | None, limit: int) -> list[dict]:
        """Executions from `since_ms` on: Bybit answers 7 days per request, so the windows are
        walked forward until one has rows (or now is reached); each window is paged. Bybit
        pages newest first: a window with more rows than MAX_PAGES pages is read again over
        its first half (never a window missing its oldest rows, which the caller's cursor,
        the newest row's time, would then step over for good)."""
        now = int(time.time() * 1000) + self.client.safe_integer(
            self.client.options, "timeDifference", 0
        )
        start = since_ms if since_ms is not None else now - WINDOW_MS
        start = max(start, now - MAX_WINDOWS * WINDOW_MS)  # older than that: not walked
        span = WINDOW_MS
        found: list[dict] = []
        for _ in range(MAX_WINDOWS + 2 * MAX_SPLITS):
            end = start + span - 1
            query: dict[str, Any] = {"category": CATEGORY, "startTime": start, "limit": limit}
            if end < now or span < WINDOW_MS:  # a split window is bounded, even the last
                query["endTime"] = end
            # else the last window: startTime alone means [startTime, +7 days] to Bybit, so an
            # execution stamped by Bybit's clock a moment past ours is not left out
            rows, complete = self._pages(self.client.privateGetV5ExecutionList, {**query, **where})
            if not complete:
                if span <= 1:
                    raise ExchangeUnavailable(
                        f"Bybit lists more than {MAX_PAGES} pages of executions in 1 ms at "
                        f"{start}: not read, so that none is skipped"
                    )
                span = max(span // 2, 1)
                continue
            found += rows
            # the rows at `since_ms` itself were read before (the caller's cursor is the
            # newest row's time, and startTime is inclusive): only a newer row ends the walk,
            # else a week without activity after the cursor would stop the ledger for good
            if any(int(r.get("execTime") or 0) > (since_ms or 0) for r in found) or end >= now:
                break
            start = end + 1  # a split window's empty first half: its second half is next
        return found

    def journal(self) -> list[dict[str, Any]]:
        entries, self.client.qt_journal = self.client.qt_journal, []
        return entries

    # --- plumbing ------------------------------------------------------------------------

    def _known(self, symbol: str) -> str:
        if symbol not in self._rules:
            raise ExchangeRejected(
                10001,
                f"symbol invalid: {symbol} is not a listed Bybit USDT perpetual",
                Refusal.UNKNOWN_SYMBOL,
            )
        return symbol

    def _paged(self, endpoint: Any, query: dict[str, Any]) -> list[dict[str, Any]]:
        return self._pages(endpoint, query)[0]

    def _pages(self, endpoint: Any, query: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """Up to MAX_PAGES pages; whether the last page was reached (no cursor left)."""
        rows: list[dict[str, Any]] = []
        cursor = None
        for _ in range(MAX_PAGES):
            params = {**query, **({"cursor": cursor} if cursor else {})}
            result = self._result(self._read(lambda p=params: endpoint(p)))
            rows += result.get("list") or []
            cursor = result.get("nextPageCursor")
            if not cursor:
                return rows, True
        return rows, False

    @staticmethod
    def _result(answer: Any) -> dict[str, Any]:
        return (answer or {}).get("result") or {}

    def _translate(self, exc: ccxt.BaseError) -> Exception:
        return translate(exc)


_POSITION_SIDES = {"0": "BOTH", "1": "LONG", "2": "SHORT"}
_LIVE = (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)


def _code(text: str) -> int | None:
    match = _RET_CODE.search(text)
    return int(match.group(1)) if match else None


def translate(exc: ccxt.BaseError) -> Exception:
    """ccxt's exception → qtrader's, with Bybit's retCode and retMsg when there is one."""
    text = mask(str(exc))
    code, msg_match = _code(text), _RET_MSG.search(text)
    message = msg_match.group(1) if msg_match else text
    if isinstance(exc, ccxt.InvalidNonce) or code == 10002:
        return ClockSkew(f"request timestamp outside Bybit's recv window (10002): {message}")
    if " 403 " in text or "403 Forbidden" in text:
        return ExchangeBanned(
            f"Bybit refused this IP (HTTP 403: over 600 requests in 5 s): {message}; "
            "stop and wait at least 10 minutes"
        )
    if isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded) or code in _RATE_LIMITED:
        return NotSentError(f"rate limited by Bybit ({code}): {message}")
    refusal = refusal_of(BYBIT, code)
    if isinstance(exc, ccxt.AuthenticationError | ccxt.PermissionDenied) or refusal is Refusal.AUTH:
        fix = BYBIT_FIXES.get(code or 0, "check BYBIT_API_KEY/SECRET and the key's permissions")
        return ExchangeAuthFailed(f"Bybit refused the API key ({code}): {message}; {fix}")
    if code in _SERVER_BUSY:
        return ExchangeUnavailable(f"Bybit did not answer properly ({code}): {message}")
    if isinstance(exc, ccxt.OrderNotFound) and refusal is Refusal.OTHER:
        refusal = Refusal.NOT_FOUND
    url = _REQUEST.search(str(exc))
    network = describe_network_failure(exc, url.group(1) if url else None)
    if network is not None and (code is None or isinstance(exc, ccxt.NetworkError)):
        return ExchangeUnavailable(mask(f"Bybit did not answer: {network}"))
    if isinstance(exc, ccxt.NetworkError) and code is None:
        return ExchangeUnavailable(f"Bybit did not answer properly: {message}")
    if _POSITION_IDX_MISMATCH in message.lower():
        return ExchangeRejected(
            code,
            message,
            Refusal.POSITION_MODE_CHANGED,
            "qtrader trades Bybit in one-way mode: switch the USDT perpetuals to one-way "
            "(Position mode) on Bybit, then run again",
        )
    if isinstance(exc, ccxt.ExchangeError):
        return ExchangeRejected(code, message, refusal, BYBIT_FIXES.get(code or 0))
    return ExchangeUnavailable(f"exchange error: {message}")


def _trigger_direction(side: str, kind: str) -> int:
    """1: fires when the mark price rises to the trigger; 2: when it falls to it. A stop
    closing a long (a SELL) fires on the way down; a target closing a long on the way up."""
    falls = (side == "SELL") == (kind == "stop_loss")
    return 2 if falls else 1


def _kind_of(row: dict[str, Any]) -> Kind:
    """A conditional order's role: by its stopOrderType when Bybit names it, else by which
    way its trigger fires against the position it closes."""
    named = str(row.get("stopOrderType") or "")
    if "StopLoss" in named:
        return Kind.STOP
    if "TakeProfit" in named:
        return Kind.TARGET
    direction = str(row.get("triggerDirection") or "")
    if direction not in ("1", "2") or not row.get("triggerPrice"):
        return Kind.OTHER
    falls = direction == "2"
    closes_long = row.get("side") == "Sell"
    return Kind.STOP if falls == closes_long else Kind.TARGET


def _resting(row: dict[str, Any]) -> Resting | None:
    trigger = _dec(row.get("triggerPrice"))
    if trigger == 0:
        return None
    qty = _dec(row.get("qty"))
    return Resting(
        client_order_id=str(row.get("orderLinkId") or ""),
        exchange_order_id=str(row.get("orderId") or ""),
        symbol=str(row.get("symbol") or ""),
        side=str(row.get("side") or "").upper(),
        position_side=_POSITION_SIDES.get(str(row.get("positionIdx", 0)), "BOTH"),
        kind=_kind_of(row),
        qty=None if qty == 0 else qty,  # 0 + closeOnTrigger: the whole position
        trigger=trigger,
        reduce_only=bool(row.get("reduceOnly")) or bool(row.get("closeOnTrigger")),
    )


def _resting_of_request(request: OrderRequest, result: dict[str, Any]) -> Resting:
    row = {
        "orderLinkId": request.client_order_id,
        "orderId": result.get("orderId"),
        "symbol": request.symbol,
        "side": "Buy" if request.side == "BUY" else "Sell",
        "positionIdx": 0,
        "qty": str(request.quantity or 0),
        "triggerPrice": str(request.trigger_price),
        "triggerDirection": _trigger_direction(request.side, request.kind),
        "reduceOnly": True,
    }
    resting = _resting(row)
    assert resting is not None
    return resting


def _report(row: dict[str, Any]) -> OrderReport:
    status = BYBIT_STATUS.get(str(row.get("orderStatus") or ""), OrderStatus.OPEN)
    average = _dec(row.get("avgPrice"))
    filled, value = _dec(row.get("cumExecQty")), _dec(row.get("cumExecValue"))
    if average <= 0 and filled > 0 and value > 0:
        # Bybit may send avgPrice "" for a filled order: the fill's value says it
        average = value / filled
    return OrderReport(
        client_order_id=str(row.get("orderLinkId") or ""),
        exchange_order_id=str(row["orderId"]) if row.get("orderId") else None,
        status=status,
        filled_qty=filled,
        avg_price=average if average > 0 else None,
        raw=row,
        symbol=row.get("symbol"),
        resting=_resting(row),
    )


def _fill(r: dict[str, Any]) -> Fill:
    return Fill(
        trade_id=str(r["execId"]),
        order_id=str(r["orderId"]),
        symbol=r["symbol"],
        side=str(r["side"]).upper(),
        position_side="BOTH",
        qty=_dec(r.get("execQty")),
        price=_dec(r.get("execPrice")),
        commission=_dec(r.get("execFee")),  # positive = paid, as Binance's commission
        commission_asset=str(r.get("feeCoin") or r.get("feeCurrency") or SETTLE),
        realized_pnl=_dec(r.get("execPnl")),  # a closing fill's PnL before fees
        maker=bool(r.get("isMaker")),
        ts_ms=int(r["execTime"]),
        raw=r,
    )


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)
