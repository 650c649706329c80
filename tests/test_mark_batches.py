"""Marks that arrive together (one Hyperliquid `allMids` message) are one instant: the Book
moves exactly as it would one mark at a time, and the engine judges the account once, after
all of them, so a hedged move is never half-seen and a real breach still de-risks once."""

from __future__ import annotations

import json
from types import MappingProxyType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builders import T0
from engine.risk.book import Book
from engine.domain.clock import ManualClock
from engine.venues.connector import MarksUpdated, MarkUpdated, OrderRequest
from engine.risk.counters import RiskCounters
from engine.venues.hyperliquid.feed import Feed
from engine.venues.hyperliquid.stream import StreamTranslator
from engine.domain.margin import MarginTable
from engine.domain.model import Account, MarginMode, MarketInfo, Position, TradingState
from engine.domain.margin import MarginTier
from engine.venues.paper.exchange import PaperExchange
from engine.venues.paper.universe import PAPER_MARKETS
from engine.risk.policy_file import default_policies
from engine.live.engine import Engine

COINS = [f"C{i}" for i in range(8)]
TABLES = [MarginTable.flat(50), MarginTable.flat(10),
          MarginTable.from_tiers([MarginTier(0, 40), MarginTier(20_000, 20), MarginTier(80_000, 10)])]
prices = st.floats(0.5, 2_000.0, allow_nan=False)


@st.composite
def books_and_batches(draw):
    """A random account (cross and isolated legs, tiered, flat and unknown margin tables, legs
    without a mark) and two batches of marks, coins with and without a position."""
    markets = {c: MarketInfo(c, 2, draw(st.sampled_from(TABLES))) for c in COINS if draw(st.booleans())}
    positions = []
    for coin in draw(st.lists(st.sampled_from(COINS), unique=True, max_size=len(COINS))):
        size = draw(st.floats(-500.0, 500.0, allow_nan=False).filter(lambda s: abs(s) > 0.01))
        isolated = draw(st.booleans())
        positions.append(Position(coin, size, 100.0, 10, MarginMode.ISOLATED if isolated else MarginMode.CROSS,
                                  isolated_margin=draw(st.floats(100.0, 50_000.0)) if isolated else None,
                                  max_leverage=draw(st.sampled_from([None, 20]))))
    marks = draw(st.dictionaries(st.sampled_from(COINS), prices))
    batches = draw(st.lists(st.dictionaries(st.sampled_from(COINS + ["XYZ"]), prices, min_size=1), min_size=1, max_size=3))
    return markets, positions, marks, batches


def figures(book: Book) -> tuple:
    per_coin = tuple((book.leg_figures(c), book.liquidation_px(c), book.isolated_buffer(c)) for c in COINS)
    return (book.equity, book.cross_account_value, book.gross_notional, book.maintenance_margin,
            book.cross_maintenance_margin, book.margin_buffer, book.account_leverage, book.all_priced,
            dict(book.marks), dict(book.mark_times), per_coin)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(books_and_batches())
def test_a_batch_leaves_the_book_exactly_as_the_same_marks_one_at_a_time(case):
    markets, positions, marks, batches = case
    one_by_one, batched = Book(markets), Book(markets)
    for book in (one_by_one, batched):
        book.load(Account(100_000.0, 90_000.0, 90_000.0, T0), positions, marks=marks, at=T0)
    for step, batch in enumerate(batches, start=1):
        for coin, px in batch.items():
            one_by_one.set_mark(coin, px, T0 + step)
        batched.set_marks(MappingProxyType(batch), T0 + step)
        assert figures(batched) == figures(one_by_one)  # exactly: same arithmetic, same order


def test_volatility_counts_every_mark_of_a_batch():
    one_by_one, batched = RiskCounters(), RiskCounters()
    one_by_one.vol_lookback_minutes = batched.vol_lookback_minutes = 60
    for minute in range(30):
        marks = {"BTC": 50_000.0 * (1 + 0.002 * (-1) ** minute), "ETH": 3_000.0 + minute}
        for coin, px in marks.items():
            one_by_one.on_mark(coin, px, T0 + 60 * minute)
        batched.on_marks(marks, T0 + 60 * minute)
    for coin in ("BTC", "ETH"):
        assert batched.volatility[coin].annualized() == one_by_one.volatility[coin].annualized() is not None


# ---- the Hyperliquid stream ----------------------------------------------------------------


def mids_message(mids: dict[str, float | str]) -> str:
    return json.dumps({"channel": "allMids", "data": {"mids": {c: str(px) for c, px in mids.items()}}})


