"""The pending queue (SPEC section 5): DELAY and APPROVAL orders, held durably.

A DELAY action executes at `execute_at` after re-evaluation against that moment's state; an
APPROVAL action waits for a human and expires at `expires_at`. Both can be cancelled. The
queue persists through a `PendingStore` (in memory here; the durable store implements the same
two methods) and every change is saved before it is acknowledged.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, replace
from typing import Protocol

from engine.domain.model import OrderIntent, Tier


class PendingStatus(str, enum.Enum):
    PENDING = "PENDING"
    EXECUTED = "EXECUTED"
    DENIED = "DENIED"  # re-evaluated and refused
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"  # APPROVAL not given in time
    FAILED = "FAILED"  # forwarded, and the venue refused it (or the send was interrupted)
    RELEASING = "RELEASING"  # re-evaluated and allowed: being sent (saved before the venue is called)


@dataclass(frozen=True, slots=True)
class PendingAction:
    """An order waiting for its time (DELAY) or for a human (APPROVAL). Times epoch seconds."""

    id: str
    intent: OrderIntent
    tier: Tier
    created_at: float
    execute_at: float | None  # DELAY
    expires_at: float | None  # APPROVAL
    reason: str
    status: PendingStatus = PendingStatus.PENDING
    outcome: str | None = None  # why it ended as it did
    closed_at: float | None = None

    @property
    def open(self) -> bool:
        """Still the queue's: waiting, or being sent."""
        return self.status is PendingStatus.PENDING or self.status is PendingStatus.RELEASING

    @property
    def client_id(self) -> str:
        """The order's idempotency key at the venue (its cloid): the intent's own, else one
        derived from this action's id, so a release can never become two orders."""
        return self.intent.client_id or f"pg-{self.id}"

    def close(self, status: PendingStatus, outcome: str, at: float) -> PendingAction:
        return replace(self, status=status, outcome=outcome, closed_at=at)

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "tier": self.tier.value,
            "status": self.status.value,
            "market": self.intent.market,
            "side": self.intent.side,
            "size": self.intent.size,
            "notional_usd": self.intent.notional_usd,
            "intent": self.intent.model_dump(mode="json", exclude_none=True),
            "created_at": self.created_at,
            "execute_at": self.execute_at,
            "expires_at": self.expires_at,
            "reason": self.reason,
            "outcome": self.outcome,
            "closed_at": self.closed_at,
        }


class PendingStore(Protocol):
    def save_pending(self, action: PendingAction) -> None:
        """Persist (insert or update) before returning: the caller acknowledges only after."""
        ...

    def load_open_pending(self) -> list[PendingAction]: ...


class MemoryPendingStore:
    """Keeps actions in memory: for tests and replays, where nothing must outlive the process."""

    def __init__(self) -> None:
        self.actions: dict[str, PendingAction] = {}

    def save_pending(self, action: PendingAction) -> None:
        self.actions[action.id] = action

    def load_open_pending(self) -> list[PendingAction]:
        return [a for a in self.actions.values() if a.open]


class PendingQueue:
    """The open actions, in memory for the engine loop, written through to the store."""

    def __init__(self, store: PendingStore | None = None) -> None:
        self.store = store or MemoryPendingStore()
        self._open: dict[str, PendingAction] = {a.id: a for a in self.store.load_open_pending()}

    def add(self, intent: OrderIntent, tier: Tier, hold_seconds: float, reason: str, at: float) -> PendingAction:
        action = PendingAction(
            id=f"pa_{uuid.uuid4().hex[:16]}",
            intent=intent,
            tier=tier,
            created_at=at,
            execute_at=at + hold_seconds if tier is Tier.DELAY else None,
            expires_at=at + hold_seconds if tier is Tier.APPROVAL else None,
            reason=reason,
        )
        self.store.save_pending(action)
        self._open[action.id] = action
        return action

    def get(self, action_id: str) -> PendingAction | None:
        """An action still waiting (not one being sent)."""
        action = self._open.get(action_id)
        return action if action is not None and action.status is PendingStatus.PENDING else None

    def releasing(self, action_id: str) -> PendingAction:
        """Mark a waiting action as being sent, durably, before the venue is called."""
        action = replace(self._open[action_id], status=PendingStatus.RELEASING)
        self.store.save_pending(action)
        self._open[action_id] = action
        return action

    def interrupted(self) -> list[PendingAction]:
        """Actions whose sending a crash or restart interrupted (found at start)."""
        return [a for a in self._open.values() if a.status is PendingStatus.RELEASING]

    def open_actions(self) -> list[PendingAction]:
        """Waiting and being-sent actions, oldest first."""
        return sorted(self._open.values(), key=lambda a: a.created_at)

    def close(self, action_id: str, status: PendingStatus, outcome: str, at: float) -> PendingAction | None:
        action = self._open.pop(action_id, None)
        if action is None:
            return None
        closed = action.close(status, outcome, at)
        self.store.save_pending(closed)
        return closed

    def due(self, now: float) -> tuple[list[PendingAction], list[PendingAction]]:
        """(DELAY actions whose time has come, APPROVAL actions that have expired)."""
        waiting = [a for a in self._open.values() if a.status is PendingStatus.PENDING]
        ready = [a for a in waiting if a.execute_at is not None and a.execute_at <= now]
        expired = [a for a in waiting if a.expires_at is not None and a.expires_at <= now]
        return ready, expired
