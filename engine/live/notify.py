"""Webhook notifications (SPEC section 5): NOTIFY-tier orders, breaker trips, trading-state
changes, panic exits (and every retry of an incomplete one), liquidations, a dead-man switch
the venue refuses or fires, and an API wallet about to expire are POSTed as JSON to every
configured URL.

Never in the gate's way: the engine's listener only puts the event on a bounded queue; one
background task delivers, retrying 5xx, 429 and network errors with exponential backoff. A
webhook that stays down loses its oldest notifications, never the engine's time.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from engine.domain.events import EngineEvent, EventKind

log = logging.getLogger("perpguard.notify")

NOTIFY_KINDS = frozenset({EventKind.NOTIFIED, EventKind.BREAKER_TRIPPED, EventKind.STATE_CHANGED, EventKind.PANIC_STARTED,
                          EventKind.PANIC_DONE, EventKind.PANIC_RETRY, EventKind.LIQUIDATED, EventKind.DEAD_MAN_REFUSED,
                          EventKind.DEAD_MAN_FIRED, EventKind.AGENT_EXPIRING, EventKind.VENUE_STOP_FAILED,
                          EventKind.VENUE_STOP_TRIGGERED})
QUEUE_LIMIT = 1000


class Notifier:
    def __init__(self, urls: list[str], timeout: float = 5.0, retries: int = 3, backoff: float = 0.5) -> None:
        self.urls = list(urls)
        self.retries, self.backoff = retries, backoff
        self.client = httpx.AsyncClient(timeout=timeout)
        self.queue: asyncio.Queue[EngineEvent] = asyncio.Queue(QUEUE_LIMIT)
        self.delivered = 0
        self.failed = 0
        self._worker: asyncio.Task | None = None

    def on_event(self, event: EngineEvent) -> None:
        """The engine's listener: O(1), never waits."""
        if event.kind not in NOTIFY_KINDS or not self.urls:
            return
        if self.queue.full():
            self.queue.get_nowait()
            self.failed += 1
            log.warning("webhook queue full: the oldest notification was dropped")
        self.queue.put_nowait(event)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._deliver_all())

    async def _deliver_all(self) -> None:
        while not self.queue.empty():
            event = self.queue.get_nowait()
            payload = {"source": "perpguard", **event.as_dict()}
            for url in self.urls:
                if await self._post(url, payload):
                    self.delivered += 1
                else:
                    self.failed += 1

    async def _post(self, url: str, payload: dict) -> bool:
        for attempt in range(self.retries + 1):
            try:
                response = await self.client.post(url, json=payload)
                if response.status_code < 400:
                    return True
                if response.status_code != 429 and response.status_code < 500:
                    log.warning("webhook %s refused a notification: HTTP %d", url, response.status_code)
                    return False
            except httpx.HTTPError as exc:
                log.info("webhook %s: %s (attempt %d)", url, exc, attempt + 1)
            if attempt < self.retries:
                await asyncio.sleep(self.backoff * 2 ** attempt)
        log.warning("webhook %s: notification not delivered after %d attempts", url, self.retries + 1)
        return False

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait (bounded) for the queue to be delivered: tests and a clean stop."""
        if self._worker is not None:
            await asyncio.wait_for(asyncio.shield(self._worker), timeout)

    async def close(self) -> None:
        try:
            await self.drain()
        except (asyncio.TimeoutError, Exception):
            log.warning("stopping with %d webhook notifications undelivered", self.queue.qsize())
        await self.client.aclose()
