"""ccxt as a bot behind perpguard with the strict fake Hyperliquid on the other side: its orders
reach the venue signed by perpguard's agent, and what the gate refuses never does."""

from __future__ import annotations

import ccxt
import pytest

from tests.hl_gateway import BETA, hl_on_fake  # noqa: F401 (the fixture)

SYMBOL = "BTC/USDC:USDC"


@pytest.fixture
def hl(hl_on_fake):
    return hl_on_fake


def test_ccxt_behind_perpguard_trades_on_the_venue_and_hears_the_gate_s_refusals(hl, fake):
    from fake_hyperliquid.harness import AGENT

    client = ccxt.hyperliquid({"urls": {"api": {"public": hl.url, "private": hl.url}},
                               "walletAddress": hl.account, "privateKey": BETA.key.hex()})
    client.load_markets()
    mid = client.fetch_ticker(SYMBOL)["last"]
    bought = client.create_order(SYMBOL, "market", "buy", 0.01, mid)
    assert bought["filled"] == 0.01
    assert fake.position("BTC") == pytest.approx(0.01)
    (position,) = client.fetch_positions([SYMBOL])
    assert position["contracts"] == 0.01
    orders = [a for a in fake.actions("order")]
    assert orders and all(a.signer == AGENT.address.lower() for a in orders)  # re-signed by perpguard's agent
    assert all("builder" not in a.action for a in orders)  # ccxt's own builder fee stripped
    with pytest.raises(ccxt.BaseError) as denied:
        client.create_order(SYMBOL, "market", "buy", 1.0, mid)  # ~$30k: above the $20k position cap
    assert "perpguard: POLICY_DENIED: " in str(denied.value)
    assert len(fake.actions("order")) == len(orders)  # the denied order never reached the venue
