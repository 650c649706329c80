"""What the paper venue checks before it takes an order, in Hyperliquid's words (docs:
"Error responses"): increments and the 10 USD minimum, reduce-only direction, post-only and
IOC matchability, initial margin, and the margin-tier limit at the market's leverage; and for
trigger orders (`check_trigger_request`): reduce-only, a position to close, valid trigger and
limit prices, and a condition the mark does not already meet (`Invalid TP/SL price.`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine.venues.connector import OrderRequest
from engine.domain.increments import is_valid_price, order_problem
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


INVALID_TPSL_PX = "Invalid TP/SL price."
TRIGGER_NOT_REDUCE_ONLY = ("The paper exchange takes trigger orders reduce-only only: a stop-loss or take-profit "
                           "closes a position, it never opens one.")
NO_POSITION = "Position TP/SL needs an open position to follow"


def check_trigger_request(order: OrderRequest, info: MarketInfo, ledger: Ledger, *, position_tpsl: bool = False,
                          entry_side: str | None = None) -> OrderCheck:
    """Check a trigger order (`order.trigger` set) as the venue does when it is placed.

    Reduce-only always (the paper venue refuses the other kind). `position_tpsl`: it follows the
    position (its size is irrelevant, 0 allowed), so a position must exist and the order must
    close it. `entry_side`: a `normalTpsl` child of an entry on that side, checked against the
    position the entry will make (it is not checked against the mark here: it waits for the
    entry). Otherwise it must reduce the position now, and a condition the mark already meets is
    refused (`Invalid TP/SL price.`, as Hyperliquid answers). `size` of the answer: the placed size."""
    trigger = order.trigger
    assert trigger is not None
    coin = order.coin
    mark = ledger.marks.get(coin)
    if mark is None:
        return OrderCheck.refused("NoMark", f"No mark price for {coin} yet; the venue cannot take orders on it.")
    if not order.reduce_only:
        return OrderCheck.refused("TriggerNotReduceOnly", TRIGGER_NOT_REDUCE_ONLY)
    position = ledger.size(coin)
    buy = order.side == "buy"
    sz_decimals = info.sz_decimals or 0
    if entry_side is not None:
        if entry_side == order.side:
            return OrderCheck.refused("ReduceOnly", f"{REDUCE_ONLY} (a TP/SL on the entry's own side)")
    elif position == 0 and position_tpsl:
        return OrderCheck.refused("ReduceOnly", f"{NO_POSITION}: there is no {coin} position.")
    elif position == 0 or (position > 0) == buy:
        return OrderCheck.refused("ReduceOnly", REDUCE_ONLY)
    for px in (trigger.trigger_px, order.limit_px):
        if px <= 0 or not is_valid_price(px, sz_decimals):
            return OrderCheck.refused(*(order_problem(Decimal(1), px, sz_decimals, closes_position=True)
                                        or ("Tick", f"Price must be divisible by tick size. (price {px})")))
    if not (position_tpsl and order.size == 0):
        closes = entry_side is None and order.size >= abs(position)
        problem = order_problem(order.size, trigger.trigger_px, sz_decimals, closes_position=closes or position_tpsl)
        if problem is not None:
            return OrderCheck.refused(*problem)
    if entry_side is None and trigger.fires(order.side, mark):
        return OrderCheck.refused("InvalidTpSlPx", f"{INVALID_TPSL_PX} (trigger {float(trigger.trigger_px):g} "
                                                   f"is already reached at mark {mark:g})")
    return OrderCheck(None, "", order.size)
