"""Candles of the paper venue's marks, for `candleSnapshot` and the `candle` channel: per coin and
interval (Hyperliquid's: 1m 3m 5m 15m 30m 1h 2h 4h 8h 12h 1d 3d 1w 1M) a bounded history of the
last `limit` bars (the venue serves only the most recent 5000).

The paper venue has no public trades: o/h/l/c are the marks it has seen, and `v` (base units)
and `n` count the paper account's own fills, the only trades there are. A mark costs O(1): it
updates the current one-minute bar only; when a minute ends, its bar is folded into the current
bar of every longer interval. A longer interval's bar being built is that fold plus the current
minute, merged when read.

Bars open at multiples of their length from the epoch (UTC), except `1w` (Monday 00:00 UTC)
and `1M` (the first of the month, 00:00 UTC). Times ms; `T` is the bar's last ms.
"""

from __future__ import annotations

import calendar
from collections import deque
from datetime import UTC, datetime
from typing import Any, Callable

from engine.venues.paper.history import PaperFill
from engine.venues.hl_wire import num

MINUTE = 60_000
INTERVALS: dict[str, int] = {
    "1m": MINUTE, "3m": 3 * MINUTE, "5m": 5 * MINUTE, "15m": 15 * MINUTE, "30m": 30 * MINUTE,
    "1h": 60 * MINUTE, "2h": 120 * MINUTE, "4h": 240 * MINUTE, "8h": 480 * MINUTE, "12h": 720 * MINUTE,
    "1d": 1440 * MINUTE, "3d": 3 * 1440 * MINUTE, "1w": 7 * 1440 * MINUTE, "1M": 31 * 1440 * MINUTE,
}
CANDLE_LIMIT = 5000
_MONDAY = 4 * 1440 * MINUTE  # 1970-01-05, the first Monday after the epoch (ms)

BarListener = Callable[[dict[str, Any]], None]  # the bar as the wire writes it


def bar_open(interval: str, t: int) -> int:
    """The open time (ms) of the `interval` bar holding time `t` (ms)."""
    if interval == "1M":
        d = datetime.fromtimestamp(t / 1000, UTC)
        return calendar.timegm((d.year, d.month, 1, 0, 0, 0)) * 1000
    length = INTERVALS[interval]
    if interval == "1w":
        return (t - _MONDAY) // length * length + _MONDAY
    return t // length * length


def bar_close(interval: str, opened: int) -> int:
    """The last ms of the bar that opened at `opened`."""
    if interval == "1M":
        d = datetime.fromtimestamp(opened / 1000, UTC)
        year, month = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
        return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000 - 1
    return opened + INTERVALS[interval] - 1


class Bar:
    __slots__ = ("t", "o", "h", "l", "c", "v", "n")

    def __init__(self, t: int, px: float, v: float = 0.0, n: int = 0) -> None:
        self.t, self.o, self.h, self.l, self.c, self.v, self.n = t, px, px, px, px, v, n

    def copy(self, t: int | None = None) -> Bar:
        bar = Bar(self.t if t is None else t, self.o, self.v, self.n)
        bar.h, bar.l, bar.c = self.h, self.l, self.c
        return bar

    def merge(self, later: Bar) -> None:
        """Extend this bar with a later one inside it."""
        self.h, self.l, self.c = max(self.h, later.h), min(self.l, later.l), later.c
        self.v += later.v
        self.n += later.n

    def export(self) -> list:
        return [self.t, self.o, self.h, self.l, self.c, self.v, self.n]


class _Series:
    __slots__ = ("closed", "current")

    def __init__(self, limit: int) -> None:
        self.closed: deque[Bar] = deque(maxlen=limit)
        self.current: Bar | None = None


