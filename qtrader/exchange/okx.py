"""OKX v5 USDT-margined perpetual swaps through ccxt (`okx`), behind the Exchange port.

The port speaks qtrader's terms: symbols like BTCUSDT, quantities in the base asset, qtrader's
client ids, Binance's fee sign. This adapter translates, and is built on these facts (see
EXCHANGES.md):

- sizes are contracts: `sz` = base / ctVal, a whole number of lotSz, converted exactly with
  Decimal (domain/contracts.py), never through ccxt's amount_to_precision;
- the margin mode travels on every order (`tdMode`), stops and closes included; leverage is
  set per instrument and margin mode (`account/set-leverage`);
- client ids are ≤ 32 letters and digits (domain/okx_ids.py) and unique only among *pending*
  orders: a filled market order's id can be used again, so a resend would double a position.
  An entry carries an `expTime` header, so a request delayed in flight cannot execute after
  the lookup that decided it never arrived; nothing is re-sent without that lookup;
- protection is two reduce-only `conditional` algo orders per position, a stop-loss and a
  take-profit, each triggered on the mark price with its own `algoClOrdId`, placed after the
  entry filled (see docs/how-to/okx.md for why not `attachAlgoOrds` or a whole-position OCO);
  an algo order that triggered but whose order failed (`order_failed`, or `canceled` with a
  `failCode`) is reported expired, as Binance expires a stop that fires with nothing to
  reduce: the position has no stop, and the watchdog repairs it;
- order endpoints are called directly (`trade/order`, `trade/order-algo`), not through
  ccxt's create_order (which posts to batch-orders and sends algo ids as clOrdId), and history
  is paged with OKX's own cursors (ccxt ignores `since` on some of these reads);
- --testnet is OKX demo trading: `set_sandbox_mode(True)` adds `x-simulated-trading: 1` on the
  normal host; the passphrase is ccxt's `password`, sent as a header and never journaled.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import ccxt

from qtrader.domain.contracts import (
    ContractSpec,
    base_to_contracts,
    contracts_to_base,
    rules_from_okx,
    spec_from_okx,
)
from qtrader.domain.market import MarketRules
from qtrader.domain.numbers import plain
from qtrader.domain.okx_ids import BadClientId, okx_client_id, qtrader_client_id
from qtrader.domain.orders import OrderStatus, Refusal, position_side_for
from qtrader.domain.protection import Kind, Resting
from qtrader.errors import ConfigError
from qtrader.exchange.binance import _replace_hosts, _truncate
from qtrader.exchange.codes import OKX, OKX_FIXES, refusal_of
from qtrader.exchange.okx_errors import OkxClockSkew, translate
from qtrader.exchange.okx_limits import EndpointLimits
from qtrader.exchange.port import (
    Account,
    ExchangeRejected,
    ExchangeUnavailable,
    Fill,
    IncomeRow,
    OrderReport,
    OrderRequest,
    PositionDetail,
    PositionInfo,
)
from qtrader.exchange.reads import RetryingReads
from qtrader.secrets import mask

JOURNAL_BODY_LIMIT = 4000
EXP_TIME_S = 10  # an entry that reaches OKX later than this after it was sent is refused
PAGE = 100  # OKX's largest page for fills-history and bills
BILLS_DAYS = 7  # account/bills covers 7 days; older reads go to bills-archive (3 months)
# the algo-order types listed (OKX takes conditional and oco in one request, others apart):
# a stop or target is a conditional (or an OCO made by hand); a trigger order or a trailing
# stop (move_order_stop) placed by hand can open a position, so close-all must see them too
ALGO_KINDS = ("conditional,oco", "trigger", "move_order_stop")
CANCEL_ALGOS_PER_CALL = 10
ORDER_STATES = {
    "live": OrderStatus.OPEN,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "mmp_canceled": OrderStatus.CANCELED,
}
ALGO_STATES = {
    "live": OrderStatus.OPEN,
    "pause": OrderStatus.OPEN,
    "partially_effective": OrderStatus.PARTIALLY_FILLED,
    "effective": OrderStatus.FILLED,  # triggered: its order was placed
    "canceled": OrderStatus.CANCELED,
    # triggered, but its order failed: no stop any more (as Binance expires a stop that fires
    # with nothing to reduce); the position, if any, is naked and the watchdog repairs it
    "order_failed": OrderStatus.EXPIRED,
    "partially_failed": OrderStatus.EXPIRED,
}
ACCOUNT_MODES = {"1": "Spot mode", "2": "Spot and futures mode", "3": "Multi-currency margin",
                 "4": "Portfolio margin"}  # fmt: skip
LIQUIDATION_CATEGORIES = {"full_liquidation", "partial_liquidation", "adl", "delivery"}
POS_SIDES = {"net": "BOTH", "long": "LONG", "short": "SHORT"}
TRADE_BILLS = {"2", "5", "9"}  # trade, liquidation, ADL
FUNDING_BILL = "8"
OTHER_BILLS = {"1": "TRANSFER", "6": "TRANSFER", "7": "INTEREST"}


class _JournalingOkx(ccxt.okx):
    """ccxt's okx that journals every request (no secret: headers are not kept), spends
    OKX's per-endpoint limits instead of ccxt's fixed sleep, and puts `expTime` on orders."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.qt_journal: list[dict[str, Any]] = []
        self.qt_limits = EndpointLimits()
        self.qt_before_network: Callable[[], None] = lambda: None
        self.qt_exp_time_s = EXP_TIME_S

    def throttle(self, cost=None):
        """Not ccxt's fixed interval: fetch2 spends the endpoint's own limit."""

    def fetch2(self, path, api=None, method="GET", params=None, config=None):
        if self.qt_limits.wait_s(path) > 0:
            self.qt_before_network()  # never hold the DuckDB file across a wait
        self.qt_limits.spend(path)
        return super().fetch2(path, api or ["public"], method, params or {}, config or {})

    def sign(self, path, api=None, method="GET", params=None):
        request = super().sign(path, api or ["public"], method, params or {})
        if method == "POST" and path == "trade/order":
            # OKX refuses an order that arrives after expTime: a delayed request cannot
            # execute after qtrader looked it up and found nothing. On OKX's clock (the
            # signing offset), so a local clock behind OKX's does not expire every order.
            deadline = int(self.nonce()) + self.qt_exp_time_s * 1000
            request["headers"] = {**(request["headers"] or {}), "expTime": str(deadline)}
        return request

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
            entry["unhealthy"] = isinstance(exc, ccxt.OperationFailed) and not isinstance(
                exc, ccxt.InvalidNonce
            )
            raise
        finally:
            entry["ms"] = round((time.perf_counter() - started) * 1000, 1)
        entry["response"] = _truncate(response)
        return response


