"""A paper account survives restarts (issue 16, item 6): a bot paper-trading for weeks keeps
its positions, resting and trigger orders (same oids, the counter continuing), fills, equity,
funding and dead-man state across a clean stop and start of the engine on the same store, and
across `kill -9` of a real `perpguard --engine-only` right after a fill."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import sqlite3
import threading
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from engine.config import load_config
from engine.domain.clock import ManualClock
from engine.node import Service, build
from engine.store.paper_account import PAPER_ACCOUNT_KEY
from engine.store.auth import set_master_password
from engine.venues.connector import OrderRequest, Trigger
from engine.venues.paper.account_state import export_account, restore_account
from engine.venues.paper.exchange import PaperExchange
from engine.venues.paper.hl_info import PaperVenueApi
from engine.venues.paper.prices import MarkTick
from engine.venues.paper.universe import PAPER_MARKETS, START_PRICES
from tests.engine_process import PASSWORD, free_port, perpguard, wait_healthy
from tests.waiting import eventually_sync

ADMIN = {"X-Master-Password": PASSWORD}
T0 = 1_700_000_000.0


def steady(prices: dict[str, float], now: float):
    """The paper feed holding every mark where it is (fresh marks, no moves): equity is then
    comparable to the cent across a restart."""
    return (MarkTick(now + i * 0.2, coin, px) for i in itertools.count() for coin, px in prices.items())


async def answers(api: PaperVenueApi, address: str) -> dict:
    """What a bot reads over /hl/info, without the answer times."""
    out = {}
    for kind in ("clearinghouseState", "frontendOpenOrders", "userFills", "historicalOrders", "userRateLimit"):
        answer = await api.info({"type": kind, "user": address})
        if isinstance(answer, dict):
            answer = {k: v for k, v in answer.items() if k != "time"}
        out[kind] = answer
    return out


# ---- the state, round-tripped ----------------------------------------------------------------


async def test_every_part_of_the_account_comes_back_from_its_saved_state():
    clock = ManualClock(T0)
    paper = PaperExchange(PAPER_MARKETS, clock=clock, account_address="0x" + "12" * 20)
    for coin, px in START_PRICES.items():
        paper.set_mark(coin, px)
    await paper.set_leverage("BTC", 10)
    await paper.place(OrderRequest("BTC", "buy", "0.4", "66000", "Ioc"))
    await paper.place(OrderRequest("ETH", "sell", "3", "3100", "Ioc"))
    await paper.place(OrderRequest("SOL", "buy", "10", "140", "Gtc", client_id="0x" + "5" * 32))
    await paper.place_group([OrderRequest("ETH", "buy", "1", "3000", "Gtc"),  # an entry with a waiting TP/SL
                             OrderRequest("ETH", "sell", "1", "2800", "Gtc", True, trigger=Trigger("2900", "sl")),
                             OrderRequest("ETH", "sell", "1", "3500", "Gtc", True, trigger=Trigger("3400", "tp"))],
                            "normalTpsl")
    await paper.place_group([OrderRequest("BTC", "sell", "0", "55000", "Gtc", True, trigger=Trigger("58000", "sl"))],
                            "positionTpsl")
    paper.set_funding_rate("BTC", 0.0001)
    clock.advance(3600)
    paper.poll()  # an hour's funding paid
    await paper.arm_dead_man(60)
    clock.advance(61)
    paper.poll()  # the switch fires (all resting orders cancelled), once today
    await paper.place(OrderRequest("BTC", "sell", "0.4", "50000", "Gtc", True, trigger=Trigger("60000", "sl")))
    await paper.place(OrderRequest("DOGE", "buy", "1000", "0.1", "Gtc"))
    api = PaperVenueApi(paper)
    before = await answers(api, paper.account_address)

    saved = json.loads(json.dumps(export_account(paper)))  # through JSON, as the store keeps it
    fresh = PaperExchange(PAPER_MARKETS, clock=clock, account_address=paper.account_address)
    restore_account(fresh, saved)

    assert fresh.ledger.cash == paper.ledger.cash and fresh.ledger.funding_paid == paper.ledger.funding_paid
    was, now = await paper.snapshot(), await fresh.snapshot()
    assert now.positions == was.positions and now.open_orders == was.open_orders and now.marks == was.marks
    assert now.account == was.account and now.funding_rates == was.funding_rates
    assert fresh.ledger.leverage["BTC"] == 10
    assert fresh.dead_man.fired_today == 1 == paper.dead_man.fired_today
    assert await answers(PaperVenueApi(fresh), fresh.account_address) == before
    ack = await fresh.place(OrderRequest("SOL", "buy", "1", "100", "Gtc"))
    assert ack.oid == str(int(max(o.oid for o in was.open_orders)) + 1)  # the oid counter continues
    dup = await fresh.place(OrderRequest("SOL", "buy", "1", "100", "Gtc", client_id="0x" + "5" * 32))
    assert dup.code == "DuplicateCloid"  # a cloid used before the restart is still used


def test_a_saved_state_from_another_version_is_refused():
    paper = PaperExchange(PAPER_MARKETS, clock=ManualClock(T0))
    with pytest.raises(ValueError, match="version"):
        restore_account(paper, {"version": 99})
    with pytest.raises(ValueError, match="malformed"):
        restore_account(paper, {"version": 1, "ledger": {}})


# ---- the node: a clean stop and a start on the same store ------------------------------------------


@contextmanager
def node(tmp: Path) -> Iterator[tuple[Service, asyncio.AbstractEventLoop]]:
    """A service on `tmp`'s database, its gateway on 127.0.0.1, marks held steady; stopped cleanly."""
    config_file = tmp / "perpguard.toml"
    config_file.write_text("")
    config = load_config(str(config_file), **{"engine.db": f"sqlite:///{tmp / 'pg.db'}", "engine.listen": "127.0.0.1:0"})
    loop = asyncio.new_event_loop()
    box: dict = {}
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            box["service"] = build(config, market=steady)
            set_master_password(box["service"].store, PASSWORD)
            loop.run_until_complete(box["service"].start())
        except BaseException as exc:
            box["error"] = exc
        ready.set()
        if "error" not in box:
            loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30)
    if "error" in box:
        raise box["error"]
    service = box["service"]
    try:
        yield service, loop
    finally:
        asyncio.run_coroutine_threadsafe(service.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def on(loop: asyncio.AbstractEventLoop, fn):
    async def call():
        result = fn()
        return await result if asyncio.iscoroutine(result) else result
    return asyncio.run_coroutine_threadsafe(call(), loop).result(30)


def test_positions_orders_fills_and_equity_survive_a_clean_restart(tmp_path):
    with node(tmp_path) as (service, loop):
        paper = service.engine.connector
        assert isinstance(paper, PaperExchange)
        url = service.url
        bought = httpx.post(f"{url}/v1/orders", json={"market": "BTC", "side": "buy", "size": 0.1, "stop_loss": 60_000},
                            headers=ADMIN, timeout=30)
        assert bought.status_code == 200, bought.text
        # The intent's stop_loss rests on the venue as the entry's reduce-only trigger child.
        eventually_sync(lambda: on(loop, lambda: [o for o in paper.open_orders() if o.trigger_px is not None]),
                        what="the venue stop")
        resting = httpx.post(f"{url}/v1/orders", json={"market": "ETH", "side": "buy", "size": 1.0, "type": "limit",
                                                       "limit_px": 3_100.0}, headers=ADMIN, timeout=30)
        assert resting.status_code == 200, resting.text
        before = on(loop, lambda: answers(service.venue_api, paper.account_address))
        snapshot = on(loop, paper.snapshot)
        cash, address = paper.ledger.cash, paper.account_address
        equity = httpx.get(f"{url}/v1/state", headers=ADMIN, timeout=10).json()["account"]["equity"]
    assert {o.oid for o in snapshot.open_orders} and snapshot.positions[0].size == 0.1

    with node(tmp_path) as (service, loop):
        paper = service.engine.connector
        assert paper.account_address == address and paper.ledger.cash == cash
        again = on(loop, paper.snapshot)
        assert again.positions == snapshot.positions  # size, entry, leverage, funding
        assert again.open_orders == snapshot.open_orders  # the same oids, prices, sizes, trigger
        assert on(loop, lambda: answers(service.venue_api, address)) == before  # what a bot reads: identical
        state = eventually_sync(lambda: (s := httpx.get(f"{service.url}/v1/state", headers=ADMIN, timeout=10).json())
                                ["positions"] and s, what="the reconciled state")
        assert state["account"]["equity"] == pytest.approx(equity, abs=0.01)
        assert [(p["coin"], p["size"]) for p in state["positions"]] == [("BTC", 0.1)]
        assert {o["oid"] for o in state["open_orders"]} == {o.oid for o in snapshot.open_orders}
        after = httpx.post(f"{service.url}/v1/orders", json={"market": "SOL", "side": "buy", "size": 1.0,
                                                             "type": "limit", "limit_px": 145.0},
                           headers=ADMIN, timeout=30)
        assert after.status_code == 200, after.text
        newest = max(int(o.oid) for o in on(loop, paper.open_orders))
        assert newest > max(int(o.oid) for o in snapshot.open_orders)  # the oid counter went on
        report = service.store.verify_chain()  # the saves are venue state, outside the chains: the audit holds
        assert report.ok, report.problem


# ---- kill -9 of a real engine, right after a fill ------------------------------------------------------


def saved_position(db: Path, coin: str) -> Decimal | None:
    """The size of `coin` in the paper account the store holds now (read-only), or None."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT value FROM venue_state WHERE key = ?", (PAPER_ACCOUNT_KEY,)).fetchone()
    if row is None:
        return None
    holding = json.loads(row[0])["ledger"]["holdings"].get(coin)
    return Decimal(holding["size"]) if holding else None


def test_a_position_survives_kill_9_right_after_its_fill(tmp_path):
    env = {**os.environ, "PERPGUARD_MASTER_PASSWORD": PASSWORD}  # the test's own XDG folders (conftest)
    config, db, port = tmp_path / "perpguard.toml", tmp_path / "engine.db", free_port()
    url = f"http://127.0.0.1:{port}"
    init = perpguard("init", "--config", str(config), "--db", f"sqlite:///{db}", "--listen", f"127.0.0.1:{port}", env=env)
    assert init.wait(60) == 0, init.stderr.read()
    engine = perpguard("--engine-only", "--config", str(config), env=env)
    try:
        wait_healthy(url, engine)
        filled = httpx.post(f"{url}/v1/orders", json={"market": "ETH", "side": "sell", "size": 0.5}, headers=ADMIN,
                            timeout=30)
        assert filled.status_code == 200, filled.text
        entry = httpx.get(f"{url}/v1/state", headers=ADMIN, timeout=10).json()["positions"][0]["entry_px"]
        # The fill is handed to the store's writer at once: committed within a fraction of a second.
        eventually_sync(lambda: saved_position(db, "ETH") == Decimal("-0.5"), seconds=2, what="the fill saved")
    finally:
        engine.send_signal(signal.SIGKILL)
        engine.wait(10)
    restarted = perpguard("--engine-only", "--config", str(config), env=env)
    try:
        wait_healthy(url, restarted)
        positions = httpx.get(f"{url}/v1/state", headers=ADMIN, timeout=10).json()["positions"]
        assert [(p["coin"], p["side"], p["size"], p["entry_px"]) for p in positions] == [("ETH", "short", -0.5, entry)]
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(30)
