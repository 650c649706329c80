"""Hyperliquid order increments (SPEC section 7), exact with `Decimal`.

- Size: a multiple of 10^-szDecimals base units; we round DOWN (toward zero) so an order is
  never bigger than asked.
- Price: at most 5 significant figures and at most `6 - szDecimals` decimals (perps);
  an integer price is always valid, whatever its number of figures.
- Value: size × price of at least `MIN_ORDER_USD` (10 USD).

Floats are accepted and read through their shortest repr (`0.1` is `Decimal("0.1")`, not the
binary value), so a float that prints rounded is treated as rounded.
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Literal, Union

Number = Union[Decimal, float, int, str]

MIN_ORDER_USD = Decimal(10)
MAX_SIGNIFICANT_FIGURES = 5
MAX_PERP_PRICE_DECIMALS = 6

# Hyperliquid's own rejection texts (docs: "Error responses"); venues and tests match on them.
INVALID_SIZE = "Order has invalid size."
INVALID_PRICE = "Order has invalid price."
TICK = "Price must be divisible by tick size."
MIN_TRADE_NTL = "Order must have minimum value of $10."


def to_decimal(value: Number) -> Decimal:
    """Exact Decimal of a number; floats through their shortest repr. Rejects NaN and infinities."""
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, bool):
        raise TypeError("a bool is not a number here")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value!r}")
        d = Decimal(repr(value))
    elif isinstance(value, (int, str)):
        d = Decimal(value)
    else:
        raise TypeError(f"cannot read {type(value).__name__} as a number")
    if not d.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return d


def _tidy(d: Decimal) -> Decimal:
    """Drop trailing zeros without switching to exponent notation (`1E+5` -> `100000`)."""
    n = d.normalize()
    return n.quantize(Decimal(1)) if n.as_tuple().exponent > 0 else n


def _lot(sz_decimals: int) -> Decimal:
    return Decimal(1).scaleb(-sz_decimals)


def on_lot(size: Number, sz_decimals: int, rounding: str = ROUND_DOWN) -> Decimal:
    """`size` (base units) on the market's lot of 10^-sz_decimals, rounded by `rounding`
    (a `decimal` rounding mode; toward zero by default, as orders are). The one lot rounding:
    orders, de-risk sizing and the paper exchange's partial fills all use it."""
    return to_decimal(size).quantize(_lot(sz_decimals), rounding=rounding)


def round_size(size: Number, sz_decimals: int) -> Decimal:
    """`size` (base units) rounded toward zero to the lot: what an order may carry."""
    return on_lot(size, sz_decimals, ROUND_DOWN)


def max_price_decimals(px: Decimal, sz_decimals: int) -> int:
    """Decimals a price of this magnitude may carry: min(6 - szDecimals, room left by 5 sig figs)."""
    if px == 0:
        return max(0, MAX_PERP_PRICE_DECIMALS - sz_decimals)
    room_for_figures = MAX_SIGNIFICANT_FIGURES - 1 - px.adjusted()  # adjusted() = exponent of the first digit
    return max(0, min(MAX_PERP_PRICE_DECIMALS - sz_decimals, room_for_figures))


def round_price(px: Number, sz_decimals: int, side: Literal["buy", "sell"] | None = None) -> Decimal:
    """A valid Hyperliquid perp price near `px` (USD).

    With a `side`, rounding never makes the order more aggressive than asked: a buy rounds
    down, a sell rounds up (use it for limit and IOC protection prices). Without a side,
    round half-even to the nearest valid price.
    """
    d = to_decimal(px)
    rounding = {"buy": ROUND_FLOOR, "sell": ROUND_CEILING, None: ROUND_HALF_EVEN}[side]
    if d == d.to_integral_value():
        return _tidy(d)  # integers are always valid
    decimals = max_price_decimals(d, sz_decimals)
    return _tidy(d.quantize(Decimal(1).scaleb(-decimals), rounding=rounding))


def is_valid_size(size: Number, sz_decimals: int) -> bool:
    d = to_decimal(size)
    return d > 0 and d == round_size(d, sz_decimals)


def is_valid_price(px: Number, sz_decimals: int) -> bool:
    d = to_decimal(px)
    if d <= 0:
        return False
    if d == d.to_integral_value():
        return True
    n = d.normalize()
    decimals = -n.as_tuple().exponent
    figures = len(n.as_tuple().digits)
    return decimals <= MAX_PERP_PRICE_DECIMALS - sz_decimals and figures <= MAX_SIGNIFICANT_FIGURES


def order_problem(size: Number, px: Number, sz_decimals: int, *, closes_position: bool = False) -> tuple[str, str] | None:
    """(code, message) of the first increment rule the order breaks, or None.

    Codes follow Hyperliquid's error types: `InvalidSize`, `Tick`, `InvalidPrice`, `MinTradeNtl`.
    `closes_position`: a reduce-only order that closes the whole position is exempt from the
    10 USD minimum, so a dust remainder can always be closed (a panic exit must reach flat).
    """
    s, p = to_decimal(size), to_decimal(px)
    if s <= 0:
        return "InvalidSize", f"{INVALID_SIZE} (size {s} must be positive)"
    if s != round_size(s, sz_decimals):
        return "InvalidSize", f"{INVALID_SIZE} (size {s} has more than {sz_decimals} decimals)"
    if p <= 0:
        return "InvalidPrice", f"{INVALID_PRICE} (price {p} must be positive)"
    if not is_valid_price(p, sz_decimals):
        return "Tick", (f"{TICK} (price {p}: at most {MAX_SIGNIFICANT_FIGURES} significant figures and "
                        f"{max(0, MAX_PERP_PRICE_DECIMALS - sz_decimals)} decimals unless an integer; "
                        f"nearest valid {round_price(p, sz_decimals)})")
    value = s * p
    if value < MIN_ORDER_USD and not closes_position:
        return "MinTradeNtl", f"{MIN_TRADE_NTL} (order value {value:.2f} USD)"
    return None


def check_order(size: Number, px: Number, sz_decimals: int, *, closes_position: bool = False) -> str | None:
    """The message of the first increment rule the order breaks (size lot, price tick, 10 USD
    minimum), or None when the venue would take it. Size in base units, price in USD."""
    problem = order_problem(size, px, sz_decimals, closes_position=closes_position)
    return problem[1] if problem else None
