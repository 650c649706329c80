"""The exchange connector contract (SPEC section 8): one async `Connector` protocol that the
paper exchange and the Hyperliquid connector both implement, plus the values it speaks.

Units and signs: prices USD, sizes base units, money USD. An order's `side` is `buy`/`sell`
and its size unsigned; a position's size is signed (long > 0). `OrderRequest` carries exact
`Decimal` size and price (the exchange boundary; round them with `engine.domain.increments`);
everything the venue reports back (events, snapshots) is float, as the engine's Book is.

Events reach the engine through `subscribe(handler)`: the connector calls `handler(event)`
synchronously, in venue order, from the thread or loop that drives it. A handler must be
quick (post the event to the engine loop's queue and return). Marks come one at a time
(`MarkUpdated`) or, when the venue sends many at once, as one `MarksUpdated`: a handler that
watches prices takes both.

Order lifecycle, as events: `OrderAccepted` (the venue took it) → zero or more `OrderFilled`
(`remaining` > 0 while part of it is still live) → it ends with `OrderFilled(remaining=0)` or
`OrderCancelled` (IOC remainder, a cancel, the dead-man switch, a liquidation). An order
refused outright gets one `OrderRejected` and nothing else. An order is resting (open) from its
`OrderAccepted` until it ends, unless its tif is `Ioc`. A trigger order rests until the mark
fires it (`OrderTriggered`), then fills (or is cancelled) like a market or limit order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Callable, Literal, Mapping, Protocol, Union, runtime_checkable

from engine.domain.increments import to_decimal
from engine.domain.coins import canonical_coin
from engine.domain.model import Account, MarketInfo, OpenOrder, Position
from engine.risk.book import Book

Side = Literal["buy", "sell"]
TimeInForce = Literal["Ioc", "Gtc", "Alo"]
# How the venue margins the account: `standard` (perp collateral in the perp clearinghouse),
# `unified` or `portfolio` (Hyperliquid's unified account and portfolio margin: the collateral is
# the spot balance, shared by every perp dex).
AccountMode = Literal["standard", "unified", "portfolio"]
DEAD_MAN_DAILY_FIRES = 10  # Hyperliquid fires a scheduleCancel at most 10 times a UTC day


class ConnectorError(Exception):
    """A venue refused an action that is not an order (leverage, cancel of a venue that is down...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


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


@dataclass(frozen=True, slots=True)
class DeadManStatus:
    """The venue's dead-man switch (`scheduleCancel`) as last confirmed: `armed` until `until`
    (epoch s), or not, and `reason` says why not (refused by the venue, its daily cap reached,
    cleared on a clean stop...). `fired_today`: how often it fired this UTC day (the venue
    fires it at most `DEAD_MAN_DAILY_FIRES` times a day)."""

    armed: bool = False
    until: float | None = None
    reason: str | None = None
    fired_today: int = 0


@dataclass(frozen=True, slots=True)
class VenueSnapshot:
    """One reading of a venue's account: what `snapshot()` answers and what the offline tools
    read from a `clearinghouseState` file (`engine.venues.hyperliquid.snapshot`).

    `time` epoch seconds (None: an offline file that does not say). `mark_times`: when each mark
    was last updated; `Book.load` stamps marks with `time`, which would make a frozen mark look
    fresh, so the engine restores these after loading. `venue_cross_maintenance` USD is the
    venue's own figure, for comparison with ours; `unknown` names the fields a file lacked
    (reported as unknown, never invented).
    """

    account: Account
    positions: tuple[Position, ...]
    open_orders: tuple[OpenOrder, ...]
    marks: dict[str, float]
    time: float | None
    funding_rates: dict[str, float] = field(default_factory=dict)  # hourly, fraction; longs pay when > 0
    mark_times: dict[str, float] = field(default_factory=dict)
    venue_cross_maintenance: float | None = None
    unknown: tuple[str, ...] = ()
    account_mode: AccountMode = "standard"

    def book(self, markets: dict[str, MarketInfo] | None = None) -> Book:
        """A Book holding this snapshot (the offline tools judge it as the engine would)."""
        book = Book(markets)
        book.load(self.account, self.positions, self.open_orders, marks=self.marks, at=self.time)
        return book


# ---- events (past tense; frozen) ----------------------------------------------------------


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
    units still live on the order (0 = the order is done)."""

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
    positive = lost), `account_value` USD left afterwards."""

    coin: str
    size: float
    px: float
    loss: float
    time: float
    account_value: float = 0.0


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


@runtime_checkable
class Connector(Protocol):
    """An exchange as the engine sees it. All calls are made from the engine loop."""

    @property
    def revision(self) -> int | None:
        """A number that changes whenever the account changes, for an in-process venue that
        can say so cheaply (the paper exchange): the engine then skips re-reading an unchanged
        account. None: the venue cannot tell, so the engine re-reads it."""
        ...

    @property
    def account_address(self) -> str:
        """The guarded account's address (0x + 40 hex, lower case): on Hyperliquid the
        configured `account_address`; on paper the paper account's own, stable per store."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def meta(self) -> dict[str, MarketInfo]:
        """Markets by canonical coin: lot size (szDecimals) and margin table."""
        ...

    async def snapshot(self) -> VenueSnapshot: ...

    def subscribe(self, handler: EventHandler) -> Callable[[], None]:
        """Call `handler` for every venue event from now on; returns the unsubscribe function."""
        ...

    async def place(self, order: OrderRequest) -> OrderAck: ...

    async def place_group(self, orders: list[OrderRequest], grouping: Grouping) -> list[OrderAck]:
        """Several orders in one action, one answer each in order (see `Grouping`): an entry and
        its TP/SL children (`normalTpsl`), or position stops (`positionTpsl`)."""
        ...

    async def cancel(self, coin: str, oid: str) -> CancelAck: ...

    async def cancel_all(self) -> int:
        """Cancel every resting order; the number cancelled."""
        ...

    async def set_leverage(self, coin: str, leverage: int, isolated: bool = False) -> None:
        """Set a market's leverage; raises ConnectorError if the venue refuses."""
        ...

    async def arm_dead_man(self, seconds: float | None) -> DeadManStatus:
        """Cancel every resting order `seconds` from now unless re-armed (None disarms). Never
        raises for a venue that refuses or cannot be reached: the answer says what stands."""
        ...

    @property
    def dead_man(self) -> DeadManStatus:
        """The switch as last confirmed by the venue."""
        ...

    @property
    def agent_expires_at(self) -> float | None:
        """When the key perpguard trades with stops being accepted (epoch s; an API wallet's
        `validUntil`), None when it never expires (the paper exchange)."""
        ...
