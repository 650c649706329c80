"""Reading Hyperliquid's answers: info responses (mids, asset contexts, open orders, fills,
funding, order status) and `/exchange` order results, into the connector's values.

`clearinghouseState` and `meta` are read by `engine.venues.hyperliquid.snapshot` (shared with `perpguard check`
and `report`). Prices and sizes arrive as decimal strings; they become floats here, as the
engine's Book wants them (orders going out stay Decimal). Times are the caller's: events carry
the connector clock's time of arrival.
"""

from __future__ import annotations

import re
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
    ("Order has zero size", "InvalidSize"),
    ("No liquidity available for market order", "MarketOrderNoLiquidity"),
    ("Invalid TP/SL price", "InvalidTpSlPx"),
    ("Order would exceed the open interest cap", "OpenInterestCap"),
    ("Cannot increase position when open interest is at cap", "OpenInterestCap"),
    ("Open interest is increasing too quickly", "OpenInterestIncrease"),
    ("Order price cannot be more than 95% away from the oracle price", "OracleBand"),
    ("Order price too far from oracle", "OracleBand"),
    ("Too many open orders", "TooManyOpenOrders"),
    ("Insufficient spot balance", "InsufficientSpotBalance"),
    ("User or API Wallet", "AgentNotApproved"),
)
_ASSET_SUFFIX = re.compile(r"\s*asset=(\d+)\s*$")

_TIFS = ("Ioc", "Gtc", "Alo")


def split_asset(message: str) -> tuple[str, int | None]:
    """A venue error text without its ` asset=N` suffix, and N (None when absent)."""
    match = _ASSET_SUFFIX.search(message)
    if match is None:
        return message, None
    return message[:match.start()], int(match.group(1))


def error_code(message: str) -> str:
    """Hyperliquid's error type for a rejection message (its ` asset=N` suffix ignored);
    `VenueRejected` when unknown."""
    message = split_asset(message)[0]
    for prefix, code in _ERROR_CODES:
        if message.startswith(prefix):
            return code
    if "open interest" in message.lower():
        return "OpenInterestCap"
    if "oracle" in message.lower() and "price" in message.lower():
        return "OracleBand"
    return "VenueRejected"


def is_rate_limited(message: str) -> bool:
    """The address budget refusal: `Too many cumulative requests sent (N > M) for cumulative
    volume traded $V. ...` (HTTP 200, top-level `status: err`)."""
    return message.startswith("Too many cumulative requests")


def side_of(hl_side: str) -> str:
    """Hyperliquid writes B (bid, buy) and A (ask, sell)."""
    return "buy" if hl_side == "B" else "sell"


def tif_of(value: Any) -> str:
    """A time-in-force we know, or Gtc (trigger orders carry none)."""
    return value if value in _TIFS else "Gtc"


def is_cancelled(status: str) -> bool:
    """`canceled`, and the venue's reasons: `marginCanceled`, `scheduledCancel`, `reduceOnlyCanceled`..."""
    return status == "canceled" or status.endswith("Canceled") or status == "scheduledCancel"


def is_triggered(status: str) -> bool:
    """A trigger (TP/SL) order whose trigger price was reached: it now works as an ordinary order."""
    return status == "triggered"


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


_TPSL_OF_TYPE = {"Stop Market": "sl", "Stop Limit": "sl", "Take Profit Market": "tp", "Take Profit Limit": "tp"}


def tpsl_of(row: Mapping[str, Any]) -> str | None:
    """`sl` or `tp` of a trigger row of `frontendOpenOrders` (its `orderType`: `Stop Market`,
    `Stop Limit`, `Take Profit Market`, `Take Profit Limit`); None when it does not say."""
    return _TPSL_OF_TYPE.get(str(row.get("orderType")))


def parse_open_orders(rows: list[dict[str, Any]], client_ids: Mapping[str, str],
                      requests: Mapping[str, OrderRequest] | None = None) -> tuple[OpenOrder, ...]:
    """`openOrders` or `frontendOpenOrders` -> OpenOrder (remaining size). A cloid we placed
    maps back to its client_id; another cloid is reported as it is.

    Trigger rows (`isTrigger`) carry `trigger_px` (`triggerPx`) and `tpsl` (from `orderType`,
    else from the order as we sent it, `requests` by cloid); `limit_px` is the row's `limitPx`
    (for a market trigger, the worst price it may fill at). The TP/SL children of a `normalTpsl`
    entry that has not filled yet are listed under the entry's `children` (and, on the venue,
    at the top level too): each order is reported once, children included."""
    orders: list[OpenOrder] = []
    seen: set[str] = set()
    pending = list(rows)
    while pending:
        row = pending.pop(0)
        pending[0:0] = [child for child in row.get("children") or [] if isinstance(child, dict)]
        oid = str(row["oid"])
        if oid in seen:
            continue
        seen.add(oid)
        cloid = row.get("cloid")
        trigger_px = tpsl = None
        if row.get("isTrigger"):
            trigger_px = float(row["triggerPx"])
            request = (requests or {}).get(cloid) if cloid else None
            tpsl = tpsl_of(row) or (request.trigger.tpsl if request is not None and request.trigger else None)
        orders.append(OpenOrder(oid, canonical_coin(row["coin"]), side_of(row["side"]), float(row["sz"]),
                                float(row["limitPx"]), bool(row.get("reduceOnly", False)),
                                client_ids.get(cloid, cloid) if cloid else None, trigger_px, tpsl))
    return tuple(orders)


