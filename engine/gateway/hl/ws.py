"""`WS /hl/ws`: Hyperliquid's websocket protocol (docs "Websocket", "Subscriptions", "Post
requests", "Timeouts and heartbeats"), so the SDK's `WebsocketManager`, ccxt pro and what is
built on them connect to perpguard unchanged.

- Every frame is JSON. No greeting on connect: the official SDK skips a text frame
  `Websocket connection established.`, but Hummingbot's connector, which works on the venue,
  reads every frame as JSON and reconnects on that one (seen running it against perpguard).
- `{"method": "subscribe", "subscription": {...}}` -> `{"channel": "subscriptionResponse",
  "data": {"method": "subscribe", "subscription": {...}}}` (the subscription as sent), then the
  channel's messages; `unsubscribe` likewise. `user` is taken for `userEvents` (the channel its
  messages come on; Hummingbot's connector subscribes with it). Market channels (allMids,
  l2Book, trades, bbo, candle, activeAssetCtx) come from the venue (`hl.venue.subscribe`); the
  user channels of the guarded account or of a registered bot (both mean the guarded account)
  from the engine (`user_channels`). `userFills` starts with `isSnapshot: true` and the recent
  fills (`/info userFills`); `clearinghouseState` with the account now (`/info
  clearinghouseState`). Another user's subscription is confirmed and gets nothing (an empty
  `userFills` snapshot, as the venue sends for an address that never traded).
- Refusals on the `error` channel in the venue's words (the texts clients parse, see
  nktkas/hyperliquid `_postRequest.ts` and ccxt pro `handle_error_message`): `Already
  subscribed: {...}`, `Already unsubscribed: {...}`, `Error parsing JSON into valid websocket
  request: <what was sent>` (malformed JSON, an unknown method or subscription type, a user that
  is not an address), `too many pending post requests id=N`; a market subscription the venue
  refuses, in the venue's text.
- `{"method": "post", "id": N, "request": {"type": "info" | "action", "payload": {...}}}` goes
  through `hl.info` / `hl.exchange` (the same gate as HTTP) and is answered `{"channel": "post",
  "data": {"id": N, "response": {"type": "info", "payload": {"type": <info type>, "data": ...}}}}`
  or `{"type": "action", "payload": <the /exchange answer>}` (a refused action included: the
  venue answers it as an action, `{"status": "err", ...}`); what HTTP would refuse with a status
  is `{"type": "error", "payload": "<status> <reason>: <text>"}`. Posts are answered as they
  finish, each with its id.
- `{"method": "ping"}` -> `{"channel": "pong"}`.

Sends keep their order per connection and never wait on the client: each goes to a bounded
outbox drained by one writer. A client more than OUTBOX_LIMIT messages behind is disconnected
(1013, try again later); it reconnects and resubscribes, and each snapshot tells it the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import re
from typing import Any, Callable

from fastapi import WebSocket, WebSocketDisconnect

from engine.gateway.hl.api import HlApi
from engine.gateway.hl.user_channels import USER_CHANNELS, UserChannels
from engine.venues.hl_api import MARKET_CHANNELS, InfoRefused
from engine.venues.hyperliquid.relay import cache_key
from engine.venues.hyperliquid.relay_channels import UNPARSED

log = logging.getLogger("perpguard.gateway.hl")

OUTBOX_LIMIT = 1000
MAX_PENDING_POSTS = 100
SNAPSHOT_TIMEOUT_SECONDS = 10.0
TOO_SLOW = 1013  # "try again later"
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def subscription_key(subscription: dict[str, Any]) -> str:
    """One text per subscription: fields in any order, addresses in any case (the venue reads
    them case-blind), coins as written (they are case-sensitive: `kPEPE`)."""
    return cache_key(subscription)


def error_text(status: int, body: Any) -> str:
    """What a post gets where HTTP would answer `status` with `body` (docs "Post requests": a
    string mirroring the HTTP status code and description)."""
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    text = body if isinstance(body, str) else json.dumps(body)
    return f"{status} {reason}: {text}" if text else f"{status} {reason}"


class _Sink:
    """One subscription's messages: held until the subscription is answered (and a userFills
    snapshot sent), then passed on in order; nothing after it is closed."""

    def __init__(self, send: Callable[[dict[str, Any]], None]) -> None:
        self._send = send
        self._held: list[dict[str, Any]] | None = []
        self.closed = False

    def __call__(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        if self._held is not None:
            self._held.append(message)
        else:
            self._send(message)

    def open(self, first: dict[str, Any] | None = None) -> None:
        if self.closed or self._held is None:
            return
        held, self._held = self._held, None
        if first is not None:
            self._send(first)
        for message in held:
            self._send(message)

    def close(self) -> None:
        self.closed, self._held = True, None


class _Connection:
    def __init__(self, hl: HlApi, websocket: WebSocket) -> None:
        self.hl = hl
        self.websocket = websocket
        self.outbox: asyncio.Queue[str] = asyncio.Queue()
        self._writer: asyncio.Task | None = None
        self.user = UserChannels(hl.service, lambda body: hl.info.handle(body))
        self._subscriptions: dict[str, tuple[_Sink, Callable[[], None]]] = {}  # key -> (sink, unsubscribe)
        self._tasks: set[asyncio.Task] = set()
        self._posts = 0
        self._too_slow = False

    # ---- sending ------------------------------------------------------------------------------

    def send(self, message: dict[str, Any] | str) -> None:
        """Queue one message (never waits). Past OUTBOX_LIMIT the client is too slow: it is
        disconnected."""
        if self._too_slow:
            return
        if self.outbox.qsize() >= OUTBOX_LIMIT:
            self._too_slow = True
            while not self.outbox.empty():
                self.outbox.get_nowait()
            self._spawn(self._disconnect())
            return
        try:
            text = message if isinstance(message, str) else json.dumps(message, separators=(",", ":"),
                                                                        allow_nan=False)
        except (TypeError, ValueError):
            log.exception("a /hl/ws message could not be written: %.200r", message)
            return
        self.outbox.put_nowait(text)

    def refuse(self, text: str) -> None:
        self.send({"channel": "error", "data": text})

    def start_writer(self) -> asyncio.Task:
        self._writer = asyncio.get_running_loop().create_task(self._write())
        return self._writer

    async def _write(self) -> None:
        while True:
            await self.websocket.send_text(await self.outbox.get())

    async def _disconnect(self) -> None:
        """Too slow: stop writing (the writer may be stuck on this client) and close."""
        if self._writer is not None:
            self._writer.cancel()
        with contextlib.suppress(Exception):
            await self.websocket.close(code=TOO_SLOW, reason=f"too slow: over {OUTBOX_LIMIT} messages behind; reconnect")

    # ---- reading ------------------------------------------------------------------------------

    async def serve(self) -> None:
        writer = self.start_writer()
        try:
            while not writer.done():
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                raw = message.get("text")
                if raw is None and message.get("bytes") is not None:
                    raw = message["bytes"].decode("utf-8", "replace")
                if raw is not None:
                    self.on_request(raw)
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client went away
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await writer
            self.close()

    def on_request(self, raw: str) -> None:
        try:
            request = json.loads(raw)
        except ValueError:
            request = None
        method = request.get("method") if isinstance(request, dict) else None
        subscription = request.get("subscription") if isinstance(request, dict) else None
        if method == "ping":
            self.send({"channel": "pong"})
        elif method == "subscribe" and isinstance(subscription, dict):
            self.subscribe(subscription, raw)
        elif method == "unsubscribe" and isinstance(subscription, dict):
            self.unsubscribe(subscription)
        elif not (method == "post" and self._post(request)):
            self.unparsed(raw)

    def unparsed(self, raw: str) -> None:
        self.refuse(UNPARSED + raw[:1000])

    # ---- subscriptions ------------------------------------------------------------------------

    def _ack(self, method: str, subscription: dict[str, Any]) -> None:
        self.send({"channel": "subscriptionResponse", "data": {"method": method, "subscription": subscription}})

    def subscribe(self, subscription: dict[str, Any], raw: str) -> None:
        key = subscription_key(subscription)
        if key in self._subscriptions:
            self.refuse(f"Already subscribed: {json.dumps(subscription)}")
            return
        kind, user = subscription.get("type"), subscription.get("user")
        kind = "userEvents" if kind == "user" else kind
        sink = _Sink(self.send)
        if kind in MARKET_CHANNELS:
            try:
                stop = self.hl.venue.subscribe(subscription, sink)
            except InfoRefused as refused:
                self.refuse(refused.message)
                return
            self._subscriptions[key] = (sink, stop)
            self._ack("subscribe", subscription)
            sink.open()
        elif kind in USER_CHANNELS and isinstance(user, str) and _ADDRESS.match(user) \
                and isinstance(subscription.get("dex") or "", str):
            guarded, dex = self.user.guarded(user), subscription.get("dex") or ""
            if guarded:
                self.user.add(kind, user, sink, dex)
            self._subscriptions[key] = (sink, lambda: self.user.remove(kind, user, dex) if guarded else None)
            self._ack("subscribe", subscription)
            if kind == "userFills":
                self._spawn(self._fills_snapshot(user, guarded, sink))
            else:
                sink.open()
        else:  # a type or a user the venue cannot parse
            self.unparsed(raw)

    async def _fills_snapshot(self, user: str, guarded: bool, sink: _Sink) -> None:
        """The first userFills message: the recent fills (what `/info userFills` answers)."""
        fills: Any = []
        if guarded:
            try:
                status, answer = await asyncio.wait_for(self.hl.info.handle({"type": "userFills", "user": user}),
                                                        SNAPSHOT_TIMEOUT_SECONDS)
            except Exception:  # the live fills still flow; the snapshot is then empty
                log.exception("the userFills snapshot for /hl/ws could not be read")
                status, answer = 0, []
            fills = answer if status == 200 and isinstance(answer, list) else []
        sink.open({"channel": "userFills", "data": {"isSnapshot": True, "user": user.lower(), "fills": fills}})

    def unsubscribe(self, subscription: dict[str, Any]) -> None:
        entry = self._subscriptions.pop(subscription_key(subscription), None)
        if entry is None:
            self.refuse(f"Already unsubscribed: {json.dumps(subscription)}")
            return
        sink, stop = entry
        sink.close()
        stop()
        self._ack("unsubscribe", subscription)

    # ---- post requests ------------------------------------------------------------------------

    def _post(self, request: dict[str, Any]) -> bool:
        """Start answering a post; False when it is not one that can be read."""
        post_id, inner = request.get("id"), request.get("request")
        if not isinstance(post_id, int) or isinstance(post_id, bool) or not isinstance(inner, dict) \
                or inner.get("type") not in ("info", "action") or "payload" not in inner:
            return False
        if self._posts >= MAX_PENDING_POSTS:
            self.refuse(f"too many pending post requests id={post_id}")
            return True
        self._posts += 1
        self._spawn(self._answer(post_id, inner["type"], inner["payload"]))
        return True

    async def _answer(self, post_id: int, kind: str, payload: Any) -> None:
        try:
            handler = self.hl.info if kind == "info" else self.hl.exchange
            try:
                status, body = await handler.handle(payload)
            except Exception:  # a bug must not end the connection: the client gets a 500's text
                log.exception("a /hl/ws %s post failed", kind)
                status, body = 500, "perpguard could not answer this request"
            if status != 200:
                response = {"type": "error", "payload": error_text(status, body)}
            elif kind == "info":
                kind_of = payload.get("type") if isinstance(payload, dict) else None
                response = {"type": "info", "payload": {"type": kind_of, "data": body}}
            else:
                response = {"type": "action", "payload": body}
            self.send({"channel": "post", "data": {"id": post_id, "response": response}})
        finally:
            self._posts -= 1

    # ---- lifetime -----------------------------------------------------------------------------

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        for sink, stop in self._subscriptions.values():
            sink.close()
            try:
                stop()
            except Exception:
                log.exception("a /hl/ws subscription did not end cleanly")
        self._subscriptions.clear()
        self.user.close()
        for task in list(self._tasks):
            task.cancel()
        if self._writer is not None:
            self._writer.cancel()


async def hl_ws(websocket: WebSocket) -> None:
    """Serve one client on `websocket.app.state.hl` (an HlApi)."""
    connection = _Connection(websocket.app.state.hl, websocket)
    await websocket.accept()
    await connection.serve()
