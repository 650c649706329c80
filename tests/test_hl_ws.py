"""`/hl/ws` driven by the clients that must work unchanged (the official SDK's websocket, and a
plain `websockets` client for what the SDK does not send): books relayed from the strict fake
venue, fills and order updates of the guarded account from the engine (paper), post requests
through the same gate as HTTP, and the venue's own answers to pings and bad requests."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Callable

import pytest
from eth_account import Account
from fastapi import FastAPI
from hyperliquid.info import Info
from hyperliquid.utils.signing import get_timestamp_ms, order_request_to_order_wire, order_wires_to_order_action, \
    sign_l1_action
from websockets.asyncio.client import connect

from engine.domain.clock import ManualClock
from engine.domain.model import OrderIntent
from engine.facade import EngineService
from engine.gateway.hl import ws as hl_ws_module
from engine.gateway.hl.api import HlApi
from engine.gateway.hl.exchange import HlExchange
from engine.gateway.hl.info import HlInfo
from engine.gateway.hl.routes import install
from engine.gateway.server import gateway_server
from engine.live.engine import Engine
from engine.risk.policies import parse_policies
from engine.store.bots import BotInfo
from engine.venues.hyperliquid.relay import HyperliquidRelay
from engine.venues.paper.exchange import PaperExchange
from engine.venues.paper.hl_info import PaperVenueApi
from engine.venues.paper.universe import PAPER_MARKETS
from fake_hyperliquid.harness import config_for
from tests.waiting import eventually

T0 = 1_700_000_000.0
BOT = Account.from_key("0x" + "b2" * 32)
STRANGER = "0x" + "5e" * 20
BOOK = {"type": "l2Book", "coin": "BTC"}
# what the SDK's Info needs to start without asking /info (its meta and spot meta)
SDK_META = {"universe": [{"name": "BTC", "szDecimals": 5}, {"name": "ETH", "szDecimals": 4}]}
SDK_SPOT_META = {"universe": [], "tokens": []}


@dataclass
class Gateway:
    url: str  # what a Hyperliquid client is given as its base URL
    service: EngineService
    paper: PaperExchange
    clock: ManualClock
    venue: Any

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http"):] + "/ws"

    @property
    def account(self) -> str:
        return self.service.engine.connector.account_address


@pytest.fixture
async def make_gateway():
    """Start a gateway serving `/hl/ws` over a paper engine; the venue is paper's own or the
    relay over the strict fake (`venue(paper)` gives it)."""
    stops: list[Callable] = []

    async def start(venue: Callable[[PaperExchange], Any] = PaperVenueApi, policies: list[dict] = ()) -> Gateway:
        clock = ManualClock(T0)
        paper = PaperExchange(PAPER_MARKETS, equity=100_000.0, clock=clock)
        paper.set_mark("BTC", 50_000.0)
        paper.set_mark("ETH", 3_000.0)
        engine = Engine(paper, parse_policies(list(policies)), clock)
        await engine.start()
        service = EngineService(engine)
        api = venue(paper)
        app = FastAPI()
        install(app, HlApi(service, api, HlInfo(service, api), HlExchange(service, api)))  # /hl/info, /hl/exchange, /hl/ws
        server = gateway_server(app, "127.0.0.1", 0)
        task = await server.start()

        async def stop() -> None:
            await server.stop(task)
            await api.close()
            await engine.stop()
        stops.append(stop)
        return Gateway(f"http://127.0.0.1:{server.port}/hl", service, paper, clock, api)

    yield start
    for stop in reversed(stops):
        await stop()


@pytest.fixture
def relayed(fake) -> Callable[[PaperExchange], HyperliquidRelay]:
    return lambda _paper: HyperliquidRelay.for_config(config_for(fake), rng=lambda: 0.0)


class Client:
    """A plain websocket client: what it was sent, by channel."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.received: list[Any] = []

    async def __aenter__(self) -> Client:
        self._ws = await connect(self.url)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *_exc) -> None:
        await self._ws.close()
        self._reader.cancel()

    async def _read(self) -> None:
        async for raw in self._ws:
            try:
                self.received.append(json.loads(raw))
            except ValueError:
                self.received.append(raw)

    async def send(self, message: Any) -> None:
        await self._ws.send(message if isinstance(message, str) else json.dumps(message))

    def on(self, channel: str) -> list[Any]:
        return [m for m in self.received if isinstance(m, dict) and m.get("channel") == channel]

    async def next_on(self, channel: str, after: int = 0, what: str = "") -> Any:
        return (await eventually(lambda: self.on(channel)[after:], what=what or f"a {channel} message"))[0]


