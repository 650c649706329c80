"""Sessions and secrets (issue 13, item 6), through the real gateway on 127.0.0.1: a stream ends
when its credential does, refused streams say why with a close code, wrong master passwords
never hold up the right one, and the files that hold secrets are private."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import time
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from engine.cli.main import main
from engine.store import Store
from tests.engine_server import MASTER, EngineThread

ADMIN = {"X-Master-Password": MASTER}


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    with EngineThread(tmp_path_factory.mktemp("sessions")) as running:
        yield running


@pytest.fixture
def admin(engine):
    with httpx.Client(base_url=engine.url, headers=ADMIN, timeout=60) as http:
        yield http


def token(admin: httpx.Client, *scopes: str, expires_in: float | None = None) -> dict:
    body = {"name": "stream-bot", "scopes": list(scopes), **({"expires_in_seconds": expires_in} if expires_in else {})}
    reply = admin.post("/v1/tokens", json=body)
    assert reply.status_code == 201
    return reply.json()


def stream(engine, **headers: str):
    return connect(engine.url.replace("http://", "ws://") + "/v1/stream", additional_headers=headers, open_timeout=10)


def close_code(ws, within: float) -> int:
    """Read until the gateway closes the stream; its close code. Fails if it stays open `within` s."""
    deadline = time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0:
        try:
            ws.recv(timeout=left)
        except TimeoutError:
            break
        except ConnectionClosed as closed:
            assert closed.rcvd is not None, "closed without a close frame"
            return closed.rcvd.code
    pytest.fail(f"the stream was still open after {within} s")


def next_snapshot(ws, within: float = 10) -> dict:
    """The next snapshot on the stream (events before it are skipped)."""
    deadline = time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0:
        message = json.loads(ws.recv(timeout=left))
        if message["type"] == "snapshot":
            return message
    pytest.fail(f"no snapshot within {within} s")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---- the stream ends with its credential ------------------------------------------------------


def test_a_stream_is_closed_4401_soon_after_its_token_is_revoked(engine, admin):
    doomed, other = token(admin, "read"), token(admin, "read")
    with stream(engine, Authorization=f"Bearer {doomed['token']}") as ws, \
            stream(engine, Authorization=f"Bearer {other['token']}") as kept:
        next_snapshot(ws), next_snapshot(kept)
        assert admin.delete(f"/v1/tokens/{doomed['id']}").status_code == 200
        assert close_code(ws, within=5) == 4401
        next_snapshot(kept)  # another token's stream goes on


def test_a_stream_is_closed_4401_soon_after_its_token_expires(engine, admin):
    short = token(admin, "read", expires_in=1.5)
    with stream(engine, Authorization=f"Bearer {short['token']}") as ws:
        next_snapshot(ws)
        assert close_code(ws, within=1.5 + 5) == 4401


def test_a_master_password_stream_keeps_streaming(engine):
    with stream(engine, **ADMIN) as ws:
        for _ in range(3):  # seconds apart: the credential is checked again in between
            assert next_snapshot(ws)["state"]["trading_state"]


# ---- refused streams say why with a close code --------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"X-Master-Password": "not it"}, {"Authorization": "Bearer pg_unknown"}])
def test_a_stream_without_valid_credentials_is_closed_4401(engine, headers):
    with stream(engine, **headers) as ws:  # the handshake is accepted (no bare HTTP 403)...
        assert close_code(ws, within=10) == 4401  # ...and the close code says why


def test_a_stream_for_a_token_without_read_is_closed_4403(engine, admin):
    trader = token(admin, "trade")
    with stream(engine, Authorization=f"Bearer {trader['token']}") as ws:
        assert close_code(ws, within=10) == 4403


# ---- wrong master passwords never hold up the right one ----------------------------------


async def test_ten_wrong_master_passwords_do_not_hold_up_the_right_one(engine):
    guard = engine.service.service.guard
    # What 10 wrong guesses queued one after another earn in penalties (55.5 s at the defaults).
    penalties = sum(min(guard.base_delay * 2 ** n, guard.max_delay) for n in range(10))
    async with httpx.AsyncClient(base_url=engine.url, timeout=120) as http:
        async def resume(password: str) -> tuple[int, float]:
            started = time.monotonic()
            reply = await http.post("/v1/resume", headers={"X-Master-Password": password})
            return reply.status_code, time.monotonic() - started

        before = guard.failures
        wrong = [asyncio.create_task(resume(f"guess-{i}")) for i in range(10)]
        deadline = time.monotonic() + 30
        while guard.failures == before:  # the guesses are in before the trader
            assert time.monotonic() < deadline, "no wrong guess was checked"
            await asyncio.sleep(0.01)
        right = asyncio.create_task(resume(MASTER))
        status, took = await asyncio.wait_for(right, timeout=penalties / 2)
        print(f"the right password answered in {took:.2f} s")
        assert status == 200 and took < penalties / 2
        assert not all(task.done() for task in wrong)  # answered while guesses still serve their penalty
        answers = await asyncio.gather(*wrong)
    assert [status for status, _ in answers] == [401] * 10
    assert all(took >= guard.base_delay for _, took in answers)  # every wrong guess was slowed down


# ---- files holding secrets are private ------------------------------------------------------


def test_the_database_and_its_wal_files_are_0600_in_a_0700_folder(tmp_path):
    old = os.umask(0o022)  # the common default: files 0644 unless we say otherwise
    try:
        folder = tmp_path / "data" / "perpguard"
        db = folder / "perpguard.db"
        with Store(f"sqlite:///{db}") as store:
            store.set_setting("probe", "x")
            files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
            assert all(f.exists() for f in files)
            assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
        assert mode(folder) == 0o700
    finally:
        os.umask(old)


def test_an_existing_world_readable_database_is_made_private(tmp_path):
    db = tmp_path / "old.db"
    db.touch(mode=0o644)
    os.chmod(db, 0o644)
    with Store(f"sqlite:///{db}") as store:
        store.set_setting("probe", "x")
    assert mode(db) == 0o600


def test_init_writes_a_private_config_folder_and_file(tmp_path, monkeypatch, capsys):
    old = os.umask(0o022)
    try:
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
        monkeypatch.setenv("PERPGUARD_MASTER_PASSWORD", MASTER)
        monkeypatch.chdir(tmp_path)
        assert main(["init"]) == 0
    finally:
        os.umask(old)
    config_dir = tmp_path / "config" / "perpguard"
    assert mode(config_dir) == 0o700 and mode(config_dir / "perpguard.toml") == 0o600
    db = tmp_path / "data" / "perpguard" / "perpguard.db"
    assert mode(db) == 0o600 and mode(db.parent) == 0o700
