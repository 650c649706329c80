"""The official Hyperliquid SDK, unmodified, trading on the paper exchange through perpguard's
`/hl` API: it signs with a bot key registered in perpguard (a key Hyperliquid never saw), and
perpguard checks the signature and nonce, gates each order and answers as the venue does."""

from __future__ import annotations

import time

import httpx
import pytest
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.signing import get_timestamp_ms, order_request_to_order_wire, order_wires_to_order_action, \
    sign_l1_action
from hyperliquid.utils.types import Cloid

from tests.engine_server import MASTER
from tests.hl_gateway import ALPHA, BETA, STRANGER, hl  # noqa: F401 (the fixture)
from tests.waiting import eventually_sync


def _exchange(hl, wallet) -> Exchange:
    return Exchange(wallet, hl.url, account_address=hl.account)


def _mid(hl, coin: str = "BTC") -> float:
    return float(Info(hl.url, skip_ws=True).all_mids()[coin])


def test_orders_rest_fill_cancel_and_modify_as_on_the_venue(hl):
    bot, info = _exchange(hl, BETA), Info(hl.url, skip_ws=True)
    far = round(_mid(hl) * 0.8)
    resting = bot.order("BTC", True, 0.01, far, {"limit": {"tif": "Gtc"}})
    assert resting["status"] == "ok", resting
    oid = resting["response"]["data"]["statuses"][0]["resting"]["oid"]
    assert isinstance(oid, int)
    assert [o["oid"] for o in info.open_orders(hl.account)] == [oid]
    assert bot.cancel("BTC", oid)["response"]["data"]["statuses"] == ["success"]
    assert info.open_orders(hl.account) == []

    cloid = Cloid.from_str("0x" + "12" * 16)
    placed = bot.order("BTC", True, 0.01, far, {"limit": {"tif": "Gtc"}}, cloid=cloid)
    assert placed["response"]["data"]["statuses"][0]["resting"]["cloid"] == cloid.to_raw()  # the bot's cloid is kept
    by_cloid = info.query_order_by_cloid(hl.account, cloid)
    assert by_cloid["status"] == "order" and by_cloid["order"]["order"]["cloid"] == cloid.to_raw()
    assert bot.cancel_by_cloid("BTC", cloid)["response"]["data"]["statuses"] == ["success"]

    first = bot.order("BTC", False, 0.01, round(_mid(hl) * 1.2), {"limit": {"tif": "Gtc"}})
    old = first["response"]["data"]["statuses"][0]["resting"]["oid"]
    assert bot.modify_order(old, "BTC", False, 0.02, round(_mid(hl) * 1.25), {"limit": {"tif": "Gtc"}})["status"] == "ok"
    (moved,) = info.open_orders(hl.account)
    assert moved["oid"] != old and moved["sz"] == "0.02" and moved["side"] == "A"
    bot.cancel("BTC", moved["oid"])

    filled = bot.market_open("BTC", True, 0.01)
    status = filled["response"]["data"]["statuses"][0]["filled"]
    assert status["totalSz"] == "0.01" and float(status["avgPx"]) > 0
    (position,) = info.user_state(hl.account)["assetPositions"]
    assert position["position"]["coin"] == "BTC" and float(position["position"]["szi"]) == 0.01
    fills = info.user_fills(hl.account)
    assert fills[0]["oid"] == status["oid"] and fills[0]["side"] == "B"
    listed = httpx.get(hl.engine.url + "/v1/bots", headers={"X-Master-Password": MASTER}).json()
    assert {b["name"]: b["signs_as"] for b in listed} == {"alpha": None, "beta": "testnet"}  # the SDK off mainnet


