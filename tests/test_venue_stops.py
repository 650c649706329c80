"""Protection that outlives the engine, on the paper exchange: every open position carries a
reduce-only stop resting on the venue at the price where its buffer would reach triggerBuffer;
it is moved (new first, then the old cancelled) when the position changes, a trailing stop
only tightens, a bracket's children are checked and rest on the venue, a position the venue
refused a stop for is UNPROTECTED, and the dead-man switch stays cleared while stops protect."""

from __future__ import annotations

import pytest

from builders import MARKETS, MARKS, T0, make_book
from engine.domain.clock import ManualClock
from engine.domain.events import EventKind
from engine.domain.margin import buffer_price, liquidation_price
from engine.domain.model import OrderIntent
from engine.live.engine import Engine
from engine.live.execution import SubmitStatus
from engine.risk.policies import parse_policies
from engine.risk.policy_file import DEFAULT_POLICY_BODIES
from engine.state_view import engine_state
from engine.venues.paper.exchange import PaperExchange

NO_CAPS = [b for b in DEFAULT_POLICY_BODIES if b["type"] not in ("PERP_MAX_LEVERAGE", "MAX_GROSS_EXPOSURE")]


def test_the_trigger_is_where_the_buffer_would_reach_the_trigger_buffer_by_the_liquidation_math():
    assert buffer_price(50_000, 2.0, 10_000, 1_250, 0.0125, 0.0) == pytest.approx(
        liquidation_price(50_000, 2.0, 10_000 - 1_250, 0.0125))
    book = make_book(equity=10_000, positions={"BTC": 2.0})  # 100k of BTC on 10k: 10x
    trigger = book.buffer_px("BTC", 0.15)
    assert book.liquidation_px("BTC") < trigger < MARKS["BTC"]
    at_trigger = make_book(equity=10_000 + 2.0 * (trigger - MARKS["BTC"]), positions={"BTC": 2.0},
                           marks={**MARKS, "BTC": trigger})
    assert at_trigger.margin_buffer == pytest.approx(0.15, abs=1e-6)
    short = make_book(equity=10_000, positions={"BTC": -2.0})
    assert MARKS["BTC"] < short.buffer_px("BTC", 0.15) < short.liquidation_px("BTC")


async def paper_engine(bodies=NO_CAPS, **kw) -> tuple[Engine, PaperExchange, ManualClock]:
    clock = ManualClock(T0)
    paper = PaperExchange(MARKETS, equity=10_000, clock=clock)
    for coin, px in MARKS.items():
        paper.set_mark(coin, px)
    engine = Engine(paper, parse_policies(bodies), clock, **kw)
    await engine.start()
    return engine, paper, clock


async def resting_stops(paper: PaperExchange, coin: str = "BTC"):
    return [o for o in (await paper.snapshot()).open_orders if o.coin == coin and o.trigger_px is not None]


async def test_a_fill_leaves_a_stop_on_the_venue_at_the_trigger_buffer():
    engine, paper, _clock = await paper_engine()
    sent = await engine.submit(OrderIntent(market="BTC", side="buy", size=1.6, leverage=10))
    assert sent.status is SubmitStatus.SENT
    (stop,) = await resting_stops(paper)
    assert stop.side == "sell" and stop.reduce_only and stop.tpsl == "sl"
    policy = engine.venue_stops.policy
    assert stop.trigger_px == pytest.approx(policy.trigger_px(engine.book, "BTC"), rel=1e-4)
    assert engine.book.liquidation_px("BTC") < stop.trigger_px < engine.book.marks["BTC"]
    row = engine_state(engine).to_json()["positions"][0]
    assert row["venue_stop"] == {"trigger_px": pytest.approx(stop.trigger_px), "oid": stop.oid}
    assert row["unprotected"] is False
    assert [e.kind for e in engine.events.recent].count(EventKind.VENUE_STOP_PLACED) == 1


