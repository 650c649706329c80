"""Trigger orders (stop-loss / take-profit) on the Hyperliquid connector, against the strict fake
venue: one alone (`place`, grouping `na`), position stops (`positionTpsl`) and brackets
(`normalTpsl`) through `place_group`, their rounding, their firing (`OrderTriggered` then the
fills), the snapshot's view of them, idempotent group retries, and the dead-man switch that
cancels them too."""

from decimal import Decimal

import pytest

from engine.venues.connector import (
    OrderAccepted, OrderCancelled, OrderFilled, OrderRejected, OrderRequest, OrderTriggered, Trigger,
)
from engine.venues.hyperliquid.prepare import rounded
from engine.venues.hyperliquid.signer import cloid_for
from fake_hyperliquid.harness import AGENT, AGENT_ENV, MASTER, of_type, running, start_fake, wait_for

ETH_MARK = 1903.95  # the fake's starting ETH mark; ETH has 4 size decimals: prices 5 figures, 2 decimals


@pytest.fixture
def traded(monkeypatch):
    """A fake whose account traded $2M: the venue arms a dead-man switch only past $1M."""
    monkeypatch.setenv(AGENT_ENV, AGENT.key.hex())
    server = start_fake(cum_volume={MASTER.address: 2_000_000.0})
    yield server
    server.stop()


def open_triggers(fake) -> set[int]:
    """The fake venue's untriggered trigger orders that are live (waiting children included)."""
    return {o.oid for o in fake.orders() if o.status == "open" and o.trigger}


def stop(client_id, trigger_px, size="0.5", side="sell", kind="sl", market=True, limit_px="1"):
    return OrderRequest("ETH", side, size, limit_px, reduce_only=True, client_id=client_id,
                        trigger=Trigger(Decimal(trigger_px), kind, market))


async def go_long(connector, size="0.5"):
    ack = await connector.place(OrderRequest("ETH", "buy", size, "1999", "Ioc", client_id=f"long-{size}"))
    assert ack.status == "filled"
    return ack


def wire_of(fake, index=-1):
    return fake.actions("order")[index].action


# ---- rounding ----------------------------------------------------------------------------------


def test_stops_round_tighter_take_profits_to_the_nearest_and_market_triggers_carry_the_venue_cap():
    long_stop = rounded(stop("a", "1710.003"), 4)
    assert long_stop.trigger.trigger_px == Decimal("1710.1")  # a sell's stop rounds up: toward the mark
    assert long_stop.limit_px == Decimal("1539")  # 1710.1 × 0.9 = 1539.09, rounded down (away from the trigger)
    short_stop = rounded(stop("b", "2100.09", side="buy"), 4)
    assert short_stop.trigger.trigger_px == Decimal("2100")  # a buy's stop rounds down: toward the mark
    assert short_stop.limit_px == Decimal("2310")  # 2100 × 1.1, rounded up
    take_profit = rounded(stop("c", "2000.06", kind="tp"), 4)
    assert take_profit.trigger.trigger_px == Decimal("2000.1")  # nearest
    stop_limit = rounded(stop("d", "1700.04", market=False, limit_px="1690.04"), 4)
    assert (stop_limit.trigger.trigger_px, stop_limit.limit_px) == (Decimal("1700.1"), Decimal("1690"))
    assert rounded(stop("e", "1700", size="0.123456"), 4).size == Decimal("0.1234")


# ---- one trigger order ---------------------------------------------------------------------------


async def test_a_single_stop_goes_out_rounded_with_grouping_na(fake):
    async with running(fake) as (connector, events):
        await go_long(connector)
        ack = await connector.place(stop("lone-stop", "1710.003"))
        await wait_for(lambda: any(a.oid == ack.oid for a in of_type(events, OrderAccepted)), what="the stop accepted")
    assert ack.status == "resting" and ack.oid is not None
    action = wire_of(fake)
    assert action["grouping"] == "na"
    (w,) = action["orders"]
    assert w["t"] == {"trigger": {"isMarket": True, "triggerPx": "1710.1", "tpsl": "sl"}}
    assert (w["p"], w["s"], w["r"], w["b"], w["c"]) == ("1539", "0.5", True, False, cloid_for("lone-stop"))
    assert fake.refused() == []


async def test_a_stop_already_triggered_at_placement_is_refused_with_the_venues_text(fake):
    async with running(fake) as (connector, events):
        await go_long(connector)
        alone = await connector.place(stop("too-high", "1950"))  # a long's stop above the mark
        grouped, = await connector.place_group([stop("too-high-2", "1950")], "positionTpsl")
    for ack in (alone, grouped):
        assert ack.status == "rejected" and ack.code == "InvalidTpSlPx"
        assert ack.error.startswith("Invalid TP/SL price.") and ack.oid is None
    rejected = of_type(events, OrderRejected)
    assert [(r.client_id, r.code) for r in rejected] == [("too-high", "InvalidTpSlPx"), ("too-high-2", "InvalidTpSlPx")]
    assert open_triggers(fake) == set()


