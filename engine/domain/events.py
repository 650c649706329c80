"""What the engine tells the world: one EngineEvent per thing a trader would want in the log
(decisions, orders, fills, state changes, de-risk actions, pending changes, liquidations).

`EventKind` is the one list of what can happen. It is a `StrEnum`, so the wire, the store and
the webhooks carry the plain value (`"order_denied"`) and a consumer that reads JSON compares
strings, while the engine itself names members and cannot misspell one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class EventKind(enum.StrEnum):
    ENGINE_STARTED = "engine_started"
    ENGINE_ERROR = "engine_error"
    # orders
    ORDER_DENIED = "order_denied"
    ORDER_SENT = "order_sent"  # the venue took it (filled, resting or partly filled)
    ORDER_REJECTED = "order_rejected"  # the venue refused it
    ORDER_NOT_SENT = "order_not_sent"  # allowed, but the store could not journal it: not sent
    ORDER_FILLED = "order_filled"  # a fill, as the venue reports it
    ORDER_CANCELLED = "order_cancelled"  # the engine cancelled a resting order (de-risk)
    NOTIFIED = "notify"  # a NOTIFY-tier order was sent: the trader is told
    POSITION_CLOSED = "position_closed"  # a fill realized PnL
    # held orders
    PENDING_ADDED = "pending_added"
    PENDING_CLOSED = "pending_closed"
    # trading state and protection
    STATE_CHANGED = "state_changed"
    BREAKER_TRIPPED = "breaker_tripped"
    DERISK_ORDERED = "derisk_order"
    DERISK_SKIPPED = "derisk_skipped"
    REDUCE_FILLED = "reduce_filled"
    REDUCE_FAILED = "reduce_failed"
    PANIC_STARTED = "panic_exit"
    PANIC_DONE = "panic_done"
    PANIC_RETRY = "panic_retry"  # a panic exit left positions open: it tries again (flattening, attempt N)
    LIQUIDATED = "liquidated"
    # the venue's feed
    FEED_STALE = "feed_stale"
    FEED_RESTORED = "feed_restored"
    # what the venue keeps for the account
    DEAD_MAN_REFUSED = "dead_man_refused"  # the venue will not arm the dead-man switch
    DEAD_MAN_ARMED = "dead_man_armed"  # armed again after a refusal
    DEAD_MAN_FIRED = "dead_man_fired"  # the venue cancelled every resting order
    AGENT_EXPIRING = "agent_expiring"  # the API wallet expires within days
    # protection resting on the venue
    VENUE_STOP_PLACED = "venue_stop_placed"
    VENUE_STOP_MOVED = "venue_stop_moved"
    VENUE_STOP_FAILED = "venue_stop_failed"  # the venue refused it: the position is UNPROTECTED
    VENUE_STOP_TRIGGERED = "venue_stop_triggered"  # a stop (or a bracket's child) resting on the venue fired
    # the replay's strategy
    STRATEGY_STOOD_DOWN = "strategy_stood_down"


@dataclass(frozen=True, slots=True)
class EngineEvent:
    """`kind` what happened; `at` epoch seconds; `message` one line a trader can read; `data`
    the figures involved."""

    kind: EventKind
    at: float
    message: str
    data: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"kind": str(self.kind), "at": self.at, "message": self.message, **self.data}
