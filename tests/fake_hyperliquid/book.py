"""A finite L2 book per market, regenerated around the mark.

`levels` price levels per side, the i-th (1-based) at mark × (1 ∓ i × spacing), rounded to the
market's tick (at least one tick apart), each holding `notional` USD of size (rounded down to the
lot). A taker consumes levels inside its limit, best first; what it took is gone until the book
is regenerated (the next mark, or the next block).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from fake_hyperliquid.markets import Market


@dataclass(frozen=True)
class BookShape:
    levels: int = 20
    spacing: float = 0.0001  # fraction of the mark between levels (1 bp)
    notional: float = 100_000.0  # USD per level


class Book:
    def __init__(self, market: Market, shape: BookShape) -> None:
        self.market = market
        self.shape = shape
        self.bids: list[list] = []  # [px float, sz Decimal], best first
        self.asks: list[list] = []
        self.mark = 0.0

    def regenerate(self, mark: float) -> None:
        self.mark = mark
        self.bids, self.asks = [], []
        if mark <= 0:
            return
        tick = 10.0 ** -max(0, 6 - self.market.sz_decimals)
        last_bid, last_ask = mark, mark
        for i in range(1, self.shape.levels + 1):
            bid = self.market.round_px(mark * (1 - i * self.shape.spacing))
            ask = self.market.round_px(mark * (1 + i * self.shape.spacing))
            bid = min(bid, self.market.round_px(last_bid - tick)) if bid >= last_bid else bid
            ask = max(ask, self.market.round_px(last_ask + tick)) if ask <= last_ask else ask
            for side, px in ((self.bids, bid), (self.asks, ask)):
                if px <= 0:
                    continue
                sz = Decimal(repr(self.shape.notional / px)).quantize(self.market.lot, rounding=ROUND_DOWN)
                if sz > 0:
                    side.append([px, sz])
            last_bid, last_ask = bid, ask

    def best(self) -> tuple[float | None, float | None]:
        return (self.bids[0][0] if self.bids else None, self.asks[0][0] if self.asks else None)

    def crosses(self, buy: bool, limit: float) -> bool:
        side = self.asks if buy else self.bids
        return bool(side) and (side[0][0] <= limit if buy else side[0][0] >= limit)

    def preview(self, buy: bool, limit: float, size: Decimal) -> list[tuple[float, Decimal]]:
        """The (px, sz) a taker would get, without taking it."""
        out, left = [], size
        for px, sz in (self.asks if buy else self.bids):
            if left <= 0 or (px > limit if buy else px < limit):
                break
            take = min(left, sz)
            out.append((px, take))
            left -= take
        return out

    def take(self, buy: bool, limit: float, size: Decimal) -> list[tuple[float, Decimal]]:
        """Consume depth inside `limit`, level by level: the (px, sz) matched."""
        fills = self.preview(buy, limit, size)
        side = self.asks if buy else self.bids
        for px, sz in fills:
            side[0][1] -= sz
            if side[0][1] <= 0:
                side.pop(0)
        return fills

    def levels(self) -> list[list[dict]]:
        def rows(side: list[list]) -> list[dict]:
            return [{"px": _num(px), "sz": _num(float(sz)), "n": 1} for px, sz in side]
        return [rows(self.bids), rows(self.asks)]


def _num(x: float) -> str:
    text = f"{x:.8f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text
