"""A kill switch that finishes (SPEC section 6): a panic exit the venue could not complete keeps
trying in rounds with backoff, alerting each round, until the account is flat; one that a
`kill -9` interrupted resumes at the next start, after reconciliation, from the live position
(no doubled close); an account found flat at start clears the record and stays HALTED. Resume
is refused while the account is being flattened."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import pytest

from engine.api.errors import ApiError
from engine.domain.clock import ManualClock
from engine.domain.events import EventKind
from engine.domain.model import OrderIntent, TradingState
from engine.facade import EngineService
from engine.live.engine import Engine
from engine.live.execution import SubmitStatus
from engine.live.notify import NOTIFY_KINDS
from engine.live.protection import FlatteningInProgress
from engine.risk.policies import parse_policies
from engine.risk.policy_file import DEFAULT_POLICY_BODIES, default_policies
from engine.risk.trading_state import Flattening, TradingStateMachine
from engine.state_view import engine_state
from engine.store import Store
from engine.store.journal import DurableJournal
from engine.store.writer import StoreWriter
from engine.venues.hyperliquid.connector import HyperliquidConnector
from engine.venues.paper.exchange import PaperExchange
from engine.venues.paper.universe import PAPER_MARKETS, START_PRICES
from fake_hyperliquid.book import BookShape
from fake_hyperliquid.harness import AGENT, AGENT_ENV, MASTER, config_for, engine_config, start_fake, wait_for
from tests.engine_process import PASSWORD, free_port, perpguard, wait_healthy

ADMIN = {"X-Master-Password": PASSWORD}
EMPTY = BookShape(levels=0)  # no bids at all: every IOC close is refused, nothing fills
T0 = 1_700_000_000.0


def of_kind(engine: Engine, kind: EventKind) -> list:
    return [e for e in engine.events.recent if e.kind is kind]


async def test_an_incomplete_panic_keeps_retrying_with_backoff_until_the_venue_takes_the_close(fake):
    clock = ManualClock(time.time())
    engine = Engine(HyperliquidConnector(config_for(fake, markets=("ETH",)), clock), default_policies(), clock)
    engine.protection.retry_first, engine.protection.retry_max = 0.1, 0.4  # the schedule, shrunk for the test
    await engine.start()
    try:
        opened = await engine.submit(OrderIntent(market="ETH", side="buy", size=2.0))
        assert opened.status is SubmitStatus.SENT and fake.position("ETH") == pytest.approx(2.0)
        fake.fail_next("exchange", 429, times=40)  # the venue takes no action for a while

        await engine.kill()  # the first round cannot close anything: INCOMPLETE, HALTED, still flattening

        done = of_kind(engine, EventKind.PANIC_DONE)[-1]
        assert done.data["flat"] is False and engine.trading.state is TradingState.HALTED
        assert fake.position("ETH") == pytest.approx(2.0)
        first = engine_state(engine).flattening
        assert first is not None and first.attempt == 1 and first.cause == "kill switch" and first.positions == 1
        with pytest.raises(FlatteningInProgress, match="still flattening"):
            engine.resume()  # a kill switch that was pulled finishes first
        assert engine.trading.state is TradingState.HALTED

        attempts = [first.attempt]

        def flat_or_watch() -> bool:
            view = engine_state(engine).flattening
            if view is not None:
                attempts.append(view.attempt)
            return view is None

        await wait_for(flat_or_watch, timeout=60, what="the retried panic exit to end flat")

        assert fake.position("ETH") == 0 and engine.book.positions() == []
        assert engine.trading.state is TradingState.HALTED and engine_state(engine).flattening is None
        assert max(attempts) >= 3 and attempts == sorted(attempts)  # attempt N grew while it retried
        retries = of_kind(engine, EventKind.PANIC_RETRY)
        assert len(retries) >= 2 and EventKind.PANIC_RETRY in NOTIFY_KINDS  # each incomplete round alerts
        assert [r.data["attempt"] for r in retries] == list(range(1, len(retries) + 1))
        delays = [r.data["next_attempt_at"] - r.at for r in retries]
        assert delays[:3] == pytest.approx([0.1, 0.2, 0.4][:len(delays[:3])])  # doubling ...
        assert all(d == pytest.approx(0.4) for d in delays[3:])  # ... up to the cap
        final = of_kind(engine, EventKind.PANIC_DONE)[-1]
        assert final.data["flat"] is True and final.data["attempt"] == len(retries) + 1
        sold = sum(float(f["sz"]) for f in fake.fills() if f["side"] == "A")
        assert sold == pytest.approx(2.0)  # closed once, from the live size
        assert engine.resume() is not None and engine.trading.state is TradingState.ACTIVE  # flat: resume works
    finally:
        await engine.stop()


def paper_at(clock: ManualClock) -> PaperExchange:
    paper = PaperExchange(PAPER_MARKETS, equity=100_000, clock=clock)
    for coin, px in START_PRICES.items():
        paper.set_mark(coin, px)
    return paper


async def engine_on(db: str, clock: ManualClock, paper: PaperExchange) -> tuple[Engine, Store, StoreWriter]:
    """An engine wired to the store as the node wires it (trading state and journal)."""
    store = Store(db)
    writer = StoreWriter()
    journal = DurableJournal(store, writer)
    engine = Engine(paper, parse_policies([dict(b) for b in DEFAULT_POLICY_BODIES]), clock, pending_store=journal,
                    trading=store.load_trading(), counters=journal.counters(clock.now()), journal=journal)
    EngineService(engine, store, None, writer)  # persists the trading state and events, as in the node
    await engine.start()
    return engine, store, writer


def interrupted_kill(db: str) -> None:
    """What a `kill -9` during a kill switch's exit leaves on disk: HALTED and the record."""
    with Store(db) as store:
        store.save_flattening(Flattening("kill switch", T0))
        store.save_trading(TradingStateMachine(TradingState.HALTED, {}, "kill switch"))


