"""`PaperExchange`: an in-process venue implementing `engine.venues.connector.Connector` with
Hyperliquid's rules (SPEC sections 7 and 8).

Single-threaded and clock-driven: nothing happens on its own. The market feed calls
`set_mark(coin, px)`; the engine loop calls `poll()` now and then (every second is plenty) so
time-driven things happen even when no mark arrives: hourly funding, delayed orders landing,
the dead-man switch, stale-feed detection. With a `ManualClock` a test moves time and calls
`poll()` (or `set_mark`) to step the venue.

Cross margin only: isolated margin is not modelled (`set_leverage(..., isolated=True)` refused).

On each mark: account value moves; resting orders the mark crosses fill at their limit
(maker fee); then the trigger orders the mark fires execute; then the account is liquidated if
account value < maintenance margin. Triggers come before the liquidation check of the same mark,
as on the venue, where a stop fires on the mark update: a stop just above the liquidation price
that a gapping mark jumps through closes the position at that mark (at the gapped price) and the
account is not liquidated.

The parts, each its own module: the order intake (`intake`: oids, checks, groups), the fill
model over resting limit orders (`matching`), trigger orders (stop-loss / take-profit:
`triggers`), the dead-man switch (`dead_man`), orders delayed on their way (`in_flight`), the
money (`ledger`), funding (`funding`), fault injection (`faults`, all off by default); the account
as a JSON-able state, for restarts: `account_state`.

Account modes: `standard`, or `unified` / `portfolio` as Hyperliquid's unified account and
portfolio margin. There the collateral is the spot USDC balance shared by every perp dex; with
one dex and USDC collateral (the paper account) that gives the same cross figures, so the
margin math is the same and the snapshot says which mode it is (`account_mode`).

The venue's own memory, for Hyperliquid's info answers (`engine.venues.paper.hl_info`):
`history` (`engine.venues.paper.history`) sees every order the venue starts on and every event
it emits, before subscribers and whatever the faults drop. `mark_listeners` hear every mark
(candles, market channels); the list is empty unless an API is attached, so a benchmark's
thousands of marks a second cost nothing extra.
"""

from __future__ import annotations

import math
from typing import Callable

from engine.domain.clock import Clock, SystemClock
from engine.venues.connector import (
    AccountMode, CancelAck, ConnectorError, DeadManStatus, EventHandler, FeedRestored, FeedStale, Grouping, Liquidated,
    MarkUpdated, OrderAck, OrderRequest, VenueEvent, VenueSnapshot,
)
from engine.domain.model import Account, MarginMode, MarketInfo, OpenOrder, Position
from engine.venues.paper.ledger import DEFAULT_LEVERAGE, Ledger
from engine.venues.paper.dead_man import DeadManSwitch
from engine.venues.paper.faults import Faults
from engine.venues.paper.funding import HourlyFunding
from engine.venues.paper.history import PaperHistory
from engine.venues.paper.in_flight import InFlightOrders
from engine.venues.paper.intake import OrderIntake
from engine.venues.paper.matching import Matching
from engine.venues.paper.triggers import (  # the cancel reasons are re-exported: callers read them here
    ENTRY_UNFILLED, REDUCE_ONLY_CANCELED, SIBLING_CANCELED, TriggerOrders,  # noqa: F401
)

TAKER_FEE = 0.00045  # Hyperliquid base tier, fraction of notional
MAKER_FEE = 0.00015
SLIPPAGE = 0.0005  # taker fills at mark ± 5 bp (never worse than the limit)
STALE_AFTER_SECONDS = 10.0

MISSING_ORDER = "Order was never placed, already canceled, or filled."

# The paper account's address when none is given (the node gives each store its own, kept).
PAPER_ADDRESS = "0x" + "0" * 36 + "9a9e"


