"""What the journal keeps: order-changing requests and errors in full, routine reads as a
digest (the day's first read of each endpoint in full); equity snapshots on change."""

from __future__ import annotations

import json

import pytest

from qtrader.exchange.journal import digest, kept_in_full
from tests.conftest import invoke, query
from tests.test_execute import BUY, execute, pull

pytestmark = pytest.mark.usefixtures("exchange_env", "signal_sizing")


@pytest.mark.parametrize(
    "description, call, full",
    [
        ("an entry", {"method": "POST", "path": "/fapi/v1/order", "params": {}}, True),
        ("a cancel", {"method": "DELETE", "path": "/fapi/v1/algoOrder", "params": {}}, True),
        ("a failed read", {"method": "GET", "path": "/fapi/v3/account", "error": "-1001"}, True),
        (
            "an order lookup",
            {"method": "GET", "path": "/fapi/v1/order", "params": {"origClientOrderId": "qt-1"}},
            True,
        ),
        (
            "a Bybit lookup",
            {"method": "GET", "path": "/v5/order/realtime", "params": {"orderLinkId": "qt-1"}},
            True,
        ),
        ("an account read", {"method": "GET", "path": "/fapi/v3/account", "params": {}}, False),
        ("a paper order", {"method": "PAPER", "path": "place_order", "params": {}}, True),
    ],
)
def test_what_is_kept_in_full(description, call, full):
    assert kept_in_full(call) == full, description


def test_a_digest_changes_with_the_answer_and_is_small():
    answer = {"assets": [{"walletBalance": "10000"}] * 40}
    assert digest(answer) == digest(json.loads(json.dumps(answer)))
    assert digest(answer) != digest({**answer, "x": 1})
    assert len(json.dumps(digest(answer))) < 60 < len(json.dumps(answer))


def responses_of(db_path, path: str) -> list:
    rows = query(db_path, "SELECT response FROM exchange_calls WHERE path = ? ORDER BY call_id",
                 [path])  # fmt: skip
    return [json.loads(r[0]) for r in rows]


def test_reads_are_digested_after_the_days_sample_and_orders_kept_whole(binance, db_path):
    pull(BUY)
    assert execute()[0] == 0
    for _ in range(3):
        assert invoke("--testnet", "reconcile").exit_code == 0
    account = responses_of(db_path, "/fapi/v3/account")
    assert len(account) >= 3
    assert "assets" in account[0]  # the day's sample, whole
    assert all(set(r) == {"digest", "bytes"} for r in account[1:])
    assert len({r["digest"] for r in account[1:]}) == 1  # nothing changed
    (entry,) = responses_of(db_path, "/fapi/v1/order")[:1]
    assert entry["status"] == "FILLED"  # every order-changing request whole
    assert all("algoId" in r for r in responses_of(db_path, "/fapi/v1/algoOrder"))


def test_an_error_is_kept_whole(binance, db_path):
    assert invoke("--testnet", "reconcile").exit_code == 0
    binance.fail_next("/fapi/v3/account", "GET", 503)
    invoke("--testnet", "reconcile")
    errors = query(db_path, "SELECT path, error FROM exchange_calls WHERE error IS NOT NULL")
    assert errors and errors[0][0] == "/fapi/v3/account" and errors[0][1]


def test_equity_is_snapshotted_when_it_changes_not_every_run(binance, db_path):
    for _ in range(3):
        assert invoke("--testnet", "reconcile").exit_code == 0
    assert query(db_path, "SELECT count(*) FROM equity") == [(1,)]
    binance.wallet = "10050"
    assert invoke("--testnet", "reconcile").exit_code == 0
    assert query(db_path, "SELECT equity FROM equity ORDER BY ts") == [(10000,), (10050,)]
