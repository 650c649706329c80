"""ccxt's own Hyperliquid client, unmodified but for its URLs, trading on the paper exchange
through perpguard's `/hl` API with a bot key registered in perpguard. Freqtrade and passivbot
drive Hyperliquid through this same client."""

from __future__ import annotations

import ccxt
import httpx
import pytest

from tests.engine_server import MASTER
from tests.hl_gateway import ALPHA, BETA, hl  # noqa: F401 (the fixture)

SYMBOL = "BTC/USDC:USDC"


def _client(hl, wallet) -> ccxt.hyperliquid:
    return ccxt.hyperliquid({"urls": {"api": {"public": hl.url, "private": hl.url}},
                             "walletAddress": hl.account, "privateKey": wallet.key.hex()})


def test_ccxt_trades_cancels_and_edits_on_paper_through_perpguard(hl):
    client = _client(hl, BETA)
    client.load_markets()
    mid = client.fetch_ticker(SYMBOL)["last"]
    resting = client.create_order(SYMBOL, "limit", "buy", 0.01, round(mid * 0.8))
    assert resting["id"]  # ccxt reads no status from the venue's {"resting": {"oid"}}: the open orders tell
    assert [o["id"] for o in client.fetch_open_orders(SYMBOL)] == [resting["id"]]
    edited = client.edit_order(resting["id"], SYMBOL, "limit", "buy", 0.02, round(mid * 0.79))
    (now_open,) = client.fetch_open_orders(SYMBOL)
    assert now_open["id"] == edited["id"] != resting["id"] and now_open["amount"] == 0.02
    client.cancel_order(now_open["id"], SYMBOL)
    assert client.fetch_open_orders(SYMBOL) == []

    bought = client.create_order(SYMBOL, "market", "buy", 0.01, mid)
    assert bought["filled"] == 0.01 and bought["average"] > 0
    (position,) = client.fetch_positions([SYMBOL])
    assert position["contracts"] == 0.01 and position["side"] == "long"
    balance = client.fetch_balance()
    assert balance["USDC"]["total"] > 0
    trades = client.fetch_my_trades(SYMBOL)
    assert trades[-1]["order"] == bought["id"] and trades[-1]["side"] == "buy"
    listed = httpx.get(hl.engine.url + "/v1/bots", headers={"X-Master-Password": MASTER}).json()
    assert {b["name"]: b["signs_as"] for b in listed}["beta"] == "mainnet"  # ccxt outside sandbox mode


def test_ccxt_raises_with_perpguard_s_reason_for_a_denied_order(hl):
    client = _client(hl, ALPHA)  # alpha's own policy caps its positions at $1k
    client.load_markets()
    mid = client.fetch_ticker(SYMBOL)["last"]
    with pytest.raises(ccxt.BaseError) as denied:
        client.create_order(SYMBOL, "market", "buy", 0.03, mid)
    assert "perpguard: POLICY_DENIED: " in str(denied.value)
    assert client.fetch_positions([SYMBOL]) == []


def test_ccxt_cannot_withdraw_through_perpguard(hl):
    client = _client(hl, BETA)
    client.load_markets()
    with pytest.raises(ccxt.BaseError) as refused:
        client.withdraw("USDC", 10, BETA.address)
    assert "perpguard: REFUSED: withdraw3" in str(refused.value)


def test_ccxt_market_orders_pass_the_default_price_band(hl):
    hl.policy({"id": "band", "type": "PRICE_BAND", "rules": {"maxDeviation": 0.05}})  # the default set's
    client = _client(hl, BETA)
    client.load_markets()
    last = client.fetch_ticker(SYMBOL)["last"]
    bought = client.create_order(SYMBOL, "market", "buy", 0.01, last)  # ccxt: an IOC at the ask + 5%
    assert bought["filled"] == 0.01
    sold = client.create_order(SYMBOL, "market", "sell", 0.01, last, {"reduceOnly": True})
    assert sold["filled"] == 0.01 and client.fetch_positions([SYMBOL]) == []


def test_ccxt_knows_a_reduce_only_order_that_would_increase_the_position_as_an_invalid_order(hl):
    client = _client(hl, BETA)
    client.load_markets()
    last = client.fetch_ticker(SYMBOL)["last"]
    with pytest.raises(ccxt.InvalidOrder) as refused:  # not a generic, retried ExchangeError
        client.create_order(SYMBOL, "limit", "sell", 0.01, round(last * 1.01), {"reduceOnly": True})
    assert "perpguard: POLICY_DENIED: Reduce only order would increase position." in str(refused.value)
