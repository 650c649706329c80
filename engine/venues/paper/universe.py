"""The markets the paper exchange lists: Hyperliquid's lot sizes and margin tiers for the
majors (BTC tiered 40x/20x, ETH 25x/15x, as Hyperliquid's margin-tier docs give them), a flat
table for the rest. Start prices seed the simulator."""

from __future__ import annotations

from engine.domain.margin import MarginTable
from engine.domain.model import MarketInfo
from engine.domain.margin import MarginTier

PAPER_MARKETS: dict[str, MarketInfo] = {
    "BTC": MarketInfo("BTC", 5, MarginTable.from_tiers([MarginTier(0, 40), MarginTier(150_000_000, 20)])),
    "ETH": MarketInfo("ETH", 4, MarginTable.from_tiers([MarginTier(0, 25), MarginTier(100_000_000, 15)])),
    "SOL": MarketInfo("SOL", 2, MarginTable.flat(20)),
    "DOGE": MarketInfo("DOGE", 0, MarginTable.flat(10)),
    "ARB": MarketInfo("ARB", 1, MarginTable.flat(10)),
}

START_PRICES = {"BTC": 65_000.0, "ETH": 3_200.0, "SOL": 150.0, "DOGE": 0.15, "ARB": 0.8}


def market_for(coin: str) -> MarketInfo:
    """A listed market, or a generic 10x market with a 2-decimal lot for anything else."""
    return PAPER_MARKETS.get(coin) or MarketInfo(coin, 2, MarginTable.flat(10))
