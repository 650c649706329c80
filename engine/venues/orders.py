"""The orders a `Connector` takes and its synchronous answers (SPEC section 8): `OrderRequest`
(with an optional `Trigger`), `OrderAck`, `CancelAck`, and the literals they use.

Units and signs as `engine.venues.connector` says: `OrderRequest` carries exact `Decimal` size
(base units, unsigned) and price (USD), the exchange boundary; the answers are float.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from engine.domain.increments import to_decimal
from engine.domain.coins import canonical_coin

Side = Literal["buy", "sell"]
TimeInForce = Literal["Ioc", "Gtc", "Alo"]
TpSl = Literal["sl", "tp"]
# How orders sent together relate (Hyperliquid's `grouping`): `na` none; `normalTpsl` an entry
# followed by its reduce-only trigger children, which wait for the entry to fill and rest then;
# `positionTpsl` triggers that follow the whole position: when one fires it closes what the
# position is at that moment, whatever its size was when it was placed.
Grouping = Literal["na", "normalTpsl", "positionTpsl"]


@dataclass(frozen=True, slots=True)
class Trigger:
    """A trigger order's condition. It fires when the mark reaches `trigger_px`: a stop-loss
    (`sl`) of a sell (closing a long) at or below it, of a buy at or above it; a take-profit
    (`tp`) the other way round. Then it executes as a market order (`is_market`: at the book,
    within the venue's slippage cap) or as a limit at the order's `limit_px`."""

    trigger_px: Decimal
    tpsl: TpSl = "sl"
    is_market: bool = True

    def __post_init__(self) -> None:
        if self.tpsl not in ("sl", "tp"):
            raise ValueError(f"tpsl must be 'sl' or 'tp', not {self.tpsl!r}")
        object.__setattr__(self, "trigger_px", to_decimal(self.trigger_px))

    def fires(self, side: str, mark: float) -> bool:
        """Whether a mark fires it, for an order on `side`."""
        px = float(self.trigger_px)
        falling = (side == "sell") == (self.tpsl == "sl")  # a long's stop, a short's take-profit
        return mark <= px if falling else mark >= px


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One order as the venue receives it.

    `size` base units and `limit_px` USD, exact Decimals already on the market's increments
    (the venue rejects them otherwise, as Hyperliquid does). Floats and strings are converted
    through their shortest repr. A market order is an `Ioc` at mark ± the slippage cap.
    `Alo` is post-only. `client_id` is the idempotency key (Hyperliquid's cloid). With a
    `trigger` it is a trigger order: it rests (status `resting`) until the mark fires it.
    """

    coin: str
    side: Side
    size: Decimal
    limit_px: Decimal
    tif: TimeInForce = "Gtc"
    reduce_only: bool = False
    client_id: str | None = None
    trigger: Trigger | None = None  # a trigger order (rests until the mark fires it); tif is then ignored
    builder: tuple[str, int] | None = None  # Hyperliquid's builder code: (address, fee in tenths of a bp)

    def __post_init__(self) -> None:
        if self.side not in ("buy", "sell"):
            raise ValueError(f"side must be 'buy' or 'sell', not {self.side!r}")
        if self.tif not in ("Ioc", "Gtc", "Alo"):
            raise ValueError(f"tif must be Ioc, Gtc or Alo, not {self.tif!r}")
        # Frozen dataclass: normalise in place once, at construction.
        object.__setattr__(self, "coin", canonical_coin(self.coin))
        object.__setattr__(self, "size", to_decimal(self.size))
        object.__setattr__(self, "limit_px", to_decimal(self.limit_px))

    @property
    def sign(self) -> int:
        return 1 if self.side == "buy" else -1


AckStatus = Literal["filled", "partially_filled", "resting", "pending", "rejected"]


@dataclass(frozen=True, slots=True)
class OrderAck:
    """The venue's synchronous answer to `place`.

    status: `filled` (in full, now); `partially_filled` (an IOC filled `filled_size`, the rest
    was cancelled); `resting` (on the book; `filled_size` may be > 0 for a GTC that crossed in
    part); `pending` (in flight: the outcome comes later as events); `rejected` (`code`,
    `error`). Sizes base units, `avg_px` USD.
    """

    oid: str | None
    client_id: str | None
    status: AckStatus
    filled_size: float = 0.0
    avg_px: float | None = None
    remaining: float = 0.0
    code: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != "rejected"


@dataclass(frozen=True, slots=True)
class CancelAck:
    oid: str
    cancelled: bool
    error: str | None = None
