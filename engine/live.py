"""The engine as a long-running service: its periodic work, and for paper a market feed in
real time. Everything runs on the engine's one asyncio loop (single writer).

- `periodic`: every `tick_seconds`, `engine.tick()` (due DELAY orders, expired approvals, timed
  lifts, account refresh); arms the venue's dead-man switch (`scheduleCancel` now + 60 s) and
  re-arms it every 20 s, so resting orders die if the engine does; disarms it on a clean stop.
- `paper_feed`: plays a mark source (a seeded RandomWalk, a flash crash) into the paper
  exchange at wall-clock pace (`speed` > 1 plays faster), a step of marks per source step.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Iterable

from engine.paper.exchange import PaperExchange
from engine.paper.market import MarkTick
from engine.runtime import Engine

log = logging.getLogger("perpguard.live")

TICK_SECONDS = 1.0
DEAD_MAN_SECONDS = 60.0
DEAD_MAN_REARM_SECONDS = 20.0


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`; True if `stop` was set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))
        return True
    except asyncio.TimeoutError:
        return False


async def periodic(engine: Engine, stop: asyncio.Event, tick_seconds: float = TICK_SECONDS) -> None:
    await engine.connector.arm_dead_man(DEAD_MAN_SECONDS)
    armed_at = time.monotonic()
    try:
        while not await _wait(stop, tick_seconds):
            try:
                await engine.tick()
            except Exception:  # one bad tick must not stop the service; it is logged and shown
                log.exception("engine tick failed")
                engine.emit("engine_error", "periodic engine work failed; see the log")
            if time.monotonic() - armed_at >= DEAD_MAN_REARM_SECONDS:
                try:
                    await engine.connector.arm_dead_man(DEAD_MAN_SECONDS)
                    armed_at = time.monotonic()
                except Exception:  # the venue's previous deadline stands; try again next tick
                    log.exception("re-arming the dead-man switch failed")
    finally:
        await engine.connector.arm_dead_man(None)  # a clean stop leaves resting orders alone


async def paper_feed(paper: PaperExchange, source: Iterable[MarkTick], stop: asyncio.Event, speed: float = 1.0) -> None:
    """Play `source` into `paper`: all marks of one source step together, then wait the step."""
    start_real = time.monotonic()
    start_sim: float | None = None
    for at, step in itertools.groupby(source, key=lambda tick: tick.time):
        if start_sim is None:
            start_sim = at
        due = start_real + (at - start_sim) / speed
        if await _wait(stop, due - time.monotonic()):
            return
        for tick in step:
            paper.set_mark(tick.coin, tick.px)


async def run_paper(engine: Engine, paper: PaperExchange, source: Iterable[MarkTick], stop: asyncio.Event,
                    speed: float = 1.0, tick_seconds: float = TICK_SECONDS) -> None:
    """Start the engine on the paper venue and run feed and periodic work until `stop` is set."""
    await engine.start()
    try:
        await asyncio.gather(periodic(engine, stop, tick_seconds), paper_feed(paper, source, stop, speed))
    finally:
        await engine.stop()
