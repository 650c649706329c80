"""A restart hands no bot a fresh budget (issue 13, finding 1): every limit's usage survives
`kill -9` of a real `perpguard --engine-only` (rate and spend windows), and the counters the
engine keeps (losing streak, peak equity, the day's and week's starting equity) come back from
the store's journal as they were."""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager

import httpx
import pytest

from engine.domain.clock import ManualClock
from engine.domain.model import OrderIntent
from engine.live.engine import Engine
from engine.live.execution import SubmitStatus
from engine.risk.counters import CounterChange
from engine.risk.policies import parse_policies
from engine.risk.policy_file import DEFAULT_POLICY_BODIES
from engine.store import Store
from engine.store.journal import DurableJournal
from engine.store.writer import StoreWriter
from engine.venues.paper.exchange import PaperExchange
from engine.venues.paper.universe import PAPER_MARKETS, START_PRICES
from tests.engine_process import PASSWORD, free_port, perpguard, wait_healthy

ADMIN = {"X-Master-Password": PASSWORD}


@contextmanager
def engine_only(tmp_path, policies: list[dict]):
    """A real --engine-only process (its own config, database, port) with `policies` added;
    yields (url, restart, procs): restart() is `kill -9` and a start on the same database; the
    running process is procs[-1]."""
    env = {**os.environ, "PERPGUARD_MASTER_PASSWORD": PASSWORD}  # the test's own XDG folders (conftest)
    config, port = tmp_path / "perpguard.toml", free_port()
    url = f"http://127.0.0.1:{port}"
    init = perpguard("init", "--config", str(config), "--db", f"sqlite:///{tmp_path / 'engine.db'}",
                     "--listen", f"127.0.0.1:{port}", env=env)
    assert init.wait(60) == 0, init.stderr.read()
    procs = [perpguard("--engine-only", "--config", str(config), env=env)]
    wait_healthy(url, procs[-1])
    for body in policies:
        assert httpx.post(f"{url}/v1/policies", json=body, headers=ADMIN, timeout=10).status_code == 201

    def restart() -> None:
        procs[-1].send_signal(signal.SIGKILL)
        procs[-1].wait(10)
        procs.append(perpguard("--engine-only", "--config", str(config), env=env))
        wait_healthy(url, procs[-1])

    try:
        yield url, restart, procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def order(url: str, usd: float) -> int:
    return httpx.post(f"{url}/v1/orders", json={"market": "BTC", "side": "buy", "notional_usd": usd},
                      headers=ADMIN, timeout=30).status_code


def test_rate_limit_usage_survives_kill_9(tmp_path):
    with engine_only(tmp_path, [{"type": "RATE_LIMIT", "rules": {"maxTransactions": 5, "period": "hourly"}}]) as (url, restart, _):
        assert [order(url, 100) for _ in range(6)] == [200] * 5 + [403]
        restart()
        refused = httpx.post(f"{url}/v1/orders", json={"market": "BTC", "side": "buy", "notional_usd": 100},
                             headers=ADMIN, timeout=30)
        assert refused.status_code == 403
        assert "RATE_LIMITED" in {r["code"] for r in refused.json()["decision"]["reasons"]}


def test_daily_spend_survives_kill_9(tmp_path):
    spending = {"type": "SPENDING_LIMIT", "rules": {"instant_max_usd": 1000, "notify_max_usd": 1000, "delay_max_usd": 1000,
                                                    "daily_limit_usd": 1000, "on_exceed": "DENY"}}
    with engine_only(tmp_path, [spending]) as (url, restart, _):
        assert [order(url, 400) for _ in range(3)] == [200, 200, 403]
        restart()
        assert [order(url, 400) for _ in range(2)] == [403, 403]  # 800 of 1000 USD are spent today
        assert order(url, 150) == 200  # what is left of the budget is still there


T0 = 1_700_000_000.0


async def engine_on(db: str, clock: ManualClock, paper: PaperExchange) -> tuple[Engine, StoreWriter]:
    """An engine wired to the store as the node wires it: journal, pending store, counters."""
    store = Store(db)
    writer = StoreWriter()
    journal = DurableJournal(store, writer)
    counters = journal.counters(clock.now())
    engine = Engine(paper, parse_policies([dict(b) for b in DEFAULT_POLICY_BODIES]), clock, pending_store=journal,
                    counters=counters, journal=journal)
    journal.restore_counters(counters, clock.now())
    await engine.start()
    return engine, writer


