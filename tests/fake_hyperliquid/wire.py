"""The fake venue's state written the way Hyperliquid writes it: numbers as decimal strings,
sides B/A, times in ms, the field names of the info and websocket docs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def num(x: float) -> str:
    """A float as Hyperliquid writes it: plain decimal, no exponent, no trailing zeros."""
    text = f"{x:.8f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def ms(seconds: float) -> int:
    return int(round(seconds * 1000))


@dataclass
class Order:
    """One order the fake venue took: its rows in the info answers and its status."""

    oid: int
    coin: str
    side: str  # "B" | "A"
    limit_px: str
    orig_size: float  # size at open
    size: float  # remaining
    tif: str | None
    reduce_only: bool
    cloid: str | None
    timestamp: int
    status: str = "open"
    status_timestamp: int = 0
    account: str = ""
    asset: int = 0
    trigger: dict[str, Any] | None = None  # {"isMarket", "triggerPx", "tpsl"} while untriggered
    position_tpsl: bool = False
    waiting: bool = False  # a normalTpsl child whose entry has not filled yet
    parent: int | None = None
    children: list[int] = field(default_factory=list)
    group: int | None = None  # tp/sl siblings share it: one firing cancels the others
    filled: float = 0.0
    passive: bool = True  # placed on its own side of the mark: fills when the mark reaches its limit

    @property
    def is_open(self) -> bool:
        return self.status == "open" and not self.waiting

    @property
    def order_type(self) -> str:
        if not self.trigger:
            return "Limit"
        kind = "Take Profit" if self.trigger["tpsl"] == "tp" else "Stop"
        return f"{kind} {'Market' if self.trigger['isMarket'] else 'Limit'}"

    @property
    def fires_above(self) -> bool:
        """Whether the trigger fires when the mark rises to triggerPx (else when it falls):
        a sell take-profit and a buy stop fire going up, the other two going down."""
        assert self.trigger is not None
        return (self.side == "A") == (self.trigger["tpsl"] == "tp")

    def basic(self) -> dict[str, Any]:
        """The `orderUpdates` / `openOrders` shape (no tif, no reduceOnly)."""
        row = {"coin": self.coin, "side": self.side, "limitPx": self.limit_px, "sz": num(self.size),
               "oid": self.oid, "timestamp": self.timestamp, "origSz": num(self.orig_size)}
        if self.cloid:
            row["cloid"] = self.cloid
        return row

    def frontend(self, children: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The `frontendOpenOrders` shape."""
        trigger_px, condition = "0.0", "N/A"
        if self.trigger:
            trigger_px = self.trigger["triggerPx"]
            condition = f"Price {'above' if self.fires_above else 'below'} {trigger_px}"
        return {**self.basic(), "children": children or [], "isPositionTpsl": self.position_tpsl,
                "isTrigger": self.trigger is not None, "orderType": self.order_type,
                "reduceOnly": self.reduce_only, "tif": None if self.trigger else self.tif,
                "triggerCondition": condition, "triggerPx": trigger_px}

    def update(self) -> dict[str, Any]:
        return {"order": self.basic(), "status": self.status, "statusTimestamp": self.status_timestamp}


def fill(*, coin: str, side: str, px: float, size: float, start: float, closed_pnl: float, fee: float, oid: int,
         crossed: bool, tid: int, time_ms: int, cloid: str | None = None,
         liquidation: dict[str, Any] | None = None) -> dict[str, Any]:
    """A `userFills` row. `start` the signed position before the fill."""
    buy = side == "B"
    if start == 0 or (start > 0) == buy:
        direction = "Open Long" if buy else "Open Short"
    elif abs(size) > abs(start) + 1e-12:
        direction = "Short > Long" if buy else "Long > Short"
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
