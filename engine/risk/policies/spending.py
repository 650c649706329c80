"""Spending: the release tier by order notional, and rolling budgets (total and per category).

Only risk-increasing orders spend; exits are never delayed and never count.
Days and months are rolling windows (24 h, 30 days) ending now.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from engine.risk.counters import DAY, MONTH
from engine.domain.model import Reason, Tier
from engine.risk.policies.base import RULES_CONFIG, Fast, Policy, Rules, ceiling, exceeds, fmt
from engine.risk.projection import Projection


class SpendingLimitRules(Rules):
    instant_max_usd: float | None = Field(default=None, ge=0, description="Up to this notional: sent at once")
    notify_max_usd: float | None = Field(default=None, ge=0, description="Up to this: sent, and the trader notified")
    delay_max_usd: float | None = Field(default=None, ge=0, description="Up to this: held delay_seconds, then re-checked")
    delay_seconds: int = Field(default=300, ge=0, le=7 * 86400)
    daily_limit_usd: float | None = Field(default=None, gt=0, description="Rolling 24 h total of entries")
    monthly_limit_usd: float | None = Field(default=None, gt=0, description="Rolling 30-day total of entries")
    approval_timeout_seconds: int = Field(default=3600, ge=1, le=7 * 86400)
    on_exceed: Literal["APPROVAL", "DENY"] = Field(default="APPROVAL", description="Above every tier: wait for a human, or deny")

    @model_validator(mode="after")
    def _ordered(self) -> SpendingLimitRules:
        previous, name_prev = None, None
        for name in ("instant_max_usd", "notify_max_usd", "delay_max_usd"):
            value = getattr(self, name)
            if value is None:
                continue
            if previous is not None and value < previous:
                raise ValueError(f"{name} must be at least {name_prev}")
            previous, name_prev = value, name
        return self


class SpendingLimit(Policy):
    type = "SPENDING_LIMIT"
    Rules = SpendingLimitRules
    judges_state = False

    def windows(self) -> list[tuple[str, float]]:
        return [(self.metric("spend"), DAY), (self.metric("spend"), MONTH)]

    def tier_for(self, notional: float) -> Tier | None:
        """The tier an order of this notional needs; None when above every tier (on_exceed)."""
        r: SpendingLimitRules = self.rules
        for limit, tier in ((r.instant_max_usd, Tier.INSTANT), (r.notify_max_usd, Tier.NOTIFY), (r.delay_max_usd, Tier.DELAY)):
            if limit is not None and not exceeds(notional, limit):
                return tier
        if r.instant_max_usd is None and r.notify_max_usd is None and r.delay_max_usd is None:
            return Tier.INSTANT
        return None

    def evaluate(self, p: Projection) -> Reason | None:
        if p.reducing:
            return None
        notional = p.notional
        if notional is None:
            return self.unavailable("the order notional")
        r: SpendingLimitRules = self.rules
        for limit, seconds, label in ((r.daily_limit_usd, DAY, "daily_limit_usd"), (r.monthly_limit_usd, MONTH, "monthly_limit_usd")):
            if limit is None:
                continue
            total = p.counters.window(self.metric("spend"), seconds).total(p.now) + notional
            if exceeds(total, limit):
                return self.deny("SPENDING_LIMIT",
                                 f"Spend would exceed SPENDING_LIMIT {label} of {fmt(limit)} (projected {fmt(total)})", limit, total)
        tier = self.tier_for(notional)
        if tier is None:
            if r.on_exceed == "DENY":
                top = r.delay_max_usd if r.delay_max_usd is not None else r.notify_max_usd if r.notify_max_usd is not None else r.instant_max_usd
                return self.deny("SPENDING_LIMIT",
                                 f"Order would exceed SPENDING_LIMIT of {fmt(top)} per order (projected {fmt(notional)})", top, notional)
            return self.ask_tier(Tier.APPROVAL, "APPROVAL_REQUIRED",
                                 f"Order of {fmt(notional)} USD is above every SPENDING_LIMIT tier: a human must approve it",
                                 r.delay_max_usd, notional, hold_seconds=r.approval_timeout_seconds)
        if tier is Tier.INSTANT:
            return None
        if tier is Tier.NOTIFY:
            return self.ask_tier(tier, "NOTIFY", f"Order of {fmt(notional)} USD is above instant_max_usd of {fmt(r.instant_max_usd)}",
                                 r.instant_max_usd, notional)
        # the tier below DELAY that the order is over: NOTIFY's, or INSTANT's when NOTIFY is unset
        below, name = (r.notify_max_usd, "notify_max_usd") if r.notify_max_usd is not None else \
            (r.instant_max_usd, "instant_max_usd")
        over = f"above {name} of {fmt(below)}" if below is not None else "in the DELAY tier"
        return self.ask_tier(tier, "DELAYED", f"Order of {fmt(notional)} USD is {over}: held {r.delay_seconds} s",
                             below, notional, hold_seconds=r.delay_seconds)

    def fast(self, counters) -> Fast:
        r: SpendingLimitRules = self.rules
        expr, names = "notional is not None", {}
        for limit, seconds, label in ((r.daily_limit_usd, DAY, "day"), (r.monthly_limit_usd, MONTH, "month")):
            if limit is not None:
                expr += f" and not ${label}.total(now) + notional > ${label}_max"
                names |= {label: counters.window(self.metric("spend"), seconds), f"{label}_max": ceiling(limit)}
        if r.instant_max_usd is not None:  # INSTANT is the only tier with nothing to say
            expr += " and not notional > $instant"
            names["instant"] = ceiling(r.instant_max_usd)
        elif r.notify_max_usd is not None or r.delay_max_usd is not None:
            expr = "False"
        return Fast(expr, names)


class CategoryLimit(BaseModel):
    model_config = RULES_CONFIG
    per_action_limit_usd: float | None = Field(default=None, gt=0)
    daily_limit_usd: float | None = Field(default=None, gt=0)
    monthly_limit_usd: float | None = Field(default=None, gt=0)


class CategoryLimitRules(Rules):
    categoryLimits: dict[str, CategoryLimit] = Field(description="Budget per order category; unlisted categories are not budgeted")


class ActionCategoryLimit(Policy):
    type = "ACTION_CATEGORY_LIMIT"
    Rules = CategoryLimitRules
    judges_state = False

    def windows(self) -> list[tuple[str, float]]:
        out = []
        for category, limits in self.rules.categoryLimits.items():
            if limits.daily_limit_usd is not None:
                out.append((self.metric(f"spend:{category}"), DAY))
            if limits.monthly_limit_usd is not None:
                out.append((self.metric(f"spend:{category}"), MONTH))
        return out

    def evaluate(self, p: Projection) -> Reason | None:
        if p.reducing:
            return None
        category = p.intent.category
        limits = self.rules.categoryLimits.get(category)
        if limits is None:
            return None
        notional = p.notional
        if notional is None:
            return self.unavailable("the order notional")
        if limits.per_action_limit_usd is not None and exceeds(notional, limits.per_action_limit_usd):
            return self.deny("CATEGORY_LIMIT",
                             f"Order would exceed ACTION_CATEGORY_LIMIT per_action_limit_usd of {fmt(limits.per_action_limit_usd)} "
                             f"for {category} (projected {fmt(notional)})", limits.per_action_limit_usd, notional)
        for limit, seconds, label in ((limits.daily_limit_usd, DAY, "daily_limit_usd"), (limits.monthly_limit_usd, MONTH, "monthly_limit_usd")):
            if limit is None:
                continue
            total = p.counters.window(self.metric(f"spend:{category}"), seconds).total(p.now) + notional
            if exceeds(total, limit):
                return self.deny("CATEGORY_LIMIT",
                                 f"Spend would exceed ACTION_CATEGORY_LIMIT {label} of {fmt(limit)} for {category} (projected {fmt(total)})",
                                 limit, total)
        return None

    def fast(self, counters) -> Fast:
        terms, names = [], {}
        for j, (category, limits) in enumerate(self.rules.categoryLimits.items()):
            checks = ["notional is not None"]
            if limits.per_action_limit_usd is not None:
                checks.append(f"not notional > $per_action{j}")
                names[f"per_action{j}"] = ceiling(limits.per_action_limit_usd)
            for limit, seconds, label in ((limits.daily_limit_usd, DAY, "day"), (limits.monthly_limit_usd, MONTH, "month")):
                if limit is not None:
                    checks.append(f"not ${label}{j}.total(now) + notional > ${label}_max{j}")
                    names |= {f"{label}{j}": counters.window(self.metric(f"spend:{category}"), seconds),
                              f"{label}_max{j}": ceiling(limit)}
            terms.append(f"(category != $category{j} or {' and '.join(checks)})")
            names[f"category{j}"] = category
        return Fast(" and ".join(terms) or "True", names)
