"""`RemoteLink`: the console attached to a running engine through its gateway (SPEC section 9).

- `WS /v1/stream` feeds the console: `{"type": "snapshot", "state": {...}}` on connect and about
  once a second, `{"type": "event", "event": {...}}` as things happen. It reconnects by itself
  with backoff and jitter; meanwhile `status()` says the picture is old.
- Commands are HTTP calls: `POST /v1/pending/{id}/approve` and `POST /v1/resume` carry
  `X-Master-Password`; cancel and kill need the token's scopes only.
- Auth: `Authorization: Bearer <token>` when a token is given; the master password, once the
  trader typed one that worked, also authenticates the stream.

Nothing here blocks the event loop: httpx's async client and the websockets client only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import deque
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from console.link import EVENT_BACKLOG, LinkError, LinkStatus

log = logging.getLogger("perpguard.console.remote")

DEFAULT_URL = "http://127.0.0.1:8710"
STALE_AFTER_SECONDS = 5.0  # no snapshot for this long: the picture on screen is old
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 10.0
KILL_TIMEOUT_SECONDS = 120.0  # a panic exit takes as long as the venue needs to fill the exits


class RemoteLink:
    password_actions = frozenset({"approve", "resume"})
    remembers_password = True

    def __init__(self, url: str = DEFAULT_URL, token: str | None = None, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"gateway URL must be http(s)://host:port, not {url!r}")
        self.ws_url = urlunsplit(("wss" if parts.scheme == "https" else "ws", parts.netloc,
                                  parts.path + "/v1/stream", "", ""))
        self.description = f"attached to {parts.netloc}"
        self.token = token
        self.timeout = timeout
        self._password: str | None = None
        self._state: dict | None = None
        self._received_at: float | None = None  # monotonic time of the last snapshot
        self._events: deque[dict] = deque(maxlen=EVENT_BACKLOG)
        self._connected = False
        self._problem = "connecting"
        self._unauthorized = False
        self._wake = asyncio.Event()
        self._client: httpx.AsyncClient | None = None
        self._stream_task: asyncio.Task | None = None

    # ---- lifecycle -----------------------------------------------------------------------

    async def open(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self.url, timeout=self.timeout)
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

    def _headers(self, password: str | None = None) -> dict[str, str]:
        headers = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        password = password or self._password
        if password:
            headers["X-Master-Password"] = password
        return headers

    # ---- the stream ----------------------------------------------------------------------

    async def _stream(self) -> None:
        delay = BACKOFF_FIRST
        while True:
            try:
                async with connect(self.ws_url, additional_headers=self._headers(), open_timeout=self.timeout,
                                   ping_interval=20, ping_timeout=20, max_size=2 ** 24) as ws:
                    self._connected, self._unauthorized, self._problem = True, False, ""
                    delay = BACKOFF_FIRST
                    async for raw in ws:
                        self._on_message(raw)
                self._problem = "the gateway closed the stream"
            except asyncio.CancelledError:
                raise
            except InvalidStatus as exc:
                status = exc.response.status_code
                self._unauthorized = status in (401, 403)
                self._problem = ("the gateway wants a token or the master password" if self._unauthorized
                                 else f"the gateway answered {status}")
            except (OSError, TimeoutError, ConnectionClosed, WebSocketException) as exc:
                self._problem = f"cannot reach {urlsplit(self.url).netloc}: {exc.__class__.__name__}"
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

    def _on_message(self, raw: str | bytes) -> None:
        message = json.loads(raw)
        kind = message.get("type")
        if kind == "snapshot" and isinstance(message.get("state"), dict):
            self._set_state(message["state"])
        elif kind == "event" and isinstance(message.get("event"), dict):
            self._events.append(message["event"])
        # {"type": "gap"}: events were lost to a slow read; the next snapshot is the truth

    def _set_state(self, state: dict) -> None:
        self._state = state
        self._received_at = time.monotonic()

    # ---- reads ---------------------------------------------------------------------------

    def status(self) -> LinkStatus:
        age = None if self._received_at is None else time.monotonic() - self._received_at
        if self._connected and age is not None and age < STALE_AFTER_SECONDS:
            return LinkStatus(True, "live")
        if self._connected:
            return LinkStatus(False, "waiting for a snapshot" if age is None else f"no snapshot for {age:.0f} s")
        old = "" if age is None else f" (picture {age:.0f} s old)"
        return LinkStatus(False, f"{self._problem or 'reconnecting'}; retrying{old}")

    def latest_state(self) -> dict | None:
        return self._state

    def drain_events(self) -> list[dict]:
        events = list(self._events)
        self._events.clear()
        return events

    # ---- commands ------------------------------------------------------------------------

    async def _call(self, method: str, path: str, password: str | None = None, timeout: float | None = None,
                    payload: dict | None = None):
        if self._client is None:
            raise LinkError(0, "LINK_DOWN", "the console is not connected")
        try:
            response = await self._client.request(method, path, headers=self._headers(password), json=payload,
                                                  timeout=timeout or self.timeout)
        except httpx.HTTPError as exc:
            raise LinkError(0, "LINK_DOWN", f"cannot reach the engine at {self.url}: {exc.__class__.__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            error = body.get("error") if isinstance(body, dict) else None
            if isinstance(error, dict):
                raise LinkError(response.status_code, str(error.get("code", "ERROR")), str(error.get("message", "")))
            raise LinkError(response.status_code, "ERROR", f"the gateway answered {response.status_code}")
        return body

    async def _refresh_state(self) -> None:
        """After a command: fetch the new picture now rather than at the next snapshot."""
        try:
            state = await self._call("GET", "/v1/state")
        except LinkError:
            return
        if isinstance(state, dict):
            self._set_state(state)

    async def _admin(self, path: str, password: str | None) -> dict:
        body = await self._call("POST", path, password)
        if password and self.remembers_password:
            self._password = password  # it worked: keep it for the session
        await self._refresh_state()
        return body if isinstance(body, dict) else {}

    async def approve(self, action_id: str, password: str | None = None) -> dict:
        return await self._admin(f"/v1/pending/{quote(action_id, safe='')}/approve", password)

    async def cancel_pending(self, action_id: str, password: str | None = None) -> dict:
        """Needs a token with the trade scope, or the master password."""
        return await self._admin(f"/v1/pending/{quote(action_id, safe='')}/cancel", password)

    async def kill(self, password: str | None = None) -> dict:
        """Needs a token with the kill scope, or the master password."""
        body = await self._call("POST", "/v1/kill", password, timeout=KILL_TIMEOUT_SECONDS,
                                payload={"reason": "kill switch (console)"})
        if password and self.remembers_password:
            self._password = password
        await self._refresh_state()
        return body if isinstance(body, dict) else {}

    async def resume(self, password: str) -> dict:
        return await self._admin("/v1/resume", password)

    async def policies(self) -> list[dict]:
        body = await self._call("GET", "/v1/policies")
        if isinstance(body, dict):  # tolerate {"policies": [...]}
            body = body.get("policies", [])
        return list(body or [])