class CandleBook:
    """Fed by `on_mark(coin, px USD, at epoch s)` and `on_fill(fill)` (a `PaperFill`); read by
    `candles(coin, interval, start_ms, end_ms)`. `listen(coin, interval, fn)` hears the bar
    being built each time a mark or fill changes it (the `candle` channel); nothing is done for
    a coin nobody listens to."""

    def __init__(self, limit: int = CANDLE_LIMIT) -> None:
        self.limit = limit
        self._series: dict[str, dict[str, _Series]] = {}
        self._listeners: dict[str, dict[str, list[BarListener]]] = {}  # coin -> interval -> listeners

    def listen(self, coin: str, interval: str, listener: BarListener) -> Callable[[], None]:
        """Call `listener(bar)` with the `interval` bar of `coin` whenever it changes; returns the
        unsubscribe."""
        if interval not in INTERVALS:
            raise KeyError(interval)
        self._listeners.setdefault(coin, {}).setdefault(interval, []).append(listener)

        def stop() -> None:
            by_interval = self._listeners.get(coin, {})
            if listener in by_interval.get(interval, []):
                by_interval[interval].remove(listener)
                if not by_interval[interval]:
                    del by_interval[interval]
                if not by_interval:
                    self._listeners.pop(coin, None)
        return stop

    def on_mark(self, coin: str, px: float, at: float) -> None:
        t = int(at * 1000)
        minute = self._coin(coin)["1m"]
        bar = minute.current
        if bar is not None and t // MINUTE * MINUTE == bar.t:
            if px > bar.h:
                bar.h = px
            elif px < bar.l:
                bar.l = px
            bar.c = px
        elif bar is None or t > bar.t:
            self._roll(coin, Bar(t // MINUTE * MINUTE, px))
        if coin in self._listeners:
            self._tell(coin)

    def on_fill(self, fill: PaperFill) -> None:
        coin, t = fill.coin, fill.time
        minute = self._coin(coin)["1m"]
        bar = minute.current
        if bar is None or t // MINUTE * MINUTE > bar.t:  # no mark yet this minute: the fill's price opens it
            self._roll(coin, Bar(t // MINUTE * MINUTE, fill.px))
            bar = minute.current
        assert bar is not None
        bar.v += fill.sz
        bar.n += 1
        if coin in self._listeners:
            self._tell(coin)

    def candles(self, coin: str, interval: str, start: int, end: int) -> list[dict[str, Any]]:
        """The bars of `interval` that overlap [start, end] (ms), oldest first, at most `limit`."""
        if interval not in INTERVALS:
            raise KeyError(interval)
        series = self._series.get(coin)
        if series is None:
            return []
        rows = [self.wire(coin, interval, b) for b in self._bars(series, interval)
                if b.t <= end and bar_close(interval, b.t) >= start]
        return rows[-self.limit:]

    def latest(self, coin: str, interval: str) -> dict[str, Any] | None:
        """The bar being built now (what the `candle` channel sends), or None before any mark."""
        series = self._series.get(coin)
        if series is None:
            return None
        live = self._live(series, interval)
        return self.wire(coin, interval, live[-1]) if live else None

    def close_before(self, coin: str, t: int) -> float | None:
        """The close of the last one-minute bar that opened at or before `t` (ms); the oldest
        bar's open when the history is younger; None before any mark (`prevDayPx`'s base)."""
        series = self._series.get(coin)
        if series is None:
            return None
        minute = series["1m"]
        if minute.current is not None and minute.current.t <= t:
            return minute.current.c
        for bar in reversed(minute.closed):
            if bar.t <= t:
                return bar.c
        oldest = minute.closed[0] if minute.closed else minute.current
        return oldest.o if oldest is not None else None

    @staticmethod
    def wire(coin: str, interval: str, bar: Bar) -> dict[str, Any]:
        return {"t": bar.t, "T": bar_close(interval, bar.t), "s": coin, "i": interval, "o": num(bar.o),
                "c": num(bar.c), "h": num(bar.h), "l": num(bar.l), "v": num(bar.v), "n": bar.n}

    # ---- internals --------------------------------------------------------------------------

    def _coin(self, coin: str) -> dict[str, _Series]:
        series = self._series.get(coin)
        if series is None:
            series = self._series[coin] = {interval: _Series(self.limit) for interval in INTERVALS}
        return series

    def _roll(self, coin: str, bar: Bar) -> None:
        """A new minute starts with `bar`: the finished minute is folded into the longer intervals."""
        series = self._series[coin]
        minute = series["1m"]
        done = minute.current
        if done is not None:
            minute.closed.append(done)
            for interval, longer in series.items():
                if interval == "1m":
                    continue
                opened = bar_open(interval, done.t)
                if longer.current is None or longer.current.t != opened:
                    if longer.current is not None:
                        longer.closed.append(longer.current)
                    longer.current = done.copy(opened)
                else:
                    longer.current.merge(done)
        minute.current = bar

    def _bars(self, series: dict[str, _Series], interval: str) -> list[Bar]:
        """Closed bars and the bar being built, oldest first."""
        return list(series[interval].closed) + self._live(series, interval)

    @staticmethod
    def _live(series: dict[str, _Series], interval: str) -> list[Bar]:
        """The bars not closed yet (copies): the one being built, the current minute merged in,
        preceded by the folded one when the current minute already opened a new bar."""
        live = series["1m"].current
        if interval == "1m":
            return [live.copy()] if live is not None else []
        folded = series[interval].current
        if live is None:
            return [folded.copy()] if folded is not None else []
        opened = bar_open(interval, live.t)
        if folded is None:
            return [live.copy(opened)]
        if folded.t == opened:
            current = folded.copy()
            current.merge(live)
            return [current]
        return [folded.copy(), live.copy(opened)]  # the minute opened a new bar: the folded one is complete

    def _tell(self, coin: str) -> None:
        series = self._series[coin]
        for interval, listeners in list(self._listeners.get(coin, {}).items()):
            live = self._live(series, interval)
            if live:
                row = self.wire(coin, interval, live[-1])
                for listener in list(listeners):
                    listener(row)
