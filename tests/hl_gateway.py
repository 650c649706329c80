"""A running perpguard (paper exchange, real gateway on 127.0.0.1) with bots registered for the
Hyperliquid-compatible API, for the tests that drive real Hyperliquid clients (the official SDK,
ccxt) against `/hl`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from typing import Iterator

import eth_account
import httpx
import pytest

from tests.engine_server import MASTER, EngineThread

# What the tests trade against: positions up to $20k, orders over $6k held 1 s (DELAY), bot
# alpha capped at $1k of position by a policy of its own.
POLICIES = [
    {"id": "max-position", "type": "PERP_MAX_POSITION_USD", "rules": {"maxPositionUsd": 20_000}},
    {"id": "spending", "type": "SPENDING_LIMIT",
     "rules": {"instant_max_usd": 5_000, "notify_max_usd": 6_000, "delay_max_usd": 15_000, "delay_seconds": 1}},
    {"id": "alpha-small", "type": "PERP_MAX_POSITION_USD", "bot": "alpha", "rules": {"maxPositionUsd": 1_000}},
]
ALPHA = eth_account.Account.from_key("0x" + "a1" * 32)
BETA = eth_account.Account.from_key("0x" + "b2" * 32)
STRANGER = eth_account.Account.from_key("0x" + "c3" * 32)  # never registered


@dataclass
class HlGateway:
    engine: EngineThread

    @property
    def url(self) -> str:
        """The base URL a Hyperliquid client is given."""
        return self.engine.url + "/hl"

    @property
    def account(self) -> str:
        return self.engine.service.engine.connector.account_address

    def add_bot(self, name: str, address: str, scopes: str = "trade,read") -> dict:
        answer = httpx.post(self.engine.url + "/v1/bots", headers={"X-Master-Password": MASTER},
                            json={"name": name, "address": address, "scopes": scopes.split(",")})
        assert answer.status_code == 201, answer.text
        return answer.json()

    def policy(self, body: dict) -> None:
        answer = httpx.post(self.engine.url + "/v1/policies", headers={"X-Master-Password": MASTER}, json=body)
        assert answer.status_code == 201, answer.text


@pytest.fixture
def hl(tmp_path) -> Iterator[HlGateway]:
    """perpguard on paper with bots alpha and beta registered (a test imports this fixture)."""
    engine, gateway = start(tmp_path)
    try:
        yield gateway
    finally:
        engine.__exit__(None, None, None)


@pytest.fixture
def hl_on_fake(fake, tmp_path) -> Iterator[HlGateway]:
    """perpguard trading the strict fake Hyperliquid, with bot beta registered."""
    from fake_hyperliquid.harness import engine_config

    policies = tmp_path / "policies.json"
    policies.write_text(json.dumps(POLICIES))
    with EngineThread(tmp_path, policies=policies, config_file=engine_config(fake, tmp_path)) as engine:
        gateway = HlGateway(engine)
        gateway.add_bot("beta", BETA.address)
        yield gateway


def start(tmp: Path, policies: list[dict] = POLICIES) -> tuple[EngineThread, HlGateway]:
    path = tmp / "policies.json"
    path.write_text(json.dumps(policies))
    engine = EngineThread(tmp, policies=path).__enter__()
    gateway = HlGateway(engine)
    gateway.add_bot("alpha", ALPHA.address)
    gateway.add_bot("beta", BETA.address)
    return engine, gateway
