"""What the store claims to keep (README, "Store"): every order the engine sends (the bots' and
its own de-risk and panic orders), every fill, and equity points (at start, at every fill, and
once a minute), read back from the database itself."""

from __future__ import annotations

import asyncio

import pytest

from engine.domain.model import OrderIntent
from engine.live.periodic import equity_points
from engine.store import Store
from tests.engine_server import EngineThread


def test_an_order_its_fill_and_the_equity_are_recorded(tmp_path):
    db = f"sqlite:///{tmp_path / 'pg.db'}"
    with EngineThread(tmp_path, db_url=db) as running:
        service = running.service.service
        answer = running.call(service.submit(OrderIntent(market="ETH", side="buy", size=2, client_id="bot-1")))
        assert answer.status == 200
        running.call(service.kill("test: flatten"))  # the panic exit sends the engine's own reduce-only order
    with Store(db) as store:
        orders = list(reversed(store.recent_orders()))
        fills = list(reversed(store.recent_fills()))
        equity = store.equity_since(0)
    entry, close = orders
    assert (entry.coin, entry.side, entry.size, entry.client_id, entry.reduce_only, entry.status) == \
        ("ETH", "buy", 2.0, "master/bot-1", False, "filled")  # client ids are scoped to who sent them
    assert (close.coin, close.side, close.size, close.reduce_only, close.status) == ("ETH", "sell", 2.0, True, "filled")
    assert close.client_id.startswith("pg-derisk-")
    assert [(f.coin, f.side, f.size) for f in fills] == [("ETH", "buy", 2.0), ("ETH", "sell", 2.0)]
    assert fills[0].oid == entry.oid and fills[1].oid == close.oid
    assert fills[1].fee > 0
    # one point when the engine started, one at each fill
    assert len(equity) == 3 and all(point.equity > 0 for point in equity)


def test_a_refused_order_is_recorded_with_the_venue_s_reason(tmp_path):
    db = f"sqlite:///{tmp_path / 'pg.db'}"
    with EngineThread(tmp_path, db_url=db) as running:
        running.service.engine.connector.faults.reject_next(1, "Insufficient margin to place order.", "PerpMargin")
        answer = running.call(running.service.service.submit(OrderIntent(market="BTC", side="buy", size=0.01)))
        assert answer.status == 409
    with Store(db) as store:
        (order,) = store.recent_orders()
        assert store.recent_fills() == []
    assert (order.coin, order.status, order.error) == ("BTC", "rejected", "Insufficient margin to place order.")


async def test_equity_points_come_once_a_period_until_stopped():
    stop, points = asyncio.Event(), []

    def record() -> None:
        points.append(len(points))
        if len(points) == 3:
            stop.set()

    await asyncio.wait_for(equity_points(record, stop, seconds=0.01), timeout=10)
    assert points == [0, 1, 2]


async def test_a_failing_store_does_not_end_the_equity_series():
    stop, calls = asyncio.Event(), []

    def record() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("database is locked")
        stop.set()

    await asyncio.wait_for(equity_points(record, stop, seconds=0.01), timeout=10)
    assert len(calls) == 2
