"""Waiting on a condition with a deadline, never on a bare sleep: the one way tests wait for
something asynchronous (a snapshot, an event, a file on disk) to happen."""

from __future__ import annotations

import asyncio
import time
from typing import Callable, TypeVar

T = TypeVar("T")
POLL_SECONDS = 0.02


async def eventually(condition: Callable[[], T], seconds: float = 10.0, what: str = "the condition") -> T:
    """The first truthy value of `condition()`, polled on the running loop; AssertionError after `seconds`."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not (value := condition()):
        if loop.time() > end:
            raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")
        await asyncio.sleep(POLL_SECONDS)
    return value


def eventually_sync(condition: Callable[[], T], seconds: float = 30.0, what: str = "the condition") -> T:
    """The same, for a test that is not a coroutine (it blocks the calling thread while polling)."""
    end = time.monotonic() + seconds
    while not (value := condition()):
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")
        time.sleep(POLL_SECONDS)
    return value
