"""The paper exchange's market feed in real time: plays a mark source (a seeded RandomWalk, a
flash crash) into the exchange at wall-clock pace (`speed` > 1 plays faster), all marks of one
source step together."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Iterable

from engine.domain.clock import wait_or_stop
from engine.venues.paper.exchange import PaperExchange
from engine.venues.paper.prices import MarkTick


async def paper_feed(paper: PaperExchange, source: Iterable[MarkTick], stop: asyncio.Event, speed: float = 1.0) -> None:
    """Play `source` into `paper`: all marks of one source step together, then wait the step."""
    start_real = time.monotonic()
    start_sim: float | None = None
    for at, step in itertools.groupby(source, key=lambda tick: tick.time):
        if start_sim is None:
            start_sim = at
        due = start_real + (at - start_sim) / speed
        if await wait_or_stop(stop, due - time.monotonic()):
            return
        for tick in step:
            paper.set_mark(tick.coin, tick.px)
