"""`perpguard replay`: a stress pass over real candles, through the paper exchange and the engine.

The position is already open at the first bar's open (equity × leverage of notional: policies
have no say over it). Each bar becomes marks every 3 s along its path. A simple strategy keeps
trying to add exposure each bar; the gate answers; the de-risk controller acts on the buffer.
The result: a timeline, the minimum buffer, and whether the venue liquidated the account.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from decimal import ROUND_DOWN
from pathlib import Path

from engine.venues import connector as venue
from engine.domain.clock import ManualClock
from engine.domain.increments import on_lot
from engine.domain.events import EngineEvent, EventKind
from engine.domain.increments import round_price
from engine.domain.coins import canonical_coin
from engine.domain.model import OrderIntent, TradingState
from engine.venues.paper.exchange import PaperExchange
from engine.venues.paper.prices import bar_path, candle_marks, read_candles
from engine.venues.paper.universe import market_for
from engine.risk.policies import Policy
from engine.replay.quiet import QuietRun
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
    events: list[dict] = field(default_factory=list)
    series: dict[str, list[float]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "market": self.market, "side": self.side, "leverage": self.leverage,
            "equity_start": self.equity_start, "equity_end": self.equity_end,
            "liquidated": self.liquidated, "min_margin_buffer": self.min_margin_buffer,
            "bars": self.bars, "marks": self.marks, "events": self.events,
        }


async def run_replay(csv_path: str | Path, market: str, side: str, leverage: float, equity: float,
                     policies: list[Policy], fast: bool = True) -> ReplayResult:
    """`fast=False` takes every mark through the engine (the reference the fast path is tested against)."""
    coin = canonical_coin(market)
    candles = read_candles(csv_path)
    if not candles:
        raise ValueError(f"{csv_path}: no bars")
    info = market_for(coin)
    clock = ManualClock(candles[0].open_time)
    paper = PaperExchange({coin: info}, equity=equity, clock=clock)
    paper.set_mark(coin, candles[0].open)
    await _open_position(paper, coin, side, leverage, equity, candles[0].open, info.sz_decimals)

    engine = Engine(paper, policies, clock)
    events: list[EngineEvent] = []
    engine.events.subscribe(events.append)
    await engine.start()

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

    quiet = QuietRun(engine, paper, clock, coin) if fast else None

    def observe(bar_buffers: list[float | None]) -> None:
        nonlocal min_buffer
        seen = [b for b in bar_buffers if b is not None]
        if seen and (min_buffer is None or min(seen) < min_buffer):
            min_buffer = min(seen)

    for bar, candle in enumerate(candles):
        path = bar_path(candle)
        points = [(candle.open_time + k * STEP_SECONDS, px) for k, px in zip(PATH_MARKS, path)]
        n += MARKS_PER_BAR
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
                buffers.append(await mark(tick.time, tick.px))
        observe(buffers)
        if engine.liquidated and not engine.book.positions():
            break
    if quiet is not None:
        quiet.commit()
    await engine.settle()
    return ReplayResult(coin, side, leverage, equity, engine.book.equity or 0.0, engine.liquidated or paper_liquidated(events),
                        min_buffer, len(candles), n, _compact(events), series)


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


def replay(csv_path: str, market: str, side: str, leverage: float, equity: float, policies: list[Policy]) -> ReplayResult:
    return asyncio.run(run_replay(csv_path, market, side, leverage, equity, policies))
