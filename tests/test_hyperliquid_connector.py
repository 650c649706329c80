"""The Hyperliquid connector against the fake server: signed actions, increments, idempotent
retries, the dead-man switch, cancels, leverage and the rate budget."""

import asyncio
import time

import pytest

from engine.venues.connector import ConnectorError, OrderCancelled, OrderRejected, OrderRequest
from engine.venues.hyperliquid.connector import HyperliquidConnector
from engine.venues.hyperliquid.fast_signing import signing_key
from engine.venues.hyperliquid.signer import cloid_for
from fake_hyperliquid.harness import (
    AGENT, AGENT_ENV, MASTER, STRANGER, config_for, of_type, running, start_fake, wait_for,
)


@pytest.fixture
def traded(monkeypatch):
    """A fake whose account traded $2M: the venue arms a dead-man switch only past $1M."""
    monkeypatch.setenv(AGENT_ENV, AGENT.key.hex())
    server = start_fake(cum_volume={MASTER.address: 2_000_000.0})
    yield server
    server.stop()


def resting_buy(client_id, size="0.05", px="1800"):
    return OrderRequest("ETH", "buy", size, px, "Gtc", client_id=client_id)


def market_buy(client_id, size="0.05"):
    return OrderRequest("ETH", "buy", size, "1999", "Ioc", client_id=client_id)


async def test_actions_arrive_signed_by_the_agent_for_the_account(traded):
    fake = traded
    async with running(fake) as (connector, _):
        assert connector.agent_address == AGENT.address
        ack = await connector.place(resting_buy("sig-1"))
        await connector.cancel("ETH", ack.oid)
        await connector.arm_dead_man(60)
        await connector.set_leverage("ETH", 10)
    actions = fake.actions()
    assert [a.action["type"] for a in actions] == ["order", "cancel", "scheduleCancel", "updateLeverage"]
    assert {a.signer for a in actions} == {AGENT.address.lower()}  # recovered from each EIP-712 signature
    assert fake.refused() == []
    assert actions[0].action["orders"][0]["c"] == cloid_for("sig-1")  # the order carries its cloid


async def test_a_key_the_account_never_approved_refuses_to_start(fake, monkeypatch):
    monkeypatch.setenv(AGENT_ENV, STRANGER.key.hex())
    connector = HyperliquidConnector(config_for(fake))
    with pytest.raises(ConnectorError) as refused:
        await connector.start()
    await connector.stop()
    assert refused.value.code == "AgentNotApproved" and STRANGER.address in refused.value.message
    assert fake.actions() == [] and fake.orders() == []


async def test_an_order_signed_by_a_key_the_venue_does_not_know_is_rejected(fake, monkeypatch):
    async with running(fake) as (connector, events):
        connector._signer._key = signing_key(STRANGER)  # a key the venue does not know signs from now on
        ack = await connector.place(resting_buy("stranger"))
    assert ack.status == "rejected" and "does not exist" in ack.error and ack.code == "AgentNotApproved"
    assert fake.orders() == [] and STRANGER.address.lower() in fake.refused()[0]
    assert of_type(events, OrderRejected)[0].client_id == "stranger"


async def test_signatures_are_for_the_configured_network_whatever_the_url(fake):
    # the fake verifies as testnet: a mainnet signature recovers to some other address
    async with running(fake, config_for(fake, network="mainnet")) as (connector, _):
        ack = await connector.place(resting_buy("wrong-chain"))
    assert ack.status == "rejected" and fake.orders() == []
    assert "does not exist" in fake.refused()[0] and AGENT.address.lower() not in fake.refused()[0]


async def test_a_burst_of_orders_gets_fresh_nonces(fake):
    async with running(fake) as (connector, _):
        acks = await asyncio.gather(*(connector.place(resting_buy(f"burst-{i}")) for i in range(8)))
    assert [a.status for a in acks] == ["resting"] * 8
    nonces = [a.nonce for a in fake.actions("order")]
    assert len(set(nonces)) == 8 and fake.refused() == []


