"""What the Hyperliquid account tests share (`test_hyperliquid_account_roles.py`,
`test_hyperliquid_unified_margin.py`, `test_hyperliquid_hip3.py`): test keys and addresses, the
venue's answers hand-copied from real ones (each names its source), `StubVenue`, an in-process
stand-in for the transport serving them, a connector on it, and `strict`, a fixture starting the
strict fake venue."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from eth_account import Account
from hyperliquid.utils.signing import recover_agent_or_user_from_l1_action

from engine.venues.connector import OrderRequest
from engine.venues.hyperliquid.config import HyperliquidConfig
from engine.venues.hyperliquid.connector import HyperliquidConnector
from fake_hyperliquid.harness import AGENT_ENV, start_fake

MASTER = Account.from_key("0x" + "4d" * 32)
AGENT = Account.from_key("0x" + "a7" * 32)
SUB = "0x" + "5b" * 20
VAULT = "0x" + "7a" * 20
LEADER = "0x" + "1e" * 20
DAY = 86_400

# ---- real shapes -------------------------------------------------------------------------

# hyperliquid-python-sdk #261: a unified account's perp state reads all zeros (its money is in spot)
ZEROED_PERP_STATE = {
    "marginSummary": {"accountValue": "0.0", "totalNtlPos": "0.0", "totalRawUsd": "0.0", "totalMarginUsed": "0.0"},
    "crossMarginSummary": {"accountValue": "0.0", "totalNtlPos": "0.0", "totalRawUsd": "0.0", "totalMarginUsed": "0.0"},
    "crossMaintenanceMarginUsed": "0.0", "withdrawable": "0.0", "assetPositions": [], "time": 1770741072771,
}

# JKorf/HyperLiquid.Net #98: a portfolio-margin account's main-dex clearinghouseState (dexToClearinghouseState "")
PM_MAIN_DEX_STATE = {
    "marginSummary": {"accountValue": "147.412857", "totalNtlPos": "1352.7404", "totalRawUsd": "-1205.327543",
                      "totalMarginUsed": "140.43678"},
    "crossMarginSummary": {"accountValue": "147.412857", "totalNtlPos": "1352.7404", "totalRawUsd": "-1205.327543",
                           "totalMarginUsed": "140.43678"},
    "crossMaintenanceMarginUsed": "23.104792", "withdrawable": "6.976077",
    "assetPositions": [{"type": "oneWay", "position": {
        "coin": "BTC", "szi": "0.01948", "leverage": {"type": "cross", "value": 10}, "entryPx": "64882.3",
        "positionValue": "1256.3626", "unrealizedPnl": "-7.54583", "returnOnEquity": "-0.0597023473",
        "liquidationPx": "19217.2640553115", "marginUsed": "125.63626", "maxLeverage": 40,
        "cumFunding": {"allTime": "2.2", "sinceOpen": "0.1", "sinceChange": "0.1"}}}],
    "time": 1770741072771,
}


def spot(total: str, hold: str = "0.0", token: int = 0, coin: str = "USDC") -> dict[str, Any]:
    """A `spotClearinghouseState` (the docs' shape: balances of coin, token, hold, total, entryNtl)."""
    return {"balances": [{"coin": coin, "token": token, "hold": hold, "total": total, "entryNtl": "0.0"}]}


META = {"universe": [{"name": "BTC", "szDecimals": 5, "maxLeverage": 40, "marginTableId": 56},
                     {"name": "ETH", "szDecimals": 4, "maxLeverage": 25, "marginTableId": 55}],
        "marginTables": [[56, {"description": "tiered 40x", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": 40},
                                                                           {"lowerBound": "150000000.0", "maxLeverage": 20}]}],
                         [55, {"description": "tiered 25x", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": 25},
                                                                           {"lowerBound": "100000000.0", "maxLeverage": 15}]}]]}
XYZ_META = {"universe": [{"name": "xyz:XYZ100", "szDecimals": 4, "maxLeverage": 20},
                         {"name": "xyz:TSLA", "szDecimals": 3, "maxLeverage": 10},
                         {"name": "xyz:GOLD", "szDecimals": 4, "maxLeverage": 10, "onlyIsolated": True,
                          "marginMode": "strictIsolated"}],
            "marginTables": [], "collateralToken": 0}
PERP_DEXS = [None, {"name": "test", "fullName": "test dex", "deployer": "0x" + "00" * 20, "oracleUpdater": None},
             {"name": "xyz", "fullName": "XYZ", "deployer": "0x" + "88" * 20, "oracleUpdater": None}]


def ctx(px: str) -> dict[str, Any]:
    return {"funding": "0.0000125", "openInterest": "1.0", "prevDayPx": px, "dayNtlVlm": "0.0", "premium": "0.0",
            "oraclePx": px, "markPx": px, "midPx": px, "impactPxs": [px, px], "dayBaseVlm": "0.0"}


