"""Halts are a set per mode, keyed by kind: none weakens another, each lifts its own way."""

from __future__ import annotations

import sys
from datetime import date, datetime, timedelta

import duckdb
import pytest

from qtrader.domain.halts import Halt, expired, lifts_for, merged
from qtrader.store import open_store
from qtrader.store.halts import add_halt
from qtrader.store.migrations import available
from tests.conftest import invoke, invoke_json, query
from tests.test_execute import BUY, pull

pytestmark = pytest.mark.usefixtures("exchange_env")

DAY1 = datetime(2026, 3, 9, 23, 0)


@pytest.fixture
def now(monkeypatch):
    """qtrader's clock, pinned: every module that imported utcnow reads `now["at"]`."""
    import qtrader.clock

    pinned = {"at": DAY1}
    real = qtrader.clock.utcnow
    for name, module in list(sys.modules.items()):
        if name.startswith("qtrader") and getattr(module, "utcnow", None) is real:
            monkeypatch.setattr(module, "utcnow", lambda: pinned["at"])
    return pinned


def kinds(db_path, mode: str = "testnet") -> list[str]:
    return [k for (k,) in query(db_path, "SELECT kind FROM halts WHERE mode = ? ORDER BY kind",
                                [mode])]  # fmt: skip


def test_kill_switch_survives_a_daily_loss_breaker_and_its_rollover(binance, db_path, now,
                                                                    monkeypatch):  # fmt: skip
    """The issue's scenario 1: close-all, then the next day reconcile trips the daily-loss
    breaker; when that day is over, execute must still refuse (only resume lifts a kill
    switch)."""
    monkeypatch.setenv("QTRADER_RISK_MAX_DRAWDOWN_PCT", "50")  # isolate the daily-loss breaker
    assert invoke_json("--testnet", "close-all", "--yes")[0] == 0
    assert kinds(db_path) == ["kill_switch"]

    now["at"] = DAY1 + timedelta(hours=1, minutes=30)  # day 2, 00:30: start-of-day equity
    assert invoke("--testnet", "reconcile").exit_code == 0  # reconcile goes on while halted
    binance.wallet = "9400"  # a 6 % loss against the 5 % limit
    now["at"] = DAY1 + timedelta(hours=2)
    result = invoke("--testnet", "reconcile")
    assert result.exit_code == 3 and "daily loss 6% >= limit 5%" in result.stderr
    assert kinds(db_path) == ["daily_loss", "kill_switch"]
    _, doc = invoke_json("--testnet", "status")
    assert {h["kind"]: h["how_it_lifts"] for h in doc["halts"]} == {
        "kill_switch": "`qtrader resume` lifts it",
        "daily_loss": "it lifts at 00:00 UTC",
    }

    now["at"] = DAY1 + timedelta(days=1, hours=1, minutes=10)  # day 3
    pull(BUY)
    result = invoke("--testnet", "execute")
    assert result.exit_code == 3 and "kill switch: close-all" in result.stderr
    assert binance.order_posts() == [] or all(
        p.params.get("reduceOnly") == "true" for p in binance.order_posts()
    )  # only close-all's closes ever went out
    assert kinds(db_path) == ["kill_switch"]  # the daily-loss halt lifted, and only it
    events = query(db_path, "SELECT kind, json_extract_string(data, '$.kind') FROM events "
                            "WHERE kind IN ('breaker_tripped', 'halt_cleared') ORDER BY event_id")  # fmt: skip
    assert events == [("breaker_tripped", "daily_loss"), ("halt_cleared", "daily_loss")]

    _, doc = invoke_json("--testnet", "resume")
    assert [h["kind"] for h in doc["lifted"]] == ["kill_switch"]
    code, doc = invoke_json("--testnet", "execute")
    assert code == 0 and doc["signals"][0]["status"] == "executed"


def test_a_daily_loss_tripped_again_today_does_not_lift_at_yesterdays_rollover(db_path, now):
    invoke("status")
    store = open_store(str(db_path))
    add_halt(store, Halt("live", "daily_loss", "day 1 loss", DAY1, DAY1.date()), 1)
    day2 = DAY1 + timedelta(hours=2)
    kept, new = add_halt(store, Halt("live", "daily_loss", "day 2 loss", day2, day2.date()), 2)
    store.close()
    assert new is True and kept.day == day2.date() and kept.reason == "day 2 loss"
    assert not expired(kept, day2 + timedelta(hours=20))


