"""The store's writes, off the engine loop (SPEC section 12, "durable before acknowledged").

One thread takes every write in the order it was handed over (FIFO), so the hash chain keeps the
order things happened in, and the engine loop never waits on the database unless it asks to:
`submit(fn, ...)` queues a write and returns at once; `await durable(deadline)` waits until
everything queued before it is committed, for at most `deadline` seconds.

Group commit: the writes queued while one commits are taken together and committed once
(`batch`: the store's `transactions.batch`, one transaction for all of them), so an order's decision
and the counter changes it made cost one commit, and a burst of events does not queue up commit
after commit. If anything in a group fails, the group is rolled back and its writes are done one
by one, so a bad write fails alone and the others are committed.

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
from contextlib import AbstractContextManager
from typing import Any, Callable

from sqlalchemy.exc import DBAPIError, OperationalError

log = logging.getLogger("perpguard.store")

RETRY_FIRST, RETRY_MAX = 0.05, 1.0  # seconds between attempts at an unavailable database
STOP_SECONDS = 10.0  # a clean stop waits this long for the queue to drain
REPORT_SECONDS = 10.0  # failures are reported at most this often (a report is itself written)
GROUP_MAX = 200  # writes committed together at most

_STOP = object()


def _unavailable(exc: BaseException) -> bool:
    """The database could not take the write now (locked, disconnected): try again later."""
    return isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


class StoreWriter:
    """`batch`: a context manager factory under which the store's writes share one transaction
    (`Store.transactions.batch`); without it every write commits on its own."""

    def __init__(self, on_failure: Callable[[str], None] | None = None,
                 batch: Callable[[], AbstractContextManager] | None = None) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._batch = batch
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
            group, stop = self._next_group()
            group = [item for item in group if item[3].set_running_or_notify_cancel()]
            if len(group) > 1 and self._batch is not None and self.unavailable_since is None:
                done = self._together(group)
            else:
                done = False
            if not done:
                for fn, args, kwargs, future in group:
                    self._one(fn, args, kwargs, future)
            if stop:
                return

    def _next_group(self) -> tuple[list[tuple], bool]:
        """The next write (waiting for one) and every write queued behind it, up to GROUP_MAX;
        True when the stop was among them (the writes before it are done first)."""
        group = [self._queue.get()]
        while len(group) < GROUP_MAX:
            try:
                group.append(self._queue.get_nowait())
            except queue.Empty:
                break
        for i, item in enumerate(group):
            if item[0] is _STOP:
                return group[:i], True
        return group, False

    def _together(self, group: list[tuple]) -> bool:
        """Commit the group's writes in one transaction; False (all rolled back) if anything failed."""
        try:
            with self._batch():
                results = [fn(*args, **kwargs) for fn, args, kwargs, _future in group]
        except Exception as exc:  # done one by one instead: a bad write fails alone, an unavailable database is retried
            if _unavailable(exc):
                self._mark_unavailable(exc)  # known at once, not after a second busy timeout
            return False
        for (_fn, _args, _kwargs, future), result in zip(group, results):
            future.set_result(result)
        return True

    def _one(self, fn: Callable[..., Any], args: tuple, kwargs: dict, future: concurrent.futures.Future) -> None:
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

    def _mark_unavailable(self, exc: BaseException) -> None:
        if self.unavailable_since is None:
            self.unavailable_since = time.monotonic()
            log.warning("the database is unavailable (%s): writes wait and are retried", exc.__class__.__name__)

    def _attempt(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        delay = RETRY_FIRST
        while True:
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                if not _unavailable(exc) or self._stopping:
                    raise
                self._mark_unavailable(exc)
                time.sleep(delay)
                delay = min(RETRY_MAX, delay * 2)
                continue
            if self.unavailable_since is not None:
                log.warning("the database answers again after %.1f s", time.monotonic() - self.unavailable_since)
                self.unavailable_since = None
            return result


def _nothing() -> None:
    return None
