"""The paper exchange behaves like Hyperliquid where a trader's money is at stake: it
liquidates exactly where the margin math says, charges funding and fees, enforces reduce-only
and increments, and its fault switches produce the failures the engine must survive."""

import math

import pytest

from engine.risk.book import Book
from engine.venues.connector import (
    Connector, ConnectorError, FeedRestored, FeedStale, FundingPaid, Liquidated, MarkUpdated, OrderAccepted,
    OrderCancelled, OrderFilled, OrderRejected,
)
from engine.domain.margin import MarginTable, liquidation_price
from tests.builders import MARKETS, T0, paper_at_marks as venue, venue_order as order

HOUR = 3600.0
NEXT_HOUR = math.ceil(T0 / HOUR) * HOUR  # T0 is 800 s past an hour boundary


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


async def test_it_is_a_connector_and_its_snapshot_loads_into_the_book():
    ex, clock, _ = venue()
    assert isinstance(ex, Connector)
    await ex.place(order("buy", "2", "51000"))
    snap = await ex.snapshot()
    book = Book(await ex.meta())
    book.load(snap.account, snap.positions, snap.open_orders, marks=snap.marks, at=snap.time)
    assert book.position("BTC").size == 2
    assert book.position("BTC").max_leverage == 40
    assert book.equity == pytest.approx(ex.account_value())
    assert book.maintenance_margin == pytest.approx(ex.maintenance_margin())


# ---- liquidation (SPEC 7) ------------------------------------------------------------------


@pytest.mark.parametrize("side", ["buy", "sell"])
async def test_liquidation_happens_exactly_at_the_predicted_price(side):
    ex, clock, events = venue(equity=100_000.0)
    ack = await ex.place(order(side, "20", "60000" if side == "buy" else "40000"))  # 1M notional: 10x
    assert ack.status == "filled"
    snap = await ex.snapshot()
    book = Book(MARKETS)
    book.load(snap.account, snap.positions, snap.open_orders, marks=snap.marks, at=snap.time)
    liq = book.liquidation_px("BTC")
    # The same figure straight from the margin formula, flat 40x table: rate 1/80.
    size = 20.0 if side == "buy" else -20.0
    rate = MarginTable.flat(40).maintenance_rate(1e6)
    direct = liquidation_price(50_000.0, size, snap.account.account_value - 1e6 * rate, rate)
    assert liq == pytest.approx(direct)
    assert 45_000 < liq < 46_000 if side == "buy" else 54_000 < liq < 55_000

    step = -100 if side == "buy" else 100
    safe = math.floor(liq) + 1 if side == "buy" else math.ceil(liq) - 1  # one $1 tick on the safe side
    px = 50_000
    while (px + step > safe) if side == "buy" else (px + step < safe):
        px += step
        ex.set_mark("BTC", px)
    ex.set_mark("BTC", safe)
    assert of(events, Liquidated) == []
    assert ex.position_size("BTC") == size

    value_before = ex.account_value()
    beyond = math.ceil(liq) - 1 if side == "buy" else math.floor(liq) + 1  # one tick past it
    entry = snap.positions[0].entry_px
    ex.set_mark("BTC", beyond)
    [liquidated] = of(events, Liquidated)
    assert liquidated.coin == "BTC" and liquidated.size == size and liquidated.px == beyond
    assert liquidated.loss == pytest.approx(size * (entry - beyond))
    assert ex.position_size("BTC") == 0
    # The account keeps what it was worth at the liquidation mark: deposit − fees − loss.
    fees = 20 * entry * 0.00045
    assert ex.account_value() == pytest.approx(100_000 - fees - liquidated.loss)
    assert ex.account_value() == pytest.approx(value_before + size * (beyond - safe))
    assert liquidated.account_value == pytest.approx(ex.account_value())


async def test_cross_liquidation_closes_every_position_and_cancels_resting_orders():
    ex, clock, events = venue(equity=20_000.0)
    await ex.place(order("buy", "3", "51000"))  # 150k BTC
    await ex.place(order("buy", "20", "3100", coin="ETH"))  # 60k ETH
    await ex.place(order("buy", "1", "40000", tif="Gtc"))  # resting bid far below
    ex.set_mark("BTC", 44_000)  # only BTC falls, and it takes the whole cross account down
    assert {e.coin for e in of(events, Liquidated)} == {"BTC", "ETH"}
    assert [e.reason for e in of(events, OrderCancelled)] == ["liquidation"]
    snap = await ex.snapshot()
    assert snap.positions == () and snap.open_orders == ()
    assert snap.account.account_value > 0


