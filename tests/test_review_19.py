"""Review of issue 19's readers, explore copy and reconcile/execute prefetches: attacks."""

from __future__ import annotations

import pytest

from tests.conftest import invoke, invoke_json, query
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


def test_two_runs_exporting_the_copy_at_once_both_leave_whole_files(db_path, monkeypatch):
    """Two jobs that finish together both find the copy due and export it, each on its own
    read-only connection (DuckDB lets both): one's partial file must not be the other's."""
    import os

    import duckdb

    from qtrader.store import explore

    invoke("pull-signals", "--from", "-", input="")  # the file exists
    real_replace = os.replace
    nested = []

    def replace_after_another_export(src, dst):
        if not nested:  # the second run exports while the first is between write and rename
            nested.append(True)
            with duckdb.connect(str(db_path), read_only=True) as other:
                explore.export(db_path, other)
        real_replace(src, dst)

    monkeypatch.setattr(explore.os, "replace", replace_after_another_export)
    with duckdb.connect(str(db_path), read_only=True) as conn:
        explore.export(db_path, conn)  # must not fail
    folder = explore.explore_dir(db_path)
    assert not list(folder.glob(".*partial*"))
    with duckdb.connect(str(folder / "explore.duckdb"), read_only=True) as con:
        for name in explore.EXPORTED:
            con.execute(f"SELECT count(*) FROM {name}").fetchone()


def test_the_copy_is_exported_for_a_database_whose_path_has_quotes(tmp_path, monkeypatch):
    """A path is quoted into COPY … TO '…' and read_parquet('…'): a quote in it must not end
    the string (nor run what follows)."""
    import duckdb

    from qtrader.store.explore import explore_dir

    folder = tmp_path / "o'neil's; DROP TABLE signals; --"
    folder.mkdir()
    db = folder / "q'db.duckdb"
    monkeypatch.setenv("QTRADER_DB", str(db))
    monkeypatch.setenv("QTRADER_EXPLORE_EVERY_S", "300")
    assert invoke("pull-signals", "--from", "-", input="").exit_code == 0
    with duckdb.connect(str(explore_dir(db) / "explore.duckdb"), read_only=True) as con:
        copied = con.execute("SELECT count(*) FROM signals").fetchone()[0]
    assert query(db, "SELECT count(*) FROM signals") == [(copied,)]  # still there, as copied


def test_pnl_report_with_a_rederive_pending_beside_a_notebook_says_so_and_loses_nothing(
    db_path,
    notebook,  # noqa: F811
):
    from qtrader.steps.ledger import REDERIVE_KEY

    invoke("status")
    with duckdb_rw(db_path) as con:
        con.execute(
            "INSERT INTO state (key, value, updated_at) VALUES (?, '1', now())", [REDERIVE_KEY]
        )
    holder = notebook(read_only=True)
    result = invoke("--lock-timeout", "0.5", "pnl-report")
    assert result.exit_code == 4, result.output
    assert f"PID {holder.pid}" in result.stderr
    holder.communicate("", timeout=30)
    assert invoke("pnl-report").exit_code == 0
    assert query(db_path, f"SELECT count(*) FROM state WHERE key = '{REDERIVE_KEY}'") == [(0,)]


def duckdb_rw(path):
    import duckdb

    return duckdb.connect(str(path))


def test_an_explore_file_a_person_created_before_the_first_export_gets_its_views(
    db_path, monkeypatch
):
    """`duckdb <db>.explore/explore.duckdb` (or the UI) before the first export creates an
    empty file; qtrader wrote the views only when the file did not exist: never, then."""
    import duckdb

    from qtrader.store.explore import EXPORTED, explore_dir

    invoke("status")
    folder = explore_dir(db_path)
    folder.mkdir()
    duckdb.connect(str(folder / "explore.duckdb")).close()  # the person's empty file
    monkeypatch.setenv("QTRADER_EXPLORE_EVERY_S", "300")
    assert invoke("pull-signals", "--from", "-", input="").exit_code == 0
    with duckdb.connect(str(folder / "explore.duckdb"), read_only=True) as con:
        for name in EXPORTED:
            con.execute(f"SELECT count(*) FROM {name}").fetchone()


