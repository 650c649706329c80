"""EngineLink, both ways: InProcessLink on the service, and RemoteLink through the real gateway
(HTTP + `WS /v1/stream` on loopback) to the same kind of engine. Then the console itself attached
over the gateway: the master password is asked once and kept for the session."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from console_fixtures import PASSWORD, build_rig

from console.app import PerpguardApp
from console.link import EngineLink, InProcessLink
from console.remote import RemoteLink
from console.screens.password import PasswordScreen
from engine.api.errors import LINK_DOWN, ApiError
from engine.api.state import EngineState
from engine.gateway import create_app, gateway_server
from engine.domain.model import OrderIntent


async def wait_for(predicate, seconds: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not predicate():
        if loop.time() > end:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def gateway(rig):
    server = gateway_server(create_app(rig.service, snapshot_seconds=0.2), "127.0.0.1", 0)
    task = await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.stop(task)


async def test_in_process_link_streams_events_and_maps_refusals():
    rig = await build_rig()
    link = InProcessLink(rig.service)
    assert isinstance(link, EngineLink)
    await link.open()
    backlog = [e["kind"] for e in link.drain_events()]
    assert backlog[0] == "engine_started" and "order_sent" in backlog  # what happened before the console opened
    await rig.engine.submit(OrderIntent(market="SOL", side="buy", notional_usd=500))
    assert "order_sent" in [e["kind"] for e in link.drain_events()]
    assert isinstance(link.latest_state(), EngineState)
    assert link.latest_state().positions[0].coin in ("BTC", "ETH", "SOL", "DOGE")
    with pytest.raises(ApiError) as refused:
        await link.approve("pa_missing")
    assert refused.value.status == 404 and refused.value.code == "NOT_FOUND"
    await link.kill()
    with pytest.raises(ApiError) as wrong:
        await link.resume("nope")
    assert wrong.value.unauthorized
    assert (await link.resume(PASSWORD))["trading_state"] == "ACTIVE"
    await link.close()
    await rig.engine.submit(OrderIntent(market="SOL", side="buy", notional_usd=500))
    assert link.drain_events() == []  # unsubscribed


async def test_remote_link_through_the_gateway():
    rig = await build_rig()
    async with gateway(rig) as url:
        link = RemoteLink(url)
        await link.open()
        try:
            await wait_for(lambda: link.needs_password)  # no token: the stream wants the password
            assert not link.status().live and link.latest_state() is None
            link.use_password(PASSWORD)
            await wait_for(lambda: link.latest_state() is not None)
            assert link.status().live
            assert isinstance(link.latest_state(), EngineState)
            assert {p.coin for p in link.latest_state().positions} == {"BTC", "ETH", "SOL", "DOGE"}

            link.drain_events()
            await rig.engine.submit(OrderIntent(market="SOL", side="buy", notional_usd=500))
            await wait_for(lambda: any(e["kind"] == "order_sent" for e in link.drain_events()))

            approval, delay = rig.pending("APPROVAL"), rig.pending("DELAY")
            with pytest.raises(ApiError) as wrong:
                await link.approve(approval["id"], "wrong")
            assert wrong.value.unauthorized
            assert (await link.approve(approval["id"], PASSWORD))["status"] == "EXECUTED"
            assert [p.tier for p in link.latest_state().pending] == ["DELAY"]  # refreshed at once
            assert (await link.cancel_pending(delay["id"]))["status"] == "CANCELLED"
            with pytest.raises(ApiError) as missing:
                await link.cancel_pending(delay["id"])
            assert missing.value.code == "NOT_FOUND"
            assert len(await link.policies()) == 12

            assert (await link.kill())["trading_state"] == "HALTED"
            assert rig.engine.book.positions() == []
            with pytest.raises(ApiError):
                await link.resume("wrong")
            assert (await link.resume(PASSWORD))["trading_state"] == "ACTIVE"
        finally:
            await link.close()


async def test_remote_link_says_when_the_engine_is_unreachable():
    link = RemoteLink("http://127.0.0.1:9")  # nothing listens there
    await link.open()
    try:
        await wait_for(lambda: "cannot reach" in link.status().text)
        assert not link.status().live
        with pytest.raises(ApiError) as down:
            await link.kill()
        assert (down.value.status, down.value.code) == (0, LINK_DOWN) and "cannot reach" in down.value.message
    finally:
        await link.close()


async def test_attached_console_asks_the_password_once_per_session():
    rig = await build_rig(held=(("BTC", "buy", 45_000), ("ETH", "buy", 42_000)))  # two APPROVAL orders
    async with gateway(rig) as url:
        link = RemoteLink(url)
        link.use_password(PASSWORD)  # as `perpguard attach` would after a first prompt
        app = PerpguardApp(link, owns_engine=False)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(lambda: link.latest_state() is not None)
            app.refresh_now()
            await pilot.press("2", "a")
            assert isinstance(app.screen, PasswordScreen)  # remote approve: the master password
            await pilot.press(*PASSWORD, "enter")
            await wait_for(lambda: len(rig.service.pending()) == 1)
            await app.workers.wait_for_complete()
            app.refresh_now()
            await pilot.pause()
            await pilot.press("a")
            await pilot.pause()
            assert not isinstance(app.screen, PasswordScreen)  # kept for the session
            await wait_for(lambda: rig.service.pending() == [])
            await pilot.press("!", "y")
            await wait_for(lambda: rig.engine.trading.state.value == "HALTED")
            await app.workers.wait_for_complete()
            app.refresh_now()
            await pilot.press("r")
            await wait_for(lambda: rig.engine.trading.state.value == "ACTIVE")
            await app.workers.wait_for_complete()
            await pilot.press("q")
            await pilot.pause()
        assert app.return_value == "detach"
