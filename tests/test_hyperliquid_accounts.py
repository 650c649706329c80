"""Hyperliquid accounts as they are: subaccounts and vaults traded with `vaultAddress`, an
agent address or an unknown one refused at start, the agent's approval and expiry, unified and
portfolio-margin accounts whose collateral is the spot balance (the venue's own formula), and
HIP-3 (builder-deployed) markets with their own asset ids.

The venue's answers are hand-copied from real ones (each names its source) and served by
`StubVenue`, an in-process stand-in for the transport, so these run without the fake server."""

from __future__ import annotations

import copy
import time
from decimal import Decimal
from typing import Any

import pytest
from eth_account import Account
from hyperliquid.utils.signing import recover_agent_or_user_from_l1_action

from engine.venues.connector import ConnectorError, OrderRequest
from engine.venues.hyperliquid.config import API_WALLET_HELP, HyperliquidConfig
from engine.venues.hyperliquid.connector import HyperliquidConnector
from engine.venues.hyperliquid.parse import agent_valid_until, parse_user_role
from engine.venues.hyperliquid.signer import ActionSigner
from engine.venues.hyperliquid.snapshot import (
    account_mode_of, parse_clearinghouse_state, parse_meta, unified_account, unified_snapshot,
)
from engine.domain.coins import canonical_coin

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


# ---- subaccounts and vaults --------------------------------------------------------------


async def test_a_subaccount_is_traded_with_its_vault_address_and_read_as_itself():
    venue = StubVenue(userRole={"role": "subAccount", "data": {"master": MASTER.address.lower()}},
                      clearinghouseState=perp_state("2500.0"))
    connector, _ = connector_on(venue, account=SUB)
    await connector.start()
    ack = await connector.place(buy())
    await connector.cancel("BTC", ack.oid)
    await connector.arm_dead_man(60)
    snap = await connector.snapshot()
    assert ack.status == "resting" and snap.account.account_value == 2500.0
    # every action is the subaccount's: its address in the body and in what the agent signed
    assert [p["vaultAddress"] for p in venue.posted] == [SUB.lower()] * 3
    assert {signer_of(p) for p in venue.posted} == {AGENT.address.lower()}
    # every read is the subaccount's; the agent is checked against the master that approved it
    reads = [b for b in venue.infos if "user" in b and b["type"] != "extraAgents"]
    assert {b["user"] for b in reads} == {SUB}
    assert venue.asked("extraAgents") == [{"type": "extraAgents", "user": MASTER.address.lower()}]
    assert {s.get("user") for s in connector.feed.subscriptions if "user" in s} == {SUB}


async def test_a_master_account_signs_without_a_vault_address():
    venue = StubVenue()
    connector, _ = connector_on(venue)
    await connector.start()
    await connector.place(buy())
    assert venue.posted[0]["vaultAddress"] is None and signer_of(venue.posted[0]) == AGENT.address.lower()


async def test_a_vault_is_traded_with_its_address_and_its_leader_approves_the_agent():
    venue = StubVenue(userRole={"role": "vault"}, vaultDetails={"name": "v", "vaultAddress": VAULT, "leader": LEADER})
    connector, _ = connector_on(venue, account=VAULT)
    await connector.start()
    await connector.place(buy())
    assert venue.posted[0]["vaultAddress"] == VAULT.lower()
    assert venue.asked("extraAgents") == [{"type": "extraAgents", "user": LEADER}]


async def test_an_api_wallet_given_as_the_account_refuses_to_start_and_says_what_to_put():
    venue = StubVenue(userRole={"role": "agent", "data": {"user": MASTER.address.lower()}})
    connector, _ = connector_on(venue, account=SUB)
    with pytest.raises(ConnectorError) as refused:
        await connector.start()
    assert refused.value.code == "AccountIsAgent"
    assert SUB in refused.value.message and MASTER.address.lower() in refused.value.message
    assert venue.posted == []


