"""Engine-loop figures: replay throughput, and the reaction from a mark that crosses warnBuffer
to the reducing order handed to the connector."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from engine.domain.clock import ManualClock
from engine.venues.connector import OrderRequest
from engine.venues.paper.exchange import PaperExchange
from engine.venues.paper.prices import RandomWalk, walk_candles, write_candles
from engine.venues.paper.universe import PAPER_MARKETS
from engine.risk.policy_file import default_policies
from engine.replay.run import run_replay
from engine.live.engine import Engine

CRASH = Path(__file__).parent.parent / "tests/fixtures/crashes/binance_um_BTCUSDT_1m_2021-05-19_1219-1345Z.csv"


def replay_bars_per_s(repeats: int = 5, bars: int = 10_080) -> dict:
    """Bars per second of `perpguard replay` (CSV read included), all default policies on, 10x
    long: over a week of seeded one-minute bars (steady state: the figure the target is about),
    and over the 2021 crash file (87 bars, where start-up and the de-risk sequence dominate)."""
    with tempfile.TemporaryDirectory() as tmp:
        week = Path(tmp) / "week.csv"
        walk = RandomWalk(7, {"BTC": 65_000.0}, step_seconds=3.0)
        write_candles(week, walk_candles(walk, bars))
        figures = {}
        for key, path in (("week", week), ("crash", CRASH)):
            rates = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                result = asyncio.run(run_replay(path, "BTC", "long", 10, 100_000, default_policies()))
                rates.append(result.bars / (time.perf_counter() - t0))
            figures[key] = statistics.median(rates)
    return figures


async def _one_reaction() -> float:
    clock = ManualClock(1_700_000_000.0)
    paper = PaperExchange(PAPER_MARKETS, clock=clock)
    paper.set_mark("BTC", 50_000.0)
    await paper.set_leverage("BTC", 40)
    await paper.place(OrderRequest("BTC", "buy", "76", "50500", "Ioc"))  # buffer ≈ 51%
    engine = Engine(paper, default_policies(), clock)
    await engine.start()
    handed = []
    place = paper.place

    async def timed_place(order):
        handed.append(time.perf_counter())
        return await place(order)

    paper.place = timed_place
    clock.advance(1)
    t0 = time.perf_counter()
    paper.set_mark("BTC", 49_800.0)  # crosses warn
    await engine.settle()
    await engine.stop()
    assert handed, "no reducing order was sent"
    return (handed[0] - t0) * 1000


def reaction_p99_ms(trials: int = 300) -> float:
    async def run() -> list[float]:
        return [await _one_reaction() for _ in range(trials)]

    samples = sorted(asyncio.run(run()))
    return samples[int(len(samples) * 0.99) - 1]