def sdk_info(gateway: Gateway) -> Info:
    return Info(gateway.url, skip_ws=False, meta=SDK_META, spot_meta=SDK_SPOT_META)


async def close_sdk(*infos: Info) -> None:
    for info in infos:  # its close waits for the server's answer: not on the server's own loop
        await asyncio.to_thread(info.disconnect_websocket)


def as_bot(gateway: Gateway, monkeypatch) -> None:
    """BOT registered: its address means the guarded account, and it may trade."""
    bot = BotInfo("beta", BOT.address.lower(), frozenset({"trade", "read"}), T0)
    monkeypatch.setattr(gateway.service, "bot_for", lambda address: bot if address.lower() == bot.address else None)


# ---- market channels, relayed from the venue ---------------------------------------------------


async def test_two_sdk_bots_get_the_venue_s_book_through_one_venue_subscription(make_gateway, relayed, fake):
    gateway = await make_gateway(relayed)
    books: dict[str, list] = {"alpha": [], "beta": []}
    alpha, beta = sdk_info(gateway), sdk_info(gateway)
    try:
        alpha.subscribe(dict(BOOK), books["alpha"].append)
        beta.subscribe(dict(BOOK), books["beta"].append)
        await eventually(lambda: books["alpha"] and books["beta"], what="the book at both SDK clients")
        assert fake.subscriptions() == [BOOK]  # one venue subscription for both bots
    finally:
        await close_sdk(alpha, beta)
    for book in (books["alpha"][0], books["beta"][0]):
        assert book["channel"] == "l2Book" and book["data"]["coin"] == "BTC"
        bids, asks = book["data"]["levels"]
        assert float(bids[0]["px"]) < float(asks[0]["px"])
    await eventually(lambda: fake.subscriptions() == [], what="the venue unsubscribed when both left")


async def test_subscribe_unsubscribe_and_ping_are_answered_as_the_venue_answers_them(make_gateway, relayed, fake):
    gateway = await make_gateway(relayed)
    async with Client(gateway.ws_url) as client:
        await client.send({"method": "subscribe", "subscription": BOOK})
        ack = await client.next_on("subscriptionResponse")
        assert client.received[0] == ack  # no greeting before it: every frame is JSON
        assert ack == {"channel": "subscriptionResponse", "data": {"method": "subscribe", "subscription": BOOK}}
        book = await client.next_on("l2Book")
        assert client.received.index(ack) < client.received.index(book) and book["data"]["coin"] == "BTC"
        await client.send({"method": "unsubscribe", "subscription": BOOK})
        unsubscribed = await client.next_on("subscriptionResponse", after=1)
        assert unsubscribed["data"] == {"method": "unsubscribe", "subscription": BOOK}
        await eventually(lambda: fake.subscriptions() == [], what="the venue unsubscribed")
        await client.send({"method": "ping"})
        assert await client.next_on("pong") == {"channel": "pong"}