async def test_a_position_with_margin_to_spare_is_not_liquidated():
    ex, clock, events = venue()
    await ex.place(order("buy", "2", "51000"))  # 1x
    for px in range(50_000, 30_000, -1_000):
        ex.set_mark("BTC", px)
    assert of(events, Liquidated) == []
    assert ex.position_size("BTC") == 2


# ---- funding -------------------------------------------------------------------------------


async def test_funding_is_paid_each_hour_longs_pay_shorts_receive():
    ex, clock, events = venue()
    await ex.place(order("buy", "1", "51000"))
    await ex.place(order("sell", "10", "2900", coin="ETH"))
    ex.set_funding_rate("BTC", 0.0001)
    ex.set_funding_rate("ETH", 0.0002)
    value = ex.account_value()

    clock.set(NEXT_HOUR - 1)
    ex.poll()
    assert of(events, FundingPaid) == []  # nothing before the hour

    clock.set(NEXT_HOUR)
    ex.poll()
    paid = {e.coin: e for e in of(events, FundingPaid)}
    assert paid["BTC"].payment == pytest.approx(1 * 50_000 * 0.0001)  # the long pays 5 USD
    assert paid["ETH"].payment == pytest.approx(-10 * 3_000 * 0.0002)  # the short receives 6 USD
    assert paid["BTC"].time == NEXT_HOUR
    assert ex.account_value() == pytest.approx(value - 5 + 6)

    clock.set(NEXT_HOUR + 2 * HOUR + 10)  # two more boundaries passed: two more payments each
    ex.poll()
    assert len(of(events, FundingPaid)) == 6
    snap = await ex.snapshot()
    btc = next(p for p in snap.positions if p.coin == "BTC")
    assert btc.cum_funding == pytest.approx(15.0)


async def test_funding_rate_is_capped_at_four_percent_an_hour():
    ex, clock, events = venue()
    await ex.place(order("buy", "1", "51000"))
    ex.set_funding_rate("BTC", 0.10)
    clock.set(NEXT_HOUR)
    ex.poll()
    [paid] = of(events, FundingPaid)
    assert paid.rate == 0.04
    assert paid.payment == pytest.approx(50_000 * 0.04)


async def test_funding_that_eats_the_margin_liquidates():
    ex, clock, events = venue(equity=10_000.0)
    await ex.place(order("buy", "3", "51000"))  # 150k notional on 10k: maintenance 1875
    ex.set_funding_rate("BTC", 0.04)  # 6000 USD an hour
    clock.set(NEXT_HOUR + HOUR)
    ex.poll()
    assert len(of(events, FundingPaid)) == 2
    assert of(events, Liquidated)
    assert ex.position_size("BTC") == 0


# ---- orders: fills, fees, reduce-only, increments, margin ---------------------------------


async def test_taker_and_maker_fees_and_realized_pnl_on_close():
    ex, clock, events = venue(slippage=0.0)
    await ex.place(order("buy", "1", "51000"))
    [opened] = of(events, OrderFilled)
    assert opened.px == 50_000 and opened.fee == pytest.approx(50_000 * 0.00045) and not opened.maker

    await ex.place(order("sell", "1", "52000", tif="Gtc"))  # rests above the market
    ex.set_mark("BTC", 52_100)  # walks through it: filled at its limit, as maker
    closed = of(events, OrderFilled)[-1]
    assert closed.px == 52_000 and closed.maker
    assert closed.fee == pytest.approx(52_000 * 0.00015)
    assert closed.realized_pnl == pytest.approx(2_000)
    assert ex.account_value() == pytest.approx(100_000 + 2_000 - opened.fee - closed.fee)


async def test_market_fill_pays_slippage_but_never_past_the_limit():
    ex, clock, events = venue(slippage=0.001)
    ack = await ex.place(order("buy", "1", "51000"))
    assert ack.avg_px == pytest.approx(50_050)  # mark + 0.1%
    ack = await ex.place(order("buy", "1", "50020"))
    assert ack.avg_px == 50_020  # the limit caps the slippage
    ack = await ex.place(order("buy", "1", "49990"))
    assert ack.status == "rejected" and ack.code == "IocCancel"  # a buy below the mark cannot match


async def test_reduce_only_that_would_increase_is_rejected_like_hyperliquid():
    ex, clock, events = venue()
    ack = await ex.place(order("sell", "1", "49000", reduce_only=True))  # flat: it would open a short
    assert ack.status == "rejected" and ack.error == "Reduce only order would increase position."
    await ex.place(order("buy", "1", "51000"))
    ack = await ex.place(order("buy", "1", "51000", reduce_only=True))  # adds to the long
    assert ack.code == "ReduceOnly"
    assert ex.position_size("BTC") == 1


