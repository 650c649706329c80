"""The store's writer commits what queued up meanwhile together (group commit), in order, and a
write that fails in a group fails alone: the others are committed, and what the failed group had
written is not kept twice. On SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import threading

import pytest
from pg_server import postgres_server, store_url  # noqa: F401  (fixtures)
from sqlalchemy import event, text

from engine.risk.counters import CounterChange
from engine.store import Store
from engine.store.bots import BotExists
from engine.store.counter_log import CounterLog
from engine.store.writer import StoreWriter

T0 = 1_767_225_600.0
WAIT = 10.0  # seconds a future may take: far beyond a commit


@pytest.fixture(autouse=True)
def audit_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture
def store(store_url):  # noqa: F811
    with Store(store_url) as opened:
        yield opened


class Held:
    """A first write that holds the writer until `release()`, so everything submitted meanwhile
    is queued behind it."""

    def __init__(self, writer: StoreWriter) -> None:
        self._go, self._started = threading.Event(), threading.Event()
        self.future = writer.submit(self._hold)
        assert self._started.wait(WAIT), "the writer never took the first write"

    def _hold(self) -> None:
        self._started.set()
        self._go.wait(WAIT)

    def release(self) -> None:
        self._go.set()
        self.future.result(WAIT)


def commits_of(store: Store) -> list[int]:
    counted = [0]
    event.listen(store.engine, "commit", lambda _conn: counted.__setitem__(0, counted[0] + 1))
    return counted


def rows(store: Store, table: str) -> int:
    with store.engine.connect() as conn:
        return conn.execute(text(f"select count(*) from {table}")).scalar_one()


def test_writes_queued_meanwhile_commit_together_in_order_with_the_chain_intact(store):
    writer = StoreWriter(batch=store.transactions.batch)
    counters = CounterLog(store)
    store.append_decision({"at": T0 - 1, "n": 0})  # the first write anchors the audit trail (a commit of its own)
    held = Held(writer)
    commits = commits_of(store)
    futures = []
    for i in range(30):
        futures.append(writer.submit(store.append_decision, {"at": T0 + i, "n": i}))
        futures.append(writer.submit(counters.append, CounterChange("add", "spend", T0 + i, 100.0)))
    held.release()
    assert [f.result(WAIT) for f in futures[::2]] == list(range(2, 32))  # each decision's row id, in order
    assert commits[0] == 1  # sixty writes, one commit
    assert rows(store, "counter_changes") == 30
    assert [c.value for c in counters.since(T0)] == [100.0] * 30
    report = store.verify_chain()
    assert report.ok and report.rows["decisions"] == 31
    writer.stop()


def test_a_write_that_fails_in_a_group_fails_alone_and_the_others_are_committed_once(store):
    writer = StoreWriter(batch=store.transactions.batch)

    def order_then_fail() -> None:  # two writes, then a bug: done alone, the first is committed, once
        store.record_order(at=T0, coin="BTC", side="buy", size=1.0, status="resting", oid="1")
        raise RuntimeError("a bug after the first of its writes")

    held = Held(writer)
    first = writer.submit(store.append_decision, {"at": T0, "n": 1})
    added = writer.submit(store.add_bot, "alpha", "0x" + "a1" * 20, now=T0)
    twice = writer.submit(store.add_bot, "alpha", "0x" + "b2" * 20, now=T0)
    broken = writer.submit(order_then_fail)
    last = writer.submit(store.append_decision, {"at": T0 + 1, "n": 2})
    held.release()

    assert (first.result(WAIT), last.result(WAIT)) == (1, 2)
    assert added.result(WAIT).name == "alpha"
    with pytest.raises(BotExists):
        twice.result(WAIT)
    with pytest.raises(RuntimeError):
        broken.result(WAIT)
    assert [b.address for b in store.list_bots()] == ["0x" + "a1" * 20]
    assert [o.oid for o in store.recent_orders()] == ["1"]  # as if done alone: not twice (group, then redo)
    report = store.verify_chain()
    assert report.ok and report.rows["decisions"] == 2
    writer.stop()
