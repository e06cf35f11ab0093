"""The exchange-health breaker: N runs in a row whose requests got no answer stop new entries
(CLOSE signals, protection and reconcile go on); the first healthy run lifts it."""

from __future__ import annotations

import pytest

from qtrader.domain.halts import Health, health_after
from tests.conftest import invoke, invoke_json, query
from tests.test_execute import BUY, pull

pytestmark = pytest.mark.usefixtures("exchange_env", "signal_sizing")

TIMEOUTS = ["timeout"] * 4  # every attempt of one read (exchange.read_retries is 4)


def events(db_path) -> list[str]:
    return [k for (k,) in query(db_path, "SELECT kind FROM events WHERE kind LIKE 'exchange_%' "
                                         "OR kind = 'halt_cleared' ORDER BY event_id")]  # fmt: skip


def test_three_failing_runs_stop_entries_and_a_healthy_run_lifts_it(binance, db_path):
    for run in range(3):
        binance.fail_next("/fapi/v3/positionRisk", "GET", *TIMEOUTS)
        result = invoke("--testnet", "reconcile")
        assert result.exit_code == 1, result.stderr
        tripped = query(db_path, "SELECT kind FROM halts WHERE mode = 'testnet'")
        assert tripped == ([("exchange_unhealthy",)] if run == 2 else [])
    assert events(db_path) == ["exchange_unhealthy"]  # an alerting event, once
    _, doc = invoke_json("--testnet", "status")
    assert [h["kind"] for h in doc["halts"]] == ["exchange_unhealthy"]
    assert "after a run whose exchange requests succeed" in doc["halts"][0]["how_it_lifts"]

    binance.position("ETHUSDT", "0.1")
    pull({**BUY, "intent_id": "new-entry"},
         {"intent_id": "close-eth", "symbol": "ETHUSDT", "side": "CLOSE"})  # fmt: skip
    code, doc = invoke_json("--testnet", "execute")
    status = {s["signal_id"]: (s["status"], s["reason"]) for s in doc["signals"]}
    assert status["new-entry"][0] == "rejected" and "exchange unhealthy" in status["new-entry"][1]
    assert status["close-eth"][0] == "executed"  # closes go on
    (close,) = binance.order_posts()  # the only order sent: the reduce-only close
    assert (close.params["symbol"], close.params["reduceOnly"]) == ("ETHUSDT", "true")
    assert code == 0

    assert invoke("--testnet", "reconcile").exit_code == 0  # a healthy run
    assert query(db_path, "SELECT count(*) FROM halts") == [(0,)]
    assert events(db_path) == ["exchange_unhealthy", "exchange_healthy"]
    pull({**BUY, "intent_id": "after"})
    code, doc = invoke_json("--testnet", "execute")
    assert code == 0 and doc["signals"][0]["status"] == "executed"


def test_a_healthy_run_between_failures_starts_the_count_again(binance, db_path):
    for fails in (True, True, False, True, True):
        if fails:
            binance.fail_next("/fapi/v3/positionRisk", "GET", *TIMEOUTS)
        invoke("--testnet", "reconcile")
    assert query(db_path, "SELECT count(*) FROM halts") == [(0,)]


def test_a_rejection_is_an_answer_not_an_unhealthy_exchange(binance, db_path, monkeypatch):
    monkeypatch.setenv("QTRADER_RISK_EXCHANGE_FAILURE_RUNS", "1")
    binance.wallet = "10"
    pull(BUY)
    binance.fail_next("/fapi/v1/order", "POST", {"code": -2019, "msg": "Margin is insufficient."})
    invoke("--testnet", "execute")
    assert query(db_path, "SELECT count(*) FROM halts") == [(0,)]


@pytest.mark.parametrize(
    ("description", "before", "failed", "threshold", "after", "trip", "lift"),
    [
        ("first failure", 0, True, 3, 1, False, False),
        ("third in a row trips", 2, True, 3, 3, True, False),
        ("still failing stays tripped", 5, True, 3, 6, True, False),
        ("a healthy run resets and lifts", 4, False, 3, 0, False, True),
        ("off: never trips", 9, True, None, 10, False, False),
    ],
)
def test_health_after(description, before, failed, threshold, after, trip, lift):
    assert health_after(before, failed, threshold) == Health(after, trip, lift)
