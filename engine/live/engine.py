"""The live engine: one asyncio loop owns the Book, the counters, the trading state, the pending
queue and the de-risk lifecycle (single writer). Connectors post venue events to it; the API
and the console call its coroutines; everything else reads snapshots.

Order path: `submit` -> gate (pure, synchronous) -> forward now (INSTANT/NOTIFY), hold
(DELAY/APPROVAL), or deny. After every venue update the margin buffer and the breakers are
recomputed (`protection.after_update`), which may stop trading, send one reducing order, or
panic. Marks
that arrive together (`MarksUpdated`, one allMids message) are one update: all applied, then
one recompute.

Its parts, composed here: `events` (the event log every listener reads), `tasks` (background
work), `executor` (orders onto the venue's increments), `pending` (the held-order queue) and
`protection` (breakers, de-risk, panic exit, kill switch) and `venue_watch` (the venue's dead-man
switch and the API wallet's expiry).
"""

from __future__ import annotations

import logging
from typing import Callable, Mapping

from engine.domain.clock import Clock
from engine.domain.events import EventKind
from engine.domain.model import Decision, OrderIntent, Tier
from engine.live.event_log import EventLog
from engine.live.execution import Executor, SubmitResult, SubmitStatus
from engine.live.journal import Journal, NoJournal
from engine.live.pending import PendingAction, PendingQueue, PendingStatus, PendingStore
from engine.live.protection import Protection
from engine.live.tasks import Tasks
from engine.live.venue_stops import STOP_PREFIX, VenueStops
from engine.live.venue_watch import DeadManMode, VenueWatch
from engine.risk.book import Book
from engine.risk.counters import RiskCounters
from engine.risk.gate import RiskGate
from engine.risk.policies import Policy
from engine.risk.trading_state import TradingStateMachine
from engine.venues import connector as venue

log = logging.getLogger("perpguard.engine")

ACCOUNT_REFRESH_SECONDS = 5.0  # re-read the venue's account this often (clock seconds)


def account_policies(policies: list[Policy]) -> list[Policy]:
    """The policies the engine's own protection follows: the account's, not a bot's."""
    return [p for p in policies if p.bot is None]


def bot_of(intent: OrderIntent) -> dict:
    """An order event's `bot` field: the bot the order came from, when it came from one."""
    return {"bot": intent.bot} if intent.bot is not None else {}


