"""Idempotency that holds (issue 13, finding 3; SPEC 12: the same client_id gives the same
decision and at most one exchange order), through the real gateway where it is an HTTP matter."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from engine.domain.clock import ManualClock
from engine.domain.model import OrderIntent, Tier
from engine.facade import EngineService
from engine.live.engine import Engine
from engine.live.pending import PendingStatus
from engine.risk.policies import parse_policies
from engine.store import Store
from engine.store.journal import DurableJournal
from engine.store.writer import StoreWriter
from engine.venues.connector import FeedRestored, FeedStale
from engine.venues.paper.exchange import PaperExchange
from engine.venues.paper.universe import PAPER_MARKETS, START_PRICES
from tests.engine_server import MASTER, EngineThread

ADMIN = {"X-Master-Password": MASTER}
T0 = 1_700_000_000.0


@pytest.fixture
def running(tmp_path):
    with EngineThread(tmp_path) as engine:
        yield engine


def token(url: str, name: str) -> dict:
    created = httpx.post(f"{url}/v1/tokens", json={"name": name, "scopes": ["trade", "read"]}, headers=ADMIN, timeout=10)
    assert created.status_code == 201
    return {"Authorization": f"Bearer {created.json()['token']}"}


def test_fifty_concurrent_requests_with_one_client_id_get_the_first_answer_and_one_order(running):
    body = {"market": "ETH", "side": "buy", "size": 1, "client_id": "burst-1"}

    async def burst():
        async with httpx.AsyncClient(base_url=running.url, headers=ADMIN, timeout=60) as client:
            return await asyncio.gather(*(client.post("/v1/orders", json=body) for _ in range(50)))

    answers = asyncio.run(burst())
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["order"]["oid"] for a in answers}) == 1
    assert {a.json()["order"]["client_id"] for a in answers} == {"burst-1"}  # the bot's own id back
    assert running.service.engine.connector.position_size("ETH") == pytest.approx(1)


def test_the_same_client_id_for_a_different_order_is_a_conflict_naming_the_field(running):
    first = httpx.post(f"{running.url}/v1/orders", json={"market": "BTC", "side": "buy", "notional_usd": 500,
                                                         "client_id": "c-7"}, headers=ADMIN, timeout=30)
    assert first.status_code == 200
    other = httpx.post(f"{running.url}/v1/orders", json={"market": "ETH", "side": "sell", "notional_usd": 9000,
                                                         "client_id": "c-7"}, headers=ADMIN, timeout=30)
    assert other.status_code == 409
    error = other.json()["error"]
    assert error["code"] == "CONFLICT" and error["details"]["field"] == "market"
    assert running.service.engine.connector.position_size("ETH") == 0  # no exit happened
    same = httpx.post(f"{running.url}/v1/orders", json={"market": "BTC", "side": "buy", "notional_usd": 500,
                                                        "client_id": "c-7"}, headers=ADMIN, timeout=30)
    assert same.status_code == 200 and same.json()["order"]["oid"] == first.json()["order"]["oid"]


def test_client_ids_belong_to_the_bot_that_sent_them(running):
    alice, bob = token(running.url, "alice"), token(running.url, "bob")
    a = httpx.post(f"{running.url}/v1/orders", json={"market": "BTC", "side": "buy", "notional_usd": 500,
                                                     "client_id": "order-1"}, headers=alice, timeout=30)
    b = httpx.post(f"{running.url}/v1/orders", json={"market": "ETH", "side": "buy", "notional_usd": 700,
                                                     "client_id": "order-1"}, headers=bob, timeout=30)
    assert (a.status_code, b.status_code) == (200, 200)
    assert a.json()["order"]["oid"] != b.json()["order"]["oid"]  # bob neither read alice's answer nor was refused
    again = httpx.post(f"{running.url}/v1/orders", json={"market": "BTC", "side": "buy", "notional_usd": 500,
                                                         "client_id": "order-1"}, headers=alice, timeout=30)
    assert again.json()["order"]["oid"] == a.json()["order"]["oid"]


def paper_at(clock: ManualClock) -> PaperExchange:
    paper = PaperExchange(PAPER_MARKETS, equity=100_000, clock=clock)
    for coin, px in START_PRICES.items():
        paper.set_mark(coin, px)
    return paper


async def test_a_retryable_answer_is_not_kept():
    clock = ManualClock(T0)
    paper = paper_at(clock)
    engine = Engine(paper, parse_policies([{"type": "STALE_DATA", "rules": {"maxMarkAgeSeconds": 10,
                                                                             "maxAccountAgeSeconds": 30}}]), clock)
    await engine.start()
    service = EngineService(engine)
    intent = OrderIntent(market="BTC", side="buy", notional_usd=500, client_id="retry-me")
    engine.on_venue_event(FeedStale(T0 - 20, T0))
    stale = await service.submit(intent)
    assert stale.status == 403 and stale.body["error"]["code"] == "DATA_UNAVAILABLE"
    engine.on_venue_event(FeedRestored(T0))
    await engine.settle()
    fresh = await service.submit(intent)
    assert fresh.status == 200 and paper.position_size("BTC") > 0


SPENDING = [{"type": "SPENDING_LIMIT", "rules": {"instant_max_usd": 100, "notify_max_usd": 100, "delay_max_usd": 50_000,
                                                 "delay_seconds": 60}}]


async def test_a_release_interrupted_by_a_crash_is_never_sent_twice(tmp_path):
    db, clock = f"sqlite:///{tmp_path / 'pg.db'}", ManualClock(T0)
    store, writer = Store(db), StoreWriter()
    journal = DurableJournal(store, writer)
    engine = Engine(paper_at(clock), parse_policies(SPENDING), clock, pending_store=journal, journal=journal)
    await engine.start()
    held = await engine.submit(OrderIntent(market="ETH", side="buy", notional_usd=5_000))
    assert held.pending.tier is Tier.DELAY and held.pending.client_id == f"pg-{held.pending.id}"
    engine.pending.releasing(held.pending.id)  # saved before the venue is called; then the process dies
    assert await journal.durable()
    writer.stop()

    clock.advance(120)
    paper = paper_at(clock)
    writer = StoreWriter()
    journal = DurableJournal(store, writer)
    restarted = Engine(paper, parse_policies(SPENDING), clock, pending_store=journal, journal=journal)
    await restarted.start()
    await restarted.tick()
    assert paper.position_size("ETH") == 0  # not re-sent blind
    assert restarted.pending.open_actions() == []
    assert await journal.durable()
    (closed,) = [a for a in store.list_pending() if a.id == held.pending.id]
    assert closed.status is PendingStatus.FAILED and closed.client_id in closed.outcome
    writer.stop()
    store.close()