async def test_bad_requests_get_the_venue_s_error_texts_and_the_connection_lives_on(make_gateway, relayed):
    gateway = await make_gateway(relayed)
    sent = ["{not json", json.dumps({"method": "dance"}), json.dumps({"method": "subscribe", "subscription": {"type": "webData9"}}),
            json.dumps({"method": "post", "request": {"type": "info", "payload": {"type": "meta"}}})]
    async with Client(gateway.ws_url) as client:
        for raw in sent:
            await client.send(raw)
        await client.send({"method": "subscribe", "subscription": BOOK})
        await client.send({"method": "subscribe", "subscription": BOOK})
        await client.send({"method": "unsubscribe", "subscription": {"type": "trades", "coin": "ETH"}})
        await client.send({"method": "subscribe", "subscription": {"type": "candle", "coin": "BTC", "interval": "7m"}})
        await eventually(lambda: len(client.on("error")) == 7, what="seven refusals")
        await client.send({"method": "ping"})
        await client.next_on("pong", what="a pong after all that")
    errors = [m["data"] for m in client.on("error")]
    parse = "Error parsing JSON into valid websocket request: "
    assert errors[:4] == [parse + raw for raw in sent]
    assert errors[4] == f"Already subscribed: {json.dumps(BOOK)}"
    assert errors[5] == 'Already unsubscribed: {"type": "trades", "coin": "ETH"}'
    assert errors[6].startswith(parse) and '"interval":"7m"' in errors[6]


async def test_a_post_info_is_answered_with_its_id_type_and_data(make_gateway, relayed):
    gateway = await make_gateway(relayed)
    async with Client(gateway.ws_url) as client:
        await client.send({"method": "post", "id": 7, "request": {"type": "info", "payload": BOOK}})
        await client.send({"method": "post", "id": 8, "request": {"type": "info", "payload": {"type": "nope"}}})
        await eventually(lambda: len(client.on("post")) == 2, what="both answers")
    answers = {m["data"]["id"]: m["data"]["response"] for m in client.on("post")}
    assert answers[7]["type"] == "info" and answers[7]["payload"]["type"] == "l2Book"
    assert answers[7]["payload"]["data"]["coin"] == "BTC" and answers[7]["payload"]["data"]["levels"][0]
    assert answers[8]["type"] == "error"
    assert answers[8]["payload"].startswith("422 Unprocessable Entity: Failed to deserialize the JSON body")


async def test_ccxt_pro_watches_a_book_through_perpguard(make_gateway):
    import ccxt.pro

    gateway = await make_gateway()
    exchange = ccxt.pro.hyperliquid({"urls": {"api": {"public": gateway.url, "private": gateway.url,
                                                      "ws": {"public": gateway.ws_url}}}})
    try:
        book = await asyncio.wait_for(exchange.watch_order_book("BTC/USDC:USDC"), 20)
    finally:
        await exchange.close()
    assert book["symbol"] == "BTC/USDC:USDC" and book["bids"][0][0] < book["asks"][0][0]


async def test_ccxt_pro_orders_over_the_websocket_and_hears_its_fill(make_gateway, monkeypatch):
    import ccxt.pro

    gateway = await make_gateway()
    as_bot(gateway, monkeypatch)
    exchange = ccxt.pro.hyperliquid({"urls": {"api": {"public": gateway.url, "private": gateway.url,
                                                      "ws": {"public": gateway.ws_url}}},
                                     "walletAddress": BOT.address, "privateKey": BOT.key.hex()})
    exchange.set_sandbox_mode(True)  # testnet signatures, as a bot pointed at testnet signs
    exchange.urls["api"] = {"public": gateway.url, "private": gateway.url, "ws": {"public": gateway.ws_url}}
    try:
        await exchange.load_markets()
        trades = asyncio.ensure_future(exchange.watch_my_trades("BTC/USDC:USDC"))
        order = await asyncio.wait_for(exchange.create_order_ws("BTC/USDC:USDC", "market", "buy", 0.01, 50_000), 20)
        (trade, *_) = await asyncio.wait_for(trades, 20)
    finally:
        await exchange.close()
    assert order["id"] and trade["order"] == order["id"]
    assert (trade["symbol"], trade["side"], trade["amount"]) == ("BTC/USDC:USDC", "buy", 0.01)
    assert gateway.paper.position_size("BTC") == pytest.approx(0.01)


# ---- the guarded account's own channels, from the engine ---------------------------------------


