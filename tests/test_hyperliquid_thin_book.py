"""The engine on the strict fake's finite book: an IOC takes only the depth inside its price,
so exits on a thin book fill in parts. The de-risk loop sends one reducing order at a time and
takes the remainder with the next; the kill switch flattens a position larger than the book's
levels within its attempts, each sized from the live position, never the original size."""

from __future__ import annotations

import time

import pytest

from engine.domain.clock import ManualClock
from engine.domain.events import EventKind
from engine.domain.model import OrderIntent, TradingState
from engine.live.engine import Engine
from engine.live.execution import SubmitStatus
from engine.risk.policies import parse_policies
from engine.risk.policy_file import default_policies
from engine.venues.hyperliquid.connector import HyperliquidConnector
from fake_hyperliquid.book import BookShape
from fake_hyperliquid.harness import AGENT, AGENT_ENV, MASTER, config_for, start_fake, wait_for

THIN = BookShape(levels=2, spacing=0.001, notional=10_000.0)  # $20k a side within 0.2% of the mark


@pytest.fixture
def small_account(monkeypatch):
    monkeypatch.setenv(AGENT_ENV, AGENT.key.hex())
    server = start_fake(equities={MASTER.address: 10_000.0})
    yield server
    server.stop()


def of_kind(engine: Engine, kind: EventKind) -> list:
    return [e for e in engine.events.recent if e.kind is kind]


async def test_the_kill_switch_flattens_a_position_larger_than_the_thin_book_in_parts(fake):
    engine = Engine(HyperliquidConnector(config_for(fake), ManualClock(time.time())), default_policies(),
                    ManualClock(time.time()))
    await engine.start()
    try:
        opened = await engine.submit(OrderIntent(market="ETH", side="buy", size=20.0))
        assert opened.status is SubmitStatus.SENT and fake.position("ETH") == pytest.approx(20.0)
        fake.set_book("ETH", THIN)  # ~10.5 ETH of bids within 0.2%, then nothing until makers refill

        await engine.kill()

        assert fake.position("ETH") == 0
        done = of_kind(engine, EventKind.PANIC_DONE)[-1]
        assert done.data["flat"] is True and engine.trading.state is TradingState.HALTED
        reduces = [e for e in of_kind(engine, EventKind.REDUCE_FILLED) if e.data["purpose"].startswith("panic")]
        assert len(reduces) >= 2  # the book could not take it at once
        asked = [e.data["asked"] for e in reduces]
        assert asked[0] == pytest.approx(20.0) and all(later < 20.0 for later in asked[1:])
        sold = sum(float(f["sz"]) for f in fake.fills() if f["side"] == "A")
        assert sold == pytest.approx(20.0)  # never more than the position: remainders, not the original size
    finally:
        await engine.stop()


async def test_de_risking_on_a_thin_book_takes_the_remainder_with_the_next_order(small_account):
    fake = small_account
    clock = ManualClock(time.time())
    policies = parse_policies([
        {"id": "margin-buffer", "type": "MIN_MARGIN_BUFFER",
         "rules": {"minBuffer": 0.6, "warnBuffer": 0.5, "panicBuffer": 0.25, "targetBuffer": 0.7}},
    ])
    engine = Engine(HyperliquidConnector(config_for(fake), clock), policies, clock)
    await engine.start()
    try:
        mark = engine.book.marks["ETH"]
        size = round(150_000 / mark, 2)  # 15x on 10k: buffer 0.7 (maintenance 2% at ETH's 25x)
        opened = await engine.submit(OrderIntent(market="ETH", side="buy", size=size, leverage=20))
        assert opened.status is SubmitStatus.SENT, opened
        fake.set_book("ETH", BookShape(levels=2, spacing=0.001, notional=15_000.0))
        fake.set_mark("ETH", mark * 0.97)  # equity ~5.5k, buffer ~0.47: below warn, above panic
        await wait_for(lambda: of_kind(engine, EventKind.DERISK_ORDERED), what="the engine to start de-risking")

        await wait_for(lambda: engine.book.margin_buffer is not None and engine.book.margin_buffer >= 0.69
                       and not engine.protection.busy, timeout=15, what="de-risking back to the target buffer")

        derisk = [e for e in of_kind(engine, EventKind.REDUCE_FILLED) if not e.data["purpose"].startswith("panic")]
        assert len(derisk) >= 2, "\n".join(e.message for e in engine.events.recent)  # one order could not do it
        assert not of_kind(engine, EventKind.PANIC_STARTED) and not engine.liquidated
        assert fake.position("ETH") == pytest.approx(engine.book.position("ETH").size)
        assert 0 < fake.position("ETH") < size
    finally:
        await engine.stop()
