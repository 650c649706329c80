"""An order as Hyperliquid will take it (SPEC section 8): a client_id (the idempotency key), a
size and prices on the market's increments, or the rejection that keeps it from being sent.

Trigger prices are rounded as `rounded` says (a stop never looser); a market trigger carries the
venue's default 10% cap from its trigger price as its limit (`MARKET_TRIGGER_SLIPPAGE`).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from decimal import Decimal
from typing import Mapping

from engine.domain.increments import round_price, round_size
from engine.domain.model import MarketInfo
from engine.venues.connector import Grouping, OrderAck, OrderRequest, Trigger

MARKET_TRIGGER_SLIPPAGE = Decimal("0.10")  # the venue's default cap for market TP/SL, from the trigger price


def prepare(order: OrderRequest, markets: Mapping[str, MarketInfo], grouping: Grouping) -> OrderRequest | OrderAck:
    """The order as it will be sent (a client_id, on the market's increments), or the
    rejection that keeps it from being sent (not emitted)."""
    info = markets.get(order.coin)
    client_id = order.client_id or f"pg-{uuid.uuid4().hex[:20]}"

    def refused(code: str, message: str) -> OrderAck:
        return OrderAck(None, client_id, "rejected", remaining=float(order.size), code=code, error=message)

    if info is None or info.sz_decimals is None:
        return refused("UnknownAsset", f"Unknown asset {order.coin}.")
    request = rounded(replace(order, client_id=client_id), info.sz_decimals)
    # A positionTpsl trigger takes the whole position when it fires: the venue lets it carry no size.
    sizeless = grouping == "positionTpsl" and request.trigger is not None
    if request.size <= 0 and not (sizeless and request.size == 0):
        return refused("InvalidSize", f"Order has invalid size. ({order.size} is below the lot of {order.coin})")
    if request.limit_px <= 0 or (request.trigger is not None and request.trigger.trigger_px <= 0):
        return refused("InvalidPrice", f"Order has invalid price. ({order.limit_px} rounds to 0 on "
                                       f"{order.coin}'s tick: not sent)")
    return request


def rounded(order: OrderRequest, sz_decimals: int) -> OrderRequest:
    """The order on the market's increments (5 significant figures, 6 − szDecimals decimals,
    integers always valid); size rounded down to the lot.

    - A limit order's price never more aggressive than asked (a buy rounds down, a sell up).
    - A trigger price never looser than asked: a stop-loss rounds toward the mark (a sell's, a
      long's stop below the mark, up; a buy's, a short's stop above it, down), at most one
      tick tighter; a take-profit to the nearest tick.
    - A trigger's limit: a market trigger carries the venue's cap, the trigger price ∓ 10%
      (`MARKET_TRIGGER_SLIPPAGE`) rounded away from the trigger, whatever `limit_px` said; a
      limit trigger's own `limit_px` rounds toward filling (a sell down, a buy up; one tick at
      most), so a protective exit is never the one that does not fill by a tick.
    """
    size = round_size(order.size, sz_decimals)
    trigger = order.trigger
    if trigger is None:
        return replace(order, size=size, limit_px=round_price(order.limit_px, sz_decimals, order.side))
    # round_price(px, side): a "buy" rounds down, a "sell" up.
    toward_fill = "buy" if order.side == "sell" else "sell"  # a sell's limit down, a buy's up
    if trigger.tpsl == "sl":
        trigger_px = round_price(trigger.trigger_px, sz_decimals, order.side)  # a sell's up, a buy's down
    else:
        trigger_px = round_price(trigger.trigger_px, sz_decimals)
    if trigger.is_market:
        cap = Decimal(1) + MARKET_TRIGGER_SLIPPAGE if order.side == "buy" else Decimal(1) - MARKET_TRIGGER_SLIPPAGE
        limit_px = round_price(trigger_px * cap, sz_decimals, toward_fill)
    else:
        limit_px = round_price(order.limit_px, sz_decimals, toward_fill)
    return replace(order, size=size, limit_px=limit_px, trigger=Trigger(trigger_px, trigger.tpsl, trigger.is_market))