async def test_a_fill_reaches_the_sdk_over_user_fills_in_the_venue_s_shape(make_gateway):
    gateway = await make_gateway()
    fills, orders, events = [], [], []
    info = sdk_info(gateway)
    try:
        info.subscribe({"type": "userFills", "user": gateway.account}, fills.append)
        info.subscribe({"type": "orderUpdates", "user": gateway.account}, orders.append)
        info.subscribe({"type": "userEvents", "user": gateway.account}, events.append)
        await eventually(lambda: fills, what="the fills snapshot")
        answer = await gateway.service.submit(OrderIntent(market="BTC", side="buy", size=0.01, client_id="first-fill"))
        await eventually(lambda: len(fills) == 2 and orders and events, what="the live fill and order update")
    finally:
        await close_sdk(info)
    assert answer.status == 200
    oid = int(answer.body["order"]["oid"])
    assert fills[0]["data"]["isSnapshot"] is True and fills[0]["data"]["user"] == gateway.account
    (fill,) = fills[1]["data"]["fills"]
    assert (fill["coin"], fill["side"], fill["sz"], fill["oid"]) == ("BTC", "B", "0.01", oid)
    assert abs(float(fill["px"]) / 50_000 - 1) < 0.01 and fill["time"] == int(T0 * 1000)
    assert (fill["startPosition"], fill["dir"], fill["feeToken"]) == ("0.0", "Open Long", "USDC")
    assert isinstance(fill["tid"], int) and fill["crossed"] is True and float(fill["fee"]) > 0
    assert fill["cloid"].startswith("0x") and len(fill["cloid"]) == 34
    (listed,) = [f for f in await gateway.venue.info({"type": "userFills", "user": gateway.account}) if f["oid"] == oid]
    assert fill == listed  # one fill, one trade id and hash: over the websocket as over /info (Hummingbot counts by tid)
    assert events[-1]["channel"] == "user" and events[-1]["data"]["fills"] == [fill]
    update = orders[-1]["data"][0]
    assert (update["status"], update["order"]["oid"], update["order"]["coin"]) == ("filled", oid, "BTC")


async def test_a_resting_order_and_its_cancel_arrive_as_order_updates(make_gateway):
    gateway = await make_gateway()
    async with Client(gateway.ws_url) as client:
        await client.send({"method": "subscribe", "subscription": {"type": "orderUpdates", "user": gateway.account}})
        await client.next_on("subscriptionResponse")
        placed = await gateway.service.submit(OrderIntent(market="BTC", side="buy", size=0.01, type="limit",
                                                          limit_px=40_000.0))
        oid = placed.body["order"]["oid"]
        opened = await client.next_on("orderUpdates")
        await gateway.service.engine.connector.cancel("BTC", oid)  # as /hl/exchange's cancel does
        cancelled = await client.next_on("orderUpdates", after=1)
    (open_update,), (cancel_update,) = opened["data"], cancelled["data"]
    assert open_update["status"] == "open" and open_update["order"]["oid"] == int(oid)
    assert (open_update["order"]["side"], open_update["order"]["limitPx"], open_update["order"]["sz"]) == ("B", "40000.0", "0.01")
    assert open_update["statusTimestamp"] == int(T0 * 1000)
    assert cancel_update["status"] == "canceled" and cancel_update["order"]["oid"] == int(oid)


async def test_a_bot_s_address_means_the_guarded_account_and_a_stranger_hears_nothing(make_gateway, monkeypatch):
    gateway = await make_gateway()
    as_bot(gateway, monkeypatch)
    async with Client(gateway.ws_url) as client:
        for user in (BOT.address, STRANGER):
            await client.send({"method": "subscribe", "subscription": {"type": "userFills", "user": user}})
        await eventually(lambda: len(client.on("userFills")) == 2, what="both snapshots")
        await gateway.service.submit(OrderIntent(market="ETH", side="sell", size=0.5))
        await eventually(lambda: len(client.on("userFills")) == 3, what="the bot's fill")
    snapshots = {m["data"]["user"]: m["data"] for m in client.on("userFills")[:2]}
    assert snapshots[STRANGER] == {"isSnapshot": True, "user": STRANGER, "fills": []}
    live = client.on("userFills")[2]["data"]
    assert live["user"] == BOT.address.lower() and live["fills"][0]["coin"] == "ETH"
    assert live["fills"][0]["side"] == "A" and live["fills"][0]["dir"] == "Open Short"


