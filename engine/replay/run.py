"""`perpguard replay`: a stress pass over real candles, through the paper exchange and the engine.

The position is already open at the first bar's open (equity × leverage of notional: policies
have no say over it). Each bar becomes marks every 3 s along its path. A simple strategy keeps
trying to add exposure each bar; the gate answers; the de-risk controller acts on the buffer.
The result: a timeline, the minimum buffer, and whether the venue liquidated the account.

`engine_dies_at` (`--engine-dies-at HH:MM[:SS]`, UTC on the first bar's date): from that moment
the engine processes nothing (it is cut off the venue's events, its ticks and tasks stop, the
strategy with it), while the paper exchange keeps receiving marks: only what rests on the venue
acts (venue stops, bracket children, resting orders), and the venue liquidates by its own rules.
The timeline marks the death (`engine_died`) and tells what the venue did afterwards
(`venue_stop_triggered`, `venue_stop_filled`, `venue_stop_cancelled`, `venue_order_filled`,
`venue_order_cancelled`, `liquidated`); the buffer and the equity are then the venue's.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import ROUND_DOWN
from pathlib import Path
from typing import Awaitable, Callable

from engine.venues import connector as venue
from engine.domain.clock import ManualClock
from engine.domain.increments import on_lot
from engine.domain.events import EngineEvent, EventKind
from engine.domain.increments import round_price
from engine.domain.coins import canonical_coin
from engine.domain.margin import margin_buffer
from engine.domain.model import OrderIntent, TradingState
from engine.venues.paper.exchange import PaperExchange
from engine.venues.paper.prices import Candle, bar_path, candle_marks, read_candles
from engine.venues.paper.universe import market_for
from engine.risk.policies import Policy
from engine.replay.quiet import QuietRun, VenueQuietRun
from engine.live.engine import Engine
from engine.live.execution import SubmitStatus

ADD_SHARE = 0.10  # the strategy tries to add 10% of equity of notional each bar
MAX_BACKOFF_BARS = 16
STEP_SECONDS = 3.0  # Hyperliquid updates its mark about every 3 s
MARKS_PER_BAR = 20
PATH_MARKS = (0, 6, 13, 19)  # the marks of a bar that sit on open, first extreme, second extreme, close
_QUIET = frozenset({EventKind.ORDER_SENT, EventKind.ORDER_FILLED, EventKind.NOTIFIED})  # not worth a timeline line each


@dataclass
class ReplayResult:
    market: str
    side: str
    leverage: float
    equity_start: float
    equity_end: float
    liquidated: bool
    min_margin_buffer: float | None
    bars: int
    marks: int
    # Not in the repr: asyncio.run reprs the finished task's result (Python 3.11's signal handling),
    # which for a week of bars costs more than the replay's fast path.
    events: list[dict] = field(default_factory=list, repr=False)
    series: dict[str, list[float]] = field(default_factory=dict, repr=False)
    engine_died_at: float | None = None  # epoch s (`--engine-dies-at`), None: the engine lived throughout

    def as_dict(self) -> dict:
        return {
            "market": self.market, "side": self.side, "leverage": self.leverage,
            "equity_start": self.equity_start, "equity_end": self.equity_end,
            "liquidated": self.liquidated, "min_margin_buffer": self.min_margin_buffer,
            "bars": self.bars, "marks": self.marks, "engine_died_at": self.engine_died_at, "events": self.events,
        }


VenueSetup = Callable[[PaperExchange], Awaitable[None]]


async def run_replay(csv_path: str | Path, market: str, side: str, leverage: float, equity: float,
                     policies: list[Policy], fast: bool = True, *, engine_dies_at: str | float | None = None,
                     venue_setup: VenueSetup | None = None) -> ReplayResult:
    """`fast=False` takes every mark through the engine (the reference the fast path is tested against).
    `engine_dies_at`: `HH:MM[:SS]` UTC on the first bar's date, or epoch seconds; ValueError
    (naming `--engine-dies-at`) when it is malformed or outside the file's span.
    `venue_setup(paper)`: awaited once the starting position is open, before the engine starts
    (tests place orders straight on the venue with it, e.g. a stop the engine finds resting)."""
    coin = canonical_coin(market)
    candles = read_candles(csv_path)
    if not candles:
        raise ValueError(f"{csv_path}: no bars")
    death = death_time(engine_dies_at, candles) if engine_dies_at is not None else None
    info = market_for(coin)
    clock = ManualClock(candles[0].open_time)
    paper = PaperExchange({coin: info}, equity=equity, clock=clock)
    paper.set_mark(coin, candles[0].open)
    await _open_position(paper, coin, side, leverage, equity, candles[0].open, info.sz_decimals)
    if venue_setup is not None:
        await venue_setup(paper)

    engine = Engine(paper, policies, clock)
    events: list[EngineEvent] = []
    engine.events.subscribe(events.append)
    await engine.start()
    after_death = VenueLog()

    series: dict[str, list[float]] = {"price": [], "buffer": [], "size": []}
    strategy = Strategy(coin, side)
    min_buffer: float | None = None
    n = 0

    async def mark(at: float, px: float) -> float | None:
        clock.set(at)
        paper.set_mark(coin, px)
        buffer = engine.book.margin_buffer  # as the mark lands, before the engine reacts to it
        await engine.tick()
        await engine.settle()
        return buffer

    quiet = QuietRun(engine, paper, clock, coin, until=death if death is not None else float("inf")) if fast else None
    alive = True
    venue_only: list[VenueQuietRun | None] = []  # the venue's fast path, once the engine is dead

    async def die() -> None:
        """The engine stops dead: cut off the venue's events, its tasks dropped, no more ticks."""
        nonlocal alive
        alive = False
        paper.unsubscribe(engine.on_venue_event)
        engine.tasks.cancel()
        await after_death.start(paper, death)
        venue_only.append(VenueQuietRun(paper, clock, coin) if fast else None)

    def venue_mark(at: float, px: float) -> float | None:
        clock.set(at)
        buffer = venue_buffer(paper, coin, px)  # as the mark lands, before the venue acts on it
        paper.set_mark(coin, px)
        return buffer

    def observe(bar_buffers: list[float | None]) -> None:
        nonlocal min_buffer
        seen = [b for b in bar_buffers if b is not None]
        if seen and (min_buffer is None or min(seen) < min_buffer):
            min_buffer = min(seen)

    for bar, candle in enumerate(candles):
        path = bar_path(candle)
        points = [(candle.open_time + k * STEP_SECONDS, px) for k, px in zip(PATH_MARKS, path)]
        n += MARKS_PER_BAR
        if alive and death is not None and points[0][0] >= death:
            await die()
        if not alive:
            venue_bar(paper, clock, coin, candle, points, series, observe, venue_only[0])
            if after_death.liquidated and not paper.ledger.holdings:
                break
            continue
        if quiet is not None and not (strategy.wants(bar) and not engine.liquidated):
            lowest = quiet.cross(points, candle.low, candle.high)
            if lowest is not None:
                sample(series, candle.open, quiet.first_buffer, quiet.size)
                observe([lowest])
                continue
        if quiet is not None:
            quiet.commit()
        buffer = await mark(candle.open_time, candle.open)
        position = engine.book.position(coin)
        sample(series, candle.open, buffer, position.size if position else 0.0)
        buffers = [buffer]
        if not engine.liquidated:
            await strategy.act(engine, bar)
        lowest = quiet.cross(points[1:], candle.low, candle.high) if quiet is not None else None
        if lowest is not None:
            buffers.append(lowest)
        else:
            if quiet is not None:
                quiet.commit()
            for tick in itertools.islice(candle_marks([candle], STEP_SECONDS, coin), 1, None):
                if alive and death is not None and tick.time >= death:
                    await die()
                buffers.append(await mark(tick.time, tick.px) if alive else venue_mark(tick.time, tick.px))
        observe(buffers)
        if engine.liquidated and not engine.book.positions() or after_death.liquidated and not paper.ledger.holdings:
            break
    if alive:
        if quiet is not None:
            quiet.commit()
        await engine.settle()
    elif venue_only[0] is not None:
        venue_only[0].commit()
    equity_end = (engine.book.equity or 0.0) if alive else paper.account_value()
    liquidated = engine.liquidated or paper_liquidated(events) or after_death.liquidated
    return ReplayResult(coin, side, leverage, equity, equity_end, liquidated, min_buffer, len(candles), n,
                        _compact(events) + after_death.rows, series, death)


