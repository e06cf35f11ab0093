"""Invariant 8 end to end: v_trades equals the exchange's income ledger (REALIZED_PNL,
COMMISSION, FUNDING_FEE) to the cent, per trade and in total, whatever happened between two
reconciles and however the exchange's clock differs from the machine's."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from qtrader.domain.orders import Role, client_order_id
from tests.conftest import invoke, invoke_json, query
from tests.test_execute import BUY, pull

pytestmark = pytest.mark.usefixtures("exchange_env", "signal_sizing")
CENT = Decimal("0.01")


def reconcile() -> dict:
    code, doc = invoke_json("--testnet", "reconcile")
    assert code == 0, doc.get("error")
    return doc


def enter(binance, n: int, stop: int = 49000) -> str:
    """Signal n: BTCUSDT long 0.008 at 50,000; returns its stop's client id."""
    binance.marks["BTCUSDT"] = "50000"
    pull(BUY | {"intent_id": f"t-buy-{n}", "stop_loss": stop})
    code, doc = invoke_json("--testnet", "execute")
    assert code == 0, doc
    return client_order_id(f"t-buy-{n}", Role.STOP_LOSS)


def trades(db_path) -> list[dict]:
    columns = ["symbol", "side", "qty", "entry_price", "exit_price", "gross_pnl", "fees",
               "funding", "net_pnl", "exit_reason", "opened_at", "closed_at"]  # fmt: skip
    rows = query(db_path, f"SELECT {', '.join(columns)} FROM v_trades ORDER BY opened_at")
    return [dict(zip(columns, row, strict=True)) for row in rows]


def ledger_of(binance, order_ids: set[str]) -> tuple[Decimal, Decimal]:
    """(realized PnL, fees paid) the income ledger booked for these orders' trades."""
    trade_ids = {str(t["id"]) for t in binance.trades if str(t["orderId"]) in order_ids}
    rows = [r for r in binance.income_rows if r["tradeId"] in trade_ids]
    pnl = sum((Decimal(r["income"]) for r in rows if r["incomeType"] == "REALIZED_PNL"), Decimal(0))
    fees = -sum((Decimal(r["income"]) for r in rows if r["incomeType"] == "COMMISSION"), Decimal(0))
    return pnl, fees


def assert_totals_equal_the_ledger(binance, db_path) -> None:
    ledger = binance.ledger()
    totals = query(db_path, "SELECT sum(gross_pnl), sum(fees), sum(funding) FROM v_trades")[0]
    opened = query(
        db_path, "SELECT coalesce(sum(realized_pnl), 0), coalesce(sum(fees), 0), "
        "coalesce(sum(funding), 0) FROM positions WHERE status = 'open'")[0]  # fmt: skip
    expected = (
        ledger.get("REALIZED_PNL", Decimal(0)),
        -ledger.get("COMMISSION", Decimal(0)),
        ledger.get("FUNDING_FEE", Decimal(0)),
    )
    got = tuple((t or Decimal(0)) + o for t, o in zip(totals, opened, strict=True))
    assert [g.quantize(CENT) for g in got] == [e.quantize(CENT) for e in expected]
    assert got == expected  # and exactly, not only to the cent


def round_trip(
    binance, n: int, exit_price: str, funding: str | None = None, role: Role = Role.STOP_LOSS
) -> dict:
    enter(binance, n)
    stop = client_order_id(f"t-buy-{n}", role)
    entry_id = str(binance.orders[client_order_id(f"t-buy-{n}", Role.ENTRY)]["orderId"])
    if funding:
        binance.funding("BTCUSDT", funding)
    binance.fire(stop, exit_price)
    return {"orders": {entry_id, binance.algo_orders[stop]["actualOrderId"]}, "funding": funding}


@pytest.mark.parametrize("times", [2, 3])
def test_closed_and_reopened_between_two_reconciles(binance, db_path, times):
    """Each stop fires before any reconcile sees the position: every round trip is its own
    trade with its own PnL, fees and funding (the issue's −60 booked for −40, fees doubled)."""
    exits = ["49000", "49500", "48800"][:times]
    rounds = [round_trip(binance, n, p, funding=f"-0.0{n + 1}") for n, p in enumerate(exits)]
    doc = reconcile()
    assert len(doc["settled"]) == times
    rows = trades(db_path)
    assert [r["exit_reason"] for r in rows] == ["stop_loss"] * times
    for row, trip, price in zip(rows, rounds, exits, strict=True):
        pnl, fees = ledger_of(binance, trip["orders"])
        assert (row["gross_pnl"], row["fees"], row["funding"]) == (
            pnl,
            fees,
            Decimal(trip["funding"]),
        )
        assert row["exit_price"] == Decimal(price) and row["qty"] == Decimal("0.008")
        assert row["gross_pnl"] == (Decimal(price) - 50000) * Decimal("0.008")
    assert_totals_equal_the_ledger(binance, db_path)
    reconcile()  # nothing changes on a second look
    assert trades(db_path) == rows


