"""The websocket side against the fake server: reconnects with every subscription, recovers
fills lost in a gap, goes stale when silent, pings, and streams marks and funding."""

import json

import pytest

from engine.venues.connector import FeedRestored, FeedStale, MarksUpdated, MarkUpdated, OrderFilled, OrderRequest
from engine.venues.hyperliquid.feed import PING_SECONDS
from engine.venues.hyperliquid.http import BACKOFF_MAX_SECONDS
from fake_hyperliquid.harness import MASTER, config_for, of_type, running, wait_for


def subscribed(fake):
    return sorted(json.dumps(s, sort_keys=True) for s in fake.subscriptions())


async def test_a_dropped_websocket_is_back_with_every_subscription_within_5_seconds(fake):
    async with running(fake) as (connector, events):
        await wait_for(lambda: len(subscribed(fake)) == 5, what="the first subscriptions")
        before = subscribed(fake)
        user = MASTER.address
        assert [json.loads(s) for s in before] == sorted(
            [{"type": "allMids"}, {"type": "orderUpdates", "user": user}, {"type": "userFills", "user": user},
             {"type": "userEvents", "user": user}, {"type": "activeAssetCtx", "coin": "BTC"}],
            key=lambda s: json.dumps(s, sort_keys=True))
        fake.drop_connections()
        took = await wait_for(lambda: fake.connections_opened == 2 and subscribed(fake) == before, timeout=5,
                              what="every subscription on a new connection")
        await wait_for(lambda: of_type(events, FeedRestored), what="FeedRestored")
        await wait_for(lambda: connector.feed.acknowledged == set(before), what="the venue to confirm each one")
    assert took < 5
    assert of_type(events, FeedRestored)[-1].events_lost  # the engine reconciles from a snapshot


async def test_fills_made_while_disconnected_are_told_once_after_the_reconnect(fake):
    # the reconnect's userFills snapshot holds the fill made in the gap: unseen and no older
    # than the newest fill known (by the venue's time), it is told once so its PnL counts
    async with running(fake) as (connector, events):
        await connector.place(OrderRequest("ETH", "buy", "0.05", "1999", "Ioc", client_id="before"))
        await wait_for(lambda: of_type(events, OrderFilled), what="the live fill")
        fake.refuse_connections = True
        fake.drop_connections()
        await wait_for(lambda: fake.connections_refused >= 1, what="a refused reconnect")
        ack = await connector.place(OrderRequest("ETH", "sell", "0.05", "1900", "Ioc", client_id="in-the-gap"))
        assert ack.status == "filled" and len(of_type(events, OrderFilled)) == 1
        fake.refuse_connections = False
        await wait_for(lambda: len(of_type(events, OrderFilled)) == 2, what="the missed fill")
        fake.drop_connections()  # another reconnect: its snapshot repeats both fills
        await wait_for(lambda: len(of_type(events, FeedRestored)) >= 2, what="the second reconnect")
    before, gap = of_type(events, OrderFilled)
    assert (gap.client_id, gap.size, gap.coin, gap.remaining) == ("in-the-gap", 0.05, "ETH", 0.0)
    assert before.client_id == "before"


async def test_an_order_that_fills_before_the_first_fills_snapshot_is_told_once(fake):
    # a loaded machine: the order is placed and filled before the websocket's first userFills
    # snapshot arrives; the fill is in that snapshot, and it is ours and new, not history
    fake.refuse_connections = True
    async with running(fake) as (connector, events):
        ack = await connector.place(OrderRequest("ETH", "buy", "0.05", "1999", "Ioc", client_id="early"))
        assert ack.status == "filled" and not of_type(events, OrderFilled)
        fake.refuse_connections = False  # the feed's next attempt comes after its backoff, at most its cap
        await wait_for(lambda: of_type(events, OrderFilled), timeout=BACKOFF_MAX_SECONDS + 5,
                       what="the fill, from the first snapshot")
        fake.drop_connections()  # the next snapshot repeats it: still told once
        await wait_for(lambda: len(of_type(events, FeedRestored)) >= 2, what="the reconnect after it")
    (fill,) = of_type(events, OrderFilled)
    assert (fill.client_id, fill.size, fill.coin) == ("early", 0.05, "ETH") and fill.tid is not None


async def test_the_first_fills_snapshot_is_history(fake):
    async with running(fake) as (connector, events):
        await connector.place(OrderRequest("ETH", "buy", "0.05", "1999", "Ioc", client_id="first"))
        await wait_for(lambda: of_type(events, OrderFilled), what="the live fill")
    async with running(fake) as (connector, events):  # a restart: the venue's history is not new
        (order,) = fake.orders()
        await wait_for(lambda: connector.stream.filled(str(order.oid))[0] > 0, what="the fills snapshot")
    assert not of_type(events, OrderFilled)


async def test_fills_seen_live_are_not_repeated_by_the_snapshot_after_a_reconnect(fake):
    async with running(fake) as (connector, events):
        await connector.place(OrderRequest("ETH", "buy", "0.05", "1999", "Ioc", client_id="live"))
        await wait_for(lambda: of_type(events, OrderFilled), what="the live fill")
        fake.drop_connections()
        await wait_for(lambda: of_type(events, FeedRestored), what="the reconnect")
    assert len(of_type(events, OrderFilled)) == 1


async def test_a_silent_feed_goes_stale_then_recovers(fake):
    async with running(fake) as (connector, events):
        fake.silent = True
        await wait_for(lambda: of_type(events, FeedStale), timeout=3, what="FeedStale")
        fake.silent = False
        await wait_for(lambda: of_type(events, FeedRestored), what="FeedRestored")
    stale = of_type(events, FeedStale)[0]
    assert "no market data" in stale.reason and stale.since <= stale.time
    assert of_type(events, FeedStale)[0] in events[: events.index(of_type(events, FeedRestored)[0])]


async def test_a_connection_silent_for_long_is_replaced(fake):
    async with running(fake, config_for(fake, stale_after_seconds=0.25)) as (connector, events):
        fake.silent = True
        await wait_for(lambda: fake.connections_opened >= 2, timeout=4, what="a new connection")
        fake.silent = False
        await wait_for(lambda: of_type(events, FeedRestored), what="FeedRestored")
    assert of_type(events, FeedRestored)[-1].events_lost


async def test_pings_are_sent_and_answered(fake):
    assert PING_SECONDS == 50  # Hyperliquid closes a connection silent for 60 s
    async with running(fake, ping_seconds=0.05) as (connector, _):
        await wait_for(lambda: connector.feed.pongs >= 2, what="two pongs")
    assert fake.pongs_sent >= 2


async def test_marks_and_funding_stream_in(fake):
    async with running(fake) as (connector, events):
        fake.set_mark("BTC", 31_000.0)
        fake.set_mark("ETH", 2_000.0)
        fake.set_funding("BTC", 0.0001)
        await wait_for(lambda: connector.stream.marks.get("ETH") == 2_000.0, what="the ETH mid")
        await wait_for(lambda: connector.stream.funding.get("BTC") == 0.0001, what="BTC funding")
        snap = await connector.snapshot()
    marks = {(e.coin, e.px) for e in of_type(events, MarkUpdated)}  # activeAssetCtx
    marks |= {mark for e in of_type(events, MarksUpdated) for mark in e.marks.items()}  # allMids, a batch a message
    assert ("BTC", 31_000.0) in marks and ("ETH", 2_000.0) in marks
    assert snap.marks["BTC"] == 31_000.0 and snap.funding_rates["BTC"] == 0.0001
    assert "@1" not in snap.marks and len(snap.marks) == 28  # perps only