def death_time(when: str | float, candles: list[Candle]) -> float:
    """When the engine dies (epoch s): `HH:MM[:SS]` is UTC on the first bar's date; it must fall
    within the file's span (from the first bar's open to its last mark, so it dies before a mark)."""
    start = candles[0].open_time
    end = candles[-1].open_time + (MARKS_PER_BAR - 1) * STEP_SECONDS
    if isinstance(when, str):
        match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", when.strip())
        h, m, sec = (int(g or 0) for g in match.groups()) if match else (99, 0, 0)
        if h > 23 or m > 59 or sec > 59:
            raise ValueError(f"--engine-dies-at {when!r}: give a UTC time as HH:MM or HH:MM:SS (e.g. 12:30)")
        at = start // 86_400 * 86_400 + h * 3600 + m * 60 + sec
        label = when.strip()
    else:
        at, label = float(when), f"{float(when):g}"
    if not start <= at <= end:
        raise ValueError(f"--engine-dies-at {label}: {_utc(at)} UTC is outside the file's span "
                         f"({_utc(start)} to {_utc(end)} UTC)")
    return at


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def venue_buffer(paper: PaperExchange, coin: str, px: float) -> float | None:
    """The venue's margin buffer with `coin` marked at `px` (the positions as they are now)."""
    ledger = paper.ledger
    value, maintenance = ledger.cash, 0.0
    for c, holding in ledger.holdings.items():
        mark = px if c == coin else ledger.mark(c)
        size = float(holding.size)
        value += size * (mark - holding.entry_px)
        maintenance += ledger.table(c).maintenance_margin(abs(size) * mark)
    return margin_buffer(value, maintenance)


