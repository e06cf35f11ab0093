"""Review of issue 17 (OKX): attempts to break the money promises, against the stand-in."""

from __future__ import annotations

from decimal import Decimal

import pytest
import responses

from qtrader.domain.okx_ids import BadClientId, okx_client_id, qtrader_client_id
from tests.okx_fake import FakeOkx
from tests.test_okx_adapter import open_adapter

D = Decimal


@pytest.fixture
def okx():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeOkx().install(mock)
        yield open_adapter(mock, fake), fake


# --- history paging ------------------------------------------------------------------------


def test_fills_past_the_page_cap_are_all_returned_not_the_newest_only(okx):
    """More fills since the cursor than 50 pages of 100: the newest pages came back and the
    oldest rows were dropped without a word; reconcile then moved its cursor to the newest
    fill, so the dropped ones were never booked (reports ≠ the exchange's ledger)."""
    ex, fake = okx
    total = 50 * 100 + 7  # the adapter stopped after 50 pages of 100
    for i in range(total):
        fake.fill("BTC-USDT-SWAP", "buy" if i % 2 == 0 else "sell", D(1), D(50000), "net",
                  str(i), "", "isolated")  # fmt: skip
    fills = ex.fills("BTCUSDT", since_ms=0)
    assert len({f.trade_id for f in fills}) == total
    assert fills[0].trade_id == fake.fills[0]["tradeId"]  # the oldest is there


# --- close-all and algo orders qtrader did not list ------------------------------------------


def _trailing_stop(fake: FakeOkx, inst: str = "BTC-USDT-SWAP") -> dict:
    """A trailing stop placed by hand (ordType move_order_stop), not reduce-only: when it
    triggers on a flat account it opens a position."""
    row = {"algoClOrdId": "", "algoId": "701986812300000001", "instId": inst, "instType": "SWAP",
           "ordType": "move_order_stop", "callbackRatio": "0.01", "activePx": "", "side": "sell",
           "posSide": "net", "sz": "1", "tdMode": "isolated", "reduceOnly": "false",
           "state": "live", "closeFraction": "", "failCode": "", "slTriggerPx": "",
           "tpTriggerPx": "", "cTime": "1", "uTime": "1"}  # fmt: skip
    fake.algos.append(row)
    return row


def test_close_all_sees_and_cancels_a_trailing_stop(okx):
    ex, fake = okx
    row = _trailing_stop(fake)
    listed = ex.open_orders(None, conditional=True)
    assert [o.exchange_order_id for o in listed] == [row["algoId"]]
    ex.cancel_all("BTCUSDT", conditional=True)
    assert fake.live_algos() == []


# --- client ids ----------------------------------------------------------------------------


def test_two_client_ids_never_map_to_one_okx_id():
    """okx_client_id passed an already-OKX-shaped id through unchanged, so `qt<24 hex>sl` and
    qtrader's `qt-<24 hex>-sl` became the same clOrdId (one would find or block the other)."""
    ours = "qt-0123456789abcdef01234567-sl"
    look_alike = "qt0123456789abcdef01234567sl"
    try:
        other = okx_client_id(look_alike)
    except BadClientId:
        other = None
    assert other != okx_client_id(ours)
    assert qtrader_client_id(okx_client_id(ours)) == ours


# --- margin mode (tdMode) --------------------------------------------------------------------


def test_an_entry_never_opens_a_second_position_in_another_margin_mode(okx):
    """OKX keeps a cross and an isolated position of one swap apart (positions are per instId,
    mgnMode and posSide). With an isolated position open and exchange.margin_mode switched to
    cross, set_margin_mode sent nothing and the next entry went out tdMode=cross: a second,
    separate position, which the reduce-only stop (sent in the isolated position's mode) does
    not cover. Binance refuses the switch with a position open (-4048); so must this."""
    from qtrader.exchange.port import ExchangeRejected
    from tests.test_okx_adapter import entry

    ex, fake = okx
    fake.position("BTC-USDT-SWAP", "2", mgn_mode="isolated")
    ex.account()  # execute reads the account before it sets a symbol up
    try:
        ex.set_margin_mode("BTCUSDT", "cross")
        ex.place_order(entry())
    except ExchangeRejected:
        pass  # refused like Binance's -4048: the signal is rejected with its reason
    assert [p.body["tdMode"] for p in fake.order_posts()] in ([], ["isolated"])


def test_a_closed_positions_margin_mode_does_not_stick(okx):
    """The mode of a position read earlier is forgotten once a later read shows it gone."""
    ex, fake = okx
    fake.position("BTC-USDT-SWAP", "2", mgn_mode="isolated")
    ex.account()
    fake.positions[("BTC-USDT-SWAP", "net")] = D(0)
    ex.account()
    ex.set_margin_mode("BTCUSDT", "cross")  # nothing open: the switch is allowed
    from tests.test_okx_adapter import entry

    ex.place_order(entry())
    assert fake.order_posts()[-1].body["tdMode"] == "cross"


def test_an_entry_beside_a_position_held_in_the_other_mode_is_refused_unsent(okx):
    """A position opened by hand in cross (adopted), qtrader configured isolated and the
    symbol already set up (so set_margin_mode is not called again): the entry must not go
    out tdMode=isolated beside it."""
    from qtrader.exchange.port import ExchangeRejected
    from tests.test_okx_adapter import entry

    ex, fake = okx
    fake.position("BTC-USDT-SWAP", "2", mgn_mode="cross")
    ex.account()
    with pytest.raises(ExchangeRejected, match="open cross position"):
        ex.place_order(entry())
    assert fake.order_posts() == []


# --- expTime against the give-up grace --------------------------------------------------------


@pytest.mark.parametrize("grace", [5, 8, 60])
def test_an_entry_expires_on_okx_before_it_can_be_given_up(grace):
    """unknown_order_grace_s may be as low as 5 s but the entry's expTime was fixed at 10 s:
    an entry given up as never arrived at 5 s could still arrive and fill until 10 s, leaving
    a position no signal owns and no stop yet."""
    from dataclasses import replace as dc_replace

    from qtrader.config import ExchangeSettings, Settings
    from qtrader.exchange import Credentials, _okx

    settings = Settings(
        exchange=dc_replace(ExchangeSettings(), name="okx", unknown_order_grace_s=grace)
    )
    ex = _okx(settings, "testnet", Credentials("k", "s", "p"))
    assert 0 < ex.client.qt_exp_time_s <= grace / 2


def test_close_all_cancels_a_partially_filled_pending_order(okx):
    """OKX cancels a partially filled order like a live one; the stand-in answered 51400, which
    the adapter takes for "already gone": close-all would have left it working."""
    ex, fake = okx
    fake.resting_order("qtlimit1", "BTC-USDT-SWAP", "buy", "2", "40000")
    fake.orders[-1].update(state="partially_filled", accFillSz="1")
    ex.cancel_all("BTCUSDT", conditional=False)
    assert fake.orders[-1]["state"] == "canceled"
    assert ex.open_orders("BTCUSDT", conditional=False) == []
