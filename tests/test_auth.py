"""The master password and bot-token scopes: what guards kill, resume, approvals and policies."""

from __future__ import annotations

import asyncio
import time

import pytest
from builders import T0
from sqlalchemy import text

from engine.store.auth import MasterGuard, has_master_password, has_scope, set_master_password
from engine.store import Store

PASSWORD = "correct horse battery"


@pytest.fixture
def store(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'perpguard.db'}") as opened:
        yield opened


async def timed(guard: MasterGuard, password: str) -> tuple[bool, float]:
    started = time.monotonic()
    ok = await guard.check(password)
    return ok, time.monotonic() - started


def test_the_master_password_is_kept_only_as_an_argon2id_hash(store):
    assert not has_master_password(store)
    set_master_password(store, PASSWORD)
    assert has_master_password(store)
    with store.engine.connect() as conn:
        values = [row.value for row in conn.execute(text("SELECT value FROM settings"))]
    assert len(values) == 1 and values[0].startswith("$argon2id$") and PASSWORD not in values[0]


@pytest.mark.parametrize("weak", ["", "seven77"])
def test_a_short_master_password_is_refused(store, weak):
    with pytest.raises(ValueError, match="at least 8 characters"):
        set_master_password(store, weak)
    assert not has_master_password(store)


async def test_only_the_right_password_passes(store):
    set_master_password(store, PASSWORD)
    guard = MasterGuard(store, base_delay=0.01)
    assert await guard.check(PASSWORD)
    assert not await guard.check(PASSWORD + "!")
    assert not await guard.check("")
    assert not await guard.check(None)


async def test_without_a_master_password_nothing_passes(store):
    assert not await MasterGuard(store, base_delay=0.01).check("anything at all")


async def test_a_new_password_replaces_the_old_one(store):
    set_master_password(store, PASSWORD)
    set_master_password(store, "a brand new passphrase")
    guard = MasterGuard(store, base_delay=0.01)
    assert not await guard.check(PASSWORD)
    assert await guard.check("a brand new passphrase")


async def test_a_remembered_password_stops_passing_once_it_is_changed(store):
    """A running engine answers a known-good password at once, but not after it changed."""
    set_master_password(store, PASSWORD)
    guard = MasterGuard(store, base_delay=0.01)
    assert await guard.check(PASSWORD)
    assert await guard.check(PASSWORD)  # answered from the remembered digest
    assert not await guard.check(PASSWORD + "x")
    set_master_password(store, "a brand new passphrase")
    assert not await guard.check(PASSWORD)
    assert await guard.check("a brand new passphrase")


async def test_wrong_guesses_are_slowed_down_until_the_right_one(store):
    set_master_password(store, PASSWORD)
    guard = MasterGuard(store, base_delay=0.05, max_delay=0.2)
    waits = []
    for _ in range(5):
        ok, took = await timed(guard, "guess123")
        assert not ok
        waits.append(took)
    # Each attempt waited for the delay the failures before it earned: 0, .05, .1, .2, .2 (capped).
    for took, earned in zip(waits, [0.0, 0.05, 0.1, 0.2, 0.2], strict=True):
        assert took >= earned
    assert guard.delay() == 0.2
    ok, took = await timed(guard, PASSWORD)  # the trader, after the attack: slowed, but let in
    assert ok and took >= 0.2
    assert guard.delay() == 0.0 and guard.failures == 0


async def test_parallel_guesses_do_not_skip_the_delay(store):
    set_master_password(store, PASSWORD)
    guard = MasterGuard(store, base_delay=0.05)
    started = time.monotonic()
    results = await asyncio.gather(*(guard.check(f"guess-{i}") for i in range(4)))
    assert results == [False] * 4
    assert time.monotonic() - started >= 0.05 + 0.1 + 0.2  # taken one at a time, each delayed


async def test_checking_does_not_block_the_engine_loop(store):
    set_master_password(store, PASSWORD)
    guard = MasterGuard(store)
    ticks = 0

    async def engine_loop() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    loop_task = asyncio.create_task(engine_loop())
    started = time.monotonic()
    assert await guard.check(PASSWORD)
    took = time.monotonic() - started
    loop_task.cancel()
    assert took > 0.01  # argon2 did real work...
    assert ticks >= 3  # ...while the loop kept running


def test_token_scopes_decide_what_a_bot_may_do(store):
    trader, trader_text = store.create_token("grid bot", {"trade", "read"}, expires_at=None, now=T0)
    watcher, _ = store.create_token("dashboard", {"read"}, expires_at=None, now=T0)
    found = store.find_token(trader_text, now=T0)
    assert has_scope(found, "trade") and has_scope(found, "read") and not has_scope(found, "kill")
    assert not has_scope(watcher, "trade")
    assert not has_scope(store.find_token("pg_unknown", now=T0), "read")
    with pytest.raises(ValueError, match="unknown scope"):
        has_scope(trader, "admin")