def test_the_second_position_still_open_keeps_its_own_stop(binance, db_path):
    round_trip(binance, 0, "49000")
    enter(binance, 1, stop=48500)
    reconcile()
    (closed,) = trades(db_path)
    assert closed["gross_pnl"] == Decimal("-8") and closed["exit_reason"] == "stop_loss"
    (open_row,) = query(
        db_path, "SELECT p.stop_loss, s.signal_id, p.opened_at > ? FROM positions p "
        "JOIN signals s ON s.seq = p.signal_seq WHERE p.status = 'open'", [closed["closed_at"]])  # fmt: skip
    assert open_row == (Decimal("48500"), "t-buy-1", True)
    assert_totals_equal_the_ledger(binance, db_path)


@pytest.mark.parametrize("offset_s", [30, -30, -5])
def test_the_exchanges_clock_decides_not_the_machines(binance, db_path, offset_s):
    """Two positions within seconds, the exchange's clock ahead or behind the machine's."""
    binance.clock_offset_ms = offset_s * 1000
    first = round_trip(binance, 0, "52000", role=Role.TAKE_PROFIT)  # no cooldown after it
    reconcile()
    second = round_trip(binance, 1, "49000", funding="0.05")
    reconcile()
    rows = trades(db_path)
    assert len(rows) == 2
    for row, trip in zip(rows, (first, second), strict=True):
        assert (row["gross_pnl"], row["fees"]) == ledger_of(binance, trip["orders"])
    assert rows[1]["funding"] == Decimal("0.05") and rows[0]["funding"] == 0
    assert_totals_equal_the_ledger(binance, db_path)


def test_an_adopted_position_keeps_its_opening_fee_and_earlier_funding(binance, db_path):
    binance.fill("ETHUSDT", "BUY", Decimal("0.5"), Decimal("3000"), "BOTH", 77)  # outside qtrader
    binance.funding("ETHUSDT", "-0.12")
    doc = reconcile()
    assert [d["kind"] for d in doc["drift"]] == ["missing_locally"]  # adopted
    binance.funding("ETHUSDT", "0.03")
    binance.fill("ETHUSDT", "SELL", Decimal("0.5"), Decimal("3010"), "BOTH", 78)  # closed by hand
    reconcile()
    (row,) = trades(db_path)
    assert (row["gross_pnl"], row["fees"], row["funding"], row["exit_reason"]) == (
        Decimal("5"), Decimal("1.202"), Decimal("-0.09"), "manual")  # fmt: skip
    assert row["entry_price"] == Decimal("3000") and row["exit_price"] == Decimal("3010")
    assert_totals_equal_the_ledger(binance, db_path)


def test_a_position_older_than_the_ledger_is_carried_in(binance, db_path):
    """Held before the window the exchange still returns: no opening fill, nothing lost."""
    binance.position("ETHUSDT", "0.5", entry="3000")
    reconcile()
    binance.fill("ETHUSDT", "SELL", Decimal("0.2"), Decimal("3010"), "BOTH", 78)
    binance.fill("ETHUSDT", "SELL", Decimal("0.3"), Decimal("2990"), "BOTH", 79)
    reconcile()
    (row,) = trades(db_path)
    assert (row["qty"], row["entry_price"], row["gross_pnl"]) == (
        Decimal("0.5"),
        3000,
        Decimal("-1"),
    )
    assert_totals_equal_the_ledger(binance, db_path)


def test_a_flip_through_zero_closes_one_and_opens_the_next(binance, db_path):
    binance.fill("ETHUSDT", "BUY", Decimal("1"), Decimal("3000"), "BOTH", 80)
    reconcile()
    binance.fill("ETHUSDT", "SELL", Decimal("3"), Decimal("3030"), "BOTH", 81)  # long 1 → short 2
    reconcile()
    (closed,) = trades(db_path)
    assert (closed["side"], closed["gross_pnl"], closed["fees"]) == (
        "long", Decimal("30"), Decimal("1.2") + Decimal("1.212"))  # fmt: skip
    (opened,) = query(
        db_path, "SELECT side, qty, entry_price, fees FROM positions WHERE status = 'open'"
    )
    assert opened == ("SELL", Decimal("2"), Decimal("3030"), Decimal("2.424"))
    assert_totals_equal_the_ledger(binance, db_path)


