"""Protection that lives on the exchange: the paper venue's trigger orders (stop-loss and
take-profit) fire on the mark, close what the position is at that moment, act before the
liquidation the same mark would cause, follow Hyperliquid's groupings, and go away with the
position, a sibling, a cancel-all or the dead-man switch."""

import math

import pytest

from engine.risk.book import Book
from engine.venues.connector import (
    Liquidated, OrderAccepted, OrderCancelled, OrderFilled, OrderRejected, OrderRequest, OrderTriggered, Trigger,
)
from engine.venues.paper.exchange import ENTRY_UNFILLED, REDUCE_ONLY_CANCELED, SIBLING_CANCELED, SLIPPAGE, TAKER_FEE
from tests.builders import MARKETS, paper_at_marks as venue, venue_order as order


def stop(side, size, trigger_px, tpsl="sl", limit_px=None, coin="BTC", reduce_only=True, **kw):
    """A market trigger (limit_px None) or a limit one at `limit_px`."""
    market = limit_px is None
    px = limit_px if limit_px is not None else trigger_px
    return OrderRequest(coin, side, str(size), str(px), reduce_only=reduce_only,
                        trigger=Trigger(str(trigger_px), tpsl, is_market=market), **kw)


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


async def test_a_position_stop_closes_the_whole_position_even_after_it_grew():
    ex, clock, events = venue()
    await ex.place(order("buy", "1", "51000"))
    [ack] = await ex.place_group([stop("sell", "0", "48000")], "positionTpsl")  # size irrelevant
    assert ack.status == "resting"
    await ex.place(order("buy", "1", "51000"))  # the position grows to 2 BTC
    [listed] = (await ex.snapshot()).open_orders
    assert (listed.oid, listed.trigger_px, listed.tpsl, listed.size, listed.reduce_only) == (ack.oid, 48_000, "sl", 2, True)

    ex.set_mark("BTC", 48_001)  # not yet
    assert of(events, OrderTriggered) == [] and ex.position_size("BTC") == 2
    events.clear()
    ex.set_mark("BTC", 47_990)
    [fired] = of(events, OrderTriggered)
    assert (fired.oid, fired.mark, fired.trigger_px, fired.tpsl) == (ack.oid, 47_990, 48_000, "sl")
    [fill] = of(events, OrderFilled)
    assert fill.oid == ack.oid and fill.size == 2 and fill.remaining == 0
    assert fill.px == pytest.approx(47_990 * (1 - SLIPPAGE))  # a market stop: at mark, with the slippage
    assert fill.fee == pytest.approx(2 * fill.px * TAKER_FEE) and not fill.maker
    assert ex.position_size("BTC") == 0
    assert (await ex.snapshot()).open_orders == ()


async def test_a_sized_stop_closes_no_more_than_its_size_and_never_more_than_the_position():
    ex, clock, events = venue()
    await ex.place(order("buy", "2", "51000"))
    await ex.place(stop("sell", "1", "48000"))  # an `na` stop for half the position
    await ex.place(order("sell", "1.5", "49000", reduce_only=True))  # the position is now 0.5
    ex.set_mark("BTC", 47_000)
    [fill] = of(events, OrderFilled)[-1:]
    assert fill.size == 0.5 and ex.position_size("BTC") == 0  # clamped to the position: it never flips


@pytest.mark.parametrize("side", ["long", "short"])
async def test_take_profit_fires_on_the_way_up_for_a_long_and_down_for_a_short(side):
    ex, clock, events = venue()
    long = side == "long"
    await ex.place(order("buy" if long else "sell", "1", "51000" if long else "49000"))
    tp = "52000" if long else "48000"
    ack = await ex.place(stop("sell" if long else "buy", "1", tp, tpsl="tp"))
    assert ack.status == "resting"
    ex.set_mark("BTC", 51_999 if long else 48_001)
    assert of(events, OrderTriggered) == []
    ex.set_mark("BTC", 52_100 if long else 47_900)
    [fired] = of(events, OrderTriggered)
    assert fired.tpsl == "tp"
    [fill] = [f for f in of(events, OrderFilled) if f.oid == ack.oid]
    assert fill.size == 1 and fill.realized_pnl > 1_800  # the profit taken
    assert ex.position_size("BTC") == 0


