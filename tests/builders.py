"""Small builders for engine tests: an account, positions and marks in a few lines, and a paper
exchange at those marks."""

from __future__ import annotations

from engine.risk.book import Book
from engine.domain.clock import ManualClock
from engine.risk.counters import RiskCounters
from engine.risk.gate import RiskGate
from engine.domain.margin import MarginTable
from engine.domain.model import Account, MarketInfo, OrderIntent, Position
from engine.risk.policies import parse_policies
from engine.risk.trading_state import TradingStateMachine
from engine.venues.connector import OrderRequest
from engine.venues.paper import PaperExchange

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC, a Tuesday

MARKETS = {
    "BTC": MarketInfo("BTC", 5, MarginTable.flat(40)),
    "ETH": MarketInfo("ETH", 4, MarginTable.flat(25)),
    "SOL": MarketInfo("SOL", 2, MarginTable.flat(20)),
    "DOGE": MarketInfo("DOGE", 0, MarginTable.flat(10)),
}
MARKS = {"BTC": 50_000.0, "ETH": 3_000.0, "SOL": 100.0, "DOGE": 0.1}


def make_book(equity: float = 100_000.0, positions: dict[str, float] | None = None,
              marks: dict[str, float] | None = None, at: float = T0) -> Book:
    """A cross account with `equity` USD and positions {coin: signed size} entered at mark."""
    marks = dict(MARKS if marks is None else marks)
    book = Book(MARKETS)
    pos = [Position(coin, size, marks[coin], leverage=20) for coin, size in (positions or {}).items()]
    book.load(Account(equity, equity, equity, at), pos, marks=marks, at=at)
    return book


def make_gate(bodies: list[dict], book: Book | None = None, at: float = T0,
              counters: RiskCounters | None = None) -> tuple[RiskGate, ManualClock]:
    """A gate over `book` (default: 100k equity, flat) with the given policy bodies."""
    book = book or make_book(at=at)
    counters = counters or RiskCounters()
    if book.equity is not None:
        counters.on_equity(book.equity, at)
    clock = ManualClock(at)
    return RiskGate(parse_policies(bodies), book, counters, clock, TradingStateMachine()), clock


def order(market: str = "BTC", side: str = "buy", **kw) -> OrderIntent:
    return OrderIntent(market=market, side=side, **kw)


def paper_at_marks(equity: float = 100_000.0, **kw) -> tuple[PaperExchange, ManualClock, list]:
    """A paper exchange on MARKETS at MARKS at T0 (a manual clock), and the list its events land
    in (emptied of the marks' own)."""
    clock = ManualClock(T0)
    ex = PaperExchange(MARKETS, equity=equity, clock=clock, **kw)
    events: list = []
    ex.subscribe(events.append)
    for coin, px in MARKS.items():
        ex.set_mark(coin, px)
    events.clear()
    return ex, clock, events


def venue_order(side: str, size: float, px: float, tif: str = "Ioc", coin: str = "BTC", **kw) -> OrderRequest:
    """An order for the venue (sizes and prices as strings, as the connector sends them)."""
    return OrderRequest(coin, side, str(size), str(px), tif, **kw)
