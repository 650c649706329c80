"""How soon a position is protected on the venue: from the fill event's arrival to the venue's
acknowledgement of its stop (VENUE_STOP), with the real Hyperliquid connector against the
strict fake venue of the tests over loopback (HTTP + websocket, signatures checked).

Each trial opens a small BTC position through the engine, times the OrderFilled event (as the
connector delivers it) to the `venue_stop_placed` event (emitted once the venue acknowledged
the stop), then closes it and waits until no stop rests."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the fake venue lives with the tests

from engine.domain.clock import SystemClock  # noqa: E402
from engine.domain.events import EventKind  # noqa: E402
from engine.domain.model import OrderIntent  # noqa: E402
from engine.live.engine import Engine  # noqa: E402
from engine.risk.policies import parse_policies  # noqa: E402
from engine.risk.policy_file import DEFAULT_POLICY_BODIES  # noqa: E402
from engine.venues import connector as venue  # noqa: E402
from engine.venues.hyperliquid.budget import RateBudget  # noqa: E402
from engine.venues.hyperliquid.connector import HyperliquidConnector  # noqa: E402


EQUITY = 2_000.0  # a small account: its 2.5x BTC long can reach the trigger buffer, so it needs a stop
SIZE = 0.17  # BTC, about 5,100 USD at the fake's 30,135
DEADLINE_SECONDS = 10.0
# The defaults, less the rules that 60 losing round trips (fees) would trip.
POLICIES = [dict(b) for b in DEFAULT_POLICY_BODIES if b["type"] not in ("CIRCUIT_BREAKER", "LOSS_LIMIT", "RATE_LIMIT")]


def stop_placement_p99_ms(trials: int = 20) -> dict:
    from fake_hyperliquid.harness import AGENT, AGENT_ENV, MASTER, config_for, start_fake

    os.environ[AGENT_ENV] = AGENT.key.hex()
    fake = start_fake(equities={MASTER.address: EQUITY})
    try:
        samples: list[float] = []
        try:
            asyncio.run(asyncio.wait_for(_trials(fake, config_for(fake), trials, samples), 120))
        except (asyncio.TimeoutError, RuntimeError) as exc:  # say so, with the trials measured
            print(f"stop placement bench stopped after {len(samples)} trials: {exc!r}")
        if not samples:
            return {"p50_ms": float("nan"), "p99_ms": float("nan")}
    finally:
        fake.stop()
    samples.sort()
    return {"p50_ms": statistics.median(samples) * 1000, "p99_ms": samples[int(0.99 * (len(samples) - 1))] * 1000}


async def _trials(fake, config, trials: int, samples: list[float]) -> None:
    clock = SystemClock()
    # 20 round trips spend more than the 1200 weight a minute the connector allows itself (each
    # trial reconciles several times): lifted here, so the figure is the path, not the budget's wait.
    connector = HyperliquidConnector(config, clock, budget=RateBudget(limit=1_000_000, urgent_reserve=0))
    engine = Engine(connector, parse_policies(POLICIES), clock)
    await engine.start()
    filled_at: list[float] = []
    placed_at: list[float] = []
    connector.subscribe(lambda e: filled_at.append(time.perf_counter()) if isinstance(e, venue.OrderFilled) else None)
    engine.events.subscribe(lambda e: placed_at.append(time.perf_counter()) if e.kind is EventKind.VENUE_STOP_PLACED else None)
    try:
        for trial in range(trials):
            size = SIZE + 0.01 * (trial % 2)  # not the same position twice in a row
            filled_at.clear()
            placed_at.clear()
            sent = await engine.submit(OrderIntent(market="BTC", side="buy", size=size))
            deadline = time.monotonic() + DEADLINE_SECONDS
            while not placed_at or not filled_at:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"trial {len(samples)}: no venue stop after the fill ({sent.status})")
                await asyncio.sleep(0.001)
            samples.append(placed_at[0] - filled_at[0])
            await engine.submit(OrderIntent(market="BTC", side="sell", size=size, reduce_only=True))
            while engine.book.positions():  # flat again, then a clean slate for the next trial
                if time.monotonic() > deadline + DEADLINE_SECONDS:
                    raise RuntimeError("the position did not go away")
                await asyncio.sleep(0.01)
                await engine.resync()
                await engine.settle()
            await connector.cancel_all()
            await engine.resync()
            await engine.settle()
    finally:
        await engine.stop()


if __name__ == "__main__":
    print(stop_placement_p99_ms())