def test_a_denied_order_tells_the_bot_which_limit_and_by_how_much(hl):
    too_big = _exchange(hl, BETA).order("BTC", True, 0.5, round(_mid(hl) * 1.01), {"limit": {"tif": "Ioc"}})
    (status,) = too_big["response"]["data"]["statuses"]
    assert status["error"].startswith("perpguard: POLICY_DENIED: ")
    assert "PERP_MAX_POSITION_USD limit of 20000 (projected " in status["error"]
    assert Info(hl.url, skip_ws=True).user_state(hl.account)["assetPositions"] == []


def test_a_bot_scoped_policy_denies_one_bot_and_not_the_other(hl):
    px = round(_mid(hl) * 1.01)
    alpha = _exchange(hl, ALPHA).order("BTC", True, 0.03, px, {"limit": {"tif": "Ioc"}})  # ~$2k: above alpha's $1k
    assert alpha["response"]["data"]["statuses"][0]["error"].startswith("perpguard: POLICY_DENIED: ")
    assert "limit of 1000" in alpha["response"]["data"]["statuses"][0]["error"]  # alpha's own cap, not the account's
    beta = _exchange(hl, BETA).order("BTC", True, 0.03, px, {"limit": {"tif": "Ioc"}})
    assert "filled" in beta["response"]["data"]["statuses"][0]


def test_a_held_order_names_its_pending_id_and_fills_later(hl):
    cloid = Cloid.from_str("0x" + "34" * 16)
    held = _exchange(hl, BETA).order("BTC", True, 0.15, round(_mid(hl) * 1.02), {"limit": {"tif": "Ioc"}},
                                     cloid=cloid)  # ~$10k: DELAY 1 s
    (status,) = held["response"]["data"]["statuses"]
    assert status["error"].startswith("perpguard: HELD: DELAY: pending ")
    pending_id = status["error"].split("pending ")[1].split()[0]
    assert pending_id in {p["id"] for p in hl.engine.service.service.pending()}
    info = Info(hl.url, skip_ws=True)
    fill = eventually_sync(lambda: next((f for f in info.user_fills(hl.account) if f.get("cloid") == cloid.to_raw()),
                                        None), 15, "the released order's fill")
    assert float(fill["sz"]) == 0.15 and fill["side"] == "B"


def test_a_modify_that_would_be_held_leaves_the_order_as_it_was(hl):
    """A modify replaces the order or leaves it, as on the venue: one into the DELAY tier is
    refused, and the order still rests, unchanged, with nothing held."""
    bot, info = _exchange(hl, BETA), Info(hl.url, skip_ws=True)
    px = round(_mid(hl) * 1.2)
    first = bot.order("BTC", False, 0.01, px, {"limit": {"tif": "Gtc"}})
    oid = first["response"]["data"]["statuses"][0]["resting"]["oid"]
    answer = bot.modify_order(oid, "BTC", False, 0.15, px, {"limit": {"tif": "Gtc"}})  # ~$12k: DELAY
    (status,) = answer["response"]["data"]["statuses"]  # the SDK modifies with batchModify
    assert status["error"].startswith("perpguard: WOULD_HOLD: ") and f"order {oid} rests as it was" in status["error"]
    assert [(o["oid"], o["sz"]) for o in info.open_orders(hl.account)] == [(oid, "0.01")]
    assert hl.engine.service.service.pending() == []