def parse_fill(fill: dict[str, Any], now: float, client_id: str | None = None,
               remaining: float = 0.0) -> OrderFilled:
    """One fill (`userFills`) -> OrderFilled. `crossed` means we took liquidity (taker)."""
    return OrderFilled(str(fill["oid"]), canonical_coin(fill["coin"]), side_of(fill["side"]), float(fill["sz"]),
                       float(fill["px"]), float(fill["fee"]), float(fill["closedPnl"]), remaining, now, client_id,
                       maker=not fill.get("crossed", True), tid=_tid(fill), hash=fill.get("hash"))


def _tid(fill: dict[str, Any]) -> int | None:
    tid = fill.get("tid")
    return tid if isinstance(tid, int) and not isinstance(tid, bool) else None


def liquidation_of(fill: dict[str, Any], account: str, now: float) -> Liquidated | None:
    """The Liquidated event when this fill closed our position in a liquidation, else None."""
    liquidation = fill.get("liquidation")
    if not liquidation or str(liquidation.get("liquidatedUser", "")).lower() != account.lower():
        return None
    size = float(fill["sz"]) * (1.0 if fill["side"] == "A" else -1.0)  # a sell closed a long
    return Liquidated(canonical_coin(fill["coin"]), size, float(fill["px"]), -float(fill["closedPnl"]), now,
                      tid=_tid(fill), hash=fill.get("hash"))


def parse_funding(delta: dict[str, Any], now: float) -> FundingPaid:
    """A funding payment (`userEvents` funding, or a `userFunding` row's `delta`).
    Hyperliquid's `usdc` is what the account received; FundingPaid.payment is what it paid."""
    size, rate, usdc = float(delta["szi"]), float(delta["fundingRate"]), float(delta["usdc"])
    px = abs(usdc / (size * rate)) if size and rate else 0.0
    return FundingPaid(canonical_coin(delta["coin"]), rate, -usdc, size, px, now)


@dataclass(frozen=True, slots=True)
class OrderStatus:
    """`orderStatus` for a known order: its status word and original size (base units).

    The answer's `order.sz` is NOT what is left: it is the size when the order was opened (a
    resting order that filled in part still shows its full size), so nothing here derives a
    filled amount from it. What filled comes from the fills (`filled` base units, `avg_px`),
    counted by the caller from the stream or `userFills` for this oid; None: not counted."""

    oid: str
    status: str
    orig_size: float
    filled: float | None = None
    avg_px: float | None = None


def parse_order_status(data: Any) -> OrderStatus | None:
    """`orderStatus` -> OrderStatus, or None for `unknownOid` (the venue never took it)."""
    if data.get("status") != "order":
        return None
    entry = data["order"]
    order = entry["order"]
    return OrderStatus(str(order["oid"]), entry["status"], float(order.get("origSz", order["sz"])))


def fills_of(fills: Any, oid: str) -> tuple[float, float | None]:
    """(filled base units, average price) of one oid in a `userFills`/`userFillsByTime` answer."""
    size = notional = 0.0
    for fill in fills or []:
        if str(fill.get("oid")) == oid:
            sz = float(fill["sz"])
            size += sz
            notional += sz * float(fill["px"])
    return size, (notional / size if size else None)


def ack_from_status(request: OrderRequest, status: OrderStatus) -> OrderAck:
    """What `place` answers for an order found by its cloid (a retry of one already sent).
    Filled amounts are the fills' (`status.filled`), never `orderStatus`' sizes."""
    cid = request.client_id
    filled = status.filled or 0.0
    if status.status == "filled":
        return OrderAck(status.oid, cid, "filled", status.filled if status.filled else status.orig_size, status.avg_px)
    if is_rejected(status.status):
        return OrderAck(status.oid, cid, "rejected", code=status.status, error=f"order {status.status}")
    if is_cancelled(status.status):
        if filled > 0:
            return OrderAck(status.oid, cid, "partially_filled", filled, status.avg_px)
        return OrderAck(status.oid, cid, "rejected", code=status.status, error=f"order {status.status}")
    return OrderAck(status.oid, cid, "resting", filled, status.avg_px, remaining=max(0.0, status.orig_size - filled))


