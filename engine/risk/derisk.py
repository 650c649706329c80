"""De-risk sizing (SPEC section 6): how much to reduce, and in which market.

Pure functions over the Book. The engine loop (engine/live/engine.py) owns the lifecycle:
one reducing order at a time, waiting for its result before the next.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal

from engine.risk.book import Book
from engine.domain.increments import on_lot, round_price


@dataclass(frozen=True, slots=True)
class ReduceOrder:
    """One reduce-only IOC: `size` unsigned base units on the lot, `limit_px` USD on the tick."""

    coin: str
    side: str
    size: Decimal
    limit_px: Decimal
    why: str


def protected_price(mark: float, side: str, slippage: float, sz_decimals: int) -> Decimal:
    """The IOC limit that caps slippage: mark × (1 ± slippage), on the tick, never more aggressive."""
    raw = mark * (1 + slippage) if side == "buy" else mark * (1 - slippage)
    return round_price(raw, sz_decimals, side)


def largest_contributor(book: Book) -> str | None:
    """The position with the largest maintenance margin (the biggest claim on the buffer)."""
    best, best_mm = None, -1.0
    for position in book.positions():
        _, mm, _ = book.leg_figures(position.coin)
        if mm is not None and mm > best_mm:
            best, best_mm = position.coin, mm
    return best


def reduction_to_target(book: Book, target_buffer: float, slippage: float) -> ReduceOrder | None:
    """The one reduce-only order that brings the account buffer back to `target_buffer`, taken
    from the largest contributor (all of it, if that is not enough: the next order takes the
    next). None when the buffer is already there or nothing can be computed."""
    equity, mm = book.equity, book.maintenance_margin
    if equity is None or mm is None:
        return None
    excess = mm - (1.0 - target_buffer) * max(equity, 0.0)  # USD of maintenance margin to shed
    if excess <= 0:
        return None
    coin = largest_contributor(book)
    if coin is None:
        return None
    position = book.position(coin)
    mark = book.marks.get(coin)
    info = book.markets.get(coin)
    if mark is None or info is None or info.sz_decimals is None:
        return None
    notional, _, _ = book.leg_figures(coin)
    rate = book.margin_table(coin).maintenance_rate(notional)
    wanted = excess / rate / mark  # base units to cut
    held = on_lot(abs(position.size), info.sz_decimals, ROUND_DOWN)
    size = min(on_lot(wanted, info.sz_decimals, ROUND_UP), held)
    if size <= 0:
        return None
    side = "sell" if position.size > 0 else "buy"
    return ReduceOrder(coin, side, size, protected_price(mark, side, slippage, info.sz_decimals),
                       f"buffer below warn: cut {coin} toward target {target_buffer:g}")


def flatten_orders(book: Book, slippage: float) -> list[ReduceOrder]:
    """Reduce-only IOCs that close every position, sized from the live position (lot, down)."""
    orders = []
    for position in book.positions():
        info = book.markets.get(position.coin)
        mark = book.marks.get(position.coin)
        if info is None or info.sz_decimals is None or mark is None:
            continue
        size = on_lot(abs(position.size), info.sz_decimals, ROUND_DOWN)
        if size <= 0:
            continue
        side = "sell" if position.size > 0 else "buy"
        orders.append(ReduceOrder(position.coin, side, size, protected_price(mark, side, slippage, info.sz_decimals),
                                  "panic exit: close the position"))
    return orders
