"""Review of issue 19's readers, explore copy and reconcile/execute prefetches: attacks."""

from __future__ import annotations

import pytest

from tests.conftest import invoke, invoke_json
from tests.test_lock import notebook  # noqa: F401  (fixture)

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


def test_status_beside_a_read_only_notebook_shows_the_kill_switch_close_all_saved(
    binance,
    db_path,
    notebook,  # noqa: F811
):
    """close-all could not get the file (a notebook holds it read-only) and saved its kill
    switch in a recovery file. status, a reader, runs beside that notebook: it must show the
    kill switch, not fail because it cannot import the file for writing."""
    binance.position("BTCUSDT", "0.01")
    notebook(read_only=True)
    result = invoke("--testnet", "--lock-timeout", "0.5", "close-all", "--yes")
    assert result.exit_code == 0, result.stderr
    assert list((db_path.parent / (db_path.name + ".recovery")).glob("*.json"))
    code, doc = invoke_json("--testnet", "--lock-timeout", "0.5", "status")
    assert code == 0 and [h["kind"] for h in doc["halts"]] == ["kill_switch"], (code, doc)
    assert "not imported yet" in doc["halts"][0]["reason"]
    assert invoke("--testnet", "--lock-timeout", "0.5", "execute").exit_code == 4  # still held