def ack_from_response(request: OrderRequest, response: Any) -> OrderAck:
    """The `/exchange` answer to one order -> OrderAck."""
    return acks_from_response([request], response)[0]


def acks_from_response(requests: list[OrderRequest], response: Any) -> list[OrderAck]:
    """The `/exchange` answer to an order action -> one OrderAck per order, in order. A refused
    action (top-level `err`) refuses every order; otherwise each order has its own status."""
    if not isinstance(response, dict) or response.get("status") != "ok":
        message = str(response.get("response") if isinstance(response, dict) else response)
        code = "RateLimited" if is_rate_limited(message) else "ActionRejected"
        if code == "ActionRejected" and message.startswith("User or API Wallet"):
            code = "AgentNotApproved"
        return [OrderAck(None, r.client_id, "rejected", remaining=float(r.size), code=code, error=message)
                for r in requests]
    statuses = response["response"]["data"]["statuses"]
    acks = []
    for i, request in enumerate(requests):
        if i < len(statuses):
            acks.append(ack_from_result(request, statuses[i]))
        else:
            acks.append(OrderAck(None, request.client_id, "rejected", remaining=float(request.size),
                                 code="VenueRejected", error=f"the venue answered no status for order {i}"))
    return acks


# An order status that is a bare word: a normalTpsl child waiting for its entry to fill (or an
# untriggered trigger, as some answers say it). It has no oid yet.
WAITING_STATUSES = ("waitingForFill", "waitingForTrigger")


def ack_from_result(request: OrderRequest, result: Any) -> OrderAck:
    """One order's entry of `statuses` -> OrderAck: `resting` (on the book, a trigger waiting for
    its price, or a child waiting for its entry: `waitingForFill`, oid unknown yet), `filled` /
    `partially_filled` / `resting` with a fill, or `rejected` with the venue's error and code."""
    cid, size = request.client_id, float(request.size)
    if isinstance(result, str):
        if result in WAITING_STATUSES:
            return OrderAck(None, cid, "resting", remaining=size)
        return OrderAck(None, cid, "rejected", remaining=size, code=error_code(result), error=result)
    if not isinstance(result, dict):
        return OrderAck(None, cid, "rejected", remaining=size, code="VenueRejected", error=str(result))
    if "error" in result:
        return OrderAck(None, cid, "rejected", remaining=size, code=error_code(result["error"]), error=result["error"])
    if "resting" in result:
        return OrderAck(str(result["resting"]["oid"]), cid, "resting", remaining=size)
    filled = result["filled"]
    total, avg, oid = float(filled["totalSz"]), float(filled["avgPx"]), str(filled["oid"])
    if total >= size:
        return OrderAck(oid, cid, "filled", total, avg)
    if request.tif == "Ioc" and request.trigger is None:
        return OrderAck(oid, cid, "partially_filled", total, avg)
    return OrderAck(oid, cid, "resting", total, avg, remaining=size - total)


# ---- accounts ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserRole:
    """`userRole`: `user` (a master account), `agent` (an API wallet; `master` its user),
    `subAccount` (`master` its master), `vault`, or `missing` (the venue never saw the address)."""

    role: str
    master: str | None = None


def parse_user_role(data: Any) -> UserRole:
    if not isinstance(data, dict) or not isinstance(data.get("role"), str):
        raise ValueError(f"unexpected userRole answer: {data!r}")
    extra = data.get("data") if isinstance(data.get("data"), dict) else {}
    master = extra.get("master") or extra.get("user")
    return UserRole(data["role"], str(master) if master else None)


def agent_valid_until(agents: Any, agent_address: str) -> tuple[bool, float | None]:
    """(approved, validUntil epoch s or None) of `agent_address` in an `extraAgents` answer
    (`[{"name", "address", "validUntil" (epoch ms)}]`), matched case-insensitively."""
    for row in agents or []:
        if isinstance(row, dict) and str(row.get("address", "")).lower() == agent_address.lower():
            until = row.get("validUntil")
            return True, float(until) / 1000.0 if until is not None else None
    return False, None


@dataclass(frozen=True, slots=True)
class AddressLimit:
    """`userRateLimit`: requests the address has used and may use (cap = 10,000 + 1 per USDC
    traded, plus any surplus), and its cumulative traded volume (USD)."""

    used: int
    cap: int
    volume: float


def parse_user_rate_limit(data: Any) -> AddressLimit:
    cap = int(data["nRequestsCap"]) + int(data.get("nRequestsSurplus") or 0)
    return AddressLimit(int(data["nRequestsUsed"]), cap, float(data.get("cumVlm") or 0.0))
