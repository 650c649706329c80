"""The engine's protection (SPEC section 6), a part the Engine owns: after every update the
breakers and the margin buffer are recomputed and acted on.

- Loss limits and drawdown stop trading (REDUCE_ONLY with their cause and when it lifts).
- buffer < warnBuffer: REDUCE_ONLY, cancel resting orders that add exposure, and send ONE
  reduce-only order toward targetBuffer, waiting for its lifecycle result before the next.
- buffer < panicBuffer: panic exit (cancel all, flatten with reduce-only IOCs from the live
  size, re-read, repeat), then HALTED (latched). The kill switch is the same, HALTED first.
- De-risk and panic act on fresh marks only; the kill switch always acts.
- A panic exit finishes (SPEC section 6): before it acts it records through the journal that the
  account is being flattened (`Flattening`: cause, since), and clears the record once flat. An
  exit that leaves positions open (attempts ran out, the venue refused or was unreachable)
  keeps trying in rounds, `RETRY_FIRST_SECONDS` apart, doubling to `RETRY_MAX_SECONDS`, each
  incomplete round told as a `panic_retry` event (a webhook), until the account is flat. An
  exit that a crash, `kill -9` or a restart interrupted resumes at start (`resume_flattening`,
  after the engine has reconciled): sized from the reconciled position, so a close that landed
  before the crash is not sent again.
- `resume` is refused while the account is being flattened (`FlatteningInProgress`): a kill
  switch that was pulled finishes. A trader who must stop it closes the positions on the venue;
  the next round sees the account flat, clears the record, and `resume` works again.

Everything it needs comes through its constructor: the Book and counters it reads, the trading
state it moves, the executor and connector it acts through, the event log it reports to, the
engine's task set, the journal that keeps the flattening record, and two calls back into the
engine (`resync`: re-read the venue; `on_halted`: cancel held risk when trading goes HALTED).
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
from engine.live.journal import Journal, NoJournal
from engine.live.tasks import Tasks
from engine.risk.book import Book
from engine.risk.counters import RiskCounters
from engine.risk.derisk import ReduceOrder, flatten_orders, reduction_to_target
from engine.risk.policies import Policy
from engine.risk.policies.buffer import MinMarginBuffer
from engine.risk.policies.losses import LossLimit, MaxDrawdown
from engine.risk.policies.market_data import StaleData
from engine.risk.trading_state import LATCHED, Flattening, TradingStateMachine
from engine.venues import connector as venue

log = logging.getLogger("perpguard.engine")

PANIC_ATTEMPTS = 20  # a thin book may fill only part of each IOC: keep taking the remainder
REMAINDER_ORDERS = 10  # de-risk: orders after a partial fill, for the remainder, before re-checking
REFILL_SECONDS = 0.25  # after an exit that filled nothing on a book it emptied, before the next
PANIC_SLIPPAGE = 0.05  # panic exits accept up to 5% from mark: getting out beats the price
DEFAULT_MAX_MARK_AGE = 10.0
RETRY_FIRST_SECONDS, RETRY_MAX_SECONDS = 2.0, 30.0  # an incomplete panic exit's rounds: 2, 4, 8, 16, 30, 30 ... s apart
RECORD_WAIT_SECONDS = 0.5  # a panic waits at most this long for its flattening record to be on disk, then acts
UNREACHABLE = frozenset({"VenueUnavailable", "RateLimited"})  # the venue did not take the order: wait for the next round


class FlatteningInProgress(Exception):
    """`resume` refused: a panic exit (the kill switch) is still flattening the account."""


class Protection:
    """Breakers, de-risk, panic exit, kill and resume."""

    def __init__(self, book: Book, counters: RiskCounters, trading: TradingStateMachine, executor: Executor,
                 connector: venue.Connector, clock: Clock, events: EventLog, tasks: Tasks,
                 resync: Callable[[], Awaitable[None]], on_halted: Callable[[str], None],
                 journal: Journal | None = None) -> None:
        self.book, self.counters, self.trading = book, counters, trading
        self.executor, self.connector, self.clock = executor, connector, clock
        self.events, self.tasks = events, tasks
        self.journal = journal or NoJournal()
        self._resync, self._on_halted = resync, on_halted
        self.reducing = False  # a de-risk order is in flight: wait for its result
        self.panicking = False  # a panic round is acting now
        # the account is being flattened (the durable record), the rounds so far in this process,
        # and when the next one starts (clock s; None while one runs)
        self.flattening: Flattening | None = None
        self.flatten_attempt = 0
        self.next_attempt_at: float | None = None
        self.retry_first, self.retry_max = RETRY_FIRST_SECONDS, RETRY_MAX_SECONDS
        self._retrying: asyncio.Task | None = None
        self._round_error: str | None = None
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
        """Record that the account is being flattened, then cancel all, close every position with
        reduce-only IOCs from the live size, re-read, repeat until flat or attempts run out; then
        HALTED (latched) and alert. Positions left open are retried in the background."""
        self.panicking = True
        now = self.clock.now()
        try:
            self._begin_flattening(cause, now)  # queued first: a crash after this resumes the exit
            if halt_first:
                self.record(self.trading.halt(cause, now))
            else:
                self.record(self.trading.reduce_only("panic_exit", now, LATCHED))
            self.events.emit(EventKind.PANIC_STARTED, f"PANIC EXIT: {cause}: cancelling all orders and closing every position", cause=cause)
            await self._record_durable()
            flat = await self._round()
            self.record(self.trading.halt(cause, self.clock.now()))
            self.events.emit(EventKind.PANIC_DONE, f"panic exit {'complete: flat' if flat else 'INCOMPLETE: positions remain'}; trading HALTED",
                      flat=flat, positions=len(self.book.positions()), attempt=self.flatten_attempt)
            if flat:
                self._end_flattening()
            else:
                self._retry_in_background()
        finally:
            self.panicking = False

    def _begin_flattening(self, cause: str, now: float) -> None:
        """The durable record, once per exit (a kill during an exit keeps the first one)."""
        if self.flattening is None:
            self.flattening = Flattening(cause, now)
            self.flatten_attempt = 0
            self.journal.flattening(self.flattening)

    async def _record_durable(self) -> None:
        """Let the record reach the disk before the venue is touched, for a bounded time: with
        the database locked the exit acts anyway (the record lands as soon as it answers)."""
        try:
            durable = await asyncio.wait_for(self.journal.durable(), RECORD_WAIT_SECONDS)
        except asyncio.TimeoutError:
            durable = False
        if not durable:
            log.error("the panic exit's flattening record is not on disk yet: acting anyway")

    def _end_flattening(self) -> None:
        self.flattening, self.next_attempt_at = None, None
        self.journal.flattening(None)

    async def _round(self) -> bool:
        """One round of the exit: cancel all, then close from the live position until flat or
        PANIC_ATTEMPTS are used (a venue that does not take the orders ends the round early).
        True when the venue's account, read again, is flat."""
        self.flatten_attempt += 1
        self.next_attempt_at = None
        self._round_error = None
        label = "panic" if self.flatten_attempt == 1 else f"panic round {self.flatten_attempt}"
        try:
            await self.connector.cancel_all()
            await self._resync()
            for attempt in range(1, PANIC_ATTEMPTS + 1):
                orders = flatten_orders(self.book, max(PANIC_SLIPPAGE, self.executor.slippage))
                if not orders:
                    break
                filled, unreachable = 0.0, False
                for order in orders:
                    ack = await self._send_reduce(order, f"{label} attempt {attempt}")
                    filled += ack.filled_size
                    if ack.code in UNREACHABLE:
                        unreachable, self._round_error = True, ack.error or ack.code
                if filled == 0 and unreachable:
                    break  # the venue is not taking orders: the next round, after a pause, tries again
                if filled == 0:  # the book had nothing within the price cap: let makers refill it
                    await asyncio.sleep(REFILL_SECONDS)
        except Exception as exc:  # the venue could not be read or reached: the account is not known flat
            log.warning("panic exit round %d failed: %r", self.flatten_attempt, exc)
            self._round_error = f"{exc.__class__.__name__}: {exc}"
            return False
        return not self.book.positions()

    def _retry_in_background(self) -> None:
        if self._retrying is None or self._retrying.done():
            self._retrying = self.tasks.spawn(self._retry_until_flat(), background=True)

    async def _retry_until_flat(self) -> None:
        """Rounds until the account is flat, `retry_first` seconds apart, doubling up to
        `retry_max`; every incomplete round alerts (`panic_retry`)."""
        delay = self.retry_first
        while self.flattening is not None:
            self.next_attempt_at = self.clock.now() + delay
            left = self.book.positions()
            why = f" ({self._round_error})" if self._round_error else ""
            self.events.emit(EventKind.PANIC_RETRY, f"FLATTENING: panic exit ({self.flattening.cause}) incomplete after "
                             f"attempt {self.flatten_attempt}{why}: {len(left)} positions remain; trying again in {delay:g} s",
                             cause=self.flattening.cause, attempt=self.flatten_attempt, positions=len(left),
                             next_attempt_at=self.next_attempt_at, error=self._round_error)
            await asyncio.sleep(delay)
            while self.panicking:  # a kill's own round is under way: let it end first
                await asyncio.sleep(REFILL_SECONDS)
            if self.flattening is None:
                return
            self.panicking = True
            try:
                flat = await self._round()
                if flat:
                    cause = self.flattening.cause
                    self._end_flattening()
                    self.record(self.trading.halt(cause, self.clock.now()))
                    self.events.emit(EventKind.PANIC_DONE, f"panic exit complete after {self.flatten_attempt} attempts: "
                                     f"flat; trading HALTED", flat=True, positions=0, attempt=self.flatten_attempt)
                    return
            finally:
                self.panicking = False
            delay = min(self.retry_max, delay * 2)

    def resume_flattening(self) -> None:
        """At start, once the engine has reconciled with the venue: an exit the last run left
        unfinished goes on (HALTED, sized from the reconciled position); an account found flat
        clears the record and stays HALTED (latched: only `resume` lifts it)."""
        record = self.journal.load_flattening()
        if record is None:
            return
        now = self.clock.now()
        self.flattening, self.flatten_attempt = record, 0
        if not self.book.positions():
            self._end_flattening()
            self.record(self.trading.halt(record.cause, now))
            self.events.emit(EventKind.PANIC_DONE, f"panic exit ({record.cause}) interrupted by a restart: the account "
                             f"is flat; trading stays HALTED", flat=True, positions=0, resumed=True, attempt=0)
            return
        if self.panicking:
            return  # a panic this start began (the reconciled buffer) carries the record on
        log.warning("resuming the panic exit interrupted by a restart (%s): %d positions open", record.cause,
                    len(self.book.positions()))
        self.panicking = True
        self.tasks.spawn(self._panic_exit(record.cause, halt_first=True))

    async def kill(self, cause: str = "kill switch") -> None:
        """Panic exit + HALTED, at once, whatever the buffer (an exit already under way goes on;
        one waiting for its next round gets a round now)."""
        if self.panicking:
            self.record(self.trading.halt(cause, self.clock.now()))
            return
        await self._panic_exit(cause, halt_first=True)

    def resume(self) -> TradingStateChanged | None:
        """Lift HALTED and latched stops (the caller has checked the master password). Refused
        (FlatteningInProgress) while a panic exit is still flattening the account."""
        if self.flattening is not None:
            raise FlatteningInProgress(
                f"the panic exit ({self.flattening.cause}) is still flattening the account: attempt "
                f"{self.flatten_attempt}, {len(self.book.positions())} positions open; resume is refused until it is flat "
                f"(close them on the venue to end it sooner)")
        change = self.trading.resume(self.clock.now())
        self.record(change)
        return change