async def test_an_address_the_venue_never_saw_refuses_to_start():
    connector, _ = connector_on(StubVenue(userRole={"role": "missing"}), account=SUB)
    with pytest.raises(ConnectorError) as refused:
        await connector.start()
    assert refused.value.code == "UnknownAccount" and SUB in refused.value.message


def test_user_role_shapes():
    # the info docs' answers to userRole
    assert parse_user_role({"role": "user"}).role == "user"
    assert parse_user_role({"role": "agent", "data": {"user": "0xabc"}}).master == "0xabc"
    assert parse_user_role({"role": "subAccount", "data": {"master": "0xdef"}}).master == "0xdef"
    assert parse_user_role({"role": "vault"}).master is None
    assert parse_user_role({"role": "missing"}).role == "missing"


def test_the_init_help_explains_subaccounts_and_vaults():
    text = API_WALLET_HELP.lower()
    assert "subaccount" in text and "vault" in text and "leader" in text


# ---- the agent's approval and expiry ----------------------------------------------------


async def test_an_expired_agent_refuses_to_start_naming_the_agent_and_when():
    expired = int((time.time() - 2 * DAY) * 1000)
    venue = StubVenue(extraAgents=[{"name": "perpguard", "address": AGENT.address.lower(), "validUntil": expired}])
    connector, _ = connector_on(venue)
    with pytest.raises(ConnectorError) as refused:
        await connector.start()
    assert refused.value.code == "AgentExpired"
    assert AGENT.address in refused.value.message and "UTC" in refused.value.message
    assert time.strftime("%Y-%m-%d", time.gmtime(expired / 1000)) in refused.value.message
    assert connector.agent_expires_at == pytest.approx(expired / 1000)
    assert venue.posted == []


async def test_an_agent_the_master_never_approved_refuses_to_start():
    venue = StubVenue(extraAgents=[{"name": "other", "address": "0x" + "99" * 20, "validUntil": 4102444800000}])
    connector, _ = connector_on(venue)
    with pytest.raises(ConnectorError) as refused:
        await connector.start()
    assert refused.value.code == "AgentNotApproved" and AGENT.address in refused.value.message


async def test_an_approved_agent_says_when_it_expires():
    until = int((time.time() + 5 * DAY) * 1000)
    venue = StubVenue(extraAgents=[{"name": "pg", "address": AGENT.address.upper().replace("0X", "0x"),
                                    "validUntil": until}])
    connector, _ = connector_on(venue)
    await connector.start()
    assert connector.agent_expires_at == pytest.approx(until / 1000)


def test_agents_match_case_insensitively():
    rows = [{"name": "a", "address": "0xABCDEF0000000000000000000000000000000001", "validUntil": 1_800_000_000_000}]
    assert agent_valid_until(rows, "0xabcdef0000000000000000000000000000000001") == (True, 1_800_000_000.0)
    assert agent_valid_until(rows, "0x" + "00" * 20) == (False, None)


# ---- unified and portfolio-margin accounts -------------------------------------------------


def test_a_unified_account_with_zeroed_perp_states_is_worth_its_spot_balance():
    figures = unified_account(spot("50000.0"), {"": ZEROED_PERP_STATE})
    assert (figures.equity, figures.cross_collateral, figures.cross_maintenance, figures.buffer) == (50_000, 50_000, 0, 50_000)
    assert figures.ratio == 0 and figures.withdrawable == 50_000


def test_a_perp_account_value_is_not_added_to_the_spot_total():
    # sushiswap PR #2184: spot 4,918 plus the perp accountValue showed ~6,600; the spot total already holds it
    figures = unified_account(spot("4918.0", hold="125.63626"), {"": PM_MAIN_DEX_STATE})
    assert figures.equity == 4918.0
    assert figures.cross_maintenance == pytest.approx(23.104792)
    assert figures.ratio == pytest.approx(23.104792 / 4918.0)
    assert figures.withdrawable == pytest.approx(4918.0 - 125.63626)


