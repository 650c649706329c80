"""A fake Hyperliquid for the connector tests: a real HTTP + WebSocket server on 127.0.0.1, as
strict as the venue (accounts, subaccounts and vaults, agents with expiries, nonces, the address
budget, scheduleCancel, a finite book, triggers, stepped liquidation, HIP-3), that checks every
signature and can drop, go silent, or answer 429/5xx on demand. It imports nothing from the
connector it tests (engine/venues/hyperliquid)."""

from fake_hyperliquid.book import BookShape
from fake_hyperliquid.server import FakeHyperliquid

__all__ = ["BookShape", "FakeHyperliquid"]
