"""The engine's event log: every `EngineEvent` the engine emits, kept (the newest 2,000) and
handed to each listener in order, synchronously, before the engine goes on (the facade journals
them there, so an event is durable before anyone hears of it)."""

from __future__ import annotations

from collections import deque
from typing import Callable

from engine.domain.clock import Clock
from engine.domain.events import EngineEvent, EventKind

RECENT_EVENTS = 2000

Listener = Callable[[EngineEvent], None]


class EventLog:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.recent: deque[EngineEvent] = deque(maxlen=RECENT_EVENTS)
        self._listeners: list[Listener] = []

    def emit(self, kind: EventKind, message: str, **data) -> EngineEvent:
        event = EngineEvent(kind, self.clock.now(), message, data)
        self.recent.append(event)
        for listener in self._listeners:
            listener(event)
        return event

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` for every event from now on; returns the unsubscribe function."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe
