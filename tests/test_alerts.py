"""Alerts: content, rate limit, and that a failing alert never fails the step."""

from __future__ import annotations

import json

import pytest
import responses

from tests.binance_fake import FakeBinance
from tests.conftest import invoke, query
from tests.test_execute import BUY, pull

WEBHOOK = "https://hooks.example.test/qtrader"
TOKEN = "123456:ABC-telegram-token-xyz"
TELEGRAM = f"https://api.telegram.org/bot{TOKEN}/sendMessage"

pytestmark = pytest.mark.usefixtures("exchange_env", "signal_sizing")


@pytest.fixture
def hooks(monkeypatch):
    monkeypatch.setenv("QTRADER_WEBHOOK_URL", WEBHOOK)
    monkeypatch.setenv("QTRADER_TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("QTRADER_TELEGRAM_CHAT_ID", "-100200300")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeBinance().install(mock)
        mock.add(responses.POST, WEBHOOK, json={"ok": True})
        mock.add(responses.POST, TELEGRAM, json={"ok": True, "result": {}})
        yield fake, mock


def sent(mock, url: str) -> list[dict]:
    return [json.loads(c.request.body) for c in mock.calls if c.request.url == url]


def test_a_stop_loss_that_could_not_be_placed_alerts_both_channels(hooks, db_path):
    fake, mock = hooks
    pull(BUY)
    fake.fail_next(
        "/fapi/v1/algoOrder", "POST", {"code": -2021, "msg": "Order would immediately trigger."}
    )
    assert invoke("--testnet", "execute").exit_code == 1
    (telegram,) = [m for m in sent(mock, TELEGRAM) if "stop_loss_failed" in m["text"]]
    assert telegram["chat_id"] == "-100200300"
    assert telegram["text"].startswith(
        "[qtrader TESTNET] stop_loss_failed BTCUSDT: stop-loss could not be placed"
    )
    hooks_sent = sent(mock, WEBHOOK)
    assert {m["kind"] for m in hooks_sent} == {"stop_loss_failed", "order_rejected"}
    assert all(m["severity"] for m in hooks_sent)


def test_close_all_alerts(hooks, db_path):
    fake, mock = hooks
    fake.position("BTCUSDT", "0.01")
    assert invoke("--testnet", "close-all", "--yes").exit_code == 0
    kinds = [m["kind"] for m in sent(mock, WEBHOOK)]
    assert kinds == ["close_all_started", "close_all_finished"]


def test_the_same_alert_is_rate_limited(hooks, db_path):
    fake, mock = hooks
    for _ in range(3):  # three adopted positions on one symbol: one drift alert
        fake.position("ETHUSDT", "0.5", entry="3000")
        invoke("--testnet", "reconcile")
        fake.positions.clear()
        invoke("--testnet", "reconcile")
    drift = [m for m in sent(mock, WEBHOOK) if m["kind"] == "drift"]
    assert len(drift) == 1
    assert len(query(db_path, "SELECT * FROM events WHERE kind = 'drift'")) >= 3  # all recorded


def test_a_failing_alert_never_fails_the_step(monkeypatch, db_path):
    monkeypatch.setenv("QTRADER_WEBHOOK_URL", WEBHOOK)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeBinance().install(mock)
        mock.add(responses.POST, WEBHOOK, status=500)
        fake.position("BTCUSDT", "0.01")
        result = invoke("--testnet", "close-all", "--yes")
    assert result.exit_code == 0
    assert "alert via webhook failed" in result.stderr


def test_a_loss_above_the_threshold_alerts(hooks, db_path, monkeypatch):
    fake, mock = hooks
    monkeypatch.setenv("QTRADER_ALERTS_LOSS_USD", "5")
    pull(BUY)
    invoke("--testnet", "execute")
    invoke("--testnet", "reconcile")
    from qtrader.domain.orders import Role, client_order_id

    fake.fire(client_order_id("t-buy-1", Role.STOP_LOSS), "49000")  # −8 USDT gross
    invoke("--testnet", "reconcile")
    (loss,) = [m for m in sent(mock, WEBHOOK) if m["kind"] == "loss"]
    assert loss["symbol"] == "BTCUSDT" and "closed at a loss of -8.3168" in loss["text"]


def test_secrets_of_the_alert_channels_stay_out_of_output_and_db(hooks, db_path):
    fake, _ = hooks
    fake.position("BTCUSDT", "0.01")
    result = invoke("--testnet", "--log-level", "debug", "close-all", "--yes")
    dump = json.dumps(
        query(db_path, "SELECT * FROM runs") + query(db_path, "SELECT * FROM events"), default=str
    )
    assert TOKEN not in result.output + result.stderr + dump
