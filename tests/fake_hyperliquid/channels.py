"""The fake venue's public market channels beyond allMids: `l2Book` (`WsBook`), `bbo`
(`WsBbo`), `candle` (`Candle`) and `trades` (`WsTrade[]`), written as the docs' websocket
"Subscriptions" page and the SDK's `hyperliquid/utils/types.py` define them."""

from __future__ import annotations

from typing import Any

from fake_hyperliquid import wire

# Candle intervals (docs, "Subscriptions"), in seconds; "1M" is counted as 30 days here.
CANDLE_SECONDS = {"1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "2h": 7200, "4h": 14400,
                  "8h": 28800, "12h": 43200, "1d": 86400, "3d": 259200, "1w": 604800, "1M": 2592000}
ZERO_ADDRESS = "0x" + "0" * 40


class MarketChannels:
    def __init__(self, venue: Any, clock: Any) -> None:
        self.venue = venue
        self.clock = clock
        self._candles: dict[tuple[str, str, int], dict[str, Any]] = {}  # (coin, interval, open ms) -> candle

    def known(self, sub: Any) -> bool:
        """False for a coin channel of these (l2Book, bbo, trades, candle) naming an unlisted coin."""
        if not isinstance(sub, dict) or sub.get("type") not in ("l2Book", "bbo", "trades", "candle"):
            return True
        return sub.get("coin") in self.venue.books

    def message(self, sub: dict[str, Any]) -> dict[str, Any] | None:
        """The l2Book, bbo or candle message for one subscription now (None: not one of those,
        or an unknown coin or interval)."""
        kind, coin = sub.get("type"), sub.get("coin")
        book = self.venue.books.get(coin)
        if book is None:
            return None
        now = int(self.clock.now() * 1000)
        if kind == "l2Book":
            return {"channel": "l2Book", "data": {"coin": coin, "time": now, "levels": book.levels()}}
        if kind == "bbo":
            bids, asks = book.levels()
            return {"channel": "bbo", "data": {"coin": coin, "time": now,
                                               "bbo": [bids[0] if bids else None, asks[0] if asks else None]}}
        if kind == "candle" and sub.get("interval") in CANDLE_SECONDS and coin in self.venue.marks:
            return {"channel": "candle", "data": self._candle(coin, sub["interval"], now)}
        return None

    def _candle(self, coin: str, interval: str, now_ms: int) -> dict[str, Any]:
        """The open candle of `interval`: the mark's open, high, low and close since it opened."""
        span = CANDLE_SECONDS[interval] * 1000
        start = now_ms - now_ms % span
        mark = self.venue.marks[coin]
        px = wire.num(mark)
        candle = self._candles.setdefault((coin, interval, start), {
            "t": start, "T": start + span - 1, "s": coin, "i": interval, "o": px, "c": px, "h": px, "l": px,
            "v": "0.0", "n": 0})
        candle["c"] = px
        candle["h"] = wire.num(max(float(candle["h"]), mark))
        candle["l"] = wire.num(min(float(candle["l"]), mark))
        return dict(candle)


def trade_of(fill: dict[str, Any], user: str | None) -> dict[str, Any]:
    """A `WsTrade` from a taker fill: the taker's side, `users` [buyer, seller] (the book's maker
    is no account here: the zero address)."""
    users = [user, ZERO_ADDRESS] if fill["side"] == "B" else [ZERO_ADDRESS, user]
    return {"coin": fill["coin"], "side": fill["side"], "px": fill["px"], "sz": fill["sz"], "hash": fill["hash"],
            "time": fill["time"], "tid": fill["tid"], "users": users}
