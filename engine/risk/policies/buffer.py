"""The margin buffer: entries must keep it above `minBuffer`; the same thresholds drive the
de-risk controller (warn -> stop trading, panic -> flatten, target -> how far to reduce)."""

from __future__ import annotations

from pydantic import Field, model_validator

from engine.domain.model import Reason
from engine.risk.policies.base import Fast, Policy, Rules, below, floor, fmt
from engine.risk.projection import Projection


class MarginBufferRules(Rules):
    minBuffer: float = Field(ge=0, lt=1, description="Entries must leave at least this buffer (fraction)")
    warnBuffer: float = Field(ge=0, lt=1, description="Below this: REDUCE_ONLY and one reducing order at a time")
    panicBuffer: float = Field(ge=0, lt=1, description="Below this: panic exit, then HALTED")
    targetBuffer: float = Field(gt=0, le=1, description="What a de-risk order aims to restore")
    hysteresis: float = Field(default=0.05, ge=0, lt=1, description="REDUCE_ONLY lifts once the buffer is above warn + this")

    @model_validator(mode="after")
    def _ordered(self) -> MarginBufferRules:
        if not self.panicBuffer < self.warnBuffer:
            raise ValueError("panicBuffer must be below warnBuffer")
        if not self.warnBuffer < self.targetBuffer:
            raise ValueError("targetBuffer must be above warnBuffer")
        if self.warnBuffer + self.hysteresis > self.targetBuffer:
            raise ValueError("warnBuffer + hysteresis must not exceed targetBuffer")
        return self


class MinMarginBuffer(Policy):
    type = "MIN_MARGIN_BUFFER"
    Rules = MarginBufferRules

    def evaluate(self, p: Projection) -> Reason | None:
        if p.reducing:
            return None
        r: MarginBufferRules = self.rules
        buffer = p.margin_buffer
        if buffer is None:
            return self.unavailable("the projected margin buffer (maintenance margin unknown)")
        if below(buffer, r.minBuffer):
            return self.deny("MARGIN_BUFFER",
                             f"Margin buffer would fall below MIN_MARGIN_BUFFER minimum of {fmt(r.minBuffer)} (projected {fmt(buffer)})",
                             r.minBuffer, buffer)
        iso = p.isolated_buffer
        if iso is not None and below(iso, r.minBuffer):
            return self.deny("MARGIN_BUFFER",
                             f"{p.coin} isolated margin buffer would fall below MIN_MARGIN_BUFFER minimum of {fmt(r.minBuffer)} (projected {fmt(iso)})",
                             r.minBuffer, iso)
        return None

    def fast(self, counters) -> Fast:
        return Fast("margin_buffer is not None and not margin_buffer < $min and (isolated_buffer is None or not isolated_buffer < $min)",
                    {"min": floor(self.rules.minBuffer)})
