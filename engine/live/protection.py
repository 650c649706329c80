"""The engine's protection (SPEC section 6), a part the Engine owns: after every update the
breakers and the margin buffer are recomputed and acted on.

- Loss limits and drawdown stop trading (REDUCE_ONLY with their cause and when it lifts).
- buffer < warnBuffer: REDUCE_ONLY, cancel resting orders that add exposure, and send ONE
  reduce-only order toward targetBuffer, waiting for its lifecycle result before the next.
- buffer < panicBuffer: panic exit (cancel all, flatten with reduce-only IOCs from the live
  size, re-read, repeat), then HALTED (latched). The kill switch is the same, HALTED first.
- De-risk and panic act on fresh marks only; the kill switch always acts.

Everything it needs comes through its constructor: the Book and counters it reads, the trading
state it moves, the executor and connector it acts through, the event log it reports to, the
engine's task set, and two calls back into the engine (`resync`: re-read the venue;
`on_halted`: cancel held risk when trading goes HALTED).
"""

from __future__ import annotations

import asyncio

import logging
from typing import Awaitable, Callable

from engine.domain.clock import Clock
from engine.domain.events import EventKind
from engine.domain.model import TradingState, TradingStateChanged
from engine.live.event_log import EventLog
from engine.live.execution import Executor
from engine.live.tasks import Tasks
from engine.risk.book import Book
from engine.risk.counters import RiskCounters
from engine.risk.derisk import ReduceOrder, flatten_orders, reduction_to_target
from engine.risk.policies import Policy
from engine.risk.policies.buffer import MinMarginBuffer
from engine.risk.policies.losses import LossLimit, MaxDrawdown
from engine.risk.policies.market_data import StaleData
from engine.risk.trading_state import LATCHED, TradingStateMachine
from engine.venues import connector as venue

log = logging.getLogger("perpguard.engine")

PANIC_ATTEMPTS = 20  # a thin book may fill only part of each IOC: keep taking the remainder
REMAINDER_ORDERS = 10  # de-risk: orders after a partial fill, for the remainder, before re-checking
REFILL_SECONDS = 0.25  # after an exit that filled nothing on a book it emptied, before the next
PANIC_SLIPPAGE = 0.05  # panic exits accept up to 5% from mark: getting out beats the price
DEFAULT_MAX_MARK_AGE = 10.0


