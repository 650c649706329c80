"""The Hyperliquid pass-through behind `/hl` (HyperliquidRelay) against the strict fake venue:
bots on one IP share one request per question and one venue subscription per feed, the
venue's refusals reach them in its words, and the engine's share of the IP budget is kept."""

from __future__ import annotations

import asyncio
import json

import pytest

from engine.venues.connector import OrderRequest
from engine.venues.hl_api import InfoRefused
from engine.venues.hyperliquid.budget import RateBudget
from engine.venues.hyperliquid.relay import STATIC_TTL_SECONDS, HyperliquidRelay
from fake_hyperliquid.harness import MASTER, config_for, running
from tests.waiting import eventually

BOOK = {"type": "l2Book", "coin": "BTC"}  # the info request
BTC_BOOK = {"type": "l2Book", "coin": "BTC"}  # the subscription


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def relay_for(fake, **kw) -> HyperliquidRelay:
    return HyperliquidRelay.for_config(config_for(fake), rng=lambda: 0.0, **kw)


@pytest.fixture
async def relay(fake):
    relay = relay_for(fake)
    yield relay
    await relay.close()


def subscribed(fake) -> list[dict]:
    return sorted(fake.subscriptions(), key=lambda s: json.dumps(s, sort_keys=True))


# ---- /info -------------------------------------------------------------------------------------


async def test_two_bots_asking_for_the_same_book_at_once_cost_one_venue_request(fake, relay):
    first, second = await asyncio.gather(relay.info(BOOK), relay.info({"coin": "BTC", "type": "l2Book"}))
    assert fake.info_requests == [BOOK]
    assert first == second and first["coin"] == "BTC"
    assert first["levels"][0] and first["levels"][1]  # bids and asks
    first["levels"].clear()  # each caller has its own copy
    assert (await relay.info(BOOK))["levels"][0]


async def test_a_cached_book_is_asked_again_once_its_half_second_is_over(fake):
    clock = Clock()
    relay = relay_for(fake, monotonic=clock)
    try:
        before = await relay.info(BOOK)
        fake.set_mark("BTC", 61_000.0)
        clock.now += 0.4
        assert await relay.info(BOOK) == before  # still fresh: no request
        assert len(fake.info_requests) == 1
        clock.now += 0.2
        after = await relay.info(BOOK)
        assert len(fake.info_requests) == 2
        assert abs(float(after["levels"][1][0]["px"]) / 61_000 - 1) < 0.01  # the book that moved
    finally:
        await relay.close()


async def test_meta_is_kept_a_minute(fake):
    clock = Clock()
    relay = relay_for(fake, monotonic=clock)
    try:
        meta = await relay.info({"type": "meta"})
        clock.now += STATIC_TTL_SECONDS - 1
        assert await relay.info({"type": "meta"}) == meta
        clock.now += 2
        await relay.info({"type": "meta"})
    finally:
        await relay.close()
    assert fake.info_requests == [{"type": "meta"}] * 2
    assert any(asset["name"] == "BTC" for asset in meta["universe"])


async def test_a_body_the_venue_cannot_read_comes_back_as_its_422_and_text(fake, relay):
    with pytest.raises(InfoRefused) as refused:
        await relay.info({"type": "noSuchRequest"})
    assert refused.value.status == 422
    assert refused.value.message == "Failed to deserialize the JSON body into the target type"


async def test_account_reads_are_never_served_from_the_cache(fake, relay):
    # a bot that just placed an order must see it in its next read
    body = {"type": "openOrders", "user": MASTER.address}
    assert await relay.info(body) == []
    async with running(fake) as (connector, _events):
        await connector.place(OrderRequest("BTC", "buy", "0.001", "30000", "Gtc", client_id="resting"))
        (order,) = await relay.info(body)
    assert order["coin"] == "BTC" and order["side"] == "B"


async def test_a_venue_5xx_is_retried_and_the_bot_gets_the_answer(fake, relay):
    fake.fail_next("info", 502)
    mids = await relay.info({"type": "allMids"})
    assert "BTC" in mids and len(fake.info_requests) == 2


async def test_bots_reads_stop_short_of_the_engines_share_of_the_ip_budget(fake):
    budget = RateBudget()
    relay = relay_for(fake, budget=budget)
    try:
        budget.try_spend(830, urgent=True)  # 370 of 1200 left; 120 + 240 are kept for the engine
        await relay.info(BOOK)  # weighs 2: fits
        with pytest.raises(InfoRefused) as refused:
            await relay.info({"type": "meta"})  # weighs 20: it would eat into the engine's share
    finally:
        await relay.close()
    assert refused.value.status == 429 and "kept for the engine" in refused.value.message
    assert fake.info_requests == [BOOK]  # the refused read never reached the venue
    assert budget.view().remaining == 368


async def test_a_venue_429_pauses_bots_reads_and_reaches_the_bot(fake):
    budget = RateBudget()
    relay = relay_for(fake, budget=budget)
    try:
        fake.fail_next("info", 429)
        with pytest.raises(InfoRefused) as first:
            await relay.info(BOOK)
        with pytest.raises(InfoRefused) as second:
            await relay.info({"type": "allMids"})
    finally:
        await relay.close()
    assert first.value.status == 429 and second.value.status == 429
    assert len(fake.info_requests) == 1  # the pause kept the second one home


