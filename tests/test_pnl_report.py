"""pnl-report: hand-computed expectations, statistics checked against numpy/pandas, outputs."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta
from decimal import Decimal as D
from html.parser import HTMLParser

import duckdb
import numpy as np
import pandas as pd
import pytest

from qtrader.store import open_store
from tests.conftest import invoke, invoke_json, query

DAY = datetime(2026, 11, 1)
# (symbol, side, entry, exit, qty, gross, fees, funding, opened, closed, stop)
TRADES = [
    ("BTCUSDT", "BUY", "50000", "51000", "0.01", "10", "0.4", "-0.1", 0, 1, "49000"),   # net 9.5
    ("ETHUSDT", "SELL", "3000", "3100", "0.1", "-10", "0.24", "0.05", 1, 2, "3100"),   # net -10.19
    ("SOLUSDT", "BUY", "150", "150.3", "1", "0.3", "0.5", "0", 2, 3, "147"),          # gross win, net -0.2
    ("BTCUSDT", "SELL", "52000", "51750", "0.02", "5", "0.9", "-0.1", 3, 4, "53000"),  # partial closes: net 4
]  # fmt: skip


def seed_trades(db) -> None:
    store = open_store(str(db))
    for sym, side, entry, exit_, qty, gross, fees, funding, o, c, stop in TRADES:
        store.execute(
            "INSERT INTO positions (mode, symbol, side, position_side, qty, entry_price, opened_at, "
            "origin, stop_loss, status, closed_at, exit_price, exit_reason, realized_pnl, fees, funding, "
            "updated_at) VALUES ('testnet', ?, ?, 'BOTH', ?, ?, ?, 'qtrader', ?, 'closed', ?, ?, "
            "'take_profit', ?, ?, ?, ?)",
            [sym, side, qty, entry, DAY + timedelta(days=o, hours=1), stop,
             DAY + timedelta(days=c, hours=2), exit_, gross, fees, funding, DAY])  # fmt: skip
    # the last trade was closed in two fills (a partial close, then the rest) on its last day
    for n, (q, pnl, fee) in enumerate([("0.01", "2.5", "0.45"), ("0.01", "2.5", "0.45")]):
        store.execute(
            "INSERT INTO fills VALUES ('testnet', 'BTCUSDT', ?, '1', NULL, 'BUY', 'BOTH', ?, 51750, ?, "
            "'USDT', ?, false, ?, '{}', 'binanceusdm')", [f"t{n}", q, fee, pnl, DAY + timedelta(days=4, hours=n)])  # fmt: skip
    store.execute("INSERT INTO income VALUES ('testnet', '1', 'FUNDING_FEE', 'BTCUSDT', -0.1, 'USDT', "
                  "NULL, ?, '{}', 'binanceusdm')", [DAY + timedelta(days=4, hours=8)])  # fmt: skip
    store.close()


def report(*args: str) -> dict:
    code, doc = invoke_json("--testnet", "pnl-report", *args)
    assert code == 0, doc
    return doc


def test_trades_view_and_totals_by_hand(db_path):
    invoke("status")
    seed_trades(db_path)
    rows = query(db_path, "SELECT symbol, side, gross_pnl, fees, funding, net_pnl, round(return_pct, 4), "
                          "round(r_multiple, 4), holding_s FROM v_trades ORDER BY closed_at")  # fmt: skip
    assert [(r[0], r[1], r[5]) for r in rows] == [
        ("BTCUSDT", "long", D("9.5")), ("ETHUSDT", "short", D("-10.19")), ("SOLUSDT", "long", D("-0.2")),
        ("BTCUSDT", "short", D("4"))]  # fmt: skip
    assert rows[0][6] == 1.9  # 9.5 / (50,000 × 0.01) × 100
    assert rows[0][7] == 0.95  # 9.5 / (|50,000 − 49,000| × 0.01)
    assert rows[2][2] > 0 and rows[2][5] < 0  # fees turned a gross win into a net loss
    assert rows[0][8] == 25 * 3600  # opened 01:00, closed the next day 02:00
    doc = report()
    assert {k: doc["totals"][k] for k in ("realized_pnl", "fees", "funding", "net_pnl")} == {
        "realized_pnl": "5.3", "fees": "2.04", "funding": "-0.15", "net_pnl": "3.11"}  # fmt: skip


def test_trade_statistics_by_hand(db_path):
    invoke("status")
    seed_trades(db_path)
    t = report()["trades"]
    assert (t["trades"], t["wins"], t["losses"], t["win_rate"]) == (4, 2, 2, 0.5)
    assert D(t["avg_win"]) == D("6.75") and D(t["avg_loss"]) == D("-5.195")
    assert math.isclose(t["payoff_ratio"], 6.75 / 5.195) and math.isclose(
        t["profit_factor"], 13.5 / 10.39
    )
    assert D(t["expectancy"]) == D("0.7775")
    assert (D(t["largest_win"]), D(t["largest_loss"])) == (D("9.5"), D("-10.19"))
    assert t["longest_losing_streak"] == 2  # win, loss, loss, win
    per_symbol = {r["symbol"]: r for r in report()["by_symbol"]}
    assert D(per_symbol["BTCUSDT"]["net_pnl"]) == D("13.5") and per_symbol["BTCUSDT"]["trades"] == 2
    only_btc = report("--symbol", "btcusdt")["trades"]
    assert only_btc["trades"] == 2 and only_btc["win_rate"] == 1
    in_range = report("--since", "2026-11-03", "--until", "2026-11-04")["trades"]
    assert in_range["trades"] == 1  # only the SOL trade closed on Nov 3


def test_daily_pnl_comes_from_fills_and_funding(db_path):
    invoke("status")
    seed_trades(db_path)
    days = {str(r["day"]): r for r in report()["by_day"]}
    nov5 = days["2026-11-05"]
    assert (
        nov5["realized_pnl"],
        nov5["fees"],
        nov5["funding"],
        nov5["net_pnl"],
        nov5["trades"],
    ) == ("5", "0.9", "-0.1", "4", 1)  # two partial fills and a funding fee on the last trade's day


def _equity_series(n: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(10000 * np.cumprod(1 + rng.normal(0.001, 0.02, n)))


def test_equity_statistics_match_an_independent_implementation(db_path):
    invoke("status")
    series = _equity_series(120, seed=7)
    store = open_store(str(db_path))
    for i, value in enumerate(series):  # two snapshots a day: the last one counts
        for hour, v in ((3, value * 0.99), (23, value)):
            store.execute("INSERT INTO equity VALUES (?, 'testnet', 0, ?, 0, ?)",
                          [DAY + timedelta(days=i, hours=hour), v, v])  # fmt: skip
    store.close()
    e = report()["equity"]
    equity = pd.Series(series)
    r = equity.pct_change().dropna()
    ann = 365
    total = equity.iloc[-1] / equity.iloc[0] - 1
    annual = (1 + total) ** (ann / len(r)) - 1
    peak = equity.cummax()
    dd = (peak - equity) / peak
    downside = math.sqrt((np.minimum(r, 0) ** 2).mean())
    expected = {
        "total_return": total, "annual_return": annual,
        "volatility": r.std(ddof=1) * math.sqrt(ann),
        "sharpe": r.mean() / r.std(ddof=1) * math.sqrt(ann),
        "sortino": r.mean() / downside * math.sqrt(ann),
        "max_drawdown_frac": dd.max(), "max_drawdown": (peak - equity).max(),
        "calmar": annual / dd.max(),
    }  # fmt: skip
    for key, value in expected.items():
        assert math.isclose(e[key], value, rel_tol=1e-9), (key, e[key], value)
    trough = int(dd.idxmax())
    peak_day = int(equity.iloc[: trough + 1].idxmax())
    assert e["max_drawdown_trough"] == str((DAY + timedelta(days=trough)).date())
    assert e["max_drawdown_peak"] == str((DAY + timedelta(days=peak_day)).date())
    assert e["days"] == 120


def test_go_live_checklist(db_path):
    invoke("status")
    seed_trades(db_path)
    checks = {c["check"]: c for c in report()["go_live_checklist"]}
    assert checks["100+ trades"]["pass"] is False and checks["100+ trades"]["value"] == "4 trades"
    assert checks["win rate > 60 %"]["pass"] is False
    assert checks["no system errors"]["pass"] is True
    assert checks["circuit breakers tested"]["pass"] is None


def test_empty_range_is_not_an_error(db_path):
    result = invoke("--testnet", "pnl-report")
    assert result.exit_code == 0 and "no closed trades in this range" in result.stdout


def test_csv_parquet_and_png_outputs(db_path, tmp_path):
    invoke("status")
    seed_trades(db_path)
    store = open_store(str(db_path))
    for i, v in enumerate(_equity_series(30, seed=3)):
        store.execute(
            "INSERT INTO equity VALUES (?, 'testnet', 0, ?, 0, ?)",
            [DAY + timedelta(days=i), v, v],
        )
    store.close()
    png = tmp_path / "report" / "equity.png"
    doc = report(
        "--csv", str(tmp_path / "csv"), "--parquet", str(tmp_path / "pq"), "--plot", str(png)
    )
    assert len(doc["files"]) == 9
    header = (tmp_path / "csv" / "v_trades.csv").read_text().splitlines()[0].split(",")
    assert header[:4] == ["position_id", "symbol", "side", "opened_at"] and "net_pnl" in header
    with duckdb.connect() as conn:
        n = conn.execute(
            f"SELECT count(*) FROM '{tmp_path / 'pq' / 'v_trades.parquet'}'"
        ).fetchone()
    assert n == (4,)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_human_table_has_every_section(db_path):
    invoke("status")
    seed_trades(db_path)
    out = invoke("--testnet", "pnl-report").stdout
    for section in (
        "totals (USDT)",
        "trades",
        "equity (daily",
        "by symbol",
        "by day",
        "go-live checklist",
    ):
        assert section in out


def test_sql_is_read_only(db_path):
    invoke("status")
    seed_trades(db_path)
    code, doc = invoke_json(
        "sql", "SELECT symbol, net_pnl FROM v_trades ORDER BY net_pnl DESC LIMIT 1"
    )
    assert (
        code == 0
        and doc["columns"] == ["symbol", "net_pnl"]
        and doc["rows"] == [["BTCUSDT", "9.5"]]
    )
    for statement in (
        "DELETE FROM signals",
        "SELECT 1; DROP TABLE runs",
        "CREATE TABLE x (a INT)",
        "UPDATE positions SET fees = 0",
    ):
        result = invoke("sql", statement)
        assert result.exit_code == 2, statement
    assert query(db_path, "SELECT count(*) FROM positions") == [(4,)]
    assert invoke("sql", "SELEC nonsense").exit_code == 2


@pytest.mark.parametrize("view", ["v_trades", "v_daily_pnl", "v_open_positions", "v_equity"])
def test_public_view_columns(db_path, view):
    invoke("status")
    expected = {
        "v_trades": ["symbol", "side", "opened_at", "closed_at", "qty", "entry_price", "exit_price",
                     "gross_pnl", "fees", "funding", "net_pnl", "return_pct", "r_multiple", "exit_reason",
                     "slippage_bps", "mode"],
        "v_daily_pnl": ["day", "realized_pnl", "fees", "funding", "net_pnl", "trades", "equity"],
        "v_open_positions": ["symbol", "side", "qty", "entry_price", "mark_price", "unrealized_pnl",
                             "stop_loss", "take_profit", "opened_at", "classification", "mode"],
        "v_equity": ["ts", "wallet_balance", "unrealized_pnl", "equity", "mode"],
    }[view]  # fmt: skip
    columns = [r[0] for r in query(db_path, f"DESCRIBE {view}")]
    assert set(expected) <= set(columns), set(expected) - set(columns)
    json.dumps(columns)


def test_extremes_come_from_their_own_side(db_path):
    invoke("status")
    seed_trades(db_path)
    only_losses = report("--symbol", "ETHUSDT")["trades"]
    assert only_losses["largest_win"] is None and D(only_losses["largest_loss"]) == D("-10.19")
    only_wins = report("--symbol", "BTCUSDT")["trades"]
    assert D(only_wins["largest_win"]) == D("9.5") and only_wins["largest_loss"] is None


def test_a_days_numbers_are_the_same_in_every_table(db_path):
    invoke("status")
    seed_trades(db_path)
    whole = report()
    assert sum(D(d["fees"]) for d in whole["by_day"]) == D(whole["totals"]["fees"])
    assert sum(D(d["net_pnl"]) for d in whole["by_day"]) == D(whole["totals"]["net_pnl"])
    one_day = report("--since", "2026-11-05", "--until", "2026-11-06")
    (day,) = one_day["by_day"]
    for key in ("realized_pnl", "fees", "funding", "net_pnl"):
        assert D(day[key]) == D(one_day["totals"][key]), key


def test_statistics_that_need_more_data_say_so(db_path):
    invoke("status")
    seed_trades(db_path)
    store = open_store(str(db_path))
    for i, v in enumerate([10000, 10100, 10300]):  # rising: no drawdown; two daily returns
        store.execute(
            "INSERT INTO equity VALUES (?, 'testnet', 0, ?, 0, ?)",
            [DAY + timedelta(days=i), v, v],
        )
    store.close()
    e = report()["equity"]
    assert e["sortino"] is None and e["calmar"] is None and e["sharpe"] is None
    assert e["needs_more_data"]["sortino"] == "needs 30 daily returns, has 2"
    out = invoke("--testnet", "pnl-report").stdout
    assert "n/a: needs 30 daily returns, has 2" in out
    assert "None → None" not in out and "no drawdown" in out


def test_unknown_mode_or_symbol_is_a_usage_error_naming_the_known_ones(db_path):
    invoke("status")
    seed_trades(db_path)
    result = invoke("--testnet", "pnl-report", "--mode", "tesnet")
    assert result.exit_code == 2 and "paper, testnet, live" in result.output
    result = invoke("--testnet", "pnl-report", "--symbol", "DOGEUSDT")
    assert result.exit_code == 2 and "BTCUSDT, ETHUSDT, SOLUSDT" in result.output
    for spelling in ("BTCUSDT", "BTC/USDT", "BTC-USDT", "BTC/USDT:USDT", "btcusdt"):
        assert report("--symbol", spelling)["trades"]["trades"] == 2, spelling


# --- the HTML report and the chart model ------------------------------------------------


def seed_intraday_equity(db, values=(10000, 10040, 9980, 10010, 10060, 10030)) -> list:
    """Snapshots every four hours from DAY 02:00: several per day, a dip on the first day."""
    store = open_store(str(db))
    points = [(DAY + timedelta(hours=2 + 4 * i), v) for i, v in enumerate(values)]
    for ts, v in points:
        store.execute("INSERT INTO equity VALUES (?, 'testnet', 0, ?, 0, ?)", [ts, v, v])
    store.close()
    return points


class _Cells(HTMLParser):
    """Every element carrying data-key / data-col, with its attributes and text."""

    def __init__(self):
        super().__init__()
        self.cells, self.tags, self.srcs, self._open = [], [], [], None
        self.polyline = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        self.srcs += [a[k] for k in ("src", "href") if k in a]
        if tag == "polyline":
            self.polyline = a["points"]
        if "data-key" in a or "data-col" in a:
            self._open = {**a, "text": ""}
            self.cells.append(self._open)

    def handle_endtag(self, tag):
        self._open = None

    def handle_data(self, data):
        if self._open is not None:
            self._open["text"] += data


def _at(doc, path):
    for part in path.split("."):
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def parse_report(path) -> _Cells:
    cells = _Cells()
    cells.feed(path.read_text())
    return cells


def assert_shown_equals_json(cells: list[dict], doc: dict) -> int:
    """Each number in the page is the JSON report's: exactly in data-value, and shown rounded."""
    checked = 0
    for cell in (c for c in cells if "data-key" in c):
        expected = _at(doc, cell["data-key"])
        value, text, kind = cell["data-value"], cell["text"].strip(), cell.get("data-kind")
        text = text.split("\n")[0]  # a browser's innerText: the cell's own text
        assert value == (json.dumps(expected) if not isinstance(expected, str) else expected), cell
        if expected is None:
            assert text in ("n/a", "-"), cell
        elif kind == "pct":
            assert abs(float(text.rstrip(" %")) - 100 * float(expected)) <= 0.005 + 1e-9, cell
        elif kind in ("money", "ratio"):
            assert abs(float(text.replace(",", "")) - float(expected)) <= 0.00005 + 1e-9, cell
        elif kind == "hours":
            assert abs(float(text.rstrip(" h")) - float(expected) / 3600) <= 0.005 + 1e-9, cell
        elif kind == "int":
            assert text == str(expected), cell
        checked += 1
    return checked


