"""The exchange connector contract (SPEC section 8): one async `Connector` protocol that the
paper exchange and the Hyperliquid connector both implement, plus the values it speaks: the
orders and their answers (`engine.venues.orders`), the events (`engine.venues.events`), the
account snapshot and the dead-man status (here). Every one of them can be imported from here.

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
from typing import Callable, Literal, Protocol, runtime_checkable

from engine.domain.model import Account, MarketInfo, OpenOrder, Position
from engine.risk.book import Book
# The values the protocol speaks live in their own modules; importing them from here keeps working.
from engine.venues.events import (  # noqa: F401
    EventHandler, FeedRestored, FeedStale, FundingPaid, Liquidated, MarksUpdated, MarkUpdated, OrderAccepted,
    OrderCancelled, OrderFilled, OrderRejected, OrderTriggered, VenueEvent,
)
from engine.venues.orders import (  # noqa: F401
    AckStatus, CancelAck, Grouping, OrderAck, OrderRequest, Side, TimeInForce, TpSl, Trigger,
)

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

    async def update_isolated_margin(self, coin: str, usd: float) -> None:
        """Move `usd` into (> 0) or out of (< 0) an isolated position's margin; raises
        ConnectorError if the venue refuses."""
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
