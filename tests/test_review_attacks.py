"""A reviewer's attacks on the issue-12 change, kept as regression tests: each one failed on
the change as first written (kill switch replaced while execute runs under a halt, a resumed
stop sent blind, a refused watchdog stop leaving a position bare, a failed time exit skipping
the repairs, a revived entry's stale grace period, a ban while setting leverage, a mark read
stopping other signals, a stop firing between reconcile's reads)."""

from __future__ import annotations

import json

import duckdb
import pytest

from qtrader.domain.orders import Role, client_order_id
from tests.conftest import invoke, invoke_json, query

pytestmark = pytest.mark.usefixtures("exchange_env", "signal_sizing")

BUY = {"intent_id": "t-buy-1", "symbol": "BTCUSDT", "side": "BUY", "position_size_usd": 400,
       "leverage": 3, "entry_price": 50000, "stop_loss": 49000, "take_profit": 52000,
       "confidence": 0.78}  # fmt: skip
ETH = {"intent_id": "t-eth-1", "symbol": "ETHUSDT", "side": "BUY", "position_size_usd": 60,
       "leverage": 3, "entry_price": 3000, "stop_loss": 2900, "confidence": 0.8}  # fmt: skip


def pull(*items: dict) -> None:
    lines = "\n".join(json.dumps(s) for s in items)
    assert invoke("pull-signals", "--from", "-", input=lines).exit_code == 0


def halts(db_path) -> set[str]:
    return {k for (k,) in query(db_path, "SELECT kind FROM halts WHERE mode = 'testnet'")}


def test_a_daily_loss_trip_while_halted_never_replaces_the_kill_switch(binance, db_path):
    """Execute runs (CLOSE signals, protection) while the kill switch holds and trips the
    daily-loss breaker: on the next UTC day the daily-loss halt lifts, the kill switch not."""
    pull(ETH)
    assert invoke_json("--testnet", "execute")[0] == 0
    assert invoke("--testnet", "close-all", "--yes").exit_code == 0
    assert "kill_switch" in halts(db_path)
    binance.wallet = "9400"  # -6 % today
    binance.position("SOLUSDT", "1")
    pull({"intent_id": "t-close-sol", "symbol": "SOLUSDT", "side": "CLOSE", "confidence": 0.9})
    code, _ = invoke_json("--testnet", "execute")  # a CLOSE runs while halted
    assert code == 3
    assert binance.positions[("SOLUSDT", "BOTH")] == 0
    assert {"kill_switch", "daily_loss"} <= halts(db_path)
    with duckdb.connect(str(db_path)) as conn:  # the next UTC day
        conn.execute("UPDATE halts SET day = day - 1, since = since - INTERVAL 1 DAY")
        conn.execute("UPDATE equity SET ts = ts - INTERVAL 1 DAY")
    binance.wallet = "10000"
    pull({**BUY, "intent_id": "t-after-kill"})
    code, _ = invoke_json("--testnet", "execute")
    entry = client_order_id("t-after-kill", Role.ENTRY)
    sent = [p for p in binance.order_posts() if p.params["newClientOrderId"] == entry]
    assert code == 3 and not sent
    assert "kill_switch" in halts(db_path) and "daily_loss" not in halts(db_path)


def test_reconcile_never_replaces_the_kill_switch(binance, db_path):
    pull(ETH)
    assert invoke_json("--testnet", "execute")[0] == 0
    assert invoke("--testnet", "close-all", "--yes").exit_code == 0
    binance.wallet = "9400"
    invoke_json("--testnet", "reconcile")
    assert {"kill_switch", "daily_loss"} <= halts(db_path)


SL = client_order_id("t-buy-1", Role.STOP_LOSS)
TP = client_order_id("t-buy-1", Role.TAKE_PROFIT)
EXIT = client_order_id("t-buy-1", Role.EXIT)


@pytest.fixture
def kill9(binance, monkeypatch):
    """`kill(path, method)`: the next such request is taken by the exchange and the process
    dies; like kill -9, nothing it had not committed yet reaches DuckDB."""
    from qtrader.store.batch import WriteBatch

    state = {"dead": False, "armed": None}
    commit = WriteBatch.commit

    def commit_unless_dead(self, store):
        if not state["dead"]:
            commit(self, store)

    def chaos(method, path):
        if state["armed"] == (method, path):
            state["armed"], state["dead"] = None, True
            return "kill_after_accept"
        return None

    monkeypatch.setattr(WriteBatch, "commit", commit_unless_dead)
    binance.chaos = chaos

    def kill(path, method):
        state["armed"], state["dead"] = (method, path), False

    kill.revive = lambda: state.update(dead=False)
    return kill


