"""Size caps on the projected book: per position, gross, share of equity, share of gross."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from engine.domain.model import Reason, Tier
from engine.domain.coins import DEFAULT_MARKET_KEY
from engine.risk.policies.base import Fast, Policy, Rules, ceiling, exceeds, exceeds_src, fmt, market_keyed, per_market
from engine.risk.projection import Projection


class MaxPositionRules(Rules):
    maxPositionUsd: float = Field(gt=0, description="Cap on one position's notional, USD")
    marketLimits: dict[str, float] = Field(default_factory=dict, description="Per-market caps, USD; ALT-USD = every market not named")
    warningPositionUsd: float | None = Field(default=None, gt=0, description="Above this the order is released with a notification")

    @field_validator("marketLimits")
    @classmethod
    def _canonical_positive(cls, v: dict[str, float]) -> dict[str, float]:
        for market, usd in v.items():
            if usd <= 0:
                raise ValueError(f"limit for {market} must be positive")
        return market_keyed(v)


class PerpMaxPositionUsd(Policy):
    type = "PERP_MAX_POSITION_USD"
    Rules = MaxPositionRules

    def evaluate(self, p: Projection) -> Reason | None:
        if p.reducing:
            return None
        r: MaxPositionRules = self.rules
        value = p.position_notional
        if value is None:
            return self.unavailable("the projected position notional")
        own = r.marketLimits.get(p.coin)
        limit = per_market(r.marketLimits, p.coin, r.maxPositionUsd)
        limit = min(limit, r.maxPositionUsd)
        if exceeds(value, limit):
            where = f" for {p.coin}" if own is not None and own <= r.maxPositionUsd else ""
            return self.deny("POSITION_LIMIT",
                             f"Position would exceed PERP_MAX_POSITION_USD limit of {fmt(limit)}{where} (projected {fmt(value)})",
                             limit, value)
        if r.warningPositionUsd is not None and exceeds(value, r.warningPositionUsd):
            return self.ask_tier(Tier.NOTIFY, "POSITION_WARNING",
                                 f"Position above PERP_MAX_POSITION_USD warning of {fmt(r.warningPositionUsd)} (projected {fmt(value)})",
                                 r.warningPositionUsd, value)
        return None

    def fast(self, counters) -> Fast:
        r: MaxPositionRules = self.rules
        limits = {coin: ceiling(min(usd, r.maxPositionUsd)) for coin, usd in r.marketLimits.items()}
        default = ceiling(min(r.marketLimits.get(DEFAULT_MARKET_KEY, r.maxPositionUsd), r.maxPositionUsd))
        expr = "position_notional is not None and not position_notional > $limits.get(coin, $default)"
        if r.warningPositionUsd is not None:
            expr += " and not position_notional > $warn"
        return Fast(expr, {"limits": limits, "default": default,
                           "warn": ceiling(r.warningPositionUsd) if r.warningPositionUsd is not None else None})


class GrossExposureRules(Rules):
    maxGrossUsd: float | None = Field(default=None, gt=0, description="Cap on the sum of position notionals, USD")
    maxExposure: float | None = Field(default=None, gt=0, description="Cap on gross notional as a multiple of equity (3 = 3x)")

    @model_validator(mode="after")
    def _one_cap(self) -> GrossExposureRules:
        if self.maxGrossUsd is None and self.maxExposure is None:
            raise ValueError("give maxGrossUsd or maxExposure")
        return self


class MaxGrossExposure(Policy):
    type = "MAX_GROSS_EXPOSURE"
    Rules = GrossExposureRules

    def evaluate(self, p: Projection) -> Reason | None:
        if p.reducing:
            return None
        r: GrossExposureRules = self.rules
        gross, equity = p.gross, p.equity
        if gross is None or equity is None:
            return self.unavailable("the projected gross notional")
        if r.maxGrossUsd is not None and exceeds(gross, r.maxGrossUsd):
            return self.deny("GROSS_EXPOSURE",
                             f"Gross exposure would exceed MAX_GROSS_EXPOSURE limit of {fmt(r.maxGrossUsd)} (projected {fmt(gross)})",
                             r.maxGrossUsd, gross)
        if r.maxExposure is not None:
            limit = r.maxExposure * equity
            if equity <= 0 or exceeds(gross, limit):
                return self.deny("GROSS_EXPOSURE",
                                 f"Gross exposure would exceed MAX_GROSS_EXPOSURE limit of {fmt(r.maxExposure)}x equity = "
                                 f"{fmt(limit)} (projected {fmt(gross)})", limit, gross)
        return None

    def fast(self, counters) -> Fast:
        r: GrossExposureRules = self.rules
        expr = "gross is not None and equity is not None"
        if r.maxGrossUsd is not None:
            expr += " and not gross > $gross"
        if r.maxExposure is not None:
            expr += f" and not (equity <= 0 or {exceeds_src('gross', '$times * equity')})"
        return Fast(expr, {"gross": ceiling(r.maxGrossUsd) if r.maxGrossUsd is not None else None, "times": r.maxExposure})


class PositionShareRules(Rules):
    maxPositionShare: float = Field(gt=0, description="Cap on one position's notional as a multiple of equity (0.5 = 50%)")


class MaxPositionShare(Policy):
    type = "MAX_POSITION_SHARE"
    Rules = PositionShareRules

    def evaluate(self, p: Projection) -> Reason | None:
        if p.reducing:
            return None
        value, equity = p.position_notional, p.equity
        if value is None or equity is None:
            return self.unavailable("the projected position notional")
        limit = self.rules.maxPositionShare * equity
        if equity <= 0 or exceeds(value, limit):
            return self.deny("POSITION_SHARE",
                             f"{p.coin} position would exceed MAX_POSITION_SHARE limit of {fmt(self.rules.maxPositionShare)} "
                             f"of equity = {fmt(limit)} (projected {fmt(value)})", limit, value)
        return None

    def fast(self, counters) -> Fast:
        return Fast("position_notional is not None and equity is not None"
                    f" and not (equity <= 0 or {exceeds_src('position_notional', '$share * equity')})",
                    {"share": self.rules.maxPositionShare})


class ConcentrationRules(Rules):
    maxMarketShare: float = Field(gt=0, le=1, description="Cap on one market's share of gross notional (fraction)")
    minGrossUsd: float = Field(default=0.0, ge=0, description="The rule applies once gross notional reaches this (USD)")


class Concentration(Policy):
    """One market's share of gross notional after the fill. With `minGrossUsd` 0 (the default)
    it applies from the first order, so a single-market book is 100% concentrated."""

    type = "CONCENTRATION"
    Rules = ConcentrationRules

    def evaluate(self, p: Projection) -> Reason | None:
        if p.reducing:
            return None
        value, gross = p.position_notional, p.gross
        if value is None or gross is None:
            return self.unavailable("the projected market share")
        r: ConcentrationRules = self.rules
        if gross <= 0 or gross < r.minGrossUsd:
            return None
        share = value / gross
        if exceeds(share, r.maxMarketShare):
            return self.deny("CONCENTRATION",
                             f"{p.coin} would exceed CONCENTRATION limit of {fmt(r.maxMarketShare)} of gross (projected {fmt(share)})",
                             r.maxMarketShare, share)
        return None

    def fast(self, counters) -> Fast:
        r: ConcentrationRules = self.rules
        return Fast("position_notional is not None and gross is not None"
                    " and (gross <= 0 or gross < $min_gross or not position_notional / gross > $share)",
                    {"min_gross": r.minGrossUsd, "share": ceiling(r.maxMarketShare)})