async def test_a_held_order_s_fill_reaches_the_bot_when_it_is_released(make_gateway):
    spending = {"type": "SPENDING_LIMIT", "rules": {"instant_max_usd": 1000, "notify_max_usd": 2000,
                                                     "delay_max_usd": 20000, "delay_seconds": 60}}
    gateway = await make_gateway(policies=[spending])
    async with Client(gateway.ws_url) as client:
        await client.send({"method": "subscribe", "subscription": {"type": "userFills", "user": gateway.account}})
        await client.next_on("userFills", what="the snapshot")
        held = await gateway.service.submit(OrderIntent(market="ETH", side="buy", size=2))  # 6,000 USD: DELAY
        assert held.status == 202 and len(client.on("userFills")) == 1
        gateway.clock.advance(61)
        await gateway.service.engine.tick()
        released = await client.next_on("userFills", after=1, what="the released order's fill")
    (fill,) = released["data"]["fills"]
    assert (fill["coin"], fill["side"], fill["sz"]) == ("ETH", "B", "2.0")


async def test_a_post_action_is_gated_like_http_and_answered_with_its_statuses(make_gateway, monkeypatch):
    gateway = await make_gateway()
    as_bot(gateway, monkeypatch)
    universe = (await gateway.venue.info({"type": "meta"}))["universe"]
    btc = next(i for i, asset in enumerate(universe) if asset["name"] == "BTC")
    wire = order_request_to_order_wire({"coin": "BTC", "is_buy": True, "sz": 0.01, "limit_px": 50_500,
                                        "order_type": {"limit": {"tif": "Ioc"}}, "reduce_only": False}, btc)
    action = order_wires_to_order_action([wire], None)
    nonce = get_timestamp_ms()
    payload = {"action": action, "nonce": nonce, "signature": sign_l1_action(BOT, action, None, nonce, None, False),
               "vaultAddress": None}
    async with Client(gateway.ws_url) as client:
        await client.send({"method": "post", "id": 256, "request": {"type": "action", "payload": payload}})
        await client.send({"method": "post", "id": 257, "request": {"type": "action", "payload": payload}})
        await eventually(lambda: len(client.on("post")) == 2, what="both answers")
    answers = {m["data"]["id"]: m["data"]["response"] for m in client.on("post")}
    assert answers[256]["type"] == "action" and answers[256]["payload"]["status"] == "ok"
    (status,) = answers[256]["payload"]["response"]["data"]["statuses"]
    assert status["filled"]["totalSz"] == "0.01"
    assert answers[257]["type"] == "action" and answers[257]["payload"]["status"] == "err"  # the nonce, replayed
    assert gateway.paper.position_size("BTC") == pytest.approx(0.01)


# ---- a slow client -----------------------------------------------------------------------------


class _Stuck:
    """A websocket whose peer never reads: every send waits forever."""

    def __init__(self) -> None:
        self.closed_with: int | None = None
        self.sent = 0

    async def send_text(self, _text: str) -> None:
        self.sent += 1
        await asyncio.Event().wait()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed_with = code


async def test_a_client_that_stops_reading_is_disconnected_and_never_holds_the_engine(make_gateway):
    gateway = await make_gateway()
    stuck = _Stuck()
    connection = hl_ws_module._Connection(HlApi(gateway.service, gateway.venue, None, None), stuck)
    connection.start_writer()
    try:
        connection.send({"channel": "allMids", "data": {"mids": {"BTC": "0"}}})
        await eventually(lambda: stuck.sent == 1, what="the writer stuck on the first message")
        loop = asyncio.get_running_loop()
        started = loop.time()
        for i in range(hl_ws_module.OUTBOX_LIMIT + 10):
            connection.send({"channel": "allMids", "data": {"mids": {"BTC": str(i)}}})
        assert loop.time() - started < 0.5  # sends never wait on the client
        await eventually(lambda: stuck.closed_with is not None, what="the disconnect")
    finally:
        connection.close()
    assert stuck.closed_with == hl_ws_module.TOO_SLOW and stuck.sent == 1