def test_the_ratio_divides_by_the_spot_collateral_not_the_perp_account_value():
    # OneKey PR #13554: $550 of assets, $4.99 cross maintenance: ~0.9%, not the 50% that dividing by
    # the perp accountValue (~9.96) showed
    state = perp_state("9.96", mm="4.99")
    figures = unified_account(spot("550.0"), {"": state})
    assert figures.ratio == pytest.approx(4.99 / 550.0) and figures.ratio < 0.01


def test_isolated_margins_are_not_cross_collateral_and_dexes_add_up():
    iso = position("xyz:TSLA", "2.0", "400.0", "800.0", {"type": "isolated", "value": 5, "rawUsd": "-640.0"}, "160.0")
    main = perp_state("0.0", [position("BTC", "0.1", "65000.0", "6500.0", {"type": "cross", "value": 10}, "650.0")],
                      mm="81.25")
    xyz = perp_state("0.0", [iso], mm="10.0")
    figures = unified_account(spot("10000.0"), {"": main, "xyz": xyz})
    assert figures.isolated_margin == 160.0 and figures.cross_collateral == 9840.0
    assert figures.cross_maintenance == pytest.approx(91.25)
    assert figures.buffer == pytest.approx(9840.0 - 91.25)
    # a dex on another collateral token (USDH, 360) is not margined by USDC
    other = unified_account(spot("10000.0"), {"": main, "flx": xyz}, {"flx": 360})
    assert other.cross_maintenance == pytest.approx(81.25) and other.isolated_margin == 0


def test_no_collateral_and_a_maintenance_is_an_infinite_ratio():
    assert unified_account({"balances": []}, [perp_state("0", mm="5")]).ratio == float("inf")
    assert unified_account({"balances": []}, [ZEROED_PERP_STATE]).ratio is None


def test_account_modes():
    assert account_mode_of("unifiedAccount") == "unified"
    assert account_mode_of("portfolioMargin") == "portfolio"
    for standard in ("disabled", "default", "dexAbstraction", None, {"weird": 1}):
        assert account_mode_of(standard) == "standard"


def test_a_unified_snapshot_keeps_the_positions_and_takes_the_spot_figures():
    perp = parse_clearinghouse_state(PM_MAIN_DEX_STATE)
    snap = unified_snapshot(perp, unified_account(spot("5000.0"), [PM_MAIN_DEX_STATE]), "portfolio")
    assert snap.account.account_value == 5000.0 and snap.account_mode == "portfolio"
    assert [p.coin for p in snap.positions] == ["BTC"] and snap.venue_cross_maintenance == pytest.approx(23.104792)


async def test_a_unified_account_with_50000_in_spot_shows_it_and_can_place_an_order():
    venue = StubVenue(userAbstraction="unifiedAccount", clearinghouseState=ZEROED_PERP_STATE,
                      spotClearinghouseState=spot("50000.0"))
    connector, events = connector_on(venue)
    await connector.start()
    snap = await connector.snapshot()
    assert snap.account_mode == "unified" and snap.account.account_value == 50_000
    assert snap.account.cross_account_value == 50_000
    book = snap.book(await connector.meta())
    assert book.equity == 50_000 and book.margin_buffer in (None, 1.0)
    ack = await connector.place(buy(size="0.1", px="60000"))
    assert ack.status == "resting" and venue.posted[-1]["action"]["type"] == "order"


async def test_the_account_mode_is_read_again_on_a_resync():
    venue = StubVenue(spotClearinghouseState=spot("777.0"))
    connector, _ = connector_on(venue)
    await connector.start()
    assert (await connector.snapshot()).account_mode == "standard"
    venue.answers["userAbstraction"] = "portfolioMargin"
    connector._account.mode_read_at = float("-inf")  # the cache's few seconds have passed
    snap = await connector.snapshot()
    assert snap.account_mode == "portfolio" and snap.account.account_value == 777.0


# ---- HIP-3 ----------------------------------------------------------------------------------


def test_hip3_names_keep_their_dex_prefix():
    assert canonical_coin("xyz:TSLA") == "xyz:TSLA" and canonical_coin("XYZ:TSLA") == "xyz:TSLA"
    assert canonical_coin("btc-usd") == "BTC" and canonical_coin("kPEPE") == "kPEPE"


