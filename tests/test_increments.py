"""Hyperliquid order increments: what the venue would accept, and rounding that never makes an
order bigger or more aggressive than asked."""

from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from engine.domain.increments import (
    MIN_ORDER_USD, check_order, is_valid_price, is_valid_size, max_price_decimals, round_price, round_size,
)


def test_size_rounds_down_to_the_lot_never_up():
    assert round_size(0.123456789, 5) == Decimal("0.12345")
    assert round_size(Decimal("1.99"), 0) == Decimal("1")
    assert round_size(0.1 + 0.2, 1) == Decimal("0.3")  # float noise does not cost a lot


@pytest.mark.parametrize("px, sz_decimals, expected", [
    (65432.1, 5, Decimal("65432")),        # 5 sig figs already used by the integer part
    (123456.7, 5, Decimal("123457")),      # integers are always valid, even with 6 figures
    (3456.789, 4, Decimal("3456.8")),      # 5 sig figs
    (1.234567, 2, Decimal("1.2346")),      # 5 sig figs, within 6-2 decimals
    (0.0123456, 0, Decimal("0.012346")),   # 6 decimals allowed with szDecimals 0
    (0.0123456, 2, Decimal("0.0123")),     # only 4 decimals with szDecimals 2
])
def test_price_rounds_to_five_figures_and_the_decimal_limit(px, sz_decimals, expected):
    assert round_price(px, sz_decimals) == expected
    assert is_valid_price(expected, sz_decimals)


def test_protection_price_never_rounds_toward_more_aggressive():
    # A buy willing to pay up to 50000.55 must not be sent at 50001 (it would pay more).
    assert round_price(50000.55, 5, "buy") == Decimal("50000")
    # A sell wanting at least 49999.45 must not be sent at 49999 (it would accept less).
    assert round_price(49999.45, 5, "sell") == Decimal("50000")
    assert round_price(1.23456, 2, "buy") == Decimal("1.2345")
    assert round_price(1.23451, 2, "sell") == Decimal("1.2346")


def test_venue_messages_for_bad_increments_and_small_orders():
    assert check_order("0.001", "50000", 5) is None
    assert check_order("0.0000001", "50000", 5).startswith("Order has invalid size.")
    assert check_order("0.001", "50000.5", 5).startswith("Price must be divisible by tick size.")
    assert check_order("0.0001", "50000", 5).startswith("Order must have minimum value of $10.")  # 5 USD
    assert check_order("0.0002", "50000", 5) is None  # exactly 10 USD is enough
    assert check_order("0", "50000", 5).startswith("Order has invalid size.")


def test_a_reduce_only_close_of_a_dust_position_is_exempt_from_the_minimum():
    assert check_order("0.0001", "50000", 5, closes_position=True) is None


def test_minimum_is_ten_dollars():
    assert MIN_ORDER_USD == Decimal(10)


sizes = st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("1000000"), places=9, allow_nan=False)
prices = st.floats(min_value=1e-5, max_value=5e6, allow_nan=False, allow_infinity=False)
lots = st.integers(min_value=0, max_value=6)


@given(size=sizes, sz_decimals=lots)
def test_rounded_size_is_never_bigger_and_fits_the_lot(size, sz_decimals):
    rounded = round_size(size, sz_decimals)
    assert rounded <= size
    assert size - rounded < Decimal(1).scaleb(-sz_decimals)
    assert -rounded.as_tuple().exponent <= sz_decimals
    if rounded > 0:
        assert is_valid_size(rounded, sz_decimals)


@given(px=prices, sz_decimals=lots, side=st.sampled_from([None, "buy", "sell"]))
def test_rounded_price_has_five_figures_and_the_allowed_decimals(px, sz_decimals, side):
    rounded = round_price(px, sz_decimals, side)
    exact = Decimal(repr(px))
    n = rounded.normalize()
    decimals = max(0, -n.as_tuple().exponent)
    assert decimals <= max(0, 6 - sz_decimals)
    if rounded != rounded.to_integral_value():
        assert len(n.as_tuple().digits) <= 5
    if rounded > 0:
        assert is_valid_price(rounded, sz_decimals)
    # Within one unit of the last allowed place, on the safe side when a side is given.
    assert abs(rounded - exact) <= Decimal(1).scaleb(-max_price_decimals(exact, sz_decimals))
    if side == "buy":
        assert rounded <= exact
    if side == "sell":
        assert rounded >= exact