def paper_at(clock: ManualClock) -> PaperExchange:
    paper = PaperExchange(PAPER_MARKETS, equity=100_000, clock=clock)
    for coin, px in START_PRICES.items():
        paper.set_mark(coin, px)
    return paper


async def round_trip(engine: Engine) -> None:
    """Buy and sell back at an unchanged mark: the fees make it a losing close."""
    assert (await engine.submit(OrderIntent(market="ETH", side="buy", size=1))).status is SubmitStatus.SENT
    assert (await engine.submit(OrderIntent(market="ETH", side="sell", size=1, reduce_only=True))).status is SubmitStatus.SENT
    await engine.settle()


async def test_the_losing_streak_survives_a_restart(tmp_path):
    db, clock = f"sqlite:///{tmp_path / 'pg.db'}", ManualClock(T0)
    engine, writer = await engine_on(db, clock, paper_at(clock))
    await round_trip(engine)
    await round_trip(engine)
    assert engine.counters.consecutive_losses == 2
    assert writer.stop()  # everything journaled; then the process is gone

    clock.advance(60)
    engine, writer = await engine_on(db, clock, paper_at(clock))  # a fresh venue account, the same store
    assert engine.counters.consecutive_losses == 2
    await round_trip(engine)  # the third loss in a row trips CIRCUIT_BREAKER
    entry = await engine.submit(OrderIntent(market="BTC", side="buy", notional_usd=500))
    assert entry.status is SubmitStatus.DENIED
    assert "CIRCUIT_BREAKER" in {r.code for r in entry.decision.denials}
    writer.stop()


def test_peak_equity_and_period_baselines_come_back(tmp_path):
    from engine.risk.counters import RiskCounters

    log: list[CounterChange] = []
    before = RiskCounters(journal=log.append)
    before.on_equity(100_000, T0)  # the day and week start here
    before.on_equity(120_000, T0 + 60)
    before.on_equity(119_000, T0 + 120)
    before.on_equity(125_000, T0 + 180)  # the peak
    before.on_equity(101_000, T0 + 240)
    after = RiskCounters()
    after.restore(log)
    assert after.peak_equity == pytest.approx(125_000, rel=2e-4)  # journaled to within 0.01 %
    assert (after.day_start_equity, after.week_start_equity) == (100_000, 100_000)
    after.on_equity(101_000, T0 + 300)  # the same day: no new baseline
    assert after.day_start_equity == 100_000


def test_sigterm_during_a_burst_loses_no_acknowledged_order(tmp_path):
    """200 orders in flight when SIGTERM arrives: the engine drains and exits 0, and every order
    it answered 200 for is in the store (its decision and the venue's answer)."""
    import asyncio

    from engine.store import Store

    with engine_only(tmp_path, [{"type": "RATE_LIMIT", "rules": {"maxTransactions": 1000, "period": "minute"}}]) as (url, _, procs):

        async def burst():
            async with httpx.AsyncClient(base_url=url, headers=ADMIN, timeout=60) as client:
                async def one(i):
                    try:
                        return i, (await client.post("/v1/orders", json={"market": "BTC", "side": "buy",
                                                                         "notional_usd": 20, "client_id": f"b-{i}"})).status_code
                    except httpx.HTTPError:
                        return i, None  # cut off by the stop: never acknowledged

                tasks = [asyncio.create_task(one(i)) for i in range(200)]
                done = 0
                while done < 20:  # SIGTERM once the burst is well under way
                    done = sum(t.done() for t in tasks)
                    await asyncio.sleep(0.01)
                procs[-1].send_signal(signal.SIGTERM)
                return await asyncio.gather(*tasks)

        answers = asyncio.run(burst())
        assert procs[-1].wait(60) == 0  # drained and stopped cleanly
    acknowledged = {f"master/b-{i}" for i, status in answers if status == 200}
    assert len(acknowledged) >= 20
    with Store(f"sqlite:///{tmp_path / 'engine.db'}") as store:
        recorded = {o.client_id for o in store.recent_orders(limit=1000)}
        decided = {row["decision"].get("client_id") for row in store.audit(limit=1000, kind="decision")}
    assert acknowledged <= recorded
    assert acknowledged <= decided