class Protection:
    """Breakers, de-risk, panic exit, kill and resume."""

    def __init__(self, book: Book, counters: RiskCounters, trading: TradingStateMachine, executor: Executor,
                 connector: venue.Connector, clock: Clock, events: EventLog, tasks: Tasks,
                 resync: Callable[[], Awaitable[None]], on_halted: Callable[[str], None]) -> None:
        self.book, self.counters, self.trading = book, counters, trading
        self.executor, self.connector, self.clock = executor, connector, clock
        self.events, self.tasks = events, tasks
        self._resync, self._on_halted = resync, on_halted
        self.reducing = False  # a de-risk order is in flight: wait for its result
        self.panicking = False
        self._reported_stale = False
        self.configure([])

    def configure(self, policies: list[Policy]) -> None:
        """Take the thresholds from the policies in force."""
        active = [p for p in policies if p.enabled]
        self.buffer_rules = next((p.rules for p in active if isinstance(p, MinMarginBuffer)), None)
        self.loss_limits = [p for p in active if isinstance(p, LossLimit)]
        self.drawdowns = [p for p in active if isinstance(p, MaxDrawdown)]
        stale = [p.rules.maxMarkAgeSeconds for p in active if isinstance(p, StaleData)]
        self.max_mark_age = min(stale) if stale else DEFAULT_MAX_MARK_AGE

    @property
    def busy(self) -> bool:
        """A de-risk order or a panic exit is in flight."""
        return self.reducing or self.panicking

    def after_update(self, now: float) -> None:
        """Recompute the buffer and the breakers after any update; act on what they say."""
        book, trading = self.book, self.trading
        equity = book.equity
        if equity is None:
            return
        self.counters.on_equity(equity, now)
        self.record(trading.tick(now))
        if trading.state is TradingState.HALTED or self.panicking:
            return
        for policy in self.drawdowns:
            dd = policy.drawdown(equity, self.counters.peak_equity)
            if policy.breached(dd):
                if policy.rules.action == "PANIC":
                    return self._start_panic(f"drawdown {dd:.1%} reached MAX_DRAWDOWN")
                self._stop("max_drawdown", now, LATCHED, f"drawdown {dd:.1%} reached MAX_DRAWDOWN {policy.rules.maxDrawdown:.0%}")
        for policy in self.loss_limits:
            breach = policy.breach(equity, self.counters)
            if breach is not None and breach.reached and breach.cause not in trading.causes:
                period = breach.period
                until = {"daily": self.counters.next_day(now), "weekly": self.counters.next_week(now)}.get(period, LATCHED)
                self._stop(breach.cause, now, until, f"{period} loss {breach.loss:,.0f} USD reached LOSS_LIMIT {breach.limit:,.0f} USD")
        rules = self.buffer_rules
        buffer = book.margin_buffer
        if rules is None or buffer is None:
            return
        if buffer < rules.warnBuffer and not self._fresh(now):
            if not self._reported_stale:
                self._reported_stale = True
                self.events.emit(EventKind.DERISK_SKIPPED, f"buffer {buffer:.1%} is below warn, but marks are older than "
                          f"{self.max_mark_age:g} s: de-risk acts on fresh data only", buffer=buffer)
            return
        self._reported_stale = False
        if buffer < rules.panicBuffer:
            return self._start_panic(f"margin buffer {buffer:.1%} below panic {rules.panicBuffer:.0%}")
        if buffer < rules.warnBuffer:
            if "margin_buffer" not in trading.causes:
                self._stop("margin_buffer", now, None, f"margin buffer {buffer:.1%} below warn {rules.warnBuffer:.0%}")
                self.tasks.spawn(self._cancel_risk_adding_orders())
            if not self.reducing:
                self.reducing = True
                self.tasks.spawn(self._reduce_once(buffer))
        elif buffer > rules.warnBuffer + rules.hysteresis and "margin_buffer" in trading.causes:
            self.record(trading.lift("margin_buffer", now))

    def _fresh(self, now: float) -> bool:
        """Every open position's mark is recent enough to act on."""
        times = self.book.mark_times
        return all(now - times.get(p.coin, float("-inf")) <= self.max_mark_age for p in self.book.positions())

    def _stop(self, cause: str, now: float, until: float | None, why: str) -> None:
        """Add a REDUCE_ONLY cause ("stop trading"), once, and say so."""
        if cause in self.trading.causes:
            return
        self.record(self.trading.reduce_only(cause, now, until))
        self.events.emit(EventKind.BREAKER_TRIPPED, f"STOP TRADING: {why}", cause=cause, until=until)

    def record(self, change: TradingStateChanged | None) -> None:
        """Say that the trading state moved (and cancel held risk when it moved to HALTED)."""
        if change is None:
            return
        if change.state is TradingState.HALTED:
            self._on_halted(change.cause)
        self.events.emit(EventKind.STATE_CHANGED, f"trading {change.previous.value} -> {change.state.value}: {change.cause}",
                  previous=change.previous.value, state=change.state.value, cause=change.cause)

    async def _cancel_risk_adding_orders(self) -> None:
        for order in list(self.book.open_orders.values()):
            position = self.book.position(order.coin)
            size = position.size if position else 0.0
            adds = not order.reduce_only and (size == 0 or (size > 0) == (order.side == "buy"))
            if adds:
                await self.connector.cancel(order.coin, order.oid)
                self.events.emit(EventKind.ORDER_CANCELLED, f"cancelled resting {order.side} {order.size:g} {order.coin}: it would add exposure",
                          coin=order.coin, oid=order.oid)

    async def _reduce_once(self, buffer: float) -> None:
        """One reducing order toward targetBuffer; waits for its result, then re-checks. An order
        the book filled only in part is followed by one for the remainder (sized again from the
        live position, one at a time) while the buffer is short of the target."""
        try:
            rules, remainder = self.buffer_rules, False
            for _ in range(REMAINDER_ORDERS + 1):
                order = reduction_to_target(self.book, rules.targetBuffer, self.executor.slippage)
                if order is None:
                    return
                self.events.emit(EventKind.DERISK_ORDERED, f"DE-RISK: buffer {buffer:.1%} < target "
                          f"{rules.targetBuffer:.0%} (warn {rules.warnBuffer:.0%}): reduce-only "
                          f"{order.side} {order.size} {order.coin} @ {order.limit_px} toward {rules.targetBuffer:.0%}",
                          coin=order.coin, side=order.side, size=float(order.size), buffer=buffer)
                ack = await self._send_reduce(order, "derisk")
                buffer = self.book.margin_buffer
                if ack.filled_size >= float(order.size) or buffer is None or buffer >= rules.targetBuffer or self.panicking:
                    return
                if ack.filled_size == 0:
                    if not remainder:
                        return  # nothing fills now: the next update below warn tries again
                    await asyncio.sleep(REFILL_SECONDS)  # the book gave what it had: let makers refill it
                remainder = True
        finally:
            self.reducing = False
        if self.book.margin_buffer is not None:
            self.after_update(self.clock.now())

    async def _send_reduce(self, order: ReduceOrder, purpose: str) -> venue.OrderAck:
        placed = await self.executor.place_reduce(order)
        ack = placed.ack
        filled = ack.filled_size
        kind = EventKind.REDUCE_FILLED if filled > 0 else EventKind.REDUCE_FAILED
        self.events.emit(kind, f"{purpose}: {order.side} {order.coin} {ack.status}, filled {filled:g} of {order.size}"
                         + (f" ({ack.error})" if ack.error else ""),
                         **placed.order_fields(), asked=float(order.size), purpose=purpose)
        await self._resync()
        return ack

    def _start_panic(self, cause: str) -> None:
        if not self.panicking:
            self.panicking = True
            self.tasks.spawn(self._panic_exit(cause, halt_first=False))

    async def _panic_exit(self, cause: str, halt_first: bool) -> None:
        """Cancel all, close every position with reduce-only IOCs from the live size, re-read,
        repeat until flat or attempts run out; then HALTED (latched) and alert."""
        self.panicking = True
        now = self.clock.now()
        try:
            if halt_first:
                self.record(self.trading.halt(cause, now))
            else:
                self.record(self.trading.reduce_only("panic_exit", now, LATCHED))
            self.events.emit(EventKind.PANIC_STARTED, f"PANIC EXIT: {cause}: cancelling all orders and closing every position", cause=cause)
            await self.connector.cancel_all()
            await self._resync()
            for attempt in range(1, PANIC_ATTEMPTS + 1):
                orders = flatten_orders(self.book, max(PANIC_SLIPPAGE, self.executor.slippage))
                if not orders:
                    break
                filled = 0.0
                for order in orders:
                    filled += (await self._send_reduce(order, f"panic attempt {attempt}")).filled_size
                if filled == 0:  # the book had nothing within the price cap: let makers refill it
                    await asyncio.sleep(REFILL_SECONDS)
            flat = not self.book.positions()
            self.record(self.trading.halt(cause, self.clock.now()))
            self.events.emit(EventKind.PANIC_DONE, f"panic exit {'complete: flat' if flat else 'INCOMPLETE: positions remain'}; trading HALTED",
                      flat=flat, positions=len(self.book.positions()))
        finally:
            self.panicking = False

    async def kill(self, cause: str = "kill switch") -> None:
        """Panic exit + HALTED, at once, whatever the buffer."""
        if self.panicking:
            self.record(self.trading.halt(cause, self.clock.now()))
            return
        await self._panic_exit(cause, halt_first=True)

    def resume(self) -> TradingStateChanged | None:
        """Lift HALTED and latched stops (the caller has checked the master password)."""
        change = self.trading.resume(self.clock.now())
        self.record(change)
        return change
