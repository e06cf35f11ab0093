"""HTTP source, replayed with `responses`."""

from __future__ import annotations

import json

import pytest
import requests
import responses

from tests.conftest import invoke, invoke_json, query

URL = "https://signals.example.test/v1/intents"
INTENT = {"intent_id": "h-1", "symbol": "BTCUSDT", "side": "BUY", "confidence": 0.8,
          "entry_price": 50000, "stop_loss": 49000}  # fmt: skip


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setenv("QTRADER_SIGNALS_HTTP_RETRY_WAIT_S", "0")


@responses.activate
def test_json_array_is_fetched_with_a_timeout_and_stored(db_path):
    responses.get(URL, json=[INTENT, {"symbol": "ETHUSDT", "action": "HOLD"}, "junk"])
    code, doc = invoke_json("pull-signals", "--from", URL)
    assert code == 0
    assert doc["totals"] == {"read": 3, "new": 2, "duplicate": 0, "invalid": 1, "conflict": 0}
    assert doc["rejected"][0]["location"] == f"{URL}[2]"
    sent = responses.calls[0].request
    assert sent.method == "GET" and sent.headers["Accept"] == "application/json"
    assert sent.req_kwargs["timeout"] == 10.0


@responses.activate
def test_wrapped_list_and_jsonl_bodies(db_path):
    responses.get(URL, json={"signals": [INTENT]})
    responses.get(URL + "?fmt=lines", body=json.dumps(INTENT) + "\n" + json.dumps(
        {"symbol": "SOLUSDT", "action": "SELL", "confidence": 0.6}) + "\n")  # fmt: skip
    _, doc = invoke_json("pull-signals", "--from", URL, "--from", URL + "?fmt=lines")
    assert [s["new"] for s in doc["sources"]] == [1, 1]  # h-1 in the second is a duplicate
    assert doc["sources"][1]["duplicate"] == 1


@responses.activate
def test_5xx_is_retried_then_succeeds(db_path):
    responses.get(URL, status=502)
    responses.get(URL, status=503)
    responses.get(URL, json=[INTENT])
    code, doc = invoke_json("pull-signals", "--from", URL)
    assert code == 0 and doc["totals"]["new"] == 1
    assert len(responses.calls) == 3


@responses.activate
def test_connection_errors_exhaust_the_retries_and_exit_1(db_path):
    responses.get(URL, body=requests.ConnectionError("refused"))
    code, doc = invoke_json("pull-signals", "--from", URL)
    assert code == 1
    assert len(responses.calls) == 3  # signals.http_retries
    assert (
        f"cannot fetch signals from {URL} after 3 attempts: connection refused by " in doc["error"]
    )
    assert "Check the --from URL" in doc["error"]
    assert query(db_path, "SELECT outcome, exit_code FROM runs") == [("failed", 1)]


@responses.activate
def test_4xx_is_not_retried(db_path):
    responses.get(URL, status=404)
    result = invoke("pull-signals", "--from", URL)
    assert result.exit_code == 1
    assert len(responses.calls) == 1
    assert "answered HTTP 404" in result.stderr


@responses.activate
def test_non_json_body_is_stored_as_an_invalid_record(db_path):
    responses.get(URL, body="<html>maintenance</html>")
    code, doc = invoke_json("pull-signals", "--from", URL)
    assert code == 0 and doc["totals"]["invalid"] == 1
    assert query(db_path, "SELECT raw FROM signals") == [("<html>maintenance</html>",)]


@responses.activate
def test_oversized_body_is_refused(db_path, monkeypatch):
    monkeypatch.setenv("QTRADER_SIGNALS_HTTP_MAX_BYTES", "2048")
    responses.get(URL, body="[" + ",".join([json.dumps(INTENT)] * 100) + "]")
    code, doc = invoke_json("pull-signals", "--from", URL)
    assert code == 1 and "larger than 2048 bytes" in doc["error"]


@responses.activate
def test_token_in_the_url_is_masked_everywhere(db_path):
    url = URL + "?token=s3cr3t-t0ken&limit=5"
    responses.get(url, status=500)
    result = invoke("pull-signals", "--from", url)
    assert result.exit_code == 1
    assert "s3cr3t-t0ken" not in result.output + result.stderr
    assert "token=***" in result.stderr
    assert "s3cr3t-t0ken" not in json.dumps(query(db_path, "SELECT * FROM runs"), default=str)


def test_the_database_is_not_held_while_the_source_is_read(db_path):
    """Another process can open the file while qtrader waits for the HTTP source."""
    from tests.test_lock_and_rate import _can_open

    invoke("status")
    seen = []

    def answer(request):
        seen.append(_can_open(db_path))
        return 200, {}, json.dumps([INTENT])

    with responses.RequestsMock() as mock:
        mock.add_callback(responses.GET, URL, callback=answer)
        assert invoke("pull-signals", "--from", URL).exit_code == 0
    assert seen == [True]
    assert query(db_path, "SELECT signal_id FROM signals") == [("h-1",)]