async def test_a_restart_that_finds_the_account_flat_clears_the_record_and_stays_halted(tmp_path):
    db, clock = f"sqlite:///{tmp_path / 'pg.db'}", ManualClock(T0 + 60)
    interrupted_kill(db)

    engine, store, writer = await engine_on(db, clock, paper_at(clock))
    try:
        assert engine.trading.state is TradingState.HALTED and engine.trading.halt_cause == "kill switch"
        assert engine.protection.flattening is None and engine_state(engine).flattening is None
        done = of_kind(engine, EventKind.PANIC_DONE)[-1]
        assert done.data["flat"] is True and done.data["resumed"] is True
        assert not of_kind(engine, EventKind.PANIC_STARTED)  # nothing to close, nothing sent
        assert await writer.durable(5)
        assert store.load_flattening() is None  # cleared on disk
        assert store.load_trading().state is TradingState.HALTED  # latched: only resume lifts it
        assert store.verify_chain().ok
    finally:
        await engine.stop()
        writer.stop()
        store.close()


async def test_a_restart_resumes_the_interrupted_exit_from_the_reconciled_position(tmp_path):
    db, clock = f"sqlite:///{tmp_path / 'pg.db'}", ManualClock(T0 + 60)
    interrupted_kill(db)
    paper = paper_at(clock)
    before = Engine(paper, default_policies(), clock)  # the account as the crash left it: 0.7 ETH of 1 closed
    await before.start()
    assert (await before.submit(OrderIntent(market="ETH", side="buy", size=1.0))).status is SubmitStatus.SENT
    assert (await before.submit(OrderIntent(market="ETH", side="sell", size=0.7, reduce_only=True))).status is SubmitStatus.SENT
    await before.settle()

    engine, store, writer = await engine_on(db, clock, paper)
    try:
        await engine.settle()
        assert engine.book.positions() == [] and engine.trading.state is TradingState.HALTED
        closes = [e for e in of_kind(engine, EventKind.REDUCE_FILLED) if e.data["purpose"].startswith("panic")]
        assert [c.data["asked"] for c in closes] == [pytest.approx(0.3)]  # the live size, never the original 1.0
        assert engine_state(engine).flattening is None
        assert await writer.durable(5)
        assert store.load_flattening() is None
    finally:
        await engine.stop()
        writer.stop()
        store.close()


async def test_resume_is_answered_409_while_flattening(tmp_path):
    clock = ManualClock(T0)
    engine = Engine(paper_at(clock), default_policies(), clock)
    service = EngineService(engine)
    engine.protection.flattening = Flattening("kill switch", T0)
    with pytest.raises(ApiError) as refused:
        await service.resume_checked()
    assert refused.value.status == 409 and "still flattening" in refused.value.message


# ---- kill -9 of a real --engine-only during a panic exit on the strict fake -----------------------


def write_config(tmp_path, fake, port: int) -> str:
    return engine_config(fake, tmp_path, f"127.0.0.1:{port}", ("ETH",))


def close_attempts(fake) -> list[dict]:
    """Every reduce-only IOC the venue received, as its wire order."""
    return [o for a in fake.actions("order") for o in a.action["orders"]
            if o.get("r") and o.get("t", {}).get("limit", {}).get("tif") == "Ioc"]


