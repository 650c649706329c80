"""Order flow: submissions per window (runaway loops), per-order size, resting-order count."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from engine.domain.model import Reason
from engine.risk.policies.base import Fast, Policy, Rules, below, ceiling, exceeds, floor, fmt
from engine.risk.projection import Projection

_PERIODS = {"second": 1, "minute": 60, "minutely": 60, "hour": 3600, "hourly": 3600, "day": 86400, "daily": 86400}


class RateLimitRules(Rules):
    maxTransactions: int = Field(ge=1, description="Submissions allowed per period")
    period: str | float = Field(description="minute, hourly, daily, or a number of seconds")

    @field_validator("period")
    @classmethod
    def _known(cls, v: str | float) -> str | float:
        if isinstance(v, str) and v not in _PERIODS:
            raise ValueError(f"period must be one of {', '.join(sorted(_PERIODS))} or seconds")
        if not isinstance(v, str) and v <= 0:
            raise ValueError("period in seconds must be positive")
        return v

    @property
    def seconds(self) -> float:
        return float(_PERIODS[self.period]) if isinstance(self.period, str) else float(self.period)


class RateLimit(Policy):
    """Every submission counts (denied ones too: a runaway loop stays stopped); risk-increasing
    orders past the budget are denied, not queued. Exits and cancels are never stopped by it."""

    type = "RATE_LIMIT"
    Rules = RateLimitRules
    judges_state = False

    def windows(self) -> list[tuple[str, float]]:
        return [(self.metric("submissions"), self.rules.seconds)]

    def evaluate(self, p: Projection) -> Reason | None:
        if p.reducing:
            return None
        r: RateLimitRules = self.rules
        count = p.counters.window(self.metric("submissions"), r.seconds).total(p.now)
        if count >= r.maxTransactions:
            return self.deny("RATE_LIMITED",
                             f"RATE_LIMIT of {r.maxTransactions} per {r.period} reached (submitted {int(count)})",
                             r.maxTransactions, count + 1)
        return None

    def fast(self, counters) -> Fast:
        r: RateLimitRules = self.rules
        return Fast("not $window.total(now) >= $max", {"window": counters.window(self.metric("submissions"), r.seconds), "max": r.maxTransactions})


class OrderLimitsRules(Rules):
    maxOrderUsd: float | None = Field(default=None, gt=0, description="Largest order notional, USD")
    maxOpenOrders: int | None = Field(default=None, ge=0, description="Most resting orders at once")
    minOrderUsd: float | None = Field(default=None, ge=0, description="Smallest order notional, USD")

    @model_validator(mode="after")
    def _ordered(self) -> OrderLimitsRules:
        if self.minOrderUsd is not None and self.maxOrderUsd is not None and self.minOrderUsd > self.maxOrderUsd:
            raise ValueError("minOrderUsd must not exceed maxOrderUsd")
        return self


class OrderLimits(Policy):
    type = "ORDER_LIMITS"
    Rules = OrderLimitsRules
    judges_state = False

    def evaluate(self, p: Projection) -> Reason | None:
        if p.reducing:
            return None
        r: OrderLimitsRules = self.rules
        notional = p.notional
        if (r.maxOrderUsd is not None or r.minOrderUsd is not None) and notional is None:
            return self.unavailable("the order notional")
        if r.maxOrderUsd is not None and exceeds(notional, r.maxOrderUsd):
            return self.deny("ORDER_TOO_LARGE", f"Order would exceed ORDER_LIMITS maxOrderUsd of {fmt(r.maxOrderUsd)} (projected {fmt(notional)})",
                             r.maxOrderUsd, notional)
        if r.minOrderUsd is not None and below(notional, r.minOrderUsd):
            return self.deny("ORDER_TOO_SMALL", f"Order is below ORDER_LIMITS minOrderUsd of {fmt(r.minOrderUsd)} (projected {fmt(notional)})",
                             r.minOrderUsd, notional)
        if r.maxOpenOrders is not None and p.intent.type == "limit":
            resting = len(p.book.open_orders) + 1
            if resting > r.maxOpenOrders:
                return self.deny("TOO_MANY_OPEN_ORDERS",
                                 f"Resting orders would exceed ORDER_LIMITS maxOpenOrders of {r.maxOpenOrders} (projected {resting})",
                                 r.maxOpenOrders, resting)
        return None

    def fast(self, counters) -> Fast:
        r: OrderLimitsRules = self.rules
        checks, names = [], {}
        if r.maxOrderUsd is not None or r.minOrderUsd is not None:
            checks.append("notional is not None")
        if r.maxOrderUsd is not None:
            checks.append("not notional > $max")
            names["max"] = ceiling(r.maxOrderUsd)
        if r.minOrderUsd is not None:
            checks.append("not notional < $min")
            names["min"] = floor(r.minOrderUsd)
        if r.maxOpenOrders is not None:
            checks.append("(order_type != 'limit' or not len(book.open_orders) + 1 > $open)")
            names["open"] = r.maxOpenOrders
        return Fast(" and ".join(checks) or "True", names)
