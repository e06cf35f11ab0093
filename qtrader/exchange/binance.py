"""Binance USDⓈ-M futures through ccxt (`binanceusdm`), behind the Exchange port.

Facts this adapter is built on (see DESIGN.md, "Exchange facts"):
- conditional orders (STOP_MARKET, TAKE_PROFIT_MARKET) go to the Algo Order API
  (/fapi/v1/algoOrder); ccxt ≥ 4.5.27 routes them when given stopLossPrice/takeProfitPrice,
  and looking them up or cancelling them needs `trigger: True`;
- --testnet is Binance demo trading (`enable_demo_trading(True)`, host demo-fapi);
- only linear markets are loaded (no currency endpoints); the step caches them in DuckDB;
- reads are retried on network errors; an order POST never is, except when the exchange
  certainly did not act on it (-1021 timestamp, 429 rate limit): the step looks an order
  of unknown outcome up by its client id before anything is sent again.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import ccxt

from qtrader.domain.market import MarketRules, rules_from_binance
from qtrader.domain.orders import BINANCE_STATUS, OrderStatus, Refusal, position_side_for
from qtrader.errors import ConfigError
from qtrader.exchange.codes import BINANCE, BINANCE_FIXES, refusal_of
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
from qtrader.exchange.weight import WeightBudget
from qtrader.network import describe_network_failure
from qtrader.secrets import mask

_CODE = re.compile(r'"code"\s*:\s*"?(-?\d+)')
_REQUEST = re.compile(r"\b(?:GET|POST|PUT|DELETE) (https?://\S+)")
_MSG = re.compile(r'"msg"\s*:\s*"((?:[^"\\]|\\.)*)"')
# "Send status unknown; execution status unknown": the order may have been placed
_OUTCOME_UNKNOWN_CODES = {-1007, -1006}
JOURNAL_BODY_LIMIT = 4000


class ClockSkew(NotSentError):
    """-1021: the request's timestamp was outside recvWindow; resync the clock and resend."""


class ExchangeAuthFailed(ConfigError):
    """The API key was refused (bad key, no futures permission, IP not whitelisted)."""