# ---- position stops ---------------------------------------------------------------------------------


async def test_a_position_stop_rests_fires_and_closes_the_long(fake):
    async with running(fake) as (connector, events):
        await go_long(connector)
        (ack,) = await connector.place_group([stop("pos-stop", "1710.003")], "positionTpsl")
        assert ack.status == "resting" and ack.oid is not None
        assert wire_of(fake)["grouping"] == "positionTpsl"
        snap = await connector.snapshot()
        (order,) = snap.open_orders
        assert (order.oid, order.client_id, order.side, order.size) == (ack.oid, "pos-stop", "sell", 0.5)
        assert (order.trigger_px, order.tpsl, order.limit_px, order.reduce_only) == (1710.1, "sl", 1539.0, True)

        fake.set_mark("ETH", 1700.0)  # crosses the stop
        await wait_for(lambda: any(f.oid == ack.oid and f.remaining == 0 for f in of_type(events, OrderFilled)),
                       what="the stop's fills")
        snap = await connector.snapshot()
    (fired,) = of_type(events, OrderTriggered)
    assert (fired.oid, fired.coin, fired.side, fired.client_id, fired.tpsl) == (ack.oid, "ETH", "sell", "pos-stop", "sl")
    assert fired.trigger_px == 1710.1 and fired.mark <= 1710.1
    order_events = [e for e in events if getattr(e, "oid", None) == ack.oid]
    assert isinstance(order_events[0], OrderAccepted)
    assert order_events.index(fired) < min(order_events.index(f) for f in of_type(order_events, OrderFilled))
    fills = [f for f in of_type(events, OrderFilled) if f.oid == ack.oid]
    assert sum(f.size for f in fills) == pytest.approx(0.5) and all(f.client_id == "pos-stop" for f in fills)
    assert fake.position("ETH") == 0 and snap.positions == () and snap.open_orders == ()


async def test_replacing_a_stop_places_the_new_one_before_cancelling_the_old(fake):
    async with running(fake) as (connector, events):
        await go_long(connector)
        (old,) = await connector.place_group([stop("stop-old", "1700")], "positionTpsl")
        assert open_triggers(fake) == {int(old.oid)}
        (new,) = await connector.place_group([stop("stop-new", "1750")], "positionTpsl")
        assert open_triggers(fake) == {int(old.oid), int(new.oid)}  # two stops for a moment, never none
        assert (await connector.cancel("ETH", old.oid)).cancelled
        assert open_triggers(fake) == {int(new.oid)}
        snap = await connector.snapshot()
    (order,) = snap.open_orders
    assert (order.oid, order.trigger_px, order.tpsl) == (new.oid, 1750.0, "sl")
    assert fake.position("ETH") == pytest.approx(0.5)


# ---- brackets --------------------------------------------------------------------------------------


def bracket(prefix, entry_px="1999", tif="Ioc", sl_px="1800", tp_px="2000", size="0.1"):
    return [OrderRequest("ETH", "buy", size, entry_px, tif, client_id=f"{prefix}-entry"),
            stop(f"{prefix}-sl", sl_px, size=size),
            stop(f"{prefix}-tp", tp_px, size=size, kind="tp")]


async def test_a_bracket_entry_fills_its_stop_and_take_profit_rest_and_the_take_profit_ends_the_stop(fake):
    async with running(fake) as (connector, events):
        entry, sl, tp = await connector.place_group(bracket("b1"), "normalTpsl")
        assert entry.status == "filled" and entry.filled_size == pytest.approx(0.1)
        assert sl.status == tp.status == "resting" and None not in (sl.oid, tp.oid)
        assert wire_of(fake)["grouping"] == "normalTpsl" and len(fake.actions("order")) == 1
        assert open_triggers(fake) == {int(sl.oid), int(tp.oid)}
        snap = await connector.snapshot()
        assert {(o.oid, o.tpsl, o.trigger_px) for o in snap.open_orders} == {(sl.oid, "sl", 1800.0),
                                                                             (tp.oid, "tp", 2000.0)}
        fake.set_mark("ETH", 2010.0)  # the take-profit fires
        await wait_for(lambda: any(f.oid == tp.oid and f.remaining == 0 for f in of_type(events, OrderFilled)),
                       what="the take-profit's fills")
        await wait_for(lambda: any(c.oid == sl.oid for c in of_type(events, OrderCancelled)),
                       what="the stop ended by the venue")
    (fired,) = of_type(events, OrderTriggered)
    assert (fired.oid, fired.tpsl, fired.client_id, fired.trigger_px) == (tp.oid, "tp", "b1-tp", 2000.0)
    (ended,) = [c for c in of_type(events, OrderCancelled) if c.oid == sl.oid]
    assert ended.reason == "siblingFilledCanceled" and ended.client_id == "b1-sl"
    assert fake.position("ETH") == 0 and open_triggers(fake) == set()


