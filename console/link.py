"""`EngineLink`: the console's only door to the engine (SPEC section 2).

Two ways through it, the same console on both:
- `InProcessLink(service)`: the engine runs in this process, on this asyncio loop. Events
  arrive by direct subscription; the state is read from the service when the console asks.
- `console.remote.RemoteLink(url, token)`: a running engine's gateway, over HTTP and the
  `WS /v1/stream` websocket.

The console pulls: `latest_state()` and `drain_events()` are cheap and never wait, so the UI
reads them on its own timer whatever the feed rate (a burst of marks or events collapses into
one redraw). Commands are coroutines; a refusal raises `engine.api.errors.ApiError` with the
gateway's code, the same class whichever way the link goes.
"""

from __future__ import annotations

import inspect
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from engine.api.errors import ApiError

if TYPE_CHECKING:
    from engine.api.state import EngineState
    from engine.domain.events import EngineEvent
    from engine.facade import EngineService

EVENT_BACKLOG = 200  # events kept for the console between two reads, and shown on connect


# A refusal or a failure through either link is the wire contract's one error, `ApiError`: the
# gateway's status and code (`UNAUTHORIZED`, `NOT_FOUND`, ...; status 0 and `LINK_DOWN` when the
# engine could not be reached), a message a trader can act on, and `unauthorized`.


@dataclass(frozen=True, slots=True)
class LinkStatus:
    """How the link is doing: `live` False means the state on screen may be old."""

    live: bool
    text: str


@runtime_checkable
class EngineLink(Protocol):
    description: str  # shown in the header: "in-process paper engine", "attached to 127.0.0.1:8710"
    password_actions: frozenset[str]  # commands that need the master password ("approve", "resume")
    remembers_password: bool  # keep the master password for the session once it worked

    @property
    def needs_password(self) -> bool:
        """The engine refused to show its state without credentials: ask the master password."""
        ...

    def use_password(self, password: str | None) -> None:
        """Remember (or forget, with None) the master password for this session."""
        ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def status(self) -> LinkStatus: ...

    def latest_state(self) -> EngineState | None:
        """The newest picture of the engine (SPEC section 9 `GET /v1/state`), or None before
        the first one. The same object until a newer picture exists."""
        ...

    def drain_events(self) -> list[dict]:
        """Events since the last call, oldest first (`{"kind", "at", "message", ...}`)."""
        ...

    async def approve(self, action_id: str, password: str | None = None) -> dict: ...

    async def cancel_pending(self, action_id: str, password: str | None = None) -> dict: ...

    async def kill(self, password: str | None = None) -> dict:
        """Panic exit + HALTED. `password` only when a token's scopes are not enough."""
        ...

    async def resume(self, password: str) -> dict: ...

    async def policies(self) -> list[dict]: ...


class InProcessLink:
    """The engine in this process. The trader who started it is trusted for approve, cancel
    and kill; resume still asks the master password (the service checks it)."""

    password_actions = frozenset({"resume"})
    remembers_password = False
    needs_password = False  # the trader who started the engine sees its state

    def use_password(self, password: str | None) -> None:
        """Nothing to remember: the service checks the password of each command that needs one."""

    def __init__(self, service: EngineService, description: str = "in-process engine") -> None:
        self.service = service
        self.description = description
        self._events: deque[dict] = deque(maxlen=EVENT_BACKLOG)
        self._unsubscribe = None

    async def open(self) -> None:
        if self._unsubscribe is None:
            self._events.extend(self.service.recent_events(EVENT_BACKLOG))
            self._unsubscribe = self.service.subscribe(self._on_event)

    async def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._events.clear()

    def _on_event(self, event: EngineEvent) -> None:
        # Runs inside the engine's emit: keep it to an append.
        self._events.append(event.as_dict())

    def status(self) -> LinkStatus:
        return LinkStatus(True, "in-process")

    def latest_state(self) -> EngineState | None:
        return self.service.state()

    def drain_events(self) -> list[dict]:
        events = list(self._events)
        self._events.clear()
        return events

    async def approve(self, action_id: str, password: str | None = None) -> dict:
        return await _service_call(self.service.approve, action_id)

    async def cancel_pending(self, action_id: str, password: str | None = None) -> dict:
        return await _service_call(self.service.cancel_pending, action_id)

    async def kill(self, password: str | None = None) -> dict:
        return await _service_call(self.service.kill, "kill switch (console)")

    async def resume(self, password: str) -> dict:
        return await _service_call(self.service.resume, password)

    async def policies(self) -> list[dict]:
        return self.service.policies()


async def _service_call(method, *args) -> dict:
    """Call a service method, sync or async. Its refusals are already the one `ApiError` the
    remote link raises too, so they pass through as they are."""
    answer = method(*args)
    return await answer if inspect.isawaitable(answer) else answer
