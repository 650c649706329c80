"""Margin math against Hyperliquid's published rules and the exchange's own figures."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.margin import (
    MarginTable, distance_to_liquidation, fractional_kelly, kelly_fraction, liquidation_price,
    margin_buffer, margin_table_for, risk_based_size, simple_liquidation_price,
)
from engine.domain.margin import MarginTier
from engine.venues.hyperliquid.snapshot import parse_clearinghouse_state

GOLDEN_LIQ = 2866.26936529  # the exchange's own liquidationPx in its docs example


def test_docs_example_liquidation_price_matches_the_exchange(fixtures):
    data = json.loads((fixtures / "hyperliquid/docs-example-clearinghouse-state.json").read_text())
    for entry in data["assetPositions"]:
        del entry["position"]["liquidationPx"]  # we must compute it, not read it
    book = parse_clearinghouse_state(data).book()
    assert book.liquidation_px("ETH") == pytest.approx(GOLDEN_LIQ, rel=1e-6)


def test_isolated_formula_by_hand():
    # README of the fixtures: margin_available = marginUsed - positionValue / (2 * maxLeverage)
    size, value, used, max_lev = 0.0335, 100.02765, 4.967826, 50
    liq = liquidation_price(value / size, size, used - value / (2 * max_lev), 1 / (2 * max_lev))
    assert liq == pytest.approx(GOLDEN_LIQ, rel=1e-6)


def test_tiered_maintenance_is_continuous_and_uses_deductions():
    table = MarginTable.from_tiers([MarginTier(0, 40), MarginTier(150_000_000, 20)])
    low, high = 1 / 80, 1 / 40
    assert table.maintenance_margin(1_000_000) == pytest.approx(1_000_000 * low)
    # deduction_1 = 150M × (1/40 − 1/80): MM is continuous at the bound
    assert table.maintenance_margin(150_000_000) == pytest.approx(150_000_000 * low)
    assert table.maintenance_margin(200_000_000) == pytest.approx(200_000_000 * high - 150_000_000 * (high - low))
    assert table.max_leverage(200_000_000) == 20 and table.maintenance_rate(10) == low


def test_table_ids_below_50_are_flat_tables():
    assert margin_table_for(10, {}).maintenance_rate(1e9) == pytest.approx(1 / 20)
    assert margin_table_for(56, {}) is None


def test_long_with_no_liquidation_price_is_none():
    # a 1x long backed by more than its notional can never be liquidated
    assert liquidation_price(100.0, 1.0, 200.0, 0.01) is None
    assert liquidation_price(100.0, 0.0, 10.0, 0.01) is None


def test_short_liquidates_above_mark():
    liq = liquidation_price(100.0, -1.0, 10.0, 0.01)
    assert liq == pytest.approx(100 + 10 / 1.01)
    assert distance_to_liquidation(100.0, liq) == pytest.approx(10 / 1.01 / 100)


def test_margin_buffer_edges():
    assert margin_buffer(1000.0, 0.0) == 1.0
    assert margin_buffer(1000.0, 1000.0) == 0.0
    assert margin_buffer(1000.0, 1500.0) < 0
    assert margin_buffer(0.0, 10.0) == -1.0
    assert margin_buffer(0.0, 0.0) is None


def test_seed_simple_liquidation_prices():
    assert simple_liquidation_price(100.0, 10, 0.005, "long") == pytest.approx(90.5)
    assert simple_liquidation_price(100.0, 10, 0.005, "short") == pytest.approx(109.5)


def test_kelly_never_negative_and_fractional():
    assert kelly_fraction(0.6, 1.0) == pytest.approx(0.2)
    assert kelly_fraction(0.3, 1.0) == 0.0
    assert fractional_kelly(0.6, 1.0, 0.5) == pytest.approx(0.1)


def test_risk_based_size_capped_by_position_share():
    # 1% of 100k at a 2% stop on a 50k entry: 1000 / 1000 = 1 BTC
    assert risk_based_size(100_000, 0.01, 50_000, 49_000) == pytest.approx(1.0)
    # capped: 10% of equity × 2x leverage = 20k notional = 0.4 BTC
    assert risk_based_size(100_000, 0.01, 50_000, 49_000, max_position_share=0.1, leverage=2) == pytest.approx(0.4)


@settings(max_examples=200, deadline=None)
@given(
    mark=st.floats(10, 100_000),
    lev_low=st.floats(1.1, 20),
    bump=st.floats(0.5, 20),
    max_lev=st.sampled_from([3, 10, 25, 40, 50]),
    long=st.booleans(),
)
def test_liquidation_price_moves_toward_mark_as_leverage_rises(mark, lev_low, bump, max_lev, long):
    """Isolated position: more leverage = less margin = liquidation closer to mark."""
    lev_high = min(lev_low + bump, max_lev)
    if lev_high <= lev_low:
        return
    rate = 1 / (2 * max_lev)
    size = 1.0 if long else -1.0

    def liq(lev):
        available = mark / lev - mark * rate
        return liquidation_price(mark, size, available, rate)

    low, high = liq(lev_low), liq(lev_high)
    if long and low is None:
        assert high is None or high > 0
        return
    assert distance_to_liquidation(mark, high) <= distance_to_liquidation(mark, low) + 1e-12