async def test_a_shorts_stop_fires_on_the_way_up():
    ex, clock, events = venue()
    await ex.place(order("sell", "1", "49000"))
    await ex.place_group([stop("buy", "0", "52000")], "positionTpsl")
    ex.set_mark("BTC", 51_999)
    assert ex.position_size("BTC") == -1
    ex.set_mark("BTC", 52_000)  # reaching the trigger price fires it
    assert len(of(events, OrderTriggered)) == 1 and ex.position_size("BTC") == 0


async def test_a_limit_stop_that_the_mark_gaps_through_rests_as_a_reduce_only_limit():
    ex, clock, events = venue()
    await ex.place(order("buy", "1", "51000"))
    ack = await ex.place(stop("sell", "1", "48000", limit_px="47900"))
    events.clear()
    ex.set_mark("BTC", 47_500)  # fired, but a sell at 47,900 is not marketable at 47,500
    assert len(of(events, OrderTriggered)) == 1 and of(events, OrderFilled) == []
    [rests] = (await ex.snapshot()).open_orders
    assert (rests.oid, rests.limit_px, rests.reduce_only, rests.trigger_px) == (ack.oid, 47_900, True, None)
    assert ex.position_size("BTC") == 1
    ex.set_mark("BTC", 47_950)  # the mark comes back through the limit: it fills there, as a maker
    [fill] = of(events, OrderFilled)
    assert (fill.oid, fill.size, fill.px, fill.maker) == (ack.oid, 1, 47_900, True)
    assert ex.position_size("BTC") == 0 and (await ex.snapshot()).open_orders == ()


async def test_a_limit_stop_marketable_when_it_fires_fills_at_once_never_below_its_limit():
    ex, clock, events = venue()
    await ex.place(order("buy", "1", "51000"))
    await ex.place(stop("sell", "1", "48000", limit_px="47940"))
    events.clear()
    ex.set_mark("BTC", 47_950)
    [fill] = of(events, OrderFilled)
    assert fill.px == 47_940  # mark x (1 - slippage) = 47,926 would be below the limit
    assert ex.position_size("BTC") == 0


async def test_triggers_are_refused_as_the_venue_refuses_them():
    ex, clock, events = venue()
    [ack] = await ex.place_group([stop("sell", "0", "48000")], "positionTpsl")
    assert (ack.status, ack.code) == ("rejected", "ReduceOnly") and "no BTC position" in ack.error
    await ex.place(order("buy", "1", "51000"))
    met = await ex.place(stop("sell", "1", "50500"))  # a long's stop above the mark: already met
    assert (met.status, met.code) == ("rejected", "InvalidTpSlPx")
    assert met.error.startswith("Invalid TP/SL price.")
    tp_met = await ex.place(stop("sell", "1", "49000", tpsl="tp"))  # a take-profit below the mark: met
    assert tp_met.code == "InvalidTpSlPx"
    opening = await ex.place(stop("sell", "1", "48000", reduce_only=False))
    assert opening.code == "TriggerNotReduceOnly" and "reduce-only" in opening.error
    wrong_side = await ex.place(stop("buy", "1", "52000"))  # a buy stop would add to the long
    assert wrong_side.code == "ReduceOnly"
    tick = await ex.place(stop("sell", "1", "48000.5"))  # BTC prices are whole dollars at that size
    assert tick.code == "Tick"
    assert len(of(events, OrderRejected)) == 6 and (await ex.snapshot()).open_orders == ()
    assert ex.position_size("BTC") == 1


def _liquidation_px(snap) -> float:
    book = Book(MARKETS)
    book.load(snap.account, snap.positions, snap.open_orders, marks=snap.marks, at=snap.time)
    return book.liquidation_px("BTC")