def test_killed_after_the_stop_was_taken_the_stop_that_fired_is_booked_rejected(
    binance, db_path, kill9
):
    """Soak seeds 1, 3, 4 (QTRADER_SOAK_CYCLES=200) fail on this. The stop's row is not
    committed before it is sent; killed after Binance took it, the resumed signal sends the
    stop again without looking it up first. The first copy fired meanwhile, so the re-send
    is refused -2021, booked `rejected`, an emergency close goes out (-2022) and the signal
    reports 'stop-loss could not be placed' - while the stop did its job. The stop-out is
    not counted (cooldown_after_stop_s, max_consecutive_losses read stop_loss = filled)."""
    pull(BUY)
    kill9("/fapi/v1/algoOrder", "POST")
    assert invoke("--testnet", "execute").exit_code == 130
    kill9.revive()
    assert binance.algo_orders[SL]["algoStatus"] == "NEW"  # Binance has the stop
    binance.fire(SL, "48900")  # and it fires before anything else runs
    assert binance.positions[("BTCUSDT", "BOTH")] == 0
    invoke_json("--testnet", "reconcile")
    code, doc = invoke_json("--testnet", "execute")
    status = dict(query(db_path, "SELECT client_order_id, status FROM orders"))
    exits = [p for p in binance.order_posts() if p.params["newClientOrderId"] == EXIT]
    assert (status.get(SL), exits, code) == ("filled", [], 0), (status, doc["signals"])


def test_a_resumed_signal_protects_a_position_that_is_gone_and_its_stale_stop_wins(
    binance, db_path, kill9
):
    """The lifecycle sizes and places the stop from the entry's fill, never from the
    position: a signal resumed after its position closed places a stop and target for
    nothing. When the next signal on the symbol opens the same size, the watchdog sees two
    signal-owned stops and keeps the first listed - the stale one, at the old signal's price."""
    pull({**BUY, "stop_loss": 47000})
    kill9("/fapi/v1/algoOrder", "POST")
    assert invoke("--testnet", "execute").exit_code == 130
    kill9.revive()
    binance.fire(SL, "46900")  # the stop did its job; the position is gone
    binance.marks["BTCUSDT"] = "50000"  # and the price came back
    pull({**BUY, "intent_id": "t-buy-2", "stop_loss": 49500})
    invoke_json("--testnet", "execute")  # resumes t-buy-1, then enters t-buy-2
    invoke_json("--testnet", "reconcile")
    (stop,) = [o for o in binance.algo_orders.values()
               if o["algoStatus"] == "NEW" and o["orderType"] == "STOP_MARKET"]  # fmt: skip
    assert stop["triggerPrice"] == "49500", stop  # t-buy-2's own stop


def test_a_time_exit_whose_close_fails_skips_the_stop_repair(binance, db_path, kill9, monkeypatch):
    """watchdog._time_exit returns True (skip the repairs) even when its close failed: a
    position without a stop that is past max_holding_s stays without one, run after run,
    as long as the close keeps failing."""
    monkeypatch.setenv("QTRADER_RECONCILE_MAX_HOLDING_S", "600")
    pull(BUY)
    kill9("/fapi/v1/order", "POST")  # the entry filled; killed before its stop
    assert invoke("--testnet", "execute").exit_code == 130
    kill9.revive()
    with duckdb.connect(str(db_path)) as conn:
        conn.execute("UPDATE orders SET created_at = created_at - INTERVAL 1 HOUR")
    binance.fail_next("/fapi/v1/order", "POST", 503)  # the time-exit close fails
    _code, doc = invoke_json("--testnet", "reconcile")
    assert binance.positions[("BTCUSDT", "BOTH")] != 0
    stops = [o for o in binance.algo_orders.values() if o["algoStatus"] == "NEW"
             and o["orderType"] == "STOP_MARKET"]  # fmt: skip
    assert len(stops) == 1, doc["repairs"]  # FAILS: no stop placed


def test_a_revived_entry_keeps_its_old_created_at_so_its_grace_period_is_already_over(
    binance, db_path
):
    """A not_sent entry revived by a later run keeps the created_at of the run that wrote
    it. Sent now with an unknown outcome (-1007: Binance's backend may still act on it) and
    not found at once, the very next reconcile gives it up as not_found - the grace period
    was measured from hours before the request was ever sent."""
    pull(BUY, ETH)
    binance.fail_next("/fapi/v1/order", "POST", 418)  # banned: t-eth-1 is never sent
    assert invoke("--testnet", "execute").exit_code == 1
    eth = client_order_id("t-eth-1", Role.ENTRY)
    assert query(db_path, "SELECT status FROM orders WHERE client_order_id = ?", [eth]) == [
        ("not_sent",)
    ]
    with duckdb.connect(str(db_path)) as conn:  # the ban lasted an hour
        conn.execute("UPDATE orders SET created_at = created_at - INTERVAL 1 HOUR")
    binance.fail_next("/fapi/v1/order", "POST",
                      {"code": -1007, "msg": "Timeout waiting for response from backend server. "
                       "Send status unknown; execution status unknown."})  # fmt: skip
    invoke_json("--testnet", "execute")  # t-buy-1 resumes first (looked up), then t-eth-1 is sent
    invoke_json("--testnet", "reconcile")  # seconds later
    assert query(db_path, "SELECT status FROM orders WHERE client_order_id = ?", [eth]) == [
        ("unknown",)
    ]  # FAILS: not_found, seconds after it was sent


