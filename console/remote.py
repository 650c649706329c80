"""`RemoteLink`: the console attached to a running engine through its gateway (SPEC section 9),
over the one gateway client (`engine.api.client.AsyncClient`).

- `WS /v1/stream` feeds the console: `{"type": "snapshot", "state": {...}}` on connect and about
  once a second, `{"type": "event", "event": {...}}` as things happen. Each snapshot is read into
  a frozen `EngineState`; one that does not parse is logged and skipped (the previous picture
  stays). The stream reconnects by itself with backoff and jitter; meanwhile `status()` says the
  picture is old.
- Commands are HTTP calls: `POST /v1/pending/{id}/approve` and `POST /v1/resume` carry
  `X-Master-Password`; cancel and kill need the token's scopes only.
- Auth: `Authorization: Bearer <token>` when a token is given; the master password, once the
  trader typed one that worked, also authenticates the stream and the reads.
- Every refusal or failure is the client's `ApiError` (status 0, `LINK_DOWN` when the engine
  cannot be reached).

Nothing here blocks the event loop: httpx's async client and the websockets client only.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from urllib.parse import urlsplit

from pydantic import ValidationError

from console.link import EVENT_BACKLOG, LinkStatus
from engine.api.client import DEFAULT_URL, AsyncClient, gateway_url
from engine.api.errors import LINK_DOWN, ApiError
from engine.api.state import EngineState

log = logging.getLogger("perpguard.console.remote")

STALE_AFTER_SECONDS = 5.0  # no snapshot for this long: the picture on screen is old
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 10.0  # seconds between stream reconnects, doubling


class RemoteLink:
    password_actions = frozenset({"approve", "resume"})
    remembers_password = True

    def __init__(self, url: str = DEFAULT_URL, token: str | None = None, *, timeout: float = 10.0) -> None:
        """`url` is the gateway (http(s)://host:port; ValueError otherwise); `timeout` is seconds
        per request and per stream connect (a kill waits as long as a panic exit needs)."""
        self.url = gateway_url(url)
        self.description = f"attached to {urlsplit(self.url).netloc}"
        self.token = token
        self.timeout = timeout
        self._password: str | None = None
        self._state: EngineState | None = None
        self._received_at: float | None = None  # monotonic time of the last snapshot
        self._events: deque[dict] = deque(maxlen=EVENT_BACKLOG)
        self._connected = False
        self._problem = "connecting"
        self._unauthorized = False
        self._wake = asyncio.Event()
        self._client: AsyncClient | None = None
        self._stream_task: asyncio.Task | None = None

    # ---- lifecycle -----------------------------------------------------------------------

    async def open(self) -> None:
        if self._client is None:
            self._client = AsyncClient(self.url, token=self.token, timeout=self.timeout)
            self._stream_task = asyncio.get_running_loop().create_task(self._stream())

    async def close(self) -> None:
        if self._stream_task is not None:
            self._stream_task.cancel()
            await asyncio.gather(self._stream_task, return_exceptions=True)
            self._stream_task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def use_password(self, password: str | None) -> None:
        """Remember (or forget, with None) the master password for this session."""
        self._password = password or None
        if password and self._unauthorized:
            self._wake.set()  # retry the stream at once with the new credentials

    @property
    def needs_password(self) -> bool:
        """The gateway refused the stream, and no password was given yet."""
        return self._unauthorized

    @property
    def _gateway(self) -> AsyncClient:
        if self._client is None:
            raise ApiError(0, LINK_DOWN, "the console is not connected")
        return self._client

    # ---- the stream ----------------------------------------------------------------------

    async def _stream(self) -> None:
        delay = BACKOFF_FIRST
        while True:
            try:
                async for message in self._gateway.stream(master_password=self._password):
                    if not self._connected:  # the gateway sends a snapshot as soon as it accepts
                        self._connected, self._unauthorized, self._problem = True, False, ""
                        delay = BACKOFF_FIRST
                    self._on_message(message)
                self._problem = "the gateway closed the stream"
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                # a refused handshake is 403 whatever the reason (the gateway closes before accepting)
                self._unauthorized = exc.status in (401, 403)
                self._problem = ("the gateway wants a token or the master password" if self._unauthorized
                                 else exc.message if exc.code == LINK_DOWN else f"the gateway answered {exc.status}")
            except Exception:  # a malformed frame must not end the console's link for good
                log.exception("stream failed")
                self._problem = "stream error; see the log"
            self._connected = False
            self._wake.clear()
            try:  # wait the backoff, or less if new credentials arrive
                await asyncio.wait_for(self._wake.wait(), delay * random.uniform(0.8, 1.2))
            except TimeoutError:
                pass
            delay = min(BACKOFF_MAX, delay * 2)

    def _on_message(self, message: object) -> None:
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "snapshot" and isinstance(message.get("state"), dict):
            self._set_state(message["state"])
        elif kind == "event" and isinstance(message.get("event"), dict):
            self._events.append(message["event"])
        # {"type": "gap"}: events were lost to a slow read; the next snapshot is the truth

    def _set_state(self, data: dict) -> None:
        try:
            state = EngineState.from_json(data)
        except ValidationError as exc:  # keep the previous picture; its age shows it is old
            log.warning("ignored a snapshot that is not an engine state: %s", exc)
            return
        self._state, self._received_at = state, time.monotonic()

    # ---- reads ---------------------------------------------------------------------------

    def status(self) -> LinkStatus:
        age = None if self._received_at is None else time.monotonic() - self._received_at
        if self._connected and age is not None and age < STALE_AFTER_SECONDS:
            return LinkStatus(True, "live")
        if self._connected:
            return LinkStatus(False, "waiting for a snapshot" if age is None else f"no snapshot for {age:.0f} s")
        old = "" if age is None else f" (picture {age:.0f} s old)"
        return LinkStatus(False, f"{self._problem or 'reconnecting'}; retrying{old}")

    def latest_state(self) -> EngineState | None:
        return self._state

    def drain_events(self) -> list[dict]:
        events = list(self._events)
        self._events.clear()
        return events

    # ---- commands ------------------------------------------------------------------------

    async def _done(self, body: object, password: str | None) -> dict:
        """After a command that worked: keep its password for the session and fetch the new
        picture now rather than at the next snapshot."""
        if password and self.remembers_password:
            self._password = password
        try:
            state = await self._gateway.state(master_password=self._password)
        except ApiError:
            state = None
        if isinstance(state, dict):
            self._set_state(state)
        return body if isinstance(body, dict) else {}

    async def approve(self, action_id: str, password: str | None = None) -> dict:
        body = await self._gateway.approve(action_id, master_password=password or self._password)
        return await self._done(body, password)

    async def cancel_pending(self, action_id: str, password: str | None = None) -> dict:
        """Needs a token with the trade scope, or the master password."""
        body = await self._gateway.cancel_pending(action_id, master_password=password or self._password)
        return await self._done(body, password)

    async def kill(self, password: str | None = None) -> dict:
        """Needs a token with the kill scope, or the master password."""
        body = await self._gateway.kill("kill switch (console)", master_password=password or self._password)
        return await self._done(body, password)

    async def resume(self, password: str) -> dict:
        body = await self._gateway.resume(master_password=password or self._password)
        return await self._done(body, password)

    async def policies(self) -> list[dict]:
        body = await self._gateway.policies(master_password=self._password)
        if isinstance(body, dict):  # tolerate {"policies": [...]}
            body = body.get("policies", [])
        return list(body or [])
