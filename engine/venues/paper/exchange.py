"""`PaperExchange`: an in-process venue implementing `engine.venues.connector.Connector` with
Hyperliquid's rules (SPEC sections 7 and 8).

Single-threaded and clock-driven: nothing happens on its own. The market feed calls
`set_mark(coin, px)`; the engine loop calls `poll()` now and then (every second is plenty) so
time-driven things happen even when no mark arrives: hourly funding, delayed orders landing,
the dead-man switch, stale-feed detection. With a `ManualClock` a test moves time and calls
`poll()` (or `set_mark`) to step the venue.

On each mark: account value moves; resting orders the mark crosses fill at their limit
(maker fee); the account is liquidated if account value < maintenance margin.

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

from engine.domain.clock import Clock, SystemClock
from engine.venues.connector import (
    DEAD_MAN_DAILY_FIRES, AccountMode, CancelAck, ConnectorError, DeadManStatus, EventHandler, FeedRestored, FeedStale, Liquidated,
    MarkUpdated, OrderAccepted, OrderAck, OrderCancelled, OrderFilled, OrderRejected,
    OrderRequest, VenueEvent, VenueSnapshot,
)
from engine.domain.increments import round_size
from engine.domain.model import Account, MarginMode, MarketInfo, OpenOrder, Position
from engine.venues.paper.ledger import DEFAULT_LEVERAGE, Ledger
from engine.venues.paper.faults import Faults
from engine.venues.paper.funding import HourlyFunding
from engine.venues.paper.rules import OrderCheck, check_order_request

TAKER_FEE = 0.00045  # Hyperliquid base tier, fraction of notional
MAKER_FEE = 0.00015
SLIPPAGE = 0.0005  # taker fills at mark ± 5 bp (never worse than the limit)
STALE_AFTER_SECONDS = 10.0

MISSING_ORDER = "Order was never placed, already canceled, or filled."


@dataclass(slots=True)
class _Resting:
    oid: str
    request: OrderRequest
    remaining: Decimal  # base units still live


@dataclass(frozen=True, slots=True)
class _InFlight:
    due: float
    oid: str
    request: OrderRequest


class PaperExchange:
    """See the module docstring. Prices USD, sizes base units, fees fractions of notional."""

    def __init__(self, markets: dict[str, MarketInfo], equity: float = 100_000.0, clock: Clock | None = None, *,
                 taker_fee: float = TAKER_FEE, maker_fee: float = MAKER_FEE, slippage: float = SLIPPAGE,
                 partial_fill_ratio: float | None = None, stale_after: float = STALE_AFTER_SECONDS,
                 default_leverage: int = DEFAULT_LEVERAGE, account_mode: AccountMode = "standard") -> None:
        for coin, info in markets.items():
            if info.sz_decimals is None:
                raise ValueError(f"market {coin} needs sz_decimals")
        if partial_fill_ratio is not None and not 0 < partial_fill_ratio <= 1:
            raise ValueError("partial_fill_ratio must be within (0, 1]")
        if account_mode not in ("standard", "unified", "portfolio"):
            raise ValueError(f"account_mode must be standard, unified or portfolio, not {account_mode!r}")
        self.markets = dict(markets)
        self.account_mode: AccountMode = account_mode
        self.clock = clock or SystemClock()
        self.ledger = Ledger(self.markets, equity, default_leverage)
        self.taker_fee, self.maker_fee, self.slippage = taker_fee, maker_fee, slippage
        self.partial_fill_ratio = partial_fill_ratio
        self.stale_after = stale_after
        self.mark_times: dict[str, float] = {}
        self._resting: dict[str, _Resting] = {}  # insertion order = time priority
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
        if self._stale:
            self._stale = False
            self._emit(FeedRestored(now))
        self._emit(MarkUpdated(coin, float(px), now))
        self._fill_resting(coin, float(px))
        self._check_liquidation()
        return True

    def quiet_until(self) -> float:
        """Until when (epoch s) nothing but the mark can change this account: no resting or
        in-flight order, no dead-man deadline, no funding payment, no fault switch on. The replay's
        fast path skips marks only inside this window."""
        now = self.clock.now()
        if self._resting or self._in_flight or self.faults.freeze_marks or self.faults.drop_feed:
            return now
        until = float("inf")
        if any(self.funding.capped_rates().values()):
            until = self.funding.next_hour()
        if self._dead_man_at is not None:
            until = min(until, self._dead_man_at)
        return until

    def glide_mark(self, coin: str, px: float) -> None:
        """Move the mark to `px` at `clock.now()` without a `MarkUpdated` event: for a replay that
        has proved no mark in between could fill, fund, liquidate or trip a rule (`quiet_until`).
        Liquidation is still checked, as a net under that proof."""
        now = self.clock.now()
        self.ledger.marks[coin] = float(px)
        self.mark_times[coin] = self._last_mark_at = now
        self.poll()
        self._check_liquidation()

    def poll(self) -> None:
        """Do what is due at `clock.now()`: delayed orders, dead-man switch, funding, staleness."""
        now = self.clock.now()
        while self._in_flight and self._in_flight[0].due <= now:
            flight = self._in_flight.pop(0)
            self._execute(flight.oid, flight.request)
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
        orders = tuple(
            OpenOrder(r.oid, r.request.coin, r.request.side, float(r.remaining), float(r.request.limit_px),
                      r.request.reduce_only, r.request.client_id)
            for r in self._resting.values()
        )
        account = Account(value, value, max(0.0, self._available_margin()), now)
        rates = self.funding.capped_rates()
        return VenueSnapshot(account, positions, orders, dict(ledger.marks), now, rates, dict(self.mark_times),
                             account_mode=self.account_mode)

    async def place(self, order: OrderRequest) -> OrderAck:
        self.poll()
        oid = str(self._next_oid)
        self._next_oid += 1
        if self.faults.order_delay > 0:
            self._in_flight.append(_InFlight(self.clock.now() + self.faults.order_delay, oid, order))
            self._in_flight.sort(key=lambda f: f.due)
            return OrderAck(oid, order.client_id, "pending", remaining=float(order.size))
        return self._execute(oid, order)

    async def cancel(self, coin: str, oid: str) -> CancelAck:
        self.poll()
        for flight in self._in_flight:
            if flight.oid == oid:
                self._in_flight.remove(flight)
                self._emit(OrderCancelled(oid, flight.request.coin, "cancelled before it reached the venue",
                                          self.clock.now(), flight.request.client_id))
                return CancelAck(oid, True)
        resting = self._resting.get(oid)
        if resting is None or resting.request.coin != coin:
            return CancelAck(oid, False, MISSING_ORDER)
        self._cancel(resting, "cancelled")
        return CancelAck(oid, True)

    async def cancel_all(self) -> int:
        """Cancel every resting order. Orders still in flight (`delay_orders`) land later, as
        they would on a real venue."""
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

    # ---- reading (tests, replay) ---------------------------------------------------------

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

    def _execute(self, oid: str, order: OrderRequest) -> OrderAck:
        now = self.clock.now()
        check = self._refusal(order)
        if check.code is not None:
            self._emit(OrderRejected(oid, order.client_id, order.coin, check.code, check.message, now))
            return OrderAck(oid, order.client_id, "rejected", remaining=float(order.size),
                            code=check.code, error=check.message)
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

    def _refusal(self, order: OrderRequest) -> OrderCheck:
        info = self.markets.get(order.coin)
        if info is None:
            return OrderCheck.refused("UnknownAsset", f"Unknown asset {order.coin}.")
        rejection = self.faults.take_rejection()
        if rejection is not None:
            return OrderCheck.refused(*rejection)
        if order.client_id is not None and order.client_id in self._client_ids:
            return OrderCheck.refused("DuplicateCloid", f"Order with client_id {order.client_id} was already placed "
                                                        f"(oid {self._client_ids[order.client_id]}).")
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

    def _cancel_resting(self, reason: str) -> int:
        orders = list(self._resting.values())
        for resting in orders:
            self._cancel(resting, reason)
        return len(orders)

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
