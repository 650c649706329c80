"""Market-data guards: stale or missing data, fat-finger prices, paying funding."""

from __future__ import annotations

from pydantic import Field

from engine.domain.model import Reason
from engine.risk.policies.base import Fast, Policy, Rules, ceiling, exceeds, fmt
from engine.risk.projection import Projection


class StaleDataRules(Rules):
    maxMarkAgeSeconds: float = Field(gt=0, description="A mark older than this denies entries")
    maxAccountAgeSeconds: float = Field(gt=0, description="An account snapshot older than this denies entries")


class StaleData(Policy):
    """Fail closed: no new risk on old or missing data. Exits still pass."""

    type = "STALE_DATA"
    Rules = StaleDataRules

    def evaluate(self, p: Projection) -> Reason | None:
        if p.reducing:
            return None
        r: StaleDataRules = self.rules
        if p.mark_age is None:
            return self.deny("DATA_UNAVAILABLE", f"No mark for {p.coin}: STALE_DATA denies new risk", r.maxMarkAgeSeconds, None)
        if exceeds(p.mark_age, r.maxMarkAgeSeconds):
            return self.deny("DATA_UNAVAILABLE",
                             f"{p.coin} mark is {fmt(p.mark_age)} s old, over STALE_DATA maxMarkAgeSeconds of {fmt(r.maxMarkAgeSeconds)}",
                             r.maxMarkAgeSeconds, p.mark_age)
        if p.account_age is None:
            return self.deny("DATA_UNAVAILABLE", "No account snapshot: STALE_DATA denies new risk", r.maxAccountAgeSeconds, None)
        if exceeds(p.account_age, r.maxAccountAgeSeconds):
            return self.deny("DATA_UNAVAILABLE",
                             f"Account data is {fmt(p.account_age)} s old, over STALE_DATA maxAccountAgeSeconds of {fmt(r.maxAccountAgeSeconds)}",
                             r.maxAccountAgeSeconds, p.account_age)
        return None

    def fast(self, counters) -> Fast:
        r: StaleDataRules = self.rules
        return Fast("mark_age is not None and not mark_age > $mark and account_age is not None and not account_age > $account",
                    {"mark": ceiling(r.maxMarkAgeSeconds), "account": ceiling(r.maxAccountAgeSeconds)})


class PriceBandRules(Rules):
    maxDeviation: float = Field(gt=0, lt=1, description="Largest |limit − mark| / mark; also the slippage cap of market orders")


class PriceBand(Policy):
    """Fat-finger guard for resting limit orders (Gtc, Alo), exits included. Market orders are
    sent as IOC limits at mark ± maxDeviation, so they are inside the band by construction, and
    so is an IOC limit: it is a market order with the worst price its sender accepts (what the
    SDK's and ccxt's market orders are: 5% beyond the mid or the touch), and the gate caps that
    price at mark ± maxDeviation (`RiskGate`), tighter than asked, never looser."""

    type = "PRICE_BAND"
    Rules = PriceBandRules
    judges_state = False

    def evaluate(self, p: Projection) -> Reason | None:
        if p.intent.type != "limit" or p.intent.tif == "Ioc":
            if p.mark is None and p.increases_risk:
                return self.unavailable(f"the price band: no mark for {p.coin}")
            return None
        if p.mark is None:
            return None if p.reducing else self.unavailable(f"the price band: no mark for {p.coin}")
        deviation = abs(p.intent.limit_px - p.mark) / p.mark
        if exceeds(deviation, self.rules.maxDeviation):
            return self.deny("PRICE_BAND",
                             f"Limit {fmt(p.intent.limit_px)} is {fmt(deviation)} from mark {fmt(p.mark)}, over PRICE_BAND maxDeviation of "
                             f"{fmt(self.rules.maxDeviation)}", self.rules.maxDeviation, deviation)
        return None

    def fast(self, counters) -> Fast:
        return Fast("mark is not None and (order_type != 'limit' or tif == 'Ioc' or not abs(limit_px - mark) / mark > $max)",
                    {"max": ceiling(self.rules.maxDeviation)})


class FundingGuardRules(Rules):
    maxHourlyFunding: float = Field(ge=0, description="Hourly funding rate (fraction) above which the paying side takes no entries")


class FundingGuard(Policy):
    type = "FUNDING_GUARD"
    Rules = FundingGuardRules

    def evaluate(self, p: Projection) -> Reason | None:
        if p.reducing:
            return None
        rate = p.book.funding.get(p.coin)
        if rate is None:
            return self.unavailable(f"the funding rate of {p.coin}")
        # A risk-increasing order (adding, opening or flipping) always ends on its own side.
        paying = (p.sign > 0 and rate > 0) or (p.sign < 0 and rate < 0)
        if paying and exceeds(abs(rate), self.rules.maxHourlyFunding):
            side = "longs" if rate > 0 else "shorts"
            return self.deny("FUNDING_GUARD",
                             f"{p.coin} {side} pay {fmt(abs(rate))}/h funding, over FUNDING_GUARD maxHourlyFunding of {fmt(self.rules.maxHourlyFunding)}",
                             self.rules.maxHourlyFunding, abs(rate))
        return None

    def fast(self, counters) -> Fast:
        return Fast("($rate := book.funding.get(coin)) is not None"
                    " and not ((sign > 0 and $rate > 0 or sign < 0 and $rate < 0) and abs($rate) > $max)",
                    {"max": ceiling(self.rules.maxHourlyFunding)})