def test_an_allmids_message_becomes_one_batch_of_the_listed_perps_that_moved():
    clock, mono = ManualClock(T0), [100.0]
    events = []
    stream = StreamTranslator("0xabc", clock, events.append, {"BTC", "ETH", "SOL", "DOGE"}, monotonic=lambda: mono[0])
    stream.handle("activeAssetCtx", {"coin": "SOL", "ctx": {"markPx": "150.5", "funding": "0.00001"}})
    assert events == [MarkUpdated("SOL", 150.5, T0)]  # SOL's mark comes from its context from now on
    feed = Feed("ws://unused", stream.handle, lambda _s: None, lambda _l: None, 10.0)
    first = {"BTC": 50_000.5, "ETH": 3_000.25, "SOL": 149.0, "DOGE": 0.15, "@107": 12.0, "PURR/USDC": 0.2, "XYZ": 1.0}

    feed._read(mids_message(first))
    assert events[1:] == [MarksUpdated({"BTC": 50_000.5, "ETH": 3_000.25, "DOGE": 0.15}, T0)]
    with pytest.raises(TypeError):
        events[1].marks["BTC"] = 1.0  # a value, read-only
    assert stream.marks["SOL"] == 150.5 and "@107" not in stream.marks

    clock.advance(0.4)
    mono[0] += 0.4
    feed._read(mids_message(first | {"ETH": 3_001.0}))  # only ETH moved
    assert events[2:] == [MarksUpdated({"ETH": 3_001.0}, T0 + 0.4)]
    assert stream.mark_times["BTC"] == T0 + 0.4  # the connector saw BTC then, and says so in snapshots

    mono[0] += 0.4
    feed._read(mids_message(first | {"ETH": 3_001.0}))
    assert len(events) == 3  # nothing moved, nothing due

    mono[0] += 0.3
    feed._read(mids_message(first | {"ETH": 3_001.0}))  # a second since BTC and DOGE were reported, not ETH
    assert events[3:] == [MarksUpdated({"BTC": 50_000.5, "DOGE": 0.15}, T0 + 0.4)]


# ---- the engine ----------------------------------------------------------------------------


async def paper_engine(equity: float, orders: list[tuple[str, str, str, str]], leverage: dict[str, int]):
    clock = ManualClock(T0)
    paper = PaperExchange(PAPER_MARKETS, equity=equity, clock=clock)
    for coin, px in (("BTC", 50_000.0), ("ETH", 3_000.0), ("SOL", 150.0)):
        paper.set_mark(coin, px)
    for coin, lev in leverage.items():
        await paper.set_leverage(coin, lev)
    for coin, side, size, px in orders:
        assert (await paper.place(OrderRequest(coin, side, size, px, "Ioc"))).status == "filled"
    engine = Engine(paper, default_policies(), clock)
    await engine.start()
    return engine, paper, clock


def kinds(engine: Engine) -> list[str]:
    return [e.kind for e in engine.events.recent]


async def test_a_message_whose_marks_together_cross_warn_stops_trading_and_derisks_once():
    # 40x BTC and 25x ETH, buffer ≈ 52%: neither move alone crosses warn (50%), both together do
    engine, paper, clock = await paper_engine(100_000.0, [("BTC", "buy", "50", "50500"), ("ETH", "buy", "250", "3030")],
                                              {"BTC": 40, "ETH": 25})
    stream = StreamTranslator("0xabc", clock, engine.on_venue_event, PAPER_MARKETS)
    feed = Feed("ws://unused", stream.handle, lambda _s: None, lambda _l: None, 10.0)
    assert 0.5 < engine.book.margin_buffer < 0.53
    clock.advance(1)
    moved = {"BTC": 49_950.0, "ETH": 2_991.0, "SOL": 151.0}
    for coin, px in moved.items():
        paper.glide_mark(coin, px)  # the venue moved; the feed tells the engine in one message

    feed._read(mids_message(moved))
    assert engine.trading.state is TradingState.REDUCE_ONLY and "margin_buffer" in engine.trading.causes
    await engine.settle()

    assert kinds(engine).count("derisk_order") == 1 and "reduce_filled" in kinds(engine)
    assert kinds(engine).count("state_changed") == 1  # ACTIVE -> REDUCE_ONLY, once
    assert "panic_exit" not in kinds(engine)
    assert engine.book.margin_buffer == pytest.approx(engine.protection.buffer_rules.targetBuffer, abs=0.01)
    assert 0 < paper.position_size("BTC") < 50 and paper.position_size("ETH") == 250  # the largest risk first


async def test_a_hedged_move_in_one_message_trips_nothing_that_one_mark_at_a_time_would():
    # long BTC, short ETH, equal notional; buffer ≈ 55%. Both fall 1%: the account does not move.
    orders = [("BTC", "buy", "30", "50500"), ("ETH", "sell", "500", "2970")]
    moved = {"BTC": 49_500.0, "ETH": 2_970.0}
    batched, paper, clock = await paper_engine(110_000.0, orders, {"BTC": 40, "ETH": 25})
    before = batched.book.margin_buffer
    clock.advance(1)
    for coin, px in moved.items():
        paper.glide_mark(coin, px)
    batched.on_venue_event(MarksUpdated(MappingProxyType(moved), clock.now()))
    await batched.settle()
    assert batched.trading.state is TradingState.ACTIVE and "breaker_tripped" not in kinds(batched)
    assert batched.book.margin_buffer == pytest.approx(before, abs=0.01)

    # the same marks one at a time: BTC's fall alone reads as a 15k loss and a buffer below warn
    one_by_one, paper, clock = await paper_engine(110_000.0, orders, {"BTC": 40, "ETH": 25})
    clock.advance(1)
    for coin, px in moved.items():
        paper.glide_mark(coin, px)
        one_by_one.on_venue_event(MarkUpdated(coin, px, clock.now()))
    assert one_by_one.book.margin_buffer == batched.book.margin_buffer  # the same account in the end
    assert one_by_one.trading.state is TradingState.REDUCE_ONLY  # ...but it was judged half-way
    await one_by_one.settle()