def _params(query: str, body: Any) -> Any:
    """What was asked: the query's pairs and the JSON body's fields (no header is kept)."""
    pairs: dict[str, Any] = dict(parse_qsl(query))
    if isinstance(body, str) and body:
        try:
            decoded = json.loads(body)
        except ValueError:
            decoded = body
        if isinstance(decoded, dict):
            pairs.update(decoded)
        else:
            pairs["body"] = decoded
    return pairs


class OkxSwap(RetryingReads):
    """The ccxt adapter. `mode` is testnet (OKX demo trading) or live."""

    name = "okx"
    clock_skew = OkxClockSkew

    def __init__(
        self,
        mode: str,
        api_key: str,
        api_secret: str,
        passphrase: str,
        api_url: str | None = None,
        margin_mode: str = "isolated",
        timeout_s: float = 10.0,
        read_retries: int = 4,
        retry_wait_s: float = 0.5,
        before_network: Callable[[], None] | None = None,
        exp_time_s: float = EXP_TIME_S,
    ) -> None:
        self.mode = mode
        self.margin_mode = margin_mode
        self.read_retries = read_retries
        self.retry_wait_s = retry_wait_s
        self.client = _JournalingOkx(
            {
                "apiKey": api_key,
                "secret": api_secret,
                "password": passphrase,  # OKX's passphrase: a header, never journaled
                "enableRateLimit": True,
                "timeout": int(timeout_s * 1000),
                "options": {
                    "fetchMarkets": {"types": ["swap"]},
                    "fetchCurrencies": False,
                    "adjustForTimeDifference": False,  # sync_clock() does it once per run
                },
            }
        )
        if before_network is not None:
            self.client.qt_before_network = before_network
        self.client.qt_exp_time_s = exp_time_s
        if mode == "testnet":
            self.client.set_sandbox_mode(True)  # demo trading: x-simulated-trading: 1
        if api_url:
            _replace_hosts(self.client, api_url)
        self._rules: dict[str, MarketRules] = {}
        self._specs: dict[str, ContractSpec] = {}  # qtrader symbol → contract spec
        self._symbols: dict[str, str] = {}  # instId → qtrader symbol
        self._position_modes: dict[tuple[str, str], str] = {}  # (symbol, side) → mgnMode
        # the position mode as re-read after a posSide refusal; from then on every order is
        # sent in it (the caller's cached mode may be up to markets_ttl_s old)
        self.refreshed_hedge_mode: bool | None = None
        self._hedge: bool | None = None  # the position mode as last read (account/config)

    # --- markets and account -------------------------------------------------------------

    @property
    def host(self) -> str:
        parts = urlsplit(self.client.implode_hostname(self.client.urls["api"]["rest"]))
        return f"{parts.scheme}://{parts.netloc}"

    def fetch_markets(self) -> list[dict[str, Any]]:
        markets = self._read(self.client.fetch_markets)
        return [
            m
            for m in markets
            if m.get("swap")
            and m.get("linear")
            and (m.get("info") or {}).get("settleCcy") == "USDT"
        ]

    def use_markets(self, markets: list[dict[str, Any]]) -> dict[str, MarketRules]:
        self.client.set_markets(markets)
        self._rules, self._specs, self._symbols = {}, {}, {}
        for m in markets:
            info = m.get("info") or {}
            rules = rules_from_okx(m["symbol"], info)
            self._rules[rules.symbol] = rules
            self._specs[rules.symbol] = spec_from_okx(info)
            self._symbols[info["instId"]] = rules.symbol
        return self._rules

    def market_rules(self, symbol: str) -> MarketRules | None:
        return self._rules.get(symbol)

    def api_restrictions(self) -> dict[str, Any] | None:
        """The key's permissions, as account/config reports them (`perm`)."""
        config = self._data(self._read(self.client.privateGetAccountConfig))
        first = config[0] if config else {}
        perm = str(first.get("perm", ""))
        return {
            "enableFutures": "trade" in perm,
            "enableWithdrawals": "withdraw" in perm,
            "ipRestrict": bool(first.get("ip")),
            "perm": perm,
            "acctLv": first.get("acctLv"),
        }

    def account_mode(self) -> tuple[bool, str]:
        """OKX's account mode (`acctLv`): swaps need "Spot and futures" (2) or a margin mode
        above it; the simple "Spot mode" (1) cannot trade them (51010)."""
        config = self._data(self._read(self.client.privateGetAccountConfig))
        level = str(config[0].get("acctLv")) if config else ""
        self._hedge = bool(config) and config[0].get("posMode") == "long_short_mode"
        name = ACCOUNT_MODES.get(level, f"acctLv {level or '?'}")
        return level in ("2", "3", "4"), name

    def sync_clock(self) -> int:
        """Server time offset in ms; ccxt signs every request with the corrected time."""
        return int(self._read(self.client.load_time_difference))

    def hedge_mode(self) -> bool:
        config = self._data(self._read(self.client.privateGetAccountConfig))
        self._hedge = bool(config) and config[0].get("posMode") == "long_short_mode"
        return self._hedge

    def account(self) -> Account:
        balance = self._data(
            self._read(lambda: self.client.privateGetAccountBalance({"ccy": "USDT"}))
        )
        usdt = next(
            (d for b in balance for d in b.get("details", []) if d.get("ccy") == "USDT"), {}
        )
        positions = [
            PositionInfo(d.symbol, d.side, d.qty, d.position_side, d.notional)
            for d in self.position_details()
        ]
        return Account(
            wallet_balance=_dec(usdt.get("cashBal")),
            equity=_dec(usdt.get("eq")),
            available=_dec(usdt.get("availEq") or usdt.get("availBal")),
            positions=positions,
        )

    def position_details(self) -> list[PositionDetail]:
        """Open positions, all swaps, one request (GET /api/v5/account/positions), in base."""
        rows = self._data(
            self._read(lambda: self.client.privateGetAccountPositions({"instType": "SWAP"}))
        )
        details = []
        self._position_modes = {}  # as of this read: a closed position's mode is forgotten
        for r in rows:
            symbol = self._symbols.get(r.get("instId", ""))
            contracts = _dec(r.get("pos"))
            if symbol is None or contracts == 0:
                continue
            pos_side = POS_SIDES.get(r.get("posSide", "net"), "BOTH")
            long = contracts > 0 if pos_side == "BOTH" else pos_side == "LONG"
            qty = contracts_to_base(abs(contracts), self._specs[symbol])
            self._position_modes[(symbol, pos_side)] = r.get("mgnMode") or self.margin_mode
            mark = _dec(r.get("markPx"))
            details.append(
                PositionDetail(
                    symbol=symbol,
                    side="BUY" if long else "SELL",
                    qty=qty,
                    position_side=pos_side,
                    entry_price=_dec(r.get("avgPx")),
                    mark_price=mark,
                    unrealized_pnl=_dec(r.get("upl")),
                    notional=abs(_dec(r.get("notionalUsd"))) or qty * mark,
                )
            )
        return details

    def mark_prices(self) -> dict[str, Decimal]:
        rows = self._data(
            self._read(lambda: self.client.publicGetPublicMarkPrice({"instType": "SWAP"}))
        )
        return {
            self._symbols[r["instId"]]: Decimal(str(r["markPx"]))
            for r in rows
            if r.get("instId") in self._symbols and r.get("markPx")
        }

    def liquidation_order_ids(self, symbol: str, since_ms: int | None = None) -> set[str]:
        """Ids of OKX's forced orders (liquidations, ADL) from orders-history (7 days)."""
        params: dict[str, Any] = {"instType": "SWAP", "instId": self._inst(symbol), "limit": PAGE}
        if since_ms is not None:
            params["begin"] = since_ms
        rows = self._data(self._read(lambda: self.client.privateGetTradeOrdersHistory(params)))
        return {str(r["ordId"]) for r in rows if r.get("category") in LIQUIDATION_CATEGORIES}

    def public_read(self, call: Any) -> Any:
        return self._read(lambda: call(self.client))

    def set_leverage(self, symbol: str, leverage: int) -> None:
        """Leverage per instrument and margin mode; hedge mode's isolated legs each have one."""
        inst = self._inst(symbol)
        legs: list[str | None] = [None]
        if self.margin_mode == "isolated" and (
            self._hedge if self._hedge is not None else self.hedge_mode()
        ):
            legs = ["long", "short"]  # long/short mode: each isolated leg has its leverage
        for leg in legs:
            body: dict[str, Any] = {
                "instId": inst,
                "lever": str(leverage),
                "mgnMode": self.margin_mode,
            }
            if leg:
                body["posSide"] = leg
            self._read(lambda b=body: self.client.privatePostAccountSetLeverage(b))

    def set_margin_mode(self, symbol: str, mode: str) -> None:
        """OKX has no per-symbol margin setting: the mode travels on every order (`tdMode`)."""
        if mode not in ("isolated", "cross"):
            raise ConfigError(f"exchange.margin_mode {mode!r} must be isolated or cross")
        self._inst(symbol)
        held = {m for (s, _), m in self._position_modes.items() if s == symbol and m != mode}
        if held:
            # OKX keeps a cross and an isolated position of one swap apart: an entry in the
            # new mode would open a second position its stop does not cover. Refused, as
            # Binance refuses a margin-type change with a position open (-4048).
            raise ExchangeRejected(
                None,
                f"{symbol} has an open {held.pop()} position: margin mode {mode} not used "
                "until it is closed",
                Refusal.OTHER,
            )
        self.margin_mode = mode

    # --- orders --------------------------------------------------------------------------

    def place_order(self, request: OrderRequest) -> OrderReport:
        """One POST, never retried blindly (the sender looks an unknown outcome up first): a
        market order to trade/order (then read back: OKX's answer has no fill), a stop or
        target to trade/order-algo. Only a refusal for the position mode (posSide: the
        account was switched between net and long/short since the caller cached it) is sent
        again, once, in the mode read afresh: OKX refused it, so nothing happened."""
        try:
            return self._place(self._in_known_mode(request))
        except OkxClockSkew:
            # 50102: outside OKX's 30 s window or past its expTime; refused, so nothing
            # happened: resync the clock and send it once more with a fresh expTime
            self.sync_clock()
            return self._place(self._in_known_mode(request))
        except ExchangeRejected as exc:
            if exc.refusal is not Refusal.POSITION_MODE_CHANGED:
                raise
            self.refreshed_hedge_mode = self.hedge_mode()
            return self._place(self._in_known_mode(request))

    def _in_known_mode(self, request: OrderRequest) -> OrderRequest:
        if self.refreshed_hedge_mode is None:
            return request
        side = position_side_for(request.side, request.reduce_only, self.refreshed_hedge_mode)
        return replace(request, position_side=side)

    def _place(self, request: OrderRequest) -> OrderReport:
        spec = self._spec(request.symbol)
        if request.quantity is None:
            raise ExchangeRejected(
                None, "OKX orders need a size: close-position is not used", Refusal.BAD_QUANTITY
            )
        body: dict[str, Any] = {
            "instId": spec.inst_id,
            "tdMode": self._td_mode(request),
            "side": request.side.lower(),
            "sz": str(self._contracts(request.quantity, spec)),
        }
        if request.position_side:
            body["posSide"] = request.position_side.lower()
        elif request.reduce_only:
            body["reduceOnly"] = True  # net mode; long/short mode closes by posSide
        cid = self._okx_id(request.client_order_id)
        if request.kind in ("stop_loss", "take_profit"):
            return self._place_algo(request, body, cid, spec)
        body.update(ordType="market", clOrdId=cid)
        answer = self._call(lambda: self.client.privatePostTradeOrder(body))
        item = self._data(answer)[0]
        placed = OrderReport(
            client_order_id=request.client_order_id,
            exchange_order_id=str(item.get("ordId")) or None,
            status=OrderStatus.OPEN,
            filled_qty=Decimal(0),
            avg_price=None,
            raw=item,
            symbol=request.symbol,
        )
        try:  # the answer carries no fill: read the order back (the sender would ask anyway)
            return self.order_by_client_id(request.symbol, request.client_order_id, False)
        except (ExchangeRejected, ExchangeUnavailable):
            return placed  # accepted; the sender looks it up again before anything else

    def _place_algo(
        self, request: OrderRequest, body: dict[str, Any], cid: str, spec: ContractSpec
    ) -> OrderReport:
        assert request.trigger_price is not None, "a stop or target has a trigger price"
        prefix = "sl" if request.kind == "stop_loss" else "tp"
        body.update(
            ordType="conditional",
            algoClOrdId=cid,
            clOrdId=cid,  # else ccxt injects a random broker id
            **{
                f"{prefix}TriggerPx": str(plain(request.trigger_price)),
                f"{prefix}OrdPx": "-1",  # a market order when triggered
                f"{prefix}TriggerPxType": "mark",
            },
        )
        answer = self._call(lambda: self.client.privatePostTradeOrderAlgo(body))
        item = self._data(answer)[0]
        raw = {**body, **item, "state": "live"}
        return self._report(raw, request.client_order_id, request.symbol, algo=True)

    def order_by_client_id(self, symbol: str, client_id: str, conditional: bool) -> OrderReport:
        """The latest order (or algo order) with this client id; OKX's 51603 is not_found."""
        okx_id = self._okx_id(client_id)
        if conditional:
            answer = self._read(
                lambda: self.client.privateGetTradeOrderAlgo({"algoClOrdId": okx_id})
            )
        else:
            params = {"instId": self._inst(symbol), "clOrdId": okx_id}
            answer = self._read(lambda: self.client.privateGetTradeOrder(params))
        rows = self._data(answer)
        if not rows:
            raise ExchangeRejected(51603, "Order does not exist", Refusal.NOT_FOUND)
        return self._report(rows[0], client_id, symbol, algo=conditional)

    def open_orders(self, symbol: str | None, conditional: bool) -> list[OrderReport]:
        params: dict[str, Any] = {"instType": "SWAP"}
        if symbol:
            params["instId"] = self._inst(symbol)
        if conditional:
            # OKX lists algo orders by type: conditional and oco together, trigger orders (a
            # market order at a price, e.g. placed by hand) apart; close-all must see both
            algo = self.client.privateGetTradeOrdersAlgoPending
            rows = []
            for kinds in ALGO_KINDS:
                rows += self._data(self._read(lambda k=kinds: algo({**params, "ordType": k})))
        else:
            pending = self.client.privateGetTradeOrdersPending
            rows = self._data(self._read(lambda: pending(params)))
        return [
            self._report(r, "", None, algo=conditional)
            for r in rows
            if r.get("instId") in self._symbols
        ]

    def cancel_order(self, symbol: str, exchange_order_id: str, conditional: bool) -> None:
        inst = self._inst(symbol)
        if conditional:
            self._cancel_algos([{"algoId": exchange_order_id, "instId": inst}])
        else:
            body = {"instId": inst, "ordId": exchange_order_id}
            self._call(lambda: self.client.privatePostTradeCancelOrder(body))

    def cancel_all(self, symbol: str, conditional: bool) -> None:
        """Cancel every pending order (or algo order: stops, targets, OCOs) of a symbol. OKX
        has no cancel-all for swaps (ccxt's cancel_all_orders is NotSupported): list, then
        cancel; algo orders ten to a request."""
        pending = [o for o in self.open_orders(symbol, conditional) if o.exchange_order_id]
        inst = self._inst(symbol)
        if conditional:
            items = [{"algoId": o.exchange_order_id, "instId": inst} for o in pending]
            for start in range(0, len(items), CANCEL_ALGOS_PER_CALL):
                self._cancel_algos(items[start : start + CANCEL_ALGOS_PER_CALL])
            return
        for order in pending:
            body = {"instId": inst, "ordId": order.exchange_order_id}
            try:
                self._call(lambda b=body: self.client.privatePostTradeCancelOrder(b))
            except ExchangeRejected as exc:
                if exc.kind != "not_found":  # filled or cancelled meanwhile: gone either way
                    raise

    def _cancel_algos(self, items: list[dict[str, Any]]) -> None:
        """POST cancel-algos (≤ 10). One already gone (51400) is not a failure of a batch; a
        single cancel reports it as not_found, as Binance's cancel does."""
        try:
            answer = self._call(lambda: self.client.privatePostTradeCancelAlgos(items))
        except ExchangeRejected as exc:
            if exc.kind == "not_found" and len(items) > 1:
                return  # every one of them was already gone
            raise
        failed = [d for d in self._data(answer) if str(d.get("sCode", "0")) not in ("0", "51400")]
        if failed:
            code = int(failed[0]["sCode"])
            message = str(failed[0].get("sMsg", ""))
            raise ExchangeRejected(code, message, refusal_of(OKX, code), OKX_FIXES.get(code))

    def fills(self, symbol: str, since_ms: int | None = None) -> list[Fill]:
        """User trades of one swap (GET /api/v5/trade/fills-history, 3 months), oldest
        first, in base quantities with Binance's fee sign (positive = paid)."""
        spec = self._spec(symbol)
        params: dict[str, Any] = {"instType": "SWAP", "instId": spec.inst_id}
        rows = self._paged(self.client.privateGetTradeFillsHistory, params, since_ms)
        return [self._fill(r, symbol, spec) for r in rows]

    def _fill(self, r: dict[str, Any], symbol: str, spec: ContractSpec) -> Fill:
        return Fill(
            trade_id=str(r["tradeId"]),
            order_id=str(r["ordId"]),
            symbol=symbol,
            side=str(r["side"]).upper(),
            position_side=POS_SIDES.get(r.get("posSide", "net"), "BOTH"),
            qty=contracts_to_base(Decimal(str(r["fillSz"])), spec),
            price=Decimal(str(r["fillPx"])),
            commission=-_dec(r.get("fee")),  # OKX: negative when charged; qtrader: positive
            commission_asset=str(r.get("feeCcy") or "USDT"),
            realized_pnl=_dec(r.get("fillPnl")),
            maker=r.get("execType") == "M",
            ts_ms=int(r["ts"]),
            raw=r,
        )

    def income(self, since_ms: int | None = None) -> list[IncomeRow]:
        """The swap bills (GET /api/v5/account/bills, or bills-archive past 7 days), oldest
        first: a trade bill (type 2) as COMMISSION and REALIZED_PNL rows, a funding bill
        (type 8) as FUNDING_FEE — all signed as Binance's income (positive = received)."""
        archive = since_ms is not None and since_ms < (time.time() - BILLS_DAYS * 86400) * 1000
        call = (
            self.client.privateGetAccountBillsArchive
            if archive
            else self.client.privateGetAccountBills
        )
        rows = self._paged(call, {"instType": "SWAP"}, since_ms)
        income: list[IncomeRow] = []
        for r in rows:
            symbol = self._symbols.get(r.get("instId", ""))
            for kind, amount in _bill_amounts(r):
                income.append(
                    IncomeRow(
                        tran_id=str(r["billId"]),
                        symbol=symbol,
                        income_type=kind,
                        amount=amount,
                        asset=str(r.get("ccy") or "USDT"),
                        trade_id=str(r["tradeId"]) if r.get("tradeId") else None,
                        ts_ms=int(r["ts"]),
                        raw=r,
                    )
                )
        return income

    def journal(self) -> list[dict[str, Any]]:
        entries, self.client.qt_journal = self.client.qt_journal, []
        return entries

    # --- plumbing ------------------------------------------------------------------------

    def _paged(self, call: Any, params: dict[str, Any], since_ms: int | None) -> list[dict]:
        """Every row since `since_ms`, oldest first. OKX answers newest first, ≤ 100 a page;
        the next page is `after` the oldest row's billId (its own cursor, not a time)."""
        base = {**params, "limit": str(PAGE)}
        if since_ms is not None:
            base["begin"] = str(since_ms)
        rows: list[dict] = []
        cursor: str | None = None
        # no page cap: the caller moves its cursor to the newest row returned, so stopping
        # early would drop the oldest rows for good; a cursor that does not go down stops it
        while True:
            page_params = {**base, **({"after": cursor} if cursor else {})}
            page = self._data(self._read(lambda p=page_params: call(p)))
            rows.extend(page)
            if len(page) < PAGE:
                break
            oldest = str(page[-1]["billId"])
            if cursor is not None and int(oldest) >= int(cursor):
                raise ExchangeUnavailable(
                    f"OKX history paging did not move past billId {cursor}: rows incomplete"
                )
            cursor = oldest
        rows.sort(key=lambda r: (int(r["ts"]), int(r["billId"])))
        return rows

    def _report(
        self, raw: dict[str, Any], client_id: str, symbol: str | None, algo: bool
    ) -> OrderReport:
        symbol = symbol or self._symbols.get(raw.get("instId", ""))
        spec = self._specs.get(symbol or "")
        okx_id = raw.get("algoClOrdId") if algo else raw.get("clOrdId")
        if algo:
            status = ALGO_STATES.get(str(raw.get("state")), OrderStatus.OPEN)
            if status is OrderStatus.CANCELED and raw.get("failCode"):
                status = OrderStatus.EXPIRED  # cancelled by a failed trigger: no stop
            filled = _dec(raw.get("actualSz"))
            avg = _dec(raw.get("actualPx")) or None
            exchange_id = raw.get("algoId")
        else:
            status = ORDER_STATES.get(str(raw.get("state")), OrderStatus.OPEN)
            filled = _dec(raw.get("accFillSz"))
            avg = _dec(raw.get("avgPx")) or None
            exchange_id = raw.get("ordId")
        cid = qtrader_client_id(okx_id) if okx_id else client_id
        return OrderReport(
            client_order_id=cid,
            exchange_order_id=str(exchange_id) if exchange_id else None,
            status=status,
            filled_qty=contracts_to_base(filled, spec) if spec and filled else Decimal(0),
            avg_price=avg,
            raw=raw,
            symbol=symbol,
            resting=_resting(raw, cid, symbol, spec) if algo else None,
        )

    def _td_mode(self, request: OrderRequest) -> str:
        """A close goes in the mode its position was opened in (as last read); else the
        configured mode."""
        side = request.position_side or "BOTH"
        held = self._position_modes.get((request.symbol, side))
        if request.reduce_only or request.kind != "market":
            return held or self.margin_mode
        if held and held != self.margin_mode:
            # OKX would open a second position beside it (positions are per margin mode),
            # one its stop, sent in the held position's mode, would not cover
            raise ExchangeRejected(
                None,
                f"{request.symbol} has an open {held} position: an entry in {self.margin_mode} "
                "would open a second one; close it or set exchange.margin_mode to "
                f"{held}",
                Refusal.OTHER,
            )
        return self.margin_mode

    def _contracts(self, quantity: Decimal, spec: ContractSpec) -> Decimal:
        try:
            return base_to_contracts(quantity, spec)
        except ValueError as exc:
            raise ExchangeRejected(51121, str(exc), Refusal.BAD_QUANTITY) from None

    def _okx_id(self, client_id: str) -> str:
        try:
            return okx_client_id(client_id)
        except BadClientId as exc:
            raise ExchangeRejected(51000, str(exc), Refusal.OTHER) from None

    def _spec(self, symbol: str) -> ContractSpec:
        spec = self._specs.get(symbol)
        if spec is None:
            raise ExchangeRejected(
                51001,
                f"Instrument ID does not exist: {symbol} is not a listed USDT swap",
                Refusal.UNKNOWN_SYMBOL,
            )
        return spec

    def _inst(self, symbol: str) -> str:
        return self._spec(symbol).inst_id

    @staticmethod
    def _data(answer: Any) -> list[dict[str, Any]]:
        return list((answer or {}).get("data") or [])

    def _translate(self, exc: ccxt.BaseError) -> Exception:
        return translate(exc)


