"""The counters the rules need, in one risk state: rolling spend and submission windows,
losing streak, period losses, peak equity and realized volatility. Times are epoch seconds.

The gate reads these; only the engine loop writes them (`record_*`, `on_*`). With a `journal`,
every change a limit depends on is handed to it as a `CounterChange` (the store keeps them), and
`restore` replays them into a fresh instance after a restart.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime, timezone
from typing import Callable, Mapping, NamedTuple

DAY = 86_400.0
WEEK = 7 * DAY
MONTH = 30 * DAY  # "monthly" limits are a rolling 30 days
MINUTES_PER_YEAR = 525_600.0
LONGEST_WINDOW = MONTH  # no limit looks back further: older changes can be forgotten
PEAK_STEP = 1e-4  # a new peak is journaled once it is 0.01% above the last one journaled


class CounterChange(NamedTuple):
    """One change a limit depends on. `kind`: `add` (a submission or spend counted into the
    `metric` windows, `value` a count or USD), `close` (a realized PnL, USD), `day` / `week` (a
    period started, `value` its starting equity USD), `peak` (a new peak equity USD)."""

    kind: str
    metric: str
    at: float
    value: float


class RollingSum:
    """Sum of values added within the last `window` seconds; amortised O(1)."""

    __slots__ = ("window", "_items", "_total")

    def __init__(self, window: float) -> None:
        self.window = window
        self._items: deque[tuple[float, float]] = deque()
        self._total = 0.0

    def add(self, at: float, value: float = 1.0) -> None:
        self._items.append((at, value))
        self._total += value

    def total(self, now: float) -> float:
        items = self._items
        if items and items[0][0] <= now - self.window:  # (empty, the total is exactly 0.0)
            horizon = now - self.window
            while items and items[0][0] <= horizon:
                self._total -= items.popleft()[1]
            if not items:
                self._total = 0.0  # no float residue once the window is empty
        return self._total


def day_start(t: float) -> float:
    d = datetime.fromtimestamp(t, timezone.utc)
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp()


def week_start(t: float) -> float:
    """Monday 00:00 UTC of t's ISO week."""
    start = day_start(t)
    weekday = datetime.fromtimestamp(t, timezone.utc).weekday()
    return start - weekday * DAY


