"""Redis sources against a real redis-server on a free loopback port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import _free_port, invoke, invoke_json, query

pytestmark = pytest.mark.redis

INTENT = {"intent_id": "r-1", "symbol": "BTCUSDT", "side": "BUY", "confidence": "0.8",
          "position_size_usd": "200", "entry_price": "50000", "stop_loss": "49000"}  # fmt: skip


def add_entries(client, stream: str, count: int, start: int = 0) -> list[str]:
    ids = []
    for i in range(start, start + count):
        fields = {"symbol": "ETHUSDT", "action": "BUY", "confidence": "0.7", "price": str(3000 + i)}
        ids.append(client.xadd(stream, fields).decode())
    return ids


def test_stream_flat_and_json_entries_with_checkpoint(redis_server, redis_client, db_path):
    stream = "quantum:stream:trade.intent"
    first = redis_client.xadd(stream, INTENT).decode()
    redis_client.xadd(stream, {"payload": json.dumps({"symbol": "SOLUSDT", "action": "SELL",
                                                      "confidence": 0.6})})  # fmt: skip
    bad = redis_client.xadd(
        stream, {"symbol": "ETHUSDT", "action": "BUY", "confidence": "NaN"}
    ).decode()
    url = f"{redis_server}?stream={stream}"

    code, doc = invoke_json("pull-signals", "--from", url)
    assert code == 0, doc
    assert doc["totals"] == {"read": 3, "new": 2, "duplicate": 0, "invalid": 1, "conflict": 0}
    assert doc["rejected"][0]["location"] == f"{url}#{bad}"
    assert doc["rejected"][0]["signal_id"] == f"{stream}/{bad}"

    rows = query(db_path, "SELECT signal_id, symbol, location FROM signals ORDER BY seq")
    assert rows[0] == ("r-1", "BTCUSDT", f"{url}#{first}")  # the payload's own id wins
    assert rows[1][0].startswith(f"{stream}/")  # else the stream entry id

    # the checkpoint means a second pull reads only what is new
    new_ids = add_entries(redis_client, stream, 2)
    _, doc = invoke_json("pull-signals", "--from", url)
    assert doc["totals"] == {"read": 2, "new": 2, "duplicate": 0, "invalid": 0, "conflict": 0}
    cursor = query(db_path, "SELECT value FROM state WHERE key = ?", [f"cursor:{url}"])
    assert json.loads(cursor[0][0]) == new_ids[-1]
    _, doc = invoke_json("pull-signals", "--from", url)
    assert doc["totals"]["read"] == 0


def test_default_stream_is_the_seeds_trade_intent(redis_server, redis_client, db_path):
    redis_client.xadd("quantum:stream:trade.intent", INTENT)
    _, doc = invoke_json("pull-signals", "--from", redis_server)
    assert doc["sources"][0]["source"] == f"{redis_server}?stream=quantum:stream:trade.intent"
    assert doc["totals"]["new"] == 1


def test_exception_between_read_and_commit_loses_nothing(redis_server, redis_client, db_path,
                                                          monkeypatch):  # fmt: skip
    import qtrader.steps.pull_signals as step

    add_entries(redis_client, "s", 3)
    url = f"{redis_server}?stream=s"

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(step, "set_state", boom)
    result = invoke("pull-signals", "--from", url)
    assert result.exit_code == 1 and "internal error (RuntimeError: disk on fire)" in result.stderr
    assert query(db_path, "SELECT count(*) FROM signals") == [(0,)]  # rolled back with the cursor
    monkeypatch.undo()
    monkeypatch.setenv("QTRADER_DB", str(db_path))
    _, doc = invoke_json("pull-signals", "--from", url)
    assert doc["totals"]["new"] == 3


CRASHING_PULL = """
import os, sys
import qtrader.steps.pull_signals as step
real_set_state = step.set_state
calls = []
def set_state_then_die(*args, **kwargs):
    calls.append(1)
    if len(calls) == int(os.environ["DIE_AT_BATCH"]):
        os._exit(9)  # killed after the batch was written, before its COMMIT
    real_set_state(*args, **kwargs)
