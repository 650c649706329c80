"""Market data for the paper exchange: a seeded random walk (volatility regimes, jumps, a
flash-crash scenario) and real candles replayed as marks.

Everything yields `MarkTick(time, coin, px)`: epoch seconds, canonical coin, USD. Feed them to
the venue with `feed(exchange, ticks, clock)` (sets a ManualClock to each tick's time).
"""

from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple, Protocol

from engine.domain.clock import ManualClock

HOUR = 3600.0


class MarkTick(NamedTuple):
    time: float  # epoch seconds
    coin: str
    px: float  # USD


# ---- random walk ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VolRegime:
    """A volatility regime: `hourly_vol` the standard deviation of log returns over an hour
    (fraction), `mean_seconds` how long it lasts on average."""

    name: str
    hourly_vol: float
    mean_seconds: float


DEFAULT_REGIMES = (
    VolRegime("calm", 0.004, 4 * HOUR),
    VolRegime("normal", 0.008, 3 * HOUR),
    VolRegime("stormy", 0.025, 1 * HOUR),
)


@dataclass(frozen=True, slots=True)
class FlashCrash:
    """A scripted crash laid over the walk: starting `start_seconds` after the first tick, the
    price falls by `drop` (fraction) linearly over `fall_seconds`, then wins back `rebound`
    (fraction of the drop) over `rebound_seconds`, and stays there."""

    start_seconds: float = 600.0
    drop: float = 0.15
    fall_seconds: float = 180.0
    rebound: float = 0.5
    rebound_seconds: float = 600.0

    def factor(self, elapsed: float) -> float:
        """Multiplier on the walk's price `elapsed` seconds after the first tick."""
        t = elapsed - self.start_seconds
        if t <= 0:
            return 1.0
        bottom = 1.0 - self.drop
        if t <= self.fall_seconds:
            return 1.0 - self.drop * t / self.fall_seconds
        settled = bottom + self.drop * self.rebound
        t -= self.fall_seconds
        if t >= self.rebound_seconds:
            return settled
        return bottom + (settled - bottom) * t / self.rebound_seconds


class RandomWalk:
    """Seeded marks for several coins, every `step_seconds`: geometric Brownian steps whose
    volatility follows a Markov chain of regimes, a shared market factor (`correlation` between
    coins), rare jumps (`jump_probability` per step, size ~ `jump_size`, either sign, on all
    coins at once), and an optional `FlashCrash`. The same seed gives the same marks."""

    def __init__(self, seed: int, start_prices: dict[str, float], *, start_time: float = 1_700_000_000.0,
                 step_seconds: float = 1.0, regimes: tuple[VolRegime, ...] = DEFAULT_REGIMES,
                 jump_probability: float = 0.0005, jump_size: float = 0.02, correlation: float = 0.7,
                 crash: FlashCrash | None = None) -> None:
        if step_seconds <= 0:
            raise ValueError("step_seconds must be positive")
        if not regimes:
            raise ValueError("at least one volatility regime")
        self.seed = seed
        self.start_prices = dict(start_prices)
        self.start_time = start_time
        self.step_seconds = step_seconds
        self.regimes = regimes
        self.jump_probability = jump_probability
        self.jump_size = jump_size
        self.correlation = correlation
        self.crash = crash

    def __iter__(self) -> Iterator[MarkTick]:
        rng = random.Random(self.seed)
        regime = 0
        log_px = {coin: math.log(px) for coin, px in self.start_prices.items()}
        idio = math.sqrt(max(0.0, 1.0 - self.correlation ** 2))
        step_hours = self.step_seconds / HOUR
        n = 0
        while True:
            elapsed = n * self.step_seconds
            factor = self.crash.factor(elapsed) if self.crash else 1.0
            for coin in self.start_prices:
                yield MarkTick(self.start_time + elapsed, coin, _five_figures(math.exp(log_px[coin]) * factor))
            n += 1
            if rng.random() < self.step_seconds / self.regimes[regime].mean_seconds:
                regime = rng.randrange(len(self.regimes))
            sigma = self.regimes[regime].hourly_vol * math.sqrt(step_hours)
            market = rng.gauss(0.0, 1.0)
            jump = 0.0
            if rng.random() < self.jump_probability:
                jump = rng.choice((-1.0, 1.0)) * self.jump_size * rng.uniform(0.5, 1.5)
            for coin in self.start_prices:
                shock = self.correlation * market + idio * rng.gauss(0.0, 1.0)
                log_px[coin] += sigma * shock - 0.5 * sigma * sigma + jump

    def take(self, seconds: float) -> list[MarkTick]:
        """Every tick of the first `seconds` (inclusive of time 0, exclusive of the end)."""
        end = self.start_time + seconds
        out = []
        for tick in self:
            if tick.time >= end:
                return out
            out.append(tick)
        return out  # pragma: no cover - the walk is endless


