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
from fake_hyperliquid.harness import AGENT, AGENT_ENV, MASTER, config_for, start_fake, wait_for


@pytest.fixture
def traded(monkeypatch):
    """A fake whose account traded $2M: the venue arms a dead-man switch only past $1M."""
    monkeypatch.setenv(AGENT_ENV, AGENT.key.hex())
    server = start_fake(cum_volume={MASTER.address: 2_000_000.0})
    yield server
    server.stop()


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
        assert [o.status for o in fake.orders() if not o.trigger].count("open") == 1
        assert [o.status for o in fake.orders() if o.trigger].count("open") >= 1  # venue stops
        assert not engine.venue_stops.unprotected()

        await engine.kill()

        assert fake.position("ETH") == 0 and fake.position("BTC") == 0
        assert [o.status for o in fake.orders()].count("open") == 0
        assert engine.trading.state is TradingState.HALTED
        done = next(e for e in engine.events.recent if e.kind == "panic_done")
        assert done.data["flat"] is True
        assert engine.book.positions() == []
    finally:
        await engine.stop()


async def test_the_running_engine_keeps_the_dead_man_switch_armed(traded):
    fake = traded
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


async def test_an_isolated_only_hip3_market_takes_an_isolated_entry_and_denies_a_cross_one(fake):
    clock = ManualClock(time.time())
    engine = Engine(HyperliquidConnector(config_for(fake, markets=("BTC", "xyz:TSLA")), clock), default_policies(), clock)
    await engine.start()
    try:
        cross = await engine.submit(OrderIntent(market="xyz:TSLA", side="buy", size=2.0))
        assert cross.status is SubmitStatus.DENIED
        error = cross.decision.error_body()["error"]
        assert error["code"] == "POLICY_DENIED" and "xyz:TSLA is isolated-only" in error["message"]
        assert [r["code"] for r in error["details"]["reasons"]] == ["ISOLATED_ONLY"]
        assert fake.actions("order") == []  # refused before the venue

        isolated = await engine.submit(OrderIntent(market="xyz:TSLA", side="buy", size=2.0, margin_mode="isolated",
                                                   leverage=3))
        assert isolated.status is SubmitStatus.SENT, isolated
        assert fake.position("xyz:TSLA") == pytest.approx(2.0)
        (position,) = engine.book.positions()
        assert (position.coin, position.margin_mode.value) == ("xyz:TSLA", "isolated")
    finally:
        await engine.stop()


def test_an_expired_agent_stops_the_engine_with_one_line_naming_it(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys

    from fake_hyperliquid.harness import EXPIRED_AGENT, engine_config

    server = start_fake()
    try:
        config = engine_config(server, tmp_path)
        env = {**os.environ, AGENT_ENV: EXPIRED_AGENT.key.hex()}
        done = subprocess.run([sys.executable, "-m", "engine.cli.main", "--engine-only", "--config", str(config)],
                              env=env, capture_output=True, text=True, timeout=60)
    finally:
        server.stop()
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "AgentExpired" in last and EXPIRED_AGENT.address in last and "expired on" in last
    assert server.actions() == []  # nothing was ever signed for the venue


async def test_the_venue_stop_follows_the_position_and_is_never_missing_in_between(fake):
    clock = ManualClock(time.time())
    engine = Engine(HyperliquidConnector(config_for(fake), clock), default_policies(), clock)
    await engine.start()
    try:
        opened = await engine.submit(OrderIntent(market="ETH", side="buy", size=150.0, leverage=5))
        assert opened.status is SubmitStatus.SENT
        first = engine.venue_stops.stop_of("ETH")
        assert first is not None
        (resting,) = [o for o in fake.orders() if o.trigger and o.status == "open"]
        assert resting.oid == int(first.oid) and resting.reduce_only
        assert float(resting.trigger["triggerPx"]) == pytest.approx(first.trigger_px)

        await engine.submit(OrderIntent(market="ETH", side="sell", size=75.0, reduce_only=True))
        moved = engine.venue_stops.stop_of("ETH")
        assert moved.oid != first.oid and moved.trigger_px < first.trigger_px
        stops = [o for o in fake.orders() if o.trigger and o.status == "open"]
        assert [o.oid for o in stops] == [int(moved.oid)]

        # the venue's own record: the new stop was placed before the old one was cancelled
        kinds = [(a.action["type"], a.action.get("grouping")) for a in fake.actions() if a.action["type"] in ("order", "cancel")]
        place_new = kinds.index(("order", "positionTpsl"), kinds.index(("order", "positionTpsl")) + 1)
        assert ("cancel", None) in kinds[place_new:]
        assert ("cancel", None) not in kinds[kinds.index(("order", "positionTpsl")):place_new]
    finally:
        await engine.stop()


async def test_our_own_cancel_costs_no_second_account_read_but_a_cancel_from_elsewhere_is_read_again(fake):
    """A bot that quotes and cancels must not spend two info requests (weight 22 of the IP's
    1200 a minute) a cancel: the venue's answer already says the order is gone."""
    from hyperliquid.exchange import Exchange
    from engine.venues.connector import OrderCancelled

    clock = ManualClock(time.time())
    # a feed that looks stale for a moment on a loaded machine would read the account again when
    # it comes back, which is not what this test is about
    engine = Engine(HyperliquidConnector(config_for(fake, stale_after_seconds=60.0), clock), default_policies(), clock)
    await engine.start()
    heard: list = []
    engine.connector.subscribe(heard.append)

    async def cancel_heard(oid: str) -> list[str]:
        """The info types the engine asked from the moment before, until the venue's cancel event
        reached it and everything it started has finished."""
        await wait_for(lambda: any(isinstance(e, OrderCancelled) and e.oid == oid for e in heard),
                       what=f"the venue's cancel event of {oid}")
        await engine.settle()
        return [body.get("type") for body in fake.info_requests[before:]]

    try:
        below = round(engine.book.marks["ETH"] * 0.97, 1)
        ours = await engine.submit(OrderIntent(market="ETH", side="buy", size=1.0, type="limit", limit_px=below))
        theirs = await engine.submit(OrderIntent(market="ETH", side="buy", size=1.0, type="limit", limit_px=below))
        assert ours.ack.status == theirs.ack.status == "resting"
        await engine.settle()

        before = len(fake.info_requests)
        assert (await engine.cancel_order(ours.ack.oid)).cancelled
        reads = await cancel_heard(ours.ack.oid)
        assert "clearinghouseState" not in reads and "frontendOpenOrders" not in reads, reads
        assert ours.ack.oid not in engine.book.open_orders

        # cancelled by something else holding the account's keys (the venue's web page, another tool)
        before = len(fake.info_requests)
        other = Exchange(AGENT, fake.url, account_address=MASTER.address)
        assert (await asyncio.to_thread(other.cancel, "ETH", int(theirs.ack.oid)))["status"] == "ok"
        reads = await cancel_heard(theirs.ack.oid)
        assert "frontendOpenOrders" in reads  # the account read again
        assert engine.book.open_orders == {}
    finally:
        await engine.stop()
