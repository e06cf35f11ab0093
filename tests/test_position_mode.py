"""The account's position mode changed behind qtrader's cache (hedge ↔ one-way): -4061 re-reads
it and sends the order once more; doctor refreshes the cache; rejection reasons end with the fix."""

from __future__ import annotations

import json

import pytest

from qtrader.domain.orders import Role, client_order_id
from tests.conftest import invoke, invoke_json, query

pytestmark = pytest.mark.usefixtures("exchange_env")

ETH = {"intent_id": "eth-1", "symbol": "ETHUSDT", "side": "BUY", "position_size_usd": 60,
       "confidence": 0.8, "stop_loss": 2900, "take_profit": 3200}  # fmt: skip


def pull(**changes) -> None:
    signal = {**ETH, **changes}
    assert invoke("pull-signals", "--from", "-", input=json.dumps(signal)).exit_code == 0


def test_switch_to_hedge_mode_is_detected_by_minus_4061_and_the_entry_sent_again(binance, db_path):
    pull(intent_id="warm", symbol="BNBUSDT", stop_loss=900, take_profit=1000)
    assert invoke_json("--testnet", "execute")[0] == 0  # caches one-way
    binance.hedge = True  # the user switched the account to hedge mode
    binance.sent.clear()
    pull()
    code, doc = invoke_json("--testnet", "execute")
    assert code == 0, doc
    assert doc["signals"][0]["status"] == "executed", doc
    first, second = binance.order_posts()
    assert "positionSide" not in first.params  # refused with -4061
    assert second.params["positionSide"] == "LONG"
    assert first.params["newClientOrderId"] == second.params["newClientOrderId"] == client_order_id(
        "eth-1", Role.ENTRY)  # fmt: skip
    stop, target = binance.algo_posts()  # the protection is sent in the new mode at once
    assert (stop.params["positionSide"], target.params["positionSide"]) == ("LONG", "LONG")
    assert "reduceOnly" not in stop.params
    assert binance.positions[("ETHUSDT", "LONG")] > 0
    (event,) = query(db_path, "SELECT message FROM events WHERE kind = 'position_mode_changed'")
    assert "from one-way to hedge" in event[0]

    binance.sent.clear()  # the next run uses the cached new mode: no -4061 again
    pull(intent_id="eth-2", symbol="XRPUSDT", stop_loss=2, take_profit=2.2)
    assert invoke_json("--testnet", "execute")[0] == 0
    (entry,) = binance.order_posts()
    assert entry.params["positionSide"] == "LONG"


def test_switch_to_one_way_mode(binance, db_path):
    binance.hedge = True
    pull(intent_id="warm", symbol="BNBUSDT", stop_loss=900, take_profit=1000)
    assert invoke_json("--testnet", "execute")[0] == 0  # caches hedge
    binance.hedge = False
    binance.sent.clear()
    pull()
    code, doc = invoke_json("--testnet", "execute")
    assert code == 0 and doc["signals"][0]["status"] == "executed", doc
    first, second = binance.order_posts()
    assert first.params["positionSide"] == "LONG" and "positionSide" not in second.params
    stop, _ = binance.algo_posts()
    assert "positionSide" not in stop.params and stop.params["reduceOnly"] == "true"


def test_doctor_refreshes_the_cached_position_mode(binance, db_path):
    pull(intent_id="warm", symbol="BNBUSDT", stop_loss=900, take_profit=1000)
    assert invoke_json("--testnet", "execute")[0] == 0  # caches one-way
    binance.hedge = True
    code, doc = invoke_json("--testnet", "doctor")
    assert code == 0, doc
    checks = {c["name"]: c for c in doc["checks"]}
    assert checks["position mode"]["detail"] == (
        "hedge (dual-side) (changed: the cache said one-way; updated)")  # fmt: skip
    assert "1 cached symbol set-up(s) cleared" in checks["margin mode"]["detail"]
    binance.sent.clear()
    pull()
    assert invoke_json("--testnet", "execute")[0] == 0
    (entry,) = binance.order_posts()  # right the first time
    assert entry.params["positionSide"] == "LONG"


def test_a_rejection_reason_ends_with_the_fix(binance, db_path):
    pull()
    binance.fail_next("/fapi/v1/order", "POST", {"code": -2019, "msg": "Margin is insufficient."})
    code, doc = invoke_json("--testnet", "execute")
    assert code == 0, doc
    reason = doc["signals"][0]["reason"]
    assert reason == ("exchange rejected the entry (-2019): Margin is insufficient. — add USDT to "
                      "the futures wallet, or lower the size or the leverage")  # fmt: skip
    assert query(db_path, "SELECT reason FROM signals") == [(reason,)]
    assert query(db_path, "SELECT error FROM orders") == [("Margin is insufficient.",)]


@pytest.mark.parametrize(
    ("description", "side", "reduce_only", "hedge", "expected"),
    [
        ("one-way: never a positionSide", "BUY", False, False, None),
        ("one-way reduce-only", "SELL", True, False, None),
        ("hedge: a buy opens a long", "BUY", False, True, "LONG"),
        ("hedge: a sell opens a short", "SELL", False, True, "SHORT"),
        ("hedge: a reduce-only sell closes the long", "SELL", True, True, "LONG"),
        ("hedge: a reduce-only buy closes the short", "BUY", True, True, "SHORT"),
    ],
)  # fmt: skip
def test_position_side_for(description, side, reduce_only, hedge, expected):
    from qtrader.domain.orders import position_side_for

    assert position_side_for(side, reduce_only, hedge) == expected, description
