"""Execution results published to a Redis Stream (a real redis-server)."""

from __future__ import annotations

import pytest

from qtrader.domain.orders import Role, client_order_id
from tests.conftest import _free_port, invoke
from tests.test_execute import BUY, pull

STREAM = "quantum:stream:trade.execution.result"
pytestmark = [pytest.mark.redis, pytest.mark.usefixtures("exchange_env", "signal_sizing")]


def entries(client) -> list[dict[str, str]]:
    return [
        {k.decode(): v.decode() for k, v in fields.items()} for _, fields in client.xrange(STREAM)
    ]


def test_orders_and_position_changes_are_published(
    binance, redis_server, redis_client, monkeypatch
):
    monkeypatch.setenv("QTRADER_PUBLISH_REDIS_URL", redis_server)
    pull(BUY)
    assert invoke("--testnet", "execute").exit_code == 0
    published = entries(redis_client)
    assert [(e["type"], e["role"], e["status"]) for e in published] == [
        ("order", "entry", "filled"),
        ("order", "stop_loss", "open"),
        ("order", "take_profit", "open"),
    ]
    entry = published[0]
    assert (
        entry["symbol"],
        entry["action"],
        entry["filled_qty"],
        entry["avg_price"],
        entry["mode"],
    ) == ("BTCUSDT", "BUY", "0.008", "50000", "testnet")
    assert entry["client_order_id"] == client_order_id("t-buy-1", Role.ENTRY) and entry["order_id"]
    invoke("--testnet", "reconcile")
    binance.fire(client_order_id("t-buy-1", Role.STOP_LOSS), "49000")
    invoke("--testnet", "reconcile")
    positions = [e for e in entries(redis_client) if e["type"] == "position"]
    assert [(p["event"], p["symbol"]) for p in positions] == [
        ("opened", "BTCUSDT"),
        ("closed", "BTCUSDT"),
    ]
    assert '"exit_reason": "stop_loss"' in positions[1]["data"]


def test_nothing_is_published_unless_configured(binance, redis_client):
    pull(BUY)
    invoke("--testnet", "execute")
    assert redis_client.xlen(STREAM) == 0


def test_an_unreachable_redis_never_fails_the_step(binance, monkeypatch):
    monkeypatch.setenv(
        "QTRADER_PUBLISH_REDIS_URL", f"redis://:secretpw1@127.0.0.1:{_free_port()}/0"
    )
    pull(BUY)
    result = invoke("--testnet", "execute")
    assert result.exit_code == 0
    assert (
        "publishing to redis://:***@127.0.0.1" in result.stderr and "secretpw1" not in result.stderr
    )
