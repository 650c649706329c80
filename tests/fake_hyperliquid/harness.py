"""What the Hyperliquid tests share: fixed test keys, a config pointing at the fake server, a
connector running against it, and polling with a timeout instead of sleeping."""

from __future__ import annotations

import asyncio
from pathlib import Path
import time
from contextlib import asynccontextmanager
from typing import AsyncIterator, Callable

from typing import TYPE_CHECKING

from eth_account import Account

from fake_hyperliquid.server import FakeHyperliquid

if TYPE_CHECKING:  # the fake itself never imports the connector; only these helpers use it
    from engine.venues.hyperliquid.config import HyperliquidConfig
    from engine.venues.hyperliquid.connector import HyperliquidConnector

# Throwaway keys made for these tests; they hold nothing anywhere.
MASTER = Account.from_key("0x" + "4d" * 32)
AGENT = Account.from_key("0x" + "a7" * 32)
STRANGER = Account.from_key("0x" + "5e" * 32)
EXPIRED_AGENT = Account.from_key("0x" + "e1" * 32)  # approved once, its validUntil a day gone
AGENT_ENV = "PERPGUARD_TEST_HL_AGENT_KEY"
# A subaccount and a vault of MASTER: on the venue they are addresses with no keys of their own,
# traded by MASTER's agents with `vaultAddress`.
SUB = Account.from_key("0x" + "5b" * 32).address
VAULT = Account.from_key("0x" + "7a" * 32).address
DAY_MS = 86_400_000


def start_fake(**kw) -> FakeHyperliquid:
    """A started fake for MASTER with AGENT (valid 90 days) and EXPIRED_AGENT (expired), the
    subaccount SUB and the vault VAULT; any constructor option can be given."""
    expired = (EXPIRED_AGENT.address, int(time.time() * 1000) - DAY_MS)
    values = {"agents": [AGENT.address, expired], "subaccounts": [SUB], "vaults": [VAULT]} | kw
    agents = values.pop("agents")
    return FakeHyperliquid(MASTER.address, agents, **values).start()


def config_for(fake: FakeHyperliquid, **kw) -> HyperliquidConfig:
    from engine.venues.hyperliquid.config import HyperliquidConfig
    values = {"network": "testnet", "account_address": MASTER.address, "agent_key_env": AGENT_ENV,
              "base_url": fake.url, "stale_after_seconds": 0.5, "markets": ("BTC",)} | kw
    return HyperliquidConfig(**values)


@asynccontextmanager
async def running(fake: FakeHyperliquid, config: HyperliquidConfig | None = None,
                  **connector_kw) -> AsyncIterator[tuple[HyperliquidConnector, list]]:
    """A started connector on `fake` and the list its events land in."""
    from engine.venues.hyperliquid.connector import HyperliquidConnector
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


def engine_config(fake: FakeHyperliquid, directory, listen: str = "127.0.0.1:0", markets: tuple[str, ...] = ("BTC",),
                  policies: Path | None = None) -> str:
    """A perpguard.toml in `directory` for `perpguard --engine-only` trading the master account on
    `fake` (anything with its `url`; the agent key in AGENT_ENV), with the `policies` file if
    given; its path."""
    path = Path(directory) / "perpguard.toml"
    policy_line = f'policies = "{policies}"\n' if policies is not None else ""
    path.write_text(f"""[engine]
{policy_line}listen = "{listen}"
db = "sqlite:///{Path(directory) / 'pg.db'}"

[exchange]
kind = "hyperliquid"
network = "testnet"
account_address = "{MASTER.address}"
agent_key_env = "{AGENT_ENV}"
base_url = "{fake.url}"
markets = {list(markets)!r}
""".replace("'", '"'))
    return str(path)
