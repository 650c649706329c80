"""The Hyperliquid connector (SPEC section 8): `HyperliquidConnector(HyperliquidConfig(...))`."""

from engine.hyperliquid.budget import RateBudgetView
from engine.hyperliquid.config import API_WALLET_HELP, AgentKeyError, HyperliquidConfig
from engine.hyperliquid.connector import HyperliquidConnector

__all__ = ["API_WALLET_HELP", "AgentKeyError", "HyperliquidConfig", "HyperliquidConnector", "RateBudgetView"]
