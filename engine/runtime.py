"""The live engine: one asyncio loop owns the Book, the counters, the trading state, the pending
queue and the de-risk lifecycle (single writer). Connectors post venue events to it; the API
and the console call its coroutines; everything else reads snapshots.

Order path: `submit` -> gate (pure, synchronous) -> forward now (INSTANT/NOTIFY), hold
(DELAY/APPROVAL), or deny. After every venue update the margin buffer and the breakers are
recomputed (`_after_update`), which may stop trading, send one reducing order, or panic.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Callable

from engine import connector as venue
from engine.book import Book
from engine.clock import Clock
from engine.counters import RiskCounters
from engine.derisk import ReduceOrder, flatten_orders, reduction_to_target
from engine.events import EngineEvent
from engine.execution import Executor, SubmitResult
from engine.gate import RiskGate
from engine.model import Decision, OrderIntent, Tier, TradingState
from engine.pending import PendingAction, PendingQueue, PendingStatus, PendingStore
from engine.policies import Policy
from engine.policies.buffer import MinMarginBuffer
from engine.policies.losses import LossLimit, MaxDrawdown
from engine.policies.market_data import StaleData
from engine.trading_state import LATCHED, TradingStateMachine

log = logging.getLogger("perpguard.engine")

ACCOUNT_REFRESH_SECONDS = 5.0  # re-read the venue's account this often (clock seconds)
PANIC_ATTEMPTS = 20  # a thin book may fill only part of each IOC: keep taking the remainder
PANIC_SLIPPAGE = 0.05  # panic exits accept up to 5% from mark: getting out beats the price
DEFAULT_MAX_MARK_AGE = 10.0


class Engine:
    def __init__(self, connector: venue.Connector, policies: list[Policy], clock: Clock,
                 pending_store: PendingStore | None = None, trading: TradingStateMachine | None = None) -> None:
        self.connector = connector
        self.clock = clock
        self.book = Book()
        self.counters = RiskCounters()
        self.trading = trading or TradingStateMachine()
        self.gate = RiskGate(policies, self.book, self.counters, clock, self.trading)
        self.pending = PendingQueue(pending_store)
        self.executor = Executor(connector, self.book, self.gate.slippage)
        self.recent: deque[EngineEvent] = deque(maxlen=2000)
        self.listeners: list[Callable[[EngineEvent], None]] = []
        self.liquidated = False
        self._results: dict[str, SubmitResult] = {}  # client_id -> first answer (idempotency)
        self._tasks: set[asyncio.Task] = set()
        self._reducing = False  # a de-risk order is in flight: wait for its result
        self._panicking = False
        self._resync_wanted = False
        self._reported_stale = False
        self._last_refresh = float("-inf")
        self._unsubscribe: Callable[[], None] | None = None
        self._configure(policies)

    def _configure(self, policies: list[Policy]) -> None:
        active = [p for p in policies if p.enabled]
        self.buffer_rules = next((p.rules for p in active if isinstance(p, MinMarginBuffer)), None)
        self.loss_limits = [p for p in active if isinstance(p, LossLimit)]
        self.drawdowns = [p for p in active if isinstance(p, MaxDrawdown)]
        stale = [p.rules.maxMarkAgeSeconds for p in active if isinstance(p, StaleData)]
        self.max_mark_age = min(stale) if stale else DEFAULT_MAX_MARK_AGE

    def set_policies(self, policies: list[Policy]) -> None:
        self.gate.set_policies(policies)
        self.executor.slippage = self.gate.slippage
        self._configure(policies)

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Read the venue (markets, account, positions, open orders) before accepting orders."""
        await self.connector.start()
        self.book.markets = await self.connector.meta()
        self._unsubscribe = self.connector.subscribe(self.on_venue_event)
        await self.resync()
        self.emit("engine_started", f"engine reconciled: {len(self.book.positions())} positions, "
                  f"{len(self.book.open_orders)} open orders, equity {self.book.equity:,.2f} USD")

    async def stop(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
        for task in list(self._tasks):
            task.cancel()
        await self.connector.stop()

    async def resync(self) -> None:
        """Reconcile the Book with the venue's own account, positions and open orders."""
        snap = await self.connector.snapshot()
        self.book.load(snap.account, snap.positions, snap.open_orders, marks=snap.marks, at=snap.time,
                       mark_times=snap.mark_times)
        for coin, rate in snap.funding_rates.items():
            self.book.set_funding(coin, rate)
        self._last_refresh = snap.time
        self._resync_wanted = False
        self._after_update(snap.time)

    async def settle(self) -> None:
        """Let every task the last events started run to its end (replays and tests)."""
        while self._tasks or self._resync_wanted:
            if self._resync_wanted:
                await self.resync()
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("engine task failed", exc_info=task.exception())
            self.emit("engine_error", f"internal error: {task.exception()!r}")

    def emit(self, kind: str, message: str, **data) -> EngineEvent:
        event = EngineEvent(kind, self.clock.now(), message, data)
        self.recent.append(event)
        for listener in self.listeners:
            listener(event)
        return event

    # ---- venue events --------------------------------------------------------------------

    def on_venue_event(self, event: venue.VenueEvent) -> None:
        """Called by the connector, in venue order, on the engine's loop."""
        if type(event) is venue.MarkUpdated:
            self.book.set_mark(event.coin, event.px, event.time)
            self.counters.on_mark(event.coin, event.px, event.time)
            self._after_update(event.time)
            return
        if isinstance(event, venue.OrderFilled):
            self._resync_wanted = True
            if event.realized_pnl:
                net = event.realized_pnl - event.fee
                self.counters.on_close(net, event.time)
                self.emit("position_closed", f"{event.coin} {event.side} {event.size:g} @ {event.px:g}: realized {net:+,.2f} USD",
                          coin=event.coin, pnl=net, losing_streak=self.counters.consecutive_losses)
        elif isinstance(event, (venue.FundingPaid, venue.OrderCancelled, venue.OrderRejected)):
            self._resync_wanted = True
        elif isinstance(event, venue.Liquidated):
            self.liquidated = True
            self._resync_wanted = True
            self.emit("liquidated", f"LIQUIDATED by the venue: {event.coin} {event.size:g} at {event.px:g}, loss {event.loss:,.2f} USD",
                      coin=event.coin, px=event.px, loss=event.loss)
        elif isinstance(event, venue.FeedStale):
            self.emit("feed_stale", f"market feed stale since {event.since:.0f}: new risk is denied", since=event.since)
        elif isinstance(event, venue.FeedRestored):
            self._resync_wanted = True
            self.emit("feed_restored", "market feed restored; reconciling with the venue")
        if self._resync_wanted and not self._reducing and not self._panicking:
            self._spawn(self.resync())

    # ---- breakers and de-risk ------------------------------------------------------------

    def _after_update(self, now: float) -> None:
        """Recompute the buffer and the breakers after any update; act on what they say."""
        book, trading = self.book, self.trading
        equity = book.equity
        if equity is None:
            return
        self.counters.on_equity(equity, now)
        self._record(trading.tick(now))
        if trading.state is TradingState.HALTED or self._panicking:
            return
        for policy in self.drawdowns:
            dd = policy.drawdown(equity, self.counters.peak_equity)
            if policy.breached(dd):
                if policy.rules.action == "PANIC":
                    return self._start_panic(f"drawdown {dd:.1%} reached MAX_DRAWDOWN")
                self._stop("max_drawdown", now, LATCHED, f"drawdown {dd:.1%} reached MAX_DRAWDOWN {policy.rules.maxDrawdown:.0%}")
        for policy in self.loss_limits:
            breach = policy.breach(equity, self.counters)
            if isinstance(breach, tuple):
                period = breach[0]
                until = {"daily": self.counters.next_day(now), "weekly": self.counters.next_week(now)}.get(period, LATCHED)
                self._stop(f"loss_limit:{period}", now, until, f"{period} loss {breach[2]:,.0f} USD reached LOSS_LIMIT {breach[1]:,.0f} USD")
        rules = self.buffer_rules
        buffer = book.margin_buffer
        if rules is None or buffer is None:
            return
        if buffer < rules.warnBuffer and not self._fresh(now):
            if not self._reported_stale:
                self._reported_stale = True
                self.emit("derisk_skipped", f"buffer {buffer:.1%} is below warn, but marks are older than "
                          f"{self.max_mark_age:g} s: de-risk acts on fresh data only", buffer=buffer)
            return
        self._reported_stale = False
        if buffer < rules.panicBuffer:
            return self._start_panic(f"margin buffer {buffer:.1%} below panic {rules.panicBuffer:.0%}")
        if buffer < rules.warnBuffer:
            if "margin_buffer" not in trading.causes:
                self._stop("margin_buffer", now, None, f"margin buffer {buffer:.1%} below warn {rules.warnBuffer:.0%}")
                self._spawn(self._cancel_risk_adding_orders())
            if not self._reducing:
                self._reducing = True
                self._spawn(self._reduce_once(buffer))
        elif buffer > rules.warnBuffer + rules.hysteresis and "margin_buffer" in trading.causes:
            self._record(trading.lift("margin_buffer", now))

    def _fresh(self, now: float) -> bool:
        """Every open position's mark is recent enough to act on."""
        times = self.book.mark_times
        return all(now - times.get(p.coin, float("-inf")) <= self.max_mark_age for p in self.book.positions())

    def _stop(self, cause: str, now: float, until: float | None, why: str) -> None:
        """Add a REDUCE_ONLY cause ("stop trading"), once, and say so."""
        if cause in self.trading.causes:
            return
        self._record(self.trading.reduce_only(cause, now, until))
        self.emit("breaker_tripped", f"STOP TRADING: {why}", cause=cause, until=until)

    def _record(self, change) -> None:
        if change is None:
            return
        if change.state is TradingState.HALTED:
            self._cancel_pending_risk(change.cause)
        self.emit("state_changed", f"trading {change.previous.value} -> {change.state.value}: {change.cause}",
                  previous=change.previous.value, state=change.state.value, cause=change.cause)

    async def _cancel_risk_adding_orders(self) -> None:
        for order in list(self.book.open_orders.values()):
            position = self.book.position(order.coin)
            size = position.size if position else 0.0
            adds = not order.reduce_only and (size == 0 or (size > 0) == (order.side == "buy"))
            if adds:
                await self.connector.cancel(order.coin, order.oid)
                self.emit("order_cancelled", f"cancelled resting {order.side} {order.size:g} {order.coin}: it would add exposure",
                          coin=order.coin, oid=order.oid)

    async def _reduce_once(self, buffer: float) -> None:
        """One reducing order toward targetBuffer; waits for its result, then re-checks."""
        try:
            rules = self.buffer_rules
            order = reduction_to_target(self.book, rules.targetBuffer, self.gate.slippage)
            if order is None:
                return
            self.emit("derisk_order", f"DE-RISK: buffer {buffer:.1%} < warn {rules.warnBuffer:.0%}: reduce-only "
                      f"{order.side} {order.size} {order.coin} @ {order.limit_px} toward {rules.targetBuffer:.0%}",
                      coin=order.coin, side=order.side, size=float(order.size), buffer=buffer)
            await self._send_reduce(order, "derisk")
        finally:
            self._reducing = False
        if self.book.margin_buffer is not None:
            self._after_update(self.clock.now())

    async def _send_reduce(self, order: ReduceOrder, purpose: str) -> venue.OrderAck:
        ack = await self.executor.place_reduce(order)
        filled = ack.filled_size
        kind = "reduce_filled" if filled > 0 else "reduce_failed"
        self.emit(kind, f"{purpose}: {order.side} {order.coin} {ack.status}, filled {filled:g} of {order.size}"
                  + (f" ({ack.error})" if ack.error else ""),
                  coin=order.coin, status=ack.status, filled=filled, asked=float(order.size), purpose=purpose)
        await self.resync()
        return ack

    def _start_panic(self, cause: str) -> None:
        if not self._panicking:
            self._panicking = True
            self._spawn(self._panic_exit(cause, halt_first=False))

    async def _panic_exit(self, cause: str, halt_first: bool) -> None:
        """Cancel all, close every position with reduce-only IOCs from the live size, re-read,
        repeat until flat or attempts run out; then HALTED (latched) and alert."""
        self._panicking = True
        now = self.clock.now()
        try:
            if halt_first:
                self._record(self.trading.halt(cause, now))
            else:
                self._record(self.trading.reduce_only("panic_exit", now, LATCHED))
            self.emit("panic_exit", f"PANIC EXIT: {cause}: cancelling all orders and closing every position", cause=cause)
            await self.connector.cancel_all()
            await self.resync()
            for attempt in range(1, PANIC_ATTEMPTS + 1):
                orders = flatten_orders(self.book, max(PANIC_SLIPPAGE, self.gate.slippage))
                if not orders:
                    break
                for order in orders:
                    await self._send_reduce(order, f"panic attempt {attempt}")
            flat = not self.book.positions()
            self._record(self.trading.halt(cause, self.clock.now()))
            self.emit("panic_done", f"panic exit {'complete: flat' if flat else 'INCOMPLETE: positions remain'}; trading HALTED",
                      flat=flat, positions=len(self.book.positions()))
        finally:
            self._panicking = False

    async def kill(self, cause: str = "kill switch") -> None:
        """Panic exit + HALTED, at once, whatever the buffer."""
        if self._panicking:
            self._record(self.trading.halt(cause, self.clock.now()))
            return
        await self._panic_exit(cause, halt_first=True)

    def resume(self) -> EngineEvent | None:
        """Lift HALTED and latched stops (the caller has checked the master password)."""
        change = self.trading.resume(self.clock.now())
        self._record(change)
        return self.recent[-1] if change else None

    # ---- orders --------------------------------------------------------------------------

    async def submit(self, intent: OrderIntent) -> SubmitResult:
        """The order path. The same client_id twice gives the same answer and one order."""
        if intent.client_id and intent.client_id in self._results and not intent.dry_run:
            return self._results[intent.client_id]
        decision = self.gate.evaluate(intent)
        if intent.dry_run:
            return SubmitResult("dry_run", decision)
        self.gate.note_submission(decision.at)
        if not decision.allowed:
            result = SubmitResult("denied", decision)
            first = decision.denials[0]
            self.emit("order_denied", f"DENIED {intent.side} {intent.market}: {first.message}",
                      market=intent.market, code=first.code, policy=first.type, reasons=len(decision.denials))
        elif decision.tier in (Tier.DELAY, Tier.APPROVAL):
            reason = next((r.message for r in decision.reasons if r.tier is decision.tier), decision.tier.value)
            action = self.pending.add(intent, decision.tier, decision.hold_seconds or 0.0, reason, decision.at)
            result = SubmitResult("pending", decision, pending=action)
            self.emit("pending_added", f"{decision.tier.value}: {intent.side} {intent.market} held ({reason})",
                      id=action.id, tier=decision.tier.value)
        else:
            result = await self._forward(decision)
            if decision.tier is Tier.NOTIFY:
                self.emit("notify", f"NOTIFY: {intent.side} {intent.market} ~{decision.notional or 0:,.0f} USD sent",
                          market=intent.market, notional=decision.notional)
        if intent.client_id:
            self._results[intent.client_id] = result
        return result

    async def _forward(self, decision: Decision) -> SubmitResult:
        ack, error = await self.executor.place_decision(decision, self.trading.state)
        if error is not None:
            self.emit("order_rejected", f"REJECTED {decision.intent.side} {decision.coin}: {error}", market=decision.coin)
            return SubmitResult("rejected", decision, ack=ack, error=error)
        self.gate.note_forwarded(decision)
        self.emit("order_sent", f"{decision.intent.side} {decision.coin} {ack.status}, filled {ack.filled_size:g}"
                  f"{' (reducing)' if decision.reducing else ''}", market=decision.coin, status=ack.status)
        self._resync_wanted = True
        await self.settle()
        return SubmitResult("sent", decision, ack=ack)

    # ---- pending ---------------------------------------------------------------------------

    async def tick(self) -> None:
        """Periodic work: due DELAY actions, expired approvals, timed lifts, account refresh."""
        now = self.clock.now()
        if now - self._last_refresh >= ACCOUNT_REFRESH_SECONDS and not self._reducing and not self._panicking:
            await self.resync()
        self._record(self.trading.tick(now))
        ready, expired = self.pending.due(now)
        for action in expired:
            self._close(action, PendingStatus.EXPIRED, "no approval before it expired")
        for action in ready:
            await self._release(action)

    async def _release(self, action: PendingAction) -> PendingAction:
        """Re-evaluate a held action against this moment's state; forward it or deny it."""
        decision = self.gate.evaluate(action.intent)
        self.gate.note_submission(decision.at)
        if not decision.allowed:
            return self._close(action, PendingStatus.DENIED, decision.denials[0].message)
        if action.tier is Tier.DELAY and decision.tier is Tier.APPROVAL:
            return self._close(action, PendingStatus.DENIED, "now needs APPROVAL: resubmit it")
        result = await self._forward(decision)
        if result.status == "rejected":
            return self._close(action, PendingStatus.FAILED, result.error or "rejected by the venue")
        return self._close(action, PendingStatus.EXECUTED, f"sent: {result.ack.status}")

    def _close(self, action: PendingAction, status: PendingStatus, outcome: str) -> PendingAction:
        closed = self.pending.close(action.id, status, outcome, self.clock.now())
        self.emit("pending_closed", f"{action.tier.value} {action.intent.side} {action.intent.market}: {status.value} ({outcome})",
                  id=action.id, status=status.value)
        return closed

    async def approve(self, action_id: str) -> PendingAction | None:
        action = self.pending.get(action_id)
        if action is None:
            return None
        return await self._release(action)

    def cancel_pending(self, action_id: str, why: str = "cancelled by the trader") -> PendingAction | None:
        action = self.pending.get(action_id)
        return self._close(action, PendingStatus.CANCELLED, why) if action else None

    def _cancel_pending_risk(self, cause: str) -> None:
        for action in self.pending.open_actions():  # held actions are entries: reducing ones never wait
            self._close(action, PendingStatus.CANCELLED, f"trading HALTED ({cause})")
