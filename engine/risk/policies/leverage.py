"""Leverage caps: a fixed cap per account and market, and one that shrinks with volatility."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from engine.domain.model import Reason, Tier
from engine.domain.coins import DEFAULT_MARKET_KEY
from engine.risk.policies.base import Fast, Policy, Rules, ceiling, exceeds, fmt, market_keyed, per_market
from engine.risk.projection import Projection


class MaxLeverageRules(Rules):
    maxLeverage: float = Field(gt=0, description="Account leverage cap: gross notional / equity")
    leverageTiers: dict[str, float] = Field(default_factory=dict, description="Per-market caps; ALT-USD = every market not named")
    warningLeverage: float | None = Field(default=None, gt=0, description="Above this, the order is released with a notification")

    @field_validator("leverageTiers")
    @classmethod
    def _canonical_positive(cls, v: dict[str, float]) -> dict[str, float]:
        for market, lev in v.items():
            if lev <= 0:
                raise ValueError(f"leverage for {market} must be positive")
        return market_keyed(v)


class PerpMaxLeverage(Policy):
    """Account leverage (gross / equity) and the market's leverage after the fill.

    A market's leverage is its position notional over what backs it (equity for cross, the
    isolated margin for isolated), or the leverage the order itself sets, whichever is higher.
    """

    type = "PERP_MAX_LEVERAGE"
    Rules = MaxLeverageRules

    def evaluate(self, p: Projection) -> Reason | None:
        if p.reducing:
            return None
        r: MaxLeverageRules = self.rules
        account, market = p.account_leverage, p.market_leverage
        if account is None or market is None:
            return self.unavailable("the projected leverage")
        if exceeds(account, r.maxLeverage):
            return self.deny("LEVERAGE_LIMIT",
                             f"Account leverage would exceed PERP_MAX_LEVERAGE limit of {fmt(r.maxLeverage)} (projected {fmt(account)})",
                             r.maxLeverage, account)
        cap = min(per_market(r.leverageTiers, p.coin, r.maxLeverage), r.maxLeverage)
        if exceeds(market, cap):
            return self.deny("LEVERAGE_LIMIT",
                             f"{p.coin} leverage would exceed PERP_MAX_LEVERAGE limit of {fmt(cap)} (projected {fmt(market)})",
                             cap, market)
        if r.warningLeverage is not None and exceeds(max(account, market), r.warningLeverage):
            value = max(account, market)
            return self.ask_tier(Tier.NOTIFY, "LEVERAGE_WARNING",
                                 f"Leverage above PERP_MAX_LEVERAGE warning of {fmt(r.warningLeverage)} (projected {fmt(value)})",
                                 r.warningLeverage, value)
        return None

    def fast(self, counters) -> Fast:
        r: MaxLeverageRules = self.rules
        caps = {coin: ceiling(min(lev, r.maxLeverage)) for coin, lev in r.leverageTiers.items()}
        default = ceiling(min(r.leverageTiers.get(DEFAULT_MARKET_KEY, r.maxLeverage), r.maxLeverage))
        expr = ("account_leverage is not None and market_leverage is not None and not account_leverage > $max"
                " and not market_leverage > $caps.get(coin, $default)")
        if r.warningLeverage is not None:
            expr += " and not max(account_leverage, market_leverage) > $warn"
        return Fast(expr, {"max": ceiling(r.maxLeverage), "caps": caps, "default": default,
                           "warn": ceiling(r.warningLeverage) if r.warningLeverage is not None else None})


class VolatilityLeverageRules(Rules):
    targetVolatility: float = Field(gt=0, description="Annualized volatility the position should carry, fraction (0.5 = 50%/yr)")
    lookbackMinutes: int = Field(ge=2, le=7 * 24 * 60, description="Window of one-minute mark returns")
    floorLeverage: float = Field(ge=1, description="The cap never goes below this")
    maxLeverage: float | None = Field(default=None, gt=0, description="Ceiling in calm markets")

    @model_validator(mode="after")
    def _floor_under_ceiling(self) -> VolatilityLeverageRules:
        if self.maxLeverage is not None and self.maxLeverage < self.floorLeverage:
            raise ValueError("maxLeverage must be at least floorLeverage")
        return self


class VolatilityLeverage(Policy):
    """Max market leverage = targetVolatility / realized volatility, floored and capped."""

    type = "VOLATILITY_LEVERAGE"
    Rules = VolatilityLeverageRules
    __slots__ = ("_last",)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._last = (None, None)  # (realized volatility, its cap's ceiling): volatility moves once a minute

    def vol_lookback_minutes(self) -> int:
        return self.rules.lookbackMinutes

    def allowed_leverage(self, realized: float) -> float:
        r: VolatilityLeverageRules = self.rules
        cap = r.targetVolatility / realized if realized > 0 else float("inf")
        if r.maxLeverage is not None:
            cap = min(cap, r.maxLeverage)
        return max(r.floorLeverage, cap)

    def cap_ceiling(self, realized: float) -> float:
        """`ceiling(allowed_leverage(realized))`, remembered for the last volatility asked."""
        last, value = self._last
        if realized != last:
            value = ceiling(self.allowed_leverage(realized))
            self._last = (realized, value)
        return value

    def evaluate(self, p: Projection) -> Reason | None:
        if p.reducing:
            return None
        vol = p.counters.volatility.get(p.coin)
        realized = vol.annualized() if vol is not None else None
        if realized is None or p.market_leverage is None:
            return self.unavailable(f"realized volatility of {p.coin} over {self.rules.lookbackMinutes} minutes")
        cap = self.allowed_leverage(realized)
        if exceeds(p.market_leverage, cap):
            return self.deny("VOLATILITY_LEVERAGE",
                             f"{p.coin} leverage would exceed VOLATILITY_LEVERAGE limit of {fmt(cap)} at realized volatility "
                             f"{fmt(realized)} (projected {fmt(p.market_leverage)})", cap, p.market_leverage)
        return None

    def fast(self, counters) -> Fast:
        return Fast("($vol := counters.volatility.get(coin)) is not None and ($realized := $vol.annualized()) is not None"
                    " and market_leverage is not None and not market_leverage > $policy.cap_ceiling($realized)",
                    {"policy": self})
