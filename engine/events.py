"""What the engine tells the world: one EngineEvent per thing a trader would want in the log
(decisions, orders, fills, state changes, de-risk actions, pending changes, liquidations)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class EngineEvent:
    """`kind` names what happened, past tense (`order_denied`, `state_changed`, ...); `at` epoch
    seconds; `message` one line a trader can read; `data` the figures involved."""

    kind: str
    at: float
    message: str
    data: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "at": self.at, "message": self.message, **self.data}
