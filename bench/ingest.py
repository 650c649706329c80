"""Mark ingest: Hyperliquid `allMids` messages of 200 coins processed by the engine, per second,
counted in marks (200 a message).

The path is the live one, without the network: the raw websocket text goes through
`Feed._read` (JSON parsing, channel dispatch), `StreamTranslator` (listed perps only, the
once-a-second refresh filter, the connector's marks) and the connector's handler loop into
`Engine.on_venue_event`, which moves the Book and the counters and runs `protection.after_update`
(breakers, margin buffer). The Engine has the default policies and an account with positions
in 150 of the 200 coins (tiered and flat margin tables, cross and isolated), healthy enough
that no de-risk starts: the steady state of a live session.
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import time

from bench.venue import OfflineVenue
from engine.domain.clock import ManualClock
from engine.venues.connector import VenueSnapshot
from engine.venues.hyperliquid.feed import Feed
from engine.venues.hyperliquid.stream import StreamTranslator
from engine.domain.margin import MarginTable
from engine.domain.model import Account, MarginMode, MarketInfo, Position
from engine.domain.margin import MarginTier
from engine.risk.policy_file import default_policies
from engine.live.engine import Engine

T0 = 1_700_006_400.0  # midnight UTC: no day rolls over inside a run
COINS = 200
POSITIONS = 150
MESSAGE_SECONDS = 0.2  # clock time between two allMids messages (a few blocks)
CYCLE = 64  # distinct messages, played in a loop


def _markets() -> tuple[dict[str, MarketInfo], dict[str, float]]:
    markets, prices = {}, {}
    for i in range(COINS):
        coin = "BTC" if i == 0 else "ETH" if i == 1 else f"C{i:03d}"
        if i < 10:  # the majors: two tiers, as Hyperliquid lists them
            table = MarginTable.from_tiers([MarginTier(0, 40 if i == 0 else 25), MarginTier(50_000_000, 20 if i == 0 else 10)])
        else:
            table = MarginTable.flat((3, 5, 10, 20)[i % 4])
        markets[coin] = MarketInfo(coin, 2, table)
        prices[coin] = 65_000.0 if i == 0 else 3_200.0 if i == 1 else 0.5 + (i * 37 % 400)
    return markets, prices


def _positions(prices: dict[str, float]) -> tuple[Account, tuple[Position, ...]]:
    positions = []
    for i, (coin, px) in enumerate(list(prices.items())[:POSITIONS]):
        size = round((20_000.0 if i % 3 else 5_000.0) / px, 2) * (1 if i % 2 else -1)
        if i % 10 == 9:
            positions.append(Position(coin, size, px, 5, MarginMode.ISOLATED, isolated_margin=abs(size) * px / 5))
        else:
            positions.append(Position(coin, size, px, 5))
    equity = 4_000_000.0  # ~2.4M gross: leverage ~0.6, buffer ~0.97
    isolated = sum(p.isolated_margin or 0.0 for p in positions)
    return Account(equity, equity - isolated, equity, T0), tuple(positions)


def _messages(prices: dict[str, float]) -> list[str]:
    """`CYCLE` websocket texts; every coin's mid differs from one message to the next (5
    significant figures, as Hyperliquid prints them)."""
    texts = []
    for k in range(CYCLE):
        wave = math.sin(2 * math.pi * k / CYCLE)
        mids = {}
        for j, (coin, px) in enumerate(prices.items()):
            moved = px * (1 + 0.002 * wave + (0.0003 if k % 2 else -0.0003) * (1 + j % 3))
            mids[coin] = f"{float(f'{moved:.5g}'):g}" if moved < 1e5 else str(round(moved))
        texts.append(json.dumps({"channel": "allMids", "data": {"mids": mids}}))
    return texts


async def build() -> tuple[Engine, Feed, ManualClock, list[str]]:
    markets, prices = _markets()
    account, positions = _positions(prices)
    clock = ManualClock(T0)
    venue = OfflineVenue(markets, VenueSnapshot(account, positions, (), dict(prices), T0))
    engine = Engine(venue, default_policies(), clock)
    await engine.start()
    stream = StreamTranslator("0x" + "ab" * 20, clock, venue.emit, markets)
    feed = Feed("ws://offline", stream.handle, lambda _s: None, lambda _l: None, 10.0)
    return engine, feed, clock, _messages(prices)


def _marks_seen(engine: Engine) -> int:
    return sum(1 for t in engine.book.mark_times.values() if t == engine.clock.now())


async def _rate(messages: int, repeats: int) -> dict:
    engine, feed, clock, texts = await build()
    read, advance = feed._read, clock.advance
    for raw in texts:  # warm up; every coin must arrive in every message
        advance(MESSAGE_SECONDS)
        read(raw)
        assert _marks_seen(engine) == COINS, "a message did not carry 200 marks to the Book"
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(messages):
            advance(MESSAGE_SECONDS)
            read(texts[i % CYCLE])
        rates.append(messages * COINS / (time.perf_counter() - t0))
    buffer = engine.book.margin_buffer
    await engine.settle()  # the venue stops the positions asked for
    assert not engine.busy and engine.trading.state.value == "ACTIVE", "the bench account must stay healthy"
    await engine.stop()
    return {"marks_per_s": statistics.median(rates), "margin_buffer": buffer, "positions": len(engine.book.positions())}


def measure(messages: int = 2_000, repeats: int = 5) -> dict:
    """Marks per second (median of `repeats` runs of `messages` allMids messages)."""
    return asyncio.run(_rate(messages, repeats))


if __name__ == "__main__":
    print(measure())