def test_html_report_numbers_equal_the_json_report(db_path, tmp_path):
    invoke("status")
    seed_trades(db_path)
    seed_intraday_equity(db_path)
    page = tmp_path / "out" / "report.html"
    doc = report("--html", str(page))
    assert str(page) in doc["files"]
    cells = parse_report(page)
    assert assert_shown_equals_json(cells.cells, doc) > 60
    keys = {c["data-key"] for c in cells.cells if "data-key" in c}
    assert {"totals.net_pnl", "trades.win_rate", "equity.sharpe", "by_day.4.net_pnl",
            "by_symbol.2.net_pnl", "go_live_checklist.0.pass"} <= keys  # fmt: skip
    # the trades table: every closed trade, its net PnL as v_trades has it
    shown = {c["data-col"]: c for c in cells.cells if c.get("data-col") == "net_pnl"}
    assert len([c for c in cells.cells if c.get("data-col") == "net_pnl"]) == 4 and shown
    nets = sorted(D(c["data-value"]) for c in cells.cells if c.get("data-col") == "net_pnl")
    assert nets == sorted(r[0] for r in query(db_path, "SELECT net_pnl FROM v_trades"))
    # the data-sufficiency notes are shown next to the statistics they concern
    text = page.read_text()
    assert "needs 30 daily returns, has 0" in text
    # the title names the mode, the period and the database
    assert "TESTNET" in text and "2026-11-01 00:00 → 2026-11-06 00:00 UTC" in text  # whole days
    assert str(db_path) in text
    report("--html", str(page), "--since", "2026-11-02", "--until", "2026-11-04T12:00:00")
    assert "2026-11-02 00:00 → 2026-11-04 12:00 UTC" in page.read_text()


