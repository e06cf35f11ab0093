"""Fault soak (issue 12): seeded cycles of signals, prices moving through stops and targets,
random faults on ~20 % of order requests and killed processes, each cycle followed by a
clean reconcile; the invariants are asserted after every cycle:

- one signal never produces two entry orders (the stand-in counts what it accepted);
- every open position has exactly one stop covering all of it;
- no order the exchange took is recorded as rejected or not found.

It runs on the Binance stand-in and on the Bybit v5 stand-in (the same cycles, Bybit's faults:
10006 rate limit, 10016 with the order taken, HTTP 502 and 403-free timeouts).

`QTRADER_SOAK_CYCLES` and `QTRADER_SOAK_SEED` change the run (defaults keep CI under a
minute); the counts are printed, so `pytest -s tests/test_fault_soak.py` reports them.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from decimal import Decimal

import pytest

from qtrader.store.batch import WriteBatch
from tests.conftest import invoke, invoke_json, query

pytestmark = pytest.mark.usefixtures("exchange_env", "signal_sizing")

CYCLES = int(os.environ.get("QTRADER_SOAK_CYCLES", "25"))  # x3 exchanges in make test
SEED = int(os.environ.get("QTRADER_SOAK_SEED", "20261201"))
FAULT_RATE = 0.2
SYMBOLS = {"BTCUSDT": 400, "ETHUSDT": 60, "SOLUSDT": 300, "BNBUSDT": 100, "XRPUSDT": 20}
ORDER_REQUESTS = {("POST", "/fapi/v1/order"), ("POST", "/fapi/v1/algoOrder"),
                  ("DELETE", "/fapi/v1/algoOrder")}  # fmt: skip
FAULTS = [
    "timeout_after_accept",
    "timeout",
    "dropped_after_accept",
    503,
    429,
    {"code": -1007, "after_accept": True,
     "msg": "Timeout waiting for response from backend server. Send status unknown; "
            "execution status unknown."},
    "kill_after_accept",
]  # fmt: skip


BYBIT_ORDER_REQUESTS = {("POST", "/v5/order/create"), ("POST", "/v5/order/cancel")}
BYBIT_FAULTS = [
    "timeout_after_accept",
    "timeout",
    "dropped_after_accept",
    502,
    {"retCode": 10006, "retMsg": "Too many visits. Exceeded the API Rate Limit."},
    {"retCode": 10016, "retMsg": "Internal system error.", "after_accept": True},
    "kill_after_accept",
]  # fmt: skip


class Chaos:
    """Faults on order requests at FAULT_RATE; a kill also makes the rest of that command
    lose its unwritten records, as kill -9 would."""

    def __init__(self, rng: random.Random, requests=None, faults=None) -> None:
        self.rng = rng
        self.on = False
        self.dead = False
        self.counts: Counter[str] = Counter()
        self.requests = requests or ORDER_REQUESTS
        self.faults = faults or FAULTS

    def __call__(self, method: str, path: str):
        if not self.on or (method, path) not in self.requests:
            return None
        self.counts["order_requests"] += 1
        if self.rng.random() >= FAULT_RATE:
            return None
        fault = self.rng.choice(self.faults)
        name = fault.get("code", fault.get("retCode")) if isinstance(fault, dict) else fault
        self.counts[str(name)] += 1
        if fault == "kill_after_accept":
            self.dead = True
        return fault


@pytest.fixture
def chaos(binance, monkeypatch):
    chaos = Chaos(random.Random(SEED))
    binance.chaos = chaos
    return _soaking(chaos, monkeypatch)


@pytest.fixture
def bybit_chaos(bybit, bybit_env, monkeypatch):
    chaos = Chaos(random.Random(SEED), BYBIT_ORDER_REQUESTS, BYBIT_FAULTS)
    bybit.chaos = chaos
    return _soaking(chaos, monkeypatch)


def _soaking(chaos: Chaos, monkeypatch) -> Chaos:
    commit = WriteBatch.commit

    def commit_unless_dead(self, store):
        if not chaos.dead:
            commit(self, store)

    monkeypatch.setattr(WriteBatch, "commit", commit_unless_dead)
    monkeypatch.setenv("QTRADER_EXCHANGE_READ_RETRIES", "2")
    monkeypatch.setenv("QTRADER_RISK_MAX_TRADES_PER_HOUR", "1000")
    monkeypatch.setenv("QTRADER_RISK_COOLDOWN_AFTER_STOP_S", "1")
    monkeypatch.setenv("QTRADER_RISK_MAX_CONSECUTIVE_LOSSES", "1000")  # keep trading to the end
    monkeypatch.setenv("QTRADER_RISK_MAX_DRAWDOWN_PCT", "90")
    monkeypatch.setenv("QTRADER_RISK_OPPOSITE_SIGNAL", "reverse")  # reversals too
    return chaos


def signal(rng: random.Random, n: int, binance) -> dict:
    symbol = rng.choice(list(SYMBOLS))
    mark = Decimal(binance.marks[symbol])
    size = SYMBOLS[symbol]
    side = rng.choice(["BUY", "SELL", "BUY", "SELL", "CLOSE"])
    item = {"intent_id": f"soak-{SEED}-{n}", "symbol": symbol, "side": side, "confidence": 0.9}
    if side != "CLOSE":
        sign = 1 if side == "BUY" else -1
        item |= {"position_size_usd": size, "leverage": 3, "entry_price": str(mark),
                 "stop_loss": str((mark * (1 - sign * Decimal("0.02"))).quantize(Decimal("0.01"))),
                 "take_profit": str((mark * (1 + sign * Decimal("0.03"))).quantize(Decimal("0.01")))}  # fmt: skip
    return item


def move_prices(rng: random.Random, binance) -> int:
    """Marks move up to ±3 %; every stop or target the move crosses fires."""
    fired = 0
    for symbol in SYMBOLS:
        mark = Decimal(binance.marks[symbol]) * Decimal(str(1 + rng.uniform(-0.03, 0.03)))
        binance.marks[symbol] = str(mark.quantize(Decimal("0.01")))
    for cid, order in list(binance.algo_orders.items()):
        if order["algoStatus"] != "NEW":
            continue
        mark, trigger = Decimal(binance.marks[order["symbol"]]), Decimal(order["triggerPrice"])
        stop = order["orderType"] == "STOP_MARKET"
        below = (order["side"] == "SELL") == stop
        if (mark <= trigger) if below else (mark >= trigger):
            binance.fire(cid, str(mark))
            fired += 1
    return fired


def assert_invariants(binance, db_path) -> None:
    entries = Counter(c for c in binance.accepted if c.endswith("-e"))
    assert all(n == 1 for n in entries.values()), f"an entry was accepted twice: {entries}"
    for (symbol, leg), amount in binance.positions.items():
        if amount == 0:
            continue
        stops = [o for o in binance.algo_orders.values()
                 if o["symbol"] == symbol and o["positionSide"] == leg
                 and o["algoStatus"] == "NEW" and o["orderType"] == "STOP_MARKET"]  # fmt: skip
        assert len(stops) == 1, f"{symbol} {amount}: {len(stops)} stops"
        assert Decimal(stops[0]["quantity"]) == abs(amount), f"{symbol}: stop does not cover"
    taken = set(binance.accepted) | set(binance.algo_orders)
    lost = query(db_path, "SELECT client_order_id, status FROM orders "
                          "WHERE status IN ('rejected', 'not_found')")  # fmt: skip
    assert not [c for c, _ in lost if c in taken], f"taken by the exchange, booked {lost}"


def test_fault_soak(binance, db_path, chaos):
    soak(binance, db_path, chaos, move_prices, assert_invariants)


def move_prices_bybit(rng: random.Random, bybit) -> int:
    """Marks move up to ±3 %; every conditional order the move crosses fires."""
    fired = 0
    for symbol in SYMBOLS:
        mark = Decimal(bybit.marks[symbol]) * Decimal(str(1 + rng.uniform(-0.03, 0.03)))
        bybit.marks[symbol] = str(mark.quantize(Decimal("0.01")))
    for link, order in list(bybit.orders.items()):
        if order["orderStatus"] != "Untriggered":
            continue
        mark, trigger = Decimal(bybit.marks[order["symbol"]]), Decimal(order["triggerPrice"])
        if (mark >= trigger) if order["triggerDirection"] == 1 else (mark <= trigger):
            bybit.fire(link, str(mark))
            fired += 1
    return fired


def assert_invariants_bybit(bybit, db_path) -> None:
    entries = Counter(c for c in bybit.accepted if c.endswith("-e"))
    assert all(n == 1 for n in entries.values()), f"an entry was accepted twice: {entries}"
    for symbol, size in bybit.positions.items():
        if size == 0:
            continue
        stops = [o for o in bybit.conditional(symbol)
                 if (o["triggerDirection"] == 2) == (size > 0)]  # fmt: skip
        assert len(stops) == 1, f"{symbol} {size}: {len(stops)} stops"
        assert Decimal(stops[0]["qty"]) == abs(size), f"{symbol}: stop does not cover"
    lost = query(db_path, "SELECT client_order_id, status FROM orders "
                          "WHERE status IN ('rejected', 'not_found')")  # fmt: skip
    assert not [c for c, _ in lost if c in bybit.orders], f"taken by Bybit, booked {lost}"


def test_fault_soak_on_bybit(bybit, db_path, bybit_chaos):
    soak(bybit, db_path, bybit_chaos, move_prices_bybit, assert_invariants_bybit)


def soak(binance, db_path, chaos, move_prices, assert_invariants) -> None:
    rng = chaos.rng
    exits: Counter[int] = Counter()
    fired = signals_sent = 0
    for cycle in range(CYCLES):
        batch = [signal(rng, cycle * 10 + i, binance) for i in range(rng.randint(1, 3))]
        signals_sent += len(batch)
        assert (
            invoke("pull-signals", "--from", "-", input="\n".join(map(json.dumps, batch))).exit_code
            == 0
        )
        chaos.on, chaos.dead = True, False
        result = invoke("--testnet", "execute")
        exits[result.exit_code] += 1
        assert result.exit_code in (0, 1, 3, 130), result.stdout + result.stderr
        assert "internal error" not in result.output, result.output
        fired += move_prices(rng, binance)
        if rng.random() < 0.3:  # a reconcile under faults too
            chaos.dead = False
            exits[invoke("--testnet", "reconcile").exit_code] += 1
        chaos.on, chaos.dead = False, False
        code, doc = invoke_json("--testnet", "reconcile")
        assert code in (0, 1, 3), doc.get("error")
        assert_invariants(binance, db_path)
    statuses = dict(query(db_path, "SELECT status, count(*) FROM signals GROUP BY status"))
    why = Counter(
        r[:60] for (r,) in query(db_path, "SELECT reason FROM signals WHERE status = 'rejected'")
    )
    print(f"\nfault soak: {CYCLES} cycles, seed {SEED}, {signals_sent} signals, "
          f"{chaos.counts['order_requests']} order requests, faults "
          f"{ {k: v for k, v in chaos.counts.items() if k != 'order_requests'} }, "
          f"{fired} stops/targets fired, exits {dict(exits)}, signals {statuses}, "
          f"rejected because {dict(why)}")  # fmt: skip
    assert sum(v for k, v in chaos.counts.items() if k != "order_requests") > CYCLES / 5
