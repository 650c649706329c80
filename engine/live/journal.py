"""The decision journal (SPEC section 12): the gate's answer to every order is recorded in the
audit chain before anything is acted on, and an order goes to the venue only once the store
has confirmed it (`durable`). Without a store (replays, tests) nothing is kept and everything
is durable at once.

It also keeps the panic exit's `Flattening` record (SPEC section 6): queued when a panic exit or
the kill switch starts, before it acts, and cleared (None) once the account is flat; read back
at start so an interrupted exit resumes; and the trailing stops (`{coin: (fraction, best mark)}`),
saved when one starts or ends, so a restart keeps them trailing instead of letting them go
back to the looser VENUE_STOP trigger."""

from __future__ import annotations

from typing import Protocol

from engine.domain.model import Decision
from engine.risk.trading_state import Flattening


class Journal(Protocol):
    def decision(self, decision: Decision, client_id: str | None) -> None:
        """Queue the gate's answer for the audit chain (returns at once)."""
        ...

    async def durable(self) -> bool:
        """Whether everything queued so far is committed, within the journal's deadline."""
        ...

    def flattening(self, record: Flattening | None) -> None:
        """Queue the panic exit's record (None: the account is flat, the record is cleared)."""
        ...

    def load_flattening(self) -> Flattening | None:
        """The record saved last, if a panic exit was still flattening (read once, at start)."""
        ...

    def trails(self, trails: dict[str, tuple[float, float]]) -> None:
        """Queue the trailing stops as they are now (coin -> (fraction, best mark))."""
        ...

    def load_trails(self) -> dict[str, tuple[float, float]]:
        """The trailing stops saved last (read once, at start)."""
        ...


class NoJournal:
    """Keeps nothing: for replays and tests, where nothing must outlive the process."""

    def decision(self, decision: Decision, client_id: str | None) -> None:
        return None

    async def durable(self) -> bool:
        return True

    def flattening(self, record: Flattening | None) -> None:
        return None

    def load_flattening(self) -> Flattening | None:
        return None

    def trails(self, trails: dict[str, tuple[float, float]]) -> None:
        return None

    def load_trails(self) -> dict[str, tuple[float, float]]:
        return {}
