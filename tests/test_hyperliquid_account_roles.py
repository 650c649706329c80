"""Hyperliquid account roles as they are: subaccounts and vaults traded with `vaultAddress`, an
agent address or an unknown one refused at start, and the agent's approval and expiry.

The venue's answers are hand-copied from real ones (each names its source) and served by
`StubVenue`, an in-process stand-in for the transport, so these run without the fake server;
the last ones run against the strict fake venue."""

from __future__ import annotations

import time

import pytest

from engine.venues.connector import ConnectorError, OrderRequest
from engine.venues.hyperliquid.config import API_WALLET_HELP
from engine.venues.hyperliquid.connector import HyperliquidConnector
from engine.venues.hyperliquid.parse import agent_valid_until, parse_user_role
from fake_hyperliquid.harness import (
    AGENT_ENV, EXPIRED_AGENT, MASTER as FAKE_MASTER, SUB as FAKE_SUB, VAULT as FAKE_VAULT, config_for, running,
)
from hl_stub_venue import (  # noqa: F401 (strict: the fixture)
    AGENT, DAY, LEADER, MASTER, SUB, VAULT, StubVenue, buy, connector_on, perp_state, signer_of, strict,
)

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

# ---- against the strict fake venue -----------------------------------------------------------


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


async def test_an_expired_agent_on_the_venue_refuses_to_start(strict, monkeypatch):
    fake = strict()
    monkeypatch.setenv(AGENT_ENV, EXPIRED_AGENT.key.hex())
    connector = HyperliquidConnector(config_for(fake))
    with pytest.raises(ConnectorError) as refused:
        await connector.start()
    await connector.stop()
    assert refused.value.code == "AgentExpired" and EXPIRED_AGENT.address in refused.value.message
    assert fake.actions() == []
