"""Reading Hyperliquid's answers: info responses (mids, asset contexts, open orders, fills,
funding, order status) and `/exchange` order results, into the connector's values.

`clearinghouseState` and `meta` are read by `engine.venues.hyperliquid.snapshot` (shared with `perpguard check`
and `report`). Prices and sizes arrive as decimal strings; they become floats here, as the
engine's Book wants them (orders going out stay Decimal). Times are the caller's: events carry
the connector clock's time of arrival.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from engine.venues.connector import FundingPaid, Liquidated, OrderAck, OrderFilled, OrderRequest
from engine.domain.coins import canonical_coin
from engine.domain.model import OpenOrder

# Hyperliquid's order rejection texts (docs: "Error responses") -> its error type names.
_ERROR_CODES = (
    ("Order must have minimum value", "MinTradeNtl"),
    ("Insufficient margin to place order", "PerpMargin"),
    ("Reduce only order would increase position", "ReduceOnly"),
    ("Price must be divisible by tick size", "Tick"),
    ("Order has invalid price", "InvalidPrice"),
    ("Order has invalid size", "InvalidSize"),
    ("Order could not immediately match", "IocCancel"),
    ("Post only order would have immediately matched", "BadAloPx"),
    ("Order would cause position to exceed margin tier limit", "PerpMaxPosition"),
    ("Order price cannot be more than 80% away from the reference price", "BadPx"),
    ("Too many cumulative requests", "RateLimited"),
)

_TIFS = ("Ioc", "Gtc", "Alo")


def error_code(message: str) -> str:
    """Hyperliquid's error type for a rejection message; `VenueRejected` when unknown."""
    for prefix, code in _ERROR_CODES:
        if message.startswith(prefix):
            return code
    return "VenueRejected"


def side_of(hl_side: str) -> str:
    """Hyperliquid writes B (bid, buy) and A (ask, sell)."""
    return "buy" if hl_side == "B" else "sell"


def tif_of(value: Any) -> str:
    """A time-in-force we know, or Gtc (trigger orders carry none)."""
    return value if value in _TIFS else "Gtc"


def is_cancelled(status: str) -> bool:
    """`canceled`, and the venue's reasons: `marginCanceled`, `scheduledCancel`, `reduceOnlyCanceled`..."""
    return status == "canceled" or status.endswith("Canceled") or status == "scheduledCancel"


def is_rejected(status: str) -> bool:
    """`rejected` and its reasons: `tickRejected`, `minTradeNtlRejected`, `badAloPxRejected`..."""
    return status == "rejected" or status.endswith("Rejected")


def parse_mids(mids: Mapping[str, Any], markets: Mapping[str, Any] | set[str]) -> dict[str, float]:
    """`allMids` (the info answer, or the websocket's `data.mids`) -> USD per listed perp coin.
    Spot pairs (`@107`, `PURR/USDC`) and coins not in `markets` are left out."""
    return {coin: float(px) for coin, px in mids.items() if coin in markets}


def parse_asset_ctxs(meta_and_ctxs: Any) -> tuple[dict[str, float], dict[str, float]]:
    """`metaAndAssetCtxs` -> (mark USD, hourly funding rate) per coin; the contexts come in the
    universe's order."""
    meta, ctxs = meta_and_ctxs
    marks, funding = {}, {}
    for asset, ctx in zip(meta["universe"], ctxs):
        coin = canonical_coin(asset["name"])
        if ctx.get("markPx") is not None:
            marks[coin] = float(ctx["markPx"])
        if ctx.get("funding") is not None:
            funding[coin] = float(ctx["funding"])
    return marks, funding


def parse_open_orders(rows: list[dict[str, Any]], client_ids: Mapping[str, str]) -> tuple[OpenOrder, ...]:
    """`openOrders` or `frontendOpenOrders` -> OpenOrder (remaining size). A cloid we placed
    maps back to its client_id; another cloid is reported as it is."""
    orders = []
    for row in rows:
        cloid = row.get("cloid")
        orders.append(OpenOrder(str(row["oid"]), canonical_coin(row["coin"]), side_of(row["side"]), float(row["sz"]),
                                float(row["limitPx"]), bool(row.get("reduceOnly", False)),
                                client_ids.get(cloid, cloid) if cloid else None))
    return tuple(orders)


