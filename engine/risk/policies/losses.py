"""Loss-driven brakes: period loss limits, drawdown from peak, a losing-streak breaker.

Each denies entries while breached; the engine loop also turns the first two into
trading-state changes (REDUCE_ONLY until the period ends; drawdown latches until resume).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from pydantic import Field, model_validator

from engine.domain.model import Reason
from engine.risk.policies.base import Fast, Policy, Rules, below, below_src, floor, fmt
from engine.risk.projection import Projection


class LossLimitRules(Rules):
    dailyLoss: float | None = Field(default=None, gt=0, le=1, description="Fraction of the UTC day's starting equity")
    weeklyLoss: float | None = Field(default=None, gt=0, le=1, description="Fraction of the ISO week's starting equity (Monday 00:00 UTC)")
    sessionLossUsd: float | None = Field(default=None, gt=0, description="USD since the engine started")
    includeUnrealized: bool = Field(default=True, description="Count open positions' unrealized PnL (equity change), else realized only")

    @model_validator(mode="after")
    def _one_limit(self) -> LossLimitRules:
        if self.dailyLoss is None and self.weeklyLoss is None and self.sessionLossUsd is None:
            raise ValueError("give dailyLoss, weeklyLoss or sessionLossUsd")
        return self


# (period, rule field, the counters' start equity and realized PnL, limit is a fraction of the start)
_PERIODS = (("daily", "dailyLoss", "day_start_equity", "realized_day", True),
            ("weekly", "weeklyLoss", "week_start_equity", "realized_week", True),
            ("session", "sessionLossUsd", "session_start_equity", "realized_session", False))


class PeriodLoss(NamedTuple):
    """One LOSS_LIMIT period's figures: `limit` and `loss` USD (positive = lost), None while they
    cannot be known (no starting equity yet, or no equity to value open positions)."""

    period: str  # daily | weekly | session
    limit: float | None
    loss: float | None

    @property
    def known(self) -> bool:
        return self.limit is not None and self.loss is not None

    @property
    def reached(self) -> bool:
        """The loss has reached the limit (float noise included)."""
        return self.known and not below(self.loss, self.limit)

    @property
    def cause(self) -> str:
        """The trading-state cause this period trips (`loss_limit:daily`, ...)."""
        return f"loss_limit:{self.period}"


class LossLimit(Policy):
    type = "LOSS_LIMIT"
    Rules = LossLimitRules

    def losses(self, equity: float | None, counters) -> list[PeriodLoss]:
        """Each configured period's loss against its limit, daily, weekly, session."""
        r: LossLimitRules = self.rules
        out: list[PeriodLoss] = []
        for period, field, start_name, realized_name, of_start in _PERIODS:
            rule, start = getattr(r, field), getattr(counters, start_name)
            if rule is None:
                continue
            if start is None or (r.includeUnrealized and equity is None):
                out.append(PeriodLoss(period, None, None))
                continue
            limit = rule * start if of_start else rule  # a fraction of the period's start, or USD
            out.append(PeriodLoss(period, limit, (start - equity) if r.includeUnrealized else -getattr(counters, realized_name)))
        return out

    def breach(self, equity: float | None, counters) -> PeriodLoss | None:
        """The first period whose loss cannot be known or has reached its limit; None when every
        period is known and under its limit."""
        for period in self.losses(equity, counters):
            if not period.known or period.reached:
                return period
        return None

    def evaluate(self, p: Projection) -> Reason | None:
        if p.reducing:
            return None
        found = self.breach(p.book_equity, p.counters)
        if found is None:
            return None
        if not found.known:
            return self.unavailable("the period's loss")
        return self.deny("LOSS_LIMIT", f"{found.period.capitalize()} loss of {fmt(found.loss)} USD reached LOSS_LIMIT of "
                         f"{fmt(found.limit)}; entries stop until the period ends", found.limit, found.loss)

    def fast(self, counters) -> Fast:
        r: LossLimitRules = self.rules
        terms, names = (["book_equity is not None"] if r.includeUnrealized else []), {}
        for _, field, start_name, realized_name, of_start in _PERIODS:
            rule, start = getattr(r, field), f"counters.{start_name}"
            if rule is None:
                continue
            loss = f"{start} - book_equity" if r.includeUnrealized else f"-counters.{realized_name}"
            if of_start:
                terms.append(f"{start} is not None and {below_src(loss, f'${field} * {start}')}")
                names[field] = rule
            else:
                terms.append(f"{start} is not None and {loss} < ${field}")
                names[field] = floor(rule)
        return Fast(" and ".join(terms), names)


