"""The decision journal (SPEC section 12): the gate's answer to every order is recorded in the
audit chain before anything is acted on, and an order goes to the venue only once the store
has confirmed it (`durable`). Without a store (replays, tests) nothing is kept and everything
is durable at once."""

from __future__ import annotations

from typing import Protocol

from engine.domain.model import Decision


class Journal(Protocol):
    def decision(self, decision: Decision, client_id: str | None) -> None:
        """Queue the gate's answer for the audit chain (returns at once)."""
        ...

    async def durable(self) -> bool:
        """Whether everything queued so far is committed, within the journal's deadline."""
        ...


class NoJournal:
    """Keeps nothing: for replays and tests, where nothing must outlive the process."""

    def decision(self, decision: Decision, client_id: str | None) -> None:
        return None

    async def durable(self) -> bool:
        return True
