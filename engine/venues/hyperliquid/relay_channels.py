"""Hyperliquid's public market channels (allMids, l2Book, trades, bbo, candle, activeAssetCtx)
relayed to many local subscribers over shared upstream websockets, so N bots behind perpguard
hold one venue subscription per feed, not N (the venue allows 1000 subscriptions and 100
connections per IP: docs, "Rate limits and user limits").

- A subscription goes upstream with its first local subscriber and is unsubscribed with its
  last. Every upstream message of its channel reaches each local subscriber of it.
- A message names its feed only by channel, coin and interval (`l2Book` BTC, `candle` BTC 1m:
  the SDK's `ws_msg_to_identifier` matches them the same way; an `activeAssetCtx` subscription
  is answered on `activeAssetCtx`, or `activeSpotAssetCtx` for a spot coin, both its feed), so two subscriptions that differ
  in anything else (an l2Book with and without `nSigFigs`, allMids of two dexes) cannot share a
  connection: each upstream connection (a "lane") holds at most one subscription per feed, and a
  second variant opens a second lane. Normally there is one lane.
- A lane reconnects after any drop with exponential backoff and jitter (reset once data flowed)
  and subscribes everything again; it sends `{"method": "ping"}` when it has sent nothing for
  `ping_seconds` (50 s, as the SDK: the venue closes a connection silent for 60 s, docs
  "Timeouts and heartbeats").
- The venue's refusal of a subscription (`{"channel": "error", "data": "Invalid subscription
  {...}"}`, the subscription quoted) is passed to that subscription's local subscribers.

Everything runs on the loop that calls `subscribe`; a subscriber's `send` is called on it with
the message as the venue wrote it, shared by every subscriber (read it, never change it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from dataclasses import dataclass
from typing import Any, Callable

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from engine.venues.hl_api import MARKET_CHANNELS, InfoRefused, Send
from engine.venues.hyperliquid.feed import CLOSE_TIMEOUT_SECONDS, MAX_MESSAGE_BYTES, OPEN_TIMEOUT_SECONDS, PING_SECONDS
from engine.venues.hyperliquid.http import backoff

log = logging.getLogger("perpguard.hyperliquid.relay")

# docs, "Subscriptions": the candle intervals the venue serves
CANDLE_INTERVALS = frozenset({"1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "8h", "12h", "1d", "3d", "1w", "1M"})
PING = json.dumps({"method": "ping"})
# what the venue's error channel says of a request it cannot parse (ccxt pro quotes it in
# `handle_error_message`); the request follows
UNPARSED = "Error parsing JSON into valid websocket request: "

Feed = tuple[str, ...]  # what a message names: ("l2Book", "BTC"), ("candle", "BTC", "1m"), ("allMids",)


def subscription_key(subscription: dict[str, Any]) -> str:
    """One text per subscription, whatever the order of its fields."""
    return json.dumps(subscription, sort_keys=True, separators=(",", ":"))


def check_subscription(subscription: Any) -> None:
    """Raise InfoRefused for a market subscription the venue cannot parse (an unknown type, no
    coin, an unknown candle interval), with the text its `error` channel sends then. Anything
    else (an unknown coin) is the venue's to judge: its refusal reaches the subscribers."""
    ok = isinstance(subscription, dict) and subscription.get("type") in MARKET_CHANNELS
    if ok and subscription["type"] != "allMids":
        coin = subscription.get("coin")
        ok = isinstance(coin, str) and bool(coin)
        if ok and subscription["type"] == "candle":
            ok = subscription.get("interval") in CANDLE_INTERVALS
    if not ok:
        frame = json.dumps({"method": "subscribe", "subscription": subscription}, separators=(",", ":"))
        raise InfoRefused(400, UNPARSED + frame)


def feed_of_subscription(subscription: dict[str, Any]) -> Feed:
    kind = subscription["type"]
    if kind == "allMids":
        return ("allMids",)
    if kind == "candle":
        return ("candle", subscription["coin"], subscription["interval"])
    return (kind, subscription["coin"])


def feed_of_message(message: dict[str, Any]) -> Feed | None:
    """The feed an upstream message belongs to, as the venue names it (None: not a market feed)."""
    channel, data = message.get("channel"), message.get("data")
    try:
        if channel == "allMids":
            return ("allMids",)
        if channel in ("l2Book", "bbo"):
            return (channel, data["coin"])
        if channel in ("activeAssetCtx", "activeSpotAssetCtx"):
            return ("activeAssetCtx", data["coin"])
        if channel == "trades":
            return ("trades", data[0]["coin"]) if data else None
        if channel == "candle":
            return ("candle", data["s"], data["i"])
    except (KeyError, IndexError, TypeError):
        return None
    return None


def _refused_key(text: str) -> str | None:
    """The subscription an error message quotes (`Invalid subscription {...}`, or the whole
    request), as its key."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        return None
    try:
        quoted = json.loads(text[start:end + 1])
    except ValueError:
        return None
    if isinstance(quoted, dict) and isinstance(quoted.get("subscription"), dict):
        quoted = quoted["subscription"]  # the whole request was quoted
    return subscription_key(quoted) if isinstance(quoted, dict) else None


class _Lane:
    """One upstream connection and the subscriptions it should hold (at most one per feed)."""

    def __init__(self, url: str, deliver: Callable[[str, dict[str, Any]], None], ping_seconds: float,
                 rng: Callable[[], float]) -> None:
        self.url = url
        self.ping_seconds = ping_seconds
        self.wanted: dict[str, dict[str, Any]] = {}  # key -> subscription
        self.feeds: dict[Feed, str] = {}  # feed -> key
        self.acknowledged: set[str] = set()  # keys the venue confirmed on this connection
        self.connects = 0
        self.pongs = 0
        self._deliver = deliver
        self._rng = rng
        self._subscribed: dict[str, dict[str, Any]] = {}  # sent on this connection
        self._changed = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="hyperliquid-relay-lane")

    def holds(self, feed: Feed) -> bool:
        return feed in self.feeds

    def want(self, key: str, subscription: dict[str, Any], feed: Feed) -> None:
        self.wanted[key] = subscription
        self.feeds[feed] = key
        self._changed.set()

    def drop(self, key: str) -> None:
        subscription = self.wanted.pop(key, None)
        if subscription is not None:
            self.feeds.pop(feed_of_subscription(subscription), None)
            self._changed.set()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        attempt = 0
        while True:
            flowed = False
            try:
                async with connect(self.url, open_timeout=OPEN_TIMEOUT_SECONDS, close_timeout=CLOSE_TIMEOUT_SECONDS,
                                   max_size=MAX_MESSAGE_BYTES) as ws:
                    self.connects += 1
                    flowed = await self._session(ws)
            except (OSError, asyncio.TimeoutError, WebSocketException) as exc:
                log.warning("hyperliquid relay websocket: %s: %s", type(exc).__name__, exc)
            self._subscribed.clear()
            self.acknowledged.clear()
            attempt = 0 if flowed else attempt + 1  # back off further only while nothing works
            await asyncio.sleep(backoff(attempt, self._rng))

    async def _session(self, ws: ClientConnection) -> bool:
        """Subscribe what is wanted and keep it so; read until the connection ends. True when
        market data flowed."""
        self._subscribed.clear()
        self._changed.set()
        writer = asyncio.create_task(self._write(ws))
        flowed = False
        try:
            async for raw in ws:
                flowed = self._read(raw) or flowed
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketException):
                await writer
        return flowed

    async def _write(self, ws: ClientConnection) -> None:
        """Bring the connection's subscriptions to what is wanted, in order, whenever that
        changes; ping when nothing was sent for `ping_seconds`."""
        while True:
            try:
                await asyncio.wait_for(self._changed.wait(), self.ping_seconds)
            except asyncio.TimeoutError:
                await ws.send(PING)
                continue
            self._changed.clear()  # a change made while we send sets it again
            for key in [k for k in self._subscribed if k not in self.wanted]:
                subscription = self._subscribed.pop(key)
                await ws.send(json.dumps({"method": "unsubscribe", "subscription": subscription}))
            for key, subscription in list(self.wanted.items()):
                if key not in self._subscribed:
                    self._subscribed[key] = subscription
                    await ws.send(json.dumps({"method": "subscribe", "subscription": subscription}))

    def _read(self, raw: str | bytes) -> bool:
        try:
            message = json.loads(raw)
        except ValueError:
            return False  # the greeting ("Websocket connection established.")
        if not isinstance(message, dict):
            return False
        channel = message.get("channel")
        if channel == "pong":
            self.pongs += 1
        elif channel == "subscriptionResponse":
            data = message.get("data") or {}
            if isinstance(data, dict) and isinstance(data.get("subscription"), dict):
                key = subscription_key(data["subscription"])
                if data.get("method") == "subscribe":
                    self.acknowledged.add(key)
                else:
                    self.acknowledged.discard(key)
        elif channel == "error":
            text = str(message.get("data"))
            key = _refused_key(text)
            if key in self.wanted:
                self._deliver(key, message)
            else:
                log.warning("hyperliquid relay websocket error: %s", text[:300])
        else:
            feed = feed_of_message(message)
            key = self.feeds.get(feed) if feed is not None else None
            if key is not None:
                self._deliver(key, message)
                return True
        return False


@dataclass(eq=False)
class _Subscriber:
    send: Send
    gone: bool = False


class ChannelRelay:
    """The market channels of `url` (the venue's websocket), shared by every local subscriber."""

    def __init__(self, url: str, *, ping_seconds: float = PING_SECONDS, rng: Callable[[], float] = random.random) -> None:
        self.url = url
        self.ping_seconds = ping_seconds
        self._rng = rng
        self.lanes: list[_Lane] = []
        self._subscribers: dict[str, list[_Subscriber]] = {}  # key -> local subscribers
        self._lane_of: dict[str, _Lane] = {}

    def subscribe(self, subscription: dict[str, Any], send: Send) -> Callable[[], None]:
        """Relay one market channel to `send`; the returned call ends it (idempotent). Raises
        InfoRefused for a subscription the venue would refuse."""
        check_subscription(subscription)
        key = subscription_key(subscription)
        subscribers = self._subscribers.get(key)
        if subscribers is None:
            subscribers = self._subscribers[key] = []
            feed = feed_of_subscription(subscription)
            lane = next((lane for lane in self.lanes if not lane.holds(feed)), None)
            if lane is None:
                lane = _Lane(self.url, self._deliver, self.ping_seconds, self._rng)
                self.lanes.append(lane)
            lane.want(key, dict(subscription), feed)
            self._lane_of[key] = lane
        subscriber = _Subscriber(send)
        subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber.gone:
                return
            subscriber.gone = True
            remaining = self._subscribers.get(key, [])
            if subscriber in remaining:
                remaining.remove(subscriber)
            if not remaining and key in self._subscribers:
                del self._subscribers[key]
                self._lane_of.pop(key).drop(key)
        return unsubscribe

    def subscribers(self, subscription: dict[str, Any]) -> int:
        """How many local subscribers the subscription has."""
        return len(self._subscribers.get(subscription_key(subscription), ()))

    def _deliver(self, key: str, message: dict[str, Any]) -> None:
        for subscriber in list(self._subscribers.get(key, ())):
            try:
                subscriber.send(message)
            except Exception:  # one subscriber's failure is not the others'
                log.exception("a relay subscriber failed on a %s message", message.get("channel"))

    async def close(self) -> None:
        for lane in self.lanes:
            await lane.close()
        self.lanes = []
        self._subscribers.clear()
        self._lane_of.clear()
