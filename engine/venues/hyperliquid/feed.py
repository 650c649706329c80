"""One websocket to Hyperliquid that stays up: subscribe, read, ping, reconnect, and say when
market data goes silent.

- Reconnects after any drop with exponential backoff and jitter (reset once data flows again)
  and sends every subscription again on the new connection.
- Sends Hyperliquid's application ping (`{"method": "ping"}`) every 50 s: the venue closes a
  connection that has sent nothing for 60 s. The websockets library's own protocol pings catch
  a dead TCP connection.
- Market data silent for `stale_after` seconds: `on_stale`; silent three times that long on an
  open connection: the connection is dropped and made again. The first market data after a
  stale spell or a reconnect: `on_restored(events_lost)`, `events_lost` true after a reconnect
  (user events may have been missed; the engine reconciles).

Silence is measured on the monotonic clock, so a wall-clock jump cannot fake or hide it.
Callbacks run on the loop that runs the feed; an exception in one is logged, not fatal.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from typing import Any, Callable

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from engine.venues.hyperliquid.http import backoff

log = logging.getLogger("perpguard.hyperliquid.feed")

PING_SECONDS = 50.0
RECONNECT_AFTER_STALE_FACTOR = 3
OPEN_TIMEOUT_SECONDS = 10.0
CLOSE_TIMEOUT_SECONDS = 2.0  # a dead peer never answers our close: give up on it quickly
MAX_MESSAGE_BYTES = 16 * 2**20  # a userFills snapshot can be large


def subscription_key(subscription: dict[str, Any]) -> str:
    return json.dumps(subscription, sort_keys=True)


class Feed:
    def __init__(self, url: str, on_message: Callable[[str, Any], bool], on_stale: Callable[[float], None],
                 on_restored: Callable[[bool], None], stale_after: float, *, ping_seconds: float = PING_SECONDS,
                 rng: Callable[[], float] = random.random, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.stale_after = stale_after
        self.ping_seconds = ping_seconds
        self._on_message, self._on_stale, self._on_restored = on_message, on_stale, on_restored
        self._rng = rng
        self._monotonic = monotonic
        self.subscriptions: list[dict[str, Any]] = []
        self.acknowledged: set[str] = set()  # subscription keys the venue confirmed on this connection
        self.connects = 0
        self.pongs = 0
        self.stale = False
        self._ws: ClientConnection | None = None
        self._connected: asyncio.Event | None = None
        self._tasks: list[asyncio.Task] = []
        self._last_data = self._connected_at = monotonic()
        self._gap = False  # a connection dropped since market data last flowed
        self._flowed = False  # market data came on the current connection

    @property
    def connected(self) -> bool:
        return self._ws is not None

    async def start(self) -> None:
        self._connected = asyncio.Event()
        self._last_data = self._monotonic()
        self._tasks = [asyncio.create_task(self._run(), name="hyperliquid-feed"),
                       asyncio.create_task(self._watch(), name="hyperliquid-feed-watchdog")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._ws is not None:
            await self._ws.close()
            self._ws = None

    async def wait_connected(self, timeout: float) -> bool:
        """True once subscriptions went out on a connection (False after `timeout` s)."""
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def add(self, subscription: dict[str, Any]) -> None:
        """Subscribe now (if connected) and on every reconnect."""
        if any(subscription_key(s) == subscription_key(subscription) for s in self.subscriptions):
            return
        self.subscriptions.append(subscription)
        if self._ws is not None:
            try:
                await self._ws.send(json.dumps({"method": "subscribe", "subscription": subscription}))
            except WebSocketException:
                pass  # the reconnect subscribes again

    async def _run(self) -> None:
        attempt = 0
        while True:
            self._flowed = False
            try:
                async with connect(self.url, open_timeout=OPEN_TIMEOUT_SECONDS, close_timeout=CLOSE_TIMEOUT_SECONDS,
                                   max_size=MAX_MESSAGE_BYTES) as ws:
                    await self._session(ws)
            except (OSError, asyncio.TimeoutError, WebSocketException) as exc:
                log.warning("hyperliquid websocket: %s: %s", type(exc).__name__, exc)
            finally:
                if self._ws is not None:
                    self._gap = True
                self._ws = None
                self._connected.clear()
            attempt = 0 if self._flowed else attempt + 1  # back off further only while nothing works
            await asyncio.sleep(backoff(attempt, self._rng))

    async def _session(self, ws: ClientConnection) -> None:
        """Subscribe, then read until the connection ends."""
        self.acknowledged.clear()
        sent = 0
        while sent < len(self.subscriptions):  # `add` may append while we send
            await ws.send(json.dumps({"method": "subscribe", "subscription": self.subscriptions[sent]}))
            sent += 1
        self._ws = ws
        self.connects += 1
        self._connected_at = self._monotonic()
        self._connected.set()
        pinger = asyncio.create_task(self._ping(ws))
        try:
            async for raw in ws:
                self._read(raw)
        finally:
            pinger.cancel()

    async def _ping(self, ws: ClientConnection) -> None:
        while True:
            await asyncio.sleep(self.ping_seconds)
            await ws.send(json.dumps({"method": "ping"}))

    def _read(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            return  # the greeting ("Websocket connection established.")
        channel = message.get("channel") if isinstance(message, dict) else None
        if channel == "pong":
            self.pongs += 1
        elif channel == "subscriptionResponse":
            self.acknowledged.add(subscription_key(message["data"]["subscription"]))
        elif channel == "error":
            log.warning("hyperliquid websocket error: %s", message.get("data"))
        else:
            try:
                market_data = self._on_message(channel, message.get("data"))
            except Exception:
                log.exception("could not handle a hyperliquid %s message", channel)
                return
            if market_data:
                self._flowed = True
                self._last_data = self._monotonic()
                if self.stale or self._gap:
                    lost, self.stale, self._gap = self._gap, False, False
                    self._on_restored(lost)

    async def _watch(self) -> None:
        interval = min(0.25, self.stale_after / 4)
        while True:
            await asyncio.sleep(interval)
            now = self._monotonic()
            silent = now - self._last_data
            if not self.stale and silent >= self.stale_after:
                self.stale = True
                self._on_stale(silent)
            limit = RECONNECT_AFTER_STALE_FACTOR * self.stale_after
            if self._ws is not None and silent >= limit and now - self._connected_at >= limit:
                log.warning("hyperliquid websocket silent for %.0f s: reconnecting", silent)
                await self._ws.close()
