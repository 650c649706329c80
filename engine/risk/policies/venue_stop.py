"""VENUE_STOP: protection that outlives perpguard. Every open position carries a reduce-only stop
resting on the venue (Hyperliquid's `positionTpsl` trigger, which follows the whole position),
so that a position survives the engine's, the host's or the network's death.

Its trigger is the price at which the margin buffer backing the position would reach
`triggerBuffer`, by the same margin math as the liquidation price (`Book.buffer_px`): below the
de-risk controller's `panicBuffer` (the live engine acts first), above liquidation. Never closer
to the mark than `minDistance`. The policy judges no order; the engine's `venue_stops` part
places and moves the stops (`engine.live.venue_stops`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from engine.domain.model import Reason
from engine.risk.book import Book
from engine.risk.policies.base import Fast, Policy, Rules
from engine.risk.projection import Projection


class VenueStopRules(Rules):
    triggerBuffer: float = Field(default=0.15, ge=0, lt=1,
                                 description="The stop fires where the margin buffer would reach this (fraction)")
    orderKind: Literal["market", "limit"] = Field(default="market", description="How the stop executes once triggered")
    limitSlippage: float = Field(default=0.02, gt=0, lt=0.5,
                                 description="A limit stop's limit: this far past the trigger (fraction)")
    minDistance: float = Field(default=0.005, ge=0, lt=0.5, description="Never closer to the mark than this (fraction)")
    moveSeconds: float = Field(default=2.0, ge=0, description="At most one move of a stop this often (a new size or entry moves it at once)")


class VenueStop(Policy):
    type = "VENUE_STOP"
    Rules = VenueStopRules
    judges_state = False

    def evaluate(self, p: Projection) -> Reason | None:
        return None  # it judges no order: it protects positions on the venue

    def fast(self, counters) -> Fast:
        return Fast("True", {})

    def trigger_px(self, book: Book, coin: str) -> float | None:
        """Where this position's stop belongs now (USD), None when its buffer can never reach
        `triggerBuffer` (a fully collateralised long) or the figures are unknown."""
        r: VenueStopRules = self.rules
        position, mark = book.position(coin), book.marks.get(coin)
        px = book.buffer_px(coin, r.triggerBuffer)
        if position is None or mark is None or px is None:
            return None
        if position.size > 0:
            return min(px, mark * (1.0 - r.minDistance))
        return max(px, mark * (1.0 + r.minDistance))