def test_the_signer_uses_the_sdks_asset_ids_for_hip3_markets():
    signer = ActionSigner(AGENT, MASTER.address, False, META, perp_dexs=PERP_DEXS, dex_metas={"xyz": XYZ_META})
    # xyz is perpDexs[2]: 100000 + 2 × 10000 + its index in xyz's universe
    assert signer.asset("xyz:TSLA") == 120001 and signer.asset("xyz:XYZ100") == 120000
    assert signer.asset("BTC") == 0 and signer.asset("ETH") == 1
    wire = signer.order(OrderRequest("xyz:TSLA", "buy", Decimal("1.5"), Decimal("400"), "Gtc"), "0x" + "11" * 16)
    assert wire["action"]["orders"][0]["a"] == 120001


def test_only_isolated_markets_are_marked():
    markets = parse_meta(XYZ_META)
    assert markets["xyz:GOLD"].only_isolated and not markets["xyz:TSLA"].only_isolated
    assert parse_meta({"universe": [{"name": "X", "szDecimals": 1, "maxLeverage": 3, "marginMode": "noCross"}]})["X"].only_isolated


async def test_a_hip3_position_is_in_the_snapshot_and_its_order_is_signed_with_its_asset_id():
    tsla = position("xyz:TSLA", "-3.0", "410.0", "1200.0", {"type": "isolated", "value": 5, "rawUsd": "1470.0"}, "240.0")
    venue = StubVenue(perpDexs=PERP_DEXS)
    venue.answers.update({
        ("metaAndAssetCtxs", "xyz"): [XYZ_META, [ctx("25000.0"), ctx("400.0"), ctx("3000.0")]],
        ("clearinghouseState", "xyz"): perp_state("300.0", [tsla]),
        ("frontendOpenOrders", "xyz"): [{"coin": "xyz:TSLA", "side": "A", "limitPx": "450.0", "sz": "1.0", "oid": 77,
                                         "timestamp": 1, "origSz": "1.0", "reduceOnly": False}],
    })
    connector, _ = connector_on(venue, markets=("BTC", "xyz:TSLA"))
    await connector.start()
    markets = await connector.meta()
    assert "xyz:TSLA" in markets and markets["xyz:GOLD"].only_isolated
    snap = await connector.snapshot()
    (pos,) = snap.positions
    assert (pos.coin, pos.size, pos.margin_mode.value) == ("xyz:TSLA", -3.0, "isolated")
    assert snap.account.account_value == 100_300.0 and snap.marks["xyz:TSLA"] == 400.0
    assert [o.coin for o in snap.open_orders] == ["xyz:TSLA"]
    ack = await connector.place(OrderRequest("xyz:TSLA", "buy", "1.25", "399.5", "Gtc", client_id="hip3"))
    assert ack.status == "resting" and venue.posted[-1]["action"]["orders"][0]["a"] == 120001
    assert {"type": "allMids", "dex": "xyz"} in connector.feed.subscriptions
    with pytest.raises(ConnectorError) as cross:
        await connector.set_leverage("xyz:GOLD", 3)
    assert cross.value.code == "OnlyIsolated"


async def test_a_dex_the_venue_does_not_list_refuses_to_start():
    connector, _ = connector_on(StubVenue(perpDexs=PERP_DEXS), markets=("abc:FOO",))
    with pytest.raises(ConnectorError) as refused:
        await connector.start()
    assert refused.value.code == "UnknownDex" and "abc" in refused.value.message


# ---- against the strict fake venue -----------------------------------------------------------

from fake_hyperliquid.harness import (  # noqa: E402
    AGENT_ENV, EXPIRED_AGENT, MASTER as FAKE_MASTER, SUB as FAKE_SUB, VAULT as FAKE_VAULT, config_for, running,
    start_fake, wait_for,
)


@pytest.fixture
def strict(monkeypatch):
    monkeypatch.setenv(AGENT_ENV, AGENT.key.hex())
    servers = []

    def start(**kw):
        servers.append(start_fake(**kw))
        return servers[-1]
    yield start
    for server in servers:
        server.stop()