def test_two_modes_in_one_database_do_not_halt_each_other(binance, db_path):
    invoke("status")
    store = open_store(str(db_path))
    at = datetime.utcnow()
    add_halt(store, Halt("paper", "drawdown", "paper drawdown", at, at.date()), 1)
    store.close()
    pull(BUY)
    code, doc = invoke_json("--testnet", "execute")  # a PAPER breaker does not stop TESTNET
    assert code == 0 and doc["signals"][0]["status"] == "executed"

    assert invoke_json("--testnet", "close-all", "--yes")[0] == 0
    assert kinds(db_path, "testnet") == ["kill_switch"]
    assert kinds(db_path, "paper") == ["drawdown"]  # untouched by the testnet kill switch
    _, doc = invoke_json("--paper", "resume")  # lifts PAPER's halts only
    assert [h["kind"] for h in doc["lifted"]] == ["drawdown"]
    assert kinds(db_path, "paper") == [] and kinds(db_path, "testnet") == ["kill_switch"]
    pull({**BUY, "intent_id": "after"})
    assert invoke("--testnet", "execute").exit_code == 3


def test_the_old_single_halt_key_becomes_a_halt_in_every_mode(tmp_path):
    """Migration 0007: the shared `halt` state key held every mode, so it is kept in every
    mode; an unnamed halt becomes a kill switch (only resume lifts it)."""
    path = tmp_path / "old.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
                 "applied_at TIMESTAMP NOT NULL)")  # fmt: skip
    for version, name, sql in available():
        if version < 7:
            conn.execute(sql)
            conn.execute("INSERT INTO schema_version VALUES (?, ?, now())", [version, name])
    conn.execute("INSERT INTO state VALUES ('halt', ?, now())",
                 ['{"kind": "consecutive_losses", "reason": "5 in a row", "clears": "resume", '
                  '"since": "2026-03-01T10:00:00", "day": "2026-03-01", "numbers": {"limit": 5}}'])  # fmt: skip
    conn.close()
    open_store(str(path)).close()
    rows = query(path, "SELECT mode, kind, reason, since, day, numbers FROM halts ORDER BY mode")
    assert rows == [
        (mode, "losing_streak", "5 in a row", datetime(2026, 3, 1, 10), date(2026, 3, 1),
         '{"limit":5}')
        for mode in ("live", "paper", "testnet")
    ]  # fmt: skip
    assert query(path, "SELECT count(*) FROM state WHERE key = 'halt'") == [(0,)]


D1, D2 = date(2026, 3, 9), date(2026, 3, 10)
T1, T2 = datetime(2026, 3, 9, 12), datetime(2026, 3, 10, 12)


@pytest.mark.parametrize(
    ("description", "existing", "new", "kept_reason", "kept_day"),
    [
        ("nothing held: the new halt", None, ("b", T1, D1), "b", D1),
        ("same day again: the first stays", ("a", T1, D1), ("b", T1, D1), "a", D1),
        ("tripped again a later day: lifts later", ("a", T1, D1), ("b", T2, D2), "b", D2),
        ("an older trip never moves it earlier", ("a", T2, D2), ("b", T1, D1), "a", D2),
    ],
)
def test_adding_a_halt_never_weakens_one_of_the_same_kind(
    description, existing, new, kept_reason, kept_day
):
    def make(spec):
        return Halt("live", "daily_loss", spec[0], spec[1], spec[2]) if spec else None

    kept = merged(make(existing), make(new))
    assert (kept.reason, kept.day) == (kept_reason, kept_day)
    if existing:
        assert kept.since == existing[1]  # it holds since it was first added


@pytest.mark.parametrize(
    ("kind", "lifts", "expired_next_day"),
    [
        ("kill_switch", "resume", False),
        ("drawdown", "resume", False),
        ("losing_streak", "resume", False),
        ("daily_loss", "next_utc_day", True),
        ("exchange_unhealthy", "healthy_run", False),
        ("something_new", "resume", False),  # unknown: the strongest
    ],
)
def test_each_kind_lifts_its_own_way(kind, lifts, expired_next_day):
    assert lifts_for(kind) == lifts
    halt = Halt("live", kind, "r", T1, D1)
    assert expired(halt, T1 + timedelta(hours=11)) is False
    assert expired(halt, T2) is expired_next_day
