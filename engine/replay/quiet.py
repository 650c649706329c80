"""The replay's fast path: runs of bars in which provably nothing can happen are crossed on the
margin formulas, and the engine and the venue are brought to the run's last mark at its end.

Why it is exact. A replay has one market, so one position at most, on cross margin. Between two
points of a bar's path (open, first extreme, second extreme, close) the marks are linear in
time; equity is linear in the mark (E = E0 + size × (p − p0)), and the maintenance margin is
linear in it within one margin tier (MM = |size| × p × rate − deduction), so the margin buffer
is monotone between path points. Every rule the engine applies to a mark is a threshold on
those figures (buffer vs warn, panic or the lift, loss vs limit, drawdown from a running peak)
or on time (timed lifts, the UTC day and ISO week, funding, the dead-man switch, pending
orders). So when no threshold is crossed at any path point, none is crossed by the marks
between them; time-driven things are ruled out by ending a run before the first of them.
Thresholds keep a margin of `EPS` so float rounding cannot turn a near miss into a trip.

Anything less certain takes the exact path: resting limit orders, pending actions, work in
flight, a volatility rule (it samples every mark), a bar that spans a tier boundary, an unknown
table, and a bar whose range reaches the price of a resting trigger order (a venue stop or
take-profit: `PaperExchange.quiet_band`). Trigger orders alone do not stop the fast path: a bar
that stays strictly inside the band cannot fire one.
`tests/test_replay_fast.py` checks the equality: every crash scenario gives the same result either way.

`venue_quiet_bar` is the same proof for the venue alone, once the engine is dead
(`--engine-dies-at`): no engine threshold left, only fills, triggers, funding, the dead-man switch
and the liquidation line (account value − maintenance margin is linear in the mark within a
tier, so its sign at the path points is its sign at every mark between them).
"""

from __future__ import annotations

import math

from engine.domain.clock import ManualClock
from engine.domain.margin import MarginTable, margin_buffer
from engine.domain.model import MarginMode
from engine.venues.paper.exchange import PaperExchange
from engine.live.engine import Engine
from engine.risk.trading_state import LATCHED

SAFE_BUFFER = 0.02  # with no MIN_MARGIN_BUFFER rule, a bar this close to liquidation is not skipped
EPS = 1e-9


class QuietRun:
    """Crosses quiet bars (`cross`), then hands the engine the result (`commit`)."""

    def __init__(self, engine: Engine, paper: PaperExchange, clock: ManualClock, coin: str,
                 until: float = math.inf) -> None:
        """`until` (epoch s): no run crosses it (the engine dies then)."""
        self.engine, self.paper, self.clock, self.coin, self.until = engine, paper, clock, coin, until
        self.open = False

    def _start(self) -> bool:
        engine, book, counters, coin = self.engine, self.engine.book, self.engine.counters, self.coin
        if engine.busy or engine.pending.open_actions() or counters.vol_lookback_minutes:
            return False
        if any(o.trigger_px is None for o in book.open_orders.values()):
            return False  # a resting limit order; trigger orders are handled by the price band
        stops = getattr(engine, "venue_stops", None)
        if stops is not None and stops.trails:
            return False  # a trailing stop follows every mark
        equity, p0 = book.equity, book.marks.get(coin)
        if equity is None or p0 is None or book.maintenance_margin is None:
            return False
        positions = book.positions()
        if len(positions) > 1 or (positions and (positions[0].coin != coin or positions[0].margin_mode is not MarginMode.CROSS)):
            return False
        self.size = positions[0].size if positions else 0.0
        self.table: MarginTable | None = book.margin_table(coin)
        if self.size and self.table is None:
            return False
        timed = [u for u in engine.trading.causes.values() if u is not None and u != LATCHED]
        self.limit = min([self.paper.quiet_until(), counters.period_end, self.until, *timed])
        self.band = self.paper.quiet_band(coin)  # nothing places or cancels an order during a run
        self.e0, self.p0 = equity, p0
        self.peak = counters.peak_equity if counters.peak_equity is not None else equity
        self.high_equity = equity
        self.low_checked = float("inf")  # the lowest equity the loss limits have been asked about
        self.last: tuple[float, float] | None = None
        self.open = True
        return True

    def cross(self, points: list[tuple[float, float]], low: float, high: float) -> float | None:
        """Cross one bar's `points` ((time, mark) in path order) if it is quiet: returns the lowest
        margin buffer at them. None: not quiet; nothing was changed, take the exact path."""
        if not self.open and not self._start():
            return None
        if points[-1][0] >= self.limit or not inside_band(self.band, low, high):
            return None
        size, e0, p0 = self.size, self.e0, self.p0
        rate = deduction = 0.0
        if size:  # one tier over the whole bar: maintenance is |size| x mark x rate - deduction
            table, notional = self.table, abs(size)
            tier = table.tier(notional * low)
            if tier != table.tier(notional * high):
                return None
            rate, deduction = notional * table.rates[tier], table.deductions[tier]
        engine, causes = self.engine, self.engine.trading.causes
        rules = engine.protection.buffer_rules
        floor = max(SAFE_BUFFER, rules.warnBuffer + EPS) if rules is not None else SAFE_BUFFER
        ceiling = rules.warnBuffer + rules.hysteresis - EPS if rules is not None and "margin_buffer" in causes else 2.0
        drawdowns = engine.protection.drawdowns if "max_drawdown" not in causes else ()
        peak, high_equity, lowest, low_equity = self.peak, self.high_equity, 2.0, float("inf")
        first = None
        for _, px in points:
            equity = e0 + size * (px - p0)
            buffer = margin_buffer(equity, rate * px - deduction if size else 0.0)
            if buffer is None or not floor <= buffer <= ceiling:
                return None  # a stop, a de-risk, a lift or the liquidation line would be near
            if equity > peak:
                peak = equity
            for policy in drawdowns:
                if policy.breached(policy.drawdown(equity, peak) + EPS):
                    return None
            if first is None:
                first = buffer
            if buffer < lowest:
                lowest = buffer
            if equity < low_equity:
                low_equity = equity
            if equity > high_equity:
                high_equity = equity
        if low_equity < self.low_checked:
            probe = low_equity - abs(low_equity) * EPS
            for policy in engine.protection.loss_limits:
                breach = policy.breach(probe, engine.counters)
                if breach is not None and (not breach.known or breach.cause not in causes):
                    return None
            self.low_checked = low_equity
        self.peak, self.high_equity, self.last, self.first_buffer = peak, high_equity, points[-1], first
        return lowest

    def commit(self) -> None:
        """Bring the engine and the venue to the run's last mark: the Book takes it, the counters
        take the run's highest equity (the peak) and its last, the venue's mark glides there."""
        if not self.open:
            return
        self.open = False
        if self.last is None:
            return
        at, px = self.last
        counters = self.engine.counters
        counters.on_equity(self.high_equity, at)
        self.engine.book.set_mark(self.coin, px, at)
        counters.on_equity(self.engine.book.equity, at)
        self.clock.set(at)
        self.paper.glide_mark(self.coin, px)