def test_html_report_is_self_contained(db_path, tmp_path):
    invoke("status")
    seed_trades(db_path)
    seed_intraday_equity(db_path)
    page = tmp_path / "report.html"
    report("--html", str(page))
    cells = parse_report(page)
    assert "script" not in cells.tags and "link" not in cells.tags and "img" not in cells.tags
    assert cells.srcs == []
    text = page.read_text()
    # the only URL is the SVG namespace, which is a name, not a request
    assert re.findall(r"https?://[^\"' ]+", text) == ["http://www.w3.org/2000/svg"]
    assert "default-src 'none'" in text  # and the browser is told to fetch nothing


def test_equity_curve_uses_every_snapshot_even_on_day_one(db_path, tmp_path):
    invoke("status")
    points = seed_intraday_equity(db_path, values=(10000, 10050, 9990))  # all on one day
    page = tmp_path / "report.html"
    report("--html", str(page))
    assert len(parse_report(page).polyline.split()) == len(points) == 3


def test_an_empty_range_still_writes_a_report(db_path, tmp_path):
    page, png = tmp_path / "report.html", tmp_path / "report.png"
    doc = report("--html", str(page), "--plot", str(png))
    assert doc["trades"]["trades"] == 0 and png.stat().st_size > 5_000
    assert "no equity snapshots and no trades in this range" in page.read_text()