# ---- websocket channels ------------------------------------------------------------------------


async def test_two_subscribers_of_a_book_share_one_venue_subscription_and_both_get_it(fake, relay):
    alpha, beta = [], []
    relay.subscribe(BTC_BOOK, alpha.append)
    relay.subscribe({"coin": "BTC", "type": "l2Book"}, beta.append)
    await eventually(lambda: alpha and beta, what="the book at both subscribers")
    assert subscribed(fake) == [BTC_BOOK]
    assert fake.connections_opened == 1
    for message in (alpha[0], beta[0]):
        assert message["channel"] == "l2Book" and message["data"]["coin"] == "BTC"
        assert message["data"]["levels"][0] and message["data"]["levels"][1]


async def test_the_last_unsubscribe_unsubscribes_the_venue(fake, relay):
    alpha, beta = [], []
    stop_alpha = relay.subscribe(BTC_BOOK, alpha.append)
    stop_beta = relay.subscribe(BTC_BOOK, beta.append)
    await eventually(lambda: subscribed(fake) == [BTC_BOOK], what="the venue subscription")
    stop_alpha()
    stop_alpha()  # twice is once
    seen = len(beta)
    await eventually(lambda: len(beta) > seen, what="books still flowing to the other subscriber")
    assert subscribed(fake) == [BTC_BOOK]
    stop_beta()
    await eventually(lambda: subscribed(fake) == [], what="the venue unsubscribed")
    assert relay.channels.subscribers(BTC_BOOK) == 0


async def test_after_the_venue_drops_the_socket_the_relay_reconnects_and_resubscribes(fake, relay):
    books, mids = [], []
    relay.subscribe(BTC_BOOK, books.append)
    relay.subscribe({"type": "allMids"}, mids.append)
    await eventually(lambda: books and mids, what="the first messages")
    fake.drop_connections()
    seen = len(books)
    await eventually(lambda: fake.connections_opened == 2 and len(subscribed(fake)) == 2, what="the resubscription")
    await eventually(lambda: len(books) > seen, what="books after the reconnect")
    assert subscribed(fake) == sorted([BTC_BOOK, {"type": "allMids"}], key=lambda s: json.dumps(s, sort_keys=True))


async def test_books_of_two_precisions_never_mix_on_one_connection(fake, relay):
    # a book message names only its coin: two variants of one coin's book go on two connections
    full, coarse = [], []
    relay.subscribe(BTC_BOOK, full.append)
    relay.subscribe({**BTC_BOOK, "nSigFigs": 3}, coarse.append)
    await eventually(lambda: full and coarse, what="both books")
    assert fake.connections_opened == 2 and len(relay.channels.lanes) == 2
    assert all(len(lane.wanted) == 1 for lane in relay.channels.lanes)


async def test_trades_bbo_and_candles_are_relayed(fake, relay):
    trades, bbo, candles = [], [], []
    relay.subscribe({"type": "trades", "coin": "ETH"}, trades.append)
    relay.subscribe({"type": "bbo", "coin": "BTC"}, bbo.append)
    relay.subscribe({"type": "candle", "coin": "BTC", "interval": "1m"}, candles.append)
    await eventually(lambda: bbo and candles and len(subscribed(fake)) == 3, what="bbo and candles")
    async with running(fake) as (connector, _events):
        await connector.place(OrderRequest("ETH", "buy", "0.05", "1999", "Ioc", client_id="taker"))
    await eventually(lambda: trades, what="the trade")
    (trade,) = trades[0]["data"]
    assert (trade["coin"], trade["side"], trade["sz"]) == ("ETH", "B", "0.05")
    bid, ask = bbo[0]["data"]["bbo"]
    assert float(bid["px"]) < float(ask["px"])
    candle = candles[-1]["data"]
    assert (candle["s"], candle["i"]) == ("BTC", "1m") and float(candle["l"]) <= float(candle["h"])


async def test_a_subscription_the_venue_would_refuse_is_refused_in_its_words(relay):
    for bad in ({"type": "candle", "coin": "BTC", "interval": "7m"}, {"type": "l2Book"}, {"type": "webData9"}):
        with pytest.raises(InfoRefused) as refused:
            relay.subscribe(bad, lambda _m: None)
        frame = json.dumps({"method": "subscribe", "subscription": bad}, separators=(",", ":"))
        assert refused.value.message == f"Error parsing JSON into valid websocket request: {frame}"


async def test_the_venue_s_refusal_of_a_subscription_reaches_its_subscribers(fake, relay):
    unknown, books = [], []
    relay.subscribe({"type": "l2Book", "coin": "NOPE"}, unknown.append)
    relay.subscribe(BTC_BOOK, books.append)
    await eventually(lambda: unknown and books, what="the refusal and the book")
    assert unknown == [{"channel": "error", "data": 'Invalid subscription {"type": "l2Book", "coin": "NOPE"}'}]
    assert all(m["channel"] == "l2Book" for m in books)


async def test_the_relay_pings_the_venue_when_it_has_nothing_else_to_say(fake):
    relay = relay_for(fake, ping_seconds=0.1)
    try:
        relay.subscribe({"type": "allMids"}, lambda _m: None)
        await eventually(lambda: fake.pongs_sent >= 2, what="pings answered")
        assert relay.channels.lanes[0].pongs >= 1
    finally:
        await relay.close()
