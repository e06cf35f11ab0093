"""Review of issue 17 (OKX), end to end through the CLI against the stand-in."""

from __future__ import annotations

import pytest

from tests.test_okx_e2e import BTC, BUY, execute, okx, pull  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("signal_sizing")


def test_a_margin_mode_switch_with_an_isolated_position_open_rejects_the_entry(
    okx,  # noqa: F811
    db_path,
    monkeypatch,
):
    """exchange.margin_mode switched to cross while BTC is held isolated: OKX would take a
    cross entry as a second BTC position beside the first. The signal is rejected with the
    reason, nothing is sent (Binance refuses the switch the same way, -4048)."""
    okx.position(BTC, "0.85", "50000", mgn_mode="isolated")  # opened before the switch
    monkeypatch.setenv("QTRADER_EXCHANGE_MARGIN_MODE", "cross")
    monkeypatch.setenv("QTRADER_RISK_PYRAMIDING", "true")  # adding to the position is allowed
    monkeypatch.setenv("QTRADER_RISK_MAX_ENTRIES_PER_SYMBOL", "3")
    pull(BUY)
    _code, doc = execute()
    assert okx.order_posts() == [] and okx.algo_posts() == []
    (signal,) = doc["signals"]
    assert signal["status"] == "rejected", signal
    assert "open isolated position" in signal["reason"]
