"""`PaperExchange`: an in-process venue implementing `engine.venues.connector.Connector` with
Hyperliquid's rules (SPEC sections 7 and 8).

Single-threaded and clock-driven: nothing happens on its own. The market feed calls
`set_mark(coin, px)`; the engine loop calls `poll()` now and then (every second is plenty) so
time-driven things happen even when no mark arrives: hourly funding, delayed orders landing,
the dead-man switch, stale-feed detection. With a `ManualClock` a test moves time and calls
`poll()` (or `set_mark`) to step the venue.

Cross margin only: one cross account; isolated margin is not modelled (`set_leverage(...,
isolated=True)` is refused).

On each mark: account value moves; resting orders the mark crosses fill at their limit
(maker fee); then the trigger orders the mark fires execute; then the account is liquidated if
account value < maintenance margin. Triggers come before the liquidation check of the same mark,
as on the venue, where a stop fires on the mark update: a stop just above the liquidation price
that a gapping mark jumps through closes the position at that mark (at the gapped price) and the
account is not liquidated.

Trigger orders (stop-loss / take-profit, `OrderRequest.trigger`): reduce-only always (the paper
venue refuses the other kind), refused with `Invalid TP/SL price.` when the mark already meets the
condition, resting (listed with `trigger_px`/`tpsl`) until a mark fires them (`Trigger.fires`):
`OrderTriggered`, then a market trigger fills at once at mark ± slippage (taker fee; its
`limit_px` is not a cap, as the venue's market triggers fill within its own wide cap), a limit
trigger at its `limit_px` when marketable, else it rests as a plain reduce-only GTC limit. The
size is what the position is at that moment: a `positionTpsl` trigger closes the whole position,
any other is clamped to it; a trigger never opens or flips a position. Groups (`place_group`):
`normalTpsl` children wait for their entry's first fill (and go with an entry that ends
unfilled); siblings of a group are cancelled when one fires; a trigger whose position is gone
(closed or flipped) is cancelled at once (reduce only). Cancel-all, the dead-man switch and a
liquidation cancel trigger orders as well.

Fill model: an order that crosses the mark on arrival (IOC, or a marketable GTC) fills as a
taker at mark × (1 ± slippage), never worse than its limit; an IOC that does not cross is
rejected (`IocCancel`), an ALO that would cross is rejected (`BadAloPx`). With
`partial_fill_ratio` each match fills that fraction of what is left (rounded down to the lot,
at least one lot); an IOC's remainder is cancelled, a GTC's rests.

Account modes: `standard`, or `unified` / `portfolio` as Hyperliquid's unified account and
portfolio margin. There the collateral is the spot USDC balance shared by every perp dex; with
one dex and USDC collateral (the paper account) that gives the same cross figures, so the
margin math is the same and the snapshot says which mode it is (`account_mode`).

Fault injection (all off by default): see `engine.venues.paper.faults`.

The venue's own memory, for Hyperliquid's info answers (`engine.venues.paper.hl_info`):
`history` (`engine.venues.paper.history`) sees every order the venue starts on and every event
it emits, before subscribers and whatever the faults drop. `mark_listeners` hear every mark
(candles, market channels); the list is empty unless an API is attached, so a benchmark's
thousands of marks a second cost nothing extra. The account as a JSON-able state, for restarts:
`engine.venues.paper.account_state`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

from engine.domain.clock import Clock, SystemClock
from engine.venues.connector import (
    DEAD_MAN_DAILY_FIRES, AccountMode, CancelAck, ConnectorError, DeadManStatus, EventHandler, FeedRestored, FeedStale, Liquidated,
    Grouping, MarkUpdated, OrderAccepted, OrderAck, OrderCancelled, OrderFilled, OrderRejected,
    OrderRequest, OrderTriggered, VenueEvent, VenueSnapshot,
)
from engine.domain.increments import round_size
from engine.domain.model import Account, MarginMode, MarketInfo, OpenOrder, Position
from engine.venues.paper.ledger import DEFAULT_LEVERAGE, Ledger
from engine.venues.paper.faults import Faults
from engine.venues.paper.funding import HourlyFunding
from engine.venues.paper.history import PaperHistory
from engine.venues.paper.rules import OrderCheck, check_order_request, check_trigger_request

TAKER_FEE = 0.00045  # Hyperliquid base tier, fraction of notional
MAKER_FEE = 0.00015
SLIPPAGE = 0.0005  # taker fills at mark ± 5 bp (never worse than the limit)
STALE_AFTER_SECONDS = 10.0

MISSING_ORDER = "Order was never placed, already canceled, or filled."
# Why the venue cancels a trigger order (Hyperliquid's order statuses, in words).
REDUCE_ONLY_CANCELED = "Canceled due to reduce only: the position it would close is gone (reduceOnlyCanceled)."
SIBLING_CANCELED = "Canceled due to sibling order being filled (siblingFilledCanceled)."
ENTRY_UNFILLED = "Canceled: its entry order ended unfilled, its TP/SL go with it."


@dataclass(slots=True)
class _Resting:
    oid: str
    request: OrderRequest
    remaining: Decimal  # base units still live


@dataclass(slots=True)
class _Trigger:
    """A resting trigger order. `px`/`falling`: it fires when the mark is <= px (falling) or
    >= px. `group`: the siblings placed with it in one `place_group` (one firing cancels the
    others). `waiting`: a `normalTpsl` child whose entry has not filled yet (it cannot fire)."""

    oid: str
    request: OrderRequest
    px: float
    falling: bool
    position_tpsl: bool = False
    group: int | None = None
    waiting: bool = False


@dataclass(slots=True)
class _InFlight:
    """Orders sent together that reach the venue at `due` (`delay_orders`)."""

    due: float
    oids: list[str]
    requests: list[OrderRequest]
    grouping: Grouping = "na"


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
        self.taker_fee, self.maker_fee, self.slippage = taker_fee, maker_fee, slippage
        self.partial_fill_ratio = partial_fill_ratio
        self.stale_after = stale_after
        self.mark_times: dict[str, float] = {}
        self._resting: dict[str, _Resting] = {}  # insertion order = time priority
        self._triggers: dict[str, _Trigger] = {}  # resting trigger orders, by oid
        self._children: dict[str, list[str]] = {}  # a normalTpsl entry not filled yet -> its waiting children
        self._group = 0
        self._in_flight: list[_InFlight] = []
        self._handlers: list[EventHandler] = []
        self._client_ids: dict[str, str] = {}
        self._next_oid = 1
        now = self.clock.now()
        self.funding = HourlyFunding(now)
        self._dead_man_at: float | None = None
        self._dead_man_fires: list[float] = []  # when it fired (epoch s), this UTC day and before
        self._dead_man_reason: str | None = None
        self._last_mark_at = now
        self._stale = False
        # Bumped by every change other than a mark (fills, cancels, funding, liquidation, leverage):
        # the engine skips re-reading an account that has not changed since its last read.
        self.revision = 0
        self.faults = Faults(self._feed_back)
        # The venue's own record of orders, fills and funding (Hyperliquid's info answers).
        self.history = PaperHistory(self.markets, self.account_address, lambda coin: float(self.ledger.size(coin)))
        # Called with (coin, px USD, time epoch s) on every mark; kept empty unless someone
        # listens (candles, market channels), as a benchmark feeds thousands of marks a second.
        self.mark_listeners: list[Callable[[str, float, float], None]] = []

    @property
    def dead_man_deadline(self) -> float | None:
        """When resting orders will be cancelled unless the switch is re-armed (epoch s), or None."""
        return self._dead_man_at

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
        self._fill_resting(coin, float(px))
        if self._triggers:
            self._fire_triggers(coin, float(px))
        self._check_liquidation()
        return True

    def quiet_until(self) -> float:
        """Until when (epoch s) nothing but the mark can change this account: no resting limit
        or in-flight order, no dead-man deadline, no funding payment, no fault switch on. Resting
        trigger orders do not shorten it: they act only on a mark that reaches their trigger
        price, and `quiet_band` says which marks cannot. The replay's fast path skips marks only
        inside this window, and only marks inside the band."""
        now = self.clock.now()
        if self._resting or self._in_flight or self.faults.freeze_marks or self.faults.drop_feed:
            return now
        until = float("inf")
        if any(self.funding.capped_rates().values()):
            until = self.funding.next_hour()
        if self._dead_man_at is not None:
            until = min(until, self._dead_man_at)
        return until

    def quiet_band(self, coin: str) -> tuple[float, float]:
        """(low, high) USD: a mark of `coin` strictly between them fires no trigger order
        (-inf, inf when none rests). A waiting `normalTpsl` child counts too: its entry is a
        resting order, which `quiet_until` already rules out."""
        low, high = float("-inf"), float("inf")
        for t in self._triggers.values():
            if t.request.coin != coin:
                continue
            if t.falling:
                low = max(low, t.px)
            else:
                high = min(high, t.px)
        return low, high

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
        if self._triggers:
            self._fire_triggers(coin, float(px))
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
        while self._in_flight and self._in_flight[0].due <= now:
            flight = self._in_flight.pop(0)
            self._execute_group(flight.oids, flight.requests, flight.grouping)
        if self._dead_man_at is not None and now >= self._dead_man_at:
            self._dead_man_at = None
            self._dead_man_fires.append(now)
            self._dead_man_reason = "fired: every resting order was cancelled"
            self._cancel_resting("dead-man switch expired")
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
        self._dead_man_at = None

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
        account = Account(value, value, max(0.0, self._available_margin()), now)
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
        oids = [str(self._next_oid + i) for i in range(len(orders))]
        self._next_oid += len(orders)
        if self.faults.order_delay > 0:
            self._in_flight.append(_InFlight(self.clock.now() + self.faults.order_delay, oids, list(orders), grouping))
            self._in_flight.sort(key=lambda f: f.due)
            return [OrderAck(oid, o.client_id, "pending", remaining=float(o.size)) for oid, o in zip(oids, orders)]
        return self._execute_group(oids, orders, grouping)

    async def cancel(self, coin: str, oid: str) -> CancelAck:
        self.poll()
        for flight in self._in_flight:
            if oid in flight.oids:
                i = flight.oids.index(oid)
                # A normalTpsl entry takes its children with it.
                drop = range(len(flight.oids)) if flight.grouping == "normalTpsl" and i == 0 else [i]
                for j in sorted(drop, reverse=True):
                    request = flight.requests.pop(j)
                    self._emit(OrderCancelled(flight.oids.pop(j), request.coin, "cancelled before it reached the venue",
                                              self.clock.now(), request.client_id))
                if not flight.oids:
                    self._in_flight.remove(flight)
                return CancelAck(oid, True)
        trigger = self._triggers.get(oid)
        if trigger is not None and trigger.request.coin == coin:
            self._cancel_trigger(trigger, "cancelled")
            return CancelAck(oid, True)
        resting = self._resting.get(oid)
        if resting is None or resting.request.coin != coin:
            return CancelAck(oid, False, MISSING_ORDER)
        self._cancel(resting, "cancelled")
        return CancelAck(oid, True)

    async def cancel_all(self) -> int:
        """Cancel every resting order, trigger orders included. Orders still in flight
        (`delay_orders`) land later, as they would on a real venue."""
        self.poll()
        return self._cancel_resting("cancelled (cancel all)")

    async def set_leverage(self, coin: str, leverage: int, isolated: bool = False) -> None:
        """Cross leverage of a market, an integer from 1 to the market's max. Isolated margin is
        not modelled by the paper exchange: asking for it raises ConnectorError."""
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
        if self._available_margin() < 0:
            self.ledger.leverage[coin] = previous
            raise ConnectorError("PerpMargin", f"Insufficient margin to update leverage to {leverage}x on {coin}.")

    async def arm_dead_man(self, seconds: float | None) -> DeadManStatus:
        """As Hyperliquid: at least 5 s ahead, and at most `DEAD_MAN_DAILY_FIRES` fires a UTC day
        (after that it is refused until midnight UTC). None clears it."""
        self.poll()
        if not seconds:
            self._dead_man_at, self._dead_man_reason = None, "cleared"
        elif seconds < 5:
            self._dead_man_reason = "refused: the time must be at least 5 seconds ahead"
        elif self._fires_today() >= DEAD_MAN_DAILY_FIRES:
            self._dead_man_at = None
            self._dead_man_reason = f"refused: it already fired {DEAD_MAN_DAILY_FIRES} times today (UTC)"
        else:
            self._dead_man_at, self._dead_man_reason = self.clock.now() + seconds, None
        return self.dead_man

    @property
    def dead_man(self) -> DeadManStatus:
        armed = self._dead_man_at is not None
        return DeadManStatus(armed, self._dead_man_at, None if armed else self._dead_man_reason, self._fires_today())

    agent_expires_at = None  # the paper account trades with no key that could expire

    def _fires_today(self) -> int:
        midnight = self.clock.now() // 86_400 * 86_400
        return sum(1 for at in self._dead_man_fires if at >= midnight)

    # ---- reading (tests, replay, the info answers) ----------------------------------------

    def open_orders(self) -> tuple[OpenOrder, ...]:
        """Resting limit orders (time priority), then trigger orders (with `trigger_px`/`tpsl`;
        a positionTpsl one sized to the position now), as `snapshot()` lists them."""
        return tuple(
            OpenOrder(r.oid, r.request.coin, r.request.side, float(r.remaining), float(r.request.limit_px),
                      r.request.reduce_only, r.request.client_id)
            for r in self._resting.values()
        ) + tuple(
            OpenOrder(t.oid, t.request.coin, t.request.side, self._trigger_size(t), float(t.request.limit_px),
                      True, t.request.client_id, t.px, t.request.trigger.tpsl)  # type: ignore[union-attr]
            for t in self._triggers.values()
        )

    def available_margin(self) -> float:
        """Account value − initial margin of positions and of resting orders that add risk (USD):
        what a new order can use (may be negative after a loss)."""
        return self._available_margin()

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
            self.history.record(event)
        if self.faults.drop_feed:
            self.faults.dropped_events += 1
            return
        for handler in list(self._handlers):
            handler(event)

    def _available_margin(self) -> float:
        """Account value − initial margin of positions and of resting orders that add risk (USD)."""
        orders = sum(float(r.remaining * r.request.limit_px) / self.ledger.leverage[r.request.coin]
                     for r in self._resting.values() if not r.request.reduce_only)
        return self.ledger.account_value() - self.ledger.position_margin() - orders

    def _execute_group(self, oids: list[str], orders: list[OrderRequest], grouping: Grouping) -> list[OrderAck]:
        """The orders of one action, processed now (see `place_group`)."""
        if not orders:
            return []
        if grouping == "na":
            return [self._execute_trigger(oid, o) if o.trigger is not None else self._execute(oid, o)
                    for oid, o in zip(oids, orders)]
        self._group += 1
        group = self._group
        if grouping == "positionTpsl":
            return [self._reject(oid, o, "InvalidGrouping", "A positionTpsl group holds trigger orders only.")
                    if o.trigger is None else self._execute_trigger(oid, o, position_tpsl=True, group=group)
                    for oid, o in zip(oids, orders)]
        entry_oid, entry = oids[0], orders[0]
        if entry.trigger is not None:
            ack = self._reject(entry_oid, entry, "InvalidGrouping",
                               "The first order of a normalTpsl group is its entry, not a trigger order.")
        else:
            ack = self._execute(entry_oid, entry)
        acks = [ack]
        for oid, child in zip(oids[1:], orders[1:]):
            if not ack.ok:
                acks.append(self._reject(oid, child, "EntryRejected", f"Its entry order was rejected ({ack.code}): "
                                                                      f"the TP/SL is not placed."))
            elif child.trigger is None:
                acks.append(self._reject(oid, child, "InvalidGrouping",
                                         "The orders after a normalTpsl entry are its trigger children."))
            elif ack.filled_size > 0:  # the entry filled on arrival: the children rest at once
                acks.append(self._execute_trigger(oid, child, group=group))
            elif ack.status == "resting":
                acks.append(self._execute_trigger(oid, child, group=group, entry=(entry_oid, entry.side)))
            else:  # the entry ended unfilled on arrival
                acks.append(self._reject(oid, child, "EntryRejected", ENTRY_UNFILLED))
        return acks

    def _reject(self, oid: str, order: OrderRequest, code: str, message: str) -> OrderAck:
        self.history.placing(oid, order, self.clock.now())
        self._emit(OrderRejected(oid, order.client_id, order.coin, code, message, self.clock.now()))
        return OrderAck(oid, order.client_id, "rejected", remaining=float(order.size), code=code, error=message)

    def _execute_trigger(self, oid: str, order: OrderRequest, *, position_tpsl: bool = False, group: int | None = None,
                         entry: tuple[str, str] | None = None) -> OrderAck:
        """Place one trigger order: it rests (`resting`). `entry` (oid, side): a normalTpsl
        child waiting for that resting entry's first fill."""
        self.history.placing(oid, order, self.clock.now(), position_tpsl=position_tpsl,
                             parent=entry[0] if entry else None)
        check = self._refusal(order, position_tpsl=position_tpsl, entry_side=entry[1] if entry else None)
        if check.code is not None:
            return self._reject(oid, order, check.code, check.message)
        if order.client_id is not None:
            self._client_ids[order.client_id] = oid
        trigger = order.trigger
        assert trigger is not None
        falling = (order.side == "sell") == (trigger.tpsl == "sl")
        self._triggers[oid] = _Trigger(oid, order, float(trigger.trigger_px), falling, position_tpsl, group,
                                       waiting=entry is not None)
        if entry is not None:
            self._children.setdefault(entry[0], []).append(oid)
        self._emit(OrderAccepted(oid, order.coin, order.side, float(order.size), float(order.limit_px), order.tif,
                                 True, order.client_id, self.clock.now()))
        return OrderAck(oid, order.client_id, "resting", remaining=float(order.size))

    def _execute(self, oid: str, order: OrderRequest) -> OrderAck:
        now = self.clock.now()
        self.history.placing(oid, order, now)
        check = self._refusal(order)
        if check.code is not None:
            return self._reject(oid, order, check.code, check.message)
        if order.client_id is not None:
            self._client_ids[order.client_id] = oid
        remaining = check.size
        self._emit(OrderAccepted(oid, order.coin, order.side, float(remaining), float(order.limit_px),
                                 order.tif, order.reduce_only, order.client_id, now))
        filled = Decimal(0)
        if check.taker_px is not None:
            filled = self._match_size(order.coin, remaining)
            remaining -= filled
            self._fill(oid, order, filled, check.taker_px, remaining, maker=False)
        avg_px = check.taker_px if filled else None
        if remaining == 0:
            status = "filled"
        elif order.tif == "Ioc":
            status = "partially_filled"
            self._emit(OrderCancelled(oid, order.coin, "IOC remainder cancelled (no more liquidity at the limit)",
                                      now, order.client_id))
        else:
            status = "resting"
            self._resting[oid] = _Resting(oid, order, remaining)
        self._check_liquidation()
        return OrderAck(oid, order.client_id, status, float(filled), avg_px, float(remaining) if status == "resting" else 0.0)

    def _refusal(self, order: OrderRequest, *, position_tpsl: bool = False, entry_side: str | None = None) -> OrderCheck:
        info = self.markets.get(order.coin)
        if info is None:
            return OrderCheck.refused("UnknownAsset", f"Unknown asset {order.coin}.")
        rejection = self.faults.take_rejection()
        if rejection is not None:
            return OrderCheck.refused(*rejection)
        if order.client_id is not None and order.client_id in self._client_ids:
            return OrderCheck.refused("DuplicateCloid", f"Order with client_id {order.client_id} was already placed "
                                                        f"(oid {self._client_ids[order.client_id]}).")
        if order.trigger is not None:
            return check_trigger_request(order, info, self.ledger, position_tpsl=position_tpsl, entry_side=entry_side)
        return check_order_request(order, info, self.ledger, self.slippage, self._available_margin())

    def _match_size(self, coin: str, remaining: Decimal) -> Decimal:
        """How much of `remaining` one match fills: all of it, or the partial-fill ratio
        (rounded down to the lot, at least one lot)."""
        if self.partial_fill_ratio is None:
            return remaining
        lot = Decimal(1).scaleb(-self.markets[coin].sz_decimals)
        part = round_size(remaining * Decimal(repr(self.partial_fill_ratio)), self.markets[coin].sz_decimals)
        return min(remaining, max(part, lot))

    def _fill(self, oid: str, order: OrderRequest, size: Decimal, px: float, remaining: Decimal, maker: bool) -> None:
        fee = float(size) * px * (self.maker_fee if maker else self.taker_fee)
        realized = self.ledger.fill(order.coin, order.sign * size, px, fee)
        self._emit(OrderFilled(oid, order.coin, order.side, float(size), px, fee, realized, float(remaining),
                               self.clock.now(), order.client_id, maker))
        children = self._children.pop(oid, None)
        if children:  # a normalTpsl entry's first fill: its children rest from now on
            for child in children:
                trigger = self._triggers.get(child)
                if trigger is not None:
                    trigger.waiting = False
        if self._triggers:
            self._drop_orphan_triggers(order.coin)

    def _drop_orphan_triggers(self, coin: str) -> None:
        """A trigger never opens nor flips a position: once the position it would close is gone
        (closed, or flipped to its own side), it is cancelled (reduce only)."""
        position = self.ledger.size(coin)
        for t in [t for t in self._triggers.values() if t.request.coin == coin and not t.waiting]:
            if position == 0 or (position > 0) == (t.request.side == "buy"):
                self._cancel_trigger(t, REDUCE_ONLY_CANCELED)

    def _trigger_size(self, t: _Trigger) -> float:
        """What the trigger would close now (base units): the whole position for a positionTpsl
        one, its placed size otherwise."""
        return abs(float(self.ledger.size(t.request.coin))) if t.position_tpsl else float(t.request.size)

    def _fire_triggers(self, coin: str, mark: float) -> None:
        """The trigger orders this mark fires, in placement order (one firing may cancel another)."""
        fired = [t for t in self._triggers.values()
                 if t.request.coin == coin and not t.waiting and (mark <= t.px if t.falling else mark >= t.px)]
        for t in fired:
            if t.oid in self._triggers:
                self._fire(t, mark)

    def _fire(self, t: _Trigger, mark: float) -> None:
        """One trigger fired at `mark`: its siblings are cancelled, then it executes reduce-only,
        sized to the position now: a market one fills at mark ± slippage (taker), a limit one at
        its limit when marketable, else it rests as a plain reduce-only limit."""
        del self._triggers[t.oid]
        order, coin, now = t.request, t.request.coin, self.clock.now()
        trigger = order.trigger
        assert trigger is not None
        self._emit(OrderTriggered(t.oid, coin, order.side, t.px, mark, order.client_id, now, trigger.tpsl))
        if t.group is not None:
            for sibling in [s for s in self._triggers.values() if s.group == t.group]:
                self._cancel_trigger(sibling, SIBLING_CANCELED)
        position = self.ledger.size(coin)
        buy = order.side == "buy"
        if position == 0 or (position > 0) == buy:
            self._emit(OrderCancelled(t.oid, coin, REDUCE_ONLY_CANCELED, now, order.client_id))
            return
        size = abs(position) if t.position_tpsl else min(order.size, abs(position))
        plain = OrderRequest(coin, order.side, size, order.limit_px, "Ioc" if trigger.is_market else "Gtc", True,
                             order.client_id)
        if trigger.is_market:
            px: float | None = mark * (1 + self.slippage) if buy else mark * (1 - self.slippage)
        else:
            limit = float(order.limit_px)
            crosses = limit >= mark if buy else limit <= mark
            px = None if not crosses else min(limit, mark * (1 + self.slippage)) if buy else max(limit, mark * (1 - self.slippage))
        if px is None:
            self._resting[t.oid] = _Resting(t.oid, plain, size)  # a limit stop below the market rests
            return
        filled = self._match_size(coin, size)
        remaining = size - filled
        if remaining > 0 and not trigger.is_market:
            self._resting[t.oid] = _Resting(t.oid, plain, remaining)
        self._fill(t.oid, plain, filled, px, remaining, maker=False)
        if remaining > 0 and trigger.is_market:
            self._emit(OrderCancelled(t.oid, coin, "IOC remainder cancelled (no more liquidity at the limit)",
                                      now, order.client_id))
        if not self.ledger.holdings and self.ledger.cash < 0:
            self.ledger.cash = 0.0  # a stop filled past the equity (a gap): the venue absorbs the deficit

    def _cancel_trigger(self, t: _Trigger, reason: str) -> None:
        self._triggers.pop(t.oid, None)
        if t.waiting:
            for entry, children in list(self._children.items()):
                if t.oid in children:
                    children.remove(t.oid)
                    if not children:
                        del self._children[entry]
        self._emit(OrderCancelled(t.oid, t.request.coin, reason, self.clock.now(), t.request.client_id))

    def _fill_resting(self, coin: str, mark: float) -> None:
        """Resting orders the mark crosses fill at their own limit (the price walked through them)."""
        for resting in [r for r in self._resting.values() if r.request.coin == coin]:
            order = resting.request
            limit = float(order.limit_px)
            if (order.side == "buy" and mark > limit) or (order.side == "sell" and mark < limit):
                continue
            size = self._match_size(coin, resting.remaining)
            if order.reduce_only:
                position = self.ledger.size(coin)
                if position == 0 or (position > 0) == (order.sign > 0):
                    self._cancel(resting, "Reduce only order would increase position.")
                    continue
                size = min(size, abs(position))
            resting.remaining -= size
            if resting.remaining == 0:
                del self._resting[resting.oid]
            self._fill(resting.oid, order, size, limit, resting.remaining, maker=True)
            if order.reduce_only and resting.remaining > 0 and self.ledger.size(coin) == 0:
                self._cancel(resting, "Reduce only order would increase position (position closed).")

    def _cancel(self, resting: _Resting, reason: str) -> None:
        self._resting.pop(resting.oid, None)
        self._emit(OrderCancelled(resting.oid, resting.request.coin, reason, self.clock.now(), resting.request.client_id))
        children = self._children.pop(resting.oid, None)
        if children:  # a normalTpsl entry that ends unfilled takes its waiting children with it
            for child in children:
                trigger = self._triggers.get(child)
                if trigger is not None:
                    trigger.waiting = False  # (no longer listed under the entry)
                    self._cancel_trigger(trigger, ENTRY_UNFILLED)

    def _cancel_resting(self, reason: str) -> int:
        """Cancel every resting order, trigger orders first (so each says `reason`)."""
        triggers, orders = list(self._triggers.values()), list(self._resting.values())
        self._children.clear()
        for trigger in triggers:
            self._cancel_trigger(trigger, reason)
        for resting in orders:
            self._cancel(resting, reason)
        return len(triggers) + len(orders)

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
        self._cancel_resting("liquidation")
        closures = self.ledger.close_all_at_mark()
        now, value = self.clock.now(), self.ledger.account_value()
        for c in closures:
            self._emit(Liquidated(c.coin, float(c.size), c.px, -c.realized_pnl, now, value))
