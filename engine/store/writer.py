"""The store's writes, off the engine loop (SPEC section 12, "durable before acknowledged").

One thread takes every write in the order it was handed over (FIFO), so the hash chain keeps the
order things happened in, and the engine loop never waits on the database unless it asks to:
`submit(fn, ...)` queues a write and returns at once; `await durable(deadline)` waits until
everything queued before it is committed, for at most `deadline` seconds.

A write that fails because the database is unavailable (locked by another process beyond its
busy timeout, a lost PostgreSQL connection) is retried with backoff until it succeeds: nothing
queued is dropped, and once the database answers again the queue drains in order. Meanwhile
`durable()` answers False, so the caller refuses what must not happen unjournaled (an order is
not sent: 503) while protection (de-risk, panic, the kill switch) acts regardless and is
recorded as soon as the database answers. A write that fails for any other reason (a bug, a
constraint) is logged and reported, not retried.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
import time
from typing import Any, Callable

from sqlalchemy.exc import DBAPIError, OperationalError

log = logging.getLogger("perpguard.store")

RETRY_FIRST, RETRY_MAX = 0.05, 1.0  # seconds between attempts at an unavailable database
STOP_SECONDS = 10.0  # a clean stop waits this long for the queue to drain
REPORT_SECONDS = 10.0  # failures are reported at most this often (a report is itself written)

_STOP = object()


def _unavailable(exc: BaseException) -> bool:
    """The database could not take the write now (locked, disconnected): try again later."""
    return isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


class StoreWriter:
    def __init__(self, on_failure: Callable[[str], None] | None = None) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        # Called from the writer's thread when a write fails for good; the node sets it, once its
        # loop runs, to post an engine event there.
        self.on_failure = on_failure
        self._thread = threading.Thread(target=self._run, name="perpguard-store-writer", daemon=True)
        self._stopping = False
        self._failed, self._reported_at = 0, float("-inf")
        self.unavailable_since: float | None = None  # monotonic time the database stopped answering
        self._thread.start()

    # ---- the loop's side ----------------------------------------------------------------------

    def submit(self, fn: Callable[..., Any], *args, **kwargs) -> concurrent.futures.Future:
        """Queue `fn(*args, **kwargs)` (a store method); its future resolves once committed."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put((fn, args, kwargs, future))
        return future

    async def durable(self, deadline: float) -> bool:
        """Whether everything queued so far is committed within `deadline` seconds."""
        barrier = asyncio.wrap_future(self.submit(_nothing))
        try:
            await asyncio.wait_for(asyncio.shield(barrier), deadline)
            return True
        except asyncio.TimeoutError:
            return False

    @property
    def available(self) -> bool:
        return self.unavailable_since is None

    def stop(self, timeout: float = STOP_SECONDS) -> bool:
        """Drain the queue (for at most `timeout` seconds) and end the thread; False if writes
        were still waiting for the database."""
        self._queue.put((_STOP, (), {}, None))
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._stopping = True  # stop retrying: the process is going away
            log.error("the database did not take the last writes within %.0f s: they are lost", timeout)
            return False
        return True

    # ---- the writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            fn, args, kwargs, future = self._queue.get()
            if fn is _STOP:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(self._attempt(fn, args, kwargs))
            except BaseException as exc:  # reported to whoever waits, and to the engine
                future.set_exception(exc)
                log.error("a store write failed: %r", exc)
                self._report(exc)

    def _report(self, exc: BaseException) -> None:
        """Tell the engine, at most once every REPORT_SECONDS: the report is an event, which is
        written too, and must not feed a storm of reports if every write fails."""
        self._failed += 1
        now = time.monotonic()
        if self.on_failure is not None and now - self._reported_at >= REPORT_SECONDS:
            self._reported_at = now
            count, self._failed = self._failed, 0
            self.on_failure(f"{count} store write(s) failed, the last with {exc.__class__.__name__}; see the log")

    def _attempt(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        delay = RETRY_FIRST
        while True:
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                if not _unavailable(exc) or self._stopping:
                    raise
                if self.unavailable_since is None:
                    self.unavailable_since = time.monotonic()
                    log.warning("the database is unavailable (%s): writes wait and are retried", exc.__class__.__name__)
                time.sleep(delay)
                delay = min(RETRY_MAX, delay * 2)
                continue
            if self.unavailable_since is not None:
                log.warning("the database answers again after %.1f s", time.monotonic() - self.unavailable_since)
                self.unavailable_since = None
            return result


def _nothing() -> None:
    return None
