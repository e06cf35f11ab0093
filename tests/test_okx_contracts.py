"""OKX contracts arithmetic: base quantity → contracts → base, for every swap the stand-in lists.

One row per listed instrument (tests/okx/instruments_swap.json, the stand-in's markets): the
step and minimum in the base asset, a base quantity and the contracts it must be sent as.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from qtrader.domain.contracts import (
    NotWholeLots,
    base_to_contracts,
    below_minimum,
    contracts_to_base,
    qtrader_symbol,
    round_down_to_lots,
    rules_from_okx,
    spec_from_okx,
)

INSTRUMENTS = {
    row["instId"]: row
    for row in json.loads((Path(__file__).parent / "okx" / "instruments_swap.json").read_text())[
        "data"
    ]
}
D = Decimal

# description, instId, base step, base minimum, base quantity, contracts to send
TABLE = [
    ("BTC: 0.01 BTC a contract, lots of 0.01", "BTC-USDT-SWAP", "0.0001", "0.0001", "0.0157", "1.57"),
    ("ETH: 0.1 ETH a contract", "ETH-USDT-SWAP", "0.001", "0.001", "0.25", "2.5"),
    ("SOL: 1 SOL a contract", "SOL-USDT-SWAP", "0.01", "0.01", "3.07", "3.07"),
    ("XRP: 100 XRP a contract", "XRP-USDT-SWAP", "1", "1", "483", "4.83"),
    ("DOGE: 1000 DOGE a contract", "DOGE-USDT-SWAP", "10", "10", "12340", "12.34"),
    ("BNB: whole contracts only (lotSz 1)", "BNB-USDT-SWAP", "0.01", "0.01", "0.07", "7"),
    ("PEPE: 10M PEPE a contract, lots of 0.1", "PEPE-USDT-SWAP", "1000000", "1000000", "25000000", "2.5"),
]  # fmt: skip


def test_every_listed_instrument_has_a_row():
    assert {row[1] for row in TABLE} == set(INSTRUMENTS)


@pytest.mark.parametrize("description,inst_id,step,minimum,base,contracts", TABLE,
                         ids=[r[0] for r in TABLE])  # fmt: skip
def test_base_to_contracts_and_back(description, inst_id, step, minimum, base, contracts):
    spec = spec_from_okx(INSTRUMENTS[inst_id])
    assert spec.base_step == D(step)
    assert spec.base_min == D(minimum)
    assert base_to_contracts(D(base), spec) == D(contracts)
    assert contracts_to_base(D(contracts), spec) == D(base)
    # one lot more than the quantity is one step more in base
    assert contracts_to_base(D(contracts) + spec.lot_sz, spec) == D(base) + D(step)
    # the minimum converts to exactly minSz contracts, and anything under it is below it
    assert base_to_contracts(D(minimum), spec) == spec.min_sz
    assert below_minimum(D(minimum) - D(step) / 2, spec)
    assert not below_minimum(D(minimum), spec)


@pytest.mark.parametrize("description,inst_id,step,minimum,base,contracts", TABLE,
                         ids=[r[0] for r in TABLE])  # fmt: skip
def test_a_size_between_lots_is_refused_not_rounded(
    description, inst_id, step, minimum, base, contracts
):
    spec = spec_from_okx(INSTRUMENTS[inst_id])
    between = D(base) + D(step) / 3
    with pytest.raises(NotWholeLots, match="not a whole number of lots"):
        base_to_contracts(between, spec)
    assert round_down_to_lots(between, spec) == D(base)


@pytest.mark.parametrize("description,inst_id,step,minimum,base,contracts", TABLE,
                         ids=[r[0] for r in TABLE])  # fmt: skip
def test_market_rules_are_in_the_base_asset(description, inst_id, step, minimum, base, contracts):
    rules = rules_from_okx("X/USDT:USDT", INSTRUMENTS[inst_id])
    assert rules.symbol == qtrader_symbol(inst_id) == inst_id.split("-")[0] + "USDT"
    assert rules.step_size == D(step) and rules.min_qty == D(minimum)
    assert rules.trading and rules.min_notional == 0
    assert rules.tick_size == D(INSTRUMENTS[inst_id]["tickSz"])
    assert rules.max_qty == D(INSTRUMENTS[inst_id]["maxMktSz"]) * D(INSTRUMENTS[inst_id]["ctVal"])


def test_the_ccxt_trap_a_base_quantity_is_never_sent_as_contracts():
    """ccxt's amount_to_precision would turn 0.0157 BTC into 0.01 *contracts* (0.0001 BTC):
    157× too small. Converted first, it is 1.57 contracts."""
    spec = spec_from_okx(INSTRUMENTS["BTC-USDT-SWAP"])
    assert base_to_contracts(D("0.0157"), spec) == D("1.57")
    assert contracts_to_base(D("1.57"), spec) == D("0.0157")


@pytest.mark.parametrize("bad", ["0", "-1"])
def test_a_size_must_be_positive(bad):
    with pytest.raises(NotWholeLots, match="positive"):
        base_to_contracts(D(bad), spec_from_okx(INSTRUMENTS["BTC-USDT-SWAP"]))


def test_an_instrument_without_a_contract_value_is_refused():
    with pytest.raises(ValueError, match="no positive ctVal"):
        spec_from_okx({**INSTRUMENTS["BTC-USDT-SWAP"], "ctVal": ""})


def test_a_suspended_instrument_is_not_trading():
    rules = rules_from_okx("BTC/USDT:USDT", {**INSTRUMENTS["BTC-USDT-SWAP"], "state": "suspend"})
    assert not rules.trading and rules.status == "suspend"


@pytest.mark.parametrize("inst_id", ["BTC-USDT", "BTC-USD-241227", "BTCUSDT"])
def test_only_swap_ids_name_a_qtrader_symbol(inst_id):
    with pytest.raises(ValueError, match="not an OKX swap"):
        qtrader_symbol(inst_id)
