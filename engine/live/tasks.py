"""The engine's background work (a reducing order's lifecycle, a panic exit, a re-read of the
venue): tasks on the engine's loop, tracked so the engine knows when it is busy and can wait
for them, and so a failure is reported instead of lost.

A background task (`spawn(..., background=True)`: a panic exit retrying until the account is
flat) may run until a condition far off: it is reported and cancelled like the others, but
`wait` and `bool` ignore it, so settling the engine never waits for the venue to come back."""

from __future__ import annotations

import asyncio
import logging
from typing import Callable, Coroutine

log = logging.getLogger("perpguard.engine")


class Tasks:
    def __init__(self, on_failure: Callable[[BaseException], None]) -> None:
        self._running: set[asyncio.Task] = set()
        self._background: set[asyncio.Task] = set()
        self._on_failure = on_failure

    def __bool__(self) -> bool:
        """Something is still running."""
        return bool(self._running)

    def spawn(self, coro: Coroutine, *, background: bool = False) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        (self._background if background else self._running).add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self._running.discard(task)
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("engine task failed", exc_info=task.exception())
            self._on_failure(task.exception())

    async def wait(self) -> None:
        """Until every task running now has ended (failures are reported, not raised)."""
        if self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    def cancel(self) -> None:
        for task in [*self._running, *self._background]:
            task.cancel()
