"""Paper mode end to end: entries, stops and targets with every number worked out by hand.

The paper exchange replays a candle file written here. Slippage is set to zero so each fill
price is the candle's or the trigger's; the taker fee is Binance's 0.05 %.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import invoke, invoke_json, query
from tests.paper_data import write_candles

pytestmark = pytest.mark.usefixtures("signal_sizing")

LONG = {"intent_id": "p-long", "symbol": "BTCUSDT", "side": "BUY", "position_size_usd": 1000,
        "leverage": 3, "entry_price": 50000, "stop_loss": 49000, "take_profit": 52000,
        "confidence": 0.8, "timestamp": "2026-11-20T09:29:30Z"}  # fmt: skip
SHORT = {"intent_id": "p-short", "symbol": "ETHUSDT", "side": "SELL", "position_size_usd": 999,
         "leverage": 3, "entry_price": 3000, "stop_loss": 3060, "take_profit": 2880,
         "confidence": 0.8, "timestamp": "2026-11-20T09:29:40Z"}  # fmt: skip


TRADES = ("SELECT symbol, side, qty, entry_price, exit_price, gross_pnl, fees, funding, net_pnl, "
          "exit_reason FROM v_trades")  # fmt: skip


@pytest.fixture
def candles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = write_candles(
        tmp_path / "candles.csv",
        flat={"BTCUSDT": "50000", "ETHUSDT": "3000"},
        bars={
            # BTC reaches the long's target: the bar opens below 52000 and trades through it
            ("BTCUSDT", "10:01"): ("51900", "52100", "51800", "52050"),
            # ETH gaps over the short's stop: the stop fills at the open, 3070, not at 3060
            ("ETHUSDT", "10:02"): ("3070", "3080", "3065", "3075"),
        },
        funding={("BTCUSDT", "10:00"): "0.0001", ("ETHUSDT", "10:00"): "0.0001"},
    )
    monkeypatch.setenv("QTRADER_PAPER_PRICES", str(path))
    monkeypatch.setenv("QTRADER_PAPER_SLIPPAGE_BPS", "0")
    monkeypatch.setenv("QTRADER_PAPER_IMPACT_BPS_PER_10K", "0")
    return path


def pull(*signals: dict) -> None:
    lines = "\n".join(json.dumps(s) for s in signals)
    assert invoke("pull-signals", "--from", "-", input=lines).exit_code == 0


def step(*args: str) -> dict:
    code, doc = invoke_json(*args)
    assert code == 0, doc
    return doc


def test_a_long_to_its_target_and_a_short_through_its_stop(candles, db_path):
    step("clock", "--to", "2026-11-20T09:30:00")
    pull(LONG, SHORT)
    doc = step("execute")
    assert doc["mode"] == "paper" and doc["exchange"].startswith("PAPER")
    fills = query(db_path, "SELECT symbol, side, qty, price, fee FROM paper_fills ORDER BY ts_ms")
    # BTC: 1000 USDT / 50000 = 0.020; fee 0.020 × 50000 × 0.05 % = 0.50
    # ETH: 999 USDT / 3000 = 0.333; fee 0.333 × 3000 × 0.05 % = 0.4995
    assert fills == [("BTCUSDT", "BUY", Decimal("0.02"), Decimal(50000), Decimal("0.5")),
                     ("ETHUSDT", "SELL", Decimal("0.333"), Decimal(3000), Decimal("0.4995"))]  # fmt: skip
    resting = query(db_path, "SELECT symbol, side, kind, qty, trigger_price FROM paper_orders "
                             "WHERE status = 'NEW' ORDER BY symbol, kind")  # fmt: skip
    assert resting == [
        ("BTCUSDT", "SELL", "stop_loss", Decimal("0.02"), Decimal(49000)),
        ("BTCUSDT", "SELL", "take_profit", Decimal("0.02"), Decimal(52000)),
        ("ETHUSDT", "BUY", "stop_loss", Decimal("0.333"), Decimal(3060)),
        ("ETHUSDT", "BUY", "take_profit", Decimal("0.333"), Decimal(2880)),
    ]

    step("clock", "--to", "2026-11-20T10:30:00")
    doc = step("reconcile")
    assert {s["symbol"]: s["exit_reason"] for s in doc["settled"]} == {
        "BTCUSDT": "take_profit",
        "ETHUSDT": "stop_loss",
    }
    trades = {row[0]: row[1:] for row in query(db_path, TRADES)}
    # BTC long: exit 52000 (the target; the bar opened below it). Gross (52000 − 50000) × 0.02
    # = 40; exit fee 0.02 × 52000 × 0.05 % = 0.52, fees 1.02; funding at 10:00, rate 0.01 %
    # on 0.02 × 50000 = 1000 USDT: the long pays 0.10. Net 40 − 1.02 − 0.10 = 38.88.
    assert trades["BTCUSDT"] == ("long", Decimal("0.02"), Decimal(50000), Decimal(52000),
                                 Decimal(40), Decimal("1.02"), Decimal("-0.1"),
                                 Decimal("38.88"), "take_profit")  # fmt: skip
    # ETH short: the stop at 3060 fills at the gap's open, 3070. Gross (3000 − 3070) × 0.333
    # = −23.31; exit fee 0.333 × 3070 × 0.05 % = 0.511155, fees 1.010655; funding: the short
    # receives 0.333 × 3000 × 0.01 % = 0.0999. Net −23.31 − 1.010655 + 0.0999 = −24.220755.
    assert trades["ETHUSDT"] == ("short", Decimal("0.333"), Decimal(3000), Decimal(3070),
                                 Decimal("-23.31"), Decimal("1.010655"), Decimal("0.0999"),
                                 Decimal("-24.220755"), "stop_loss")  # fmt: skip
    # the wallet is the ledger: 10000 + 40 − 23.31 − 0.5 − 0.4995 − 0.52 − 0.511155 − 0.1 + 0.0999
    wallet = query(db_path, "SELECT sum(amount) FROM paper_income")[0][0]
    assert wallet == Decimal("10014.659245")
    # the other side of each pair no longer protects anything: the watchdog cancelled it
    left = query(db_path, "SELECT symbol, kind, status FROM paper_orders WHERE conditional "
                          "AND status <> 'FILLED' ORDER BY symbol")  # fmt: skip
    assert left == [("BTCUSDT", "stop_loss", "CANCELED"), ("ETHUSDT", "take_profit", "CANCELED")]
    assert query(db_path, "SELECT count(*) FROM paper_positions WHERE qty <> 0")[0][0] == 0


def test_paper_ids_and_rows_say_paper(candles, db_path):
    step("clock", "--to", "2026-11-20T09:30:00")
    pull(LONG)
    step("execute")
    ids = query(db_path, "SELECT exchange_order_id, mode FROM orders")
    assert ids and all(i.startswith("PAPER-") and m == "paper" for i, m in ids)
    result = invoke("status")
    assert "mode PAPER" in result.output.splitlines()[0]
    result = invoke("execute")  # idle: the exchange is not opened, the mode still named
    assert "PAPER" in result.output.splitlines()[0] and "PAPER · nothing pending" in result.output
    pull({**LONG, "intent_id": "p-long-2"})
    result = invoke("execute")
    assert "PAPER" in result.output.splitlines()[0] and "exchange PAPER" in result.output


def test_the_exchanges_min_notional_rejection_is_reproduced(candles, db_path, monkeypatch):
    """BTCUSDT's minimum notional is 100 USDT: 0.001 BTC at 50000 is 50, and Binance answers
    -4164. The paper exchange gives the same answer, and stores nothing."""
    from qtrader.config import SettingsRequest, load_settings
    from qtrader.exchange import open_exchange
    from qtrader.exchange.port import ExchangeRejected, OrderRequest
    from qtrader.store import open_store

    monkeypatch.setenv("QTRADER_PAPER_PRICES", str(candles))
    store = open_store(str(db_path))
    try:
        exchange = open_exchange(load_settings(SettingsRequest()), False, store=store)
        with pytest.raises(ExchangeRejected) as rejected:
            exchange.place_order(OrderRequest("BTCUSDT", "BUY", Decimal("0.001"), "qt-small-e"))
        assert rejected.value.code == -4164
        assert "notional must be no smaller than 100" in rejected.value.exchange_message
        assert store.fetchone("SELECT count(*) FROM paper_fills")[0] == 0
        # reduce-only orders are exempt from it, but need something to reduce (-2022)
        with pytest.raises(ExchangeRejected) as reduce_only:
            exchange.place_order(
                OrderRequest("BTCUSDT", "SELL", Decimal("0.001"), "qt-x", reduce_only=True)
            )
        assert reduce_only.value.code == -2022
        with pytest.raises(ExchangeRejected) as precision:
            exchange.place_order(OrderRequest("BTCUSDT", "BUY", Decimal("0.0105"), "qt-p"))
        assert precision.value.code == -1111
    finally:
        store.close()


def test_a_signal_sized_under_the_minimum_is_rejected_as_on_binance(candles, db_path):
    pull({**LONG, "intent_id": "p-tiny", "position_size_usd": 60})
    step("clock", "--to", "2026-11-20T09:30:00")
    doc = step("execute")
    (signal,) = doc["signals"]
    assert signal["status"] == "rejected" and "notional" in signal["reason"]
    assert query(db_path, "SELECT count(*) FROM paper_orders")[0][0] == 0


def test_the_paper_balance_feeds_the_risk_engine(candles, db_path, monkeypatch):
    monkeypatch.setenv("QTRADER_PAPER_BALANCE", "20")
    monkeypatch.setenv("QTRADER_RISK_MAX_POSITION_USD", "100000")
    monkeypatch.setenv("QTRADER_RISK_MAX_TOTAL_EXPOSURE_USD", "off")
    monkeypatch.setenv("QTRADER_RISK_MAX_EXPOSURE_X_EQUITY", "off")
    step("clock", "--to", "2026-11-20T09:30:00")
    pull(LONG)  # 1000 USDT at 3x needs 333 USDT of margin; the paper account has 20
    _, doc = invoke_json("execute")
    (signal,) = doc["signals"]
    # sized down to what 20 USDT × 3 can carry (0.001 BTC), which is under BTC's minimum
    assert signal["status"] == "rejected" and "(0.001 at 50000)" in signal["reason"], signal


def test_the_paper_exchange_itself_refuses_without_margin(candles, db_path, monkeypatch):
    """Binance's -2019: 0.02 BTC at 50000 is 1000 USDT, 50 USDT of margin at the default 20x
    (plus the fee); a 20 USDT account cannot open it."""
    from qtrader.config import SettingsRequest, load_settings
    from qtrader.exchange import open_exchange
    from qtrader.exchange.port import ExchangeRejected, OrderRequest
    from qtrader.store import open_store

    monkeypatch.setenv("QTRADER_PAPER_BALANCE", "20")
    store = open_store(str(db_path))
    try:
        exchange = open_exchange(load_settings(SettingsRequest()), False, store=store)
        with pytest.raises(ExchangeRejected) as rejected:
            exchange.place_order(OrderRequest("BTCUSDT", "BUY", Decimal("0.02"), "qt-big-e"))
        assert (rejected.value.code, rejected.value.exchange_message) == (
            -2019, "Margin is insufficient.")  # fmt: skip
        exchange.set_leverage("BTCUSDT", 125)  # 8 USDT of margin + 0.5 fee: now it fits
        report = exchange.place_order(OrderRequest("BTCUSDT", "BUY", Decimal("0.02"), "qt-big-e"))
        assert report.exchange_order_id.startswith("PAPER-") and report.filled_qty == Decimal(
            "0.02"
        )
    finally:
        store.close()


def test_state_survives_separate_processes(candles, db_path, tmp_path):
    """Each command a new process, as cron runs them: the paper books carry over."""
    env = {**os.environ, "QTRADER_DB": str(db_path)}

    def cli(*args: str, stdin: str | None = None) -> dict:
        done = subprocess.run([sys.executable, "-m", "qtrader", "--json", *args], input=stdin,
                              capture_output=True, text=True, env=env, timeout=60, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    cli("clock", "--to", "2026-11-20T09:30:00")
    cli("pull-signals", "--from", "-", stdin=json.dumps(LONG))
    cli("execute")
    assert cli("clock")["clock"] == "2026-11-20T09:30:00"
    cli("clock", "--advance", "1h")
    settled = cli("reconcile")["settled"]
    assert [(s["symbol"], s["exit_reason"]) for s in settled] == [("BTCUSDT", "take_profit")]
    net = query(db_path, "SELECT net_pnl FROM v_trades")[0][0]
    assert net == Decimal("38.88")


def test_the_clock_only_moves_forward_and_within_the_data(candles, db_path):
    assert step("clock")["clock"] == "2026-11-20T09:01:00"  # the first bar has closed
    step("clock", "--advance", "30m")
    code, doc = invoke_json("clock", "--to", "2026-11-20T09:00:00")
    assert code == 2 and "only moves forward" in doc["error"]
    code, doc = invoke_json("clock", "--advance", "1d")
    assert code == 2 and "data ends at 2026-11-20 11:00:00" in doc["error"]
    code, doc = invoke_json("clock", "--advance", "soon")
    assert code == 2 and "90s, 15m" in doc["error"]


def test_without_a_replay_there_is_no_paper_clock(db_path, monkeypatch):
    code, doc = invoke_json("clock")
    assert code == 2 and "wall clock" in doc["error"]
    code, doc = invoke_json("--testnet", "clock")
    assert code == 2


def test_a_missing_or_malformed_price_file_is_a_clear_error(db_path, tmp_path, monkeypatch):
    monkeypatch.setenv("QTRADER_PAPER_PRICES", str(tmp_path / "nope.csv"))
    code, doc = invoke_json("execute")
    assert code == 2 and "no OHLCV file" in doc["error"]
    bad = tmp_path / "bad.csv"
    bad.write_text("symbol,ts,price\nBTCUSDT,2026-11-20 09:00:00,1\n")
    monkeypatch.setenv("QTRADER_PAPER_PRICES", str(bad))
    code, doc = invoke_json("status")
    assert code == 2 and "lacks column(s) open, high, low, close" in doc["error"]


def test_a_parquet_file_with_epoch_milliseconds_replays_the_same(candles, db_path, tmp_path,
                                                                 monkeypatch):  # fmt: skip
    import duckdb

    parquet = tmp_path / "candles.parquet"
    with duckdb.connect() as conn:
        conn.execute(
            f"COPY (SELECT symbol, epoch_ms(CAST(ts AS TIMESTAMP)) AS ts, open, high, low, close, "
            f"funding_rate FROM read_csv('{candles}', all_varchar = true)) TO '{parquet}'"
        )
    monkeypatch.setenv("QTRADER_PAPER_PRICES", str(parquet))
    step("clock", "--to", "2026-11-20T09:30:00")
    pull(LONG)
    step("execute")
    step("clock", "--to", "2026-11-20T10:30:00")
    step("reconcile")
    assert query(db_path, "SELECT net_pnl, exit_reason FROM v_trades") == [
        (Decimal("38.88"), "take_profit")
    ]
