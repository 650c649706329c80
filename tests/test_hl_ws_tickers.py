"""Tickers and the account's state over `/hl/ws`: ccxt pro's `watch_ticker` (the venue's
`activeAssetCtx` channel) served by paper from the figures `metaAndAssetCtxs` answers with, and
relayed from the strict fake venue through one venue subscription; ccxt pro's `watch_positions`
and `watch_balance` (the `clearinghouseState` user channel) from the guarded account."""

from __future__ import annotations

import asyncio

import pytest

from engine.domain.model import OrderIntent
from engine.venues.connector import OrderRequest
from tests.paper_hl_venue import ADDRESS, paper_venue
from tests.test_hl_ws import Client, Gateway, close_sdk, make_gateway, relayed, sdk_info  # noqa: F401 (fixtures)
from tests.waiting import eventually

SYMBOL = "BTC/USDC:USDC"
BTC_CTX = {"type": "activeAssetCtx", "coin": "BTC"}


def ccxt_pro(gateway: Gateway, **options):
    import ccxt.pro

    return ccxt.pro.hyperliquid({"urls": {"api": {"public": gateway.url, "private": gateway.url,
                                                  "ws": {"public": gateway.ws_url}}}, **options})


# ---- activeAssetCtx on paper ------------------------------------------------------------------


async def test_ccxt_pro_watch_ticker_gets_the_paper_mark_and_follows_it(make_gateway):
    gateway = await make_gateway()
    exchange = ccxt_pro(gateway)
    try:
        ticker = await asyncio.wait_for(exchange.watch_ticker(SYMBOL), 20)
        gateway.paper.set_mark("BTC", 51_234.5)
        moved = await eventually(lambda: exchange.tickers[SYMBOL]["info"]["markPx"] == "51234.5"
                                 and exchange.tickers[SYMBOL], what="the new mark in ccxt's ticker")
    finally:
        await exchange.close()
    bid, ask = gateway.venue.market.best("BTC", 50_000.0)
    assert ticker["symbol"] == SYMBOL and ticker["info"]["markPx"] == "50000.0"
    assert (ticker["close"], ticker["bid"], ticker["ask"]) == (50_000.0, bid, ask)  # where a taker fills on paper
    assert ticker["previousClose"] == 50_000.0 and ticker["info"]["oraclePx"] == "50000.0"
    new_bid, new_ask = gateway.venue.market.best("BTC", 51_234.5)
    assert (moved["close"], moved["bid"], moved["ask"]) == (51_234.5, new_bid, new_ask)


async def test_the_context_is_the_one_meta_and_asset_ctxs_answers_and_follows_marks_and_fills():
    paper, api, clock = paper_venue()
    got: list[dict] = []

    async def next_turn() -> None:
        await asyncio.sleep(0)  # one turn of the loop: the coalesced message goes out
        await asyncio.sleep(0)

    stop = api.subscribe(dict(BTC_CTX), got.append)
    await next_turn()
    _meta, ctxs = await api.info({"type": "metaAndAssetCtxs"})
    assert got == [{"channel": "activeAssetCtx", "data": {"coin": "BTC", "ctx": ctxs[0]}}]  # BTC is asset 0
    clock.advance(1)
    paper.set_mark("BTC", 65_100.0)
    paper.set_mark("BTC", 65_200.0)  # one step of the feed: one message, the last mark
    paper.set_mark("ETH", 3_300.0)  # another coin: nothing here
    await next_turn()
    assert len(got) == 2 and got[1]["data"]["ctx"]["markPx"] == "65200.0"
    paper.set_mark("BTC", 65_200.0)  # the same mark: nothing changed, nothing is sent
    await next_turn()
    assert len(got) == 2
    await paper.place(OrderRequest("BTC", "buy", "0.5", "66000", "Ioc"))
    await next_turn()
    ctx = got[-1]["data"]["ctx"]
    assert len(got) == 3 and ctx["openInterest"] == "0.5"  # the paper account's position is the open interest
    assert float(ctx["dayNtlVlm"]) == pytest.approx(0.5 * 65_200 * (1 + paper.slippage), rel=1e-4)
    stop()
    paper.set_mark("BTC", 66_000.0)
    await next_turn()
    assert len(got) == 3 and not api.channels.watching_marks  # nobody listens: nothing is done per mark
    await api.close()


async def test_a_ticker_of_a_coin_paper_does_not_list_is_refused(make_gateway):
    gateway = await make_gateway()
    async with Client(gateway.ws_url) as client:
        await client.send({"method": "subscribe", "subscription": {"type": "activeAssetCtx", "coin": "NOPE"}})
        error = await client.next_on("error")
    assert error["data"].startswith("Error parsing JSON into valid websocket request: ")
    assert '"coin":"NOPE"' in error["data"]


# ---- activeAssetCtx relayed from the venue ----------------------------------------------------


