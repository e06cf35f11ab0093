"""The copy for notebooks: after a run that wrote, the report views and main tables are in
`<db>.explore/` as Parquet with `explore.duckdb` over them; a notebook holds that all day
while the jobs go on writing the live file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import duckdb
import pytest

from qtrader.store.explore import EXPORTED, due, explore_dir
from tests.conftest import invoke, query
from tests.test_execute import BUY, pull


@pytest.fixture
def explore_on(monkeypatch):
    monkeypatch.setenv("QTRADER_EXPLORE_EVERY_S", "300")


def _views(db_path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(explore_dir(db_path) / "explore.duckdb"), read_only=True)


@pytest.mark.usefixtures("explore_on")
def test_a_run_that_writes_exports_every_view_and_table(db_path):
    pull(BUY)
    folder = explore_dir(db_path)
    assert sorted(p.stem for p in folder.glob("*.parquet")) == sorted(EXPORTED)
    with _views(db_path) as con:
        assert con.execute("SELECT count(*) FROM signals").fetchone()[0] == 1
        live = query(db_path, "SELECT count(*) FROM runs")[0][0]
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == live


@pytest.mark.usefixtures("explore_on")
def test_the_copy_is_refreshed_only_when_due(db_path, monkeypatch):
    pull(BUY)
    marker = explore_dir(db_path) / ".exported"
    first = marker.stat().st_mtime_ns
    invoke("pull-signals", "--from", "-", input="")
    assert marker.stat().st_mtime_ns == first  # younger than every_s: not again
    assert not due(db_path, 300) and due(db_path, 300, now=marker.stat().st_mtime + 300)
    monkeypatch.setenv("QTRADER_EXPLORE_EVERY_S", "0")
    assert not due(db_path, 0)


@pytest.mark.usefixtures("explore_on")
def test_a_notebook_holds_the_copy_while_runs_go_on_and_see_fresh_data(db_path, monkeypatch):
    pull(BUY)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
         "print(con.execute('SELECT count(*) FROM signals').fetchone()[0], flush=True); "
         "sys.stdin.readline(); "
         "print(con.execute('SELECT count(*) FROM signals').fetchone()[0], flush=True)",
         str(explore_dir(db_path) / "explore.duckdb")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "1"
        monkeypatch.setenv("QTRADER_EXPLORE_EVERY_S", "1")
        os.utime(explore_dir(db_path) / ".exported", (0, 0))  # long ago: due
        second = json.dumps({**BUY, "intent_id": "t-buy-2"})
        result = invoke("--lock-timeout", "2", "pull-signals", "--from", "-", input=second)
        assert result.exit_code == 0, result.output  # the live file is not held by the notebook
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "2"  # the same session sees the new copy
    finally:
        holder.communicate("", timeout=30)


def test_off_by_setting(db_path):
    pull(BUY)
    assert not explore_dir(db_path).exists()


@pytest.mark.usefixtures("explore_on")
def test_readers_and_dry_runs_do_not_export(db_path):
    invoke("sql", "SELECT 1")
    invoke("pnl-report")
    assert not explore_dir(db_path).exists()


@pytest.mark.usefixtures("explore_on")
def test_a_failed_export_never_changes_the_run(db_path, monkeypatch):
    import qtrader.store.explore as explore

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(explore, "export", broken)
    result = invoke("pull-signals", "--from", "-", input=json.dumps(BUY))
    assert result.exit_code == 0 and query(db_path, "SELECT count(*) FROM signals")[0][0] == 1
    assert "explore copy was not refreshed: disk full" in result.stderr