def test_exit_reasons_close_all_and_watchdog(binance, db_path):
    enter(binance, 0)
    reconcile()
    assert invoke("--testnet", "close-all", "--yes").exit_code == 0
    invoke("--testnet", "resume")
    binance.position("ETHUSDT", "0.5", entry="3000")
    binance.marks["ETHUSDT"] = "2900"  # the default stop at 2,940 is crossed: the watchdog closes
    doc = reconcile()
    assert ("ETHUSDT", "watchdog") in [(s["symbol"], s["exit_reason"]) for s in doc["settled"]]
    assert [(r["symbol"], r["exit_reason"]) for r in trades(db_path)] == [
        ("BTCUSDT", "close_all"), ("ETHUSDT", "watchdog")]  # fmt: skip
    assert_totals_equal_the_ledger(binance, db_path)


def test_the_cooldown_counts_from_the_stops_fill_on_the_exchange(binance, db_path):
    binance.clock_offset_ms = -600_000  # the stop fired 10 minutes before this reconcile ran
    round_trip(binance, 0, "49000")
    reconcile()
    binance.clock_offset_ms = 0
    binance.marks["BTCUSDT"] = "50000"
    pull(BUY | {"intent_id": "t-buy-9"})
    _, doc = invoke_json("--testnet", "execute")
    (signal,) = doc["signals"]
    assert signal["status"] == "rejected" and "stopped out 6" in signal["reason"], signal
    assert "cooldown is 900 s" in signal["reason"]  # 600 s of 900 gone, not 0


@pytest.mark.parametrize(
    ("exits", "streak"),
    [(("49000", "49500"), 2), (("52000", "49000"), 1), (("49000", "52000"), 0)],
    ids=["two losses", "a win, then a loss", "a loss, then a win"],
)
def test_the_losing_streak_follows_the_exchanges_order(
    binance, db_path, monkeypatch, exits, streak
):
    """Both trades are seen by one reconcile: their order is the exchange's, not arbitrary."""
    monkeypatch.setenv("QTRADER_RISK_MAX_CONSECUTIVE_LOSSES", "2")
    for n, price in enumerate(exits):
        role = Role.STOP_LOSS if Decimal(price) < 50000 else Role.TAKE_PROFIT
        round_trip(binance, n, price, role=role)
    code, doc = invoke_json("--testnet", "reconcile")
    assert code == (3 if streak == 2 else 0), doc
    from qtrader.store import open_store
    from qtrader.store.risk_state import consecutive_losses

    store = open_store(str(db_path))
    try:
        assert consecutive_losses(store, "testnet", datetime(1970, 1, 1)) == streak
    finally:
        store.close()


def test_migration_0008_re_derives_rows_inferred_the_old_way(db_path):
    """A database from before: a position row that took two trades' fills (the old bug)."""
    import duckdb

    from qtrader.store.migrations import apply_views, available

    conn = duckdb.connect(str(db_path))
    conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name VARCHAR, "
                 "applied_at TIMESTAMP)")  # fmt: skip
    for version, name, sql in available():
        if version == 8:  # positions from the ledger
            t = datetime(2026, 11, 1)
            fills = [("1", "BUY", "50000", "0.2", "0", 0), ("2", "SELL", "49000", "0.196", "-8", 5),
                     ("3", "BUY", "50000", "0.2", "0", 9), ("4", "SELL", "49500", "0.198", "-4", 12)]  # fmt: skip
            for tid, side, price, fee, pnl, minute in fills:
                conn.execute("INSERT INTO fills VALUES ('testnet', 'BTCUSDT', ?, ?, NULL, ?, 'BOTH', "
                             "0.008, ?, ?, 'USDT', ?, false, ?, '{}')",
                             [tid, f"o{tid}", side, price, fee, pnl, t.replace(minute=minute)])  # fmt: skip
            conn.execute("INSERT INTO positions (mode, symbol, side, position_side, qty, entry_price, "
                         "opened_at, origin, status, closed_at, exit_price, exit_reason, realized_pnl, "
                         "fees, funding, updated_at) VALUES ('testnet', 'BTCUSDT', 'BUY', 'BOTH', 0.008, "
                         "50000, ?, 'qtrader', 'closed', ?, 49250, 'signal_close', -12, 0.794, 0, ?)",
                         [t, t.replace(minute=12), t])  # fmt: skip
        conn.execute(sql)
        conn.execute("INSERT INTO schema_version VALUES (?, ?, now())", [version, name])
    conn.execute("CREATE TABLE IF NOT EXISTS schema_views (hash VARCHAR NOT NULL)")
    apply_views(conn)
    conn.close()
    code, doc = invoke_json("--testnet", "pnl-report")
    assert code == 0, doc
    rows = trades(db_path)
    assert [(r["gross_pnl"], r["fees"], r["exit_reason"]) for r in rows] == [
        (Decimal("-8"), Decimal("0.396"), "manual"), (Decimal("-4"), Decimal("0.398"), "manual")]  # fmt: skip
    assert query(db_path, "SELECT count(*) FROM state WHERE key = 'ledger_rederive'") == [(0,)]