async def test_reduce_only_larger_than_the_position_only_closes_it():
    ex, clock, events = venue()
    await ex.place(order("buy", "1", "51000"))
    ack = await ex.place(order("sell", "3", "49000", reduce_only=True))
    assert ack.status == "filled" and ack.filled_size == 1
    assert ex.position_size("BTC") == 0  # flat, never flipped short


async def test_dust_position_can_always_be_closed_reduce_only():
    ex, clock, events = venue()
    await ex.place(order("buy", "0.0003", "51000"))  # 15 USD
    await ex.place(order("sell", "0.0002", "50000"))  # 10 USD; leaves 0.0001 BTC = 5 USD
    assert (await ex.place(order("sell", "0.0001", "49000"))).code == "MinTradeNtl"  # not as a plain order
    ack = await ex.place(order("sell", "0.0001", "49000", reduce_only=True))
    assert ack.status == "filled" and ex.position_size("BTC") == 0


@pytest.mark.parametrize("size, px, code, message", [
    ("0.000001", "51000", "InvalidSize", "Order has invalid size."),  # BTC lot is 0.00001
    ("0.001", "51000.5", "Tick", "Price must be divisible by tick size."),  # 6 figures and a decimal
    ("0.0001", "51000", "MinTradeNtl", "Order must have minimum value of $10."),  # 5 USD
])
async def test_increments_and_the_ten_dollar_minimum_are_rejected(size, px, code, message):
    ex, clock, events = venue()
    ack = await ex.place(order("buy", size, px))
    assert ack.status == "rejected" and ack.code == code and ack.error.startswith(message)
    [rejected] = of(events, OrderRejected)
    assert rejected.code == code
    assert ex.position_size("BTC") == 0


async def test_order_needing_more_margin_than_available_is_rejected():
    ex, clock, events = venue(equity=10_000.0)
    await ex.set_leverage("BTC", 5)
    ack = await ex.place(order("buy", "1.1", "51000"))  # 55k notional needs 11k at 5x
    assert ack.code == "PerpMargin" and ack.error.startswith("Insufficient margin to place order.")
    assert (await ex.place(order("buy", "0.9", "51000"))).status == "filled"
    # Closing needs no margin, even when the account could not open it again.
    assert (await ex.place(order("sell", "0.9", "49000"))).status == "filled"


async def test_leverage_above_the_market_maximum_is_refused():
    ex, clock, events = venue()
    with pytest.raises(ConnectorError) as err:
        await ex.set_leverage("BTC", 50)
    assert err.value.code == "InvalidLeverage"
    with pytest.raises(ConnectorError):
        await ex.set_leverage("BTC", 10, isolated=True)
    await ex.set_leverage("BTC", 40)
    assert (await ex.snapshot()).positions == ()


async def test_partial_fills_leave_the_right_remainder():
    ex, clock, events = venue(partial_fill_ratio=0.5)
    ack = await ex.place(order("buy", "1", "51000"))  # IOC: half fills, the rest is cancelled
    assert ack.status == "partially_filled" and ack.filled_size == 0.5
    assert of(events, OrderFilled)[-1].remaining == 0.5
    assert of(events, OrderCancelled)[-1].oid == ack.oid
    assert ex.position_size("BTC") == 0.5

    ack = await ex.place(order("buy", "1", "51000", tif="Gtc"))  # GTC: half fills, the rest rests
    assert ack.status == "resting" and ack.filled_size == 0.5 and ack.remaining == 0.5
    [resting] = (await ex.snapshot()).open_orders
    assert resting.oid == ack.oid and resting.size == 0.5
    ex.set_mark("BTC", 50_100)  # still through the limit: half of what is left
    fill = of(events, OrderFilled)[-1]
    assert fill.size == 0.25 and fill.remaining == 0.25 and fill.px == 51_000
    assert ex.position_size("BTC") == 1.25


async def test_order_lifecycle_events_for_a_resting_order():
    ex, clock, events = venue()
    ack = await ex.place(order("buy", "0.1", "49000", tif="Gtc", client_id="bot-1"))
    assert ack.status == "resting"
    ex.set_mark("BTC", 48_900)
    kinds = [type(e) for e in events if not isinstance(e, MarkUpdated)]
    assert kinds == [OrderAccepted, OrderFilled]
    assert of(events, OrderFilled)[0].remaining == 0 and of(events, OrderFilled)[0].client_id == "bot-1"
    assert (await ex.snapshot()).open_orders == ()