async def test_a_resting_entrys_children_wait_in_the_snapshot_and_rest_once_it_fills(fake):
    async with running(fake) as (connector, events):
        entry, sl, tp = await connector.place_group(bracket("b2", entry_px="1800", tif="Gtc", sl_px="1700",
                                                            tp_px="1900"), "normalTpsl")
        assert entry.status == sl.status == tp.status == "resting"
        assert None not in (entry.oid, sl.oid, tp.oid)  # the children's oids looked up by cloid
        snap = await connector.snapshot()
        by_id = {o.client_id: o for o in snap.open_orders}
        assert set(by_id) == {"b2-entry", "b2-sl", "b2-tp"}  # the waiting children are open orders too
        assert (by_id["b2-sl"].trigger_px, by_id["b2-sl"].tpsl) == (1700.0, "sl")
        assert (by_id["b2-tp"].trigger_px, by_id["b2-tp"].tpsl) == (1900.0, "tp")
        assert by_id["b2-entry"].trigger_px is None and by_id["b2-entry"].tpsl is None

        fake.set_mark("ETH", 1800.0)  # the entry fills; its children rest on the book from now on
        await wait_for(lambda: {sl.oid, tp.oid} <= {a.oid for a in of_type(events, OrderAccepted)},
                       what="the children resting")
        assert fake.position("ETH") == pytest.approx(0.1)
        assert open_triggers(fake) == {int(sl.oid), int(tp.oid)}
        snap = await connector.snapshot()
    assert {o.client_id for o in snap.open_orders} == {"b2-sl", "b2-tp"}


async def test_a_group_with_an_order_that_cannot_be_sent_sends_nothing(fake):
    async with running(fake) as (connector, events):
        orders = bracket("b3")
        orders[1] = stop("b3-sl", "1800", size="0.00001")  # below ETH's lot
        acks = await connector.place_group(orders, "normalTpsl")
    assert [a.status for a in acks] == ["rejected"] * 3
    assert [a.code for a in acks] == ["GroupNotSent", "InvalidSize", "GroupNotSent"]
    assert fake.actions("order") == [] and len(of_type(events, OrderRejected)) == 3


# ---- idempotent group retries ------------------------------------------------------------------


async def test_a_group_whose_answer_was_lost_is_found_by_its_cloids_not_sent_again(fake):
    fake.fail_next("exchange", 502, after_apply=True)  # the venue took it; the answer never came
    async with running(fake) as (connector, _):
        entry, sl, tp = await connector.place_group(bracket("lost"), "normalTpsl")
    assert len(fake.actions("order")) == 1
    assert entry.status == "filled" and entry.filled_size == pytest.approx(0.1)
    assert sl.status == tp.status == "resting"
    assert (sl.oid, tp.oid) == tuple(str(o.oid) for o in fake.orders() if o.trigger)
    assert fake.position("ETH") == pytest.approx(0.1)


async def test_a_group_that_never_landed_is_sent_again_once_its_copy_expired(fake):
    async with running(fake, order_ttl_seconds=0.3) as (connector, _):
        await go_long(connector)
        fake.fail_next("exchange", 500)  # refused before it was applied; we cannot tell
        (ack,) = await connector.place_group([stop("retry-stop", "1700")], "positionTpsl")
        again = await connector.place_group([stop("retry-stop", "1700")], "positionTpsl")  # the same client_id
    assert ack.status == "resting" and again[0].oid == ack.oid
    assert fake.posts["exchange"] == 3  # the long, the lost copy, the copy that landed
    assert len(fake.orders(cloid_for("retry-stop"))) == 1 and open_triggers(fake) == {int(ack.oid)}


# ---- the dead-man switch ---------------------------------------------------------------------------


async def test_the_dead_man_switch_cancels_a_resting_stop(traded):
    fake = traded
    async with running(fake) as (connector, events):
        await go_long(connector)
        (ack,) = await connector.place_group([stop("guard", "1700")], "positionTpsl")
        assert (await connector.arm_dead_man(60)).armed
        fake.advance(61)  # nobody re-armed it: the venue cancels every open order, stops included
        await wait_for(lambda: any(c.oid == ack.oid for c in of_type(events, OrderCancelled)),
                       what="the stop cancelled")
        snap = await connector.snapshot()
    (cancelled,) = of_type(events, OrderCancelled)
    assert (cancelled.reason, cancelled.client_id) == ("scheduledCancel", "guard")
    assert open_triggers(fake) == set() and snap.open_orders == ()
    assert fake.position("ETH") == pytest.approx(0.5)  # the long is left unprotected
