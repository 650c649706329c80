"""The live engine: one asyncio loop owns the Book, the counters, the trading state, the pending
queue and the de-risk lifecycle (single writer). Connectors post venue events to it; the API
and the console call its coroutines; everything else reads snapshots.

Order path: `submit` -> gate (pure, synchronous) -> forward now (INSTANT/NOTIFY), hold
(DELAY/APPROVAL), or deny. After every venue update the margin buffer and the breakers are
recomputed (`_after_update`), which may stop trading, send one reducing order, or panic. Marks
that arrive together (`MarksUpdated`, one allMids message) are one update: all applied, then
one recompute.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Callable, Mapping

from engine import connector as venue
from engine.book import Book
from engine.clock import Clock
from engine.counters import RiskCounters
from engine.events import EngineEvent
from engine.execution import Executor, SubmitResult
from engine.gate import RiskGate
from engine.model import Decision, OrderIntent, Tier
from engine.pending import PendingAction, PendingQueue, PendingStatus, PendingStore
from engine.policies import Policy
from engine.policies.buffer import MinMarginBuffer
from engine.policies.losses import LossLimit, MaxDrawdown
from engine.policies.market_data import StaleData
from engine.protection import Protection
from engine.trading_state import TradingStateMachine

log = logging.getLogger("perpguard.engine")

ACCOUNT_REFRESH_SECONDS = 5.0  # re-read the venue's account this often (clock seconds)
DEFAULT_MAX_MARK_AGE = 10.0


class Engine(Protection):
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
        self._synced_revision: int | None = None
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
        self._synced_revision = getattr(self.connector, "revision", None)
        snap = await self.connector.snapshot()
        self.book.load(snap.account, snap.positions, snap.open_orders, marks=snap.marks, at=snap.time,
                       mark_times=snap.mark_times)
        for coin, rate in snap.funding_rates.items():
            self.book.set_funding(coin, rate)
        self._last_refresh = snap.time
        self._resync_wanted = False
        self._after_update(snap.time)

    @property
    def busy(self) -> bool:
        """Work in flight: a task, a wanted re-read, a de-risk order or a panic exit."""
        return bool(self._tasks) or self._resync_wanted or self._reducing or self._panicking

    async def _refresh(self, now: float) -> None:
        """The periodic account check. An in-process venue that says nothing changed since the
        last read (its `revision`) is confirmed without reading it again."""
        revision = getattr(self.connector, "revision", None)
        if revision is not None and revision == self._synced_revision:
            self.book.touch_account(now)
            self._last_refresh = now
        else:
            await self.resync()

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
        if type(event) is venue.MarksUpdated:
            self.on_marks(event.marks, event.time)
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
            self.book.feed_stale_since = event.since  # fail closed at once, whatever STALE_DATA says
            self.emit("feed_stale", f"market feed stale since {event.since:.0f}: new risk is denied", since=event.since)
        elif isinstance(event, venue.FeedRestored):
            self.book.feed_stale_since = None
            self._resync_wanted = True
            self.emit("feed_restored", "market feed restored; reconciling with the venue")
        if self._resync_wanted and not self._reducing and not self._panicking:
            self._spawn(self.resync())

    def on_marks(self, marks: Mapping[str, float], at: float) -> None:
        """Marks observed together (USD by coin, at epoch s): all applied, then the account is
        judged once. They are one instant: a hedged move is not half-seen between two coins."""
        self.book.set_marks(marks, at)
        self.counters.on_marks(marks, at)
        self._after_update(at)

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
            await self._refresh(now)
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
