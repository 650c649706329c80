"""Trade quality: a stop on every entry, a reward worth the risk, risk per trade capped."""

from __future__ import annotations

from pydantic import Field

from engine.domain.model import Reason
from engine.risk.policies.base import Fast, Policy, Rules, below, exceeds, exceeds_src, floor, fmt
from engine.risk.projection import Projection


def _stop_problem(p: Projection) -> str | None:
    """Why the order's stop loss cannot bound its risk, or None if it can."""
    sl, entry = p.intent.stop_loss, p.px
    if sl is None:
        return "missing"
    if entry is None:
        return "unpriced"
    if (p.sign > 0 and sl >= entry) or (p.sign < 0 and sl <= entry):
        return "wrong side"
    return None


# `_stop_problem(p) is None` as source: a stop on the priced side of entry.
_STOP_SRC = ("stop_loss is not None and px is not None"
             " and not (sign > 0 and stop_loss >= px or sign < 0 and stop_loss <= px)")


class RewardRiskRules(Rules):
    requireStopLoss: bool = Field(default=True, description="Every entry must carry stop_loss")
    minRewardRisk: float | None = Field(default=None, gt=0, description="(take_profit − entry) / (entry − stop_loss), sign-adjusted")


class RewardRisk(Policy):
    type = "REWARD_RISK"
    Rules = RewardRiskRules
    judges_state = False

    def evaluate(self, p: Projection) -> Reason | None:
        if p.reducing:
            return None
        r: RewardRiskRules = self.rules
        problem = _stop_problem(p)
        if problem == "unpriced":
            return self.unavailable("the entry price")
        if problem == "wrong side":
            return self.deny("STOP_LOSS_INVALID", f"stop_loss {fmt(p.intent.stop_loss)} is on the wrong side of entry {fmt(p.px)}",
                             None, p.intent.stop_loss)
        if problem == "missing":
            if r.requireStopLoss or r.minRewardRisk is not None:
                return self.deny("STOP_LOSS_REQUIRED", "REWARD_RISK requires a stop_loss on every entry")
            return None
        if r.minRewardRisk is None:
            return None
        tp = p.intent.take_profit
        if tp is None:
            return self.deny("TAKE_PROFIT_REQUIRED", f"REWARD_RISK of {fmt(r.minRewardRisk)} needs a take_profit to measure")
        reward = p.sign * (tp - p.px)
        risk = p.sign * (p.px - p.intent.stop_loss)
        ratio = reward / risk
        if below(ratio, r.minRewardRisk):
            return self.deny("REWARD_RISK", f"Reward/risk below REWARD_RISK minimum of {fmt(r.minRewardRisk)} (projected {fmt(ratio)})",
                             r.minRewardRisk, ratio)
        return None

    def fast(self, counters) -> Fast:
        r: RewardRiskRules = self.rules
        if r.minRewardRisk is None:
            return Fast(_STOP_SRC if r.requireStopLoss else f"(stop_loss is None or ({_STOP_SRC}))")
        return Fast(f"{_STOP_SRC} and take_profit is not None"
                    " and not sign * (take_profit - px) / (sign * (px - stop_loss)) < $min",
                    {"min": floor(r.minRewardRisk)})


class RiskPerTradeRules(Rules):
    maxRiskShare: float = Field(gt=0, lt=1, description="Largest loss at the stop, as a fraction of equity")


class RiskPerTrade(Policy):
    """size × |entry − stop| ≤ maxRiskShare × equity; an entry with no stop has unbounded risk."""

    type = "RISK_PER_TRADE"
    Rules = RiskPerTradeRules
    judges_state = False

    def evaluate(self, p: Projection) -> Reason | None:
        if p.reducing:
            return None
        problem = _stop_problem(p)
        if problem == "unpriced" or p.book_equity is None or p.size is None:
            return self.unavailable("the risk to the stop")
        if problem is not None:
            return self.deny("STOP_LOSS_REQUIRED", f"RISK_PER_TRADE needs a stop_loss on the right side of entry to bound risk ({problem})")
        risk = p.size * abs(p.px - p.intent.stop_loss)
        limit = self.rules.maxRiskShare * p.book_equity
        if exceeds(risk, limit):
            return self.deny("RISK_PER_TRADE", f"Loss at stop would exceed RISK_PER_TRADE limit of {fmt(limit)} USD (projected {fmt(risk)})",
                             limit, risk)
        return None

    def fast(self, counters) -> Fast:
        return Fast(f"book_equity is not None and size is not None and {_STOP_SRC}"
                    f" and not {exceeds_src('size * abs(px - stop_loss)', '$share * book_equity')}",
                    {"share": self.rules.maxRiskShare})