async def test_a_stop_above_the_liquidation_price_acts_before_the_liquidation_of_the_same_mark():
    """A 10x long with its stop $150 above the liquidation price; one mark gaps $100 below the
    liquidation price, through both. The stop fires first at that mark: the position is closed
    at the gapped mark (the loss taken) and the account is not liquidated. Without the stop the
    same mark liquidates it."""
    outcomes = {}
    for protected in (True, False):
        ex, clock, events = venue()
        await ex.place(order("buy", "20", "60000"))  # 1M notional on 100k: 10x
        liq = _liquidation_px(await ex.snapshot())
        assert 45_000 < liq < 46_000
        if protected:
            ack = await ex.place_group([stop("sell", "0", str(math.ceil(liq) + 150))], "positionTpsl")
            assert ack[0].status == "resting"
        gap = math.floor(liq) - 100
        events.clear()
        ex.set_mark("BTC", gap)
        outcomes[protected] = (of(events, Liquidated), of(events, OrderFilled), ex.account_value())
        assert ex.position_size("BTC") == 0

    liquidations, fills, value = outcomes[True]
    assert liquidations == []
    [fill] = fills
    assert fill.size == 20 and fill.px == pytest.approx(gap * (1 - SLIPPAGE))
    assert 0 < value < 10_000  # most of the equity lost on the gap, but what is left is the trader's
    liquidations, fills, value = outcomes[False]
    assert len(liquidations) == 1 and fills == []


async def test_a_stop_that_fills_past_the_whole_equity_leaves_the_account_at_zero_not_liquidated():
    """When the mark gaps past the liquidation price and past zero equity, the stop still fires
    first at that mark (its fill at the gapped price); the deficit beyond the equity is the
    venue's, as in a liquidation, so the account ends at 0."""
    ex, clock, events = venue()
    await ex.place(order("buy", "20", "60000"))
    await ex.place_group([stop("sell", "0", "46000")], "positionTpsl")
    events.clear()
    ex.set_mark("BTC", 40_000)  # -20%: 200k of loss on 100k of equity
    assert of(events, Liquidated) == []
    assert [f.size for f in of(events, OrderFilled)] == [20]
    assert ex.position_size("BTC") == 0 and ex.account_value() == 0.0


async def test_bracket_children_wait_for_the_entry_and_one_firing_cancels_its_sibling():
    ex, clock, events = venue()
    entry, sl, tp = await ex.place_group(
        [order("buy", "1", "49000", tif="Gtc"), stop("sell", "1", "48000"), stop("sell", "1", "51000", tpsl="tp")],
        "normalTpsl")
    assert [a.status for a in (entry, sl, tp)] == ["resting", "resting", "resting"]
    assert {o.oid for o in (await ex.snapshot()).open_orders} == {entry.oid, sl.oid, tp.oid}
    ex.set_mark("BTC", 51_500)  # the take-profit's price, but its entry has not filled: nothing
    assert of(events, OrderTriggered) == [] and ex.position_size("BTC") == 0
    ex.set_mark("BTC", 49_000)  # the entry fills: the children are live from now on
    assert ex.position_size("BTC") == 1
    events.clear()
    ex.set_mark("BTC", 51_000)
    assert [e.oid for e in of(events, OrderTriggered)] == [tp.oid]
    assert [(e.oid, e.reason) for e in of(events, OrderCancelled)] == [(sl.oid, SIBLING_CANCELED)]
    assert ex.position_size("BTC") == 0 and (await ex.snapshot()).open_orders == ()
    ex.set_mark("BTC", 47_000)  # the stop was cancelled: nothing opens a short
    assert ex.position_size("BTC") == 0


async def test_bracket_of_an_entry_that_fills_on_arrival_rests_at_once():
    ex, clock, events = venue()
    entry, sl, tp = await ex.place_group(
        [order("buy", "1", "51000"), stop("sell", "1", "48000"), stop("sell", "1", "53000", tpsl="tp")], "normalTpsl")
    assert entry.status == "filled" and sl.status == tp.status == "resting"
    ex.set_mark("BTC", 47_900)
    assert [e.oid for e in of(events, OrderTriggered)] == [sl.oid]
    assert ex.position_size("BTC") == 0
    assert [(e.oid, e.reason) for e in of(events, OrderCancelled)] == [(tp.oid, SIBLING_CANCELED)]


async def test_bracket_children_go_with_an_entry_refused_or_cancelled_unfilled():
    ex, clock, events = venue()
    refused = await ex.place_group([order("buy", "1", "49000"), stop("sell", "1", "48000")], "normalTpsl")
    assert refused[0].code == "IocCancel" and (refused[1].status, refused[1].code) == ("rejected", "EntryRejected")
    entry, sl = await ex.place_group([order("buy", "1", "49000", tif="Gtc"), stop("sell", "1", "48000")], "normalTpsl")
    assert (await ex.cancel("BTC", entry.oid)).cancelled
    assert [(e.oid, e.reason) for e in of(events, OrderCancelled)] == [(entry.oid, "cancelled"), (sl.oid, ENTRY_UNFILLED)]
    assert (await ex.snapshot()).open_orders == ()


