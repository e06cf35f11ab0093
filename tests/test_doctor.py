"""doctor against the Binance wire-format stand-in."""

from __future__ import annotations

import pytest
import responses

from tests.binance_fake import FakeBinance
from tests.conftest import invoke_json

pytestmark = pytest.mark.usefixtures("exchange_env")


def doctor(*flags: str) -> tuple[int, dict[str, dict]]:
    code, doc = invoke_json(*flags, "doctor")
    return code, {c["name"]: c for c in doc["checks"]}


def test_a_ready_machine_passes(binance):
    code, checks = doctor("--testnet")
    assert code == 0, checks
    assert all(c["status"] in ("PASS", "WARN") for c in checks.values())
    assert checks["api keys"]["detail"].startswith("BINANCE_API_KEY=test…")  # masked
    assert "test-key-0123456789abcdef" not in str(checks)
    assert checks["key permissions"]["detail"] == "demo trading: no withdrawal permission exists"
    assert checks["position mode"]["detail"] == "one-way (cache refreshed)"


def test_a_skewed_clock_fails_with_the_fix(binance):
    binance.server_time_offset_ms = -8000  # this machine runs 8 s fast
    code, checks = doctor("--testnet")
    assert code == 1
    assert checks["clock"]["status"] == "FAIL" and "+80" in checks["clock"]["detail"]
    assert "NTP" in checks["clock"]["fix"]


def test_a_key_without_futures_permission_fails(binance):
    binance.fail_next(
        "/fapi/v3/account",
        "GET",
        {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."},
    )
    code, checks = doctor("--testnet")
    assert code == 1
    account = checks["futures account"]
    assert account["status"] == "FAIL" and "(-2015)" in account["detail"]
    assert "futures permission" in account["fix"]


def test_a_missing_key_fails(binance, monkeypatch):
    monkeypatch.delenv("BINANCE_API_KEY")
    code, checks = doctor("--testnet")
    assert code == 1 and checks["api keys"]["status"] == "FAIL"
    assert binance.sent == []


def test_a_mainnet_key_that_can_withdraw_is_a_warning(monkeypatch):
    monkeypatch.setenv("QTRADER_LIVE_CONFIRM", "yes")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        FakeBinance(host="https://fapi.binance.com").install(mock)
        mock.add(responses.GET, "https://api.binance.com/sapi/v1/account/apiRestrictions",
                 json={"ipRestrict": False, "createTime": 1698645219000, "enableReading": True,
                       "enableWithdrawals": True, "enableInternalTransfer": False,
                       "enableMargin": False, "enableFutures": True,
                       "permitsUniversalTransfer": False, "enableVanillaOptions": False,
                       "enableFixApiTrade": False, "enableFixReadOnly": False,
                       "enableSpotAndMarginTrading": False, "enablePortfolioMarginTrading": False})  # fmt: skip
        code, checks = doctor("--live")
    assert code == 0
    assert checks["key permissions"]["status"] == "WARN"
    assert checks["key permissions"]["detail"] == "the key can WITHDRAW funds"


def test_paper_mode_and_database_checks(db_path, tmp_path, monkeypatch):
    from tests.paper_data import write_candles

    candles = write_candles(tmp_path / "c.csv", flat={"BTCUSDT": "50000", "ETHUSDT": "3000"})
    monkeypatch.setenv("QTRADER_PAPER_PRICES", str(candles))
    code, checks = doctor()
    assert code == 0
    assert checks["database"]["status"] == "PASS"
    paper = checks["paper exchange"]
    assert paper["status"] == "PASS" and paper["detail"].startswith("PAPER (replay of")
    assert "2 symbols priced, equity 10000 USDT" in paper["detail"]


def test_an_unreachable_redis_source_fails(monkeypatch):
    from tests.conftest import _free_port

    monkeypatch.setenv(
        "QTRADER_SIGNAL_SOURCE", f"redis://:pw123456@127.0.0.1:{_free_port()}/0?stream=s"
    )
    code, checks = doctor()
    assert code == 1 and checks["redis"]["status"] == "FAIL"
    assert "pw123456" not in checks["redis"]["detail"]
