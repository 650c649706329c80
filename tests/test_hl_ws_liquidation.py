"""A liquidation reaches the bot over the user channels it subscribed to, as the venue sends it:
the fill that closed the position, with the venue's `liquidation` field naming the account
(the engine logs it as LIQUIDATED, not as one of its fills)."""

from __future__ import annotations

import pytest

from engine.domain.model import OrderIntent
from tests.test_hl_ws import close_sdk, make_gateway, sdk_info  # noqa: F401 (the fixture)
from tests.waiting import eventually


def liquidations(messages: list) -> list[dict]:
    return [f for m in messages for f in m["data"].get("fills", []) if "liquidation" in f]


async def test_the_fill_that_liquidated_the_account_reaches_the_bot_over_user_fills_and_user_events(make_gateway):
    gateway = await make_gateway()
    fills, events = [], []
    info = sdk_info(gateway)
    try:
        info.subscribe({"type": "userFills", "user": gateway.account}, fills.append)
        info.subscribe({"type": "userEvents", "user": gateway.account}, events.append)
        await eventually(lambda: fills, what="the fills snapshot")
        opened = await gateway.service.submit(OrderIntent(market="BTC", side="buy", size=30.0, leverage=20))
        assert opened.status == 200 and gateway.paper.position_size("BTC") == pytest.approx(30.0)
        gateway.paper.set_mark("BTC", 45_000.0)  # 15x long, 10% down: under maintenance margin
        await eventually(lambda: liquidations(fills) and liquidations(events), what="the liquidation's fill")
    finally:
        await close_sdk(info)
    assert gateway.paper.position_size("BTC") == 0
    (fill,) = liquidations(fills)
    assert (fill["coin"], fill["side"], fill["sz"], fill["dir"], fill["startPosition"]) == \
        ("BTC", "A", "30.0", "Close Long", "30.0")
    assert fill["px"] == "45000.0" and float(fill["closedPnl"]) < -100_000 + 50_000  # the fall, on 30 BTC
    assert fill["liquidation"] == {"liquidatedUser": gateway.account.lower(), "markPx": "45000.0", "method": "market"}
    assert fill["crossed"] is True and isinstance(fill["tid"], int)
    assert liquidations(events) == [fill]
    listed = [f for f in await gateway.venue.info({"type": "userFills", "user": gateway.account}) if "liquidation" in f]
    assert listed == [fill]  # the same row, trade id and hash included, as /info userFills lists it
