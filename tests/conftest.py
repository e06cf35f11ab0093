"""Shared fixtures: an isolated environment per test, and a real redis-server."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from qtrader.cli import app
from qtrader.config import SEED_ENV

runner = CliRunner()
KEY_VARS = (
    "BINANCE_API_KEY",
    "BINANCE_API_SECRET",
    "BYBIT_API_KEY",
    "BYBIT_API_SECRET",
    "OKX_API_KEY",
    "OKX_API_SECRET",
    "OKX_API_PASSPHRASE",
    "TESTNET",
    "PAPER_TRADING",
    *SEED_ENV,
)


@pytest.fixture(autouse=True)
def env_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Each test gets its own working directory and DuckDB file, and no stray settings."""
    for name in list(os.environ):
        if name.startswith("QTRADER_") or name in KEY_VARS:
            monkeypatch.delenv(name, raising=False)
    db = tmp_path / "qtrader.duckdb"
    monkeypatch.setenv("QTRADER_DB", str(db))
    # the Parquet copy for notebooks costs each test's first write ~0.1 s: on only where tested
    monkeypatch.setenv("QTRADER_EXPLORE_EVERY_S", "0")
    monkeypatch.chdir(tmp_path)
    return db


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing in a test reaches beyond this machine: resolving any other host fails at once
    (`responses` answers before any resolving; Redis and servers bind 127.0.0.1)."""
    resolve = socket.getaddrinfo

    def loopback_only(host, *args, **kwargs):
        if host not in (None, "127.0.0.1", "localhost", "::1"):
            raise socket.gaierror(f"tests never reach the network (asked for {host})")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)


@pytest.fixture(autouse=True)
def no_rate_limit_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """ccxt's rate limiter really sleeps (~100 ms a request); against the local stand-in
    that is only wasted test time. tests/test_binance_adapter.py checks it stays on."""
    from qtrader.exchange.binance import _JournalingBinance

    monkeypatch.setattr(_JournalingBinance, "throttle", lambda self, cost=None: None)


TEST_API_KEY = "test-key-0123456789abcdef"  # not a real key: nothing here reaches an exchange
TEST_API_SECRET = "test-secret-fedcba9876543210"


@pytest.fixture
def exchange_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Demo-trading style keys and no back-off waits, for tests that talk to the stand-in."""
    monkeypatch.setenv("BINANCE_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("BINANCE_API_SECRET", TEST_API_SECRET)
    monkeypatch.setenv("QTRADER_EXCHANGE_RETRY_WAIT_S", "0")


@pytest.fixture
def bybit_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bybit demo-trading style keys, Bybit chosen, and no back-off waits."""
    monkeypatch.setenv("BYBIT_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("BYBIT_API_SECRET", TEST_API_SECRET)
    monkeypatch.setenv("QTRADER_EXCHANGE_NAME", "bybit")
    monkeypatch.setenv("QTRADER_EXCHANGE_RETRY_WAIT_S", "0")


@pytest.fixture
def bybit():
    """The Bybit v5 stand-in (tests/bybit_fake.py) behind `responses`."""
    import responses

    from tests.bybit_fake import FakeBybit

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeBybit().install(mock)


@pytest.fixture
def binance():
    """The Binance USDⓈ-M stand-in (tests/binance_fake.py) behind `responses`."""
    import responses

    from tests.binance_fake import FakeBinance

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeBinance().install(mock)


@pytest.fixture
def signal_sizing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trade the signal's own position_size_usd (numbers in tests stay easy to check)."""
    monkeypatch.setenv("QTRADER_RISK_SIZING", "signal")


@pytest.fixture
def db_path(env_setup: Path) -> Path:
    return env_setup


def invoke(*args: str, input: str | bytes | None = None):
    return runner.invoke(app, list(args), input=input)


def invoke_json(*args: str, input: str | bytes | None = None) -> tuple[int, dict]:
    result = runner.invoke(app, ["--json", *args], input=input)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one JSON document, got: {result.stdout!r}"
    return result.exit_code, json.loads(lines[0])


def query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.execute(sql, params or []).fetchall()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_server() -> str:
    """A real redis-server on a free loopback port, for the session; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed (`make test` installs it from Debian's packages)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("redis-server did not start")
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def redis_client(redis_server: str):
    import redis

    client = redis.Redis.from_url(redis_server)
    client.flushdb()
    yield client
    client.close()
