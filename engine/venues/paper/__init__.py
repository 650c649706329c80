"""The paper exchange: an in-process venue with Hyperliquid's margin, funding and liquidation
rules (SPEC sections 7 and 8), and the market data that drives it."""

from engine.venues.paper.exchange import PaperExchange

__all__ = ["PaperExchange"]
