"""The DuckDB file qtrader writes opens in the DuckDB 1.x CLI and UI (`duckdb data/qtrader.duckdb`).

DuckDB 2.x writes a newer storage format that 1.x refuses ("storage version"), so the
dependency is pinned below 2 (pyproject.toml) and every created file carries storage
version 64, which DuckDB 0.10 and every 1.x read.
"""

from __future__ import annotations

from importlib.metadata import requires, version

from packaging.requirements import Requirement

from tests.conftest import invoke

READABLE_BY_DUCKDB_1X = 64  # storage version number of DuckDB 0.10.0 … 1.5


def test_the_duckdb_dependency_stays_below_2_and_is_installed_within_it():
    (duckdb_req,) = [Requirement(r) for r in requires("qtrader") if r.startswith("duckdb")]
    assert "2.0.0" not in duckdb_req.specifier and "1.1.0" in duckdb_req.specifier
    assert version("duckdb") in duckdb_req.specifier


def test_a_created_database_has_a_storage_version_the_1x_cli_reads(db_path):
    assert invoke("status").exit_code == 0
    header = db_path.read_bytes()[:64]
    assert header[8:12] == b"DUCK"
    assert int.from_bytes(header[12:20], "little") == READABLE_BY_DUCKDB_1X
    assert header[52:54] == b"v1"  # written by a DuckDB 1.x library
