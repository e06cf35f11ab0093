"""OKX contracts arithmetic (pure, Decimal): qtrader thinks in the base asset, OKX in contracts.

An OKX USDT-margined swap is sized in contracts: base quantity = contracts × `ctVal` (BTC-USDT-
SWAP: 0.01 BTC a contract). Orders are sent in contracts (`sz`), a whole number of `lotSz` and
at least `minSz`. ccxt's `amount_to_precision` does not convert (it would send 0.0157 BTC as
0.01 *contracts*): the conversion is done here, exactly, and refuses anything it cannot do
exactly instead of rounding a size 100× off.

The market rules qtrader's sizing uses are expressed in the base asset: step = lotSz × ctVal,
minimum = minSz × ctVal. A quantity rounded down to that step converts to a whole number of
lots, exactly, and back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from qtrader.domain.market import MarketRules
from qtrader.domain.numbers import WIDE, plain

OKX_LIVE = "live"  # instrument state: trading


class NotWholeLots(ValueError):
    """A quantity that is not a whole number of lots: sending it would round it on the way."""


@dataclass(frozen=True)
class ContractSpec:
    """What OKX's GET /api/v5/public/instruments says about one swap's size unit."""

    inst_id: str  # BTC-USDT-SWAP
    ct_val: Decimal  # base asset per contract
    lot_sz: Decimal  # contracts step
    min_sz: Decimal  # contracts minimum
    max_mkt_sz: Decimal | None  # contracts maximum of one market order
    tick_sz: Decimal

    @property
    def base_step(self) -> Decimal:
        return plain(self.lot_sz * self.ct_val)

    @property
    def base_min(self) -> Decimal:
        return plain(self.min_sz * self.ct_val)


def spec_from_okx(info: Mapping[str, Any]) -> ContractSpec:
    """Read an instrument entry (as ccxt keeps it in market['info'])."""
    max_mkt = _dec(info.get("maxMktSz"))
    return ContractSpec(
        inst_id=str(info["instId"]),
        ct_val=_positive(info.get("ctVal"), "ctVal", info),
        lot_sz=_positive(info.get("lotSz"), "lotSz", info),
        min_sz=_positive(info.get("minSz"), "minSz", info),
        max_mkt_sz=max_mkt if max_mkt > 0 else None,
        tick_sz=_positive(info.get("tickSz"), "tickSz", info),
    )


def base_to_contracts(base: Decimal, spec: ContractSpec) -> Decimal:
    """The contracts (`sz`) for a base quantity that is a whole number of lots; else NotWholeLots.
    Sizing rounds down to `spec.base_step` first, so this never rounds."""
    if base <= 0:
        raise NotWholeLots(f"{base} {spec.inst_id}: a size must be positive")
    contracts = WIDE.divide(base, spec.ct_val)
    lots = WIDE.divide(contracts, spec.lot_sz)
    if lots != lots.to_integral_value():
        raise NotWholeLots(
            f"{plain(base)} base = {plain(contracts)} contracts of {spec.inst_id}, not a whole "
            f"number of lots of {plain(spec.lot_sz)} (ctVal {plain(spec.ct_val)}); round the "
            f"base quantity down to a multiple of {spec.base_step} first"
        )
    return plain(contracts)


def contracts_to_base(contracts: Decimal, spec: ContractSpec) -> Decimal:
    """Base-asset quantity of a size in contracts (exact)."""
    return plain(WIDE.multiply(contracts, spec.ct_val))


def round_down_to_lots(base: Decimal, spec: ContractSpec) -> Decimal:
    """The largest base quantity ≤ `base` that is a whole number of lots."""
    step = spec.base_step
    return plain(WIDE.multiply(WIDE.divide_int(base, step), step))


def below_minimum(base: Decimal, spec: ContractSpec) -> bool:
    return base < spec.base_min


def qtrader_symbol(inst_id: str) -> str:
    """BTC-USDT-SWAP → BTCUSDT: the symbol qtrader's tables keep."""
    parts = inst_id.split("-")
    if len(parts) != 3 or parts[2] != "SWAP":
        raise ValueError(f"{inst_id!r} is not an OKX swap instrument id (BASE-QUOTE-SWAP)")
    return parts[0] + parts[1]


def rules_from_okx(unified: str, info: Mapping[str, Any]) -> MarketRules:
    """An OKX swap's rules in qtrader's base-asset terms (symbol BTCUSDT)."""
    spec = spec_from_okx(info)
    return MarketRules(
        symbol=qtrader_symbol(spec.inst_id),
        unified=unified,
        status="TRADING" if info.get("state") == OKX_LIVE else str(info.get("state", "UNKNOWN")),
        step_size=spec.base_step,
        min_qty=spec.base_min,
        max_qty=contracts_to_base(spec.max_mkt_sz, spec) if spec.max_mkt_sz else None,
        tick_size=spec.tick_sz,
        min_notional=Decimal(0),  # OKX has no notional minimum: minSz is the floor
    )


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def _positive(value: Any, name: str, info: Mapping[str, Any]) -> Decimal:
    number = _dec(value)
    if number <= 0:
        raise ValueError(f"instrument {info.get('instId')!r} has no positive {name}: {value!r}")
    return number
