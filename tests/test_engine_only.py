"""`perpguard --engine-only` as a trader runs it: `perpguard init` sets the master password from
the environment, the engine serves on 127.0.0.1, and after `kill -9` a restart on the same
database still has the pending action and the HALTED state. SIGTERM stops it cleanly (exit 0)."""

from __future__ import annotations

import os
import signal

import httpx

from tests.engine_process import PASSWORD, free_port, perpguard, wait_healthy
from tests.policy_cases import SEED_BODIES

def test_engine_only_keeps_pending_and_halted_across_kill_9(tmp_path):
    env = {**os.environ, "PERPGUARD_MASTER_PASSWORD": PASSWORD, "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
           "XDG_DATA_HOME": str(tmp_path / "data")}
    config, db = tmp_path / "perpguard.toml", f"sqlite:///{tmp_path / 'engine.db'}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    init = perpguard("init", "--config", str(config), "--db", db, "--listen", f"127.0.0.1:{port}", env=env)
    assert init.wait(60) == 0, init.stderr.read()
    admin = {"X-Master-Password": PASSWORD}

    engine = perpguard("--engine-only", "--config", str(config), env=env)
    try:
        wait_healthy(url, engine)
        for body in SEED_BODIES:
            assert httpx.post(f"{url}/v1/policies", json=body, headers=admin, timeout=10).status_code == 201
        held = httpx.post(f"{url}/v1/orders", json={"market": "BTC", "side": "buy", "notional_usd": 12_000},
                          headers=admin, timeout=10)
        assert held.status_code == 202
        pending_id = held.json()["pending"]["id"]
        assert httpx.post(f"{url}/v1/kill", headers=admin, timeout=30).json()["trading_state"] == "HALTED"
        assert httpx.get(f"{url}/v1/state", headers=admin).json()["trading_state"] == "HALTED"
    finally:
        engine.send_signal(signal.SIGKILL)
        engine.wait(10)
    logged = engine.stderr.read()  # headless, the events go to the log: the hold and the kill
    assert "pending_added: DELAY: buy BTC held" in logged and "state_changed: " in logged and "HALTED" in logged

    restarted = perpguard("--engine-only", "--config", str(config), env=env)
    try:
        wait_healthy(url, restarted)
        state = httpx.get(f"{url}/v1/state", headers=admin, timeout=10).json()
        assert state["trading_state"] == "HALTED"
        audit = httpx.get(f"{url}/v1/audit", params={"kind": "pending_closed"}, headers=admin).json()
        closed = [item["data"] for item in audit if item["data"].get("id") == pending_id]
        assert closed and closed[0]["status"] == "CANCELLED"  # HALTED cancelled the held entry, on the record
        assert len(httpx.get(f"{url}/v1/policies", headers=admin).json()) >= len(SEED_BODIES)
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(30) == 0
        assert "stopped cleanly" in restarted.stderr.read()
    finally:
        if restarted.poll() is None:
            restarted.kill()


def test_a_pending_action_survives_kill_9(tmp_path):
    env = {**os.environ, "PERPGUARD_MASTER_PASSWORD": PASSWORD, "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    db = f"sqlite:///{tmp_path / 'engine.db'}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    assert perpguard("init", "--config", str(tmp_path / "c.toml"), "--db", db, "--listen", f"127.0.0.1:{port}",
                     env=env).wait(60) == 0
    admin = {"X-Master-Password": PASSWORD}
    args = ("--engine-only", "--config", str(tmp_path / "c.toml"))
    engine = perpguard(*args, env=env)
    try:
        wait_healthy(url, engine)
        for body in SEED_BODIES:
            httpx.post(f"{url}/v1/policies", json=body, headers=admin, timeout=10)
        held = httpx.post(f"{url}/v1/orders", json={"market": "ETH", "side": "buy", "notional_usd": 12_000}, headers=admin)
        assert held.status_code == 202
    finally:
        engine.send_signal(signal.SIGKILL)
        engine.wait(10)
    restarted = perpguard(*args, env=env)
    try:
        wait_healthy(url, restarted)
        pending = httpx.get(f"{url}/v1/pending", headers=admin).json()
        assert [p["id"] for p in pending] == [held.json()["pending"]["id"]]
        assert pending[0]["tier"] == "DELAY" and pending[0]["notional_usd"] == 12_000
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(30)