class Engine:
    def __init__(self, connector: venue.Connector, policies: list[Policy], clock: Clock,
                 pending_store: PendingStore | None = None, trading: TradingStateMachine | None = None,
                 counters: RiskCounters | None = None, journal: Journal | None = None,
                 dead_man: DeadManMode = "flat") -> None:
        self.connector = connector
        self.clock = clock
        self.book = Book()
        self.counters = counters or RiskCounters()
        self.journal = journal or NoJournal()
        self.trading = trading or TradingStateMachine()
        self.gate = RiskGate(policies, self.book, self.counters, clock, self.trading)
        self.pending = PendingQueue(pending_store)
        self.executor = Executor(connector, self.book, self.gate.slippage)
        self.events = EventLog(clock)
        self.tasks = Tasks(self._task_failed)
        self.protection = Protection(self.book, self.counters, self.trading, self.executor, connector, clock,
                                     self.events, self.tasks, self.resync, self._cancel_pending_risk,
                                     journal=self.journal)
        self.protection.configure(account_policies(policies))
        self.venue_stops = VenueStops(self.book, connector, self.executor, self.events, self.tasks, clock,
                                      lambda: self.protection.panicking, self._protection_changed, self.journal)
        self.venue_watch = VenueWatch(connector, self.events, clock, lambda: len(self.venue_stops.stops), dead_man)
        self.venue_stops.configure(account_policies(policies))
        self.liquidated = False
        self._results: dict[str, SubmitResult] = {}  # client_id -> first answer (idempotency)
        self._resync_wanted = False
        self._cancelling: set[str] = set()  # oids of our own cancels sent and not yet answered
        self._last_refresh = float("-inf")
        self._synced_revision: int | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def set_policies(self, policies: list[Policy]) -> None:
        self.gate.set_policies(policies)
        self.executor.slippage = self.gate.slippage
        self.protection.configure(account_policies(policies))  # a bot's policies judge its orders only
        self.venue_stops.configure(account_policies(policies))
        self.venue_stops.request()

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Read the venue (markets, account, positions, open orders) before accepting orders; then
        resume a panic exit that a crash or a restart interrupted (sized from what was just read)."""
        await self.connector.start()
        self.book.markets = await self.connector.meta()
        self._unsubscribe = self.connector.subscribe(self.on_venue_event)
        await self.resync()
        self.venue_stops.restore()  # before its first pass runs: the trails go on from where their stops rest
        for action in self.pending.interrupted():  # never re-sent blind: it may have reached the venue
            self._close(action, PendingStatus.FAILED, f"its sending was interrupted by a restart; not re-sent: "
                                                      f"check the venue for client id {action.client_id}")
        self.events.emit(EventKind.ENGINE_STARTED, f"engine reconciled: {len(self.book.positions())} positions, "
                  f"{len(self.book.open_orders)} open orders, equity {self.book.equity:,.2f} USD")
        self.protection.resume_flattening()  # a panic exit the last run left unfinished goes on, from here

    async def stop(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
        self.tasks.cancel()
        await self.connector.stop()

    async def resync(self) -> None:
        """Reconcile the Book with the venue's own account, positions and open orders."""
        self._synced_revision = self.connector.revision
        snap = await self.connector.snapshot()
        self.book.load(snap.account, snap.positions, snap.open_orders, marks=snap.marks, at=snap.time,
                       mark_times=snap.mark_times)
        for coin, rate in snap.funding_rates.items():
            self.book.set_funding(coin, rate)
        self.venue_watch.account_mode = snap.account_mode
        self._last_refresh = snap.time
        self._resync_wanted = False
        self.protection.after_update(snap.time)
        self.venue_stops.after_resync()

    @property
    def busy(self) -> bool:
        """Work in flight: a task, a wanted re-read, a de-risk order or a panic exit."""
        return bool(self.tasks) or self._resync_wanted or self.protection.busy

    async def _refresh(self, now: float) -> None:
        """The periodic account check. An in-process venue that says nothing changed since the
        last read (its `revision`) is confirmed without reading it again."""
        revision = self.connector.revision
        if revision is not None and revision == self._synced_revision:
            self.book.touch_account(now)
            self._last_refresh = now
        else:
            await self.resync()

    async def settle(self) -> None:
        """Let every task the last events started run to its end (replays and tests)."""
        while self.tasks or self._resync_wanted:
            if self._resync_wanted:
                await self.resync()
            await self.tasks.wait()

    def _protection_changed(self) -> None:
        """Venue stops came or went: the dead-man switch is cleared or armed at once (it would
        cancel the stops), not at its next 20 s re-arm."""
        if self.venue_watch.dead_man.armed or self.venue_watch.dead_man.reason is not None:
            self.tasks.spawn(self.venue_watch.arm())

    def _task_failed(self, error: BaseException) -> None:
        self.events.emit(EventKind.ENGINE_ERROR, f"internal error: {error!r}")

    # ---- venue events --------------------------------------------------------------------

    def on_venue_event(self, event: venue.VenueEvent) -> None:
        """Called by the connector, in venue order, on the engine's loop."""
        if type(event) is venue.MarkUpdated:
            self.book.set_mark(event.coin, event.px, event.time)
            self.counters.on_mark(event.coin, event.px, event.time)
            self.protection.after_update(event.time)
            self.venue_stops.on_marks(event.time)
            return
        if type(event) is venue.MarksUpdated:
            self.on_marks(event.marks, event.time)
            return
        if isinstance(event, venue.OrderFilled):
            self._resync_wanted = True
            self.venue_stops.note_fill(event.coin)
            if event.remaining == 0:
                self.venue_stops.on_gone(event.oid)
            self.events.emit(EventKind.ORDER_FILLED, f"filled {event.side} {event.size:g} {event.coin} @ {event.px:g}",
                             oid=event.oid, coin=event.coin, side=event.side, size=event.size, px=event.px,
                             fee=event.fee, realized_pnl=event.realized_pnl, remaining=event.remaining,
                             client_id=event.client_id, maker=event.maker, tid=event.tid, hash=event.hash)
            if event.realized_pnl:
                net = event.realized_pnl - event.fee
                self.counters.on_close(net, event.time)
                self.events.emit(EventKind.POSITION_CLOSED, f"{event.coin} {event.side} {event.size:g} @ {event.px:g}: realized {net:+,.2f} USD",
                          coin=event.coin, pnl=net, losing_streak=self.counters.consecutive_losses)
        elif isinstance(event, venue.OrderCancelled):
            self.venue_stops.on_gone(event.oid)
            # Our own cancel (answered by the venue, or still waiting for the answer: the venue's
            # event can come first) changes nothing else the book holds: no second read of the
            # account, which would cost a bot that quotes and cancels two info requests (weight 22
            # of the IP's 1200 a minute) a cancel. Any other cancel (dead-man switch, liquidation,
            # someone else's) is read again.
            if event.oid in self._cancelling:
                self.book.forget_order(event.oid)
            elif event.oid in self.book.open_orders:
                self._resync_wanted = True
        elif isinstance(event, (venue.FundingPaid, venue.OrderRejected)):
            self._resync_wanted = True
        elif isinstance(event, venue.OrderTriggered):
            self._resync_wanted = True
            # perpguard's own stop, or one a bot placed (a bracket's child, ccxt's stop-loss)
            whose = "VENUE STOP" if (event.client_id or "").startswith(STOP_PREFIX) else "A stop order"
            self.events.emit(EventKind.VENUE_STOP_TRIGGERED,
                             f"{whose} fired on {event.coin}: {event.tpsl} trigger {event.trigger_px:g} reached "
                             f"(mark {event.mark:g}); the venue closes the position", coin=event.coin,
                             oid=event.oid, trigger_px=event.trigger_px, mark=event.mark, tpsl=event.tpsl,
                             client_id=event.client_id)
        elif isinstance(event, venue.Liquidated):
            self.liquidated = True
            self._resync_wanted = True
            self.events.emit(EventKind.LIQUIDATED, f"LIQUIDATED by the venue: {event.coin} {event.size:g} at {event.px:g}, loss {event.loss:,.2f} USD",
                      coin=event.coin, px=event.px, loss=event.loss)
        elif isinstance(event, venue.FeedStale):
            self.book.feed_stale_since = event.since  # fail closed at once, whatever STALE_DATA says
            self.events.emit(EventKind.FEED_STALE, f"market feed stale since {event.since:.0f}: new risk is denied", since=event.since)
        elif isinstance(event, venue.FeedRestored):
            self.book.feed_stale_since = None
            self._resync_wanted = True
            self.events.emit(EventKind.FEED_RESTORED, "market feed restored; reconciling with the venue")
        if self._resync_wanted and not self.protection.busy:
            self.tasks.spawn(self.resync())

    def on_marks(self, marks: Mapping[str, float], at: float) -> None:
        """Marks observed together (USD by coin, at epoch s): all applied, then the account is
        judged once. They are one instant: a hedged move is not half-seen between two coins."""
        self.book.set_marks(marks, at)
        self.counters.on_marks(marks, at)
        self.protection.after_update(at)
        self.venue_stops.on_marks(at)

    # ---- orders --------------------------------------------------------------------------

    async def submit(self, intent: OrderIntent) -> SubmitResult:
        """The order path. The same client_id twice gives the same final answer and one order;
        an answer worth retrying (missing data, a rate limit, the store unavailable) is not kept."""
        if intent.client_id and intent.client_id in self._results and not intent.dry_run:
            return self._results[intent.client_id]
        decision = self.gate.evaluate(intent)
        if intent.dry_run:
            return SubmitResult(SubmitStatus.DRY_RUN, decision)
        self.gate.note_submission(decision.at, intent.bot)
        self.journal.decision(decision, intent.client_id)
        if not decision.allowed:
            result = SubmitResult(SubmitStatus.DENIED, decision)
            first = decision.denials[0]
            self.events.emit(EventKind.ORDER_DENIED, f"DENIED {intent.side} {intent.market}: {first.message}",
                      market=intent.market, code=first.code, policy=first.type, reasons=len(decision.denials),
                      **bot_of(intent))
        elif decision.tier in (Tier.DELAY, Tier.APPROVAL):
            reason = next((r.message for r in decision.reasons if r.tier is decision.tier), decision.tier.value)
            action = self.pending.add(intent, decision.tier, decision.hold_seconds or 0.0, reason, decision.at)
            result = SubmitResult(SubmitStatus.PENDING, decision, pending=action)
            self.events.emit(EventKind.PENDING_ADDED, f"{decision.tier.value}: {intent.side} {intent.market} held ({reason})",
                      id=action.id, tier=decision.tier.value, **bot_of(intent))
        else:
            result = await self._forward(decision)
            if decision.tier is Tier.NOTIFY and result.status is SubmitStatus.SENT:
                self.events.emit(EventKind.NOTIFIED, f"NOTIFY: {intent.side} {intent.market} ~{decision.notional or 0:,.0f} USD sent",
                                 market=intent.market, notional=decision.notional, **bot_of(intent))
        if intent.client_id and result.final:
            self._results[intent.client_id] = result
        return result

    async def _forward(self, decision: Decision) -> SubmitResult:
        """Send an allowed decision, once the journal holds it (never an unrecorded order)."""
        if not await self.journal.durable():
            why = "the store did not confirm the decision in time: nothing was sent, retry"
            self.events.emit(EventKind.ORDER_NOT_SENT, f"NOT SENT {decision.intent.side} {decision.coin}: {why}",
                             market=decision.coin, **bot_of(decision.intent))
            return SubmitResult(SubmitStatus.UNAVAILABLE, decision, error=why)
        placed = await self.executor.place_decision(decision, self.trading.state)
        ack, error = placed.ack, placed.error
        if error is not None:
            self.events.emit(EventKind.ORDER_REJECTED, f"REJECTED {decision.intent.side} {decision.coin}: {error}",
                             **{"market": decision.coin, **placed.order_fields(), **bot_of(decision.intent)})
            return SubmitResult(SubmitStatus.REJECTED, decision, ack=ack, error=error)
        self.gate.note_forwarded(decision)
        self.events.emit(EventKind.ORDER_SENT, f"{decision.intent.side} {decision.coin} {ack.status}, filled "
                         f"{ack.filled_size:g}{' (reducing)' if decision.reducing else ''}",
                         market=decision.coin, **placed.order_fields(), **bot_of(decision.intent))
        if placed.children_error:
            self.events.emit(EventKind.VENUE_STOP_FAILED, f"the venue refused the bracket of {decision.coin}: "
                             f"{placed.children_error}", coin=decision.coin, error=placed.children_error)
        if decision.intent.trailing_stop is not None and not decision.reducing:
            self.venue_stops.note_fill(decision.coin, decision.intent.trailing_stop)
        if ack.status == "resting" and not ack.filled_size and not placed.children:
            # nothing filled: the account is as it was but for one resting order, which the book
            # takes from the venue's own answer (the next reconciliation confirms it)
            self.book.note_resting(placed.resting_order())
        else:
            self._resync_wanted = True
            await self.settle()  # the reconciliation, and the position's venue stop placed after it
        return SubmitResult(SubmitStatus.SENT, decision, ack=ack)

    async def cancel_order(self, oid: str) -> venue.CancelAck:
        """Cancel an open order the book holds (KeyError if none). Cancelled: the book lets it go
        on the venue's answer (its own cancel event, before or after the answer, changes nothing);
        not: it filled or went meanwhile, so the account is read again."""
        order = self.book.open_orders[oid]
        self._cancelling.add(oid)
        try:
            ack = await self.connector.cancel(order.coin, oid)
        finally:
            self._cancelling.discard(oid)
        if ack.cancelled:
            self.book.forget_order(oid)
        else:
            await self.resync()
        return ack

    # ---- pending ---------------------------------------------------------------------------

    async def tick(self) -> None:
        """Periodic work: due DELAY actions, expired approvals, timed lifts, account refresh."""
        now = self.clock.now()
        if now - self._last_refresh >= ACCOUNT_REFRESH_SECONDS and not self.protection.busy:
            await self._refresh(now)
        self.protection.record(self.trading.tick(now))
        self.venue_watch.check(now)
        ready, expired = self.pending.due(now)
        for action in expired:
            self._close(action, PendingStatus.EXPIRED, "no approval before it expired")
        for action in ready:
            await self._release(action)

    async def _release(self, action: PendingAction) -> PendingAction:
        """Re-evaluate a held action against this moment's state; forward it or deny it. The
        order carries a client id derived from the action, and the action is saved as
        RELEASING before the venue is called, so a release can never run twice."""
        intent = action.intent.model_copy(update={"client_id": action.client_id})
        decision = self.gate.evaluate(intent)
        self.gate.note_submission(decision.at, intent.bot)
        self.journal.decision(decision, intent.client_id)
        if not decision.allowed:
            return self._close(action, PendingStatus.DENIED, decision.denials[0].message)
        if action.tier is Tier.DELAY and decision.tier is Tier.APPROVAL:
            return self._close(action, PendingStatus.DENIED, "now needs APPROVAL: resubmit it")
        action = self.pending.releasing(action.id)
        result = await self._forward(decision)
        if result.status is SubmitStatus.UNAVAILABLE:
            return self._close(action, PendingStatus.FAILED, result.error)
        if result.status is SubmitStatus.REJECTED:
            return self._close(action, PendingStatus.FAILED, result.error or "rejected by the venue")
        return self._close(action, PendingStatus.EXECUTED, f"sent: {result.ack.status}")

    def _close(self, action: PendingAction, status: PendingStatus, outcome: str) -> PendingAction:
        closed = self.pending.close(action.id, status, outcome, self.clock.now())
        self.events.emit(EventKind.PENDING_CLOSED, f"{action.tier.value} {action.intent.side} {action.intent.market}: {status.value} ({outcome})",
                  id=action.id, status=status.value, **bot_of(action.intent))
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
            if action.status is PendingStatus.PENDING:  # one being sent finishes its send
                self._close(action, PendingStatus.CANCELLED, f"trading HALTED ({cause})")

    # ---- kill switch and resume ------------------------------------------------------------

    async def kill(self, cause: str = "kill switch") -> None:
        """Panic exit + HALTED, at once, whatever the buffer."""
        await self.protection.kill(cause)

    def resume(self):
        """Lift HALTED and latched stops (the caller has checked the master password)."""
        return self.protection.resume()
