"""The database is held only around reads and writes, never across network I/O; the rate
limiter spends Binance's weight budget; the runs that act on the exchange stay one at a time."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import responses

from qtrader.exchange.binance import BinanceUsdm, _JournalingBinance
from qtrader.exchange.weight import WeightBudget
from qtrader.store.actor_lock import actor_lock
from tests.binance_fake import FakeBinance
from tests.conftest import invoke, invoke_json
from tests.test_execute import BUY, pull

KEY, SECRET = "test-key-0123456789abcdef", "test-secret-fedcba9876543210"


class Clock:
    def __init__(self, at: float) -> None:
        self.at = at
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.at += seconds


@pytest.mark.parametrize(
    ("description", "start", "used", "header", "cost", "slept"),
    [
        ("room left: no wait at all", 600.0, 0, None, 40, 0.0),
        ("just fits under 90 % of 2,400", 610.0, 2100, None, 60, 0.0),
        ("no room: wait for the next minute", 630.0, 2150, None, 40, 30.05),
        ("the exchange counts more (another process): it wins", 645.0, 100, "2150", 40, 15.05),
        ("a lower header never lowers our own count", 650.0, 2150, "10", 40, 10.05),
    ],
)
def test_weight_budget(description, start, used, header, cost, slept):
    clock = Clock(start)
    budget = WeightBudget(clock=clock, sleep=clock.sleep)
    budget.used = used
    budget.observe(header)
    assert budget.spend(cost) == pytest.approx(slept)
    assert budget.used == (cost if slept else max(used, float(header or 0)) + cost)


def test_a_new_minute_starts_a_new_budget():
    clock = Clock(600.0)
    budget = WeightBudget(clock=clock, sleep=clock.sleep)
    budget.spend(2000)
    clock.at = 661.0
    assert budget.spend(2000) == 0.0 and clock.slept == []


def test_the_adapter_reads_the_used_weight_header_and_waits_only_when_it_must(monkeypatch):
    monkeypatch.setattr(_JournalingBinance, "throttle", _JournalingBinance.spend_weight)
    if time.time() % 60 > 55:  # the exchange's minute must not roll over mid-test
        time.sleep(60.1 - time.time() % 60)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeBinance().install(mock)
        ex = BinanceUsdm("testnet", KEY, SECRET, retry_wait_s=0)
        clock = Clock(ex.client.qt_budget.clock())
        ex.client.qt_budget.sleep = clock.sleep
        released = []
        ex.client.qt_before_network = lambda: released.append(True)
        ex.sync_clock()
        assert clock.slept == [] and released  # released before the request; no waiting
        minute = int(clock() // 60)
        fake.weight_used[minute] = 2159  # someone else on this IP spent the minute
        ex.sync_clock()  # the answer says 2160 used: 90 % of 2,400
        assert ex.client.qt_budget.used >= 2160
        ex.sync_clock()  # no room for even one more: wait for the next minute
        assert len(clock.slept) == 1 and 0 < clock.slept[0] <= 60.05


def _can_open(db_path) -> bool:
    code = "import duckdb, sys; duckdb.connect(sys.argv[1], read_only=True).close()"
    return subprocess.run([sys.executable, "-c", code, str(db_path)], capture_output=True,
                          timeout=60).returncode == 0  # fmt: skip


@pytest.mark.usefixtures("exchange_env", "signal_sizing")
def test_the_file_is_free_while_a_request_is_on_the_network(binance, db_path):
    """Another process opens the file during reconcile's and execute's HTTP requests."""
    seen: dict[str, bool] = {}
    for path in ("/fapi/v3/positionRisk", "/fapi/v1/order"):
        method = "POST" if path == "/fapi/v1/order" else "GET"
        handler = binance.routes[(method, path)]

        def probing(params, handler=handler, path=path):
            seen.setdefault(path, _can_open(db_path))
            return handler(params)

        binance.routes[(method, path)] = probing
    pull(BUY)
    assert invoke("--testnet", "execute").exit_code == 0
    assert invoke("--testnet", "reconcile").exit_code == 0
    assert seen == {"/fapi/v1/order": True, "/fapi/v3/positionRisk": True}


@pytest.mark.usefixtures("exchange_env")
def test_runs_that_act_on_the_exchange_are_one_at_a_time(binance, db_path):
    invoke("status")
    with actor_lock(db_path, 1, "reconcile"):  # another actor is mid-run
        result = invoke("--testnet", "--lock-timeout", "0.3", "reconcile")
        assert result.exit_code == 4 and "another qtrader run is acting on the exchange" in (
            result.stderr
        )
        assert invoke("--testnet", "--lock-timeout", "0.3", "status").exit_code == 0  # readers
        binance.position("BTCUSDT", "0.01")
        code, doc = invoke_json("--testnet", "--lock-timeout", "0.3", "close-all", "--yes")
        assert code == 0 and doc["flat"] is True  # an emergency does not wait for it


NOTEBOOK = ("import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
            "sys.stdin.read()")  # fmt: skip


@pytest.mark.usefixtures("exchange_env", "signal_sizing")
def test_a_file_taken_mid_run_ends_the_run_at_once_with_4(binance, db_path):
    """A notebook opens the file while reconcile is on the network: reconcile waits
    --lock-timeout once, then exits 4 naming it, without waiting again to record itself."""
    pull(BUY)
    assert invoke("--testnet", "execute").exit_code == 0
    holders: list[subprocess.Popen] = []
    handler = binance.routes[("GET", "/fapi/v3/positionRisk")]

    def grab(params):
        if not holders:
            proc = subprocess.Popen([sys.executable, "-c", NOTEBOOK, str(db_path)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
            assert proc.stdout.readline().strip() == "ready"
            holders.append(proc)
        return handler(params)

    binance.routes[("GET", "/fapi/v3/positionRisk")] = grab
    try:
        started = time.monotonic()
        result = invoke("--testnet", "--lock-timeout", "0.5", "reconcile")
        took = time.monotonic() - started
    finally:
        for proc in holders:
            proc.communicate("", timeout=30)
    assert result.exit_code == 4 and f"PID {holders[0].pid}" in result.stderr
    assert took < 5


@pytest.mark.usefixtures("exchange_env")
def test_close_all_keeps_the_file_it_has_to_the_end(binance, db_path):
    """In an emergency, a file close-all got is not let go between requests: what it does is
    recorded in it, whatever a notebook tries meanwhile."""
    binance.position("BTCUSDT", "0.01")
    seen = []
    handler = binance.routes[("POST", "/fapi/v1/order")]

    def probing(params):
        seen.append(_can_open(db_path))
        return handler(params)

    binance.routes[("POST", "/fapi/v1/order")] = probing
    code, doc = invoke_json("--testnet", "close-all", "--yes")
    assert code == 0 and doc["flat"] is True
    assert seen == [False]


@pytest.mark.usefixtures("exchange_env", "signal_sizing")
def test_alerts_go_out_with_the_file_let_go_of(db_path, monkeypatch):
    hook = "https://hooks.example.test/qtrader"
    monkeypatch.setenv("QTRADER_WEBHOOK_URL", hook)
    seen = []

    def answer(request):
        seen.append(_can_open(db_path))
        return 200, {}, "{}"

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        binance = FakeBinance().install(mock)
        mock.add_callback(responses.POST, hook, callback=answer)
        pull(BUY)
        binance.fail_next("/fapi/v1/algoOrder", "POST",
                          {"code": -2021, "msg": "Order would immediately trigger."})  # fmt: skip
        assert invoke("--testnet", "execute").exit_code == 1  # stop_loss_failed: alerted
    assert seen and all(seen)
    _, doc = invoke_json("sql", "SELECT count(*) FROM state WHERE key LIKE 'alert_last:%'")
    assert doc["rows"][0][0] >= 1  # the rate-limit memory is written after sending


@pytest.mark.usefixtures("exchange_env")
def test_close_all_waits_at_most_5_s_for_another_run_before_acting(binance, db_path):
    invoke("status")
    binance.position("BTCUSDT", "0.01")
    with actor_lock(db_path, 1, "execute"):  # a run that hangs while acting
        started = time.monotonic()
        code, doc = invoke_json("--testnet", "close-all", "--yes")  # --lock-timeout 30
        took = time.monotonic() - started
    assert code == 0 and doc["flat"] is True
    assert 5 <= took < 15
