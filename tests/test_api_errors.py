"""One error on both sides of the wire (`engine.api.errors.ApiError`): the gateway renders it, and
the Python client (sync and async), the console's remote link and its in-process link raise it
back, with the gateway's status, code and field. An engine nobody can reach is the same error
with status 0 and LINK_DOWN; a malformed snapshot on the stream does not end the console's link."""

from __future__ import annotations

import asyncio
import json
import socket

import httpx
import pytest
from console_fixtures import build_rig
from websockets.asyncio.server import serve

from console.remote import RemoteLink
from engine.api.client import AsyncClient, Client
from engine.api.errors import LINK_DOWN, ApiError
from tests.engine_server import MASTER, EngineThread
from tests.waiting import eventually


def closed_port_url() -> str:
    """An address on loopback where nothing listens (a port just freed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    with EngineThread(tmp_path_factory.mktemp("errors")) as running:
        yield running


# ---- the shape --------------------------------------------------------------------------------


def test_the_body_is_the_spec_shape_and_reads_back_as_the_same_error():
    refused = ApiError(401, "UNAUTHORIZED", "master password missing or wrong", "X-Master-Password")
    assert refused.body() == {"error": {"code": "UNAUTHORIZED", "message": "master password missing or wrong",
                                        "domain": "AUTH", "retryable": False,
                                        "details": {"field": "X-Master-Password"}}}
    again = ApiError.from_response(401, refused.body())
    assert (again.status, again.code, again.message, again.field, again.unauthorized) == (
        401, "UNAUTHORIZED", "master password missing or wrong", "X-Master-Password", True)
    assert again.body() == refused.body()
    # no field: no details; an unknown code is a REQUEST error, not retryable
    assert ApiError(404, "NOT_FOUND", "no policy x").body() == {
        "error": {"code": "NOT_FOUND", "message": "no policy x", "domain": "REQUEST", "retryable": False}}


def test_an_answer_without_the_error_shape_still_becomes_the_one_error():
    plain = ApiError.from_response(502, "<html>Bad Gateway</html>")
    assert (plain.status, plain.code, plain.message) == (502, "HTTP_502", "<html>Bad Gateway</html>")
    assert ApiError.from_response(500, None).message == "the gateway answered 500"


def test_the_gateway_answers_byte_for_byte_the_documented_shape(engine):
    wrong = httpx.post(f"{engine.url}/v1/resume", headers={"X-Master-Password": "wrong"})
    assert wrong.status_code == 401
    assert wrong.content == (b'{"error":{"code":"UNAUTHORIZED","message":"master password missing or wrong",'
                             b'"domain":"AUTH","retryable":false,"details":{"field":"X-Master-Password"}}}')
    missing = httpx.delete(f"{engine.url}/v1/policies/nope", headers={"X-Master-Password": MASTER})
    assert missing.status_code == 404
    assert missing.content == (b'{"error":{"code":"NOT_FOUND","message":"no policy nope","domain":"REQUEST",'
                               b'"retryable":false,"details":{"field":"id"}}}')
    bad = httpx.get(f"{engine.url}/v1/audit", params={"limit": 0}, headers={"X-Master-Password": MASTER})
    error = bad.json()["error"]
    assert bad.status_code == 422 and list(error) == ["code", "message", "domain", "retryable", "details"]
    assert error["details"]["field"] == "limit" and error["details"]["errors"][0]["field"] == "limit"


# ---- one class, whichever way the refusal travels -------------------------------------------------


def test_the_sync_client_raises_the_gateways_code_and_field(engine):
    with Client(engine.url, master_password="wrong") as pg:
        with pytest.raises(ApiError) as wrong:
            pg.resume()
    assert (wrong.value.status, wrong.value.code, wrong.value.field) == (401, "UNAUTHORIZED", "X-Master-Password")
    with Client(engine.url, master_password=MASTER) as pg:
        with pytest.raises(ApiError) as missing:
            pg.approve("pa_missing")
        with pytest.raises(ApiError) as invalid:
            pg.audit(limit=0)
    assert (missing.value.status, missing.value.code, missing.value.field) == (404, "NOT_FOUND", "id")
    assert (invalid.value.status, invalid.value.code, invalid.value.field) == (422, "VALIDATION", "limit")
    assert invalid.value.details["errors"][0]["field"] == "limit"


async def test_the_console_link_and_the_async_client_raise_the_same_class_as_the_sync_one(engine):
    link = RemoteLink(engine.url)
    await link.open()
    try:
        with pytest.raises(ApiError) as through_link:
            await link.approve("pa_missing", MASTER)
        with pytest.raises(ApiError) as wrong_password:
            await link.resume("wrong")
    finally:
        await link.close()
    async with AsyncClient(engine.url, master_password=MASTER) as pg:
        with pytest.raises(ApiError) as through_client:
            await pg.approve("pa_missing")
    for refused in (through_link.value, through_client.value):
        assert type(refused) is ApiError
        assert (refused.status, refused.code, refused.field) == (404, "NOT_FOUND", "id")
    assert wrong_password.value.unauthorized and wrong_password.value.field == "X-Master-Password"


async def test_the_in_process_link_raises_the_same_class_too():
    rig = await build_rig()
    with pytest.raises(ApiError) as missing:
        await rig.link.approve("pa_missing")
    assert type(missing.value) is ApiError
    assert (missing.value.status, missing.value.code, missing.value.field) == (404, "NOT_FOUND", "id")


def test_a_token_short_of_a_scope_is_403_forbidden_not_unauthorized(engine):
    with Client(engine.url, master_password=MASTER) as admin:
        reader = admin.create_token("reader", ["read"])["token"]
    with Client(engine.url, token=reader) as pg:
        with pytest.raises(ApiError) as refused:
            pg.kill("not mine to pull")
    assert (refused.value.status, refused.value.code, refused.value.field) == (403, "FORBIDDEN", "Authorization")
    assert not refused.value.unauthorized


# ---- nobody there ---------------------------------------------------------------------------------


def test_an_unreachable_engine_is_link_down_for_the_sync_client_and_its_stream():
    url = closed_port_url()
    with Client(url, timeout=5) as pg:
        with pytest.raises(ApiError) as down:
            pg.state()
        with pytest.raises(ApiError) as stream_down:
            next(pg.stream())
    for error in (down.value, stream_down.value):
        assert (error.status, error.code, error.retryable) == (0, LINK_DOWN, True)
        assert "cannot reach the engine" in error.message and url in error.message


async def test_an_unreachable_engine_is_link_down_for_the_async_client_and_the_console_link():
    url = closed_port_url()
    async with AsyncClient(url, timeout=5) as pg:
        with pytest.raises(ApiError) as down:
            await pg.kill()
    link = RemoteLink(url, timeout=5)
    await link.open()
    try:
        with pytest.raises(ApiError) as link_down:
            await link.resume("whatever")
        await eventually(lambda: "cannot reach the engine" in link.status().text)
    finally:
        await link.close()
    with pytest.raises(ApiError) as closed:  # after close: not connected, the same error
        await link.kill()
    for error in (down.value, link_down.value, closed.value):
        assert (error.status, error.code) == (0, LINK_DOWN)


# ---- the stream -----------------------------------------------------------------------------------


async def test_a_malformed_snapshot_keeps_the_previous_picture_and_the_link(engine, caplog):
    with Client(engine.url, master_password=MASTER) as pg:
        good = pg.state()
    sent = asyncio.Event()

    async def gateway(ws) -> None:
        await ws.send(json.dumps({"type": "snapshot", "state": good}))
        await ws.send(json.dumps({"type": "snapshot", "state": {"trading_state": "NOT A STATE"}}))
        await ws.send(json.dumps({"type": "event", "event": {"kind": "order_sent", "message": "after the bad one"}}))
        sent.set()
        await ws.wait_closed()

    async with serve(gateway, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        link = RemoteLink(f"http://127.0.0.1:{port}")
        await link.open()
        try:
            await asyncio.wait_for(sent.wait(), 10)
            events: list[dict] = []
            await eventually(lambda: bool(events.extend(link.drain_events()) or events))
            assert [e["message"] for e in events] == ["after the bad one"]  # the stream went on
            state = link.latest_state()
            assert state is not None and state.time == good["time"]  # the good picture, kept
            assert state.trading_state.value == good["trading_state"] and link.status().live
            assert any("ignored a snapshot" in r.getMessage() for r in caplog.records)
        finally:
            await link.close()