class _JournalingBinance(ccxt.binanceusdm):
    """ccxt's binanceusdm that keeps a journal of every HTTP request it sends."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.qt_journal: list[dict[str, Any]] = []
        self.qt_budget = WeightBudget()
        self.qt_before_network: Callable[[], None] = lambda: None

    def spend_weight(self, cost=None):
        """Spend Binance's weight budget (X-MBX-USED-WEIGHT-1M) instead of ccxt's fixed
        cost × rateLimit sleep; the database is let go of before any wait."""
        cost = float(cost if cost is not None else 1)
        if self.qt_budget.wait_s(cost) > 0:
            self.qt_before_network()
        self.qt_budget.spend(cost)

    throttle = spend_weight  # ccxt calls throttle(cost) before each request

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
        self.qt_budget.observe(_header(self.last_response_headers, "X-MBX-USED-WEIGHT-1M"))
        return response


def _header(headers: Any, name: str) -> str | None:
    for key, value in dict(headers or {}).items():
        if str(key).lower() == name.lower():
            return value
    return None


def _unhealthy(exc: Exception) -> bool:
    """The exchange failed to answer (timeout, 5xx, -1001 internal error, 429/418), as opposed
    to answering no (a rejection) or our clock being off (-1021): what the health breaker
    counts."""
    if isinstance(exc, ccxt.InvalidNonce):
        return False
    return isinstance(exc, ccxt.OperationFailed)


def _params(query: str, body: Any) -> dict[str, str]:
    pairs = parse_qsl(query) + (parse_qsl(body) if isinstance(body, str) else [])
    return {key: value for key, value in pairs if key != "signature"}


def _truncate(response: Any) -> Any:
    text = str(response)
    return response if len(text) <= JOURNAL_BODY_LIMIT else text[:JOURNAL_BODY_LIMIT] + "…"


class BinanceUsdm(RetryingReads):
    """The ccxt adapter. `mode` is testnet (demo trading) or live."""

    name = "binanceusdm"
    clock_skew = ClockSkew

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
    ) -> None:
        self.mode = mode
        self.read_retries = read_retries
        self.retry_wait_s = retry_wait_s
        self.client = _JournalingBinance(
            {
                "apiKey": api_key,
                "secret": api_secret,
                "enableRateLimit": True,  # throttle(): Binance's weight budget (weight.py)
                "timeout": int(timeout_s * 1000),
                "options": {
                    "fetchMarkets": {"types": ["linear"]},
                    "fetchCurrencies": False,
                    "adjustForTimeDifference": False,  # sync_clock() does it once per run
                    "warnOnFetchOpenOrdersWithoutSymbol": False,  # close-all reads all at once
                },
            }
        )
        if before_network is not None:
            self.client.qt_before_network = before_network
        if mode == "testnet":
            self.client.enable_demo_trading(True)
        if api_url:
            _replace_hosts(self.client, api_url)
        self._rules: dict[str, MarketRules] = {}
        # The position mode as re-read after a -4061; from then on every order is sent in it
        # (the caller's cached mode may be up to markets_ttl_s old). None: not re-read.
        self.refreshed_hedge_mode: bool | None = None

    # --- markets and account -------------------------------------------------------------

    @property
    def host(self) -> str:
        parts = urlsplit(self.client.urls["api"]["fapiPrivate"])
        return f"{parts.scheme}://{parts.netloc}"

    def fetch_markets(self) -> list[dict[str, Any]]:
        markets = self._read(self.client.fetch_markets)
        return [m for m in markets if m.get("linear") and m.get("swap")]

    def use_markets(self, markets: list[dict[str, Any]]) -> dict[str, MarketRules]:
        self.client.set_markets(markets)
        self._rules = {
            m["id"]: rules_from_binance(m["symbol"], m.get("info") or {}) for m in markets
        }
        return self._rules

    def api_restrictions(self) -> dict[str, Any] | None:
        """The key's permissions (GET /sapi/v1/account/apiRestrictions): mainnet only; demo
        trading has no such endpoint (None)."""
        if "sapi" not in self.client.urls["api"]:
            return None
        return self._read(self.client.sapiGetAccountApiRestrictions)

    def market_rules(self, symbol: str) -> MarketRules | None:
        return self._rules.get(symbol)

    def sync_clock(self) -> int:
        """Server time offset in ms; ccxt signs every request with the corrected time."""
        return int(self._read(self.client.load_time_difference))

    def hedge_mode(self) -> bool:
        response = self._read(self.client.fapiPrivateGetPositionSideDual)
        return bool(response.get("dualSidePosition"))

    def account(self) -> Account:
        raw = self._read(self.client.fapiPrivateV3GetAccount)
        positions = []
        for p in raw.get("positions", []):
            amount = Decimal(str(p.get("positionAmt", "0")))
            if amount == 0:
                continue
            positions.append(
                PositionInfo(
                    symbol=p["symbol"],
                    side="BUY" if amount > 0 else "SELL",
                    qty=abs(amount),
                    position_side=p.get("positionSide", "BOTH"),
                    notional=abs(Decimal(str(p.get("notional", "0")))),
                )
            )
        return Account(
            wallet_balance=Decimal(str(raw.get("totalWalletBalance", "0"))),
            equity=Decimal(str(raw.get("totalMarginBalance", "0"))),
            available=Decimal(str(raw.get("availableBalance", "0"))),
            positions=positions,
        )

    def liquidation_order_ids(self, symbol: str, since_ms: int | None = None) -> set[str]:
        """Ids of the exchange's forced orders: liquidations, ADL (GET /fapi/v1/forceOrders)."""
        params: dict[str, Any] = {"symbol": symbol, "limit": 100}
        if since_ms is not None:
            params["startTime"] = since_ms
        rows = self._read(lambda: self.client.fapiPrivateGetForceOrders(params))
        return {str(r["orderId"]) for r in rows}

    def position_details(self) -> list[PositionDetail]:
        """Open positions, all symbols, one request (GET /fapi/v3/positionRisk)."""
        rows = self._read(self.client.fapiPrivateV3GetPositionRisk)
        details = []
        for r in rows:
            amount = Decimal(str(r.get("positionAmt", "0")))
            if amount == 0:
                continue
            details.append(
                PositionDetail(
                    symbol=r["symbol"],
                    side="BUY" if amount > 0 else "SELL",
                    qty=abs(amount),
                    position_side=r.get("positionSide", "BOTH"),
                    entry_price=Decimal(str(r.get("entryPrice", "0"))),
                    mark_price=Decimal(str(r.get("markPrice", "0"))),
                    unrealized_pnl=Decimal(str(r.get("unRealizedProfit", "0"))),
                    notional=abs(Decimal(str(r.get("notional", "0")))),
                )
            )
        return details

    def mark_prices(self) -> dict[str, Decimal]:
        rows = self._read(self.client.fapiPublicGetPremiumIndex)
        return {row["symbol"]: Decimal(str(row["markPrice"])) for row in rows}

    def public_read(self, call: Any) -> Any:
        """A public market-data read through the ccxt client (the paper exchange's live
        prices): `call` receives the client; retried like every read."""
        return self._read(lambda: call(self.client))

    def set_leverage(self, symbol: str, leverage: int) -> None:
        self._setting(lambda: self.client.set_leverage(leverage, self._unified(symbol)))

    def set_margin_mode(self, symbol: str, mode: str) -> None:
        self._setting(lambda: self.client.set_margin_mode(mode, self._unified(symbol)))

    # --- orders --------------------------------------------------------------------------

    def place_order(self, request: OrderRequest) -> OrderReport:
        """One POST. Never retried blindly: only a request the exchange certainly did not
        act on (-1021 clock skew, after a resync) is sent again, here, once."""
        try:
            return self._place(self._in_known_mode(request))
        except ExchangeRejected as exc:
            if exc.refusal is not Refusal.POSITION_MODE_CHANGED:
                raise
            # -4061: the account's position mode changed since the caller cached it. The
            # order was refused, so nothing happened: re-read the mode, send it once more.
            self.refreshed_hedge_mode = self.hedge_mode()
            return self._place(self._in_known_mode(request))

    def _in_known_mode(self, request: OrderRequest) -> OrderRequest:
        if self.refreshed_hedge_mode is None:
            return request
        side = position_side_for(request.side, request.reduce_only, self.refreshed_hedge_mode)
        return replace(request, position_side=side)

    def _place(self, request: OrderRequest) -> OrderReport:
        symbol = self._unified(request.symbol)
        params: dict[str, Any] = {
            "clientOrderId": request.client_order_id,
            "newOrderRespType": "RESULT",
        }
        if request.position_side:
            params["positionSide"] = request.position_side
        elif request.reduce_only:
            params["reduceOnly"] = True  # one-way mode; hedge mode closes by positionSide
        if request.kind in ("stop_loss", "take_profit"):
            key = "stopLossPrice" if request.kind == "stop_loss" else "takeProfitPrice"
            params[key] = str(request.trigger_price)
            params["workingType"] = "MARK_PRICE"
        amount = str(request.quantity) if request.quantity is not None else None

        def send() -> dict[str, Any]:
            return self.client.create_order(
                symbol, "market", request.side.lower(), amount, None, params
            )

        try:
            order = self._call(send)
        except ClockSkew:
            self.sync_clock()
            order = self._call(send)
        return _report(order, request.client_order_id)

    def order_by_client_id(self, symbol: str, client_id: str, conditional: bool) -> OrderReport:
        params = {"clientOrderId": client_id, "trigger": conditional}
        order = self._read(lambda: self.client.fetch_order(None, self._unified(symbol), params))
        return _report(order, client_id)

    def open_orders(self, symbol: str | None, conditional: bool) -> list[OrderReport]:
        unified = self._unified(symbol) if symbol else None
        orders = self._read(
            lambda: self.client.fetch_open_orders(unified, params={"trigger": conditional})
        )
        return [
            _report(o, o.get("clientOrderId") or "", o.get("info", {}).get("symbol"))
            for o in orders
        ]

    def cancel_order(self, symbol: str, exchange_order_id: str, conditional: bool) -> None:
        unified = self._unified(symbol)
        self._call(
            lambda: self.client.cancel_order(
                exchange_order_id, unified, params={"trigger": conditional}
            )
        )

    def cancel_all(self, symbol: str, conditional: bool) -> None:
        """Cancel every regular (DELETE allOpenOrders) or algo (DELETE algoOpenOrders) order
        of a symbol. Without the conditional call, algo stop-losses would stay live."""
        unified = self._unified(symbol)
        self._call(lambda: self.client.cancel_all_orders(unified, {"trigger": conditional}))

    def fills(self, symbol: str, since_ms: int | None = None, limit: int = 1000) -> list[Fill]:
        """User trades of one symbol (GET /fapi/v1/userTrades), oldest first."""
        params: dict[str, Any] = {"symbol": symbol, "limit": limit}
        if since_ms is not None:
            params["startTime"] = since_ms
        rows = self._read(lambda: self.client.fapiPrivateGetUserTrades(params))
        return [
            Fill(
                trade_id=str(r["id"]),
                order_id=str(r["orderId"]),
                symbol=r["symbol"],
                side=r["side"],
                position_side=r.get("positionSide", "BOTH"),
                qty=Decimal(str(r["qty"])),
                price=Decimal(str(r["price"])),
                commission=Decimal(str(r["commission"])),
                commission_asset=r["commissionAsset"],
                realized_pnl=Decimal(str(r.get("realizedPnl", "0"))),
                maker=bool(r.get("maker")),
                ts_ms=int(r["time"]),
                raw=r,
            )
            for r in rows
        ]

    def income(self, since_ms: int | None = None, limit: int = 1000) -> list[IncomeRow]:
        """The income ledger, all symbols (GET /fapi/v1/income), oldest first."""
        params: dict[str, Any] = {"limit": limit}
        if since_ms is not None:
            params["startTime"] = since_ms
        rows = self._read(lambda: self.client.fapiPrivateGetIncome(params))
        return [
            IncomeRow(
                tran_id=str(r["tranId"]),
                symbol=r.get("symbol") or None,
                income_type=r["incomeType"],
                amount=Decimal(str(r["income"])),
                asset=r["asset"],
                trade_id=str(r["tradeId"]) if r.get("tradeId") else None,
                ts_ms=int(r["time"]),
                raw=r,
            )
            for r in rows
        ]

    def journal(self) -> list[dict[str, Any]]:
        """Requests sent since the last call (then forgotten)."""
        entries, self.client.qt_journal = self.client.qt_journal, []
        return entries

    # --- plumbing ------------------------------------------------------------------------

    def _unified(self, symbol: str) -> str:
        rules = self._rules.get(symbol)
        if rules is None:
            raise ExchangeRejected(
                -1121,
                f"Invalid symbol: {symbol} is not a listed USDⓈ-M market",
                Refusal.UNKNOWN_SYMBOL,
            )
        return rules.unified

    def _translate(self, exc: ccxt.BaseError) -> Exception:
        return translate(exc)


