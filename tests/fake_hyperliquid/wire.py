"""The paper exchange's state and events written the way Hyperliquid writes them: numbers as
decimal strings, sides B/A, times in ms, the field names of the info and websocket docs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.venues.paper.exchange import PaperExchange


def num(x: float) -> str:
    """A float as Hyperliquid writes it: plain decimal, no exponent, no trailing zeros."""
    text = f"{x:.8f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def ms(seconds: float) -> int:
    return int(round(seconds * 1000))


@dataclass
class Order:
    """One order the fake venue took: its frontendOpenOrders row and its status."""

    oid: int
    coin: str
    side: str  # "B" | "A"
    limit_px: str
    orig_size: float
    size: float  # remaining
    tif: str
    reduce_only: bool
    cloid: str | None
    timestamp: int
    status: str = "open"
    status_timestamp: int = 0

    def basic(self) -> dict[str, Any]:
        """The `orderUpdates` / `openOrders` shape."""
        row = {"coin": self.coin, "side": self.side, "limitPx": self.limit_px, "sz": num(self.size),
               "oid": self.oid, "timestamp": self.timestamp, "origSz": num(self.orig_size)}
        if self.cloid:
            row["cloid"] = self.cloid
        return row

    def frontend(self) -> dict[str, Any]:
        """The `frontendOpenOrders` shape."""
        return {**self.basic(), "children": [], "isPositionTpsl": False, "isTrigger": False, "orderType": "Limit",
                "reduceOnly": self.reduce_only, "tif": self.tif, "triggerCondition": "N/A", "triggerPx": "0.0"}

    def update(self) -> dict[str, Any]:
        return {"order": self.basic(), "status": self.status, "statusTimestamp": self.status_timestamp}


def clearinghouse_state(paper: PaperExchange, now: float) -> dict[str, Any]:
    """`clearinghouseState` of the paper account (cross margin only). `liquidationPx` is left
    null: perpguard computes its own."""
    ledger = paper.ledger
    positions, total_ntl, signed_ntl = [], 0.0, 0.0
    for coin, holding in ledger.holdings.items():
        size, mark, leverage = float(holding.size), ledger.mark(coin), ledger.leverage[coin]
        value = abs(size) * mark
        total_ntl += value
        signed_ntl += size * mark
        upnl = ledger.unrealized_pnl(coin)
        margin = value / leverage
        positions.append({"type": "oneWay", "position": {
            "coin": coin, "szi": str(holding.size), "entryPx": num(holding.entry_px),
            "leverage": {"type": "cross", "value": leverage}, "liquidationPx": None, "marginUsed": num(margin),
            "maxLeverage": int(ledger.max_leverage(coin)), "positionValue": num(value),
            "returnOnEquity": num(upnl / (abs(size) * holding.entry_px / leverage)), "unrealizedPnl": num(upnl),
            "cumFunding": {"allTime": num(holding.cum_funding), "sinceChange": num(holding.cum_funding),
                           "sinceOpen": num(holding.cum_funding)},
        }})
    value, margin_used = ledger.account_value(), ledger.position_margin()
    summary = {"accountValue": num(value), "totalMarginUsed": num(margin_used), "totalNtlPos": num(total_ntl),
               "totalRawUsd": num(value - signed_ntl)}
    return {"assetPositions": positions, "crossMaintenanceMarginUsed": num(ledger.maintenance_margin()),
            "crossMarginSummary": dict(summary), "marginSummary": summary, "time": ms(now),
            "withdrawable": num(max(0.0, value - margin_used))}


def asset_ctx(paper: PaperExchange, coin: str) -> dict[str, Any]:
    """A perp asset context; the fake has no order book, so mid = oracle = mark."""
    mark = num(paper.ledger.marks.get(coin, 0.0))
    funding = num(paper.funding.capped_rates().get(coin, 0.0))
    return {"funding": funding, "openInterest": "0.0", "prevDayPx": mark, "dayNtlVlm": "0.0", "premium": "0.0",
            "oraclePx": mark, "markPx": mark, "midPx": mark, "impactPxs": [mark, mark], "dayBaseVlm": "0.0"}


def fill(*, coin: str, side: str, px: float, size: float, start: float, closed_pnl: float, fee: float, oid: int,
         crossed: bool, tid: int, time_ms: int, cloid: str | None = None,
         liquidation: dict[str, Any] | None = None) -> dict[str, Any]:
    """A `userFills` row. `start` the signed position before the fill."""
    buy = side == "B"
    if start == 0 or (start > 0) == buy:
        direction = "Open Long" if buy else "Open Short"
    else:
        direction = "Close Short" if buy else "Close Long"
    row = {"coin": coin, "px": num(px), "sz": num(size), "side": side, "time": time_ms, "startPosition": num(start),
           "dir": direction, "closedPnl": num(closed_pnl), "hash": f"0x{tid:064x}", "oid": oid, "crossed": crossed,
           "fee": num(fee), "tid": tid, "feeToken": "USDC"}
    if cloid:
        row["cloid"] = cloid
    if liquidation:
        row["liquidation"] = liquidation
    return row
