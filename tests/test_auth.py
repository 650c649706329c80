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


class Penalties:
    """An injected sleep: records each penalty a failing caller serves, and serves none."""

    def __init__(self) -> None:
        self.served: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.served.append(seconds)


async def test_wrong_guesses_are_slowed_down_until_the_right_one(store):
    set_master_password(store, PASSWORD)
    penalties = Penalties()
    guard = MasterGuard(store, base_delay=0.5, max_delay=2.0, sleep=penalties)
    for _ in range(5):
        assert not await guard.check("guess123")
    # Each wrong guess was held after its check for what the failures so far earned, doubling to the cap.
    assert penalties.served == [0.5, 1.0, 2.0, 2.0, 2.0]
    assert guard.penalty() == 2.0
    assert await guard.check(PASSWORD)  # the trader, after the attack: let in, and not held
    assert penalties.served == [0.5, 1.0, 2.0, 2.0, 2.0]
    assert guard.failures == 0 and guard.penalty() == 0.5


async def test_a_huge_failure_count_does_not_overflow_the_penalty(store):
    set_master_password(store, PASSWORD)
    guard = MasterGuard(store, base_delay=0.5, max_delay=8.0, sleep=Penalties())
    guard.failures = 10_000
    assert guard.penalty() == 8.0


async def test_each_parallel_guess_serves_its_own_penalty(store):
    set_master_password(store, PASSWORD)
    guard = MasterGuard(store, base_delay=0.05)
    started = time.monotonic()
    results = await asyncio.gather(*(timed(guard, f"guess-{i}") for i in range(4)))
    assert [ok for ok, _ in results] == [False] * 4
    assert all(took >= 0.05 for _, took in results)  # none skipped its penalty
    assert time.monotonic() - started >= 0.4  # the fourth failure in a row is held 0.4 s
    assert guard.failures == 4


async def test_queued_wrong_guesses_never_hold_up_the_right_password(store):
    """Wrong guesses in flight, then the trader: let in after at most one verification per
    guess queued before it, never after their penalties (before the fix it queued behind each
    guess's penalty as well: 4 + 8 s here)."""
    set_master_password(store, PASSWORD)
    guard = MasterGuard(store, base_delay=4.0, max_delay=8.0)
    penalties = sum(guard.penalty(n) for n in range(1, 4))  # 20 s: what 3 guesses earn one after another
    wrong = [asyncio.create_task(timed(guard, f"guess-{i}")) for i in range(3)]
    while guard.failures == 0:  # the guesses are in before the trader
        await asyncio.sleep(0.01)
    ok, took = await asyncio.wait_for(timed(guard, PASSWORD), timeout=penalties / 2)
    assert ok and took < penalties / 2
    assert not all(task.done() for task in wrong)  # let in while guesses still serve their penalties
    for task in wrong:
        task.cancel()
    await asyncio.gather(*wrong, return_exceptions=True)


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
