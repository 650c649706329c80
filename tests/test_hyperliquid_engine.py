"""The real Engine, with the default policies, on the Hyperliquid connector and the fake
server: a silent feed fails closed for new risk but not for exits, the kill switch flattens
the venue account, and the running service keeps the dead-man switch armed."""

import asyncio
import time

import pytest

from engine.domain.clock import ManualClock, SystemClock
from engine.venues.hyperliquid.connector import HyperliquidConnector
from engine.live.periodic import periodic
from engine.domain.model import OrderIntent, TradingState
from engine.risk.policy_file import default_policies
from engine.live.engine import Engine
from engine.live.execution import SubmitStatus
from fake_hyperliquid.harness import config_for, wait_for


async def start_engine(fake, clock):
    engine = Engine(HyperliquidConnector(config_for(fake), clock), default_policies(), clock)
    await engine.start()
    return engine


def kinds(engine):
    return [e.kind for e in engine.events.recent]


async def test_a_silent_feed_denies_new_risk_and_lets_exits_through(fake):
    clock = ManualClock(time.time())
    engine = await start_engine(fake, clock)
    try:
        opened = await engine.submit(OrderIntent(market="ETH", side="buy", size=2.0))
        assert opened.status is SubmitStatus.SENT and fake.position("ETH") == pytest.approx(2.0)

        fake.silent = True
        await wait_for(lambda: "feed_stale" in kinds(engine), what="the engine to hear the feed went stale")
        # no clock move: the venue's FeedStale closes the gate before STALE_DATA's 10 s would

        more = await engine.submit(OrderIntent(market="ETH", side="buy", size=1.0))
        assert more.status is SubmitStatus.DENIED and more.decision.error_body()["error"]["code"] == "DATA_UNAVAILABLE"
        short = await engine.submit(OrderIntent(market="BTC", side="sell", size=0.01))
        assert short.status is SubmitStatus.DENIED and short.decision.error_body()["error"]["code"] == "DATA_UNAVAILABLE"

        exit_ = await engine.submit(OrderIntent(market="ETH", side="sell", size=1.5, reduce_only=True))
        assert exit_.status is SubmitStatus.SENT and exit_.ack.status == "filled"
        smaller = await engine.submit(OrderIntent(market="ETH", side="sell", size=0.2))  # shrinks the long: an exit
        assert smaller.status is SubmitStatus.SENT and smaller.decision.reducing
        assert fake.position("ETH") == pytest.approx(0.3)
        assert fake.position("BTC") == 0
    finally:
        await engine.stop()


async def test_the_kill_switch_flattens_the_venue_account(fake):
    clock = ManualClock(time.time())
    engine = await start_engine(fake, clock)
    try:
        for intent in (OrderIntent(market="ETH", side="buy", size=2.0),
                       OrderIntent(market="BTC", side="sell", size=0.05),
                       OrderIntent(market="ETH", side="buy", size=1.0, type="limit", limit_px=1850.0)):
            assert (await engine.submit(intent)).status is SubmitStatus.SENT
        assert fake.position("ETH") == pytest.approx(2.0) and fake.position("BTC") == pytest.approx(-0.05)
        assert [o.status for o in fake.orders()].count("open") == 1

        await engine.kill()

        assert fake.position("ETH") == 0 and fake.position("BTC") == 0
        assert [o.status for o in fake.orders()].count("open") == 0
        assert engine.trading.state is TradingState.HALTED
        done = next(e for e in engine.events.recent if e.kind == "panic_done")
        assert done.data["flat"] is True
        assert engine.book.positions() == []
    finally:
        await engine.stop()


async def test_the_running_engine_keeps_the_dead_man_switch_armed(fake):
    engine = await start_engine(fake, SystemClock())
    stop = asyncio.Event()
    service = asyncio.create_task(periodic(engine, stop, tick_seconds=0.05))
    try:
        await wait_for(lambda: fake.dead_man_deadline() is not None, what="the switch to be armed")
        assert fake.dead_man_deadline() == pytest.approx(time.time() + 60, abs=2)
    finally:
        stop.set()
        await asyncio.wait_for(service, 5)
        await engine.stop()
    assert fake.dead_man_deadline() is None  # a clean stop clears it
