"""Hyperliquid's limits as a trader meets them: the address request budget (kept locally with a
reserve for exits, the venue's refusal mapped to RateLimited and survived), the dead-man switch
refused for volume or by its daily cap (reported, not re-sent every 20 s), fills snapshots that
are history, the venue's error texts, and `orderStatus` sizes that say nothing of fills.

Runs on `StubVenue` (tests/hl_stub_venue.py): the venue's answers hand-written from
its docs and error texts."""

from __future__ import annotations

import time

import pytest

from engine.domain.clock import ManualClock
from engine.venues.connector import DEAD_MAN_DAILY_FIRES, DeadManStatus, OrderFilled, OrderRejected, OrderRequest
from engine.venues.hyperliquid import dead_man as dead_man_module
from engine.venues.hyperliquid.budget import AddressBudget, AddressRefused, address_weight
from engine.venues.hyperliquid.parse import (
    OrderStatus, ack_from_response, ack_from_status, error_code, parse_order_status, split_asset,
)
from engine.venues.hyperliquid.stream import StreamTranslator
from hl_stub_venue import StubVenue, buy, connector_on

TOO_MANY = ("Too many cumulative requests sent (10213 > 10200) for cumulative volume traded $200.00. "
            "Place taker orders to free up 1 request per USDC traded.")
VOLUME = "Cannot set scheduled cancel time until enough volume traded. Required: $1000000. Traded: $2854.57."


def err(text: str) -> dict:
    return {"status": "err", "response": text}


# ---- the address budget ---------------------------------------------------------------------


def test_ordinary_requests_stop_at_the_reserve_and_exits_go_on():
    clock = [0.0]
    budget = AddressBudget(reserve=10, urgent_spacing=10, monotonic=lambda: clock[0])
    budget.update(used=985, cap=1000)
    budget.check(5, urgent=False)  # 10 left: exactly the reserve
    with pytest.raises(AddressRefused):
        budget.check(1, urgent=False)
    budget.check(1, urgent=True)  # a cancel or a reduce-only order may spend the reserve
    assert budget.view().remaining == 9
    budget.traded(500.0)  # one request per USDC traded
    budget.check(1, urgent=False)
    assert budget.view().cap == 1500


def test_after_the_venues_refusal_only_urgent_requests_one_per_10_s():
    clock = [100.0]
    budget = AddressBudget(reserve=10, urgent_spacing=10, monotonic=lambda: clock[0])
    budget.venue_refused(TOO_MANY)
    view = budget.view()
    assert (view.used, view.cap, view.volume, view.refused, view.low) == (10213, 10200, 200.0, True, True)
    with pytest.raises(AddressRefused):
        budget.check(1, urgent=False)
    assert budget.wait(True) == 0
    budget.check(1, urgent=True)
    assert budget.wait(True) == pytest.approx(10)
    clock[0] += 10
    assert budget.wait(True) == 0
    budget.update(used=10300, cap=20000)  # traded since: room again
    budget.check(1, urgent=False)


def test_a_batch_spends_one_per_order_or_cancel():
    assert address_weight({"type": "cancel", "cancels": [{}] * 7}) == 7
    assert address_weight({"type": "scheduleCancel"}) == 1


async def test_the_venues_refusal_is_a_rejected_order_coded_ratelimited_and_a_cancel_still_goes_out():
    venue = StubVenue()
    connector, events = connector_on(venue)
    await connector.start()
    connector.address.urgent_spacing = 0.3  # one urgent request per 10 s, shortened for the test
    resting = await connector.place(buy(client_id="before"))
    venue.exchange_answers.append(err(TOO_MANY))  # HTTP 200, top-level err
    refused = await connector.place(buy(client_id="refused"))
    assert refused.status == "rejected" and refused.code == "RateLimited" and "Too many cumulative" in refused.error
    (event,) = [e for e in events if isinstance(e, OrderRejected)]
    assert (event.client_id, event.code) == ("refused", "RateLimited")
    sent = len(venue.posted)
    again = await connector.place(buy(client_id="after"))  # an ordinary order: not sent at all
    assert again.code == "RateLimited" and len(venue.posted) == sent
    cancelled = await connector.cancel("BTC", resting.oid)  # the exit still goes out
    assert cancelled.cancelled and venue.posted[-1]["action"]["type"] == "cancel"
    started = time.monotonic()
    exit_ = await connector.place(OrderRequest("BTC", "sell", "0.01", "60000", "Ioc", reduce_only=True, client_id="exit"))
    assert exit_.status == "resting" and venue.posted[-1]["action"]["type"] == "order"
    assert time.monotonic() - started >= 0.25  # it waited its turn after the cancel
    assert connector.rate_budget().address.refused


