"""pull-signals from files and stdin, through the CLI: counts, dedupe, conflicts, rejections."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import invoke, invoke_json, query

GOOD = {"intent_id": "a-1", "symbol": "BTCUSDT", "side": "BUY", "position_size_usd": 425,
        "leverage": 3, "entry_price": 50000, "stop_loss": 49000, "take_profit": 52000,
        "confidence": 0.78}  # fmt: skip
AUTO = {"symbol": "ETHUSDT", "action": "SELL", "confidence": 0.65, "price": 3500.0}


def write_jsonl(path: Path, *lines: object) -> Path:
    path.write_bytes(
        b"\n".join(l if isinstance(l, bytes) else json.dumps(l).encode() for l in lines)
    )
    return path


def test_jsonl_is_stored_with_counts_and_rejections(tmp_path, db_path):
    src = write_jsonl(tmp_path / "s.jsonl", GOOD, AUTO, b"{broken", {**AUTO, "confidence": 3})
    code, doc = invoke_json("pull-signals", "--from", str(src))
    assert code == 0
    assert doc["mode"] == "paper" and doc["command"] == "pull-signals"
    assert doc["totals"] == {"read": 4, "new": 2, "duplicate": 0, "invalid": 2, "conflict": 0}
    assert [(r["location"], r["status"]) for r in doc["rejected"]] == [
        (f"{src}:3", "invalid"),
        (f"{src}:4", "invalid"),
    ]
    rows = query(db_path, "SELECT location, status, reason, raw FROM signals ORDER BY seq")
    assert [r[1] for r in rows] == ["pending", "pending", "invalid", "invalid"]
    assert rows[2][2].startswith("malformed JSON") and rows[2][3] == "{broken"
    assert "outside [0, 1]" in rows[3][2]


def test_pulling_the_same_input_twice_stores_nothing_new(tmp_path, db_path):
    src = write_jsonl(tmp_path / "s.jsonl", GOOD, AUTO, b"not json")
    assert invoke("pull-signals", "--from", str(src)).exit_code == 0
    code, doc = invoke_json("pull-signals", "--from", str(src))
    assert code == 0
    assert doc["totals"] == {"read": 3, "new": 0, "duplicate": 3, "invalid": 0, "conflict": 0}
    assert query(db_path, "SELECT count(*) FROM signals") == [(3,)]


def test_same_id_different_content_is_kept_as_a_conflict(tmp_path, db_path):
    first = write_jsonl(tmp_path / "a.jsonl", GOOD)
    second = write_jsonl(tmp_path / "b.jsonl", {**GOOD, "position_size_usd": 9000})
    invoke("pull-signals", "--from", str(first))
    code, doc = invoke_json("pull-signals", "--from", str(second))
    assert code == 0 and doc["totals"]["conflict"] == 1
    rows = query(db_path, "SELECT status, position_size_usd FROM signals ORDER BY seq")
    assert [(s, int(p)) for s, p in rows] == [("pending", 425), ("conflict", 9000)]
    # the conflict itself is not stored twice
    _, again = invoke_json("pull-signals", "--from", str(second))
    assert again["totals"]["duplicate"] == 1


def test_a_corrected_signal_may_reuse_the_id_of_an_invalid_one(tmp_path, db_path):
    bad = write_jsonl(tmp_path / "a.jsonl", {**GOOD, "confidence": 7})
    fixed = write_jsonl(tmp_path / "b.jsonl", GOOD)
    invoke("pull-signals", "--from", str(bad))
    _, doc = invoke_json("pull-signals", "--from", str(fixed))
    assert doc["totals"]["new"] == 1
    assert query(db_path, "SELECT status FROM signals ORDER BY seq") == [("invalid",), ("pending",)]


def test_same_signal_in_different_formats_is_one_signal(tmp_path, db_path):
    csv_file = tmp_path / "s.csv"
    csv_file.write_text("symbol,action,confidence,price\nETHUSDT,SELL,0.65,3500\n")
    invoke("pull-signals", "--from", str(write_jsonl(tmp_path / "s.jsonl", AUTO)))
    _, doc = invoke_json("pull-signals", "--from", str(csv_file))
    assert doc["totals"]["duplicate"] == 1


def test_json_array_and_wrapped_list(tmp_path, db_path):
    arr = tmp_path / "a.json"
    arr.write_text(json.dumps([GOOD, AUTO, 5]))
    wrapped = tmp_path / "w.json"
    wrapped.write_text(json.dumps({"signals": [{**AUTO, "symbol": "SOLUSDT"}]}))
    code, doc = invoke_json("pull-signals", "--from", str(arr), "--from", str(wrapped))
    assert code == 0
    assert [s["new"] for s in doc["sources"]] == [2, 1]
    assert doc["rejected"][0]["location"] == f"{arr}[2]"
    assert "got a number" in doc["rejected"][0]["reason"]


def test_json_array_with_a_nan_element_rejects_only_that_element(tmp_path, db_path):
    arr = tmp_path / "a.json"
    arr.write_text(
        '[{"symbol":"BTCUSDT","action":"BUY","confidence":NaN}, ' + json.dumps(AUTO) + "]"
    )
    _, doc = invoke_json("pull-signals", "--from", str(arr))
    assert (doc["totals"]["new"], doc["totals"]["invalid"]) == (1, 1)
    assert "NaN is not a number" in doc["rejected"][0]["reason"]


def test_single_object_json_file(tmp_path, db_path):
    one = tmp_path / "one.json"
    one.write_text(json.dumps(GOOD))
    _, doc = invoke_json("pull-signals", "--from", str(one))
    assert doc["totals"]["new"] == 1


def test_csv_with_header_bad_rows_located_by_line(tmp_path, db_path):
    src = tmp_path / "s.csv"
    src.write_bytes(
        b"symbol,side,confidence,entry_price,stop_loss\n"
        b"BTCUSDT,BUY,0.7,50000,49000\n"
        b"BTCUSDT,BUY,0.7,50000,49000,extra\n"
        b"ETH\xffUSDT,SELL,0.7,3500,3600\n"
        b"ETHUSDT,SELL,0.7,3500,3400\n"
    )
    code, doc = invoke_json("pull-signals", "--from", str(src))
    assert code == 0
    assert doc["totals"] == {"read": 4, "new": 1, "duplicate": 0, "invalid": 3, "conflict": 0}
    reasons = {r["location"]: r["reason"] for r in doc["rejected"]}
    assert "CSV row has 6 fields; the header has 5" in reasons[f"{src}:3"]
    assert "not valid UTF-8" in reasons[f"{src}:4"]
    assert "stop_loss 3400 must be above entry 3500" in reasons[f"{src}:5"]


def test_stdin_jsonl_and_json(db_path):
    lines = json.dumps(GOOD) + "\n" + json.dumps(AUTO) + "\n"
    code, doc = invoke_json("pull-signals", "--from", "-", input=lines)
    assert code == 0 and doc["totals"]["new"] == 2
    assert doc["sources"][0]["source"] == "stdin"
    _, doc = invoke_json("pull-signals", "--from", "-", input=json.dumps([{**AUTO, "price": 1}]))
    assert doc["totals"]["new"] == 1
    assert query(db_path, "SELECT location FROM signals ORDER BY seq") == [
        ("stdin:1",),
        ("stdin:2",),
        ("stdin[0]",),
    ]


def test_non_utf8_and_oversized_records_are_stored_not_dropped(tmp_path, db_path):
    src = write_jsonl(tmp_path / "s.jsonl", b'{"symbol":"\xc3\x28"}', {**AUTO, "n": "x" * 70000})
    _, doc = invoke_json("pull-signals", "--from", str(src))
    assert doc["totals"]["invalid"] == 2
    rows = query(db_path, "SELECT reason, length(raw) FROM signals ORDER BY seq")
    assert "not valid UTF-8 at byte offset 11" in rows[0][0]
    assert "larger than 65536" in rows[1][0]
    assert rows[1][1] < 65536 + 200  # stored truncated, with its full hash


def test_strict_exits_1_but_still_stores_everything(tmp_path, db_path):
    src = write_jsonl(tmp_path / "s.jsonl", GOOD, b"nope")
    result = invoke("pull-signals", "--from", str(src), "--strict")
    assert result.exit_code == 1
    assert "--strict: 1 record(s) were invalid" in result.stderr
    assert query(db_path, "SELECT count(*) FROM signals") == [(2,)]


def test_missing_file_is_a_usage_error_with_no_traceback(tmp_path, db_path):
    result = invoke("pull-signals", "--from", "nope.jsonl")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: signal file nope.jsonl does not exist (or is not a file); check --from"
    )
    assert "Traceback" not in result.output


def test_a_bad_source_stops_before_any_source_is_read(tmp_path, db_path):
    good = write_jsonl(tmp_path / "s.jsonl", GOOD)
    (tmp_path / "signals.txt").write_text(json.dumps(GOOD))
    result = invoke("pull-signals", "--from", str(good), "--from", "signals.txt")
    assert result.exit_code == 2
    assert "cannot tell the format of signals.txt" in result.stderr
    assert query(db_path, "SELECT count(*) FROM signals") == [(0,)]


def test_unknown_scheme_is_a_usage_error(db_path):
    result = invoke("pull-signals", "--from", "ftp://example/x")
    assert result.exit_code == 2 and "unsupported source" in result.stderr


def test_every_invocation_writes_a_runs_row(tmp_path, db_path):
    src = write_jsonl(tmp_path / "s.jsonl", GOOD)
    invoke("pull-signals", "--from", str(src))
    invoke("pull-signals", "--from", "missing.jsonl")
    rows = query(db_path, "SELECT command, args, mode, outcome, exit_code, error, ended_at IS NOT NULL "
                          "FROM runs ORDER BY run_id")  # fmt: skip
    assert [(r[0], r[2], r[3], r[4], r[6]) for r in rows] == [
        ("pull-signals", "paper", "ok", 0, True),
        ("pull-signals", "paper", "usage", 2, True),
    ]
    assert json.loads(rows[0][1])["sources"] == [str(src)]
    assert "does not exist" in rows[1][5]
    summary = query(db_path, "SELECT summary FROM runs WHERE run_id = 1")[0][0]
    assert json.loads(summary)["totals"]["new"] == 1


def test_human_output_says_the_mode_and_lists_rejections(tmp_path, db_path):
    src = write_jsonl(tmp_path / "s.jsonl", GOOD, b"{bad")
    result = invoke("pull-signals", "--from", str(src))
    assert result.exit_code == 0
    assert result.stdout.startswith("qtrader pull-signals · mode PAPER · run 1")
    assert f"{src}:2" in result.stdout and "malformed JSON" in result.stdout


def test_global_options_work_after_the_command_too(tmp_path):
    src = write_jsonl(tmp_path / "s.jsonl", GOOD)
    other = tmp_path / "other.duckdb"
    result = invoke("pull-signals", "--from", str(src), "--db", str(other), "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["totals"]["new"] == 1
    assert query(other, "SELECT count(*) FROM signals") == [(1,)]


def test_identical_bad_lines_are_each_kept_with_their_location(tmp_path, db_path):
    src = write_jsonl(tmp_path / "s.jsonl", b"{oops", GOOD, b"{oops")
    _, doc = invoke_json("pull-signals", "--from", str(src))
    assert [r["location"] for r in doc["rejected"]] == [f"{src}:1", f"{src}:3"]
    _, again = invoke_json("pull-signals", "--from", str(src))
    assert again["totals"]["duplicate"] == 3
