"""How Hyperliquid writes its wire values, for what perpguard writes in the venue's shapes (the
paper venue's answers, the `/hl/ws` user channels): numbers as plain decimal strings (no
exponent, `"0.0"` for zero, sizes to the market's lot), times in integer ms, sides `B`/`A`,
client order ids as 16-byte hex cloids, and the order statuses of the info docs ("Query order
status by oid or cloid": `open`, `filled`, `canceled`, `triggered`, `rejected`,
`reduceOnlyCanceled`, `siblingFilledCanceled`, `liquidatedCanceled`, `scheduledCancel`,
`tickRejected`, `perpMarginRejected`, ...).
"""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal

_CLOID = re.compile(r"^0x[0-9a-fA-F]{32}$")


def num(x: float, places: int = 8) -> str:
    """A float as Hyperliquid writes it: plain decimal, at most `places` decimals, no trailing
    zeros but one (`"65000.0"`, `"0.069277"`, `"0.0"`)."""
    text = f"{x:.{places}f}".rstrip("0")
    if text.endswith("."):
        text += "0"
    return "0.0" if text in ("-0.0", "") else text


def usd(x: float) -> str:
    """Money (USD) to the micro-dollar, as the venue's account figures are written."""
    return num(x, 6)


def size(x: float | Decimal, sz_decimals: int) -> str:
    """A size in base units to the market's lot (`szDecimals`)."""
    return num(float(x), max(0, sz_decimals))


def ms(seconds: float) -> int:
    """Epoch seconds as the venue's integer milliseconds."""
    return int(round(seconds * 1000))


def side(order_side: str) -> str:
    """`buy`/`sell` as the venue's `B` (bid) / `A` (ask)."""
    return "B" if order_side == "buy" else "A"


def cloid_for(client_id: str | None) -> str | None:
    """The cloid (0x + 32 hex, lower case) an order with this client_id carries: the id itself
    when it is one, else the first 16 bytes of its sha256 (the Hyperliquid connector's rule,
    `engine.venues.hyperliquid.signer.cloid_for`, so the same client_id names the same order
    on both venues)."""
    if client_id is None:
        return None
    if _CLOID.match(client_id):
        return client_id.lower()
    return "0x" + hashlib.sha256(client_id.encode()).hexdigest()[:32]


def is_cloid(value: object) -> bool:
    return isinstance(value, str) and bool(_CLOID.match(value))


def fill_direction(start: float, buy: bool, sz: float) -> str:
    """The `dir` of a fill from the position before it (signed base units)."""
    if start == 0 or (start > 0) == buy:
        return "Open Long" if buy else "Open Short"
    if sz > abs(start) + 1e-12:
        return "Short > Long" if buy else "Long > Short"
    return "Close Short" if buy else "Close Long"


def synthetic_hash(n: int) -> str:
    """A transaction hash for the paper venue's n-th event: unique and stable, 0x + 64 hex (the
    paper venue has no chain; this only gives clients the field they expect)."""
    return "0x" + hashlib.sha256(f"perpguard-paper-{n}".encode()).hexdigest()


# Hyperliquid's rejected statuses by the paper venue's rejection code (docs: order statuses).
REJECTED_STATUS = {
    "Tick": "tickRejected", "MinTradeNtl": "minTradeNtlRejected", "PerpMargin": "perpMarginRejected",
    "ReduceOnly": "reduceOnlyRejected", "BadAloPx": "badAloPxRejected", "IocCancel": "iocCancelRejected",
    "InvalidTpSlPx": "badTriggerPxRejected",
}

ZERO_ADDRESS = "0x" + "0" * 40
