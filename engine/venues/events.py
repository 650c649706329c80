"""The events a `Connector` hands its subscribers (SPEC section 8): past tense, frozen.

How they reach the engine, and the order lifecycle they tell, is in `engine.venues.connector`.
Prices USD, sizes base units (unsigned unless said), times epoch seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Union

from engine.venues.orders import Side, TimeInForce, TpSl


@dataclass(frozen=True, slots=True)
class MarkUpdated:
    coin: str
    px: float  # USD
    time: float


@dataclass(frozen=True, slots=True)
class MarksUpdated:
    """Marks of several coins observed together (one `allMids` message): `marks` USD by coin,
    read-only. The engine applies them all, then judges the account once, as one instant."""

    marks: Mapping[str, float]
    time: float


@dataclass(frozen=True, slots=True)
class OrderAccepted:
    """The venue took the order. `size` unsigned base units."""

    oid: str
    coin: str
    side: Side
    size: float
    limit_px: float
    tif: TimeInForce
    reduce_only: bool
    client_id: str | None
    time: float


@dataclass(frozen=True, slots=True)
class OrderFilled:
    """A fill. `size` unsigned base units at `px` USD; `fee` USD paid (>= 0); `realized_pnl` USD
    of the part that closed a position, before fees (Hyperliquid's closedPnl); `remaining` base
    units still live on the order (0 = the order is done); `tid` and `hash` the venue's trade id
    and transaction hash of the fill, when the venue gave them (its `userFills` row)."""

    oid: str
    coin: str
    side: Side
    size: float
    px: float
    fee: float
    realized_pnl: float
    remaining: float
    time: float
    client_id: str | None = None
    maker: bool = False
    tid: int | None = None
    hash: str | None = None


@dataclass(frozen=True, slots=True)
class OrderCancelled:
    """The live part of an order is gone. `reason` says why (cancel, IOC remainder, dead-man
    switch, liquidation, reduce-only would increase)."""

    oid: str
    coin: str
    reason: str
    time: float
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class OrderTriggered:
    """A resting trigger order fired at `mark` (its `trigger_px` reached): it now executes; its
    fills follow as `OrderFilled` with the same oid."""

    oid: str
    coin: str
    side: Side
    trigger_px: float
    mark: float
    client_id: str | None
    time: float
    tpsl: TpSl = "sl"


@dataclass(frozen=True, slots=True)
class OrderRejected:
    """The venue refused an order. `code` is Hyperliquid's error type (`MinTradeNtl`,
    `PerpMargin`, `ReduceOnly`, `Tick`, `InvalidSize`, `IocCancel`, `BadAloPx`, ...)."""

    oid: str | None
    client_id: str | None
    coin: str
    code: str
    reason: str
    time: float


@dataclass(frozen=True, slots=True)
class FundingPaid:
    """Hourly funding on one position. `rate` hourly fraction (capped at ±4%); `payment` USD
    the account PAID (= size × oracle px × rate: positive paid, negative received)."""

    coin: str
    rate: float
    payment: float
    size: float  # signed base units at the funding time
    px: float  # oracle price used, USD
    time: float


@dataclass(frozen=True, slots=True)
class Liquidated:
    """The venue closed a position because account value fell below maintenance margin.
    `size` the signed size closed, `px` USD, `loss` USD realized by the close (entry → px;
    positive = lost), `account_value` USD left afterwards; `tid` and `hash` those of the venue's
    fill that closed it, when the venue gave them."""

    coin: str
    size: float
    px: float
    loss: float
    time: float
    account_value: float = 0.0
    tid: int | None = None
    hash: str | None = None


@dataclass(frozen=True, slots=True)
class FeedStale:
    """No mark arrived for a while: data is old; fail closed. `since` the last mark's time."""

    since: float
    time: float
    reason: str = "no marks"


@dataclass(frozen=True, slots=True)
class FeedRestored:
    """Marks flow again. `events_lost`: the stream dropped events meanwhile; reconcile with
    `snapshot()` before trusting the book."""

    time: float
    events_lost: bool = False


VenueEvent = Union[
    MarkUpdated, MarksUpdated, OrderAccepted, OrderFilled, OrderCancelled, OrderRejected, OrderTriggered,
    FundingPaid, Liquidated, FeedStale, FeedRestored,
]
EventHandler = Callable[[VenueEvent], None]
