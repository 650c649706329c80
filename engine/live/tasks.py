"""The engine's background work (a reducing order's lifecycle, a panic exit, a re-read of the
venue): tasks on the engine's loop, tracked so the engine knows when it is busy and can wait
for them, and so a failure is reported instead of lost."""

from __future__ import annotations

import asyncio
import logging
from typing import Callable, Coroutine

log = logging.getLogger("perpguard.engine")


class Tasks:
    def __init__(self, on_failure: Callable[[BaseException], None]) -> None:
        self._running: set[asyncio.Task] = set()
        self._on_failure = on_failure

    def __bool__(self) -> bool:
        """Something is still running."""
        return bool(self._running)

    def spawn(self, coro: Coroutine) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._running.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("engine task failed", exc_info=task.exception())
            self._on_failure(task.exception())

    async def wait(self) -> None:
        """Until every task running now has ended (failures are reported, not raised)."""
        if self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    def cancel(self) -> None:
        for task in list(self._running):
            task.cancel()