class Volatility:
    """Realized volatility of one coin from its one-minute closes (annualized fraction).

    Keeps running sums of the log returns inside the lookback, so a read is O(1).
    """

    __slots__ = ("lookback_minutes", "_minute", "_last_close", "_pending_close", "_returns", "_s1", "_s2", "_annualized")

    def __init__(self, lookback_minutes: int) -> None:
        self.lookback_minutes = lookback_minutes
        self._minute: int | None = None
        self._last_close: float | None = None
        self._pending_close: float | None = None
        self._returns: deque[tuple[int, float]] = deque()
        self._s1 = 0.0
        self._s2 = 0.0
        self._annualized: float | None = None  # of the returns as they are; None: not computed

    def on_mark(self, px: float, at: float) -> None:
        minute = int(at // 60)
        if self._minute is None:
            self._minute, self._pending_close = minute, px
            return
        if minute != self._minute:
            # the previous minute closed at its last mark
            if self._last_close is not None and self._pending_close:
                r = math.log(self._pending_close / self._last_close)
                self._returns.append((self._minute, r))
                self._s1 += r
                self._s2 += r * r
                self._annualized = None
            self._last_close = self._pending_close
            self._minute = minute
        self._pending_close = px
        horizon = minute - self.lookback_minutes
        while self._returns and self._returns[0][0] < horizon:
            _, old = self._returns.popleft()
            self._s1 -= old
            self._s2 -= old * old
            self._annualized = None

    def annualized(self, min_samples: int = 5) -> float | None:
        n = len(self._returns)
        if n < min_samples:
            return None
        if self._annualized is None:  # computed once per closed minute, read by every order
            mean = self._s1 / n
            var = max(0.0, self._s2 / n - mean * mean) * n / (n - 1)
            self._annualized = math.sqrt(var * MINUTES_PER_YEAR)
        return self._annualized


class RiskCounters:
    """Everything the rules count over time. Start it from the first equity figure seen."""

    def __init__(self, journal: Callable[[CounterChange], None] | None = None) -> None:
        self.journal = journal
        self._journaled_peak: float | None = None
        self._windows: dict[tuple[str, float], RollingSum] = {}
        self.consecutive_losses = 0
        self.last_loss_at: float | None = None
        self.peak_equity: float | None = None
        self.session_start_equity: float | None = None
        self.day_start_equity: float | None = None
        self.week_start_equity: float | None = None
        self._day_end = float("-inf")  # when the current UTC day / ISO week ends (epoch s)
        self._week_end = float("-inf")
        self.realized_day = 0.0
        self.realized_week = 0.0
        self.realized_session = 0.0
        self.volatility: dict[str, Volatility] = {}
        self.vol_lookback_minutes = 0

    # ---- windows -------------------------------------------------------------------------

    def window(self, metric: str, seconds: float) -> RollingSum:
        """The rolling window for `metric` ("submissions", "spend", "spend:<category>")."""
        key = (metric, seconds)
        w = self._windows.get(key)
        if w is None:
            w = self._windows[key] = RollingSum(seconds)
        return w

    def record(self, metric: str, at: float, value: float = 1.0) -> None:
        for (name, _), w in self._windows.items():
            if name == metric:
                w.add(at, value)
        if self.journal is not None:
            self.journal(CounterChange("add", metric, at, value))

    # ---- equity and losses ---------------------------------------------------------------

    def on_equity(self, equity: float, at: float) -> None:
        """A fresh account value (USD): rolls periods, tracks the peak."""
        if self.session_start_equity is None:
            self.session_start_equity = equity
        if at >= self._day_end:  # a new UTC day (boundaries computed only when crossed)
            self._start_day(equity, at)
            if self.journal is not None:
                self.journal(CounterChange("day", "", at, equity))
        if at >= self._week_end:
            self._start_week(equity, at)
            if self.journal is not None:
                self.journal(CounterChange("week", "", at, equity))
        if self.peak_equity is None or equity > self.peak_equity:
            self.peak_equity = equity
            last = self._journaled_peak
            if self.journal is not None and (last is None or equity >= last + abs(last) * PEAK_STEP):
                self._journaled_peak = equity
                self.journal(CounterChange("peak", "", at, equity))

    def _start_day(self, equity: float, at: float) -> None:
        self._day_end = day_start(at) + DAY
        self.day_start_equity, self.realized_day = equity, 0.0

    def _start_week(self, equity: float, at: float) -> None:
        self._week_end = week_start(at) + WEEK
        self.week_start_equity, self.realized_week = equity, 0.0

    def on_close(self, realized_pnl: float, at: float) -> None:
        """A position was reduced or closed with this realized PnL (USD, fees included)."""
        self._close(realized_pnl, at)
        if self.journal is not None:
            self.journal(CounterChange("close", "", at, realized_pnl))

    def _close(self, realized_pnl: float, at: float) -> None:
        self.realized_day += realized_pnl
        self.realized_week += realized_pnl
        self.realized_session += realized_pnl
        if realized_pnl < 0:
            self.consecutive_losses += 1
            self.last_loss_at = at
        elif realized_pnl > 0:
            self.consecutive_losses = 0

    def restore(self, changes: list[CounterChange]) -> None:
        """Replay journaled changes, oldest first, into this (fresh) instance, whose windows the
        policies have registered already; nothing is journaled again. The session (what
        `sessionLossUsd` counts) is the engine's run: it starts afresh."""
        for change in changes:
            kind = change.kind
            if kind == "add":
                for (name, _), w in self._windows.items():
                    if name == change.metric:
                        w.add(change.at, change.value)
            elif kind == "close":
                self._close(change.value, change.at)
            elif kind == "day":
                self._start_day(change.value, change.at)
            elif kind == "week":
                self._start_week(change.value, change.at)
            elif kind == "peak" and (self.peak_equity is None or change.value > self.peak_equity):
                self.peak_equity = change.value
        self._journaled_peak = self.peak_equity
        self.realized_session = 0.0

    @property
    def period_end(self) -> float:
        """When the current UTC day or ISO week ends, whichever is first (epoch s)."""
        return min(self._day_end, self._week_end)

    def next_day(self, at: float) -> float:
        return day_start(at) + DAY

    def next_week(self, at: float) -> float:
        return week_start(at) + WEEK

    # ---- market history ------------------------------------------------------------------

    def on_mark(self, coin: str, px: float, at: float) -> None:
        if not self.vol_lookback_minutes:
            return
        v = self.volatility.get(coin)
        if v is None:
            v = self.volatility[coin] = Volatility(self.vol_lookback_minutes)
        v.on_mark(px, at)

    def on_marks(self, marks: Mapping[str, float], at: float) -> None:
        """Marks of many coins (USD by coin) observed together at `at` (epoch s)."""
        if not self.vol_lookback_minutes:
            return
        for coin, px in marks.items():
            self.on_mark(coin, px, at)