async def test_sizes_and_prices_are_rounded_to_the_market_before_signing(fake):
    async with running(fake) as (connector, _):
        buy = await connector.place(OrderRequest("ETH", "buy", "0.123456", "1999.123", "Ioc", client_id="r1"))
        sell = await connector.place(OrderRequest("ETH", "sell", "0.0999", "1800.016", "Gtc", client_id="r2"))
    wires = [a.action["orders"][0] for a in fake.actions("order")]
    # ETH has 4 size decimals: sizes round down; prices keep 5 figures and 2 decimals, never more aggressive
    assert (wires[0]["s"], wires[0]["p"]) == ("0.1234", "1999.1")
    assert (wires[1]["s"], wires[1]["p"]) == ("0.0999", "1800.1")
    assert buy.status == "filled" and buy.filled_size == 0.1234
    assert sell.status == "filled"  # a sell at 1800.1 crosses the 1903.95 mark


async def test_an_order_whose_answer_was_lost_is_found_by_its_cloid_not_doubled(fake):
    fake.fail_next("exchange", 502, after_apply=True)  # the venue took it, the answer never came
    async with running(fake) as (connector, _):
        ack = await connector.place(resting_buy("lost-answer"))
    (order,) = fake.orders(cloid_for("lost-answer"))
    assert ack.status == "resting" and ack.oid == str(order.oid)
    assert len(fake.actions("order")) == 1  # never sent again


async def test_placing_the_same_client_id_again_sends_nothing_new(fake):
    async with running(fake) as (connector, _):
        first = await connector.place(market_buy("twice"))
        again = await connector.place(market_buy("twice"))
    assert (again.oid, again.status, again.filled_size) == (first.oid, "filled", 0.05)
    assert len(fake.orders()) == 1 and len(fake.actions("order")) == 1
    assert fake.position("ETH") == pytest.approx(0.05)


async def test_a_retry_racing_the_first_call_waits_for_it_and_finds_its_order(fake):
    async with running(fake) as (connector, _):
        first, again = await asyncio.gather(connector.place(market_buy("race")), connector.place(market_buy("race")))
    assert first.oid == again.oid and first.status == again.status == "filled"
    assert len(fake.orders()) == 1 and len(fake.actions("order")) == 1


async def test_an_order_that_never_landed_is_sent_again_once_its_copy_expired(fake):
    fake.fail_next("exchange", 500)  # refused before it was applied; we cannot tell
    async with running(fake, order_ttl_seconds=0.3) as (connector, _):
        ack = await connector.place(market_buy("retry-500"))
    assert ack.status == "filled"
    assert len(fake.orders(cloid_for("retry-500"))) == 1 and fake.position("ETH") == pytest.approx(0.05)
    assert fake.posts["exchange"] == 2  # sent twice, but the first copy never reached the venue
    assert len(fake.actions("order")) == 1


async def test_429_is_retried_after_a_pause(fake):
    fake.fail_next("exchange", 429)
    async with running(fake) as (connector, _):
        ack = await connector.place(resting_buy("throttled"))
    assert ack.status == "resting" and len(fake.orders()) == 1


async def test_info_errors_are_retried(fake):
    async with running(fake) as (connector, _):
        fake.fail_next("info", 502, times=2)
        fake.fail_next("info", 503)
        snap = await connector.snapshot()
    assert snap.account.account_value == 100_000 and snap.positions == ()


async def test_the_dead_man_switch_is_armed_rearmed_and_cleared(traded):
    fake = traded
    async with running(fake) as (connector, _):
        await connector.arm_dead_man(60)
        first = fake.dead_man_deadline()
        assert first == pytest.approx(time.time() + 60, abs=2)
        assert connector.dead_man_deadline == pytest.approx(first, abs=0.01)
        await asyncio.sleep(0.05)
        await connector.arm_dead_man(60)
        assert fake.dead_man_deadline() > first  # pushed forward
        cleared = await connector.arm_dead_man(None)
        assert fake.dead_man_deadline() is None and connector.dead_man_deadline is None
        assert (cleared.armed, cleared.reason) == (False, "cleared")
        with pytest.raises(ConnectorError):
            await connector.arm_dead_man(2)  # Hyperliquid's floor is 5 s
    assert fake.actions("scheduleCancel")[-1].action == {"type": "scheduleCancel"}


