"""The paper venue's market channels in Hyperliquid's websocket shapes (docs "Websocket →
Subscriptions"): `allMids` ({"mids": {coin: px}}), `l2Book` (as the info `l2Book`), `bbo`
({"coin", "time", "bbo": [bid level | null, ask level | null]}), `trades` (a list of {"coin",
"side", "px", "sz", "hash", "time", "tid", "users": [buyer, seller]}: the paper account's own
fills, the venue's side of them being the zero address), `candle` (one bar, as
`candleSnapshot` writes it) and `activeAssetCtx` ({"coin", "ctx"}: the coin's context as
`metaAndAssetCtxs` lists it; SDK `hyperliquid/utils/types.py` `ActiveAssetCtxMsg`, ccxt pro
`handle_active_asset_ctx`).

The book channels are coalesced: the marks set together (one step of the paper feed, all on the
loop without a pause) give one `allMids`, `l2Book`, `bbo` or `activeAssetCtx` message per
subscription, sent on the next turn of the engine's loop, as the venue sends one per block; `bbo`
and `activeAssetCtx` only when they changed (a paper fill changes a context too: its open
interest and volume). They start with the current value, as the venue's first block after a
subscribe carries it. `candle` sends the bar each time a mark or a fill changes it, `trades` each paper
fill as it happens. Nothing at all is done per mark for a coin nobody watches.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from engine.venues.hl_api import Send
from engine.venues.paper.candles import CandleBook
from engine.venues.paper.hl_market import MarketAnswers
from engine.venues.paper.history import PaperFill
from engine.venues.hl_wire import ZERO_ADDRESS, num, size, synthetic_hash


class _Watch:
    """One subscription: what it watches and its pending message."""

    __slots__ = ("kind", "coin", "send", "handle", "last")

    def __init__(self, kind: str, coin: str | None, send: Send) -> None:
        self.kind, self.coin, self.send = kind, coin, send
        self.handle: asyncio.Handle | None = None
        self.last: Any = None


class MarketChannels:
    def __init__(self, market: MarketAnswers, candles: CandleBook, account_address: str) -> None:
        self.market = market
        self.candles = candles
        self.account_address = account_address
        self._mids: list[_Watch] = []
        self._books: dict[str, list[_Watch]] = {}  # coin -> l2Book, bbo and activeAssetCtx watches
        self._trades: dict[str, list[_Watch]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None  # the engine's, where subscriptions are made

    @property
    def watching_marks(self) -> bool:
        return bool(self._mids or self._books)

    def open(self, kind: str, coin: str | None, interval: str | None, send: Send) -> Callable[[], None]:
        """Start a channel (already validated); its unsubscribe."""
        loop = self._loop = asyncio.get_running_loop()
        if kind == "candle":
            assert coin is not None and interval is not None
            return self.candles.listen(coin, interval, lambda bar: send({"channel": "candle", "data": bar}))
        watch = _Watch(kind, coin, send)
        if kind == "trades":
            self._trades.setdefault(coin, []).append(watch)  # type: ignore[arg-type]
            return lambda: self._drop(self._trades, coin, watch)
        if kind == "allMids":
            self._mids.append(watch)
            self._schedule(loop, watch)
            return lambda: self._drop_mids(watch)
        self._books.setdefault(coin, []).append(watch)  # type: ignore[arg-type]
        self._schedule(loop, watch)
        return lambda: self._drop(self._books, coin, watch)

    # ---- fed by the venue api ------------------------------------------------------------------

    def on_mark(self, coin: str) -> None:
        watches = self._books.get(coin)
        loop = self._loop
        if not (watches or self._mids) or loop is None:
            return
        for watch in self._mids:
            self._schedule(loop, watch)
        for watch in watches or ():
            self._schedule(loop, watch)

    def on_fill(self, fill: PaperFill) -> None:
        loop = self._loop
        for watch in self._books.get(fill.coin, ()):
            if watch.kind == "activeAssetCtx" and loop is not None:
                self._schedule(loop, watch)
        watches = self._trades.get(fill.coin)
        if not watches:
            return
        users = [self.account_address, ZERO_ADDRESS] if fill.buy else [ZERO_ADDRESS, self.account_address]
        sz_decimals = self.market.paper.markets[fill.coin].sz_decimals or 0
        trade = {"coin": fill.coin, "side": "B" if fill.buy else "A", "px": num(fill.px),
                 "sz": size(fill.sz, sz_decimals), "hash": synthetic_hash(fill.tid), "time": fill.time,
                 "tid": fill.tid, "users": users}
        for watch in list(watches):
            watch.send({"channel": "trades", "data": [trade]})

    def close(self) -> None:
        for watch in [*self._mids, *(w for ws in self._books.values() for w in ws)]:
            if watch.handle is not None:
                watch.handle.cancel()
        self._mids.clear()
        self._books.clear()
        self._trades.clear()

    # ---- internals ------------------------------------------------------------------------------

    def _schedule(self, loop: asyncio.AbstractEventLoop, watch: _Watch) -> None:
        if watch.handle is None:
            watch.handle = loop.call_soon(self._flush, watch)

    def _flush(self, watch: _Watch) -> None:
        watch.handle = None
        if watch.kind == "allMids":
            mids = self.market.all_mids()
            if mids:
                watch.send({"channel": "allMids", "data": {"mids": mids}})
            return
        assert watch.coin is not None
        if watch.kind == "l2Book":
            book = self.market.l2_book(watch.coin)
            if book is not None and (book["levels"][0] or book["levels"][1]):
                watch.send({"channel": "l2Book", "data": book})
            return
        if watch.kind == "activeAssetCtx":
            ctx = self.market.asset_ctx(watch.coin)
            if ctx != watch.last:
                watch.last = ctx
                watch.send({"channel": "activeAssetCtx", "data": {"coin": watch.coin, "ctx": ctx}})
            return
        bbo = self.market.bbo(watch.coin)
        if bbo is not None and bbo["bbo"] != watch.last and any(bbo["bbo"]):
            watch.last = bbo["bbo"]
            watch.send({"channel": "bbo", "data": bbo})

    def _drop(self, table: dict[str, list[_Watch]], coin: str | None, watch: _Watch) -> None:
        watches = table.get(coin)  # type: ignore[arg-type]
        if watches and watch in watches:
            watches.remove(watch)
            if not watches:
                del table[coin]  # type: ignore[arg-type]
        if watch.handle is not None:
            watch.handle.cancel()
            watch.handle = None

    def _drop_mids(self, watch: _Watch) -> None:
        if watch in self._mids:
            self._mids.remove(watch)
        if watch.handle is not None:
            watch.handle.cancel()
            watch.handle = None
