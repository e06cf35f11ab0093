"""Choosing the exchange: the setting, its env name and flag, keys per exchange, the
registry, exchange-neutral symbols, the `exchange` column and one exchange per mode per file,
and the refusal taxonomy that makes Binance's, Bybit's and OKX's codes mean the same thing."""

from __future__ import annotations

import duckdb
import pytest

from qtrader.config import SettingsRequest, load_settings
from qtrader.domain.orders import Refusal
from qtrader.domain.signal import normalise_symbol
from qtrader.errors import ConfigError
from qtrader.exchange import credentials, open_exchange
from qtrader.exchange.codes import BINANCE, BYBIT, OKX, refusal_of
from qtrader.exchange.port import ExchangeRejected
from qtrader.output import mode_label
from qtrader.store import open_store
from tests.conftest import invoke, invoke_json, query


def load(env: dict[str, str] | None = None, **request: str):
    return load_settings(SettingsRequest(**request), environ=env or {})


def test_the_exchange_is_binance_unless_chosen_by_file_env_or_flag(tmp_path):
    assert load().exchange.name == "binanceusdm"
    assert load({"QTRADER_EXCHANGE_NAME": "bybit"}).exchange.name == "bybit"
    (tmp_path / "qtrader.toml").write_text('[exchange]\nname = "okx"\n')
    assert load().exchange.name == "okx"
    flagged = load({"QTRADER_EXCHANGE_NAME": "okx"}, exchange="bybit")
    assert flagged.exchange.name == "bybit"
    assert flagged.origins["exchange.name"] == ("flag", "--exchange")


def test_an_unknown_exchange_is_a_config_error_naming_the_choices():
    with pytest.raises(ConfigError, match="binanceusdm, bybit, okx"):
        load({"QTRADER_EXCHANGE_NAME": "kraken"})
    code, doc = invoke_json("--exchange", "kraken", "status")
    assert code == 2 and "bybit" in doc["error"]


@pytest.mark.parametrize(
    "spelling", ["BTCUSDT", "btcusdt", "BTC/USDT", "BTC-USDT", "BTC/USDT:USDT", "BTC-USDT-SWAP"]
)
def test_every_spelling_of_the_usdt_perpetual_is_stored_as_btcusdt(spelling):
    assert normalise_symbol(spelling) == "BTCUSDT"


@pytest.mark.parametrize("spelling", ["BTC-USDT-250328", "BTC/USDT:BTC", "BTC/USD:BTC-250328"])
def test_dated_and_coin_margined_contracts_are_refused(spelling):
    from qtrader.domain.signal import InvalidSignal

    with pytest.raises(InvalidSignal):
        normalise_symbol(spelling)


def test_keys_come_from_the_chosen_exchange_variables_then_the_generic_ones():
    env = {"BINANCE_API_KEY": "bk", "BINANCE_API_SECRET": "bs",
           "BYBIT_API_KEY": "yk", "BYBIT_API_SECRET": "ys"}  # fmt: skip
    assert (credentials(env, "testnet", "bybit").api_key, credentials(env, "live", "binanceusdm").api_key) == ("yk", "bk")  # fmt: skip
    generic = {"QTRADER_API_KEY": "gk", "QTRADER_API_SECRET": "gs", "QTRADER_API_PASSPHRASE": "gp"}
    okx = credentials(generic, "testnet", "okx")
    assert (okx.api_key, okx.secret, okx.passphrase) == ("gk", "gs", "gp")
    # Binance keys are never sent to Bybit
    with pytest.raises(ConfigError, match=r"BYBIT_API_KEY and BYBIT_API_SECRET.*Bybit demo"):
        credentials({"BINANCE_API_KEY": "bk", "BINANCE_API_SECRET": "bs"}, "testnet", "bybit")
    # OKX needs its passphrase too
    with pytest.raises(ConfigError, match="OKX_API_PASSPHRASE"):
        credentials({"OKX_API_KEY": "k", "OKX_API_SECRET": "s"}, "testnet", "okx")


def test_okx_opens_the_okx_adapter_in_demo_trading_with_its_passphrase():
    settings = load({"QTRADER_EXCHANGE_NAME": "okx"}, mode="testnet")
    env = {"OKX_API_KEY": "k", "OKX_API_SECRET": "s", "OKX_API_PASSPHRASE": "p"}
    exchange = open_exchange(settings, False, env)
    assert exchange.name == "okx" and exchange.host == "https://www.okx.com"
    assert exchange.client.password == "p"
    assert exchange.client.headers["x-simulated-trading"] == "1"


def test_mainnet_is_refused_unless_confirmed_on_every_exchange():
    from qtrader.errors import UsageError

    for name in ("binanceusdm", "bybit", "okx"):
        settings = load({"QTRADER_EXCHANGE_NAME": name}, mode="live")
        with pytest.raises(UsageError, match="--yes-live"):
            open_exchange(settings, False, {})