async def test_ordinary_orders_are_refused_locally_when_only_the_reserve_is_left():
    venue = StubVenue(userRateLimit={"cumVlm": "100.0", "nRequestsUsed": 10_000, "nRequestsCap": 10_100})
    connector, _ = connector_on(venue)
    await connector.start()
    ack = await connector.place(buy())
    assert ack.code == "RateLimited" and "reserve" in ack.error and venue.posted == []
    exit_ = await connector.place(OrderRequest("BTC", "sell", "0.01", "60000", "Ioc", reduce_only=True, client_id="x"))
    assert exit_.status == "resting" and len(venue.posted) == 1  # reduce-only spends the reserve
    view = connector.rate_budget()
    assert view.address.used == 10_001 and view.address.cap == 10_100 and view.address.low


def test_the_top_level_refusal_maps_to_ratelimited():
    ack = ack_from_response(OrderRequest("BTC", "buy", "1", "1", client_id="c"), err(TOO_MANY))
    assert ack.code == "RateLimited"
    other = ack_from_response(OrderRequest("BTC", "buy", "1", "1", client_id="c"), err("Something else"))
    assert other.code == "ActionRejected"


# ---- the dead-man switch ---------------------------------------------------------------------


async def test_a_volume_refusal_is_reported_with_the_venues_reason_and_not_sent_again_for_10_minutes(monkeypatch):
    venue = StubVenue()
    connector, _ = connector_on(venue)
    await connector.start()
    venue.exchange_answers.append(err(VOLUME))
    status = await connector.arm_dead_man(60)
    assert (status.armed, status.reason) == (False, VOLUME)
    assert connector.dead_man.reason == VOLUME and connector.dead_man_deadline is None
    for _ in range(5):  # the engine asks every 20 s
        assert (await connector.arm_dead_man(60)).reason == VOLUME
    assert len([p for p in venue.posted if p["action"]["type"] == "scheduleCancel"]) == 1
    later = time.monotonic() + 601
    monkeypatch.setattr(dead_man_module.time, "monotonic", lambda: later)
    status = await connector.arm_dead_man(60)  # ten minutes on: asked again, and now it takes it
    assert status.armed and status.until == pytest.approx(time.time() + 60, abs=2)
    assert len([p for p in venue.posted if p["action"]["type"] == "scheduleCancel"]) == 2


async def test_disarming_on_a_clean_stop_says_cleared():
    connector, _ = connector_on(StubVenue())
    await connector.start()
    assert (await connector.arm_dead_man(60)).armed
    status = await connector.arm_dead_man(None)
    assert (status.armed, status.reason) == (False, "cleared")


def scheduled_cancel(oid: int, at_ms: int) -> dict:
    return {"order": {"coin": "BTC", "side": "B", "limitPx": "60000.0", "sz": "0.01", "oid": oid, "timestamp": 1,
                      "origSz": "0.01"}, "status": "scheduledCancel", "statusTimestamp": at_ms}


