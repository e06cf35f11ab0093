"""A stateful Binance USDⓈ-M futures stand-in on top of `responses`.

It answers in Binance's wire format (shapes from the USDⓈ-M REST docs and ccxt's fixtures),
remembers orders by client id (so lookups behave as on the exchange), and records every
request so tests can assert what was *sent*. It says no the way Binance does: a reduce-only
order that would not reduce (-2022), a stop or target whose trigger is already crossed at
the mark (-2021), a client id already used by an open algo order (-4116). With
`market_answers_new` a MARKET order is answered `NEW` with `executedQty` 0 while it fills
(Binance futures does this); a lookup then shows it FILLED.

Faults are scripted per endpoint: `fail_next(path, method, kind)` where kind is an error body
dict (with `"after_accept": True` the exchange acts on the request first, as with -1007), an
HTTP status, "timeout" (never reached the exchange), "timeout_after_accept" or
"dropped_after_accept" (the exchange takes the order, the answer never arrives), or
"kill_after_accept" (the exchange takes it and the process dies). `chaos(method, path)` may
return a fault for any request that has none scripted (the fault soak uses it).
"""

from __future__ import annotations

import itertools
import json
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
import responses

# The same exchangeInfo snapshot the paper exchange ships with: one set of market rules.
EXCHANGE_INFO = Path(__file__).parents[1] / "qtrader" / "exchange" / "binance_exchange_info.json"
HOST = "https://demo-fapi.binance.com"
# Request weight per endpoint (USDⓈ-M REST docs; the larger figure where it depends on the
# parameters). Orders weigh 0 against the IP's 2,400 a minute: they count to order limits.
WEIGHTS = {"/fapi/v1/exchangeInfo": 1, "/fapi/v1/time": 1, "/fapi/v1/positionSide/dual": 30,
           "/fapi/v3/account": 5, "/fapi/v1/premiumIndex": 10, "/fapi/v1/openAlgoOrders": 40,
           "/fapi/v1/openOrders": 40, "/fapi/v3/positionRisk": 5, "/fapi/v1/userTrades": 5,
           "/fapi/v1/income": 30, "/fapi/v1/forceOrders": 50}  # fmt: skip
ORDER_PATHS = ("/fapi/v1/order", "/fapi/v1/algoOrder")
SIGNED = re.compile(r"signature=[0-9a-f]{64}")


@dataclass
class Sent:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    raw: str  # the query string or form body, as sent

    @property
    def signed(self) -> bool:
        return bool(SIGNED.search(self.raw)) and "X-MBX-APIKEY" in self.headers


