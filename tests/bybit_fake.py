"""A stateful Bybit v5 (USDT perpetuals, `category=linear`, Unified account) stand-in on top
of `responses`.

It answers in Bybit's envelope (`retCode`, `retMsg`, `result`, `retExtInfo`, `time`; HTTP 200
for a refusal too) with the field names of Bybit's v5 API docs, remembers orders by
`orderLinkId`, and records every request so tests can assert what was *sent*. It says no the
way Bybit does: 110017 a reduce-only order with nothing to reduce, 110092/110093 a trigger
already crossed at the mark, 110072 an `orderLinkId` used before, 110094 a notional under the
minimum, 110007 not enough balance, 110043 leverage not modified, 10001 a `positionIdx` that
does not match the account's position mode and a time range over 7 days, 110001 cancelling an
order that is not open, 110009 an eleventh conditional order on a symbol.

Its lookups are as strict as Bybit's docs: `/v5/order/realtime` shows open orders (with
`openOnly=1`, the recent closed ones; `restart()` forgets those), `/v5/order/history` every
order; `hide_new_orders` keeps an order invisible to that many lookups after it is created
(creation is asynchronous on Bybit).

Faults are scripted per endpoint like the Binance stand-in's: `fail_next(path, method, kind)`
with kind an error dict (`{"retCode": 10016, "retMsg": …}`, `"after_accept": True` to act
first), an HTTP status (403: the IP limit; 5xx: a gateway), "timeout",
"timeout_after_accept", "dropped_after_accept" or "kill_after_accept". `chaos(method, path)`
may return a fault for any request that has none scripted.
"""

from __future__ import annotations

import itertools
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
import responses

HOST = "https://api-demo.bybit.com"
TAKER_FEE = Decimal("0.00055")
WEEK_MS = 7 * 24 * 3600 * 1000
# symbol → (tickSize, qtyStep, minOrderQty, maxMktOrderQty, minNotionalValue), as Bybit lists them
INSTRUMENTS = {
    "BTCUSDT": ("0.10", "0.001", "0.001", "500.000", "5"),
    "ETHUSDT": ("0.01", "0.01", "0.01", "7240.00", "5"),
    "SOLUSDT": ("0.010", "0.1", "0.1", "50000.0", "5"),
    "BNBUSDT": ("0.10", "0.01", "0.01", "1800.00", "5"),
    "XRPUSDT": ("0.0001", "1", "1", "2000000", "5"),
}
ORDER_PATHS = ("/v5/order/create",)


@dataclass
class Sent:
    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]
    raw: str

    @property
    def signed(self) -> bool:
        return (
            bool(re.fullmatch(r"[0-9a-f]{64}", self.headers.get("X-BAPI-SIGN", "")))
            and "X-BAPI-API-KEY" in self.headers
            and "X-BAPI-TIMESTAMP" in self.headers
        )


def ok(result: Any) -> dict:
    return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {},
            "time": int(time.time() * 1000)}  # fmt: skip


def refuse(code: int, msg: str) -> dict:
    return {"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {},
            "time": int(time.time() * 1000)}  # fmt: skip