def venue_bar(paper: PaperExchange, clock: ManualClock, coin: str, candle: Candle, points: list[tuple[float, float]],
              series: dict[str, list[float]], observe: Callable[[list[float | None]], None],
              quiet: VenueQuietRun | None) -> None:
    """One bar with the engine dead: the venue alone takes its marks (quiet bars are crossed)."""
    crossed = quiet.cross(points, candle.low, candle.high) if quiet is not None else None
    if crossed is not None:
        first, lowest = crossed
        sample(series, candle.open, first, quiet.size)  # type: ignore[union-attr]
        observe([lowest])
        return
    if quiet is not None:
        quiet.commit()
    buffers = []
    for tick in candle_marks([candle], STEP_SECONDS, coin):
        clock.set(tick.time)
        if not buffers:
            size = paper.position_size(coin)
        buffers.append(venue_buffer(paper, coin, tick.px))
        paper.set_mark(coin, tick.px)
    sample(series, candle.open, buffers[0], size)
    observe(buffers)


class VenueLog:
    """What the venue does once the engine is dead, as timeline rows (the engine's row shape:
    `kind`, `at`, `message` and the figures). A trigger order's rows say `venue_stop` (take-profits
    too: `tpsl` tells which)."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.liquidated = False
        self._triggers: dict[str, str] = {}  # oid -> "sl" | "tp", of the venue's trigger orders

    async def start(self, paper: PaperExchange, at: float | None) -> None:
        snap = await paper.snapshot()
        resting = []
        for o in snap.open_orders:
            if o.trigger_px is not None:
                self._triggers[o.oid] = o.tpsl or "sl"
                what = "stop-loss" if o.tpsl == "sl" else "take-profit"
                resting.append(f"{what} {o.side} {o.coin} at trigger {o.trigger_px:g}")
            else:
                resting.append(f"{'reduce-only ' if o.reduce_only else ''}{o.side} {o.size:g} {o.coin} @ {o.limit_px:g}")
        rests = f"{len(resting)} order(s) rest on the venue: {'; '.join(resting)}" if resting else "nothing rests on the venue"
        self.rows.append({"kind": "engine_died", "at": at if at is not None else snap.time,
                          "message": f"ENGINE DIED: from here only what rests on the venue acts; {rests}",
                          "resting": len(resting)})
        paper.subscribe(self.on_event)

    def on_event(self, event: venue.VenueEvent) -> None:
        if isinstance(event, venue.OrderTriggered):
            self._triggers[event.oid] = event.tpsl
            what = "stop-loss" if event.tpsl == "sl" else "take-profit"
            self._row("venue_stop_triggered", event.time,
                      f"VENUE {what.upper()} fired at mark {event.mark:g} (trigger {event.trigger_px:g}): "
                      f"reduce-only {event.side} {event.coin}",
                      oid=event.oid, coin=event.coin, side=event.side, tpsl=event.tpsl, trigger_px=event.trigger_px,
                      mark=event.mark)
        elif isinstance(event, venue.OrderFilled):
            stop = event.oid in self._triggers
            net = event.realized_pnl - event.fee
            self._row("venue_stop_filled" if stop else "venue_order_filled", event.time,
                      f"{'venue stop' if stop else 'resting order'} filled: {event.side} {event.size:g} {event.coin} "
                      f"@ {event.px:g}, realized {net:+,.2f} USD",
                      oid=event.oid, coin=event.coin, side=event.side, size=event.size, px=event.px, fee=event.fee,
                      realized_pnl=event.realized_pnl, remaining=event.remaining)
        elif isinstance(event, venue.OrderCancelled):
            stop = event.oid in self._triggers
            self._row("venue_stop_cancelled" if stop else "venue_order_cancelled", event.time,
                      f"the venue cancelled {'a stop' if stop else 'an order'} ({event.oid}): {event.reason}",
                      oid=event.oid, coin=event.coin, reason=event.reason)
        elif isinstance(event, venue.OrderRejected):
            self._row("venue_order_rejected", event.time, f"the venue rejected an order in flight: {event.reason}",
                      coin=event.coin, code=event.code)
        elif isinstance(event, venue.Liquidated):
            self.liquidated = True
            self._row("liquidated", event.time, f"LIQUIDATED by the venue: {event.coin} {event.size:g} at {event.px:g}, "
                                                f"loss {event.loss:,.2f} USD", coin=event.coin, px=event.px, loss=event.loss)

    def _row(self, kind: str, at: float, message: str, **data) -> None:
        self.rows.append({"kind": kind, "at": at, "message": message, **data})


def sample(series: dict[str, list[float]], px: float, buffer: float | None, size: float) -> None:
    """One chart point a bar: the price, buffer and position size at its open."""
    series["price"].append(px)
    series["buffer"].append(buffer if buffer is not None else float("nan"))
    series["size"].append(size)


def paper_liquidated(events: list[EngineEvent]) -> bool:
    return any(e.kind is EventKind.LIQUIDATED for e in events)


async def _open_position(paper: PaperExchange, coin: str, side: str, leverage: float, equity: float,
                         px: float, sz_decimals: int) -> None:
    """The starting position: equity × leverage of notional at the first open, outside the gate
    (trimmed by the fill's slippage and fee, which the venue's margin check counts)."""
    await paper.set_leverage(coin, max(1, int(round(leverage))))
    fill_px = px * (1 + paper.slippage)
    size = on_lot(equity / (fill_px * (1 / leverage + paper.taker_fee)), sz_decimals, ROUND_DOWN)
    order_side = "buy" if side == "long" else "sell"
    limit = round_price(px * (1.01 if order_side == "buy" else 0.99), sz_decimals, order_side)
    ack = await paper.place(venue.OrderRequest(coin, order_side, size, limit, "Ioc", False, "replay-open"))
    if not ack.ok:
        raise ValueError(f"the starting position could not be opened: {ack.error}")


class Strategy:
    """The stress pass's bot: it holds the position and tries to add ADD_SHARE of equity each
    bar. Like any sane bot it backs off after a denial (retries after 1, 2, 4, ... bars, at most
    MAX_BACKOFF_BARS apart) and stands down for good once trading is stopped."""

    def __init__(self, coin: str, side: str) -> None:
        self.coin, self.order_side = coin, "buy" if side == "long" else "sell"
        self.active = True
        self.next_bar = 0
        self.denials = 0

    def wants(self, bar: int) -> bool:
        return self.active and bar >= self.next_bar

    async def act(self, engine: Engine, bar: int) -> None:
        if not self.wants(bar):
            return
        equity = engine.book.equity or 0.0
        intent = OrderIntent(market=self.coin, side=self.order_side, notional_usd=max(ADD_SHARE * equity, 11.0),
                             client_id=f"replay-add-{bar}")
        result = await engine.submit(intent)
        if result.status is not SubmitStatus.DENIED:
            self.denials, self.next_bar = 0, bar + 1
            return
        if engine.trading.state is not TradingState.ACTIVE:
            self.active = False
            engine.events.emit(EventKind.STRATEGY_STOOD_DOWN, f"strategy stands down: trading is {engine.trading.state.value}")
            return
        self.next_bar = bar + min(MAX_BACKOFF_BARS, 2 ** self.denials)
        self.denials += 1


def _compact(events: list[EngineEvent]) -> list[dict]:
    """The timeline: repeated denials or rejections for the same reason fold into one line with a count."""
    out: list[dict] = []
    for e in events:
        if e.kind in _QUIET:
            continue
        row = e.as_dict()
        folds = e.kind in (EventKind.ORDER_DENIED, EventKind.ORDER_REJECTED) and out and out[-1]["kind"] == e.kind
        if folds and (out[-1].get("code"), out[-1]["message"][:40]) == (row.get("code"), row["message"][:40]):
            out[-1]["count"] = out[-1].get("count", 1) + 1
            out[-1]["last_at"] = e.at
            continue
        out.append(row)
    return out


def replay(csv_path: str, market: str, side: str, leverage: float, equity: float, policies: list[Policy],
           engine_dies_at: str | float | None = None) -> ReplayResult:
    return asyncio.run(run_replay(csv_path, market, side, leverage, equity, policies, engine_dies_at=engine_dies_at))