def test_a_bot_retrying_a_held_order_does_not_queue_it_again(hl):
    hl.policy({"id": "spending", "type": "SPENDING_LIMIT",  # over $6k: held ten minutes
               "rules": {"instant_max_usd": 5_000, "notify_max_usd": 6_000, "delay_max_usd": 15_000, "delay_seconds": 600}})
    bot, ioc = _exchange(hl, BETA), {"limit": {"tif": "Ioc"}}

    def status(answer):
        return answer["response"]["data"]["statuses"][0]
    cloid, px = Cloid.from_str("0x" + "78" * 16), round(_mid(hl) * 1.02)
    first = status(bot.order("BTC", True, 0.15, px, ioc, cloid=cloid))
    assert first["error"].startswith("perpguard: HELD: DELAY: pending ")
    pending_id = first["error"].split("pending ")[1].split()[0]
    assert status(bot.order("BTC", True, 0.15, px, ioc, cloid=cloid)) == first  # the same order by its cloid: its answer
    retried = status(bot.order("BTC", True, 0.16, round(_mid(hl) * 1.021), ioc))  # a retry, a tick later
    assert retried["error"].startswith("perpguard: ALREADY_HELD: ") and pending_id in retried["error"]
    assert "filled" in status(bot.order("BTC", True, 0.01, round(_mid(hl) * 1.02), ioc))  # what passes at once passes
    other = status(bot.order("ETH", False, 3.0, round(_mid(hl, "ETH") * 0.98), ioc))  # another market: its own hold
    assert other["error"].startswith("perpguard: HELD: DELAY: pending ")
    held = [(p["intent"]["market"], p["intent"]["side"]) for p in hl.engine.service.service.pending()]
    assert sorted(held) == [("BTC", "buy"), ("ETH", "sell")]


def test_withdrawals_and_transfers_are_refused(hl):
    bot = _exchange(hl, BETA)
    withdrawal = bot.withdraw_from_bridge(100.0, BETA.address)
    assert withdrawal["status"] == "err" and withdrawal["response"].startswith("perpguard: REFUSED: withdraw3")
    sent = bot.usd_transfer(5.0, STRANGER.address)
    assert sent["status"] == "err" and "usdSend" in sent["response"]
    approve = bot.approve_agent("stolen")[0]
    assert approve["status"] == "err" and "approveAgent" in approve["response"]


def test_twaps_and_actions_that_spend_the_account_s_funds_are_refused(hl):
    bot = _exchange(hl, BETA)
    bid = bot.gossip_priority_bid(0, "127.0.0.1", 1_000_000)
    assert bid["status"] == "err" and bid["response"].startswith("perpguard: REFUSED: gossipPriorityBid")
    twap = {"type": "twapOrder", "twap": {"a": 0, "b": True, "s": "0.01", "r": False, "m": 30, "t": False}}
    for action, why in ((twap, "twapOrder: a TWAP's slices would reach the venue without passing the gate"),
                        ({"type": "reserveRequestWeight", "weight": 1000}, "reserveRequestWeight moves funds")):
        nonce = get_timestamp_ms()
        payload = {"action": action, "nonce": nonce, "signature": sign_l1_action(BETA, action, None, nonce, None, False),
                   "vaultAddress": None}
        answer = httpx.post(hl.url + "/exchange", json=payload).json()
        assert answer["status"] == "err" and answer["response"].startswith(f"perpguard: REFUSED: {why}")
    info = Info(hl.url, skip_ws=True)
    assert info.user_state(hl.account)["assetPositions"] == [] and info.open_orders(hl.account) == []


def test_a_key_perpguard_does_not_know_is_refused_and_nothing_is_sent(hl):
    answer = _exchange(hl, STRANGER).order("BTC", True, 0.01, round(_mid(hl) * 1.01), {"limit": {"tif": "Ioc"}})
    assert answer == {"status": "err", "response": f"User or API Wallet {STRANGER.address.lower()} does not exist."}
    assert Info(hl.url, skip_ws=True).user_state(hl.account)["assetPositions"] == []