@dataclass
class FakeBybit:
    host: str = HOST
    marks: dict[str, str] = field(default_factory=lambda: {"BTCUSDT": "50000", "ETHUSDT": "3000",
                                                           "SOLUSDT": "140", "BNBUSDT": "935",
                                                           "XRPUSDT": "2.07"})  # fmt: skip
    wallet: Decimal = Decimal("10000")
    hedge: bool = False  # the account's position mode (qtrader needs one-way)
    positions: dict[str, Decimal] = field(default_factory=dict)  # symbol → signed size
    entry_prices: dict[str, Decimal] = field(default_factory=dict)
    leverage: dict[str, str] = field(default_factory=dict)
    margin_mode: str = "REGULAR_MARGIN"
    orders: dict[str, dict] = field(default_factory=dict)  # orderLinkId → order
    executions: list[dict] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    faults: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    chaos: Any = None
    accepted: list[str] = field(default_factory=list)  # orderLinkIds taken, in order
    restarted_at: int = 0  # realtime forgets closed orders created before this
    hide_new_orders: int = 0  # lookups for which a new order is not yet visible
    _hidden: dict[str, int] = field(default_factory=dict)
    # the next market order fills this fraction at once and shows PartiallyFilled; the rest
    # fills after `rest_after_requests` more requests of any kind (matching is asynchronous)
    partial_fraction: Decimal | None = None
    rest_after_requests: int = 1
    _filling: dict[str, list] = field(default_factory=dict)  # orderLinkId → [rest, requests]
    now_ms: int = 0
    server_time_offset_ms: int = 0
    _seq: Any = field(default_factory=lambda: itertools.count(9517074055))

    # --- set-up --------------------------------------------------------------------------

    def install(self, mock: responses.RequestsMock) -> FakeBybit:
        routes = {
            ("GET", "/v5/market/time"): self._time,
            ("GET", "/v5/market/instruments-info"): self._instruments,
            ("GET", "/v5/market/tickers"): self._tickers,
            ("GET", "/v5/account/wallet-balance"): self._wallet,
            ("GET", "/v5/position/list"): self._positions,
            ("POST", "/v5/position/set-leverage"): self._set_leverage,
            ("POST", "/v5/account/set-margin-mode"): self._set_margin_mode,
            ("POST", "/v5/order/create"): self._create,
            ("GET", "/v5/order/realtime"): self._realtime,
            ("GET", "/v5/order/history"): self._history,
            ("POST", "/v5/order/cancel"): self._cancel,
            ("POST", "/v5/order/cancel-all"): self._cancel_all,
            ("GET", "/v5/execution/list"): self._execution_list,
            ("GET", "/v5/user/query-api"): self._query_api,
        }
        self.routes = routes
        for (method, path), handler in routes.items():
            mock.add_callback(method, re.compile(re.escape(self.host + path) + r"(\?.*)?$"),
                              callback=self._wrap(method, path, handler))  # fmt: skip
        return self

    def fail_next(self, path: str, method: str, *kinds: Any) -> None:
        self.faults.setdefault((method, path), []).extend(kinds)

    def position(self, symbol: str, size: str, entry: str | None = None) -> None:
        """An open position (signed size: negative = short)."""
        self.positions[symbol] = Decimal(size)
        self.entry_prices[symbol] = Decimal(entry or self.marks[symbol])

    def restart(self) -> None:
        """Bybit restarted: closed orders are no longer in /v5/order/realtime (only history)."""
        self.restarted_at = self._tick()

    # --- what was sent -------------------------------------------------------------------

    def calls(self, path: str | None = None, method: str | None = None) -> list[Sent]:
        return [s for s in self.sent if (path is None or s.path == path)
                and (method is None or s.method == method)]  # fmt: skip

    def creates(self) -> list[dict]:
        return [s.params for s in self.calls("/v5/order/create", "POST")]

    def conditional(self, symbol: str | None = None) -> list[dict]:
        """Untriggered conditional orders (stops and targets resting on Bybit)."""
        return [o for o in self.orders.values() if o["orderStatus"] == "Untriggered"
                and (symbol is None or o["symbol"] == symbol)]  # fmt: skip

    # --- what happens on the exchange ----------------------------------------------------

    def fire(self, link_id: str, price: str) -> None:
        """The mark reaches a conditional order's trigger: it fires, and its market order fills
        at `price` (reduce-only: at most what is held; nothing held → Deactivated)."""
        order = self.orders[link_id]
        symbol = order["symbol"]
        self.marks[symbol] = price
        held = self.positions.get(symbol, Decimal(0))
        closes = (held > 0 and order["side"] == "Sell") or (held < 0 and order["side"] == "Buy")
        if not closes:
            order.update(orderStatus="Deactivated", updatedTime=str(self._tick()))
            return
        qty = Decimal(order["qty"])
        qty = abs(held) if qty == 0 else min(qty, abs(held))
        order.update(orderStatus="Triggered", updatedTime=str(self._tick()))
        self._fill(order, qty, Decimal(price))

    def funding(self, symbol: str, received: str) -> None:
        """A funding settlement; `received` in Binance's sign (positive = received). Bybit books
        it as an execution with execType Funding whose execFee is positive when *paid*."""
        size = self.positions.get(symbol, Decimal(0))
        mark = Decimal(self.marks[symbol])
        value = abs(size) * mark
        rate = -Decimal(received) / value if value else Decimal(0)
        self.executions.append({
            "symbol": symbol, "orderType": "UNKNOWN", "underlyingPrice": "", "orderLinkId": "",
            "side": "Sell" if size > 0 else "Buy", "indexPrice": str(mark),
            "orderId": "1718928000-" + symbol + "-" + str(len(self.executions)),
            "stopOrderType": "UNKNOWN", "leavesQty": "0", "execTime": str(self._tick()),
            "feeCurrency": "USDT", "isMaker": False, "execFee": str(-Decimal(received)),
            "feeRate": f"{rate:.8f}", "execId": str(uuid.uuid4()), "tradeIv": "",
            "blockTradeId": "", "markPrice": str(mark), "execPrice": str(mark), "markIv": "",
            "orderQty": "0", "orderPrice": "0", "execValue": f"{value:f}", "execType": "Funding",
            "execQty": str(abs(size)), "closedSize": "0", "execPnl": "0", "seq": next(self._seq),
            "feeCoin": "USDT", "createType": "", "extraFees": []})  # fmt: skip
        self.wallet -= Decimal(-Decimal(received))

    def ledger(self, symbol: str | None = None) -> dict[str, Decimal]:
        """Totals in Binance's words (what reports must equal to the cent): REALIZED_PNL,
        COMMISSION (negative = paid), FUNDING_FEE (positive = received)."""
        totals: dict[str, Decimal] = {}
        for row in self.executions:
            if symbol is not None and row["symbol"] != symbol:
                continue
            if row["execType"] == "Funding":
                kinds = [("FUNDING_FEE", -Decimal(row["execFee"]))]
            else:
                kinds = [("COMMISSION", -Decimal(row["execFee"])),
                         ("REALIZED_PNL", Decimal(row["execPnl"]))]  # fmt: skip
            for kind, amount in kinds:
                totals[kind] = totals.get(kind, Decimal(0)) + amount
        return totals

    # --- plumbing ------------------------------------------------------------------------

    def _tick(self) -> int:
        self.now_ms = max(self.now_ms + 1, int(time.time() * 1000))
        return self.now_ms

    def _wrap(self, method: str, path: str, handler):
        def callback(request):
            parts = urlsplit(request.url)
            body = (
                request.body.decode() if isinstance(request.body, bytes) else (request.body or "")
            )
            params: dict[str, Any] = dict(parse_qsl(parts.query))
            if body:
                params.update(json.loads(body))
            self.sent.append(Sent(method, parts.path, params, dict(request.headers),
                                  parts.query or body))  # fmt: skip
            for link in list(self._filling):
                self._progress(self.orders[link])
            queue = self.faults.get((method, path))
            fault = queue.pop(0) if queue else None
            if fault is None and self.chaos is not None:
                fault = self.chaos(method, path)
            if fault is not None:
                if fault in ("timeout_after_accept", "dropped_after_accept", "kill_after_accept"):
                    self.routes[(method, path)](params)
                    if fault == "timeout_after_accept":
                        raise requests.exceptions.ReadTimeout("read timed out")
                    if fault == "kill_after_accept":
                        raise KeyboardInterrupt("killed after the exchange accepted")
                    raise requests.exceptions.ConnectionError("Connection aborted.")
                if fault == "timeout":
                    raise requests.exceptions.ConnectTimeout("connect timed out")
                if isinstance(fault, dict) and fault.get("after_accept"):
                    self.routes[(method, path)](params)
                    return 200, {}, json.dumps(refuse(fault["retCode"], fault["retMsg"]))
                if isinstance(fault, BaseException):
                    raise fault
                if fault == 403:  # the IP went over 600 requests in 5 s
                    return 403, {}, "<html><body><h1>403 Forbidden</h1></body></html>"
                if isinstance(fault, int):
                    return fault, {}, f"<html><body><h1>{fault} Bad Gateway</h1></body></html>"
                return 200, {}, json.dumps(refuse(fault["retCode"], fault["retMsg"]))
            answer = self.routes[(method, path)](params)
            headers = {"Content-Type": "application/json", "X-Bapi-Limit-Status": "49",
                       "X-Bapi-Limit": "50",
                       "X-Bapi-Limit-Reset-Timestamp": str(int(time.time() * 1000) + 1000)}  # fmt: skip
            return 200, headers, json.dumps(answer)

        return callback

    # --- market data ---------------------------------------------------------------------

    def _time(self, params: dict) -> dict:
        now = int(time.time() * 1000) + self.server_time_offset_ms
        return {**ok({"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)}),
                "time": now}  # fmt: skip

    def _instruments(self, params: dict) -> dict:
        if params.get("category") != "linear":
            return refuse(10001, "params error: category is invalid")
        if params.get("status") == "PreLaunch":
            return ok({"category": "linear", "list": [], "nextPageCursor": ""})
        rows = []
        for symbol, (tick, step, min_qty, max_mkt, notional) in INSTRUMENTS.items():
            base = symbol.removesuffix("USDT")
            rows.append({
                "symbol": symbol, "contractType": "LinearPerpetual", "status": "Trading",
                "baseCoin": base, "quoteCoin": "USDT", "launchTime": "1585526400000",
                "deliveryTime": "0", "deliveryFeeRate": "", "priceScale": str(len(tick.split(".")[1])),
                "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
                "priceFilter": {"minPrice": tick, "maxPrice": "1999999.80", "tickSize": tick},
                "lotSizeFilter": {"maxOrderQty": max_mkt, "minOrderQty": min_qty, "qtyStep": step,
                                  "postOnlyMaxOrderQty": max_mkt, "maxMktOrderQty": max_mkt,
                                  "minNotionalValue": notional},
                "unifiedMarginTrade": True, "fundingInterval": 480, "settleCoin": "USDT",
                "copyTrading": "both", "upperFundingRate": "0.00375", "lowerFundingRate": "-0.00375",
                "isPreListing": False, "preListingInfo": None,
                "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"}})  # fmt: skip
        return ok({"category": "linear", "list": rows, "nextPageCursor": ""})

    def _tickers(self, params: dict) -> dict:
        rows = [{"symbol": s, "lastPrice": p, "indexPrice": p, "markPrice": p,
                 "prevPrice24h": p, "price24hPcnt": "0", "highPrice24h": p, "lowPrice24h": p,
                 "openInterest": "1000", "fundingRate": "0.0001",
                 "nextFundingTime": "1763712000000", "bid1Price": p, "ask1Price": p}
                for s, p in self.marks.items()]  # fmt: skip
        return ok({"category": "linear", "list": rows})

    # --- account -------------------------------------------------------------------------

    def _upl(self) -> Decimal:
        return sum(((Decimal(self.marks[s]) - self.entry_prices[s]) * q
                    for s, q in self.positions.items() if q != 0), Decimal(0))  # fmt: skip

    def _im(self) -> Decimal:
        return sum((abs(q) * self.entry_prices[s] / Decimal(self.leverage.get(s, "10"))
                    for s, q in self.positions.items() if q != 0), Decimal(0))  # fmt: skip

    def _wallet(self, params: dict) -> dict:
        if params.get("accountType") != "UNIFIED":
            return refuse(10001, "accountType only support UNIFIED.")
        upl, im = self._upl(), self._im()
        equity = self.wallet + upl
        coin = {"availableToBorrow": "", "bonus": "0", "accruedInterest": "0",
                "availableToWithdraw": "", "totalOrderIM": "0", "equity": f"{equity:f}",
                "totalPositionMM": "0", "usdValue": f"{equity:f}", "unrealisedPnl": f"{upl:f}",
                "collateralSwitch": True, "spotHedgingQty": "0", "borrowAmount": "0",
                "totalPositionIM": f"{im:f}", "walletBalance": f"{self.wallet:f}",
                "cumRealisedPnl": "0", "locked": "0", "marginCollateral": True, "coin": "USDT"}  # fmt: skip
        isolated = self.margin_mode == "ISOLATED_MARGIN"
        account = {"totalEquity": f"{equity:f}", "accountIMRate": "0",
                   "totalMarginBalance": "" if isolated else f"{equity:f}",
                   "totalInitialMargin": "" if isolated else f"{im:f}", "accountType": "UNIFIED",
                   "totalAvailableBalance": "" if isolated else f"{equity - im:f}",
                   "accountMMRate": "0", "totalPerpUPL": f"{upl:f}",
                   "totalWalletBalance": f"{self.wallet:f}", "accountLTV": "0",
                   "totalMaintenanceMargin": "0", "coin": [coin]}  # fmt: skip
        return ok({"list": [account]})

    def _positions(self, params: dict) -> dict:
        if params.get("category") != "linear" or not (
            params.get("symbol") or params.get("settleCoin")
        ):
            return refuse(10001, "params error: symbol or settleCoin is required")
        rows = []
        symbols = set(self.positions) | set(self.leverage)  # Bybit lists a set-up symbol, flat
        for symbol in sorted(symbols):
            if params.get("symbol") not in (None, symbol):
                continue
            size = self.positions.get(symbol, Decimal(0))
            mark = Decimal(self.marks[symbol])
            entry = self.entry_prices.get(symbol, Decimal(0))
            rows.append({
                "positionIdx": 1 if self.hedge else 0, "riskId": 1, "riskLimitValue": "2000000", "symbol": symbol,
                "side": "" if size == 0 else ("Buy" if size > 0 else "Sell"), "size": f"{abs(size):f}",
                "avgPrice": f"{entry:f}" if size else "0", "positionValue": f"{abs(size) * entry:f}",
                "tradeMode": 0, "autoAddMargin": 0, "positionStatus": "Normal",
                "leverage": self.leverage.get(symbol, "10"), "markPrice": str(mark),
                "liqPrice": "", "bustPrice": "", "positionIM": "0", "positionMM": "0",
                "tpslMode": "Full", "takeProfit": "0", "stopLoss": "0", "trailingStop": "0",
                "unrealisedPnl": f"{(mark - entry) * size:f}" if size else "0",
                "curRealisedPnl": "0", "cumRealisedPnl": "0", "adlRankIndicator": 2,
                "createdTime": "1676538056258", "updatedTime": str(self.now_ms or 1676538056258),
                "seq": next(self._seq), "isReduceOnly": False})  # fmt: skip
        return ok({"category": "linear", "list": rows, "nextPageCursor": ""})

    def _set_leverage(self, params: dict) -> dict:
        if params.get("buyLeverage") != params.get("sellLeverage"):
            return refuse(10001, "buy leverage must equal sell leverage in one-way mode")
        if self.leverage.get(params["symbol"]) == params["buyLeverage"]:
            return refuse(110043, "Set leverage not modified")
        self.leverage[params["symbol"]] = params["buyLeverage"]
        return ok({})

    def _set_margin_mode(self, params: dict) -> dict:
        wanted = params.get("setMarginMode")
        if wanted not in ("ISOLATED_MARGIN", "REGULAR_MARGIN", "PORTFOLIO_MARGIN"):
            return refuse(10001, "params error: setMarginMode")
        if wanted != self.margin_mode and any(q != 0 for q in self.positions.values()):
            return {**refuse(3400045, "Set margin mode failed"),
                    "result": {"reasons": [{"reasonCode": "3400000",
                                            "reasonMsg": "Positions exist"}]}}  # fmt: skip
        self.margin_mode = wanted
        return ok({"reasons": []})

    def _query_api(self, params: dict) -> dict:
        return ok({"id": "13770661", "note": "qtrader", "apiKey": "XXXXXX", "readOnly": 0,
                   "secret": "", "permissions": {"ContractTrade": ["Order", "Position"],
                                                 "Spot": [], "Wallet": [], "Options": [],
                                                 "Derivatives": [], "CopyTrading": [],
                                                 "BlockTrade": [], "Exchange": [], "NFT": []},
                   "ips": ["203.0.113.7"], "type": 1, "deadlineDay": 80,
                   "expiredAt": "2027-01-01T00:00:00Z", "createdAt": "2026-10-01T00:00:00Z",
                   "unified": 0, "uta": 1, "userID": 24617703, "inviterID": 0,
                   "vipLevel": "No VIP", "mktMakerLevel": "0", "affiliateID": 0})  # fmt: skip

    # --- orders --------------------------------------------------------------------------

    def _create(self, params: dict) -> dict:
        for required in ("category", "symbol", "side", "orderType", "qty"):
            if params.get(required) in (None, ""):
                return refuse(10001, f"params error: {required} is required")
        symbol, side = params["symbol"], params["side"]
        if symbol not in INSTRUMENTS:
            return refuse(10001, "params error: symbol invalid")
        if (int(params.get("positionIdx", 0)) == 0) == self.hedge:
            return refuse(10001, "position idx not match position mode")
        link = params.get("orderLinkId") or ""
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,36}", link):
            return refuse(10001, "params error: orderLinkId")
        if link in self.orders:
            return refuse(110072, "OrderLinkedID is duplicate")
        tick, step, min_qty, max_mkt, notional = INSTRUMENTS[symbol]
        qty = Decimal(params["qty"])
        mark = Decimal(self.marks[symbol])
        reduce_only = bool(params.get("reduceOnly"))
        close_on_trigger = bool(params.get("closeOnTrigger"))
        conditional = params.get("triggerPrice") not in (None, "")
        if qty == 0 and not (conditional and reduce_only and close_on_trigger):
            return refuse(10001, "Qty invalid")
        if qty != 0 and (qty % Decimal(step) != 0 or qty < Decimal(min_qty)):
            return refuse(10001, "The number of contracts exceeds minimum limit allowed")
        if qty > Decimal(max_mkt):
            return refuse(10001, "The number of contracts exceeds maximum limit allowed")
        held = self.positions.get(symbol, Decimal(0))
        if conditional:
            trigger = Decimal(params["triggerPrice"])
            if trigger % Decimal(tick) != 0:
                return refuse(10001, "params error: triggerPrice tick")
            direction = int(params.get("triggerDirection", 0))
            if direction == 1 and trigger <= mark:
                return refuse(
                    110092, f"expect Rising, but trigger_price[{trigger}] <= current[{mark}]??1"
                )
            if direction == 2 and trigger >= mark:
                return refuse(
                    110093, f"expect Falling, but trigger_price[{trigger}] >= current[{mark}]??1"
                )
            if direction not in (1, 2):
                return refuse(10001, "params error: triggerDirection")
            if len(self.conditional(symbol)) >= 10:
                return refuse(110009, "The number of stop orders exceeds maximum limit allowed")
            order = self._order(params, "Untriggered", qty)
            order.update(triggerPrice=params["triggerPrice"], triggerDirection=direction,
                         triggerBy=params.get("triggerBy", "LastPrice"), stopOrderType="Stop")  # fmt: skip
            return self._accept(order)
        closes = (held > 0 and side == "Sell") or (held < 0 and side == "Buy")
        if reduce_only and not closes:
            return refuse(110017, "Reduce-only rule not satisfied")
        if reduce_only:
            qty = min(qty, abs(held))
        if not reduce_only and not closes and qty * mark < Decimal(notional):
            return refuse(110094, f"Order does not meet minimum order value {notional}USDT")
        opening = qty if not closes else max(qty - abs(held), Decimal(0))
        margin = opening * mark / Decimal(self.leverage.get(symbol, "10"))
        if margin > self.wallet + self._upl() - self._im():
            return refuse(110007, "ab not enough for new order")
        order = self._order(params, "New", qty)
        answer = self._accept(order)
        if self.partial_fraction is not None and not reduce_only:
            first = (qty * self.partial_fraction).quantize(Decimal(step))
            self.partial_fraction = None
            self._fill(order, first, mark)
            order.update(orderStatus="PartiallyFilled", leavesQty=f"{qty - first:f}",
                         qty=f"{qty:f}")  # fmt: skip
            self._filling[order["orderLinkId"]] = [qty - first, self.rest_after_requests]
            return answer
        self._fill(order, qty, mark)
        return answer

    def _progress(self, order: dict) -> None:
        """A partially filled market order fills its rest after enough requests."""
        pending = self._filling.get(order["orderLinkId"])
        if pending is None:
            return
        if pending[1] > 0:  # this request still sees it partially filled
            pending[1] -= 1
            return
        del self._filling[order["orderLinkId"]]
        done = Decimal(order["cumExecQty"])
        price = Decimal(order["avgPrice"])
        fee_before = Decimal(order["cumExecFee"])
        self._fill(order, pending[0], price)
        total = done + pending[0]
        order.update(cumExecQty=f"{total:f}", cumExecValue=f"{total * price:f}",
                     cumExecFee=f"{fee_before + Decimal(order['cumExecFee']):f}")  # fmt: skip

    def _order(self, params: dict, status: str, qty: Decimal) -> dict:
        now = str(self._tick())
        return {
            "orderId": str(uuid.uuid4()), "orderLinkId": params.get("orderLinkId", ""),
            "blockTradeId": "", "symbol": params["symbol"], "price": "0", "qty": f"{qty:f}",
            "side": params["side"], "isLeverage": "", "positionIdx": int(params.get("positionIdx", 0)),
            "orderStatus": status, "cancelType": "UNKNOWN", "rejectReason": "EC_NoError",
            "avgPrice": "", "leavesQty": f"{qty:f}", "leavesValue": "0", "cumExecQty": "0",
            "cumExecValue": "0", "cumExecFee": "0", "timeInForce": "IOC", "orderType": "Market",
            "stopOrderType": "", "orderIv": "", "triggerPrice": "", "takeProfit": "",
            "stopLoss": "", "tpTriggerBy": "", "slTriggerBy": "", "triggerDirection": 0,
            "triggerBy": "", "lastPriceOnCreated": self.marks[params["symbol"]],
            "reduceOnly": bool(params.get("reduceOnly")),
            "closeOnTrigger": bool(params.get("closeOnTrigger")), "smpType": "None",
            "smpGroup": 0, "smpOrderId": "", "tpslMode": "", "tpLimitPrice": "",
            "slLimitPrice": "", "placeType": "", "createdTime": now, "updatedTime": now}  # fmt: skip

    def _accept(self, order: dict) -> dict:
        self.orders[order["orderLinkId"]] = order
        self.accepted.append(order["orderLinkId"])
        if self.hide_new_orders:
            self._hidden[order["orderLinkId"]] = self.hide_new_orders
        return ok({"orderId": order["orderId"], "orderLinkId": order["orderLinkId"]})

    def _fill(self, order: dict, qty: Decimal, price: Decimal) -> None:
        """Move the position and book the execution: fee at the taker rate, execPnl for the
        part that closes (before fees)."""
        symbol = order["symbol"]
        held = self.positions.get(symbol, Decimal(0))
        signed = qty if order["side"] == "Buy" else -qty
        pnl = Decimal(0)
        closed = Decimal(0)
        if held != 0 and (held > 0) != (signed > 0):
            closed = min(abs(held), qty)
            pnl = (price - self.entry_prices[symbol]) * closed * (1 if held > 0 else -1)
        after = held + signed
        if after != 0 and (held == 0 or (held > 0) != (after > 0)):
            self.entry_prices[symbol] = price  # opened, or flipped through zero
        elif held != 0 and (held > 0) == (signed > 0):
            self.entry_prices[symbol] = (self.entry_prices[symbol] * abs(held) + price * qty) / (
                abs(held) + qty
            )
        self.positions[symbol] = after
        fee = (qty * price * TAKER_FEE).quantize(Decimal("0.00000001"))
        self.wallet += pnl - fee
        now = str(self._tick())
        order.update(orderStatus="Filled", cumExecQty=f"{qty:f}", leavesQty="0",
                     avgPrice=f"{price:f}", cumExecValue=f"{qty * price:f}",
                     cumExecFee=f"{fee:f}", updatedTime=now)  # fmt: skip
        self.executions.append({
            "symbol": symbol, "orderType": "Market", "underlyingPrice": "",
            "orderLinkId": order["orderLinkId"], "side": order["side"], "indexPrice": "",
            "orderId": order["orderId"], "stopOrderType": order.get("stopOrderType") or "UNKNOWN",
            "leavesQty": "0", "execTime": now, "feeCurrency": "USDT", "isMaker": False,
            "execFee": f"{fee:f}", "feeRate": str(TAKER_FEE), "execId": str(uuid.uuid4()),
            "tradeIv": "", "blockTradeId": "", "markPrice": self.marks[symbol],
            "execPrice": f"{price:f}", "markIv": "", "orderQty": order["qty"], "orderPrice": "0",
            "execValue": f"{qty * price:f}", "execType": "Trade", "execQty": f"{qty:f}",
            "closedSize": f"{closed:f}", "execPnl": f"{pnl:f}", "seq": next(self._seq),
            "feeCoin": "USDT", "createType": "CreateByUser", "extraFees": []})  # fmt: skip

    def _visible(self, order: dict) -> bool:
        left = self._hidden.get(order["orderLinkId"], 0)
        if left > 0:
            self._hidden[order["orderLinkId"]] = left - 1
            return False
        return True

    def _matching(self, params: dict) -> list[dict]:
        if params.get("category") != "linear":
            return []
        rows = sorted(self.orders.values(), key=lambda o: o["createdTime"], reverse=True)
        out = []
        for o in rows:
            if params.get("symbol") not in (None, o["symbol"]):
                continue
            if params.get("orderLinkId") not in (None, o["orderLinkId"]):
                continue
            if params.get("orderId") not in (None, o["orderId"]):
                continue
            kind = "StopOrder" if o["stopOrderType"] == "Stop" else "Order"
            if params.get("orderFilter") not in (None, kind):
                continue
            out.append(o)
        return out

    def _page(self, rows: list[dict], params: dict) -> dict:
        limit = int(params.get("limit", 20))
        start = int(params.get("cursor") or 0)
        page = rows[start : start + limit]
        cursor = str(start + limit) if start + limit < len(rows) else ""
        return ok({"category": "linear", "list": page, "nextPageCursor": cursor})

    def _realtime(self, params: dict) -> dict:
        if not (params.get("symbol") or params.get("settleCoin") or params.get("baseCoin")):
            return refuse(10001, "params error: symbol, baseCoin or settleCoin is required")
        open_only = str(params.get("openOnly", "0")) == "0"
        rows = []
        for o in self._matching(params):
            is_open = o["orderStatus"] in ("New", "PartiallyFilled", "Untriggered")
            if open_only != is_open:
                continue
            if not is_open and int(o["createdTime"]) < self.restarted_at:
                continue  # cleared by Bybit's restart: only the history has it
            if params.get("orderLinkId") and not self._visible(o):
                continue
            rows.append(o)
        return self._page(rows, params)

    def _history(self, params: dict) -> dict:
        rows = [o for o in self._matching(params)
                if not params.get("orderLinkId") or self._visible(o)]  # fmt: skip
        return self._page(rows, params)

    def _cancel(self, params: dict) -> dict:
        found = next((o for o in self.orders.values()
                      if o["orderId"] == params.get("orderId")
                      or (params.get("orderLinkId") and o["orderLinkId"] == params["orderLinkId"])),
                     None)  # fmt: skip
        if found is None or found["orderStatus"] not in ("New", "PartiallyFilled", "Untriggered"):
            return refuse(110001, "order not exists or too late to cancel")
        found.update(orderStatus="Deactivated" if found["orderStatus"] == "Untriggered"
                     else "Cancelled", updatedTime=str(self._tick()))  # fmt: skip
        return ok({"orderId": found["orderId"], "orderLinkId": found["orderLinkId"]})

    def _cancel_all(self, params: dict) -> dict:
        if not (params.get("symbol") or params.get("settleCoin") or params.get("baseCoin")):
            return refuse(10001, "params error: symbol, baseCoin or settleCoin is required")
        done = []
        for o in self._matching(params):
            if o["orderStatus"] in ("New", "PartiallyFilled", "Untriggered"):
                o.update(orderStatus="Deactivated" if o["orderStatus"] == "Untriggered"
                         else "Cancelled", updatedTime=str(self._tick()))  # fmt: skip
                done.append({"orderId": o["orderId"], "orderLinkId": o["orderLinkId"]})
        return ok({"list": done, "success": "1"})

    def _execution_list(self, params: dict) -> dict:
        start = int(params.get("startTime") or 0)
        end = int(params.get("endTime") or 0) or start + WEEK_MS
        if not params.get("startTime"):
            end = int(time.time() * 1000)
            start = end - WEEK_MS
        if end - start > WEEK_MS:
            return refuse(10001, "The time range should be within 7 days")
        rows = [r for r in reversed(self.executions)
                if start <= int(r["execTime"]) <= end
                and params.get("symbol") in (None, r["symbol"])
                and params.get("execType") in (None, r["execType"])]  # fmt: skip
        limit = min(int(params.get("limit", 50)), 100)
        return self._page(rows, {**params, "limit": limit})
