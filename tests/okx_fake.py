"""A stateful OKX v5 (USDT-margined SWAP) stand-in on top of `responses`.

It answers in OKX's wire format (shapes from the OKX v5 REST docs and ccxt's okx fixtures):
every answer is the envelope `{"code", "msg", "data"}`; an order endpoint's refusal is
`code "1"` with HTTP 200 and the reason in `data[0].sCode/sMsg`; other refusals carry their own
`code` (HTTP 429 for 50011, 401 for a bad key, 200 with 51603 for an unknown order).

It keeps sizes in **contracts** (`sz`, `pos`, `fillSz`; base = contracts × ctVal) and says no
the way OKX does: a reduce-only order with nothing to reduce (51169) or in the position's own
direction (51170), a size that is not a whole number of lots (51121) or under minSz (51020), a
stop or target whose trigger is already crossed at the mark (51277-51280), a client id used by a
*pending* order (51016) or algo order (51065), no tdMode (51000), an unknown instrument (51001),
an order past its `expTime` header (50102), a demo key without `x-simulated-trading: 1`
(50101), and a close-position on a flat instrument (51023). A finished order's `clOrdId` is
free again, as on OKX: a second market order with the same id is a second position.

Faults are scripted per endpoint as in binance_fake: `fail_next(path, method, kind)` where kind
is an error body dict (sent with HTTP 200 unless it has "http"), an HTTP status, "timeout",
"timeout_after_accept", "dropped_after_accept" or "kill_after_accept".
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

INSTRUMENTS = Path(__file__).parent / "okx" / "instruments_swap.json"
HOST = "https://www.okx.com"
TAKER_FEE = Decimal("0.0005")
PRIVATE_HEADERS = ("OK-ACCESS-KEY", "OK-ACCESS-SIGN", "OK-ACCESS-TIMESTAMP", "OK-ACCESS-PASSPHRASE")
ORDER_PATHS = ("/api/v5/trade/order", "/api/v5/trade/order-algo")


@dataclass
class Sent:
    method: str
    path: str
    params: dict[str, str]  # the query string
    body: Any  # the JSON body (a dict, or a list for cancel-algos)
    headers: dict[str, str]

    @property
    def signed(self) -> bool:
        return all(self.headers.get(h) for h in PRIVATE_HEADERS)

    @property
    def fields(self) -> dict[str, Any]:
        return {**self.params, **(self.body if isinstance(self.body, dict) else {})}


def envelope(data: list, code: str = "0", msg: str = "") -> dict:
    return {"code": code, "data": data, "msg": msg}


def refusal(s_code: str, s_msg: str, **ids: str) -> dict:
    """An order endpoint's refusal: code "1", HTTP 200, the reason per item."""
    item = {"clOrdId": "", "ordId": "", "tag": "", "ts": str(int(time.time() * 1000)),
            "sCode": s_code, "sMsg": s_msg, **ids}  # fmt: skip
    return {"code": "1", "data": [item], "msg": "All operations failed"}