class PaperExchange:
    """See the module docstring. Prices USD, sizes base units, fees fractions of notional."""

    def __init__(self, markets: dict[str, MarketInfo], equity: float = 100_000.0, clock: Clock | None = None, *,
                 taker_fee: float = TAKER_FEE, maker_fee: float = MAKER_FEE, slippage: float = SLIPPAGE,
                 partial_fill_ratio: float | None = None, stale_after: float = STALE_AFTER_SECONDS,
                 default_leverage: int = DEFAULT_LEVERAGE, account_mode: AccountMode = "standard",
                 account_address: str = PAPER_ADDRESS) -> None:
        for coin, info in markets.items():
            if info.sz_decimals is None:
                raise ValueError(f"market {coin} needs sz_decimals")
        if partial_fill_ratio is not None and not 0 < partial_fill_ratio <= 1:
            raise ValueError("partial_fill_ratio must be within (0, 1]")
        if account_mode not in ("standard", "unified", "portfolio"):
            raise ValueError(f"account_mode must be standard, unified or portfolio, not {account_mode!r}")
        self.markets = dict(markets)
        self.account_mode: AccountMode = account_mode
        self.account_address = account_address.lower()
        self.clock = clock or SystemClock()
        self.ledger = Ledger(self.markets, equity, default_leverage)
        self.stale_after = stale_after
        self.mark_times: dict[str, float] = {}
        self.triggers = TriggerOrders(self.ledger, self.clock, self._emit)
        self.matching = Matching(self.markets, self.ledger, self.clock, self._emit, self.triggers, taker_fee=taker_fee,
                                 maker_fee=maker_fee, slippage=slippage, partial_fill_ratio=partial_fill_ratio)
        self.in_flight = InFlightOrders(self.clock, self._emit)
        self._handlers: list[EventHandler] = []
        now = self.clock.now()
        self.funding = HourlyFunding(now, self.markets)
        self.dead_man_switch = DeadManSwitch(self.clock)
        self._last_mark_at = now
        self._stale = False
        # Bumped by every change other than a mark (fills, cancels, funding, liquidation, leverage):
        # the engine skips re-reading an account that has not changed since its last read.
        self.revision = 0
        self.faults = Faults(self._feed_back)
        # The venue's own record of orders, fills and funding (Hyperliquid's info answers).
        self.history = PaperHistory(self.markets, self.account_address, lambda coin: float(self.ledger.size(coin)))
        self.intake = OrderIntake(self.markets, self.ledger, self.clock, self._emit, self.history, self.faults,
                                  self.triggers, self.matching, self._check_liquidation)
        # Called with (coin, px USD, time epoch s) on every mark; kept empty unless someone
        # listens (candles, market channels), as a benchmark feeds thousands of marks a second.
        self.mark_listeners: list[Callable[[str, float, float], None]] = []

    # The fill model's terms, kept (and read) by `matching`: fractions of notional.
    @property
    def taker_fee(self) -> float:
        return self.matching.taker_fee

    @taker_fee.setter
    def taker_fee(self, value: float) -> None:
        self.matching.taker_fee = value

    @property
    def maker_fee(self) -> float:
        return self.matching.maker_fee

    @maker_fee.setter
    def maker_fee(self, value: float) -> None:
        self.matching.maker_fee = value

    @property
    def slippage(self) -> float:
        return self.matching.slippage

    @slippage.setter
    def slippage(self, value: float) -> None:
        self.matching.slippage = value

    @property
    def partial_fill_ratio(self) -> float | None:
        return self.matching.partial_fill_ratio

    @partial_fill_ratio.setter
    def partial_fill_ratio(self, value: float | None) -> None:
        self.matching.partial_fill_ratio = value

    @property
    def dead_man_deadline(self) -> float | None:
        """When resting orders will be cancelled unless the switch is re-armed (epoch s), or None."""
        return self.dead_man_switch.deadline

    # ---- driving -------------------------------------------------------------------------

    def set_funding_rate(self, coin: str, hourly_rate: float) -> None:
        """Hourly funding rate (fraction; longs pay when > 0). Capped at ±4% when applied."""
        self.funding.rates[coin] = hourly_rate

    def set_mark(self, coin: str, px: float) -> bool:
        """A new mark (USD) from the market feed. False when ignored (`freeze_marks`)."""
        if coin not in self.markets:
            raise KeyError(f"unknown market {coin}")
        if not (px > 0 and math.isfinite(px)):
            raise ValueError(f"mark must be a positive number, not {px!r}")
        self.poll()
        if self.faults.freeze_marks:
            return False
        now = self.clock.now()
        self.ledger.marks[coin] = float(px)
        self.mark_times[coin] = self._last_mark_at = now
        if self.mark_listeners:
            for listener in self.mark_listeners:
                listener(coin, float(px), now)
        if self._stale:
            self._stale = False
            self._emit(FeedRestored(now))
        self._emit(MarkUpdated(coin, float(px), now))
        self.matching.fill_on_mark(coin, float(px))
        if self.triggers.resting:
            self.triggers.fire(coin, float(px), self.matching.execute_fired)
        self._check_liquidation()
        return True

    def quiet_until(self) -> float:
        """Until when (epoch s) nothing but the mark can change this account: no resting limit
        or in-flight order, no dead-man deadline, no funding payment, no fault switch on. Resting
        trigger orders do not shorten it: they act only on a mark that reaches their trigger
        price, and `quiet_band` says which marks cannot. The replay's fast path skips marks only
        inside this window, and only marks inside the band."""
        now = self.clock.now()
        if self.matching.resting or self.in_flight.flights or self.faults.freeze_marks or self.faults.drop_feed:
            return now
        until = float("inf")
        if any(self.funding.capped_rates().values()):
            until = self.funding.next_hour()
        deadline = self.dead_man_switch.deadline
        if deadline is not None:
            until = min(until, deadline)
        return until

    def quiet_band(self, coin: str) -> tuple[float, float]:
        """(low, high) USD: a mark of `coin` strictly between them fires no trigger order
        (-inf, inf when none rests). A waiting `normalTpsl` child counts too: its entry is a
        resting order, which `quiet_until` already rules out."""
        return self.triggers.quiet_band(coin)

    def glide_mark(self, coin: str, px: float) -> None:
        """Move the mark to `px` at `clock.now()` without a `MarkUpdated` event: for a replay that
        has proved no mark in between could fill, fund, liquidate or trip a rule (`quiet_until`,
        `quiet_band`). Triggers and liquidation are still checked, as a net under that proof."""
        now = self.clock.now()
        self.ledger.marks[coin] = float(px)
        self.mark_times[coin] = self._last_mark_at = now
        if self.mark_listeners:
            for listener in self.mark_listeners:
                listener(coin, float(px), now)
        self.poll()
        if self.triggers.resting:
            self.triggers.fire(coin, float(px), self.matching.execute_fired)
        self._check_liquidation()

    def unsubscribe(self, handler: EventHandler) -> bool:
        """Stop calling `handler` (as the function `subscribe` returned does); False if it was
        not subscribed. The replay cuts a dying engine off the venue with it."""
        if handler in self._handlers:
            self._handlers.remove(handler)
            return True
        return False

    def poll(self) -> None:
        """Do what is due at `clock.now()`: delayed orders, dead-man switch, funding, staleness."""
        now = self.clock.now()
        while self.in_flight.flights and (flight := self.in_flight.landed(now)) is not None:
            self.intake.execute_group(flight.oids, flight.requests, flight.grouping)
        if self.dead_man_switch.fire_if_due(now):
            self.matching.cancel_all("dead-man switch expired")
        self._apply_funding(now)
        if not self._stale and now - self._last_mark_at >= self.stale_after:
            self._stale = True
            reason = "marks frozen" if self.faults.freeze_marks else "no marks"
            self._emit(FeedStale(self._last_mark_at, now, reason))

    # ---- Connector -----------------------------------------------------------------------

    async def start(self) -> None:
        if not self.mark_times:  # the stale-feed timer starts with the venue
            self._last_mark_at = self.clock.now()

    async def stop(self) -> None:
        self.dead_man_switch.disarm()

    async def meta(self) -> dict[str, MarketInfo]:
        return dict(self.markets)

    def subscribe(self, handler: EventHandler) -> Callable[[], None]:
        self._handlers.append(handler)
        return lambda: self._handlers.remove(handler) if handler in self._handlers else None

    async def snapshot(self) -> VenueSnapshot:
        """Account, positions, resting orders and marks now (what `Book.load` takes).
        `mark_times` says how old each mark really is (a frozen mark keeps its old time)."""
        now = self.clock.now()
        ledger = self.ledger
        value = ledger.account_value()
        positions = tuple(
            Position(coin, float(h.size), h.entry_px, leverage=float(ledger.leverage[coin]),
                     margin_mode=MarginMode.CROSS, max_leverage=ledger.max_leverage(coin),
                     unrealized_pnl=ledger.unrealized_pnl(coin), cum_funding=h.cum_funding)
            for coin, h in ledger.holdings.items()
        )
        orders = self.open_orders()
        account = Account(value, value, max(0.0, self.matching.available_margin()), now)
        rates = self.funding.capped_rates()
        return VenueSnapshot(account, positions, orders, dict(ledger.marks), now, rates, dict(self.mark_times),
                             account_mode=self.account_mode)

    async def place(self, order: OrderRequest) -> OrderAck:
        return self._place([order], "na")[0]

    async def place_group(self, orders: list[OrderRequest], grouping: Grouping) -> list[OrderAck]:
        """Several orders in one action, one answer each, in order. `na`: each placed in turn.
        `normalTpsl`: the first is the entry (not a trigger), the rest its reduce-only trigger
        children on the other side; they rest from the entry's first fill (at once when it fills
        on arrival), an entry refused makes them refused (`EntryRejected`), an entry that ends
        unfilled takes them with it. `positionTpsl`: reduce-only triggers that follow the
        position (placed size irrelevant, 0 allowed; a position must exist). Children answer
        `resting` even while they wait for their entry."""
        if grouping not in ("na", "normalTpsl", "positionTpsl"):
            raise ValueError(f"grouping must be na, normalTpsl or positionTpsl, not {grouping!r}")
        return self._place(list(orders), grouping)

    def _place(self, orders: list[OrderRequest], grouping: Grouping) -> list[OrderAck]:
        self.poll()
        oids = self.intake.number(len(orders))
        if self.faults.order_delay > 0:
            return self.in_flight.send(self.clock.now() + self.faults.order_delay, oids, orders, grouping)
        return self.intake.execute_group(oids, orders, grouping)

    async def cancel(self, coin: str, oid: str) -> CancelAck:
        self.poll()
        if (self.in_flight.cancel(oid) or self.triggers.cancel_order(coin, oid, "cancelled")
                or self.matching.cancel_order(coin, oid, "cancelled")):
            return CancelAck(oid, True)
        return CancelAck(oid, False, MISSING_ORDER)

    async def cancel_all(self) -> int:
        """Cancel every resting order, trigger orders included. Orders still in flight
        (`delay_orders`) land later, as they would on a real venue."""
        self.poll()
        return self.matching.cancel_all("cancelled (cancel all)")

    async def update_isolated_margin(self, coin: str, usd: float) -> None:
        raise ConnectorError("IsolatedUnsupported", "The paper exchange trades cross margin only.")

    async def set_leverage(self, coin: str, leverage: int, isolated: bool = False) -> None:
        """Cross leverage of a market, 1 to its max. Isolated margin is not modelled (ConnectorError)."""
        if isolated:
            raise ConnectorError("IsolatedUnsupported", "The paper exchange trades cross margin only.")
        if coin not in self.markets:
            raise ConnectorError("UnknownAsset", f"Unknown asset {coin}.")
        notional = self.ledger.notional(coin)
        highest = self.ledger.max_leverage(coin, notional)
        if leverage != int(leverage) or not 1 <= leverage <= highest:
            raise ConnectorError("InvalidLeverage",
                                 f"Leverage {leverage}x is not allowed for {coin}: an integer from 1 to {highest:g}x.")
        previous = self.ledger.leverage[coin]
        self.ledger.leverage[coin] = int(leverage)
        self.revision += 1
        if self.matching.available_margin() < 0:
            self.ledger.leverage[coin] = previous
            raise ConnectorError("PerpMargin", f"Insufficient margin to update leverage to {leverage}x on {coin}.")

    async def arm_dead_man(self, seconds: float | None) -> DeadManStatus:
        """As Hyperliquid: at least 5 s ahead, and at most `DEAD_MAN_DAILY_FIRES` fires a UTC day
        (after that it is refused until midnight UTC). None clears it."""
        self.poll()
        self.dead_man_switch.arm(seconds)
        return self.dead_man

    @property
    def dead_man(self) -> DeadManStatus:
        return self.dead_man_switch.status

    agent_expires_at = None  # the paper account trades with no key that could expire

    # ---- reading (tests, replay, the info answers) ----------------------------------------

    def open_orders(self) -> tuple[OpenOrder, ...]:
        """Resting limit orders (time priority), then trigger orders (with `trigger_px`/`tpsl`;
        a positionTpsl one sized to the position now), as `snapshot()` lists them."""
        return self.matching.open_orders() + self.triggers.open_orders()

    def available_margin(self) -> float:
        """Account value − initial margin of positions and of resting orders that add risk (USD):
        what a new order can use (may be negative after a loss)."""
        return self.matching.available_margin()

    def account_value(self) -> float:
        return self.ledger.account_value()

    def maintenance_margin(self) -> float:
        return self.ledger.maintenance_margin()

    def position_size(self, coin: str) -> float:
        """Signed base units."""
        return float(self.ledger.size(coin))

    # ---- internals -----------------------------------------------------------------------

    def _feed_back(self, events_lost: bool) -> None:
        """A dropped feed is back (`faults.drop_feed = False`): say so, and whether events were lost."""
        self._stale = False
        self._emit(FeedRestored(self.clock.now(), events_lost=events_lost))

    def _emit(self, event: VenueEvent) -> None:
        if type(event) is not MarkUpdated:
            self.revision += 1
            event = self.history.record(event)  # a fill comes back with its trade id
        if self.faults.drop_feed:
            self.faults.dropped_events += 1
            return
        for handler in list(self._handlers):
            handler(event)

    def _apply_funding(self, now: float) -> None:
        for at in self.funding.due_hours(now):
            for event in self.funding.pay(self.ledger, at):
                self._emit(event)
            self._check_liquidation()  # funding alone can take an account under

    def _check_liquidation(self) -> None:
        """SPEC 7: when account value < maintenance margin at mark, the whole cross account is
        liquidated: resting orders cancelled, every position closed at mark, the loss taken."""
        if not self.ledger.liquidatable():
            return
        self.matching.cancel_all("liquidation")
        closures = self.ledger.close_all_at_mark()
        now, value = self.clock.now(), self.ledger.account_value()
        for c in closures:
            self._emit(Liquidated(c.coin, float(c.size), c.px, -c.realized_pnl, now, value))
