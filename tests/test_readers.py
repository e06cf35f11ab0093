"""People read without blocking trading: `status` and `pnl-report` open the file read-only,
write nothing (not even a runs row), and work beside a notebook that holds the file
read-only, as any number of readers can. (In paper mode `status` asks the paper exchange,
whose books are in the file and catch up as they are read: it opens the file for writing.)"""

from __future__ import annotations

import pytest

from tests.conftest import invoke, invoke_json, query
from tests.test_lock import notebook  # noqa: F401  (fixture)
from tests.test_read_only import fingerprint

READERS = [
    ["--testnet", "status"],
    ["pnl-report"],
    ["--testnet", "pnl-report"],
    ["sql", "SELECT count(*) FROM v_trades"],
]


@pytest.mark.usefixtures("exchange_env", "binance")
@pytest.mark.parametrize("command", READERS)
def test_readers_write_nothing(db_path, command):
    invoke("status")
    before = fingerprint(db_path)
    result = invoke(*command)
    assert result.exit_code == 0, result.output
    assert fingerprint(db_path) == before


@pytest.mark.usefixtures("exchange_env", "binance")
@pytest.mark.parametrize("command", READERS)
def test_readers_run_beside_a_notebook_holding_the_file_read_only(db_path, notebook, command):  # noqa: F811
    notebook(read_only=True)
    result = invoke("--lock-timeout", "1", *command)
    assert result.exit_code == 0, result.output + result.stderr


def test_pnl_report_writes_csv_and_parquet_from_a_read_only_connection(db_path, tmp_path, notebook):  # noqa: F811
    notebook(read_only=True)
    out = tmp_path / "out"
    result = invoke("--lock-timeout", "1", "pnl-report", "--csv", str(out), "--parquet", str(out))
    assert result.exit_code == 0, result.output + result.stderr
    assert (out / "v_trades.csv").exists() and (out / "v_trades.parquet").exists()


@pytest.mark.usefixtures("exchange_env", "binance")
def test_a_reader_on_a_missing_file_creates_it_first(db_path):
    assert not db_path.exists()
    code, doc = invoke_json("--testnet", "status")
    assert code == 0 and doc["ok"] and db_path.exists()
    assert query(db_path, "SELECT count(*) FROM runs")[0][0] == 0  # readers leave no runs row


def test_paper_status_still_catches_the_paper_exchange_up(db_path):
    """The paper exchange's books live in the file: paper status opens it for writing."""
    assert invoke("status").exit_code == 0
    assert query(db_path, "SELECT count(*) FROM runs WHERE command = 'status'")[0][0] == 1
