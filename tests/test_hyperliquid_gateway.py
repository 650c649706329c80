"""The engine service with the Hyperliquid connector pointed at the fake server answers the
same gateway checks as with paper: seed bodies accepted, a cap gives 403, $12,000 is held (202),
scopes and the master password are enforced, and the kill switch flattens the venue account."""

from __future__ import annotations

import httpx
import pytest

from fake_hyperliquid.harness import AGENT, AGENT_ENV, MASTER as ACCOUNT, start_fake
from tests.engine_server import MASTER, EngineThread
from tests.policy_cases import SEED_BODIES

ADMIN = {"X-Master-Password": MASTER}


@pytest.fixture
def engine(tmp_path, monkeypatch):
    monkeypatch.setenv(AGENT_ENV, AGENT.key.hex())
    fake = start_fake()
    overrides = {"exchange.kind": "hyperliquid", "exchange.network": "testnet", "exchange.account_address": ACCOUNT.address,
                 "exchange.agent_key_env": AGENT_ENV, "exchange.base_url": fake.url, "exchange.markets": ["BTC", "ETH"]}
    try:
        with EngineThread(tmp_path, **overrides) as running:
            running.fake = fake
            yield running
    finally:
        fake.stop()


def test_the_gateway_checks_hold_on_hyperliquid(engine):
    with httpx.Client(base_url=engine.url, headers=ADMIN, timeout=30) as admin:
        for body in SEED_BODIES:
            assert admin.post("/v1/policies", json=body).status_code == 201
        over = admin.post("/v1/orders", json={"market": "BTC-USD", "side": "buy", "notional_usd": 30_000})
        assert over.status_code == 403 and over.json()["error"]["code"] == "POLICY_DENIED"
        held = admin.post("/v1/orders", json={"market": "ETH", "side": "buy", "notional_usd": 12_000})
        assert held.status_code == 202 and held.json()["pending"]["tier"] == "DELAY"
        sent = admin.post("/v1/orders", json={"market": "ETH", "side": "buy", "notional_usd": 900, "client_id": "hl-1"})
        assert sent.status_code == 200 and engine.fake.position("ETH") > 0
        assert len(engine.fake.orders()) == 1
        assert admin.post("/v1/orders", json={"market": "ETH", "side": "buy", "notional_usd": 900,
                                              "client_id": "hl-1"}).json() == sent.json()
        assert len(engine.fake.orders()) == 1  # the same client_id: one order on the venue

        reader = admin.post("/v1/tokens", json={"name": "reader", "scopes": ["read"]}).json()["token"]
        refused = httpx.post(f"{engine.url}/v1/orders", headers={"Authorization": f"Bearer {reader}"},
                             json={"market": "BTC", "side": "buy", "notional_usd": 100})
        assert refused.status_code == 403
        assert httpx.get(f"{engine.url}/v1/state", headers={"X-Master-Password": "nope"}).status_code == 401

        killed = admin.post("/v1/kill").json()
        assert killed["trading_state"] == "HALTED" and killed["positions"] == 0
        assert engine.fake.position("ETH") == 0
        assert admin.get("/v1/state").json()["open_orders"] == []