def inside_band(band: tuple[float, float], low: float, high: float) -> bool:
    """Whether a bar from `low` to `high` stays strictly inside the venue's quiet band (USD), by
    a margin of EPS so float rounding of the marks in between cannot reach a trigger price."""
    return low > band[0] * (1 + EPS) and high < band[1] * (1 - EPS)


class VenueQuietRun:
    """The fast path of a venue running without its engine (`--engine-dies-at`): crosses bars in
    which nothing but the mark can change the account (no fill, trigger, funding, dead-man
    deadline, liquidation) on the formulas, then glides the venue's mark to the run's last mark
    (`commit`). Nothing else touches the venue meanwhile, so what `_start` reads holds for the run."""

    def __init__(self, paper: PaperExchange, clock: ManualClock, coin: str) -> None:
        self.paper, self.clock, self.coin = paper, clock, coin
        self.open = False

    def _start(self) -> bool:
        ledger, coin = self.paper.ledger, self.coin
        holding = ledger.holdings.get(coin)
        if len(ledger.holdings) > (holding is not None):
            return False  # another market's position: not this proof
        self.limit, self.band = self.paper.quiet_until(), self.paper.quiet_band(coin)
        self.cash = ledger.cash
        self.size = float(holding.size) if holding is not None else 0.0
        self.entry = holding.entry_px if holding is not None else 0.0
        self.table = ledger.table(coin) if holding is not None else None
        self.last: tuple[float, float] | None = None
        self.open = True
        return True

    def cross(self, points: list[tuple[float, float]], low: float,
              high: float) -> tuple[float | None, float | None] | None:
        """Cross one bar if it is quiet: (margin buffer at its first path point, lowest at
        them). None: not quiet; nothing was changed, take the bar mark by mark (after `commit`)."""
        if not self.open and not self._start():
            return None
        if points[-1][0] >= self.limit or not inside_band(self.band, low, high):
            return None
        size, cash, entry, table = self.size, self.cash, self.entry, self.table
        if table is None:
            buffer = margin_buffer(cash, 0.0)
            self.last = points[-1]
            return buffer, buffer
        notional = abs(size)
        tier = table.tier(notional * low)
        if tier != table.tier(notional * high):
            return None
        rate, deduction = notional * table.rates[tier], table.deductions[tier]
        first = lowest = None
        for _, px in points:
            equity = cash + size * (px - entry)
            maintenance = rate * px - deduction
            if equity - maintenance <= abs(equity) * EPS * 10:
                return None  # the liquidation line is reached (or nearly) within the bar
            buffer = (equity - maintenance) / equity
            if first is None:
                first = buffer
            if lowest is None or buffer < lowest:
                lowest = buffer
        self.last = points[-1]
        return first, lowest

    def commit(self) -> None:
        """Bring the venue to the run's last mark."""
        if not self.open:
            return
        self.open = False
        if self.last is not None:
            at, px = self.last
            self.clock.set(at)
            self.paper.glide_mark(self.coin, px)
