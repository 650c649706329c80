"""A fake Hyperliquid for the connector tests: a real HTTP + WebSocket server on 127.0.0.1 that
answers from recorded real responses and from a paper account, checks the SDK's signatures and
nonces, and can drop, go silent, or answer 429/5xx on demand."""

from fake_hyperliquid.server import FakeHyperliquid

__all__ = ["FakeHyperliquid"]
