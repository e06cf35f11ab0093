"""The Exchange port: what the steps need from an exchange, in qtrader's own vocabulary.

Adapters (ccxt for Binance USDⓈ-M; paper later) translate to and from it. Errors come in
three kinds, each a QtraderError with an exit code:
- ExchangeRejected: the exchange said no (its code and message, and what that means in
  qtrader's words: a `Refusal`, the same on every exchange); permanent for that request, and
  nothing happened;
- ExchangeUnavailable: the request could not be completed (network, 5xx, rate limit after
  retries); for an order POST the outcome may be unknown (NotSentError: certainly not acted on);
- ExchangeBanned: HTTP 418, the IP is banned; stop at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from qtrader.domain.market import MarketRules
from qtrader.domain.orders import OrderStatus, Refusal, with_fix
from qtrader.domain.protection import Resting
from qtrader.errors import QtraderError


class ExchangeRejected(QtraderError):
    def __init__(
        self,
        code: int | None,
        message: str,
        refusal: Refusal = Refusal.OTHER,
        fix: str | None = None,
    ) -> None:
        self.code = code  # the exchange's own number, kept for people
        self.exchange_message = message  # as the exchange said it
        self.refusal = refusal  # what it means: decisions are taken on this alone
        self.fix = fix  # exchange-specific advice, when the general one would not do
        super().__init__(f"exchange rejected the request ({code}): {self.reason}")

    @property
    def kind(self) -> str:
        """rejected | not_found | no_change"""
        if self.refusal in (Refusal.NOT_FOUND, Refusal.NO_CHANGE):
            return self.refusal.value
        return "rejected"

    @property
    def reason(self) -> str:
        """The exchange's message, ending with what to do about it when qtrader knows."""
        return with_fix(self.refusal, self.exchange_message, self.fix)


class ExchangeUnavailable(QtraderError):
    """Network error, timeout, 5xx, or rate limit that outlasted the retries."""


class NotSentError(ExchangeUnavailable):
    """The exchange certainly did not act on the request (rate limited, clock skew)."""


class ExchangeBanned(QtraderError):
    """HTTP 418: the IP is banned for a while; nothing more should be sent."""


@dataclass(frozen=True)
class OrderReport:
    client_order_id: str
    exchange_order_id: str | None
    status: OrderStatus
    filled_qty: Decimal
    avg_price: Decimal | None
    raw: dict[str, Any] = field(default_factory=dict)
    symbol: str | None = None
    # A conditional order as the protection rules see it, when the adapter's raw answer is not
    # in Binance's words (the rules read Binance's algo-order fields otherwise).
    resting: Resting | None = None


@dataclass(frozen=True)
class Found:
    report: OrderReport


@dataclass(frozen=True)
class NotFound:
    """The exchange answered that it has no order with this client id."""


@dataclass(frozen=True)
class CannotTell:
    """No answer (timeout, 5xx, rate limit, an error that is not "does not exist")."""

    reason: str


Lookup = Found | NotFound | CannotTell


@dataclass(frozen=True)
class PositionInfo:
    symbol: str  # exchange id
    side: str  # BUY (long) | SELL (short)
    qty: Decimal  # absolute contracts
    position_side: str  # BOTH (one-way) | LONG | SHORT (hedge)
    notional: Decimal


@dataclass(frozen=True)
class PositionDetail:
    """A position as GET /fapi/v3/positionRisk reports it (entry and mark price included)."""

    symbol: str
    side: str  # BUY (long) | SELL (short)
    qty: Decimal
    position_side: str
    entry_price: Decimal
    mark_price: Decimal
    unrealized_pnl: Decimal
    notional: Decimal


@dataclass(frozen=True)
class Account:
    wallet_balance: Decimal
    equity: Decimal  # margin balance: wallet + unrealized
    available: Decimal
    positions: list[PositionInfo]

    def position(self, symbol: str) -> PositionInfo | None:
        return next((p for p in self.positions if p.symbol == symbol), None)


@dataclass(frozen=True)
class Fill:
    """One user trade: the exchange's record of (part of) an order filling."""

    trade_id: str
    order_id: str
    symbol: str
    side: str  # BUY | SELL
    position_side: str
    qty: Decimal
    price: Decimal
    commission: Decimal  # as Binance reports it, in commission_asset
    commission_asset: str
    realized_pnl: Decimal
    maker: bool
    ts_ms: int
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IncomeRow:
    """One row of the income ledger: funding fees, commissions, realized PnL, transfers…"""

    tran_id: str
    symbol: str | None
    income_type: str  # FUNDING_FEE | COMMISSION | REALIZED_PNL | TRANSFER | …
    amount: Decimal  # signed, in asset
    asset: str
    trade_id: str | None
    ts_ms: int
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OrderRequest:
    symbol: str
    side: str  # BUY | SELL
    quantity: Decimal | None
    client_order_id: str
    reduce_only: bool = False
    position_side: str | None = None  # hedge mode: LONG | SHORT
    trigger_price: Decimal | None = None  # set for stop-loss / take-profit
    kind: str = "market"  # market | stop_loss | take_profit


class Exchange(Protocol):
    host: str
    name: str  # binanceusdm | bybit | okx | paper

    def fetch_markets(self) -> list[dict[str, Any]]: ...
    def use_markets(self, markets: list[dict[str, Any]]) -> dict[str, MarketRules]: ...
    def market_rules(self, symbol: str) -> MarketRules | None: ...
    def sync_clock(self) -> int: ...
    def hedge_mode(self) -> bool: ...
    def account(self) -> Account: ...
    def mark_prices(self) -> dict[str, Decimal]: ...
    def set_leverage(self, symbol: str, leverage: int) -> None: ...
    def set_margin_mode(self, symbol: str, mode: str) -> None: ...
    def place_order(self, request: OrderRequest) -> OrderReport: ...
    def order_by_client_id(self, symbol: str, client_id: str, conditional: bool) -> OrderReport: ...
    def open_orders(self, symbol: str | None, conditional: bool) -> list[OrderReport]: ...
    def cancel_order(self, symbol: str, exchange_order_id: str, conditional: bool) -> None: ...
    def cancel_all(self, symbol: str, conditional: bool) -> None: ...
    def fills(self, symbol: str, since_ms: int | None = None) -> list[Fill]: ...
    def position_details(self) -> list[PositionDetail]: ...
    def liquidation_order_ids(self, symbol: str, since_ms: int | None = None) -> set[str]: ...
    def income(self, since_ms: int | None = None) -> list[IncomeRow]: ...
    def journal(self) -> list[dict[str, Any]]: ...