@dataclass
class FakeBinance:
    host: str = HOST
    marks: dict[str, str] = field(default_factory=lambda: {"BTCUSDT": "50000", "ETHUSDT": "3000",
                                                           "SOLUSDT": "140", "BNBUSDT": "935",
                                                           "XRPUSDT": "2.07"})  # fmt: skip
    hedge: bool = False
    wallet: str = "10000"
    positions: dict[tuple[str, str], Decimal] = field(default_factory=dict)  # (symbol, side) → amt
    orders: dict[str, dict] = field(default_factory=dict)  # client id → order
    algo_orders: dict[str, dict] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    faults: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    server_time_offset_ms: int = 0
    entry_prices: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    trades: list[dict] = field(default_factory=list)  # GET /fapi/v1/userTrades
    income_rows: list[dict] = field(default_factory=list)  # GET /fapi/v1/income
    now_ms: int = 0  # trade times: real time, strictly increasing
    market_answers_new: bool = False  # answer MARKET orders NEW / executedQty 0
    refuse_orders: dict[str, dict] = field(default_factory=dict)  # symbol → error, every POST
    on_order: Any = None  # called with the params of each accepted order (a test's hook)
    chaos: Any = None  # (method, path) → a fault or None, for requests with none scripted
    accepted: list[str] = field(default_factory=list)  # client ids of orders taken, in order
    clock_offset_ms: int = 0  # the exchange's clock minus the machine's (trade and server times)
    _ids: Any = field(default_factory=lambda: itertools.count(4082542011))
    weight_used: dict[int, int] = field(default_factory=dict)  # minute → X-MBX-USED-WEIGHT-1M

    # --- set-up --------------------------------------------------------------------------

    def install(self, mock: responses.RequestsMock) -> FakeBinance:
        routes = {
            ("GET", "/fapi/v1/exchangeInfo"): self._exchange_info,
            ("GET", "/fapi/v1/time"): lambda p: {"serverTime": int(time.time() * 1000) + self.server_time_offset_ms
                                                   + self.clock_offset_ms},
            ("GET", "/fapi/v1/positionSide/dual"): lambda p: {"dualSidePosition": self.hedge},
            ("GET", "/fapi/v3/account"): self._account,
            ("GET", "/fapi/v1/premiumIndex"): self._premium_index,
            ("POST", "/fapi/v1/leverage"): lambda p: {"leverage": int(p["leverage"]),
                                                      "maxNotionalValue": "1000000", "symbol": p["symbol"]},
            ("POST", "/fapi/v1/marginType"): lambda p: {"code": 200, "msg": "success"},
            ("POST", "/fapi/v1/order"): self._new_order,
            ("GET", "/fapi/v1/order"): self._query_order,
            ("POST", "/fapi/v1/algoOrder"): self._new_algo_order,
            ("GET", "/fapi/v1/algoOrder"): self._query_algo_order,
            ("GET", "/fapi/v1/openAlgoOrders"): self._open_algo_orders,
            ("GET", "/fapi/v1/openOrders"): self._open_orders,
            ("GET", "/fapi/v3/positionRisk"): self._position_risk,
            ("GET", "/fapi/v1/userTrades"): self._user_trades,
            ("GET", "/fapi/v1/income"): self._income,
            ("GET", "/fapi/v1/forceOrders"): lambda p: [o for o in self.force_orders
                                                         if o["symbol"] == p["symbol"]],
            ("DELETE", "/fapi/v1/allOpenOrders"): self._cancel_all_open,
            ("DELETE", "/fapi/v1/algoOpenOrders"): self._cancel_all_algo,
            ("DELETE", "/fapi/v1/algoOrder"): self._cancel_algo_order,
        }  # fmt: skip
        self.routes = routes  # a test may wrap a handler (looked up at each request)
        for (method, path), handler in routes.items():
            mock.add_callback(method, re.compile(re.escape(self.host + path) + r"(\?.*)?$"),
                              callback=self._wrap(method, path, handler))  # fmt: skip
        return self

    def fail_next(self, path: str, method: str, *kinds: Any) -> None:
        self.faults.setdefault((method, path), []).extend(kinds)

    def resting_order(self, cid: str, symbol: str, side: str, qty: str, price: str) -> None:
        """A LIMIT order waiting on the book (status NEW)."""
        self.orders[cid] = {"orderId": next(self._ids), "symbol": symbol, "status": "NEW",
                            "clientOrderId": cid, "price": price, "avgPrice": "0.00000",
                            "origQty": qty, "executedQty": "0", "cumQty": "0", "cumQuote": "0",
                            "timeInForce": "GTC", "type": "LIMIT", "reduceOnly": False,
                            "closePosition": False, "side": side, "positionSide": "BOTH",
                            "stopPrice": "0", "workingType": "CONTRACT_PRICE", "priceProtect": False,
                            "origType": "LIMIT", "priceMatch": "NONE",
                            "selfTradePreventionMode": "EXPIRE_MAKER", "goodTillDate": 0,
                            "updateTime": 1763700000000, "time": 1763700000000}  # fmt: skip

    def position(
        self, symbol: str, amount: str, side: str = "BOTH", entry: str | None = None
    ) -> None:
        self.positions[(symbol, side)] = Decimal(amount)
        self.entry_prices[(symbol, side)] = Decimal(entry or self.marks[symbol])

    # --- what was sent -------------------------------------------------------------------

    def calls(self, path: str | None = None, method: str | None = None) -> list[Sent]:
        return [s for s in self.sent if (path is None or s.path == path)
                and (method is None or s.method == method)]  # fmt: skip

    def order_posts(self) -> list[Sent]:
        return self.calls("/fapi/v1/order", "POST")

    def algo_posts(self) -> list[Sent]:
        return self.calls("/fapi/v1/algoOrder", "POST")

    # --- plumbing ------------------------------------------------------------------------

    def _wrap(self, method: str, path: str, handler):
        def callback(request):
            parts = urlsplit(request.url)
            body = (
                request.body.decode() if isinstance(request.body, bytes) else (request.body or "")
            )
            raw = parts.query + ("&" if parts.query and body else "") + body
            params = dict(parse_qsl(raw))
            self.sent.append(Sent(method, parts.path, params, dict(request.headers), raw))
            queue = self.faults.get((method, path))
            fault = queue.pop(0) if queue else None
            if fault is None and self.chaos is not None:
                fault = self.chaos(method, path)
            if fault is not None:
                if fault == "timeout_after_accept":
                    handler(params)
                    raise requests.exceptions.ReadTimeout("read timed out")
                if fault == "kill_after_accept":
                    handler(params)
                    raise KeyboardInterrupt("killed after the exchange accepted")
                if fault == "timeout":
                    raise requests.exceptions.ConnectTimeout("connect timed out")
                if fault == "dropped_after_accept":
                    handler(params)
                    raise requests.exceptions.ConnectionError("Connection aborted.")
                if isinstance(fault, dict) and fault.get("after_accept"):
                    handler(params)  # e.g. -1007: the backend took it; the answer says unknown
                    body = {k: v for k, v in fault.items() if k != "after_accept"}
                    return 400, {}, json.dumps(body)
                if isinstance(fault, BaseException):
                    raise fault
                if isinstance(fault, int) and fault >= 500:  # a gateway's answer, no Binance code
                    return fault, {}, "<html><body><h1>503 Service Unavailable</h1></body></html>"
                if isinstance(fault, int):
                    return fault, {}, json.dumps({"code": -1003, "msg": "Too many requests; banned"
                                                  if fault == 418 else "Too many requests"})  # fmt: skip
                return 400, {}, json.dumps(fault)
            result = self.routes.get((method, path), handler)(params)
            if isinstance(result, tuple):
                return result
            headers = {"Content-Type": "application/json", **self._weigh(method, path)}
            return 200, headers, json.dumps(result)

        return callback

    def _weigh(self, method: str, path: str) -> dict[str, str]:
        """The used-weight header Binance answers with, for the clock minute."""
        minute = int(time.time() // 60)
        cost = 0 if method != "GET" and path in ORDER_PATHS else WEIGHTS.get(path, 1)
        self.weight_used[minute] = self.weight_used.get(minute, 0) + cost
        return {"X-MBX-USED-WEIGHT-1M": str(self.weight_used[minute])}

    extra_symbols: list[str] = field(default_factory=list)  # cloned from SOLUSDT's rules
    force_orders: list[dict] = field(default_factory=list)  # GET /fapi/v1/forceOrders

    def liquidate(self, symbol: str, price: str, side: str = "BOTH") -> None:
        """The exchange force-closes a position (a LIMIT IOC order with an autoclose- id)."""
        amount = self.positions[(symbol, side)]
        order_id = next(self._ids)
        close_side = "SELL" if amount > 0 else "BUY"
        self.marks[symbol] = price
        self.fill(symbol, close_side, abs(amount), Decimal(price), side, order_id)
        self.force_orders.append({
            "orderId": order_id, "symbol": symbol, "status": "FILLED",
            "clientOrderId": f"autoclose-{order_id}", "price": price, "avgPrice": price,
            "origQty": str(abs(amount)), "executedQty": str(abs(amount)), "cumQuote": "0",
            "timeInForce": "IOC", "type": "LIMIT", "reduceOnly": False, "closePosition": False,
            "side": close_side, "positionSide": side, "stopPrice": "0",
            "workingType": "CONTRACT_PRICE", "origType": "LIMIT", "time": self.now_ms,
            "updateTime": self.now_ms})  # fmt: skip

    def _exchange_info(self, params: dict) -> dict:
        info = json.loads(EXCHANGE_INFO.read_text())
        template = next(s for s in info["symbols"] if s["symbol"] == "SOLUSDT")
        for symbol in self.extra_symbols:
            info["symbols"].append({**template, "symbol": symbol, "pair": symbol,
                                    "baseAsset": symbol.removesuffix("USDT")})  # fmt: skip
            self.marks.setdefault(symbol, "10")
        return info

    def _min_notional(self, symbol: str) -> Decimal:
        info = json.loads(EXCHANGE_INFO.read_text())
        market = next((m for m in info["symbols"] if m["symbol"] == symbol), None)
        filters = {f["filterType"]: f for f in (market or {}).get("filters", [])}
        return Decimal(filters.get("MIN_NOTIONAL", {}).get("notional", "5"))

    def _premium_index(self, params: dict) -> list[dict]:
        return [{"symbol": s, "markPrice": p, "indexPrice": p, "estimatedSettlePrice": p,
                 "lastFundingRate": "0.00010000", "interestRate": "0.00010000",
                 "nextFundingTime": 1763712000000, "time": 1763700000000}
                for s, p in self.marks.items()]  # fmt: skip

    def _account(self, params: dict) -> dict:
        positions = [{"symbol": s, "positionSide": side, "positionAmt": str(amt),
                      "unrealizedProfit": "0.00000000", "isolatedMargin": "0.00000000",
                      "notional": str(amt * Decimal(self.marks.get(s, "1"))), "isolatedWallet": "0",
                      "initialMargin": "0", "maintMargin": "0", "updateTime": 1763700000000}
                     for (s, side), amt in self.positions.items() if amt != 0]  # fmt: skip
        return {"totalInitialMargin": "0.00000000", "totalMaintMargin": "0.00000000",
                "totalWalletBalance": self.wallet, "totalUnrealizedProfit": "0.00000000",
                "totalMarginBalance": self.wallet, "totalPositionInitialMargin": "0.00000000",
                "totalOpenOrderInitialMargin": "0.00000000", "totalCrossWalletBalance": self.wallet,
                "totalCrossUnPnl": "0.00000000", "availableBalance": self.wallet,
                "maxWithdrawAmount": self.wallet,
                "assets": [{"asset": "USDT", "walletBalance": self.wallet, "unrealizedProfit": "0.00000000",
                            "marginBalance": self.wallet, "maintMargin": "0.00000000",
                            "initialMargin": "0.00000000", "positionInitialMargin": "0.00000000",
                            "openOrderInitialMargin": "0.00000000", "crossWalletBalance": self.wallet,
                            "crossUnPnl": "0.00000000", "availableBalance": self.wallet,
                            "maxWithdrawAmount": self.wallet, "updateTime": 1763700000000}],
                "positions": positions}  # fmt: skip

    def fill(self, symbol: str, side: str, qty: Decimal, price: Decimal, position_side: str,
             order_id: int) -> None:  # fmt: skip
        """Move the position and record the trade, with its fee and realized PnL."""
        key = (symbol, position_side)
        before = self.positions.get(key, Decimal(0))
        signed = qty if side == "BUY" else -qty
        realized = Decimal(0)
        if before != 0 and (before > 0) != (signed > 0):  # reducing
            closed = min(abs(before), qty)
            direction = 1 if before > 0 else -1
            realized = (price - self.entry_prices[key]) * closed * direction
        elif before == 0:
            self.entry_prices[key] = price
        else:  # adding: the entry price is the average
            held = abs(before)
            self.entry_prices[key] = (self.entry_prices[key] * held + price * qty) / (held + qty)
        self.positions[key] = before + signed
        if self.positions[key] != 0 and (before == 0 or (before > 0) != (self.positions[key] > 0)):
            self.entry_prices[key] = price  # opened, or flipped through zero
        self.now_ms = max(self.now_ms + 1, int(time.time() * 1000) + self.clock_offset_ms)
        trade_id = 698759 + len(self.trades)
        commission = f"{qty * price * Decimal('0.0004'):.8f}"
        self.trades.append({
            "buyer": side == "BUY", "commission": commission,
            "commissionAsset": "USDT", "id": trade_id, "maker": False,
            "orderId": order_id, "price": str(price), "qty": str(qty),
            "quoteQty": f"{qty * price:.8f}", "realizedPnl": f"{realized:.8f}", "side": side,
            "positionSide": position_side, "symbol": symbol, "time": self.now_ms})  # fmt: skip
        # the income ledger books every trade: its commission, and its realized PnL if any
        booked = [("COMMISSION", f"-{commission}")]
        if realized != 0:
            booked.insert(0, ("REALIZED_PNL", f"{realized:.8f}"))
        for kind, amount in booked:
            self.income_rows.append({
                "symbol": symbol, "incomeType": kind, "income": amount, "asset": "USDT",
                "info": kind, "time": self.now_ms, "tranId": 9689300000 + len(self.income_rows),
                "tradeId": str(trade_id)})  # fmt: skip

    def funding(self, symbol: str, amount: str) -> None:
        """A funding fee booked on the income ledger now (positive = received)."""
        self.now_ms = max(self.now_ms + 1, int(time.time() * 1000) + self.clock_offset_ms)
        self.income_rows.append({
            "symbol": symbol, "incomeType": "FUNDING_FEE", "income": amount, "asset": "USDT",
            "info": "FUNDING_FEE", "time": self.now_ms, "tranId": 9689300000 + len(self.income_rows),
            "tradeId": ""})  # fmt: skip

    def ledger(self, symbol: str | None = None) -> dict[str, Decimal]:
        """The income ledger's totals by type (what reports must equal to the cent)."""
        totals: dict[str, Decimal] = {}
        for row in self.income_rows:
            if symbol is None or row["symbol"] == symbol:
                kind = row["incomeType"]
                totals[kind] = totals.get(kind, Decimal(0)) + Decimal(row["income"])
        return totals

    def fire(self, client_algo_id: str, price: str) -> None:
        """The exchange triggers a stop-loss/take-profit: the algo order finishes, a market
        order fills at `price` and reduces the position."""
        algo = self.algo_orders[client_algo_id]
        self.marks[algo["symbol"]] = price
        held = abs(self.positions.get((algo["symbol"], algo["positionSide"]), Decimal(0)))
        qty = min(Decimal(algo["quantity"]), held)  # reduce-only: never more than is held
        if qty == 0 or not self._reduces(algo["symbol"], algo["side"], algo["positionSide"], qty):
            algo["algoStatus"] = "EXPIRED"  # nothing to reduce: Binance expires it
            return
        algo["algoStatus"] = "FINISHED"
        order_id = next(self._ids)
        algo["actualOrderId"] = str(order_id)  # the market order the trigger placed
        self.fill(algo["symbol"], algo["side"], qty, Decimal(price),
                  algo["positionSide"], order_id)  # fmt: skip

    def _reduces(self, symbol: str, side: str, position_side: str, qty: Decimal) -> bool:
        held = self.positions.get((symbol, position_side), Decimal(0))
        if position_side == "LONG":
            return side == "SELL" and held > 0
        if position_side == "SHORT":
            return side == "BUY" and held < 0
        return held != 0 and (held > 0) == (side == "SELL")

    def _position_side_mismatch(self, params: dict) -> Any:
        """-4061 as Binance answers it: positionSide must match the account's position mode."""
        hedged = params.get("positionSide", "BOTH") in ("LONG", "SHORT")
        if hedged != self.hedge:
            return 400, {}, json.dumps({"code": -4061,
                                        "msg": "Order's position side does not match user's setting."})  # fmt: skip
        return None

    def _new_order(self, params: dict) -> Any:
        if (mismatch := self._position_side_mismatch(params)) is not None:
            return mismatch
        cid = params["newClientOrderId"]
        qty = Decimal(params["quantity"])
        price = Decimal(self.marks[params["symbol"]])
        side = params.get("positionSide", "BOTH")
        reduce_only = params.get("reduceOnly") == "true"
        if params["symbol"] in self.refuse_orders:
            error = self.refuse_orders[params["symbol"]]
            return _error(error["code"], error["msg"])
        if (reduce_only or (side in ("LONG", "SHORT") and _closes_leg(params["side"], side))) and (
            not self._reduces(params["symbol"], params["side"], side, qty)
        ):
            return _error(-2022, "ReduceOnly Order is rejected.")
        floor = self._min_notional(params["symbol"])
        if not reduce_only and not _closes_leg(params["side"], side) and qty * price < floor:
            return _error(-4164, f"Order's notional must be no smaller than {floor:f} "
                                 "(unless you choose reduce only).")  # fmt: skip
        order_id = next(self._ids)
        self.fill(params["symbol"], params["side"], qty, price, side, order_id)
        order = {"orderId": order_id, "symbol": params["symbol"], "status": "FILLED",
                 "clientOrderId": cid, "price": "0.00", "avgPrice": f"{price:.5f}",
                 "origQty": params["quantity"], "executedQty": params["quantity"],
                 "cumQty": params["quantity"], "cumQuote": f"{qty * price:.5f}", "timeInForce": "GTC",
                 "type": "MARKET", "reduceOnly": reduce_only,
                 "closePosition": False, "side": params["side"], "positionSide": side,
                 "stopPrice": "0.00", "workingType": "CONTRACT_PRICE", "priceProtect": False,
                 "origType": "MARKET", "priceMatch": "NONE", "selfTradePreventionMode": "EXPIRE_MAKER",
                 "goodTillDate": 0, "updateTime": 1763700000123}  # fmt: skip
        self.orders[cid] = order
        self.accepted.append(cid)
        if self.on_order is not None:
            self.on_order(params)
        if self.market_answers_new:
            return {**order, "status": "NEW", "avgPrice": "0.00", "executedQty": "0",
                    "cumQty": "0", "cumQuote": "0.00000"}  # fmt: skip
        return order

    def _query_order(self, params: dict) -> Any:
        order = self.orders.get(params.get("origClientOrderId", ""))
        if order is None:
            return 400, {}, json.dumps({"code": -2013, "msg": "Order does not exist."})
        return {**order, "time": 1763700000100}

    def _new_algo_order(self, params: dict) -> Any:
        if (mismatch := self._position_side_mismatch(params)) is not None:
            return mismatch
        cid = params["clientAlgoId"]
        if self.algo_orders.get(cid, {}).get("algoStatus") == "NEW":
            return _error(-4116, "ClientOrderId is duplicated.")
        mark, trigger = Decimal(self.marks[params["symbol"]]), Decimal(params["triggerPrice"])
        stop = params["type"] in ("STOP_MARKET", "STOP")
        # a SELL stop triggers at or below its price, a SELL target at or above (and mirrored)
        fires_below = (params["side"] == "SELL") == stop
        if (mark <= trigger) if fires_below else (mark >= trigger):
            return _error(-2021, "Order would immediately trigger.")
        order = {"algoId": next(self._ids), "clientAlgoId": cid, "algoType": "CONDITIONAL",
                 "orderType": params["type"], "symbol": params["symbol"], "side": params["side"],
                 "positionSide": params.get("positionSide", "BOTH"), "timeInForce": "GTC",
                 "quantity": params.get("quantity", "0"), "algoStatus": "NEW",
                 "triggerPrice": params["triggerPrice"], "price": "0.00", "icebergQuantity": None,
                 "selfTradePreventionMode": "EXPIRE_MAKER", "workingType": params.get("workingType"),
                 "priceMatch": "NONE", "closePosition": params.get("closePosition") == "true",
                 "priceProtect": False, "reduceOnly": params.get("reduceOnly") == "true",
                 "createTime": 1763700000200, "updateTime": 1763700000200, "triggerTime": 0,
                 "goodTillDate": 0}  # fmt: skip
        self.algo_orders[cid] = order
        return order

    def _query_algo_order(self, params: dict) -> Any:
        order = self.algo_orders.get(params.get("clientAlgoId", ""))
        if order is None:
            return 400, {}, json.dumps({"code": -2013, "msg": "Order does not exist."})
        return order

    def _open_algo_orders(self, params: dict) -> list[dict]:
        return [o for o in self.algo_orders.values() if o["algoStatus"] == "NEW"
                and o["symbol"] == params.get("symbol", o["symbol"])]  # fmt: skip

    def _position_risk(self, params: dict) -> list[dict]:
        rows = []
        for (symbol, side), amount in self.positions.items():
            if amount == 0:
                continue
            entry, mark = (
                self.entry_prices.get((symbol, side), Decimal(0)),
                Decimal(self.marks[symbol]),
            )
            rows.append({"symbol": symbol, "positionSide": side, "positionAmt": str(amount),
                         "entryPrice": str(entry), "breakEvenPrice": str(entry), "markPrice": str(mark),
                         "unRealizedProfit": f"{(mark - entry) * amount:.8f}", "liquidationPrice": "0",
                         "isolatedMargin": "0", "notional": f"{mark * amount:.8f}",
                         "marginAsset": "USDT", "isolatedWallet": "0", "initialMargin": "0",
                         "maintMargin": "0", "positionInitialMargin": "0", "openOrderInitialMargin": "0",
                         "adl": 1, "bidNotional": "0", "askNotional": "0", "updateTime": self.now_ms})  # fmt: skip
        return rows

    def _user_trades(self, params: dict) -> list[dict]:
        since = int(params.get("startTime", 0))
        return [t for t in self.trades if t["symbol"] == params["symbol"] and t["time"] >= since]

    def _income(self, params: dict) -> list[dict]:
        since = int(params.get("startTime", 0))
        return [r for r in self.income_rows if r["time"] >= since]

    def _open_orders(self, params: dict) -> list[dict]:
        return [o for o in self.orders.values() if o["status"] == "NEW"
                and o["symbol"] == params.get("symbol", o["symbol"])]  # fmt: skip

    def _cancel_all_open(self, params: dict) -> dict:
        for order in self.orders.values():
            if order["symbol"] == params["symbol"] and order["status"] == "NEW":
                order["status"] = "CANCELED"
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    def _cancel_all_algo(self, params: dict) -> dict:
        for order in self.algo_orders.values():
            if order["symbol"] == params["symbol"] and order["algoStatus"] == "NEW":
                order["algoStatus"] = "CANCELED"
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    def _cancel_algo_order(self, params: dict) -> dict:
        order = next(o for o in self.algo_orders.values() if str(o["algoId"]) == params["algoId"])
        order["algoStatus"] = "CANCELED"
        return {"algoId": order["algoId"], "clientAlgoId": order["clientAlgoId"], "code": "200",
                "msg": "success"}  # fmt: skip


def _error(code: int, msg: str) -> tuple[int, dict, str]:
    return 400, {}, json.dumps({"code": code, "msg": msg})


def _closes_leg(side: str, position_side: str) -> bool:
    return (position_side, side) in (("LONG", "SELL"), ("SHORT", "BUY"))
