"""Review of issue 19's readers, explore copy and reconcile/execute prefetches: attacks."""

from __future__ import annotations

import pytest

from tests.conftest import invoke_json

pytestmark = pytest.mark.usefixtures("exchange_env", "signal_sizing")


def test_an_account_read_that_fails_does_not_keep_the_watchdog_from_placing_a_stop(
    binance, db_path
):
    """The account is read with the fills, before the watchdog: a failing /account must not
    skip the stop repairs (before the change it was read after them)."""
    binance.position("ETHUSDT", "0.5", entry="3000")  # unprotected
    binance.fail_next("/fapi/v3/account", "GET", *([503] * 10))
    code, doc = invoke_json("--testnet", "reconcile")
    stops = [p for p in binance.algo_posts() if p.params.get("type") == "STOP_MARKET"]
    assert len(stops) == 1, (code, doc)
    assert code != 0  # the account could not be read: the run still says it failed
