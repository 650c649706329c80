"""What the Hyperliquid tests share: fixed test keys, a config pointing at the fake server, a
connector running against it, and polling with a timeout instead of sleeping."""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from typing import AsyncIterator, Callable

from eth_account import Account

from engine.venues.hyperliquid.config import HyperliquidConfig
from engine.venues.hyperliquid.connector import HyperliquidConnector
from fake_hyperliquid.server import FakeHyperliquid

# Throwaway keys made for these tests; they hold nothing anywhere.
MASTER = Account.from_key("0x" + "4d" * 32)
AGENT = Account.from_key("0x" + "a7" * 32)
STRANGER = Account.from_key("0x" + "5e" * 32)
AGENT_ENV = "PERPGUARD_TEST_HL_AGENT_KEY"


def start_fake(**kw) -> FakeHyperliquid:
    return FakeHyperliquid(MASTER.address, [AGENT.address], **kw).start()


def config_for(fake: FakeHyperliquid, **kw) -> HyperliquidConfig:
    values = {"network": "testnet", "account_address": MASTER.address, "agent_key_env": AGENT_ENV,
              "base_url": fake.url, "stale_after_seconds": 0.5, "markets": ("BTC",)} | kw
    return HyperliquidConfig(**values)


@asynccontextmanager
async def running(fake: FakeHyperliquid, config: HyperliquidConfig | None = None,
                  **connector_kw) -> AsyncIterator[tuple[HyperliquidConnector, list]]:
    """A started connector on `fake` and the list its events land in."""
    connector = HyperliquidConnector(config or config_for(fake), **connector_kw)
    events: list = []
    connector.subscribe(events.append)
    await connector.start()
    try:
        yield connector, events
    finally:
        await connector.stop()


async def wait_for(predicate: Callable[[], object], timeout: float = 5.0, what: str = "condition") -> float:
    """Poll `predicate` until it is true; the seconds it took. Fails after `timeout`."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


def of_type(events: list, kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]