step.set_state = set_state_then_die
sys.argv = ["qtrader", "pull-signals", "--from", sys.argv[1]]
from qtrader.cli import main
main()
"""


def test_process_killed_mid_batch_then_rerun_gives_every_entry_exactly_once(
    redis_server, redis_client, db_path, tmp_path
):
    ids = add_entries(redis_client, "s", 5)
    url = f"{redis_server}?stream=s"
    script = tmp_path / "crash.py"
    script.write_text(textwrap.dedent(CRASHING_PULL))
    env = {**os.environ, "QTRADER_SIGNALS_REDIS_BATCH": "2", "DIE_AT_BATCH": "2"}
    proc = subprocess.run([sys.executable, str(script), url], env=env, capture_output=True,
                          timeout=60)  # fmt: skip
    assert proc.returncode == 9
    # batch 1 (2 entries) committed with its checkpoint; batch 2 died before its commit
    assert query(db_path, "SELECT count(*) FROM signals") == [(2,)]
    cursor = query(db_path, "SELECT value FROM state WHERE key = ?", [f"cursor:{url}"])
    assert json.loads(cursor[0][0]) == ids[1]

    env.pop("DIE_AT_BATCH")
    rerun = subprocess.run([sys.executable, "-m", "qtrader", "--json", "pull-signals", "--from", url],
                           env=env, capture_output=True, timeout=60)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["totals"]["new"] == 3
    rows = query(db_path, "SELECT location FROM signals ORDER BY seq")
    assert [r[0] for r in rows] == [f"{url}#{i}" for i in ids]  # every entry once, in order
    # the runs table shows the killed run as started and never ended
    runs = query(db_path, "SELECT outcome, ended_at FROM runs ORDER BY run_id")
    assert runs == [(None, None), ("ok", runs[1][1])]


def test_key_holding_a_json_list_like_the_seeds_live_signals(redis_server, redis_client, db_path):
    signals = [{"symbol": "BTCUSDT", "action": "BUY", "confidence": 0.78, "price": 50000.0,
                "pnl": 0.0, "drawdown": 2.0},
               {"symbol": "ETHUSDT", "action": "SELL", "confidence": 0.65, "price": 3500.0,
                "pnl": 0.0, "drawdown": 1.5}]  # fmt: skip
    redis_client.set("live_signals", json.dumps(signals))
    url = f"{redis_server}?key=live_signals"
    _, doc = invoke_json("pull-signals", "--from", url)
    assert doc["totals"]["new"] == 2
    _, doc = invoke_json("pull-signals", "--from", url)  # the key is re-read: dedupe absorbs it
    assert doc["totals"] == {"read": 2, "new": 0, "duplicate": 2, "invalid": 0, "conflict": 0}
    assert query(db_path, "SELECT location FROM signals ORDER BY seq") == [
        (f"{url}[0]",),
        (f"{url}[1]",),
    ]


def test_key_holding_a_redis_list(redis_server, redis_client, db_path):
    redis_client.rpush("sigs", json.dumps(INTENT), b"{oops")
    _, doc = invoke_json("pull-signals", "--from", f"{redis_server}?key=sigs")
    assert (doc["totals"]["new"], doc["totals"]["invalid"]) == (1, 1)


def test_missing_key_reads_nothing_and_wrong_type_is_a_usage_error(redis_server, redis_client):
    _, doc = invoke_json("pull-signals", "--from", f"{redis_server}?key=absent")
    assert doc["totals"]["read"] == 0
    redis_client.hset("h", "a", "b")
    result = invoke("pull-signals", "--from", f"{redis_server}?key=h")
    assert result.exit_code == 1  # the source failed; other sources would still be read
    assert "holds a Redis hash" in result.stderr


def test_unreachable_redis_exits_1_and_never_shows_the_password(db_path):
    url = f"redis://:hunter2pw@127.0.0.1:{_free_port()}/0?stream=s"
    result = invoke("--json", "pull-signals", "--from", url)
    assert result.exit_code == 1
    assert "cannot read stream s from Redis at redis://:***@127.0.0.1" in result.stderr
    assert "hunter2pw" not in result.output + result.stderr
    assert "Traceback" not in result.stderr
    stored = query(db_path, "SELECT args, error FROM runs")
    assert "hunter2pw" not in json.dumps(stored)


def test_one_failing_source_does_not_stop_the_others(redis_server, redis_client, tmp_path, db_path):
    good = tmp_path / "s.jsonl"
    good.write_text(json.dumps(INTENT))
    dead = f"redis://127.0.0.1:{_free_port()}/0?stream=s"
    code, doc = invoke_json("pull-signals", "--from", dead, "--from", str(good))
    assert code == 1
    assert doc["sources"][0]["error"] and doc["sources"][1]["new"] == 1
    assert query(db_path, "SELECT count(*) FROM signals") == [(1,)]
