"""The HTML report in a real headless Chromium: it opens without any network request or
error, its charts render (the screenshot has ink, in the chart's colours), and every number
the browser shows equals `pnl-report --json`."""

from __future__ import annotations

from decimal import Decimal as D

from tests.browser import chromium_or_skip, open_in_browser, pixel_counts
from tests.conftest import invoke, query
from tests.test_pnl_report import (
    assert_shown_equals_json,
    report,
    seed_intraday_equity,
    seed_trades,
)


def test_report_opens_offline_renders_and_shows_the_json_numbers(db_path, tmp_path):
    chromium_or_skip()
    invoke("status")
    seed_trades(db_path)
    seed_intraday_equity(db_path)
    page = tmp_path / "report.html"
    doc = report("--html", str(page))

    seen = open_in_browser(page)

    assert seen.requests == [page.resolve().as_uri()]  # the page itself, nothing else
    assert seen.failed == [] and seen.errors == []
    assert seen.title.startswith("qtrader PnL · TESTNET")
    keyed = [c for c in seen.cells if "data-key" in c]
    assert all(c["visible"] for c in seen.cells)
    assert assert_shown_equals_json(keyed, doc) > 60
    nets = sorted(D(c["data-value"]) for c in seen.cells if c.get("data-col") == "net_pnl")
    assert nets == sorted(r[0] for r in query(db_path, "SELECT net_pnl FROM v_trades"))
    ink = pixel_counts(seen.chart_png)
    assert ink["ink"] > 0.03 * ink["total"], ink  # the chart is drawn, not a blank box
    assert ink["blue"] > 300 and ink["red"] > 300 and ink["green"] > 300, ink


def test_the_browser_check_catches_requests_errors_and_blank_charts(tmp_path):
    """The checks above can fail: a page that fetches, errs and draws nothing is caught."""
    chromium_or_skip()
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><body><div id="chart" style="width:400px;height:200px"></div>'
        '<img src="http://127.0.0.1:9/logo.png"><script>console.error("boom")</script>'
        "</body></html>"
    )
    seen = open_in_browser(page)
    assert "http://127.0.0.1:9/logo.png" in seen.requests
    assert "http://127.0.0.1:9/logo.png" in seen.failed
    assert "boom" in seen.errors
    assert pixel_counts(seen.chart_png)["ink"] == 0
