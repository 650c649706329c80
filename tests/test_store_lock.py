"""A locked database never stalls protection and never loses an order (issue 13, finding 2).

Another process holds SQLite's write lock (`BEGIN IMMEDIATE`, as a backup or a stray `sqlite3`
shell does). Meanwhile: an order is refused with a retryable 503 within about a second and
nothing reaches the venue; the engine answers /healthz at once; the kill switch flattens the
position and answers; and once the lock is gone, HALTED and the chained events are on disk."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from engine.store import Store
from tests.engine_server import MASTER, EngineThread
from tests.waiting import eventually_sync

ADMIN = {"X-Master-Password": MASTER}
HOLD_LOCK = (
    "import sqlite3, sys\n"
    "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
    "db.execute('BEGIN IMMEDIATE')\n"
    "print('locked', flush=True)\n"
    "sys.stdin.readline()\n"  # until the test says so
    "db.execute('ROLLBACK')\n"
)


class WriteLock:
    """A real SQLite write lock held by another process until `release()`."""

    def __init__(self, path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "locked"

    def release(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
            self.proc.wait(10)


def test_a_locked_store_refuses_orders_fast_and_the_kill_switch_still_flattens(tmp_path):
    path = tmp_path / "pg.db"
    with EngineThread(tmp_path, db_url=f"sqlite:///{path}") as running:
        url, paper = running.url, running.service.engine.connector
        opened = httpx.post(f"{url}/v1/orders", json={"market": "ETH", "side": "buy", "size": 2}, headers=ADMIN, timeout=30)
        assert opened.status_code == 200
        lock = WriteLock(path)
        try:
            started = time.monotonic()
            refused = httpx.post(f"{url}/v1/orders", json={"market": "BTC", "side": "buy", "notional_usd": 500,
                                                           "client_id": "during-lock"}, headers=ADMIN, timeout=30)
            took = time.monotonic() - started
            assert refused.status_code == 503, refused.text
            error = refused.json()["error"]
            assert (error["code"], error["retryable"]) == ("STORE_UNAVAILABLE", True)
            assert took < 3.0  # about a second (the journal's deadline), not the database's 5 s busy timeout
            assert paper.position_size("BTC") == 0  # nothing reached the venue

            started = time.monotonic()
            assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
            assert time.monotonic() - started < 1.0

            started = time.monotonic()
            tightened = httpx.post(f"{url}/v1/policies", json={"id": "tight", "type": "ORDER_LIMITS",
                                                              "rules": {"maxOrderUsd": 1000}}, headers=ADMIN, timeout=30)
            assert tightened.status_code == 503 and time.monotonic() - started < 3.0
            assert "tight" in {p["id"] for p in httpx.get(f"{url}/v1/policies", headers=ADMIN, timeout=10).json()}

            killed = httpx.post(f"{url}/v1/kill", headers=ADMIN, timeout=60)
            assert killed.status_code == 200
            assert killed.json()["trading_state"] == "HALTED"
            assert killed.json()["durable"] is False  # acted on; written once the database answers
            assert paper.position_size("ETH") == 0
        finally:
            lock.release()

        def halted_on_disk():
            with Store(f"sqlite:///{path}") as store:
                machine = store.load_trading()
                return machine is not None and machine.state.value == "HALTED"

        eventually_sync(halted_on_disk, what="HALTED on disk")
        with Store(f"sqlite:///{path}") as store:  # the policy made during the lock was saved once it lifted
            assert "tight" in {b["id"] for b in store.list_policies()}
        # The same client id, once the store answers: judged afresh (a 503 is not a final answer).
        again = httpx.post(f"{url}/v1/orders", json={"market": "BTC", "side": "buy", "notional_usd": 500,
                                                     "client_id": "during-lock"}, headers=ADMIN, timeout=30)
        assert again.status_code == 403 and again.json()["error"]["code"] == "HALTED"
    with Store(f"sqlite:///{path}") as store:
        assert store.verify_chain().ok
        kinds = [row["kind"] for row in store.audit(limit=200)]
        assert "panic_done" in kinds and "order_not_sent" in kinds
