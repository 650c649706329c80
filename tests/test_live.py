"""The engine as a service on paper, in real time: marks flow, orders go through, held orders
release on their own, the dead-man switch is armed while running and cleared on a clean stop."""

import asyncio

import pytest

from engine.domain.clock import SystemClock
from engine.live.periodic import run_paper
from engine.domain.model import OrderIntent
from engine.venues.paper.exchange import PaperExchange
from engine.venues.paper.prices import RandomWalk
from engine.venues.paper.universe import PAPER_MARKETS, START_PRICES
from engine.live.pending import PendingStatus
from engine.risk.policies import parse_policies
from engine.risk.policy_file import DEFAULT_POLICY_BODIES
from engine.live.engine import Engine
from engine.live.execution import SubmitStatus


async def test_engine_runs_live_on_the_paper_feed():
    clock = SystemClock()
    paper = PaperExchange(PAPER_MARKETS, clock=clock)
    prices = {c: START_PRICES[c] for c in ("BTC", "ETH")}
    for coin, px in prices.items():
        paper.set_mark(coin, px)
    bodies = DEFAULT_POLICY_BODIES + [{"type": "SPENDING_LIMIT", "rules": {"instant_max_usd": 1000, "delay_max_usd": 50000, "delay_seconds": 1}}]
    engine = Engine(paper, parse_policies(bodies), clock)
    stop = asyncio.Event()
    walk = RandomWalk(7, prices, start_time=clock.now(), step_seconds=0.1)
    service = asyncio.create_task(run_paper(engine, paper, walk, stop, tick_seconds=0.2))
    await asyncio.sleep(0.5)

    assert paper.dead_man_deadline is not None  # armed while the engine runs
    ages = [clock.now() - engine.book.mark_times[c] for c in prices]
    assert max(ages) < 1.0  # marks are live
    sent = await engine.submit(OrderIntent(market="ETH", side="buy", notional_usd=500))
    held = await engine.submit(OrderIntent(market="ETH", side="buy", notional_usd=3000))
    assert sent.status is SubmitStatus.SENT and held.status is SubmitStatus.PENDING
    await asyncio.sleep(1.6)  # the periodic tick releases the DELAY order by itself
    assert engine.pending.store.actions[held.pending.id].status is PendingStatus.EXECUTED
    assert paper.position_size("ETH") == pytest.approx(engine.book.position("ETH").size)
    assert engine.book.position("ETH").size * engine.book.marks["ETH"] == pytest.approx(3500, rel=0.05)

    stop.set()
    await asyncio.wait_for(service, 3)
    assert paper.dead_man_deadline is None  # a clean stop disarms it