def test_a_replayed_or_forged_action_is_refused(hl):
    wire = order_request_to_order_wire({"coin": "BTC", "is_buy": True, "sz": 0.01, "limit_px": round(_mid(hl) * 1.01),
                                        "order_type": {"limit": {"tif": "Ioc"}}, "reduce_only": False}, 0)
    action = order_wires_to_order_action([wire], None)
    nonce = get_timestamp_ms()
    payload = {"action": action, "nonce": nonce, "signature": sign_l1_action(BETA, action, None, nonce, None, False),
               "vaultAddress": None, "expiresAfter": None}
    first = httpx.post(hl.url + "/exchange", json=payload).json()
    assert "filled" in first["response"]["data"]["statuses"][0]
    again = httpx.post(hl.url + "/exchange", json=payload).json()
    assert again == {"status": "err", "response": f"Invalid nonce: duplicate nonce {nonce}"}

    forged = {**payload, "nonce": nonce + 1, "action": {**action, "orders": [{**wire, "s": "0.1"}]}}
    refused = httpx.post(hl.url + "/exchange", json=forged).json()
    assert refused["status"] == "err" and refused["response"].startswith("User or API Wallet ")
    (position,) = Info(hl.url, skip_ws=True).user_state(hl.account)["assetPositions"]
    assert float(position["position"]["szi"]) == 0.01  # one fill: neither the replay nor the forgery went out


def test_leverage_changes_are_gated(hl, tmp_path):
    hl.policy({"id": "lev", "type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 5}})
    bot = _exchange(hl, BETA)
    assert bot.update_leverage(3, "BTC")["status"] == "ok"
    refused = bot.update_leverage(20, "BTC")
    assert refused["status"] == "err" and refused["response"].startswith("perpguard: POLICY_DENIED: ")
    # paper margins every position cross: there is no isolated margin to move, and it says so
    assert bot.update_isolated_margin(10, "BTC") == {"status": "err",
                                                     "response": "The paper exchange trades cross margin only."}


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"action": {"type": "order"}}',
                                  b'{"action": {"type": "order", "orders": []}, "nonce": 1, "signature": 5}'])
def test_unreadable_bodies_get_the_venue_s_422_text(hl, body):
    answer = httpx.post(hl.url + "/exchange", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 422
    assert answer.text.startswith("Failed to deserialize the JSON body into the target type: ")


def test_reduce_only_a_bot_may_keep_or_lower_a_held_position_s_leverage_and_close_it_but_not_raise_it(hl):
    bot = _exchange(hl, BETA)
    assert bot.update_leverage(3, "BTC")["status"] == "ok"
    assert bot.market_open("BTC", True, 0.01)["status"] == "ok"
    engine = hl.engine.service.engine

    async def stop_trading() -> None:  # as a breaker does: positions stay, only reducing orders pass
        engine.trading.reduce_only("test breaker", time.time())
    hl.engine.call(stop_trading())
    assert engine.trading.state.value == "REDUCE_ONLY"

    assert bot.update_leverage(3, "BTC")["status"] == "ok"  # what ccxt's Freqtrade sends before each order
    assert bot.update_leverage(2, "BTC")["status"] == "ok"
    raised = bot.update_leverage(3, "BTC")  # back up from 2x: the book knows the venue's 2x already
    assert raised["status"] == "err" and raised["response"].startswith("perpguard: REDUCE_ONLY: ")
    assert bot.update_leverage(5, "ETH")["status"] == "ok"  # nothing held: no entry can use it now
    closed = bot.market_close("BTC")
    assert "filled" in closed["response"]["data"]["statuses"][0]
    assert Info(hl.url, skip_ws=True).user_state(hl.account)["assetPositions"] == []


def test_the_sdk_s_market_orders_pass_the_default_price_band_and_fill(hl):
    hl.policy({"id": "band", "type": "PRICE_BAND", "rules": {"maxDeviation": 0.05}})  # the default set's
    bot, mid = _exchange(hl, BETA), _mid(hl)
    opened = bot.market_open("BTC", True, 0.01)  # an IOC limit 5% above the mid: at the band's edge
    filled = opened["response"]["data"]["statuses"][0]["filled"]
    assert filled["totalSz"] == "0.01" and float(filled["avgPx"]) < mid * 1.01
    closed = bot.market_close("BTC")["response"]["data"]["statuses"][0]
    assert closed["filled"]["totalSz"] == "0.01"
    assert Info(hl.url, skip_ws=True).user_state(hl.account)["assetPositions"] == []
