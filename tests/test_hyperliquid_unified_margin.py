"""Hyperliquid unified and portfolio-margin accounts as they are: their collateral is the spot
balance, and their figures follow the venue's own formula (cross maintenance margin over the
spot collateral, isolated margins apart, dexes added up).

The venue's answers are hand-copied from real ones (each names its source) and served by
`StubVenue`, an in-process stand-in for the transport, so these run without the fake server;
the last one runs against the strict fake venue."""

from __future__ import annotations

import pytest

from engine.venues.connector import OrderRequest
from engine.venues.hyperliquid.snapshot import (
    account_mode_of, parse_clearinghouse_state, unified_account, unified_snapshot,
)
from fake_hyperliquid.harness import MASTER as FAKE_MASTER, running
from hl_stub_venue import (  # noqa: F401 (strict: the fixture)
    PM_MAIN_DEX_STATE, ZEROED_PERP_STATE, StubVenue, buy, connector_on, perp_state, position, spot, strict,
)

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


# ---- against the strict fake venue -----------------------------------------------------------


async def test_a_unified_account_with_50000_in_spot_on_the_venue_shows_it_and_places_an_order(strict):
    fake = strict(abstraction={FAKE_MASTER.address: "unifiedAccount"}, equities={FAKE_MASTER.address: 50_000.0})
    async with running(fake) as (connector, _):
        snap = await connector.snapshot()
        ack = await connector.place(OrderRequest("ETH", "buy", "1", "2500", "Ioc", client_id="uni-1"))
        after = await connector.snapshot()
    assert snap.account_mode == "unified" and snap.account.account_value == pytest.approx(50_000)
    assert ack.status == "filled" and fake.position("ETH") == pytest.approx(1)
    assert after.account.account_value == pytest.approx(fake.account_value(), abs=0.5)
