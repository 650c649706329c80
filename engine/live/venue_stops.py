"""Stops that rest on the venue (policy VENUE_STOP), so every open position survives the engine's,
the host's or the network's death.

For each open position `VenueStops` keeps one reduce-only trigger order on the venue
(`positionTpsl`: it closes the whole position, whatever its size when it fires), at the price
where the margin buffer would reach `triggerBuffer` (`VenueStop.trigger_px`, the liquidation
price's math), never closer to the mark than `minDistance`:

- placed after the reconciliation that follows the fill which opened the position;
- moved when the wanted trigger is a tick or more away from the resting one (a new size or
  entry at once, other moves at most every `moveSeconds`), by placing the new stop first and
  only then cancelling the old one, so the position is never without a stop in between;
- cancelled when the position is gone;
- a trailing stop (`trailing_stop` on the entry's intent) follows the best mark since the fill
  at that fraction, only ever tightens (never looser than where it rests), and is never looser
  than the VENUE_STOP trigger; the trails are journaled when one starts or ends, so after a
  restart they go on trailing from where their stops rest;
- left alone while a panic exit flattens the account (it cancels everything itself);
- asked for again `RETRY_SECONDS` after the venue refused it (until then the position is
  UNPROTECTED and said so), never in a loop.

A position without a stop on the venue is UNPROTECTED (`unprotected()`), which the state and
the console show. Work is one task at a time: an update that arrives meanwhile runs another
pass after it.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass
from decimal import Decimal

from engine.domain.clock import Clock
from engine.domain.events import EventKind
from engine.domain.increments import round_price
from engine.domain.model import OpenOrder
from engine.live.event_log import EventLog
from engine.live.execution import Executor
from engine.live.journal import Journal, NoJournal
from engine.live.tasks import Tasks
from engine.risk.book import Book
from engine.risk.policies import Policy
from engine.risk.policies.venue_stop import VenueStop
from engine.venues import connector as venue

log = logging.getLogger("perpguard.live")

STOP_PREFIX = "pg-stop-"
FORGET_AFTER_SECONDS = 5.0  # a stop of ours a reconciliation does not list is taken as gone only after this
RETRY_SECONDS = 5.0  # a stop the venue refused is asked for again this long after (clock seconds)
LATENCIES_KEPT = 1000


@dataclass(slots=True)
class RestingStop:
    """Our stop on the venue for one position: its order id, trigger price, and the position's
    size and entry when it was placed (a change of either moves it at once)."""

    oid: str
    client_id: str | None
    trigger_px: float
    size: float
    entry_px: float
    placed_at: float


@dataclass(slots=True)
class Trail:
    fraction: float
    best: float  # the best mark since the fill: the highest for a long, the lowest for a short (only improves)


class VenueStops:
    def __init__(self, book: Book, connector: venue.Connector, executor: Executor, events: EventLog,
                 tasks: Tasks, clock: Clock, panicking, on_change=lambda: None, journal: Journal | None = None) -> None:
        self.book = book
        self.journal = journal or NoJournal()
        self.connector = connector
        self.executor = executor
        self.events = events
        self.tasks = tasks
        self.clock = clock
        self._panicking = panicking  # () -> bool: the panic exit owns the orders now
        self._on_change = on_change  # called when the account goes from no stops to some, or back
        self.policy: VenueStop | None = None
        self.stops: dict[str, RestingStop] = {}
        self.trails: dict[str, Trail] = {}
        self.latencies: list[float] = []  # fill seen -> stop acknowledged, seconds (bench)
        self._fill_seen: dict[str, float] = {}  # coin -> monotonic time of its last fill
        self._ids = itertools.count(1)
        self._running = False
        self._again = False
        self._reported = False  # whether stops rested when the engine was last told
        self._retry_at: dict[str, float] = {}  # coin -> when a refused stop may be asked for again
        self._checked_at = float("-inf")

    def configure(self, policies: list[Policy]) -> None:
        self.policy = next((p for p in policies if p.enabled and isinstance(p, VenueStop)), None)

    @property
    def enabled(self) -> bool:
        return self.policy is not None

    # ---- what the engine tells it ----------------------------------------------------------

    def restore(self) -> None:
        """At start, right after the first reconciliation: the trails the last run journaled, for
        the positions still open (one closed meanwhile must not trail the next position)."""
        saved = self.journal.load_trails()
        self.trails = {coin: Trail(fraction, best) for coin, (fraction, best) in saved.items()
                       if self.book.position(coin) is not None}
        if len(self.trails) != len(saved):
            self._save_trails()

    def note_fill(self, coin: str, trailing: float | None = None) -> None:
        """A fill on `coin` (its stop will be placed or moved after the reconciliation)."""
        self._fill_seen[coin] = time.monotonic()
        mark = self.book.marks.get(coin)
        if trailing is not None and mark is not None:
            self.trails[coin] = Trail(trailing, mark)
            self._save_trails()

    def _save_trails(self) -> None:
        """Journaled when a trail starts or ends; the best mark is not (it moves with every mark):
        after a restart a trail resumes from where its stop rests (`wanted`), which the moves
        kept up with it."""
        self.journal.trails({coin: (trail.fraction, trail.best) for coin, trail in self.trails.items()})

    def on_gone(self, oid: str) -> None:
        """The venue ended an order (cancelled, filled): if it was one of our stops, forget it
        and see whether its position needs another."""
        for coin, stop in list(self.stops.items()):
            if stop.oid == oid:
                del self.stops[coin]
                self.request()

    def after_resync(self) -> None:
        """The book was reconciled with the venue: adopt our stops from it and bring them in line."""
        self._adopt(self.book.open_orders.values())
        self._report()
        self.request()

    def on_marks(self, now: float) -> None:
        """New marks: trailing stops follow them; other stops are re-checked at most every
        `moveSeconds` (with several positions, the others' marks move each one's trigger)."""
        if self.policy is None or not self.stops:
            return
        moved = False
        for coin, trail in self.trails.items():
            mark = self.book.marks.get(coin)
            position = self.book.position(coin)
            if mark is None or position is None:
                continue
            best = max(trail.best, mark) if position.size > 0 else min(trail.best, mark)
            moved |= best != trail.best
            trail.best = best
        # One position's own mark does not move its trigger (value and maintenance move together):
        # only trailing stops and the other positions' marks do.
        if (moved or len(self.stops) > 1) and now - self._checked_at >= self.policy.rules.moveSeconds:
            self._checked_at = now
            self.request()

    def request(self) -> None:
        """Run a pass now, or right after the one running."""
        if self.policy is None:
            return
        if self._running:
            self._again = True
            return
        self._running = True
        self.tasks.spawn(self._passes())

    # ---- what the trader sees ----------------------------------------------------------------

    def needs_stop(self, coin: str) -> bool:
        """VENUE_STOP is in force and the position can reach its trigger (a long so well
        collateralised that its buffer never falls to `triggerBuffer` at any price needs none)."""
        return self.policy is not None and self.policy.trigger_px(self.book, coin) is not None

    def unprotected(self) -> list[str]:
        """Open positions that need a stop on the venue and have none."""
        return [p.coin for p in self.book.positions() if p.coin not in self.stops and self.needs_stop(p.coin)]

    def stop_of(self, coin: str) -> RestingStop | None:
        return self.stops.get(coin)

    # ---- the work ----------------------------------------------------------------------------

    async def _passes(self) -> None:
        try:
            while True:
                self._again = False
                if not self._panicking():
                    await self._pass()
                if not self._again:
                    return
        finally:
            self._running = False
            self._report()

    def _report(self) -> None:
        """Tell the engine when the account goes from no stops resting to some, or back."""
        if bool(self.stops) != self._reported:
            self._reported = bool(self.stops)
            self._on_change()

    async def _pass(self) -> None:
        held = {p.coin: p for p in self.book.positions()}
        for coin in [c for c in self.stops if c not in held]:
            await self._cancel(coin, self.stops.pop(coin), "the position is closed")
            if self.trails.pop(coin, None) is not None:
                self._save_trails()
        for coin, position in held.items():
            wanted = self.wanted(coin)
            current = self.stops.get(coin)
            if wanted is None:
                continue
            if current is None:
                if self.clock.now() < self._retry_at.get(coin, float("-inf")):
                    continue  # refused a moment ago: not a storm of retries (each reconciliation asks)
                await self._place(coin, wanted, None)
            elif self._should_move(coin, current, wanted):
                await self._place(coin, wanted, current)

    def wanted(self, coin: str) -> float | None:
        """Where the stop of `coin` belongs now (USD), trailing included."""
        position = self.book.position(coin)
        trigger = self.policy.trigger_px(self.book, coin) if self.policy is not None else None
        if position is None or trigger is None:
            return None
        trail = self.trails.get(coin)
        if trail is None:
            return trigger
        long = position.size > 0
        # `best` only improves (on_marks), so the trailing price only tightens; and never looser than
        # the stop rests (after a restart, `best` is the one journaled when the trail began)
        candidate = trail.best * (1 - trail.fraction) if long else trail.best * (1 + trail.fraction)
        current = self.stops.get(coin)
        if current is not None and (current.size > 0) == long:
            candidate = max(candidate, current.trigger_px) if long else min(candidate, current.trigger_px)
        return max(trigger, candidate) if long else min(trigger, candidate)  # never looser than VENUE_STOP's

    def _should_move(self, coin: str, current: RestingStop, wanted: float) -> bool:
        position = self.book.position(coin)
        info = self.book.markets.get(coin)
        if position is None or info is None or info.sz_decimals is None:
            return False
        side = "sell" if position.size > 0 else "buy"
        if round_price(wanted, info.sz_decimals, side) == round_price(current.trigger_px, info.sz_decimals, side):
            return False  # less than a tick
        if position.size != current.size or position.entry_px != current.entry_px:
            return True  # a new size or entry moves it at once
        return self.clock.now() - current.placed_at >= self.policy.rules.moveSeconds

    async def _place(self, coin: str, trigger_px: float, old: RestingStop | None) -> None:
        position = self.book.position(coin)
        info = self.book.markets.get(coin)
        rules = self.policy.rules
        side = "sell" if position.size > 0 else "buy"
        size = Decimal(repr(abs(position.size)))
        order = self.executor.trigger_order(coin, side, size, trigger_px, "sl", rules.orderKind == "market",
                                            rules.limitSlippage, info.sz_decimals,
                                            f"{STOP_PREFIX}{coin.replace(':', '-')}-{next(self._ids)}-{int(self.clock.now())}")
        (ack,) = await self.connector.place_group([order], "positionTpsl")
        if not ack.ok or ack.oid is None:
            self._retry_at[coin] = self.clock.now() + RETRY_SECONDS
            self.events.emit(EventKind.VENUE_STOP_FAILED,
                             f"UNPROTECTED: the venue refused the stop for {coin} at {order.trigger.trigger_px}: "
                             f"{ack.error or ack.code}", coin=coin, trigger_px=float(order.trigger.trigger_px),
                             error=ack.error or ack.code)
            return
        seen = self._fill_seen.pop(coin, None)
        if seen is not None:
            self.latencies.append(time.monotonic() - seen)
            del self.latencies[:-LATENCIES_KEPT]
        placed = RestingStop(ack.oid, order.client_id, float(order.trigger.trigger_px), position.size,
                             position.entry_px, self.clock.now())
        self.stops[coin] = placed
        if old is None:
            self.events.emit(EventKind.VENUE_STOP_PLACED, f"venue stop for {coin} {position.size:g} at "
                             f"{placed.trigger_px:g} (mark {self.book.marks.get(coin, 0):g})",
                             coin=coin, oid=ack.oid, trigger_px=placed.trigger_px)
            return
        await self._cancel(coin, old, "moved")  # only now: the new one rests already
        self.events.emit(EventKind.VENUE_STOP_MOVED, f"venue stop for {coin} moved {old.trigger_px:g} -> "
                         f"{placed.trigger_px:g}", coin=coin, oid=ack.oid, trigger_px=placed.trigger_px,
                         previous=old.trigger_px)

    async def _cancel(self, coin: str, stop: RestingStop, why: str) -> None:
        cancelled = await self.connector.cancel(coin, stop.oid)
        if not cancelled.cancelled:
            log.info("venue stop %s on %s not cancelled (%s): %s", stop.oid, coin, why, cancelled.error)

    def _adopt(self, orders) -> None:
        """Keep our record in line with the venue's open orders: a stop of ours that is gone is
        forgotten (it fired, or something cancelled it); after a restart, the tightest reduce-only
        stop-loss trigger resting on a position's coin is taken as ours (not a bracket child this
        process placed: that one is the trader's)."""
        resting: dict[str, list[OpenOrder]] = {}
        for order in orders:
            theirs = order.client_id is not None and not order.client_id.startswith(STOP_PREFIX) \
                and not order.client_id.startswith("0x")  # a bracket's child, known by its id: the trader's
            if order.trigger_px is not None and order.reduce_only and order.tpsl == "sl" and not theirs:
                resting.setdefault(order.coin, []).append(order)
        now = self.clock.now()
        for coin, stop in list(self.stops.items()):
            # a snapshot read while the stop was being placed may not list it yet: only an older
            # stop missing from the venue is gone (the venue's cancel events say so sooner)
            if now - stop.placed_at >= FORGET_AFTER_SECONDS and not any(o.oid == stop.oid for o in resting.get(coin, ())):
                del self.stops[coin]
        for position in self.book.positions():
            if position.coin in self.stops or position.coin not in resting:
                continue
            closing = [o for o in resting[position.coin] if (o.side == "sell") == (position.size > 0)]
            if not closing:
                continue
            best = max(closing, key=lambda o: o.trigger_px) if position.size > 0 else min(closing, key=lambda o: o.trigger_px)
            self.stops[position.coin] = RestingStop(best.oid, best.client_id, best.trigger_px, position.size,
                                                    position.entry_px, self.clock.now())
