"""The engine's periodic work, on its one asyncio loop (single writer).

- `periodic`: every `tick_seconds`, `engine.tick()` (due DELAY orders, expired approvals, timed
  lifts, account refresh); arms the venue's dead-man switch (`scheduleCancel` now + 60 s) and
  re-arms it every 20 s through `engine.venue_watch`, so resting orders die if the engine does
  (and a venue that refuses it is reported); disarms it on a clean stop.
- `equity_points`: an equity point for the store every minute (the facade adds one per fill).
- `run_paper`: the engine on the paper venue with its feed (`engine.venues.paper.feed`) and
  the periodic work, until stopped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Iterable

from engine.venues.paper.exchange import PaperExchange
from engine.domain.clock import wait_or_stop
from engine.venues.paper.feed import paper_feed
from engine.venues.paper.prices import MarkTick
from engine.domain.events import EventKind
from engine.live.engine import Engine
from engine.live.venue_watch import DEAD_MAN_REARM_SECONDS

log = logging.getLogger("perpguard.live")

TICK_SECONDS = 1.0
EQUITY_SECONDS = 60.0


async def periodic(engine: Engine, stop: asyncio.Event, tick_seconds: float = TICK_SECONDS) -> None:
    watch = engine.venue_watch
    await watch.arm()
    armed_at = time.monotonic()
    try:
        while not await wait_or_stop(stop, tick_seconds):
            try:
                await engine.tick()
            except Exception:  # one bad tick must not stop the service; it is logged and shown
                log.exception("engine tick failed")
                engine.events.emit(EventKind.ENGINE_ERROR, "periodic engine work failed; see the log")
            if time.monotonic() - armed_at >= DEAD_MAN_REARM_SECONDS:
                await watch.arm()  # never raises: a refusal is reported by the watch
                armed_at = time.monotonic()
    finally:
        await watch.arm(None)  # a clean stop leaves resting orders alone


async def equity_points(record, stop: asyncio.Event, seconds: float = EQUITY_SECONDS) -> None:
    """`record()` an equity point every `seconds` (one a minute by default) until `stop`."""
    while not await wait_or_stop(stop, seconds):
        try:
            record()
        except Exception:  # a store hiccup must not end the series; the next minute tries again
            log.exception("recording an equity point failed")


async def run_paper(engine: Engine, paper: PaperExchange, source: Iterable[MarkTick], stop: asyncio.Event,
                    speed: float = 1.0, tick_seconds: float = TICK_SECONDS) -> None:
    """Start the engine on the paper venue and run feed and periodic work until `stop` is set."""
    await engine.start()
    try:
        await asyncio.gather(periodic(engine, stop, tick_seconds), paper_feed(paper, source, stop, speed))
    finally:
        await engine.stop()