async def test_same_client_id_never_makes_a_second_order():
    ex, clock, events = venue()
    await ex.place(order("buy", "0.1", "51000", client_id="x"))
    ack = await ex.place(order("buy", "0.1", "51000", client_id="x"))
    assert ack.code == "DuplicateCloid"
    assert ex.position_size("BTC") == 0.1


async def test_post_only_that_would_cross_is_rejected():
    ex, clock, events = venue()
    ack = await ex.place(order("buy", "0.1", "50010", tif="Alo"))
    assert ack.code == "BadAloPx"
    assert (await ex.place(order("buy", "0.1", "49990", tif="Alo"))).status == "resting"


async def test_cancel_and_cancel_all():
    ex, clock, events = venue()
    a = await ex.place(order("buy", "0.1", "49000", tif="Gtc"))
    await ex.place(order("sell", "0.1", "52000", tif="Gtc"))
    assert (await ex.cancel("BTC", a.oid)).cancelled
    assert not (await ex.cancel("BTC", a.oid)).cancelled
    assert await ex.cancel_all() == 1
    assert (await ex.snapshot()).open_orders == ()


# ---- fault injection -----------------------------------------------------------------------


async def test_frozen_marks_go_stale_then_recover():
    ex, clock, events = venue(stale_after=10.0)
    ex.faults.freeze_marks = True
    assert ex.set_mark("BTC", 40_000) is False
    clock.advance(9)
    ex.poll()
    assert of(events, FeedStale) == []
    clock.advance(1)
    ex.poll()
    [stale] = of(events, FeedStale)
    assert stale.since == T0 and stale.reason == "marks frozen"
    snap = await ex.snapshot()
    assert snap.marks["BTC"] == 50_000 and snap.mark_times["BTC"] == T0  # old, and says so

    ex.faults.freeze_marks = False
    ex.set_mark("BTC", 40_000)
    assert isinstance(events[-2], FeedRestored) and events[-1] == MarkUpdated("BTC", 40_000, T0 + 10)


async def test_dropped_feed_delivers_nothing_but_the_venue_keeps_trading():
    ex, clock, events = venue(equity=10_000.0)
    await ex.place(order("buy", "3", "51000"))
    events.clear()
    ex.faults.drop_feed = True
    ex.set_mark("BTC", 45_000)  # liquidated while the engine is blind
    assert events == []
    assert ex.position_size("BTC") == 0
    ex.faults.drop_feed = False
    assert events == [FeedRestored(T0, events_lost=True)]
    assert (await ex.snapshot()).positions == ()  # reconciling shows the truth


async def test_reject_next_rejects_exactly_n_orders():
    ex, clock, events = venue()
    ex.faults.reject_next(2, "Venue busy, try again.")
    first = await ex.place(order("buy", "0.1", "51000"))
    second = await ex.place(order("buy", "0.1", "51000"))
    third = await ex.place(order("buy", "0.1", "51000"))
    assert [first.error, second.error] == ["Venue busy, try again."] * 2
    assert third.status == "filled"
    assert ex.position_size("BTC") == pytest.approx(0.1)


async def test_delayed_order_lands_later_at_the_price_of_that_moment():
    ex, clock, events = venue(slippage=0.0)
    ex.faults.delay_orders(2.0)
    ack = await ex.place(order("buy", "1", "52000"))
    assert ack.status == "pending"
    clock.advance(1)
    ex.set_mark("BTC", 50_500)
    assert of(events, OrderFilled) == [] and ex.position_size("BTC") == 0
    clock.advance(1)
    ex.poll()
    [fill] = of(events, OrderFilled)
    assert fill.oid == ack.oid and fill.px == 50_500 and fill.time == T0 + 2


async def test_delayed_order_can_be_cancelled_before_it_lands():
    ex, clock, events = venue()
    ex.faults.delay_orders(5.0)
    ack = await ex.place(order("buy", "1", "52000"))
    assert (await ex.cancel("BTC", ack.oid)).cancelled
    clock.advance(10)
    ex.poll()
    assert of(events, OrderFilled) == [] and ex.position_size("BTC") == 0


async def test_dead_man_switch_cancels_resting_orders_unless_rearmed():
    ex, clock, events = venue()
    await ex.place(order("buy", "0.1", "49000", tif="Gtc"))
    await ex.arm_dead_man(60)
    clock.advance(40)
    await ex.arm_dead_man(60)  # re-armed: now due at +100
    clock.advance(59)
    ex.poll()
    assert len((await ex.snapshot()).open_orders) == 1
    clock.advance(1)
    ex.poll()
    assert (await ex.snapshot()).open_orders == ()
    assert of(events, OrderCancelled)[-1].reason == "dead-man switch expired"
