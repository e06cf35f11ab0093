"""Alerts: Telegram and a generic JSON webhook, sent after a step from what it recorded.

What alerts: a circuit breaker tripped, the exchange went unhealthy (or healthy again), the
database stayed locked past --lock-timeout (alerted without it), close-all ran, a stop-loss
could not be placed (or a watchdog repair failed), an order the exchange rejected, a closed
trade losing more than `alerts.loss_usd`, and drift between DuckDB and the exchange. Each
(kind, symbol) alerts at most once per `alerts.min_interval_s`, remembered in DuckDB, so a
loop cannot spam. Sending is best-effort: a failure is logged and never fails the step.

Secrets come from the environment: QTRADER_TELEGRAM_TOKEN + QTRADER_TELEGRAM_CHAT_ID, and/or
QTRADER_WEBHOOK_URL (masked everywhere, like the exchange keys).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from loguru import logger

from qtrader.config import Settings
from qtrader.secrets import mask
from qtrader.store import Store
from qtrader.store.state import get_state, set_state

ALERTING_EVENTS = (
    "breaker_tripped",
    "close_all_started",
    "close_all_finished",
    "stop_loss_failed",
    "stop_crossed_closed",
    "stop_failed_closed",
    "order_outcome_unknown",
    "drift",
    "exchange_unhealthy",
    "exchange_healthy",
)
TIMEOUT_S = 5


@dataclass(frozen=True)
class Alert:
    kind: str
    symbol: str | None
    severity: str
    text: str


def collect(store: Store, run_id: int, loss_usd: Decimal | None) -> list[Alert]:
    """What this run recorded that a person should hear about."""
    alerts = [
        Alert(kind, symbol, severity, message)
        for kind, symbol, severity, message in store.fetchall(
            "SELECT kind, symbol, severity, message FROM events WHERE run_id = ? "
            "AND (list_contains(?, kind) OR data LIKE '%\"ok\": false%') ORDER BY event_id",
            [run_id, list(ALERTING_EVENTS)],
        )
    ]
    for symbol, role, code, error in store.fetchall(
        "SELECT symbol, role, error_code, error FROM orders "
        "WHERE run_id = ? AND status = 'rejected'",
        [run_id],
    ):
        alerts.append(
            Alert(
                "order_rejected",
                symbol,
                "warning",
                f"{role} order rejected by the exchange ({code}): {error}",
            )
        )
    if loss_usd is not None:
        for symbol, net in store.fetchall(
            "SELECT t.symbol, t.net_pnl FROM v_trades t JOIN events e ON e.symbol = t.symbol "
            "AND e.kind = 'position_closed' AND e.run_id = ? "
            "AND json_extract_string(e.data, '$.position_id')::BIGINT = t.position_id "
            "WHERE t.net_pnl < -?",
            [run_id, loss_usd],
        ):
            alerts.append(Alert("loss", symbol, "warning", f"closed at a loss of {net} USDT"))
    return alerts


def send_all(
    store: Store, settings: Settings, mode: str, alerts: list[Alert], now: datetime
) -> int:
    """Send what the rate limit allows; returns how many went out. Never raises."""
    channels = _channels()
    if not channels or not alerts:
        return 0
    interval = timedelta(seconds=settings.alerts.min_interval_s)
    due: dict[str, Alert] = {}  # one per (kind, symbol) and interval, the first of the run
    for alert in alerts:
        key = f"alert_last:{alert.kind}:{alert.symbol or '-'}"
        last = get_state(store, key)
        if key in due or (last and now - datetime.fromisoformat(last) < interval):
            continue
        due[key] = alert
    store.release()  # the alerts go over the network: not while holding the database
    sent = []
    for key, alert in due.items():
        text = f"[qtrader {mode.upper()}] {alert.kind}" + (
            f" {alert.symbol}" if alert.symbol else ""
        )
        text += f": {alert.text}"
        delivered = [_deliver(channel, text, alert) for channel in channels]  # every channel
        if any(delivered):
            sent.append(key)
    for key in sent:
        set_state(store, key, now.isoformat())
    return len(sent)


def configured() -> bool:
    """Whether any alert channel is set (no channel: nothing to collect or send)."""
    return bool(_channels())


def _channels() -> list[tuple[str, str, str | None]]:
    channels: list[tuple[str, str, str | None]] = []
    token, chat = (
        os.environ.get("QTRADER_TELEGRAM_TOKEN"),
        os.environ.get("QTRADER_TELEGRAM_CHAT_ID"),
    )
    if token and chat:
        channels.append(("telegram", f"https://api.telegram.org/bot{token}/sendMessage", chat))
    if os.environ.get("QTRADER_WEBHOOK_URL"):
        channels.append(("webhook", os.environ["QTRADER_WEBHOOK_URL"], None))
    return channels


def _deliver(channel: tuple[str, str, str | None], text: str, alert: Alert) -> bool:
    kind, url, chat = channel
    body: dict[str, Any] = (
        {"chat_id": chat, "text": text, "disable_web_page_preview": True}
        if kind == "telegram"
        else {"text": text, "kind": alert.kind, "symbol": alert.symbol, "severity": alert.severity}
    )
    import requests  # ~0.1 s to import: only when a channel is configured and has news

    try:
        response = requests.post(url, json=body, timeout=TIMEOUT_S)
        response.raise_for_status()
        return True
    except requests.RequestException as exc:
        logger.warning("alert via {} failed: {}", kind, mask(str(exc)))
        return False


def alert_database_busy(settings: Settings, message: str, db_path: str, now: datetime) -> bool:
    """An alert that the database stayed locked: it cannot be rate-limited in the database,
    so a marker file beside it (`<db>.busy-alert`, its mtime) remembers the last one."""
    marker = Path(db_path + ".busy-alert")
    interval = settings.alerts.min_interval_s
    if marker.exists() and now.timestamp() - marker.stat().st_mtime < interval:
        return False
    alert = Alert("database_busy", None, "critical", message)
    text = f"[qtrader {settings.mode.upper()}] database_busy: {message}"
    delivered = [_deliver(channel, text, alert) for channel in _channels()]
    if any(delivered):
        marker.touch()
        return True
    return False