def poll(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def test_kill_9_during_a_panic_exit_then_a_restart_ends_flat_and_halted_with_no_doubled_close(tmp_path):
    fake = start_fake()
    env = {**os.environ, AGENT_ENV: AGENT.key.hex(), "PERPGUARD_MASTER_PASSWORD": PASSWORD}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = write_config(tmp_path, fake, port)
    procs = []
    try:
        init = perpguard("init", "--config", config, env=env)
        assert init.wait(60) == 0, init.stderr.read()
        procs.append(perpguard("--engine-only", "--config", config, env=env))
        wait_healthy(url, procs[-1])
        opened = httpx.post(f"{url}/v1/orders", json={"market": "ETH", "side": "buy", "size": 2.0}, headers=ADMIN,
                            timeout=30)
        assert opened.status_code == 200, opened.text
        assert fake.position("ETH") == pytest.approx(2.0)

        fake.set_book("ETH", EMPTY)  # the panic cannot finish at once
        killed: dict = {}
        threading.Thread(target=lambda: killed.update(answer=_post_kill(url)), daemon=True).start()
        poll(lambda: close_attempts(fake), 30, "the venue to see a close attempt")
        mark = fake.call(lambda: fake.venue.marks["ETH"])
        fake.set_book("ETH", BookShape(levels=1, spacing=0.001, notional=0.4 * mark))  # ~0.4 ETH a block
        poll(lambda: fake.position("ETH") < 2.0, 30, "a part of the position to close")
        fake.set_book("ETH", EMPTY)
        procs[-1].send_signal(signal.SIGKILL)  # kill -9 in the middle of the exit
        procs[-1].wait(10)
        left = fake.position("ETH")
        assert 0 < left < 2.0
        seen = len(close_attempts(fake))

        fake.set_book("ETH", BookShape())  # the venue works again
        procs.append(perpguard("--engine-only", "--config", config, env=env))
        wait_healthy(url, procs[-1])

        def settled() -> bool:
            state = httpx.get(f"{url}/v1/state", headers=ADMIN, timeout=10).json()
            return fake.position("ETH") == 0 and state["trading_state"] == "HALTED" and state["flattening"] is None

        poll(settled, 60, "the restarted engine to finish the exit")
        sold = sum(float(f["sz"]) for f in fake.fills() if f["side"] == "A")
        assert sold == pytest.approx(2.0)  # the total sold is the position: nothing closed twice
        after = close_attempts(fake)[seen:]
        assert after and float(after[0]["s"]) == pytest.approx(left)  # sized from the reconciled position
        state = httpx.get(f"{url}/v1/state", headers=ADMIN, timeout=10).json()
        assert state["halt_cause"].startswith("kill switch") and state["positions"] == []
        started = httpx.get(f"{url}/v1/audit", params={"kind": "panic_exit"}, headers=ADMIN, timeout=10).json()
        assert len(started) == 2  # the kill, and its exit resumed by the restart (on the record)
        refused = httpx.post(f"{url}/v1/orders", json={"market": "ETH", "side": "buy", "size": 0.1}, headers=ADMIN,
                             timeout=30)
        assert refused.status_code == 403  # still HALTED: latched until the master resumes
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        fake.stop()


def _post_kill(url: str) -> int | None:
    try:
        return httpx.post(f"{url}/v1/kill", headers=ADMIN, timeout=60).status_code
    except httpx.HTTPError:
        return None  # the engine was killed under it


async def test_the_console_header_says_flattening_attempt_n_until_flat():
    from textual.app import App

    from console.bindings import BINDINGS, KeyMap
    from console.link import LinkStatus
    from console.panes.header import HeaderPane
    from engine.api.state import EngineState, FlatteningView

    class One(App):
        def compose(self):
            yield HeaderPane(id="header")

    flattening = FlatteningView(attempt=3, since=T0, cause="kill switch", positions=1, next_attempt_at=T0 + 8)
    state = EngineState(time=T0 + 10, trading_state=TradingState.HALTED, halt_cause="kill switch", flattening=flattening)
    assert EngineState.from_json(state.to_json()).flattening == flattening  # over the wire, as /v1/state answers it
    app = One()
    async with app.run_test(size=(160, 10)):
        pane = app.query_one(HeaderPane)
        pane.show(state, LinkStatus(True, "live"), "test", KeyMap(BINDINGS))
        assert "FLATTENING: attempt 3 (kill switch)" in pane.render().plain
        pane.show(state.model_copy(update={"flattening": None}), LinkStatus(True, "live"), "test", KeyMap(BINDINGS))
        assert "FLATTENING" not in pane.render().plain