def translate(exc: ccxt.BaseError) -> Exception:
    """ccxt's exception → qtrader's, with the Binance code and message when there is one."""
    text = mask(str(exc))
    code_match, msg_match = _CODE.search(text), _MSG.search(text)
    code = int(code_match.group(1)) if code_match else None
    message = msg_match.group(1) if msg_match else text
    if isinstance(exc, ccxt.InvalidNonce) or code == -1021:
        return ClockSkew(f"request timestamp outside recvWindow (-1021): {message}")
    if isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
        if " 418 " in text or "banned" in text.lower():
            return ExchangeBanned(f"Binance banned this IP (HTTP 418): {message}; stop and wait")
        return NotSentError(f"rate limited by Binance (HTTP 429): {message}")
    refusal = refusal_of(BINANCE, code)
    if isinstance(exc, ccxt.AuthenticationError | ccxt.PermissionDenied) or refusal is Refusal.AUTH:
        return ExchangeAuthFailed(
            f"Binance refused the API key ({code}): {message}; check BINANCE_API_KEY/SECRET, "
            "the key's futures permission and its IP whitelist"
        )
    if isinstance(exc, ccxt.OrderNotFound):
        return ExchangeRejected(code, message, Refusal.NOT_FOUND)
    if isinstance(exc, ccxt.NoChange):
        return ExchangeRejected(code, message, Refusal.NO_CHANGE)
    url = _REQUEST.search(str(exc))
    network = describe_network_failure(exc, url.group(1) if url else None)
    if network is not None and (code is None or isinstance(exc, ccxt.NetworkError)):
        return ExchangeUnavailable(mask(f"Binance did not answer: {network}"))
    if isinstance(exc, ccxt.NetworkError) or code in _OUTCOME_UNKNOWN_CODES:
        return ExchangeUnavailable(f"Binance did not answer properly: {message}")
    if isinstance(exc, ccxt.ExchangeError):
        return ExchangeRejected(code, message, refusal, BINANCE_FIXES.get(code))
    return ExchangeUnavailable(f"exchange error: {message}")