@dataclass
class FakeOkx:
    host: str = HOST
    demo: bool = True  # demo trading: private requests need x-simulated-trading: 1
    marks: dict[str, str] = field(default_factory=lambda: {
        "BTC-USDT-SWAP": "50000", "ETH-USDT-SWAP": "3000", "SOL-USDT-SWAP": "140",
        "XRP-USDT-SWAP": "2.07", "DOGE-USDT-SWAP": "0.16", "BNB-USDT-SWAP": "935",
        "PEPE-USDT-SWAP": "0.0000067"})  # fmt: skip
    pos_mode: str = "net_mode"  # or long_short_mode
    wallet: Decimal = Decimal("10000")
    positions: dict[tuple[str, str], Decimal] = field(
        default_factory=dict
    )  # (instId, posSide) → contracts (net: signed)
    entry_px: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    mgn_modes: dict[tuple[str, str], str] = field(default_factory=dict)
    orders: list[dict] = field(default_factory=list)  # every order, oldest first (ids reusable)
    algos: list[dict] = field(default_factory=list)
    fills: list[dict] = field(default_factory=list)  # newest last; served newest first
    bills: list[dict] = field(default_factory=list)
    leverage: dict[tuple[str, str], str] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    faults: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    accepted: list[str] = field(default_factory=list)  # clOrdIds of orders taken, in order
    refuse_orders: dict[str, dict] = field(default_factory=dict)  # instId → (sCode, sMsg)
    now_ms: int = 0
    page_limit_cap: int = 100  # OKX's largest page for fills-history and bills
    chaos: Any = None  # (method, path) → a fault or None, for requests with none scripted
    _ids: Any = field(default_factory=lambda: itertools.count(701986812346470400))
    _trade_ids: Any = field(default_factory=lambda: itertools.count(1189054000))
    _bill_ids: Any = field(default_factory=lambda: itertools.count(701999000000000000))

    def __post_init__(self) -> None:
        self.instruments = {i["instId"]: i for i in json.loads(INSTRUMENTS.read_text())["data"]}

    # --- set-up --------------------------------------------------------------------------

    def install(self, mock: responses.RequestsMock) -> FakeOkx:
        routes = {
            ("GET", "/api/v5/public/instruments"): lambda q, b: envelope(list(self.instruments.values())
                                                                          if q.get("instType") == "SWAP" else []),
            ("GET", "/api/v5/public/time"): lambda q, b: envelope([{"ts": str(int(time.time() * 1000))}]),
            ("GET", "/api/v5/public/mark-price"): self._mark_price,
            ("GET", "/api/v5/account/config"): self._config,
            ("GET", "/api/v5/account/balance"): self._balance,
            ("GET", "/api/v5/account/positions"): self._positions,
            ("POST", "/api/v5/account/set-leverage"): self._set_leverage,
            ("POST", "/api/v5/trade/order"): self._new_order,
            ("GET", "/api/v5/trade/order"): self._get_order,
            ("GET", "/api/v5/trade/orders-pending"): self._orders_pending,
            ("POST", "/api/v5/trade/cancel-order"): self._cancel_order,
            ("POST", "/api/v5/trade/order-algo"): self._new_algo,
            ("GET", "/api/v5/trade/order-algo"): self._get_algo,
            ("GET", "/api/v5/trade/orders-algo-pending"): self._algos_pending,
            ("POST", "/api/v5/trade/cancel-algos"): self._cancel_algos,
            ("POST", "/api/v5/trade/close-position"): self._close_position,
            ("GET", "/api/v5/trade/fills-history"): lambda q, b: self._page(self.fills, q, "billId"),
            ("GET", "/api/v5/account/bills"): self._bills,
            ("GET", "/api/v5/account/bills-archive"): self._bills,
            ("GET", "/api/v5/trade/orders-history"): self._orders_history,
        }  # fmt: skip
        self.routes = routes
        for (method, path), handler in routes.items():
            mock.add_callback(method, re.compile(re.escape(self.host + path) + r"(\?.*)?$"),
                              callback=self._wrap(method, path, handler))  # fmt: skip
        return self

    def fail_next(self, path: str, method: str, *kinds: Any) -> None:
        self.faults.setdefault((method, path), []).extend(kinds)

    def ct_val(self, inst_id: str) -> Decimal:
        return Decimal(self.instruments[inst_id]["ctVal"])

    def position(self, inst_id: str, contracts: str, entry: str | None = None,
                 pos_side: str = "net", mgn_mode: str = "isolated") -> None:  # fmt: skip
        key = (inst_id, pos_side)
        self.positions[key] = Decimal(contracts)
        self.entry_px[key] = Decimal(entry or self.marks[inst_id])
        self.mgn_modes[key] = mgn_mode

    # --- what was sent -------------------------------------------------------------------

    def calls(self, path: str | None = None, method: str | None = None) -> list[Sent]:
        return [s for s in self.sent if (path is None or s.path == path)
                and (method is None or s.method == method)]  # fmt: skip

    def order_posts(self) -> list[Sent]:
        return self.calls("/api/v5/trade/order", "POST")

    def algo_posts(self) -> list[Sent]:
        return self.calls("/api/v5/trade/order-algo", "POST")

    def order(self, cl_ord_id: str) -> dict:
        return [o for o in self.orders if o["clOrdId"] == cl_ord_id][-1]

    def algo(self, algo_cl_ord_id: str) -> dict:
        return [a for a in self.algos if a["algoClOrdId"] == algo_cl_ord_id][-1]

    def live_algos(self, inst_id: str | None = None) -> list[dict]:
        return [a for a in self.algos if a["state"] == "live"
                and inst_id in (None, a["instId"])]  # fmt: skip

    def contracts(self, inst_id: str, pos_side: str = "net") -> Decimal:
        return self.positions.get((inst_id, pos_side), Decimal(0))

    def ledger(self, inst_id: str | None = None) -> dict[str, Decimal]:
        """The bills' totals: fees (negative when charged), pnl, funding (what reports equal)."""
        totals = {"fee": Decimal(0), "pnl": Decimal(0), "funding": Decimal(0)}
        for bill in self.bills:
            if inst_id not in (None, bill["instId"]):
                continue
            if bill["type"] == "2":
                totals["fee"] += Decimal(bill["fee"])
                totals["pnl"] += Decimal(bill["pnl"])
            elif bill["type"] == "8":
                totals["funding"] += Decimal(bill["balChg"])
        return totals

    # --- plumbing ------------------------------------------------------------------------

    def _wrap(self, method: str, path: str, handler):
        def callback(request):
            parts = urlsplit(request.url)
            params = dict(parse_qsl(parts.query))
            raw = request.body.decode() if isinstance(request.body, bytes) else request.body
            body = json.loads(raw) if raw else None
            headers = dict(request.headers)
            self.sent.append(Sent(method, parts.path, params, body, headers))
            if not path.startswith("/api/v5/public/"):
                if not all(headers.get(h) for h in PRIVATE_HEADERS):
                    return 401, {}, json.dumps({"code": "50103", "data": [], "msg":
                                                "Request header OK-ACCESS-KEY cannot be empty."})  # fmt: skip
                if self.demo != (headers.get("x-simulated-trading") == "1"):
                    return 401, {}, json.dumps({"code": "50101", "data": [], "msg":
                                                "APIKey does not match current environment."})  # fmt: skip
            queue = self.faults.get((method, path))
            fault = queue.pop(0) if queue else None
            if fault is None and self.chaos is not None:
                fault = self.chaos(method, path)
            if fault is not None:
                return self._fault(fault, handler, params, body)
            if (method, path) == ("POST", "/api/v5/trade/order") and (
                expired := self._expired(headers)
            ):
                return expired
            result = self.routes.get((method, path), handler)(params, body)
            if isinstance(result, tuple):
                return result
            return 200, {"Content-Type": "application/json"}, json.dumps(result)

        return callback

    def _fault(self, fault: Any, handler, params: dict, body: Any):
        if fault == "timeout_after_accept":
            handler(params, body)
            raise requests.exceptions.ReadTimeout("read timed out")
        if fault == "kill_after_accept":
            handler(params, body)
            raise KeyboardInterrupt("killed after the exchange accepted")
        if fault == "timeout":
            raise requests.exceptions.ConnectTimeout("connect timed out")
        if fault == "dropped_after_accept":
            handler(params, body)
            raise requests.exceptions.ConnectionError("Connection aborted.")
        if isinstance(fault, dict):
            if fault.get("after_accept"):
                handler(params, body)
            status = fault.get("http", 200)
            return status, {}, json.dumps({k: v for k, v in fault.items()
                                           if k not in ("after_accept", "http")})  # fmt: skip
        if fault == "429_html":  # a gateway's 429: no OKX code in the body
            return 429, {}, "<html><body><h1>429 Too Many Requests</h1></body></html>"
        if fault == 429:
            return 429, {}, json.dumps({"msg": "Too Many Requests", "code": "50011"})
        if isinstance(fault, int) and fault >= 500:
            return (
                fault,
                {},
                "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
            )
        if isinstance(fault, int):
            return fault, {}, "<html><body>Too Many Requests</body></html>"
        raise AssertionError(f"unknown fault {fault!r}")

    def _expired(self, headers: dict) -> Any:
        exp = headers.get("expTime")
        if exp and int(exp) < int(time.time() * 1000):
            return 200, {}, json.dumps(refusal("50102", "Timestamp request expired"))
        return None

    def _tick(self) -> str:
        self.now_ms = max(self.now_ms + 1, int(time.time() * 1000))
        return str(self.now_ms)

    # --- public and account --------------------------------------------------------------

    def _mark_price(self, q: dict, b: Any) -> dict:
        return envelope([{"instType": "SWAP", "instId": i, "markPx": p, "ts": self._tick()}
                         for i, p in self.marks.items()])  # fmt: skip

    def _config(self, q: dict, b: Any) -> dict:
        return envelope([{"acctLv": "2", "autoLoan": False, "ctIsoMode": "automatic",
                          "greeksType": "PA", "level": "Lv1", "levelTmp": "",
                          "mgnIsoMode": "automatic", "posMode": self.pos_mode, "spotOffsetType": "",
                          "uid": "44705892343619584", "label": "qtrader", "roleType": "0",
                          "traderInsts": [], "spotRoleType": "0", "opAuth": "0", "kycLv": "2",
                          "ip": "", "perm": "read_only,trade", "mainUid": "44705892343619584"}])  # fmt: skip

    def _upl(self) -> Decimal:
        total = Decimal(0)
        for (inst, side), pos in self.positions.items():
            signed = pos if side == "net" else (pos if side == "long" else -pos)
            total += (
                (Decimal(self.marks[inst]) - self.entry_px[(inst, side)])
                * signed
                * self.ct_val(inst)
            )
        return total

    def _balance(self, q: dict, b: Any) -> dict:
        upl = self._upl()
        eq = self.wallet + upl
        usdt = {"availBal": str(self.wallet), "availEq": str(eq), "borrowFroz": "", "cashBal": str(self.wallet),
                "ccy": "USDT", "crossLiab": "", "disEq": str(eq), "eq": str(eq), "eqUsd": str(eq),
                "fixedBal": "0", "frozenBal": "0", "imr": "", "interest": "", "isoEq": "0", "isoLiab": "",
                "isoUpl": "0", "liab": "", "maxLoan": "", "mgnRatio": "", "mmr": "", "notionalLever": "",
                "ordFrozen": "0", "rewardBal": "0", "spotInUseAmt": "", "clSpotInUseAmt": "",
                "maxSpotInUse": "", "spotIsoBal": "0", "stgyEq": "0", "twap": "0",
                "uTime": self._tick(), "upl": str(upl), "uplLiab": ""}  # fmt: skip
        return envelope([{"adjEq": "", "borrowFroz": "", "details": [usdt], "imr": "", "isoEq": "0",
                          "mgnRatio": "", "mmr": "", "notionalUsd": "", "ordFroz": "",
                          "totalEq": str(eq), "uTime": self._tick(), "upl": str(upl)}])  # fmt: skip

    def _positions(self, q: dict, b: Any) -> dict:
        rows = []
        for (inst, side), pos in self.positions.items():
            if pos == 0 or q.get("instId") not in (None, inst):
                continue
            mark, entry = Decimal(self.marks[inst]), self.entry_px[(inst, side)]
            signed = pos if side != "short" else -pos
            upl = (mark - entry) * signed * self.ct_val(inst)
            rows.append({"adl": "1", "availPos": "" if side == "net" else str(pos), "avgPx": str(entry),
                         "cTime": "1763700000000", "ccy": "USDT", "deltaBS": "", "deltaPA": "",
                         "gammaBS": "", "gammaPA": "", "imr": "", "instId": inst, "instType": "SWAP",
                         "interest": "", "idxPx": str(mark), "last": str(mark),
                         "lever": self.leverage.get((inst, self.mgn_modes.get((inst, side), "isolated")), "3"),
                         "liab": "", "liabCcy": "", "liqPx": "", "margin": "", "markPx": str(mark),
                         "mgnMode": self.mgn_modes.get((inst, side), "isolated"), "mgnRatio": "",
                         "mmr": "", "notionalUsd": str(abs(pos) * self.ct_val(inst) * mark),
                         "optVal": "", "pos": str(pos), "posCcy": "", "posId": "1752810569801498626",
                         "posSide": side, "quoteBal": "", "baseBal": "", "realizedPnl": "0",
                         "thetaBS": "", "thetaPA": "", "tradeId": "", "uTime": self._tick(),
                         "upl": str(upl), "uplRatio": "", "usdPx": "", "vegaBS": "", "vegaPA": "",
                         "fee": "0", "fundingFee": "0", "pnl": "0", "bizRefId": "", "bizRefType": ""})  # fmt: skip
        return envelope(rows)

    def _set_leverage(self, q: dict, body: dict) -> Any:
        inst, mgn = body.get("instId"), body.get("mgnMode")
        if inst not in self.instruments:
            return envelope([], "51001", "Instrument ID does not exist.")
        if mgn not in ("isolated", "cross"):
            return envelope([], "51000", "Parameter mgnMode error")
        if mgn == "isolated" and self.pos_mode == "long_short_mode" and not body.get("posSide"):
            return envelope([], "51000", "Parameter posSide error")
        self.leverage[(inst, mgn)] = body["lever"]
        return envelope([{"instId": inst, "lever": body["lever"], "mgnMode": mgn,
                          "posSide": body.get("posSide", "net")}])  # fmt: skip

    # --- orders --------------------------------------------------------------------------

    def _size_refusal(self, inst: str, sz: str) -> str | None:
        spec = self.instruments[inst]
        size = Decimal(sz)
        if size % Decimal(spec["lotSz"]) != 0:
            return "51121"
        if size < Decimal(spec["minSz"]):
            return "51020"
        return None

    def _pos_side_refusal(self, body: dict) -> tuple[str, str] | None:
        """long/short mode needs posSide long|short; net mode takes none (or net)."""
        pos_side = body.get("posSide", "net")
        hedged = self.pos_mode == "long_short_mode"
        if hedged != (pos_side in ("long", "short")):
            return ("51000", "Parameter posSide error")
        return None

    def _reduce_refusal(self, inst: str, side: str, pos_side: str, sz: Decimal) -> str | None:
        """A reduce-only order must shrink a position: 51169 nothing to reduce, 51170 same side."""
        held = self.positions.get((inst, pos_side), Decimal(0))
        if held == 0:
            return "51169"
        if pos_side == "net" and (held > 0) == (side == "buy"):
            return "51170"
        return None

    def _new_order(self, q: dict, body: dict) -> Any:
        cid, inst = body.get("clOrdId", ""), body.get("instId", "")
        if inst not in self.instruments:
            return refusal("51001", "Instrument ID does not exist.", clOrdId=cid)
        if body.get("tdMode") not in ("isolated", "cross"):
            return refusal("51000", "Parameter tdMode error", clOrdId=cid)
        if inst in self.refuse_orders:
            return refusal(*self.refuse_orders[inst], clOrdId=cid)
        if (bad := self._pos_side_refusal(body)) is not None:
            return refusal(*bad, clOrdId=cid)
        if any(
            o["clOrdId"] == cid and o["state"] in ("live", "partially_filled") for o in self.orders
        ):
            return refusal("51016", "Duplicated clOrdId", clOrdId=cid)
        if (bad := self._size_refusal(inst, body["sz"])) is not None:
            msg = {"51121": f"Order quantity must be a multiple of the lot size {self.instruments[inst]['lotSz']}",
                   "51020": "Order amount should be greater than the min available amount."}[bad]  # fmt: skip
            return refusal(bad, msg, clOrdId=cid)
        pos_side = body.get("posSide", "net")
        sz = Decimal(body["sz"])
        reduce_only = str(body.get("reduceOnly", "false")).lower() == "true"
        if reduce_only and (bad := self._reduce_refusal(inst, body["side"], pos_side, sz)):
            msg = {"51169": "Order failed because you don't have any positions in this direction "
                            "for this contract to reduce or close.",
                   "51170": "Failed to place order. A reduce-only order can’t be the same direction "
                            "as your existing position."}[bad]  # fmt: skip
            return refusal(bad, msg, clOrdId=cid)
        price = Decimal(self.marks[inst])
        if not reduce_only and sz * self.ct_val(inst) * price / 3 > self.wallet:
            return refusal(
                "51008", "Order failed. Insufficient USDT margin in account", clOrdId=cid
            )
        ord_id = str(next(self._ids))
        if reduce_only:
            sz = min(sz, abs(self.positions.get((inst, pos_side), Decimal(0))))
        fee, pnl = self.fill(inst, body["side"], sz, price, pos_side, ord_id, cid,
                             body["tdMode"])  # fmt: skip
        ts = self._tick()
        self.orders.append({"accFillSz": str(sz), "algoClOrdId": "", "algoId": "", "attachAlgoClOrdId": "",
                            "attachAlgoOrds": [], "avgPx": str(price), "cTime": ts, "cancelSource": "",
                            "cancelSourceReason": "", "category": "normal", "ccy": "", "clOrdId": cid,
                            "fee": str(fee), "feeCcy": "USDT", "fillPx": str(price), "fillSz": str(sz),
                            "fillTime": ts, "instId": inst, "instType": "SWAP", "isTpLimit": "false",
                            "lever": "3", "linkedAlgoOrd": {"algoId": ""}, "ordId": ord_id,
                            "ordType": body.get("ordType", "market"), "pnl": str(pnl), "posSide": pos_side,
                            "px": "", "pxType": "", "pxUsd": "", "pxVol": "", "quickMgnType": "",
                            "rebate": "0", "rebateCcy": "USDT", "reduceOnly": str(reduce_only).lower(),
                            "side": body["side"], "slOrdPx": "", "slTriggerPx": "", "slTriggerPxType": "",
                            "source": "", "state": "filled", "stpId": "", "stpMode": "cancel_maker",
                            "sz": body["sz"], "tag": body.get("tag", ""), "tdMode": body["tdMode"],
                            "tgtCcy": "", "tpOrdPx": "", "tpTriggerPx": "", "tpTriggerPxType": "",
                            "tradeId": self.fills[-1]["tradeId"] if self.fills else "", "uTime": ts})  # fmt: skip
        self.accepted.append(cid)
        return envelope([{"clOrdId": cid, "ordId": ord_id, "tag": body.get("tag", ""), "ts": ts,
                          "sCode": "0", "sMsg": "Order placed"}])  # fmt: skip

    def _get_order(self, q: dict, b: Any) -> Any:
        found = [o for o in self.orders if o["instId"] == q.get("instId")
                 and (o["clOrdId"] == q.get("clOrdId") or o["ordId"] == q.get("ordId"))]  # fmt: skip
        if not found:
            return envelope([], "51603", "Order does not exist")
        return envelope([found[-1]])  # the latest order with this client id

    def _orders_pending(self, q: dict, b: Any) -> dict:
        return envelope([o for o in reversed(self.orders) if o["state"] in ("live", "partially_filled")
                         and q.get("instId") in (None, o["instId"])])  # fmt: skip

    def _cancel_order(self, q: dict, body: dict) -> dict:
        for o in self.orders:
            if o["ordId"] == body.get("ordId") and o["state"] in ("live", "partially_filled"):
                o["state"] = "canceled"
                return envelope([{"clOrdId": o["clOrdId"], "ordId": o["ordId"], "ts": self._tick(),
                                  "sCode": "0", "sMsg": ""}])  # fmt: skip
        return refusal("51400", "Order cancellation failed as the order has been filled, canceled "
                                "or does not exist.", ordId=str(body.get("ordId")))  # fmt: skip

    def resting_order(self, cid: str, inst: str, side: str, sz: str, px: str) -> None:
        """A limit order waiting on the book (state live)."""
        ts = self._tick()
        self.orders.append({"accFillSz": "0", "avgPx": "", "cTime": ts, "clOrdId": cid, "fee": "0",
                            "feeCcy": "USDT", "fillPx": "", "fillSz": "0", "instId": inst,
                            "instType": "SWAP", "ordId": str(next(self._ids)), "ordType": "limit",
                            "posSide": "net", "px": px, "reduceOnly": "false", "side": side,
                            "state": "live", "sz": sz, "tdMode": "isolated", "uTime": ts})  # fmt: skip

    # --- algo orders ---------------------------------------------------------------------

    def _new_algo(self, q: dict, body: dict) -> Any:
        cid, inst = body.get("algoClOrdId", ""), body.get("instId", "")
        ids = {"algoClOrdId": cid, "algoId": ""}
        if inst not in self.instruments:
            return refusal("51001", "Instrument ID does not exist.", **ids)
        if body.get("tdMode") not in ("isolated", "cross"):
            return refusal("51000", "Parameter tdMode error", **ids)
        if (bad := self._pos_side_refusal(body)) is not None:
            return refusal(*bad, **ids)
        if body.get("ordType") not in ("conditional", "oco", "trigger"):
            return refusal("51000", "Parameter ordType error", **ids)
        if any(a["algoClOrdId"] == cid and a["state"] == "live" for a in self.algos):
            return refusal("51065", "algoClOrdId already exists.", **ids)
        whole = body.get("closeFraction") == "1"
        if whole and any(
            a["instId"] == inst and a["closeFraction"] == "1" for a in self.live_algos()
        ):
            return refusal(
                "51088", "You can only place 1 TP/SL order to close an entire position.", **ids
            )
        if not whole and (bad := self._size_refusal(inst, body.get("sz", "0"))) is not None:
            return refusal(bad, "Order quantity must be a multiple of the lot size", **ids)
        mark, side = Decimal(self.marks[inst]), body["side"]
        sl, tp = body.get("slTriggerPx"), body.get("tpTriggerPx")
        # a sell closes a long: its stop must be under the price, its target over it (mirrored)
        if sl and (Decimal(sl) >= mark if side == "sell" else Decimal(sl) <= mark):
            code = "51280" if side == "sell" else "51278"
            return refusal(code, f"SL trigger price must be {'lower' if side == 'sell' else 'higher'} "
                                 "than the last price", **ids)  # fmt: skip
        if tp and (Decimal(tp) <= mark if side == "sell" else Decimal(tp) >= mark):
            code = "51279" if side == "sell" else "51277"
            return refusal(code, f"TP trigger price must be {'higher' if side == 'sell' else 'lower'} "
                                 "than the last price", **ids)  # fmt: skip
        algo_id = str(next(self._ids))
        ts = self._tick()
        self.algos.append({"activePx": "", "actualPx": "", "actualSide": "", "actualSz": "0",
                           "algoClOrdId": cid, "algoId": algo_id, "amendPxOnTriggerType": "0",
                           "attachAlgoOrds": [], "cTime": ts, "callbackRatio": "", "callbackSpread": "",
                           "ccy": "", "clOrdId": "", "closeFraction": body.get("closeFraction", ""),
                           "failCode": "", "instId": inst, "instType": "SWAP", "last": str(mark),
                           "lever": "", "moveTriggerPx": "", "ordId": "", "ordIdList": [], "ordPx": "",
                           "ordType": body["ordType"], "posSide": body.get("posSide", "net"),
                           "pxLimit": "", "pxSpread": "", "pxVar": "", "quickMgnType": "",
                           "reduceOnly": str(body.get("reduceOnly", "false")).lower(), "side": side,
                           "slOrdPx": body.get("slOrdPx", ""), "slTriggerPx": sl or "",
                           "slTriggerPxType": body.get("slTriggerPxType", "last") if sl else "",
                           "state": "live", "sz": body.get("sz", "0"), "szLimit": "", "tag": "",
                           "tdMode": body["tdMode"], "tgtCcy": "", "timeInterval": "",
                           "tpOrdPx": body.get("tpOrdPx", ""), "tpTriggerPx": tp or "",
                           "tpTriggerPxType": body.get("tpTriggerPxType", "last") if tp else "",
                           "triggerPx": "", "triggerPxType": "", "triggerTime": "", "uTime": ts})  # fmt: skip
        return envelope([{"algoClOrdId": cid, "algoId": algo_id, "clOrdId": "", "sCode": "0",
                          "sMsg": "", "tag": ""}])  # fmt: skip

    def _get_algo(self, q: dict, b: Any) -> Any:
        found = [a for a in self.algos if a["algoClOrdId"] == q.get("algoClOrdId")
                 or a["algoId"] == q.get("algoId")]  # fmt: skip
        if not found:
            return envelope([], "51603", "Order does not exist")
        return envelope([found[-1]])

    def _algos_pending(self, q: dict, b: Any) -> Any:
        kinds = (q.get("ordType") or "").split(",")
        if not q.get("ordType"):
            return envelope([], "51000", "Parameter ordType error")
        return envelope([a for a in reversed(self.algos) if a["state"] == "live" and a["ordType"] in kinds
                         and q.get("instId") in (None, a["instId"])])  # fmt: skip

    def _cancel_algos(self, q: dict, body: list) -> Any:
        if not isinstance(body, list) or len(body) > 10:
            return envelope([], "51000", "Parameter algoId error")  # at most 10 per request
        answers = []
        for item in body:
            algo = next((a for a in self.algos if a["algoId"] == item.get("algoId")
                         and a["instId"] == item.get("instId")), None)  # fmt: skip
            if algo is None or algo["state"] != "live":
                answers.append({"algoClOrdId": "", "algoId": item.get("algoId"), "sCode": "51400",
                                "sMsg": "Cancellation failed as the order has been filled, canceled or does not exist."})  # fmt: skip
                continue
            algo["state"] = "canceled"
            answers.append({"algoClOrdId": algo["algoClOrdId"], "algoId": algo["algoId"],
                            "sCode": "0", "sMsg": ""})  # fmt: skip
        failed = [a for a in answers if a["sCode"] != "0"]
        code = "0" if not failed else ("1" if len(failed) == len(answers) else "2")
        return {"code": code, "data": answers, "msg": ""}

    def _orders_history(self, q: dict, b: Any) -> dict:
        rows = [o for o in reversed(self.orders) if o["state"] in ("filled", "canceled")
                and q.get("instId") in (None, o["instId"])
                and int(o["cTime"]) >= int(q.get("begin", 0))]  # fmt: skip
        return envelope(rows[: int(q.get("limit", 100))])

    def liquidate(self, inst: str, price: str, pos_side: str = "net") -> str:
        """OKX force-closes a position: an order of category full_liquidation, its fill and
        a liquidation bill (type 5)."""
        held = self.positions[(inst, pos_side)]
        self.marks[inst] = price
        side = "sell" if held > 0 else "buy"
        ord_id = str(next(self._ids))
        self.fill(inst, side, abs(held), Decimal(price), pos_side, ord_id, "", "isolated")
        self.bills[-1]["type"] = "5"
        ts = self._tick()
        self.orders.append({"accFillSz": str(abs(held)), "avgPx": price, "cTime": ts,
                            "category": "full_liquidation", "clOrdId": "", "fee": self.fills[-1]["fee"],
                            "feeCcy": "USDT", "instId": inst, "instType": "SWAP", "ordId": ord_id,
                            "ordType": "market", "posSide": pos_side, "reduceOnly": "true",
                            "side": side, "state": "filled", "sz": str(abs(held)),
                            "tdMode": "isolated", "uTime": ts})  # fmt: skip
        return ord_id

    def fire(self, algo_cl_ord_id: str, price: str) -> None:
        """The exchange triggers a stop-loss/take-profit at `price` (the mark): it places a
        reduce-only market order; with nothing left to reduce that order fails and the algo
        order ends `order_failed` with its failCode (the position, if any, is naked)."""
        algo = self.algo(algo_cl_ord_id)
        inst, side, pos_side = algo["instId"], algo["side"], algo["posSide"]
        self.marks[inst] = price
        held = abs(self.positions.get((inst, pos_side), Decimal(0)))
        algo["triggerTime"] = self._tick()
        if algo["reduceOnly"] == "true" and (
            bad := self._reduce_refusal(inst, side, pos_side, Decimal(0))
        ):
            algo["state"], algo["failCode"] = "order_failed", bad
            return
        sz = held if algo["closeFraction"] == "1" else min(Decimal(algo["sz"]), held)
        ord_id = str(next(self._ids))
        self.fill(
            inst, side, sz, Decimal(price), pos_side, ord_id, "", algo["tdMode"], algo["algoId"]
        )
        algo.update(state="effective", ordId=ord_id, ordIdList=[ord_id], actualSz=str(sz),
                    actualPx=price, actualSide="sl" if algo["slTriggerPx"] else "tp")  # fmt: skip

    def fail_trigger(self, algo_cl_ord_id: str, price: str, fail_code: str = "51008") -> None:
        """The trigger fires but its order is refused: the stop is gone, the position stays."""
        algo = self.algo(algo_cl_ord_id)
        self.marks[algo["instId"]] = price
        algo.update(state="order_failed", failCode=fail_code, triggerTime=self._tick())

    # --- positions -----------------------------------------------------------------------

    def _close_position(self, q: dict, body: dict) -> Any:
        inst, pos_side = body.get("instId", ""), body.get("posSide", "net")
        if body.get("mgnMode") not in ("isolated", "cross"):
            return envelope([], "51000", "Parameter mgnMode error")
        held = self.positions.get((inst, pos_side), Decimal(0))
        if held == 0:
            return envelope([], "51023", "Position does not exist.")
        if self.mgn_modes.get((inst, pos_side), "isolated") != body["mgnMode"]:
            return envelope([], "51023", "Position does not exist.")
        side = "sell" if (held > 0 if pos_side == "net" else pos_side == "long") else "buy"
        ord_id = str(next(self._ids))
        cid = body.get("clOrdId", "")
        self.fill(
            inst, side, abs(held), Decimal(self.marks[inst]), pos_side, ord_id, cid, body["mgnMode"]
        )
        if str(body.get("autoCxl", "false")).lower() == "true":
            for o in self.orders:
                if o["instId"] == inst and o["state"] == "live" and o["reduceOnly"] == "true":
                    o["state"] = "canceled"
        return envelope([{"clOrdId": cid, "instId": inst, "posSide": pos_side, "tag": ""}])

    def fill(self, inst: str, side: str, sz: Decimal, price: Decimal, pos_side: str, ord_id: str,
             cid: str, td_mode: str, algo_id: str = "") -> tuple[Decimal, Decimal]:  # fmt: skip
        """Move the position, record the fill and its trade bill (fee negative when charged)."""
        key = (inst, pos_side)
        ct = self.ct_val(inst)
        before = self.positions.get(key, Decimal(0))
        signed = sz if (side == "buy") == (pos_side != "short") else -sz
        if pos_side != "net":  # hedge legs hold positive sizes
            signed = sz if (side == "buy") == (pos_side == "long") else -sz
        pnl = Decimal(0)
        if before != 0 and (before > 0) != (signed > 0):
            closed = min(abs(before), sz)
            direction = 1 if before > 0 else -1
            if pos_side == "short":
                direction = -1
            pnl = (price - self.entry_px[key]) * closed * ct * direction
        elif before == 0:
            self.entry_px[key] = price
            self.mgn_modes[key] = td_mode
        else:
            held = abs(before)
            self.entry_px[key] = (self.entry_px[key] * held + price * sz) / (held + sz)
        self.positions[key] = before + signed
        fee = -(sz * ct * price * TAKER_FEE)
        self.wallet += pnl + fee
        ts = self._tick()
        trade_id, bill_id = str(next(self._trade_ids)), str(next(self._bill_ids))
        self.fills.append({"instType": "SWAP", "instId": inst, "tradeId": trade_id, "ordId": ord_id,
                           "clOrdId": cid, "billId": bill_id, "subType": "1" if signed > 0 else "2",
                           "tag": "", "fillPx": str(price), "fillSz": str(sz), "fillIdxPx": str(price),
                           "fillPnl": str(pnl), "fillPxVol": "", "fillPxUsd": "", "fillMarkVol": "",
                           "fillFwdPx": "", "fillMarkPx": str(price), "side": side, "posSide": pos_side,
                           "execType": "T", "feeCcy": "USDT", "fee": str(fee), "ts": ts,
                           "fillTime": ts, "feeRate": str(-TAKER_FEE), "tradeQuoteCcy": "",
                           "algoId": algo_id})  # fmt: skip
        self.bills.append({"bal": str(self.wallet), "balChg": str(pnl + fee), "billId": bill_id,
                           "ccy": "USDT", "clOrdId": cid, "execType": "T", "fee": str(fee),
                           "fillFwdPx": "", "fillIdxPx": "", "fillMarkPx": "", "fillMarkVol": "",
                           "fillPxUsd": "", "fillPxVol": "", "fillTime": ts, "from": "",
                           "instId": inst, "instType": "SWAP", "interest": "0", "mgnMode": td_mode,
                           "notes": "", "ordId": ord_id, "pnl": str(pnl), "posBal": "0",
                           "posBalChg": "0", "px": str(price), "subType": "1", "sz": str(sz),
                           "tag": "", "to": "", "tradeId": trade_id, "ts": ts, "type": "2"})  # fmt: skip
        return fee, pnl

    def funding(self, inst: str, amount: str) -> None:
        """A funding bill (type 8) now: balChg positive = received (subType 174), else paid (173)."""
        ts = self._tick()
        change = Decimal(amount)
        self.wallet += change
        self.bills.append({"bal": str(self.wallet), "balChg": amount, "billId": str(next(self._bill_ids)),
                           "ccy": "USDT", "clOrdId": "", "execType": "", "fee": "0", "fillTime": ts,
                           "from": "", "instId": inst, "instType": "SWAP", "interest": "0",
                           "mgnMode": "isolated", "notes": "", "ordId": "", "pnl": amount, "posBal": "0",
                           "posBalChg": "0", "px": "", "subType": "174" if change > 0 else "173",
                           "sz": "0", "tag": "", "to": "", "tradeId": "", "ts": ts, "type": "8"})  # fmt: skip

    # --- history, paged by OKX's own cursors -------------------------------------------

    def _bills(self, q: dict, b: Any) -> dict:
        rows = [r for r in self.bills if q.get("instType") in (None, r["instType"])
                and q.get("type") in (None, r["type"])]  # fmt: skip
        return self._page(rows, q, "billId")

    def _page(self, rows: list[dict], q: dict, cursor: str) -> dict:
        """Newest first; `after` = older than that id, `before` = newer; `begin`/`end` in ms;
        at most `limit` (≤ 100) rows, as OKX pages fills-history and bills."""
        rows = [r for r in rows if q.get("instId") in (None, r["instId"])
                and q.get("instType") in (None, r["instType"])]  # fmt: skip
        if "begin" in q:
            rows = [r for r in rows if int(r["ts"]) >= int(q["begin"])]
        if "end" in q:
            rows = [r for r in rows if int(r["ts"]) <= int(q["end"])]
        if "after" in q:
            rows = [r for r in rows if int(r[cursor]) < int(q["after"])]
        if "before" in q:
            rows = [r for r in rows if int(r[cursor]) > int(q["before"])]
        rows = sorted(rows, key=lambda r: int(r[cursor]), reverse=True)
        limit = min(int(q.get("limit", 100)), self.page_limit_cap)
        if "before" in q:  # OKX returns the rows just newer than the cursor
            return envelope(rows[-limit:])
        return envelope(rows[:limit])