async def test_two_bots_get_the_venue_s_ticker_through_one_venue_subscription(make_gateway, relayed, fake):
    gateway = await make_gateway(relayed)
    fake.set_mark("BTC", 61_234.5)
    ctxs: dict[str, list] = {"alpha": [], "beta": []}
    alpha, beta = sdk_info(gateway), sdk_info(gateway)

    def at(name: str) -> list:
        return [m["data"] for m in ctxs[name] if m["data"]["ctx"]["markPx"] == "61234.5"]
    try:
        alpha.subscribe(dict(BTC_CTX), ctxs["alpha"].append)
        beta.subscribe(dict(BTC_CTX), ctxs["beta"].append)
        await eventually(lambda: at("alpha") and at("beta"), what="the venue's mark at both SDK clients")
        assert fake.subscriptions() == [BTC_CTX]  # one venue subscription for both bots
    finally:
        await close_sdk(alpha, beta)
    for data in (at("alpha")[0], at("beta")[0]):
        assert data["coin"] == "BTC"
        assert (data["ctx"]["oraclePx"], data["ctx"]["midPx"]) == ("61234.5", "61234.5")
        bid, ask = (float(px) for px in data["ctx"]["impactPxs"])
        assert bid < 61_234.5 < ask
    await eventually(lambda: fake.subscriptions() == [], what="the venue unsubscribed when both left")


# ---- clearinghouseState: the guarded account -------------------------------------------------


async def test_ccxt_pro_watches_its_position_and_balance(make_gateway):
    gateway = await make_gateway()
    bought = await gateway.service.submit(OrderIntent(market="BTC", side="buy", size=0.01))
    assert bought.status == 200
    state = (await gateway.venue.info({"type": "clearinghouseState", "user": gateway.account}))
    positions_client = ccxt_pro(gateway, walletAddress=gateway.account)
    balance_client = ccxt_pro(gateway, walletAddress=gateway.account)
    try:
        positions, balance = await asyncio.wait_for(asyncio.gather(positions_client.watch_positions(),
                                                                   balance_client.watch_balance()), 20)
    finally:
        await positions_client.close()
        await balance_client.close()
    (position,) = positions
    assert (position["symbol"], position["side"], position["contracts"]) == (SYMBOL, "long", 0.01)
    assert position["entryPrice"] == pytest.approx(50_000.0 * (1 + gateway.paper.slippage), rel=1e-4)
    assert balance["USDC"]["total"] == float(state["marginSummary"]["accountValue"])
    assert balance["USDC"]["free"] == float(state["withdrawable"])


async def test_the_account_state_is_sent_on_subscribe_and_after_each_fill(make_gateway):
    gateway = await make_gateway()
    subscription = {"type": "clearinghouseState", "user": gateway.account}
    async with Client(gateway.ws_url) as client:
        await client.send({"method": "subscribe", "subscription": subscription})
        first = await client.next_on("clearinghouseState", what="the account now")
        await gateway.service.submit(OrderIntent(market="ETH", side="sell", size=0.5))
        after = await client.next_on("clearinghouseState", after=1, what="the account after the fill")
        await client.send({"method": "unsubscribe", "subscription": subscription})
        await client.next_on("subscriptionResponse", after=1, what="the unsubscribe")
        await gateway.service.submit(OrderIntent(market="ETH", side="buy", size=0.5))
        await client.send({"method": "ping"})
        await client.next_on("pong")
    assert client.received.index(client.on("subscriptionResponse")[0]) < client.received.index(first)
    assert first["data"]["user"] == gateway.account.lower() and first["data"]["dex"] == ""
    assert first["data"]["clearinghouseState"]["assetPositions"] == []
    assert first["data"]["clearinghouseState"]["marginSummary"]["accountValue"] == "100000.0"
    (held,) = after["data"]["clearinghouseState"]["assetPositions"]
    assert (held["position"]["coin"], held["position"]["szi"]) == ("ETH", "-0.5")
    assert len(client.on("clearinghouseState")) == 2  # nothing after the unsubscribe


async def test_a_stranger_s_account_state_is_confirmed_and_never_sent(make_gateway):
    gateway = await make_gateway()
    stranger = {"type": "clearinghouseState", "user": ADDRESS}
    own = {"type": "clearinghouseState", "user": gateway.account}
    async with Client(gateway.ws_url) as client:
        await client.send({"method": "subscribe", "subscription": stranger})
        ack = await client.next_on("subscriptionResponse")
        await client.send({"method": "subscribe", "subscription": own})  # the account's own: the yardstick
        await client.next_on("clearinghouseState", what="the guarded account now")
        await gateway.service.submit(OrderIntent(market="ETH", side="sell", size=0.5))
        await client.next_on("clearinghouseState", after=1, what="the guarded account after the fill")
    assert ack["data"] == {"method": "subscribe", "subscription": stranger}
    assert {m["data"]["user"] for m in client.on("clearinghouseState")} == {gateway.account.lower()}