class DrawdownRules(Rules):
    maxDrawdown: float = Field(gt=0, lt=1, description="Fraction below peak equity")
    action: Literal["REDUCE_ONLY", "PANIC"] = "REDUCE_ONLY"


class MaxDrawdown(Policy):
    type = "MAX_DRAWDOWN"
    Rules = DrawdownRules

    def drawdown(self, equity: float | None, peak: float | None) -> float | None:
        if equity is None or peak is None or peak <= 0:
            return None
        return max(0.0, 1.0 - equity / peak)

    def breached(self, dd: float | None) -> bool:
        """The drawdown (fraction) has reached maxDrawdown, float noise included."""
        return dd is not None and not below(dd, self.rules.maxDrawdown)

    def evaluate(self, p: Projection) -> Reason | None:
        if p.reducing:
            return None
        dd = self.drawdown(p.book_equity, p.counters.peak_equity)
        if dd is None:
            return self.unavailable("the drawdown from peak equity")
        if self.breached(dd):
            return self.deny("MAX_DRAWDOWN", f"Drawdown of {fmt(dd)} from peak reached MAX_DRAWDOWN of {fmt(self.rules.maxDrawdown)}",
                             self.rules.maxDrawdown, dd)
        return None

    def fast(self, counters) -> Fast:
        return Fast("book_equity is not None and ($peak := counters.peak_equity) is not None and $peak > 0"
                    " and max(0.0, 1.0 - book_equity / $peak) < $max", {"max": floor(self.rules.maxDrawdown)})


class CircuitBreakerRules(Rules):
    maxConsecutiveLosses: int = Field(ge=1, description="Losing closes in a row that trip the breaker")
    cooldownMinutes: float = Field(ge=0, description="Entries blocked this long after the last losing close")


class CircuitBreaker(Policy):
    """After N losing closes in a row, entries wait out the cooldown from the last loss.
    The streak resets only on a winning close, so one more loss after the cooldown re-trips it."""

    type = "CIRCUIT_BREAKER"
    Rules = CircuitBreakerRules

    def cooldown_left(self, counters, now: float) -> float:
        r: CircuitBreakerRules = self.rules
        if counters.consecutive_losses < r.maxConsecutiveLosses or counters.last_loss_at is None:
            return 0.0
        return max(0.0, counters.last_loss_at + r.cooldownMinutes * 60 - now)

    def evaluate(self, p: Projection) -> Reason | None:
        if p.reducing:
            return None
        left = self.cooldown_left(p.counters, p.now)
        if left <= 0:
            return None
        return self.deny("CIRCUIT_BREAKER",
                         f"{p.counters.consecutive_losses} losing closes in a row tripped CIRCUIT_BREAKER "
                         f"(max {self.rules.maxConsecutiveLosses}); entries resume in {int(left // 60)}m{int(left % 60):02d}s",
                         self.rules.maxConsecutiveLosses, p.counters.consecutive_losses)

    def fast(self, counters) -> Fast:
        r: CircuitBreakerRules = self.rules
        return Fast("(counters.consecutive_losses < $streak or counters.last_loss_at is None"
                    " or max(0.0, counters.last_loss_at + $cooldown - now) <= 0)",
                    {"streak": r.maxConsecutiveLosses, "cooldown": r.cooldownMinutes * 60})
