"""Hyperliquid HIP-3 (builder-deployed) markets as they are: names keep their dex prefix, asset
ids are the venue's (100000 + dex index × 10000 + index), only-isolated markets are marked, and
their positions and orders are read and placed like the main dex's.

The venue's answers are hand-copied from real ones (each names its source) and served by
`StubVenue`, an in-process stand-in for the transport, so these run without the fake server;
the last one runs against the strict fake venue."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.domain.coins import canonical_coin
from engine.venues.connector import ConnectorError, OrderRequest
from engine.venues.hyperliquid.signer import ActionSigner
from engine.venues.hyperliquid.snapshot import parse_meta
from fake_hyperliquid.harness import config_for, running
from hl_stub_venue import (  # noqa: F401 (strict: the fixture)
    AGENT, MASTER, META, PERP_DEXS, XYZ_META, StubVenue, connector_on, ctx, perp_state, position, strict,
)

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