class Watched(PaperExchange):
    """The paper exchange, counting its resting stops after every call the engine makes."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.counts: list[int] = []

    async def _count(self) -> None:
        self.counts.append(len(await resting_stops(self)))

    async def place_group(self, orders, grouping):
        acks = await super().place_group(orders, grouping)
        await self._count()
        return acks

    async def cancel(self, coin, oid):
        ack = await super().cancel(coin, oid)
        await self._count()
        return ack


async def test_a_partial_close_moves_the_stop_new_one_first_and_the_position_is_never_without_one():
    clock = ManualClock(T0)
    paper = Watched(MARKETS, equity=10_000, clock=clock)
    for coin, px in MARKS.items():
        paper.set_mark(coin, px)
    engine = Engine(paper, parse_policies(NO_CAPS), clock)
    await engine.start()
    assert (await engine.submit(OrderIntent(market="BTC", side="buy", size=1.6, leverage=10))).status is SubmitStatus.SENT
    (first,) = await resting_stops(paper)
    await engine.submit(OrderIntent(market="BTC", side="sell", size=0.8, reduce_only=True))
    (moved,) = await resting_stops(paper)
    assert moved.oid != first.oid and moved.trigger_px < first.trigger_px  # half the size: further away
    assert paper.counts[0] == 1 and min(paper.counts) >= 1  # never zero while the position was open
    kinds = [e.kind for e in engine.events.recent]
    assert EventKind.VENUE_STOP_MOVED in kinds
    await engine.submit(OrderIntent(market="BTC", side="sell", size=0.8, reduce_only=True))
    assert await resting_stops(paper) == []  # flat: no stop left behind


async def test_a_trailing_stop_follows_the_price_up_and_never_loosens():
    engine, paper, clock = await paper_engine()
    opened = await engine.submit(OrderIntent(market="BTC", side="buy", size=0.2, leverage=2, trailing_stop=0.05))
    assert opened.status is SubmitStatus.SENT
    (start,) = await resting_stops(paper)
    assert start.trigger_px == pytest.approx(50_000 * 0.95, rel=1e-4)  # far tighter than the buffer's trigger
    seen = [start.trigger_px]
    for px in (51_000, 53_000, 52_000, 50_500, 54_000):
        clock.advance(5)
        paper.set_mark("BTC", px)
        await engine.settle()
        (stop,) = await resting_stops(paper)
        seen.append(stop.trigger_px)
    assert seen == sorted(seen)  # only ever up
    assert seen[-1] == pytest.approx(54_000 * 0.95, rel=1e-4)
    assert seen[3] == seen[2]  # the dip to 52,000 did not loosen it


async def test_a_trailing_stop_goes_on_trailing_after_a_restart_and_never_falls_back(tmp_path):
    """The engine restarts on the same store while a trailed-up stop rests on the venue: the
    stop is not moved back down to the looser VENUE_STOP trigger on a dip, and it goes on
    trailing when the price makes a new high."""
    from engine.store import Store
    from engine.store.journal import DurableJournal
    from engine.store.writer import StoreWriter

    store = Store(f"sqlite:///{tmp_path / 'pg.db'}", audit_dir=tmp_path / "audit")
    writer = StoreWriter(batch=store.transactions.batch)
    try:
        engine, paper, clock = await paper_engine(journal=DurableJournal(store, writer))
        await engine.submit(OrderIntent(market="BTC", side="buy", size=0.2, leverage=2, trailing_stop=0.05))
        for px in (52_000, 54_000):
            clock.advance(5)
            paper.set_mark("BTC", px)
            await engine.settle()
        (trailed,) = await resting_stops(paper)
        assert trailed.trigger_px == pytest.approx(54_000 * 0.95, rel=1e-4)
        assert await writer.durable(5.0)  # the trail is on disk before the engine goes away
        await engine.stop()

        again = Engine(paper, parse_policies(NO_CAPS), clock, journal=DurableJournal(store, writer))
        await again.start()
        for px in (52_500, 51_500):  # a dip after the restart: the stop holds
            clock.advance(5)
            paper.set_mark("BTC", px)
            await again.settle()
            assert [o.trigger_px for o in await resting_stops(paper)] == [trailed.trigger_px]
        clock.advance(5)
        paper.set_mark("BTC", 56_000)  # a new high: it trails on
        await again.settle()
        (stop,) = await resting_stops(paper)
        assert stop.trigger_px == pytest.approx(56_000 * 0.95, rel=1e-4)
        await again.stop()
    finally:
        writer.stop()
        store.close()


async def test_a_brackets_children_are_checked_and_rest_on_the_venue():
    engine, paper, _clock = await paper_engine()
    wrong = await engine.submit(OrderIntent(market="BTC", side="buy", size=0.2, stop_loss=50_500))
    assert wrong.status is SubmitStatus.DENIED
    error = wrong.decision.error_body()["error"]
    assert error["code"] == "VALIDATION" and error["details"]["field"] == "stop_loss"
    assert "must be below the buy's entry" in error["message"]
    tp = await engine.submit(OrderIntent(market="BTC", side="buy", size=0.2, take_profit=49_000))
    assert tp.decision.error_body()["error"]["details"]["field"] == "take_profit"
    beyond = await engine.submit(OrderIntent(market="BTC", side="buy", size=1.6, leverage=10, stop_loss=44_000))
    reasons = {r.code: r for r in beyond.decision.denials}
    assert "STOP_BEYOND_LIQUIDATION" in reasons
    assert reasons["STOP_BEYOND_LIQUIDATION"].limit == pytest.approx(beyond.decision.projected.liquidation_px)

    ok = await engine.submit(OrderIntent(market="BTC", side="buy", size=0.2, stop_loss=48_000, take_profit=55_000))
    assert ok.status is SubmitStatus.SENT, ok.error
    triggers = await resting_stops(paper)
    assert sorted((o.tpsl, o.trigger_px) for o in triggers if o.tpsl == "tp") == [("tp", 55_000)]
    assert 48_000 in [o.trigger_px for o in triggers if o.tpsl == "sl"]  # the trader's, beside VENUE_STOP's


async def test_a_position_the_venue_refused_a_stop_for_is_unprotected_and_said():
    engine, paper, clock = await paper_engine()
    sent = await engine.submit(OrderIntent(market="BTC", side="buy", size=0.2))
    assert sent.status is SubmitStatus.SENT
    for order in await resting_stops(paper):
        await paper.cancel("BTC", order.oid)
    paper.faults.reject_next(100)  # the venue refuses every order for now
    await engine.resync()
    await engine.settle()
    state = engine_state(engine)
    assert state.positions[0].unprotected and state.unprotected == 1
    assert [e.kind for e in engine.events.recent].count(EventKind.VENUE_STOP_FAILED) == 1  # asked once, no storm
    paper.faults.reject_next(0)
    await engine.resync()
    await engine.settle()
    assert engine_state(engine).positions[0].unprotected  # not asked again at once
    clock.advance(6)
    await engine.resync()  # a reconciliation after the pause asks again
    await engine.settle()
    assert not engine_state(engine).positions[0].unprotected


async def test_the_dead_man_switch_stays_cleared_while_stops_protect_and_is_armed_when_flat():
    engine, paper, clock = await paper_engine()
    assert (await engine.venue_watch.arm()).armed  # flat
    await engine.submit(OrderIntent(market="BTC", side="buy", size=0.2))
    await engine.settle()
    status = engine.venue_watch.dead_man
    assert not status.armed and status.reason.startswith("disarmed: 1 position carry venue stops")
    assert paper.dead_man_deadline is None  # cleared at once, not at the next 20 s re-arm
    assert not engine_state(engine).dead_man.refused
    assert not (await engine.venue_watch.arm()).armed
    await engine.submit(OrderIntent(market="BTC", side="sell", size=0.2, reduce_only=True))
    await engine.settle()
    assert engine.venue_watch.dead_man.armed and paper.dead_man_deadline is not None


async def test_dead_man_always_arms_whatever_the_positions():
    engine, paper, _clock = await paper_engine(dead_man="always")
    await engine.venue_watch.arm()
    await engine.submit(OrderIntent(market="BTC", side="buy", size=0.2))
    await engine.settle()
    assert (await engine.venue_watch.arm()).armed and paper.dead_man_deadline is not None


async def test_the_event_log_tells_perpguard_s_own_stop_from_a_bots_when_one_fires():
    engine, paper, _clock = await paper_engine()
    assert (await engine.submit(OrderIntent(market="BTC", side="buy", size=0.2, stop_loss=48_000))).status is SubmitStatus.SENT
    paper.set_mark("BTC", 47_900)  # the bot's own stop (the bracket's child) fires
    await engine.settle()
    fired = [e.message for e in engine.events.recent if e.kind is EventKind.VENUE_STOP_TRIGGERED]
    assert len(fired) == 1 and fired[0].startswith("A stop order fired on BTC: sl trigger 48000")

    engine, paper, _clock = await paper_engine()
    assert (await engine.submit(OrderIntent(market="BTC", side="buy", size=1.6, leverage=10))).status is SubmitStatus.SENT
    (stop,) = await resting_stops(paper)
    paper.set_mark("BTC", stop.trigger_px - 10)  # perpguard's VENUE_STOP fires
    await engine.settle()
    fired = [e.message for e in engine.events.recent if e.kind is EventKind.VENUE_STOP_TRIGGERED]
    assert len(fired) == 1 and fired[0].startswith("VENUE STOP fired on BTC")