def test_chart_model_every_snapshot_markers_and_day_bars():
    from qtrader.domain.report_chart import build_chart, decimate

    snaps = [(DAY + timedelta(hours=h), D(v)) for h, v in ((1, 100), (5, 120), (9, 90), (13, 110))]
    trades = [{"closed_at": DAY + timedelta(hours=7), "symbol": "BTCUSDT", "side": "long",
               "net_pnl": D("-3.5"), "exit_reason": "stop_loss"}]  # fmt: skip
    days = [{"day": DAY.date(), "net_pnl": D("-3.5")}]
    chart = build_chart(snaps, trades, days)
    assert [v for _, v in chart.equity] == [100, 120, 90, 110]
    assert [round(v, 4) for _, v in chart.drawdown_pct] == [0, 0, -25, round(-100 / 12, 4)]
    (marker,) = chart.markers  # halfway between 05:00 (120) and 09:00 (90), on the drawn line
    assert marker.equity == 105 and not marker.win and "stop_loss" in marker.label
    (bar,) = chart.bars  # a day's bar covers the whole UTC day
    assert (bar.start, bar.end) == (DAY, DAY + timedelta(days=1))
    assert (chart.start, chart.end) == (DAY, DAY + timedelta(days=1))
    # a long series is thinned for drawing, keeping every extreme
    many = [(DAY + timedelta(minutes=i), float((i * 7919) % 1000)) for i in range(20_000)]
    many[12_345] = (many[12_345][0], -50.0)
    thin = decimate(many, 400)
    assert (
        len(thin) <= 400 and (many[12_345] in thin) and thin[0] == many[0] and thin[-1] == many[-1]
    )


def test_recent_trades_are_the_last_ones_oldest_first(db_path):
    from qtrader.store.reports import Filters, recent_trades

    invoke("status")
    seed_trades(db_path)
    store = open_store(str(db_path))
    try:
        f = Filters(mode="testnet")
        every = recent_trades(store, f, 1000)
        last_two = recent_trades(store, f, 2)
        only_btc = recent_trades(store, Filters(mode="testnet", symbol="BTCUSDT"), 1)
    finally:
        store.close()
    assert [t["symbol"] for t in every] == ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BTCUSDT"]
    assert last_two == every[-2:]
    assert [(t["symbol"], t["net_pnl"]) for t in only_btc] == [("BTCUSDT", D("4"))]
