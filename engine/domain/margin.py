"""Hyperliquid margin math (SPEC section 7) and the seed sizing formulas.

Units: prices and notionals in USD, sizes in signed base units, rates and buffers as fractions.
Floats are used on purpose: this is pure risk math on the hot path; tests pin the tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


# A margin table id below this is not listed in `meta.marginTables`: it is one flat tier
# whose max leverage is the id itself.
FLAT_TABLES_BELOW = 50


@dataclass(frozen=True, slots=True)
class MarginTier:
    """One row of a venue margin table: from `lower_bound` USD of notional, at most `max_leverage`."""

    lower_bound: float
    max_leverage: float


@dataclass(frozen=True, slots=True)
class MarginTable:
    """Maintenance-margin tiers of one market, with rates and deductions precomputed.

    Tier n has rate_n = 1 / (2 × maxLeverage_n) and
    deduction_n = deduction_{n-1} + lower_bound_n × (rate_n − rate_{n-1}),
    so MM = notional × rate − deduction is continuous across tier bounds.
    """

    lower_bounds: tuple[float, ...]
    max_leverages: tuple[float, ...]
    rates: tuple[float, ...]
    deductions: tuple[float, ...]

    @classmethod
    def from_tiers(cls, tiers: Iterable[MarginTier]) -> MarginTable:
        ordered = sorted(tiers, key=lambda t: t.lower_bound)
        if not ordered:
            raise ValueError("a margin table needs at least one tier")
        if ordered[0].lower_bound != 0:
            raise ValueError("the first margin tier must start at 0")
        rates, deductions = [], []
        for i, tier in enumerate(ordered):
            if tier.max_leverage <= 0:
                raise ValueError("maxLeverage must be positive")
            rate = 1.0 / (2.0 * tier.max_leverage)
            deduction = 0.0 if i == 0 else deductions[-1] + tier.lower_bound * (rate - rates[-1])
            rates.append(rate)
            deductions.append(deduction)
        return cls(
            tuple(t.lower_bound for t in ordered),
            tuple(t.max_leverage for t in ordered),
            tuple(rates),
            tuple(deductions),
        )

    @classmethod
    def flat(cls, max_leverage: float) -> MarginTable:
        return cls.from_tiers([MarginTier(0.0, float(max_leverage))])

    def tier(self, notional: float) -> int:
        """The index of the tier that applies at this absolute notional (USD)."""
        bounds = self.lower_bounds
        i = len(bounds) - 1
        while i > 0 and notional < bounds[i]:
            i -= 1
        return i

    def maintenance_margin(self, notional: float) -> float:
        """USD maintenance margin for an absolute position notional (USD)."""
        i = self.tier(notional)
        return notional * self.rates[i] - self.deductions[i]

    def maintenance_rate(self, notional: float) -> float:
        """The tier rate `l` that applies at this notional (fraction)."""
        return self.rates[self.tier(notional)]

    def max_leverage(self, notional: float = 0.0) -> float:
        return self.max_leverages[self.tier(notional)]


def margin_table_for(table_id: int, listed: dict[int, MarginTable]) -> MarginTable | None:
    """The table a market's `marginTableId` names: listed in meta, or flat below 50."""
    if table_id in listed:
        return listed[table_id]
    if 0 < table_id < FLAT_TABLES_BELOW:
        return MarginTable.flat(table_id)
    return None


def initial_margin(notional: float, leverage: float) -> float:
    """USD initial margin: notional / leverage."""
    return abs(notional) / leverage


def liquidation_price(mark: float, size: float, margin_available: float, maintenance_rate: float) -> float | None:
    """Hyperliquid's liquidation price.

    liq = mark − side × margin_available / |size| / (1 − l × side), side = ±1.
    Cross: margin_available = account value − maintenance margin of all cross positions.
    Isolated: isolated margin − the position's maintenance margin.
    A long whose result is ≤ 0 has no liquidation price (None); no position, no price.
    """
    if size == 0:
        return None
    side = 1.0 if size > 0 else -1.0
    liq = mark - side * margin_available / abs(size) / (1.0 - maintenance_rate * side)
    if liq <= 0:
        return None
    return liq


def buffer_price(mark: float, size: float, account_value: float, maintenance: float, maintenance_rate: float,
                 buffer: float) -> float | None:
    """The price of this position's coin at which the account's margin buffer would be `buffer`
    (the others held at their marks; within the position's margin tier). The liquidation price is
    the case `buffer` = 0, and this is the same math: account value and maintenance margin both
    move linearly with the price, value by `size` and maintenance by `|size| × rate`, so

        p = mark + (maintenance − (1 − buffer) × value) / (size × ((1 − buffer) − rate × side))

    A long whose result is ≤ 0 never reaches that buffer (None); no position, no price.
    """
    if size == 0:
        return None
    side = 1.0 if size > 0 else -1.0
    keep = 1.0 - buffer
    px = mark + (maintenance - keep * account_value) / (size * (keep - maintenance_rate * side))
    if px <= 0:
        return None
    return px


def margin_buffer(account_value: float, maintenance: float) -> float | None:
    """(account value − maintenance margin) / account value, a fraction.

    1.0 with no maintenance margin, 0 at the liquidation line, negative past it;
    −1.0 when the account value is gone and positions remain; None for an empty, worthless account.
    """
    if account_value > 0:
        return (account_value - maintenance) / account_value
    return -1.0 if maintenance > 0 else None


def distance_to_liquidation(mark: float, liq: float | None) -> float | None:
    """|mark − liq| / mark, a fraction; None without a liquidation price."""
    if liq is None or mark <= 0:
        return None
    return abs(mark - liq) / mark


def simple_liquidation_price(entry: float, leverage: float, maintenance_rate: float, side: str) -> float:
    """Seed formula, isolated and fee-free: long entry×(1 − 1/lev + mmr), short entry×(1 + 1/lev − mmr)."""
    if side == "long":
        return entry * (1.0 - 1.0 / leverage + maintenance_rate)
    if side == "short":
        return entry * (1.0 + 1.0 / leverage - maintenance_rate)
    raise ValueError("side must be 'long' or 'short'")


def kelly_fraction(win_probability: float, payoff_ratio: float) -> float:
    """Kelly f = (b·p − q) / b with b the win/loss payoff ratio; never negative (0 = don't bet)."""
    if not 0 <= win_probability <= 1:
        raise ValueError("win_probability must be within 0..1")
    if payoff_ratio <= 0:
        raise ValueError("payoff_ratio must be positive")
    f = (payoff_ratio * win_probability - (1 - win_probability)) / payoff_ratio
    return max(0.0, f)


def fractional_kelly(win_probability: float, payoff_ratio: float, fraction: float = 0.5) -> float:
    """A fraction (default half) of the Kelly bet; never negative."""
    if not 0 < fraction <= 1:
        raise ValueError("fraction must be within (0, 1]")
    return fraction * kelly_fraction(win_probability, payoff_ratio)


def risk_based_size(
    equity: float,
    risk_share: float,
    entry: float,
    stop: float,
    max_position_share: float | None = None,
    leverage: float = 1.0,
) -> float:
    """Base units so that hitting the stop loses `risk_share` of equity, capped by
    `max_position_share × equity × leverage` of notional. Unsigned."""
    distance = abs(entry - stop)
    if equity <= 0 or entry <= 0 or distance == 0:
        raise ValueError("equity and entry must be positive and the stop away from the entry")
    size = risk_share * equity / distance
    if max_position_share is not None:
        size = min(size, max_position_share * equity * leverage / entry)
    return size