async def test_resting_orders_die_when_the_dead_man_switch_fires(traded):
    fake = traded
    async with running(fake) as (connector, events):
        acks = [await connector.place(resting_buy(f"orphan-{i}")) for i in range(3)]
        assert (await connector.arm_dead_man(60)).armed
        fake.advance(61)  # the engine died: nobody re-armed it
        await wait_for(lambda: len(of_type(events, OrderCancelled)) == 3, what="the cancel events")
        snap = await connector.snapshot()
        fired = connector.dead_man
    cancelled = of_type(events, OrderCancelled)
    assert {(c.oid, c.reason) for c in cancelled} == {(a.oid, "scheduledCancel") for a in acks}
    assert cancelled[0].client_id == "orphan-0"
    assert snap.open_orders == ()
    assert fired.fired_today == 1 and not fired.armed  # one fire, however many orders it cancelled


async def test_a_dead_man_refused_for_volume_is_reported_and_not_sent_every_call(fake):
    async with running(fake) as (connector, _):
        first = await connector.arm_dead_man(60)
        for _ in range(3):
            again = await connector.arm_dead_man(60)
    assert not first.armed and first.reason.startswith("Cannot set scheduled cancel time until enough volume traded")
    assert again == first and connector.dead_man.reason == first.reason
    assert len(fake.actions("scheduleCancel")) == 1 and fake.dead_man_deadline() is None


async def test_cancel_and_cancel_all(fake):
    async with running(fake) as (connector, _):
        acks = [await connector.place(resting_buy(f"c{i}")) for i in range(3)]
        assert (await connector.cancel("ETH", acks[0].oid)).cancelled
        again = await connector.cancel("ETH", acks[0].oid)
        assert not again.cancelled and "never placed, already canceled" in again.error
        assert await connector.cancel_all() == 2
        assert await connector.cancel_all() == 0
        snap = await connector.snapshot()
    assert snap.open_orders == ()
    assert len(fake.actions("cancel")[-1].action["cancels"]) == 2  # one batched action


async def test_set_leverage(fake):
    async with running(fake) as (connector, _):
        await connector.set_leverage("ETH", 10)
        with pytest.raises(ConnectorError):
            await connector.set_leverage("ETH", 51)  # the market's maximum is 50x
        with pytest.raises(ConnectorError, match="Unknown asset"):
            await connector.set_leverage("NOPE", 2)
    assert fake.call(lambda: fake.venue.paper.ledger.leverage["ETH"]) == 10


async def test_open_orders_and_positions_come_back_in_the_snapshot(fake):
    async with running(fake) as (connector, _):
        await connector.place(market_buy("pos", size="0.5"))
        await connector.place(resting_buy("rest"))
        snap = await connector.snapshot()
        await wait_for(lambda: {"type": "activeAssetCtx", "coin": "ETH"} in fake.subscriptions(),
                       what="the held coin's asset context")
    (eth,) = snap.positions
    assert eth.coin == "ETH" and eth.size == 0.5
    (order,) = snap.open_orders
    assert (order.client_id, order.side, order.size, order.limit_px) == ("rest", "buy", 0.05, 1800.0)
    assert snap.marks["ETH"] == 1903.95 and snap.account.time == snap.time


async def test_the_rate_budget_counts_every_request(fake):
    async with running(fake) as (connector, _):
        await connector.snapshot()
        await connector.place(resting_buy("budget"))
        view = connector.rate_budget()
    # start: userRole 60 + extraAgents 20 + userAbstraction 20 + metaAndAssetCtxs 20 + userRateLimit 20;
    # the snapshot: clearinghouseState 2 + frontendOpenOrders 20 (userAbstraction still fresh); one order 1
    assert (view.used, view.remaining, view.limit) == (163, 1200 - 163, 1200)
    assert view.address.cap == 10_000 and view.address.used >= 1  # a new account: 10,000 requests