def test_the_watchdog_leaves_a_position_naked_when_the_exchange_refuses_its_stop(
    binance, db_path, kill9
):
    """Invariant 2: if the stop cannot be placed, the position is closed. execute does this
    (a REJECTED stop -> emergency close); the watchdog only closes on -2021. Any other
    refusal (-4045 max stop orders, -4014 tick, -1111 precision...) leaves a position
    without a stop after every reconcile."""
    pull(BUY)
    kill9("/fapi/v1/order", "POST")  # filled, killed before its stop
    assert invoke("--testnet", "execute").exit_code == 130
    kill9.revive()
    refusal = {"code": -4045, "msg": "Reach max stop order limit."}
    binance.fail_next("/fapi/v1/algoOrder", "POST", *[refusal] * 10)
    for _ in range(2):
        _code, doc = invoke_json("--testnet", "reconcile")
    stops = [o for o in binance.algo_orders.values() if o["algoStatus"] == "NEW"]
    naked = binance.positions[("BTCUSDT", "BOTH")] != 0 and not stops
    assert not naked, doc["repairs"]


def test_a_ban_while_setting_leverage_leaves_written_entries_looking_sent(
    binance, db_path, monkeypatch
):
    """Issue 12 item 6 again, through _write_entries: an ExchangeBanned from set-leverage
    escapes before the entries are committed and before the not_sent bookkeeping; execute's
    `finally` commits the batch, so an entry that was never sent is `submitting` and its
    signal `executing`: it is never queued again, and after the grace period it is rejected."""
    monkeypatch.setenv("QTRADER_EXCHANGE_READ_RETRIES", "1")
    pull(BUY, {**ETH, "leverage": 2})
    binance.fail_next("/fapi/v1/marginType", "POST", None, 418)  # BTC's ok, ETH's banned
    invoke("--testnet", "execute")
    assert binance.order_posts() == []  # nothing was sent
    rows = dict(query(db_path, "SELECT signal_id, status FROM signals"))
    with duckdb.connect(str(db_path)) as conn:  # later, past the grace period
        conn.execute("UPDATE orders SET created_at = created_at - INTERVAL 2 MINUTE")
    _code, doc = invoke_json("--testnet", "execute")
    after = {s["signal_id"]: (s["status"], s["reason"]) for s in doc["signals"]}
    sent = [p.params["newClientOrderId"] for p in binance.order_posts()]
    assert rows == {"t-buy-1": "pending", "t-eth-1": "pending"}, (rows, after, sent)


def test_a_stop_that_fires_between_reconciles_reads_is_not_a_failed_close(binance, db_path):
    """positionRisk is read, then the stop fires, then openAlgoOrders is read: the watchdog
    sees a position without a stop past its price, closes it (-2022: already flat) and
    reports a critical 'close FAILED'; reconcile exits 1 on a healthy account."""
    pull(BUY)
    assert invoke_json("--testnet", "execute")[0] == 0
    assert invoke_json("--testnet", "reconcile")[0] == 0

    def fire_between(method, path):
        if (method, path) == ("GET", "/fapi/v1/openAlgoOrders") and binance.positions[
            ("BTCUSDT", "BOTH")
        ]:
            binance.fire(SL, "48900")
        return None

    binance.chaos = fire_between
    code, doc = invoke_json("--testnet", "reconcile")
    binance.chaos = None
    assert code == 0, doc["repairs"]


def test_a_failed_mark_price_read_for_one_signal_stops_the_close_of_another(
    binance, db_path, monkeypatch
):
    """_decide is outside _guarded: an ExchangeUnavailable from the run's one mark-price read
    (drift guard / min notional at the mark) escapes handle_pending, and a CLOSE decided
    before it in the same batch is never sent."""
    monkeypatch.setenv("QTRADER_EXCHANGE_READ_RETRIES", "1")
    binance.position("BTCUSDT", "0.008")
    pull({"intent_id": "t-close-1", "symbol": "BTCUSDT", "side": "CLOSE", "confidence": 0.9}, ETH)
    binance.fail_next("/fapi/v1/premiumIndex", "GET", 503)
    result = invoke("--testnet", "execute")
    assert binance.positions[("BTCUSDT", "BOTH")] == 0, (result.exit_code, result.output[-400:])
