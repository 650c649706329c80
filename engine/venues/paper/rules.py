"""What the paper venue checks before it takes an order, in Hyperliquid's words (docs:
"Error responses"): increments and the 10 USD minimum, reduce-only direction, post-only and
IOC matchability, initial margin, and the margin-tier limit at the market's leverage.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine.venues.connector import OrderRequest
from engine.domain.increments import order_problem
from engine.domain.model import MarketInfo
from engine.venues.paper.ledger import Ledger

REDUCE_ONLY = "Reduce only order would increase position."
PERP_MARGIN = "Insufficient margin to place order."
PERP_MAX_POSITION = "Order would cause position to exceed margin tier limit at current leverage."
IOC_CANCEL = "Order could not immediately match against any resting orders."


@dataclass(frozen=True, slots=True)
class OrderCheck:
    """The venue's verdict on an order. `code` None = accepted, with `size` the size it takes
    (a reduce-only order is clamped to the position) and `taker_px` the fill price when it
    crosses the mark on arrival (None: it rests)."""

    code: str | None
    message: str
    size: Decimal = Decimal(0)
    taker_px: float | None = None

    @classmethod
    def refused(cls, code: str, message: str) -> OrderCheck:
        return cls(code, message)


def check_order_request(order: OrderRequest, info: MarketInfo, ledger: Ledger, slippage: float,
                        available_margin: float) -> OrderCheck:
    """Check one order against the market and the account (USD figures, base-unit sizes)."""
    coin = order.coin
    mark = ledger.marks.get(coin)
    if mark is None:
        return OrderCheck.refused("NoMark", f"No mark price for {coin} yet; the venue cannot take orders on it.")
    position = ledger.size(coin)
    buy = order.side == "buy"
    reduces = position != 0 and (position > 0) != buy
    if order.reduce_only and not reduces:
        return OrderCheck.refused("ReduceOnly", REDUCE_ONLY)

    closes_position = order.reduce_only and order.size >= abs(position)
    problem = order_problem(order.size, order.limit_px, info.sz_decimals or 0, closes_position=closes_position)
    if problem is not None:
        return OrderCheck.refused(*problem)
    # A reduce-only order larger than the position fills only the position.
    size = min(order.size, abs(position)) if order.reduce_only else order.size

    limit = float(order.limit_px)
    crosses = limit >= mark if buy else limit <= mark
    if order.tif == "Alo" and crosses:
        return OrderCheck.refused("BadAloPx", f"Post only order would have immediately matched, bbo was {mark:g}.")
    if order.tif == "Ioc" and not crosses:
        return OrderCheck.refused("IocCancel", f"{IOC_CANCEL} (limit {limit:g}, mark {mark:g})")
    taker_px = None
    if crosses:
        # Market-style fill at mark ± slippage, never worse than the order's limit.
        taker_px = min(limit, mark * (1 + slippage)) if buy else max(limit, mark * (1 - slippage))

    if not order.reduce_only:
        adds = size if not reduces else max(Decimal(0), size - abs(position))  # the part that opens risk
        if adds > 0:
            px = taker_px if taker_px is not None else limit
            leverage = ledger.leverage[coin]
            required = float(adds) * px / leverage
            if required > available_margin:
                return OrderCheck.refused("PerpMargin", f"{PERP_MARGIN} (needs {required:,.2f} USD initial margin "
                                                        f"at {leverage}x; {available_margin:,.2f} USD available)")
            new_notional = abs(float(position + order.sign * size)) * px
            tier_max = ledger.max_leverage(coin, new_notional)
            if leverage > tier_max:
                return OrderCheck.refused("PerpMaxPosition", f"{PERP_MAX_POSITION} ({coin} position of "
                                                             f"{new_notional:,.0f} USD allows {tier_max:g}x; "
                                                             f"leverage is {leverage}x)")
    return OrderCheck(None, "", size, taker_px)