async def test_fires_are_counted_once_per_fire_and_the_daily_cap_stops_the_arming():
    venue = StubVenue()
    connector, _ = connector_on(venue)
    await connector.start()
    now_ms = int(time.time() * 1000)
    base = max(now_ms // 86_400_000 * 86_400_000, now_ms - 50_000)  # this UTC day, whatever the hour
    # one fire cancels three orders at one time
    connector.stream.handle("orderUpdates", [scheduled_cancel(i, base + i) for i in range(3)])
    assert connector.dead_man.fired_today == 1 and not connector.dead_man.armed
    for n in range(1, DEAD_MAN_DAILY_FIRES):
        connector.stream.handle("orderUpdates", [scheduled_cancel(100 + n, base + n * 2_000)])
    assert connector.dead_man.fired_today == DEAD_MAN_DAILY_FIRES
    before = len(venue.posted)
    status = await connector.arm_dead_man(60)
    assert not status.armed and "10 times today" in status.reason and status.fired_today == DEAD_MAN_DAILY_FIRES
    assert len(venue.posted) == before  # not sent


async def test_a_low_address_budget_spares_the_rearm_while_the_deadline_is_far():
    venue = StubVenue(userRateLimit={"cumVlm": "0.0", "nRequestsUsed": 9_000, "nRequestsCap": 10_000})
    connector, _ = connector_on(venue)
    await connector.start()
    first = await connector.arm_dead_man(60)
    assert first.armed
    again = await connector.arm_dead_man(60)  # 60 s still ahead: not worth a request
    assert again.until == first.until and len(venue.posted) == 1
    connector._dead_man.confirmed = DeadManStatus(True, time.time() + 20, None, 0)  # 20 s left
    assert (await connector.arm_dead_man(60)).until > time.time() + 50 and len(venue.posted) == 2


# ---- the fills snapshot -------------------------------------------------------------------------


def fill(tid: int, oid: int = 7, sz: str = "0.1", px: str = "65000.0", t: int = 1) -> dict:
    return {"coin": "BTC", "px": px, "sz": sz, "side": "B", "time": t, "startPosition": "0.0", "dir": "Open Long",
            "closedPnl": "0.0", "hash": f"0x{tid:064x}", "oid": oid, "crossed": True, "fee": "1.0", "tid": tid,
            "feeToken": "USDC"}


def test_a_fills_snapshot_is_history_and_is_never_counted_again_across_a_reconnect():
    events: list = []
    stream = StreamTranslator("0xabc", ManualClock(1000.0), events.append, markets={"BTC"})
    future = int(time.time() * 1000) + 3_600_000  # a venue clock ahead of ours must not make history new
    stream.handle("userFills", {"isSnapshot": True, "user": "0xabc", "fills": [fill(1, t=future), fill(2, t=future)]})
    assert events == []
    stream.handle("userFills", {"user": "0xabc", "fills": [fill(3)]})
    # the reconnect's snapshot repeats all three, and a live copy of the last one follows
    stream.handle("userFills", {"isSnapshot": True, "user": "0xabc", "fills": [fill(1), fill(2), fill(3)]})
    stream.handle("userFills", {"user": "0xabc", "fills": [fill(3)]})
    fills = [e for e in events if isinstance(e, OrderFilled)]
    assert len(fills) == 1 and fills[0].size == 0.1
    assert stream.filled("7") == (pytest.approx(0.3), pytest.approx(65000.0))


def test_an_old_live_fill_is_still_told_whatever_its_time():
    events: list = []
    stream = StreamTranslator("0xabc", ManualClock(1000.0), events.append, markets={"BTC"})
    stream.handle("userFills", {"user": "0xabc", "fills": [fill(9, t=1)]})  # venue time far behind ours
    assert len(events) == 1


# ---- texts and sizes ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, code", [
    ("Order has zero size.", "InvalidSize"),
    ("No liquidity available for market order. asset=0", "MarketOrderNoLiquidity"),
    ("Invalid TP/SL price. asset=1", "InvalidTpSlPx"),
    ("Order could not immediately match against any resting orders. asset=110001", "IocCancel"),
    ("Insufficient margin to place order. asset=3", "PerpMargin"),
    ("Order price cannot be more than 95% away from the oracle price asset=2", "OracleBand"),
    ("Cannot increase position when open interest is at cap. asset=4", "OpenInterestCap"),
    ("Too many cumulative requests sent (1 > 0)", "RateLimited"),
])
def test_error_texts_map_to_codes_whatever_their_asset_suffix(text, code):
    assert error_code(text) == code