def test_a_stop_resolved_open_that_fires_before_the_book_is_read_is_settled_in_the_same_run(
    binance, db_path
):
    """The stop's answer was lost (unknown). This reconcile's lookup finds it open; it fires
    before the run reads the book. Before the prefetch, the run checked it against the book
    and recorded it filled; the prefetched list of open protection does not have it."""
    from tests.test_execute import BUY, pull

    pull(BUY)
    binance.fail_next("/fapi/v1/algoOrder", "POST", "timeout_after_accept")
    binance.fail_next("/fapi/v1/algoOrder", "GET", *(["timeout"] * 8))
    invoke("--testnet", "execute")
    binance.faults.clear()  # reconcile's lookup is answered
    stop_status = "SELECT status FROM orders WHERE role = 'stop_loss'"
    assert query(db_path, stop_status) == [("unknown",)], binance.faults
    (stop_cid,) = [c for c, o in binance.algo_orders.items() if o["orderType"] == "STOP_MARKET"]
    book = binance.routes[("GET", "/fapi/v1/openAlgoOrders")]

    def fires_first(params):
        if binance.algo_orders[stop_cid]["algoStatus"] == "NEW":
            binance.fire(stop_cid, "49000")
        return book(params)

    binance.routes[("GET", "/fapi/v1/openAlgoOrders")] = fires_first
    code, doc = invoke_json("--testnet", "reconcile")
    assert code == 0, doc
    fired = "SELECT status FROM orders WHERE client_order_id = ?"
    assert query(db_path, fired, [stop_cid]) == [("filled",)]  # not "open" for another run


def test_a_reconcile_killed_after_resolving_orders_in_flight_keeps_what_it_learned(
    binance, db_path
):
    """The prefetch moved the write of the resolved orders after the next requests: a run
    killed at the position read must still have stored the entry it found filled."""
    from tests.test_execute import BUY, pull

    pull(BUY)
    binance.fail_next("/fapi/v1/order", "POST", "timeout_after_accept", "timeout")
    binance.fail_next("/fapi/v1/order", "GET", "timeout", "timeout", "timeout", "timeout")
    invoke("--testnet", "execute")
    entry = "SELECT status FROM orders WHERE role = 'entry'"
    assert query(db_path, entry) == [("unknown",)]
    binance.faults.clear()
    binance.fail_next("/fapi/v3/positionRisk", "GET", KeyboardInterrupt("killed"))
    result = invoke("--testnet", "reconcile")
    assert result.exit_code != 0
    assert query(db_path, entry) == [("filled",)]
    calls = "SELECT count(*) FROM exchange_calls WHERE path LIKE '%positionRisk%'"
    assert query(db_path, calls)[0][0] >= 1  # the journal has the request it was killed in


def test_a_notebook_holding_explore_duckdb_read_write_does_not_stop_the_refresh(
    db_path, monkeypatch
):
    import json
    import os
    import subprocess
    import sys

    from qtrader.store.explore import MARKER, explore_dir
    from tests.test_execute import BUY, pull

    monkeypatch.setenv("QTRADER_EXPLORE_EVERY_S", "1")
    pull(BUY)
    folder = explore_dir(db_path)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys; con = duckdb.connect(sys.argv[1]); "
         "con.execute('CREATE TABLE mine AS SELECT 42 AS x'); print('ready', flush=True); "
         "sys.stdin.readline(); "
         "print(con.execute('SELECT count(*) FROM signals').fetchone()[0], flush=True)",
         str(folder / "explore.duckdb")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ready"
        os.utime(folder / MARKER, (0, 0))
        second = json.dumps({**BUY, "intent_id": "t-buy-2"})
        result = invoke("pull-signals", "--from", "-", input=second)
        assert result.exit_code == 0, result.output
        assert "not refreshed" not in result.stderr
        assert (folder / MARKER).stat().st_mtime > 0
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "2"
    finally:
        holder.communicate("", timeout=30)