async def test_a_position_stop_is_cancelled_when_another_order_closes_the_position():
    ex, clock, events = venue()
    await ex.place(order("buy", "1", "51000"))
    [ack] = await ex.place_group([stop("sell", "0", "48000")], "positionTpsl")
    await ex.place(order("sell", "1", "49000", reduce_only=True))  # the bot closes it itself
    [cancelled] = of(events, OrderCancelled)
    assert (cancelled.oid, cancelled.reason) == (ack.oid, REDUCE_ONLY_CANCELED)
    assert (await ex.snapshot()).open_orders == ()
    ex.set_mark("BTC", 47_000)
    assert of(events, OrderTriggered) == [] and ex.position_size("BTC") == 0


async def test_the_dead_man_switch_and_cancel_all_take_trigger_orders_too():
    ex, clock, events = venue()
    await ex.place(order("buy", "1", "51000"))
    await ex.place_group([stop("sell", "0", "48000")], "positionTpsl")
    await ex.place(order("buy", "0.1", "45000", tif="Gtc"))
    await ex.arm_dead_man(60)
    clock.advance(60)
    ex.poll()
    assert (await ex.snapshot()).open_orders == ()
    assert [e.reason for e in of(events, OrderCancelled)] == ["dead-man switch expired"] * 2
    ex.set_mark("BTC", 47_000)  # no stop any more: the position stays open
    assert ex.position_size("BTC") == 1

    await ex.place_group([stop("sell", "0", "46000")], "positionTpsl")
    assert await ex.cancel_all() == 1 and (await ex.snapshot()).open_orders == ()


async def test_a_liquidation_cancels_a_stop_placed_below_it():
    ex, clock, events = venue()
    await ex.place(order("buy", "20", "60000"))
    await ex.place_group([stop("sell", "0", "44000")], "positionTpsl")  # below the liquidation price
    ex.set_mark("BTC", 45_000)
    assert len(of(events, Liquidated)) == 1 and of(events, OrderTriggered) == []
    assert [e.reason for e in of(events, OrderCancelled)] == ["liquidation"]


async def test_a_trigger_can_be_cancelled_and_is_announced_when_accepted():
    ex, clock, events = venue()
    await ex.place(order("buy", "1", "51000"))
    ack = await ex.place(stop("sell", "1", "48000", client_id="stop-1"))
    [accepted] = [e for e in of(events, OrderAccepted) if e.oid == ack.oid]
    assert accepted.reduce_only and accepted.client_id == "stop-1"
    assert (await ex.cancel("BTC", ack.oid)).cancelled
    assert not (await ex.cancel("BTC", ack.oid)).cancelled
    ex.set_mark("BTC", 47_000)
    assert ex.position_size("BTC") == 1


async def test_quiet_window_and_band_account_for_resting_triggers():
    """Only marks that cannot reach a trigger price may be skipped by the replay's fast path."""
    ex, clock, events = venue()
    assert ex.quiet_band("BTC") == (-math.inf, math.inf)
    await ex.place(order("buy", "1", "51000"))
    await ex.place_group([stop("sell", "0", "48000"), stop("sell", "0", "53000", tpsl="tp")], "positionTpsl")
    assert ex.quiet_until() == math.inf  # triggers wait on the price, not the clock
    assert ex.quiet_band("BTC") == (48_000, 53_000)
    assert ex.quiet_band("ETH") == (-math.inf, math.inf)
    clock.advance(3)
    ex.glide_mark("BTC", 47_000)  # even a glide fires them, as a net under the fast path's proof
    assert ex.position_size("BTC") == 0 and len(of(events, OrderTriggered)) == 1


async def test_a_delayed_bracket_lands_together():
    ex, clock, events = venue()
    ex.faults.delay_orders(2.0)
    acks = await ex.place_group([order("buy", "1", "51000"), stop("sell", "1", "48000")], "normalTpsl")
    assert [a.status for a in acks] == ["pending", "pending"]
    clock.advance(2)
    ex.poll()
    assert ex.position_size("BTC") == 1 and [o.trigger_px for o in (await ex.snapshot()).open_orders] == [48_000]