def test_the_asset_suffix_is_split_off():
    assert split_asset("Order has invalid price. asset=120001") == ("Order has invalid price.", 120001)
    assert split_asset("Order has invalid price.") == ("Order has invalid price.", None)


def test_order_status_sizes_are_not_fills():
    request = OrderRequest("BTC", "buy", "1", "60000", client_id="c")
    # a resting order that filled 0.4: orderStatus still shows sz 1.0 (its size at open)
    answer = {"status": "order", "order": {"order": {"coin": "BTC", "side": "B", "limitPx": "60000.0", "sz": "1.0",
                                                     "oid": 5, "timestamp": 1, "origSz": "1.0"},
                                           "status": "open", "statusTimestamp": 2}}
    status = parse_order_status(answer)
    assert ack_from_status(request, status).filled_size == 0  # nothing claimed from sz
    ack = ack_from_status(request, OrderStatus("5", "open", 1.0, 0.4, 59990.0))
    assert (ack.status, ack.filled_size, ack.remaining, ack.avg_px) == ("resting", 0.4, 0.6, 59990.0)
    cancelled = ack_from_status(request, OrderStatus("5", "canceled", 1.0, 0.4, 59990.0))
    assert cancelled.status == "partially_filled" and cancelled.filled_size == 0.4


async def test_a_buy_whose_price_rounds_to_zero_is_refused_before_signing():
    venue = StubVenue()
    connector, _ = connector_on(venue)
    await connector.start()
    ack = await connector.place(OrderRequest("BTC", "buy", "0.01", "0.01", "Gtc", client_id="tiny"))
    assert ack.code == "InvalidPrice" and venue.posted == []


# ---- against the strict fake venue -----------------------------------------------------------

from fake_hyperliquid.harness import AGENT, AGENT_ENV, MASTER, running, start_fake  # noqa: E402


@pytest.fixture
def nearly_spent(monkeypatch):
    """A new account (10,000 requests, nothing traded) that has used 9,000 of them."""
    monkeypatch.setenv(AGENT_ENV, AGENT.key.hex())
    server = start_fake(requests_used={MASTER.address: 9_000})
    yield server
    server.stop()


async def test_the_venues_address_refusal_is_survived_and_a_cancel_still_goes_out(nearly_spent):
    fake = nearly_spent
    async with running(fake) as (connector, events):
        connector.address.urgent_spacing = 0.0
        resting = await connector.place(OrderRequest("ETH", "buy", "0.05", "1500", "Gtc", client_id="rest"))
        assert resting.status == "resting"
        # another bot on the same address spent the rest: our count is behind the venue's
        fake.call(lambda: setattr(fake.venue.accounts[MASTER.address.lower()], "requests_used", 10_050))
        for i in range(3):  # over the cap the venue still lets one request through every 10 s
            refused = await connector.place(OrderRequest("ETH", "buy", "0.05", "1500", "Gtc", client_id=f"over-{i}"))
            if refused.status == "rejected":
                break
        assert (refused.status, refused.code) == ("rejected", "RateLimited")
        assert "Too many cumulative requests" in refused.error
        sent = len(fake.actions())
        local = await connector.place(OrderRequest("ETH", "buy", "0.05", "1500", "Gtc", client_id="after"))
        assert local.code == "RateLimited" and len(fake.actions()) == sent  # never sent
        cancelled = await connector.cancel("ETH", resting.oid)
        snap = await connector.snapshot()
    assert cancelled.cancelled and resting.oid not in {o.oid for o in snap.open_orders}
    assert [e.code for e in events if isinstance(e, OrderRejected)] == ["RateLimited", "RateLimited"]
    assert connector.rate_budget().address.refused