async def test_a_subaccount_on_the_venue_trades_and_reads_its_own_account_and_leaves_the_master_alone(strict):
    fake = strict(equities={FAKE_SUB: 20_000.0})
    async with running(fake, config_for(fake, account_address=FAKE_SUB)) as (connector, _):
        ack = await connector.place(OrderRequest("ETH", "buy", "0.5", "2500", "Ioc", client_id="sub-1"))
        snap = await connector.snapshot()
    assert ack.status == "filled"
    assert fake.position("ETH", account=FAKE_SUB) == pytest.approx(0.5) and fake.position("ETH") == 0
    assert [(p.coin, p.size) for p in snap.positions] == [("ETH", 0.5)]
    assert snap.account.account_value == pytest.approx(fake.account_value(account=FAKE_SUB), abs=0.01)
    assert fake.account_value() == pytest.approx(100_000)  # the master untouched
    assert fake.refused() == [] and fake.actions("order")[0].action["orders"][0]["c"]


async def test_a_vault_on_the_venue_is_traded_as_itself_with_the_agent_its_leader_approved(strict):
    fake = strict(equities={FAKE_VAULT: 30_000.0})
    async with running(fake, config_for(fake, account_address=FAKE_VAULT)) as (connector, _):
        ack = await connector.place(OrderRequest("ETH", "sell", "0.4", "1500", "Ioc", client_id="vault-1"))
        snap = await connector.snapshot()
    assert ack.status == "filled"
    assert fake.position("ETH", account=FAKE_VAULT) == pytest.approx(-0.4) and fake.position("ETH") == 0
    assert [(p.coin, p.size) for p in snap.positions] == [("ETH", -0.4)]
    assert connector.master_address.lower() == FAKE_MASTER.address.lower()  # the leader, from vaultDetails


async def test_a_unified_account_with_50000_in_spot_on_the_venue_shows_it_and_places_an_order(strict):
    fake = strict(abstraction={FAKE_MASTER.address: "unifiedAccount"}, equities={FAKE_MASTER.address: 50_000.0})
    async with running(fake) as (connector, _):
        snap = await connector.snapshot()
        ack = await connector.place(OrderRequest("ETH", "buy", "1", "2500", "Ioc", client_id="uni-1"))
        after = await connector.snapshot()
    assert snap.account_mode == "unified" and snap.account.account_value == pytest.approx(50_000)
    assert ack.status == "filled" and fake.position("ETH") == pytest.approx(1)
    assert after.account.account_value == pytest.approx(fake.account_value(), abs=0.5)


async def test_an_expired_agent_on_the_venue_refuses_to_start(strict, monkeypatch):
    fake = strict()
    monkeypatch.setenv(AGENT_ENV, EXPIRED_AGENT.key.hex())
    connector = HyperliquidConnector(config_for(fake))
    with pytest.raises(ConnectorError) as refused:
        await connector.start()
    await connector.stop()
    assert refused.value.code == "AgentExpired" and EXPIRED_AGENT.address in refused.value.message
    assert fake.actions() == []


async def test_a_hip3_position_on_the_venue_is_in_the_snapshot_and_its_order_has_its_asset_id(strict):
    fake = strict()
    async with running(fake, config_for(fake, markets=("BTC", "xyz:TSLA"))) as (connector, _):
        markets = await connector.meta()
        await connector.set_leverage("xyz:TSLA", 5, isolated=True)
        ack = await connector.place(OrderRequest("xyz:TSLA", "buy", "2", "300", "Ioc", client_id="tsla"))
        snap = await connector.snapshot()
    assert markets["xyz:TSLA"].only_isolated
    assert ack.status == "filled", ack
    assert fake.actions("order")[-1].action["orders"][0]["a"] == 110_000  # xyz (perpDexs 1), TSLA its first
    assert fake.position("xyz:TSLA") == pytest.approx(2)
    (pos,) = snap.positions
    assert (pos.coin, pos.size, pos.margin_mode.value) == ("xyz:TSLA", 2.0, "isolated")