def _resting(
    raw: dict[str, Any], cid: str, symbol: str | None, spec: ContractSpec | None
) -> Resting:
    """An algo order as the protection rules see it: a stop (slTriggerPx) or a target
    (tpTriggerPx) in base quantities; a whole-position one (closeFraction 1) covers any size.
    An OCO carries both legs and is taken for its stop, the leg that must never be missing."""
    stop, target = raw.get("slTriggerPx") or "", raw.get("tpTriggerPx") or ""
    kind = Kind.STOP if stop else Kind.TARGET if target else Kind.OTHER
    whole = str(raw.get("closeFraction")) == "1"
    size = _dec(raw.get("sz"))
    return Resting(
        client_order_id=cid,
        exchange_order_id=str(raw.get("algoId") or ""),
        symbol=symbol or "",
        side=str(raw.get("side", "")).upper(),
        position_side=POS_SIDES.get(str(raw.get("posSide") or "net"), "BOTH"),
        kind=kind,
        qty=None if whole else (contracts_to_base(size, spec) if spec and size else Decimal(0)),
        trigger=_dec(stop or target) or None,
        reduce_only=whole or str(raw.get("reduceOnly")).lower() == "true",
    )


def _bill_amounts(bill: dict[str, Any]) -> list[tuple[str, Decimal]]:
    """A bill as Binance-style income rows (positive = received). A trade (type 2), and the
    exchange's own closes (5 liquidation, 9 ADL), book their fee (negative when charged, as
    Binance's COMMISSION) and their realized pnl; a funding bill (8) its balance change."""
    kind = str(bill.get("type"))
    if kind in TRADE_BILLS:
        rows = [("COMMISSION", _dec(bill.get("fee")))]
        if _dec(bill.get("pnl")) != 0:
            rows.insert(0, ("REALIZED_PNL", _dec(bill.get("pnl"))))
        return rows
    if kind == FUNDING_BILL:
        return [("FUNDING_FEE", _dec(bill.get("balChg")))]
    return [(OTHER_BILLS.get(kind, f"OKX_BILL_{kind}"), _dec(bill.get("balChg")))]


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)
