"""The fault soak (tests/test_fault_soak.py) on OKX: the same seeded cycles of signals, prices
moving through stops and targets, and faults on ~20 % of order requests — OKX's own: 50011
rate limit (HTTP 429), 51149 order timeout with the order taken, 503, timeouts before and after
OKX took the order, dropped connections and killed processes. After every cycle and a clean
reconcile: no signal's entry was taken twice (on OKX a filled order's clOrdId is free again, so
a blind resend would be taken), every open position has exactly one stop covering all of it,
and nothing OKX took is booked rejected or not found."""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal

import pytest

from qtrader.domain.okx_ids import okx_client_id
from tests.conftest import query
from tests.test_fault_soak import SEED, SYMBOLS, Chaos, _soaking, soak

pytestmark = pytest.mark.usefixtures("signal_sizing")

OKX_ORDER_REQUESTS = {("POST", "/api/v5/trade/order"), ("POST", "/api/v5/trade/order-algo"),
                      ("POST", "/api/v5/trade/cancel-algos")}  # fmt: skip
OKX_FAULTS = [
    "timeout_after_accept",
    "timeout",
    "dropped_after_accept",
    503,
    429,
    {"code": "1", "msg": "", "after_accept": True,
     "data": [{"clOrdId": "", "ordId": "", "sCode": "51149", "sMsg": "Order timed out"}]},
    "kill_after_accept",
]  # fmt: skip


def inst(symbol: str) -> str:
    return symbol.removesuffix("USDT") + "-USDT-SWAP"


class BySymbol:
    """The stand-in as the soak's signal maker reads it: marks by qtrader symbol."""

    def __init__(self, fake) -> None:
        self.fake = fake

    @property
    def marks(self) -> dict[str, str]:
        return {symbol: self.fake.marks[inst(symbol)] for symbol in SYMBOLS}


@pytest.fixture
def okx(okx_env):
    import responses

    from tests.okx_fake import FakeOkx

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeOkx().install(mock)


@pytest.fixture
def okx_env(monkeypatch):
    from qtrader.exchange.okx_limits import EndpointLimits

    monkeypatch.setenv("QTRADER_EXCHANGE_NAME", "okx")
    monkeypatch.setenv("OKX_API_KEY", "okx-key-0123456789abcdef")
    monkeypatch.setenv("OKX_API_SECRET", "okx-secret-fedcba9876543210")
    monkeypatch.setenv("OKX_API_PASSPHRASE", "Pass-phrase-42")
    monkeypatch.setenv("QTRADER_EXCHANGE_RETRY_WAIT_S", "0")
    monkeypatch.setattr(EndpointLimits, "wait_s", lambda self, path: 0.0)


@pytest.fixture
def okx_chaos(okx, monkeypatch):
    chaos = Chaos(random.Random(SEED), OKX_ORDER_REQUESTS, OKX_FAULTS)
    okx.chaos = chaos
    return _soaking(chaos, monkeypatch)


def move_prices_okx(rng: random.Random, view: BySymbol) -> int:
    """Marks move up to ±3 %; every stop or target the move crosses fires."""
    fake, fired = view.fake, 0
    for symbol in SYMBOLS:
        mark = Decimal(fake.marks[inst(symbol)]) * Decimal(str(1 + rng.uniform(-0.03, 0.03)))
        fake.marks[inst(symbol)] = str(mark.quantize(Decimal("0.01")))
    for algo in list(fake.live_algos()):
        mark = Decimal(fake.marks[algo["instId"]])
        sell = algo["side"] == "sell"
        if algo["slTriggerPx"]:
            crossed = (
                mark <= Decimal(algo["slTriggerPx"])
                if sell
                else mark >= Decimal(algo["slTriggerPx"])
            )
        else:
            crossed = (
                mark >= Decimal(algo["tpTriggerPx"])
                if sell
                else mark <= Decimal(algo["tpTriggerPx"])
            )
        if crossed:
            fake.fire(algo["algoClOrdId"], str(mark))
            fired += 1
    return fired


def assert_invariants_okx(view: BySymbol, db_path) -> None:
    fake = view.fake
    entries = Counter(c for c in fake.accepted if c.endswith("e"))
    assert all(n == 1 for n in entries.values()), f"an entry was taken twice: {entries}"
    for (inst_id, leg), contracts in fake.positions.items():
        if contracts == 0:
            continue
        stops = [a for a in fake.live_algos(inst_id) if a["slTriggerPx"] and a["posSide"] == leg]
        assert len(stops) == 1, f"{inst_id} {contracts}: {len(stops)} stops"
        assert Decimal(stops[0]["sz"]) == abs(contracts), f"{inst_id}: the stop does not cover"
    taken = set(fake.accepted) | {a["algoClOrdId"] for a in fake.algos}
    lost = query(db_path, "SELECT client_order_id, status FROM orders "
                          "WHERE status IN ('rejected', 'not_found')")  # fmt: skip
    booked = [c for c, _ in lost if okx_client_id(c) in taken]
    assert not booked, f"taken by OKX, booked {lost}: " + str(
        [(query(db_path, "SELECT role, status, error_code, refusal, error FROM orders "
                         "WHERE client_order_id = ?", [c]),
          [(a["state"], a["failCode"], a["slTriggerPx"], a["sz"]) for a in fake.algos
           if a["algoClOrdId"] == okx_client_id(c)]) for c in booked])  # fmt: skip


def test_fault_soak_on_okx(okx, db_path, okx_chaos):
    soak(BySymbol(okx), db_path, okx_chaos, move_prices_okx, assert_invariants_okx)