def _report(order: dict[str, Any], client_id: str, symbol: str | None = None) -> OrderReport:
    info = order.get("info") or {}
    raw_status = info.get("status") or info.get("algoStatus") or ""
    status = BINANCE_STATUS.get(str(raw_status).upper(), OrderStatus.OPEN)
    filled = info.get("executedQty") or order.get("filled") or "0"
    average = info.get("avgPrice") or order.get("average")
    avg = Decimal(str(average)) if average not in (None, "", "0", "0.00", "0.0") else None
    exchange_id = info.get("orderId") or info.get("algoId") or order.get("id")
    return OrderReport(
        client_order_id=info.get("clientOrderId") or info.get("clientAlgoId") or client_id,
        exchange_order_id=str(exchange_id) if exchange_id is not None else None,
        status=status,
        filled_qty=Decimal(str(filled)),
        avg_price=avg if avg is None or avg > 0 else None,
        raw=info,
        symbol=symbol or info.get("symbol"),
    )


def _replace_hosts(client: ccxt.Exchange, api_url: str) -> None:
    """Point every REST endpoint at `api_url`'s scheme and host; paths stay as they are."""
    target = urlsplit(api_url)
    if not target.scheme or not target.netloc:
        raise ConfigError(f"exchange.api_url {api_url!r} must look like https://host[:port]")
    urls = client.urls["api"]
    for key, url in list(urls.items()):
        if isinstance(url, str) and "://" in url:
            parts = urlsplit(url)
            urls[key] = parts._replace(scheme=target.scheme, netloc=target.netloc).geturl()
