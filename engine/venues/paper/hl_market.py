"""The paper venue's market data in Hyperliquid's info shapes (docs "Info endpoint" and
"Perpetuals"): `meta`, `metaAndAssetCtxs` (one coin's context also feeds the `activeAssetCtx`
channel), `spotMeta`, `spotMetaAndAssetCtxs`, `allMids`, `l2Book`, `candleSnapshot`,
`fundingHistory` (the rate the paper venue applied at each hour boundary since it started; it has
no premium index, so `premium` is "0.0"), `exchangeStatus` (no special status, the venue's time).

Asset ids are the index in `meta.universe`, in the order the paper exchange lists its markets
(BTC 0, ETH 1, SOL 2, DOGE 3, ARB 4 for the default universe): not mainnet's ids, so a bot must
read them from `meta`, as the SDK and ccxt do. A market's margin table is listed under
`marginTables` when it has tiers (ids from 50 up); a one-tier table is named by its max leverage
(an id below 50 means one tier with that max leverage, as on the venue). There are no spot
markets: `spotMeta` lists the USDC token only, with an empty universe.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.domain.increments import round_price, round_size
from engine.domain.margin import FLAT_TABLES_BELOW, MarginTable
from engine.domain.model import MarketInfo
from engine.venues import hl_wire as wire
from engine.venues.paper.candles import CandleBook
from engine.venues.paper.exchange import PaperExchange

# The USDC token as the venue's spotMeta lists it (token 0, the perps' collateral).
USDC_TOKEN = {"name": "USDC", "szDecimals": 8, "weiDecimals": 8, "index": 0,
              "tokenId": "0x6d1e7cde53ba9467b783cb7c530ce054", "isCanonical": True, "evmContract": None,
              "fullName": None}
BOOK_LEVELS = 10  # per side in a synthetic l2Book (the venue sends up to 20)
LEVEL_USD = 250_000.0  # notional shown per synthetic level
DAY_MS = 86_400_000


def _table_id(table: MarginTable) -> int | None:
    """The id of a one-tier table (its max leverage, below 50), None for a tiered one."""
    if len(table.max_leverages) == 1 and table.max_leverages[0] == int(table.max_leverages[0]) \
            and 0 < table.max_leverages[0] < FLAT_TABLES_BELOW:
        return int(table.max_leverages[0])
    return None


class MarketAnswers:
    """Answers from the paper exchange's markets and marks, and from its candles."""

    def __init__(self, paper: PaperExchange, candles: CandleBook) -> None:
        self.paper = paper
        self.candles = candles
        self.coins = list(paper.markets)
        self._meta = self._build_meta(paper.markets)

    @staticmethod
    def _build_meta(markets: dict[str, MarketInfo]) -> dict[str, Any]:
        universe, tables, ids = [], [], {}
        for coin, info in markets.items():
            table = info.margin_table or MarginTable.flat(1)
            table_id = _table_id(table)
            if table_id is None:
                key = (table.lower_bounds, table.max_leverages)
                if key not in ids:
                    ids[key] = FLAT_TABLES_BELOW + len(ids)
                    tiers = [{"lowerBound": wire.num(lb, 1), "maxLeverage": int(lev)}
                             for lb, lev in zip(table.lower_bounds, table.max_leverages)]
                    tables.append([ids[key], {"description": f"tiered {int(table.max_leverages[0])}x",
                                              "marginTiers": tiers}])
                table_id = ids[key]
            row: dict[str, Any] = {"szDecimals": info.sz_decimals or 0, "name": coin,
                                   "maxLeverage": int(table.max_leverage(0.0)), "marginTableId": table_id}
            if info.only_isolated:
                row["onlyIsolated"] = True
            universe.append(row)
        return {"universe": universe, "marginTables": tables, "collateralToken": 0}

    def meta(self) -> dict[str, Any]:
        return {"universe": [dict(r) for r in self._meta["universe"]],
                "marginTables": [list(t) for t in self._meta["marginTables"]], "collateralToken": 0}

    def spot_meta(self) -> dict[str, Any]:
        return {"tokens": [dict(USDC_TOKEN)], "universe": []}

    def all_mids(self) -> dict[str, str]:
        """The mid of every coin with a mark: the synthetic book is symmetric, so its mid is the mark."""
        marks = self.paper.ledger.marks
        return {coin: wire.num(marks[coin]) for coin in self.coins if coin in marks}

    def asset_ctxs(self) -> list[dict[str, Any]]:
        """One context per universe entry, in order (see `asset_ctx`)."""
        volume = self._day_volume(None)
        rates = self.paper.funding.capped_rates()
        return [self._ctx(coin, volume.get(coin, 0.0), rates.get(coin, 0.0)) for coin in self.coins]

    def asset_ctx(self, coin: str) -> dict[str, Any]:
        """One coin's context, as `metaAndAssetCtxs` lists it (the `activeAssetCtx` channel's
        `ctx`). `openInterest` is the paper account's own position (the only open interest
        there is), `dayNtlVlm` its fills' notional over 24 h, `prevDayPx` the mark 24 h ago
        (from the candles; the oldest known mark if younger), `impactPxs` the synthetic book's
        best bid and ask."""
        return self._ctx(coin, self._day_volume(coin).get(coin, 0.0), self.paper.funding.capped_rates().get(coin, 0.0))

    def _day_volume(self, coin: str | None) -> dict[str, float]:
        """USD notional of the paper account's fills over the last 24 h, by coin (one coin's, or all)."""
        since = wire.ms(self.paper.clock.now()) - DAY_MS
        volume: dict[str, float] = {}
        for fill in reversed(self.paper.history.fills):
            if fill.time < since:
                break
            if coin is None or fill.coin == coin:
                volume[fill.coin] = volume.get(fill.coin, 0.0) + fill.sz * fill.px
        return volume

    def _ctx(self, coin: str, volume: float, rate: float) -> dict[str, Any]:
        mark = self.paper.ledger.marks.get(coin)
        if mark is None:
            return {"funding": "0.0", "openInterest": "0.0", "prevDayPx": "0.0", "dayNtlVlm": "0.0", "premium": None,
                    "oraclePx": "0.0", "markPx": "0.0", "midPx": None, "impactPxs": None, "dayBaseVlm": "0.0"}
        prev = self.candles.close_before(coin, wire.ms(self.paper.clock.now()) - DAY_MS)
        bid, ask = self.best(coin, mark)
        sz_decimals = self.paper.markets[coin].sz_decimals or 0
        return {
            "funding": wire.num(rate), "openInterest": wire.size(abs(self.paper.ledger.size(coin)), sz_decimals),
            "prevDayPx": wire.num(prev if prev is not None else mark), "dayNtlVlm": wire.usd(volume),
            "premium": "0.0", "oraclePx": wire.num(mark), "markPx": wire.num(mark), "midPx": wire.num(mark),
            "impactPxs": [wire.num(bid), wire.num(ask)], "dayBaseVlm": wire.size(volume / mark, sz_decimals),
        }

    def best(self, coin: str, mark: float) -> tuple[float, float]:
        """The synthetic best bid and ask: where a taker order fills on paper, mark ∓ slippage,
        on the market's price increments (a buy never pays less, a sell never gets more)."""
        sz_decimals = self.paper.markets[coin].sz_decimals or 0
        slip = self.paper.slippage
        bid = float(round_price(mark * (1 - slip), sz_decimals, "buy"))
        ask = float(round_price(mark * (1 + slip), sz_decimals, "sell"))
        return bid, ask

    def l2_book(self, coin: str) -> dict[str, Any] | None:
        """A synthetic book: the paper venue has no order book. Level 1 of each side is where a
        taker order fills (mark ∓ slippage); the paper fill model fills any size there, so the
        deeper levels (one slippage step further each, `LEVEL_USD` of notional each) only give
        clients the shape they expect. The paper account's own resting orders are added at
        their limits (with `n` counting them). None for a coin the venue does not list, as the
        venue answers; an empty book before the first mark."""
        if coin not in self.paper.markets:
            return None
        time = wire.ms(self.paper.clock.now())
        mark = self.paper.ledger.marks.get(coin)
        if mark is None:
            return {"coin": coin, "time": time, "levels": [[], []]}
        sz_decimals = self.paper.markets[coin].sz_decimals or 0
        slip = self.paper.slippage
        sides: list[dict[Decimal, list]] = [{}, {}]  # px -> [size, n]
        for k in range(1, BOOK_LEVELS + 1):
            for i, sign, rounding in ((0, -1, "buy"), (1, 1, "sell")):
                px = round_price(mark * (1 + sign * slip * k), sz_decimals, rounding)  # type: ignore[arg-type]
                if px <= 0:
                    continue
                sz = round_size(Decimal(repr(LEVEL_USD / float(px))), sz_decimals)
                level = sides[i].setdefault(px, [Decimal(0), 0])
                level[0] += max(sz, Decimal(1).scaleb(-sz_decimals))
                level[1] = 1
        for order in self.paper.open_orders():
            if order.coin != coin or order.trigger_px is not None:
                continue
            i = 0 if order.side == "buy" else 1
            level = sides[i].setdefault(Decimal(repr(order.limit_px)), [Decimal(0), 0])
            level[0] += Decimal(repr(order.size))
            level[1] += 1
        levels = [[{"px": wire.num(float(px)), "sz": wire.size(sz, sz_decimals), "n": n}
                   for px, (sz, n) in sorted(side.items(), reverse=(i == 0))][:20]
                  for i, side in enumerate(sides)]
        return {"coin": coin, "time": time, "levels": levels}

    def bbo(self, coin: str) -> dict[str, Any] | None:
        """The `bbo` channel's data: the best level of each side of `l2_book`."""
        book = self.l2_book(coin)
        if book is None:
            return None
        bids, asks = book["levels"]
        return {"coin": coin, "time": book["time"], "bbo": [bids[0] if bids else None, asks[0] if asks else None]}

    def candle_snapshot(self, coin: str, interval: str, start: int, end: int) -> list[dict[str, Any]]:
        return self.candles.candles(coin, interval, start, end)

    def funding_history(self, coin: str, start: int, end: int) -> list[dict[str, Any]]:
        """The hourly rates applied to `coin` from `start` to `end` (epoch ms), oldest first; [] for
        a market the paper venue does not list."""
        return [{"coin": coin, "fundingRate": wire.num(rate), "premium": "0.0", "time": wire.ms(at)}
                for at, rate in self.paper.funding.history.get(coin, ()) if start <= wire.ms(at) <= end]

    def exchange_status(self) -> dict[str, Any]:
        return {"specialStatuses": None, "time": wire.ms(self.paper.clock.now())}