def position(coin: str, szi: str, entry: str, value: str, lev: dict[str, Any], margin: str, max_lev: int = 10):
    return {"type": "oneWay", "position": {
        "coin": coin, "szi": szi, "leverage": lev, "entryPx": entry, "positionValue": value, "unrealizedPnl": "0.0",
        "returnOnEquity": "0.0", "liquidationPx": None, "marginUsed": margin, "maxLeverage": max_lev,
        "cumFunding": {"allTime": "0.0", "sinceOpen": "0.0", "sinceChange": "0.0"}}}


def perp_state(value: str, positions: list | None = None, mm: str = "0.0") -> dict[str, Any]:
    summary = {"accountValue": value, "totalNtlPos": "0.0", "totalRawUsd": value, "totalMarginUsed": "0.0"}
    return {"marginSummary": summary, "crossMarginSummary": dict(summary), "crossMaintenanceMarginUsed": mm,
            "withdrawable": value, "assetPositions": positions or [], "time": int(time.time() * 1000)}


# ---- the stand-in venue ------------------------------------------------------------------


class StubVenue:
    """Answers `/info` from `answers` (by type, or (type, dex)), records every request, and
    answers `/exchange` with `exchange_answers` in turn (an ok order `resting` by default)."""

    def __init__(self, account: str = MASTER.address, **overrides: Any) -> None:
        until = int((time.time() + 30 * DAY) * 1000)
        self.answers: dict[Any, Any] = {
            "userRole": {"role": "user"},
            "extraAgents": [{"name": "perpguard", "address": AGENT.address.lower(), "validUntil": until}],
            "userAbstraction": "disabled",
            "metaAndAssetCtxs": [META, [ctx("65000.0"), ctx("1900.0")]],
            "clearinghouseState": perp_state("100000.0"),
            "frontendOpenOrders": [],
            "userRateLimit": {"cumVlm": "2854574.593578", "nRequestsUsed": 2890, "nRequestsCap": 2864574},
            "userFills": [],
        }
        self.answers.update(overrides)
        self.infos: list[dict[str, Any]] = []
        self.posted: list[dict[str, Any]] = []
        self.exchange_answers: list[Any] = []
        self.next_oid = 1000

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def info(self, body: dict[str, Any]) -> Any:
        self.infos.append(body)
        key = (body["type"], body["dex"]) if body.get("dex") else body["type"]
        if key not in self.answers:
            raise ValueError(f"Hyperliquid refused info request {body['type']}: 422")
        return copy.deepcopy(self.answers[key])

    async def exchange(self, payload: dict[str, Any], urgent: bool = False) -> Any:
        self.posted.append(payload)
        if self.exchange_answers:
            return self.exchange_answers.pop(0)
        kind = payload["action"]["type"]
        if kind == "order":
            self.next_oid += 1
            return {"status": "ok", "response": {"type": "order", "data": {"statuses": [{"resting": {"oid": self.next_oid}}]}}}
        if kind == "cancel":
            return {"status": "ok", "response": {"type": "cancel",
                                                 "data": {"statuses": ["success"] * len(payload["action"]["cancels"])}}}
        return {"status": "ok", "response": {"type": "default"}}

    def asked(self, kind: str) -> list[dict[str, Any]]:
        return [b for b in self.infos if b["type"] == kind]


class StubFeed:
    def __init__(self) -> None:
        self.subscriptions: list[dict[str, Any]] = []

    async def add(self, subscription: dict[str, Any]) -> None:
        if subscription not in self.subscriptions:
            self.subscriptions.append(subscription)

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def wait_connected(self, timeout: float) -> bool:
        return True


def connector_on(venue: StubVenue, account: str = MASTER.address, markets: tuple[str, ...] = ("BTC",),
                 **kw: Any) -> tuple[HyperliquidConnector, list]:
    config = HyperliquidConfig(network="testnet", account_address=account, agent_key_env="UNUSED",
                               base_url="http://127.0.0.1:9", markets=markets)
    connector = HyperliquidConnector(config, agent=AGENT, http=venue, **kw)
    connector.feed = StubFeed()
    events: list = []
    connector.subscribe(events.append)
    return connector, events


def signer_of(payload: dict[str, Any]) -> str:
    return recover_agent_or_user_from_l1_action(payload["action"], payload["signature"], payload["vaultAddress"],
                                                payload["nonce"], payload["expiresAfter"], False).lower()


def buy(coin: str = "BTC", size: str = "0.01", px: str = "60000", **kw: Any) -> OrderRequest:
    return OrderRequest(coin, "buy", size, px, "Gtc", client_id=kw.pop("client_id", f"t-{time.monotonic_ns()}"), **kw)


# ---- the strict fake venue ------------------------------------------------------------------


@pytest.fixture
def strict(monkeypatch):
    """Starts fake servers (`start_fake` options) with the test agent's key in the environment;
    stops them after the test."""
    monkeypatch.setenv(AGENT_ENV, AGENT.key.hex())
    servers = []

    def start(**kw):
        servers.append(start_fake(**kw))
        return servers[-1]
    yield start
    for server in servers:
        server.stop()