def flash_crash(seed: int, start_prices: dict[str, float], **kwargs) -> RandomWalk:
    """The named scenario: a calm-ish walk with a 15% crash 10 minutes in, over 3 minutes,
    then half of it back over 10 minutes (override with `crash=FlashCrash(...)`)."""
    kwargs.setdefault("crash", FlashCrash())
    kwargs.setdefault("jump_probability", 0.0)
    return RandomWalk(seed, start_prices, **kwargs)


SCENARIOS = {"random-walk": RandomWalk, "flash-crash": flash_crash}


def _five_figures(px: float) -> float:
    """Marks carry 5 significant figures, as Hyperliquid's do (keeps prices on the tick)."""
    return float(f"{px:.5g}")


# ---- candles -------------------------------------------------------------------------------


class Candle(NamedTuple):
    """One bar. `open_time` epoch seconds; prices USD; `volume` base units. (A NamedTuple: a
    replay reads thousands a second, and it is immutable all the same.)"""

    open_time: float
    open: float
    high: float
    low: float
    close: float
    volume: float


CANDLE_COLUMNS = ("open_time_ms", "open", "high", "low", "close", "volume_btc")


def walk_candles(walk: RandomWalk, bars: int, coin: str = "BTC", marks_per_bar: int = 20) -> list[Candle]:
    """`bars` one-minute-style bars of `coin` sampled from a seeded walk (one bar per
    `marks_per_bar` steps): long, reproducible input for replay benchmarks."""
    ticks = (t for t in walk if t.coin == coin)
    candles = []
    for _ in range(bars):
        step = [next(ticks) for _ in range(marks_per_bar)]
        pxs = [t.px for t in step]
        candles.append(Candle(step[0].time, pxs[0], max(pxs), min(pxs), pxs[-1], 0.0))
    return candles


def write_candles(path: str | Path, candles: Iterable[Candle]) -> None:
    """The Binance kline layout `read_candles` reads."""
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(CANDLE_COLUMNS)
        for c in candles:
            out.writerow([int(round(c.open_time * 1000)), c.open, c.high, c.low, c.close, c.volume])


def read_candles(path: str | Path) -> list[Candle]:
    """Bars from a Binance kline CSV with columns open_time_ms,open,high,low,close,volume_btc."""
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        missing = [c for c in CANDLE_COLUMNS if c not in header]
        if missing:
            raise ValueError(f"{path}: missing columns {', '.join(missing)}")
        at = [header.index(c) for c in CANDLE_COLUMNS]
        candles = []
        for line, row in enumerate(reader, start=2):
            try:
                t, o, h, lo, c, v = (row[i] for i in at)
                candle = Candle(int(t) / 1000.0, float(o), float(h), float(lo), float(c), float(v))
            except (IndexError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{line}: {exc}") from None
            if not candle.low <= min(candle.open, candle.close) <= max(candle.open, candle.close) <= candle.high:
                raise ValueError(f"{path}:{line}: open/close outside low..high")
            candles.append(candle)
    return candles


def bar_path(candle: Candle) -> tuple[float, float, float, float]:
    """The order a bar's extremes are visited: open → low → high → close for a down bar
    (close < open), open → high → low → close otherwise (the wick against the move comes first)."""
    if candle.close < candle.open:
        return candle.open, candle.low, candle.high, candle.close
    return candle.open, candle.high, candle.low, candle.close


def candle_marks(candles: Iterable[Candle], step_seconds: float = 3.0, coin: str = "BTC",
                 bar_seconds: float = 60.0) -> Iterator[MarkTick]:
    """Marks every `step_seconds` along each bar's path (20 per 60 s bar at 3 s), linear between
    the path points. The four path points sit on marks 0, ⅓, ⅔ and the last of the bar (indices
    0, 6, 13, 19 for 20 marks), so the bar's open, low, high and close are each hit exactly."""
    count = int(round(bar_seconds / step_seconds))
    if count < 4:
        raise ValueError("need at least 4 marks per bar to visit open, low, high and close")
    anchors = [round(i * (count - 1) / 3) for i in range(4)]
    for candle in candles:
        points = bar_path(candle)
        for k in range(count):
            leg = max(i for i in range(3) if anchors[i] <= k)
            a, b = anchors[leg], anchors[leg + 1]
            frac = (k - a) / (b - a)
            px = points[leg + 1] if frac == 1 else points[leg] + (points[leg + 1] - points[leg]) * frac
            yield MarkTick(candle.open_time + k * step_seconds, coin, px)


# ---- driving -------------------------------------------------------------------------------


class MarkSink(Protocol):
    def set_mark(self, coin: str, px: float) -> bool: ...


def feed(exchange: MarkSink, ticks: Iterable[MarkTick], clock: ManualClock) -> int:
    """Replay ticks into a venue, moving the ManualClock to each tick's time first (time never
    goes back). Returns the number of ticks fed."""
    n = 0
    for tick in ticks:
        if tick.time > clock.now():
            clock.set(tick.time)
        exchange.set_mark(tick.coin, tick.px)
        n += 1
    return n