def test_report_totals_with_open_positions_equal_the_ledger(binance, db_path):
    """A closed trade, and an open one with its entry fee and funding: the totals, closed and
    open together, are the exchange's ledger."""
    round_trip(binance, 0, "52000", role=Role.TAKE_PROFIT, funding="-0.04")
    enter(binance, 1)
    binance.funding("BTCUSDT", "0.02")
    reconcile()
    code, doc = invoke_json("--testnet", "pnl-report")
    assert code == 0, doc
    t = {k: Decimal(v) for k, v in doc["totals"].items() if k != "open_positions"}
    ledger = binance.ledger()
    assert t["realized_pnl"] + t["open_realized_pnl"] == ledger["REALIZED_PNL"]
    assert t["fees"] + t["open_fees"] == -ledger["COMMISSION"]
    assert t["funding"] + t["open_funding"] == ledger["FUNDING_FEE"]
    assert t["open_fees"] == Decimal("0.16") and t["open_funding"] == Decimal("0.02")


def test_our_filled_orders_name_the_symbols_to_read_when_the_income_ledger_lags(binance, db_path):
    round_trip(binance, 0, "49000")
    binance.income_rows.clear()  # the income ledger has not booked these trades yet
    doc = reconcile()
    assert [s["exit_reason"] for s in doc["settled"]] == ["stop_loss"]
    assert [r["gross_pnl"] for r in trades(db_path)] == [Decimal("-8")]
    binance.sent.clear()
    reconcile()  # read since: no further userTrades request for it
    assert not binance.calls("/fapi/v1/userTrades")


def test_a_window_that_starts_mid_position_carries_its_start(binance, db_path):
    """First sight of a symbol whose opening fill is older than the trades the exchange
    returns, and that closed since: the close is not mistaken for a new short."""
    binance.position("ETHUSDT", "0.5", entry="3000")  # opened long before
    binance.fill("ETHUSDT", "SELL", Decimal("0.5"), Decimal("3010"), "BOTH", 78)  # closed by hand
    doc = reconcile()
    assert doc["drift"] == [] and doc["positions"] == []
    (row,) = trades(db_path)
    assert (row["side"], row["qty"], row["entry_price"], row["gross_pnl"], row["exit_reason"]) == (
        "long", Decimal("0.5"), Decimal("3000"), Decimal("5"), "manual")  # fmt: skip
    assert_totals_equal_the_ledger(binance, db_path)


def test_what_no_trade_can_carry_is_reported(binance, db_path):
    binance.funding("XRPUSDT", "-0.01")  # a position closed before the window of trades
    binance.fill("ETHUSDT", "BUY", Decimal("0.5"), Decimal("3000"), "BOTH", 80)
    binance.trades[-1]["commissionAsset"] = "BNB"
    doc = reconcile()
    assert sorted((d["kind"], d["symbol"]) for d in doc["drift"]) == [
        ("fee_asset", "ETHUSDT"), ("funding_without_position", "XRPUSDT"), ("missing_locally", "ETHUSDT")]  # fmt: skip


def test_hedge_mode_legs_are_separate_trades(binance, db_path):
    binance.hedge = True
    binance.fill("ETHUSDT", "BUY", Decimal("1"), Decimal("3000"), "LONG", 90)
    binance.fill("ETHUSDT", "SELL", Decimal("2"), Decimal("3000"), "SHORT", 91)
    reconcile()
    binance.funding("ETHUSDT", "-0.3")  # both legs open: the one opened last holds it
    binance.fill("ETHUSDT", "SELL", Decimal("1"), Decimal("3050"), "LONG", 92)
    binance.fill("ETHUSDT", "BUY", Decimal("2"), Decimal("3050"), "SHORT", 93)
    reconcile()
    rows = trades(db_path)
    assert [(r["side"], r["qty"], r["gross_pnl"], r["funding"]) for r in rows] == [
        ("long", 1, Decimal("50"), 0), ("short", 2, Decimal("-100"), Decimal("-0.3"))]  # fmt: skip
    assert_totals_equal_the_ledger(binance, db_path)