def parse_fill(fill: dict[str, Any], now: float, client_id: str | None = None,
               remaining: float = 0.0) -> OrderFilled:
    """One fill (`userFills`) -> OrderFilled. `crossed` means we took liquidity (taker)."""
    return OrderFilled(str(fill["oid"]), canonical_coin(fill["coin"]), side_of(fill["side"]), float(fill["sz"]),
                       float(fill["px"]), float(fill["fee"]), float(fill["closedPnl"]), remaining, now, client_id,
                       maker=not fill.get("crossed", True))


def liquidation_of(fill: dict[str, Any], account: str, now: float) -> Liquidated | None:
    """The Liquidated event when this fill closed our position in a liquidation, else None."""
    liquidation = fill.get("liquidation")
    if not liquidation or str(liquidation.get("liquidatedUser", "")).lower() != account.lower():
        return None
    size = float(fill["sz"]) * (1.0 if fill["side"] == "A" else -1.0)  # a sell closed a long
    return Liquidated(canonical_coin(fill["coin"]), size, float(fill["px"]), -float(fill["closedPnl"]), now)


def parse_funding(delta: dict[str, Any], now: float) -> FundingPaid:
    """A funding payment (`userEvents` funding, or a `userFunding` row's `delta`).
    Hyperliquid's `usdc` is what the account received; FundingPaid.payment is what it paid."""
    size, rate, usdc = float(delta["szi"]), float(delta["fundingRate"]), float(delta["usdc"])
    px = abs(usdc / (size * rate)) if size and rate else 0.0
    return FundingPaid(canonical_coin(delta["coin"]), rate, -usdc, size, px, now)


@dataclass(frozen=True, slots=True)
class OrderStatus:
    """`orderStatus` for a known order: its status word and sizes (base units)."""

    oid: str
    status: str
    orig_size: float
    remaining: float


def parse_order_status(data: Any) -> OrderStatus | None:
    """`orderStatus` -> OrderStatus, or None for `unknownOid` (the venue never took it)."""
    if data.get("status") != "order":
        return None
    entry = data["order"]
    order = entry["order"]
    return OrderStatus(str(order["oid"]), entry["status"], float(order["origSz"]), float(order["sz"]))


def ack_from_status(request: OrderRequest, status: OrderStatus) -> OrderAck:
    """What `place` answers for an order found by its cloid (a retry of one already sent)."""
    filled = max(0.0, status.orig_size - status.remaining)
    cid = request.client_id
    if status.status == "filled":
        return OrderAck(status.oid, cid, "filled", status.orig_size)
    if is_rejected(status.status):
        return OrderAck(status.oid, cid, "rejected", code=status.status, error=f"order {status.status}")
    if is_cancelled(status.status):
        if filled > 0:
            return OrderAck(status.oid, cid, "partially_filled", filled)
        return OrderAck(status.oid, cid, "rejected", code=status.status, error=f"order {status.status}")
    return OrderAck(status.oid, cid, "resting", filled, remaining=status.remaining)


def ack_from_response(request: OrderRequest, response: Any) -> OrderAck:
    """The `/exchange` answer to one order -> OrderAck."""
    cid, size = request.client_id, float(request.size)
    if not isinstance(response, dict) or response.get("status") != "ok":
        message = str(response.get("response") if isinstance(response, dict) else response)
        return OrderAck(None, cid, "rejected", remaining=size, code="ActionRejected", error=message)
    result = response["response"]["data"]["statuses"][0]
    if "error" in result:
        return OrderAck(None, cid, "rejected", remaining=size, code=error_code(result["error"]), error=result["error"])
    if "resting" in result:
        return OrderAck(str(result["resting"]["oid"]), cid, "resting", remaining=size)
    filled = result["filled"]
    total, avg, oid = float(filled["totalSz"]), float(filled["avgPx"]), str(filled["oid"])
    if total >= size:
        return OrderAck(oid, cid, "filled", total, avg)
    if request.tif == "Ioc":
        return OrderAck(oid, cid, "partially_filled", total, avg)
    return OrderAck(oid, cid, "resting", total, avg, remaining=size - total)