def test_binance_and_bybit_codes_mean_the_same_refusals():
    same = [(-2022, 110017, Refusal.NOTHING_TO_REDUCE), (-2021, 110092, Refusal.WOULD_TRIGGER_NOW),
            (-2019, 110007, Refusal.INSUFFICIENT_MARGIN), (-4164, 110094, Refusal.BELOW_MIN_NOTIONAL),
            (-4116, 110072, Refusal.DUPLICATE_CLIENT_ID), (-2013, 110001, Refusal.NOT_FOUND),
            (-4028, 110043, Refusal.NO_CHANGE)]  # fmt: skip
    for binance, bybit, meaning in same:
        assert refusal_of(BINANCE, binance) is refusal_of(BYBIT, bybit) is meaning
    okx = [(-2022, 51169, Refusal.NOTHING_TO_REDUCE), (-2021, 51280, Refusal.WOULD_TRIGGER_NOW),
           (-2019, 51008, Refusal.INSUFFICIENT_MARGIN), (-4116, 51065, Refusal.DUPLICATE_CLIENT_ID),
           (-2013, 51603, Refusal.NOT_FOUND), (-1121, 51001, Refusal.UNKNOWN_SYMBOL)]  # fmt: skip
    for binance, code, meaning in okx:
        assert refusal_of(BINANCE, binance) is refusal_of(OKX, code) is meaning
    assert refusal_of(BYBIT, 99999) is Refusal.OTHER and refusal_of(BYBIT, None) is Refusal.OTHER
    leverage = ExchangeRejected(110043, "leverage not modified", Refusal.NO_CHANGE)
    assert leverage.kind == "no_change"
    margin = ExchangeRejected(110007, "ab not enough for new order", Refusal.INSUFFICIENT_MARGIN)
    assert margin.kind == "rejected" and margin.reason.endswith("lower the size or the leverage")


def test_outputs_name_the_exchange_with_the_mode():
    assert mode_label("testnet", "bybit") == "TESTNET (Bybit demo trading)"
    assert mode_label("live", "binanceusdm") == "LIVE (Binance)"
    assert mode_label("paper", "bybit") == "PAPER"
    result = invoke("--exchange", "bybit", "--testnet", "config")
    assert "mode TESTNET (Bybit demo trading)" in result.stdout.splitlines()[0]
    code, doc = invoke_json("config", "--exchange", "bybit")
    assert code == 0 and doc["exchange_name"] == "bybit"
    shown = {row["setting"]: row for row in doc["settings"]}
    assert shown["exchange.name"]["value"] == "bybit"


def test_rows_carry_their_exchange_and_old_rows_are_binance(db_path):
    store = open_store(str(db_path))
    store.execute(
        "INSERT INTO orders (client_order_id, role, mode, symbol, side, kind, reduce_only, "
        "status, run_id, created_at, updated_at, error_code) VALUES "
        "('qt-a-x', 'exit', 'testnet', 'BTCUSDT', 'SELL', 'market', true, 'rejected', 1, now(), "
        "now(), -2022)"
    )
    store.close()
    # the migration's backfill, replayed: pretend 0011 had not run yet on that row
    with duckdb.connect(str(db_path)) as conn:
        conn.execute("UPDATE orders SET exchange = NULL, refusal = NULL")
        conn.execute("DELETE FROM schema_version WHERE version = 11")
        for column in ("exchange", "refusal"):
            conn.execute(f"ALTER TABLE orders DROP COLUMN {column}")
        for table in ("runs", "fills", "income", "positions", "exchange_calls",
                      "market_cache", "symbol_setup"):  # fmt: skip
            conn.execute(f"ALTER TABLE {table} DROP COLUMN exchange")
    open_store(str(db_path)).close()
    assert query(db_path, "SELECT exchange, refusal FROM orders") == [
        ("binanceusdm", "nothing_to_reduce")
    ]
    assert "exchange" in [r[0] for r in query(db_path, "DESCRIBE v_trades")]


def test_a_file_keeps_one_exchange_per_mode(db_path, monkeypatch):
    store = open_store(str(db_path))
    columns = ("client_order_id", "role", "mode", "symbol", "side", "kind", "reduce_only",
               "status", "run_id", "created_at", "updated_at")  # fmt: skip
    row = ("qt-b-e", "entry", "testnet", "BTCUSDT", "BUY", "market", False, "filled", 1,
           "2026-01-01", "2026-01-01")  # fmt: skip
    store.insert_rows("orders", columns, [row])
    store.close()
    assert query(db_path, "SELECT exchange FROM orders") == [("binanceusdm",)]
    monkeypatch.setenv("BYBIT_API_KEY", "test-key-0123456789")
    monkeypatch.setenv("BYBIT_API_SECRET", "test-secret-0123456789")
    code, doc = invoke_json("--exchange", "bybit", "--testnet", "status")
    assert code == 2 and "holds testnet records of binanceusdm" in doc["error"]
    assert "another --db" in doc["error"]
    # paper, and the other mode, are not affected
    code, _ = invoke_json("--exchange", "bybit", "--paper", "status")
    assert code == 0
    # testnet status is a reader (no runs row); paper status records its run, on bybit
    runs = query(db_path, "SELECT exchange FROM runs WHERE command = 'status' ORDER BY run_id")
    assert runs == [("bybit",)]
