"""`FakeHyperliquid`: a real HTTP + WebSocket server on 127.0.0.1 (Starlette under uvicorn, in
a thread with its own event loop) that speaks Hyperliquid's API for a master account, its
subaccounts and vaults, as strictly as the venue (see `venue.FakeVenue` for the rules and
their sources).

Constructor: `FakeHyperliquid(account, agents, *, equity=100_000.0, mainnet=False,
block_seconds=0.1, subaccounts=(), vaults=(), equities=None, abstraction=None, spot_usdc=None,
cum_volume=None, requests_used=None, nonces_kept=20, book=BookShape(), books=None)`
- `agents`: addresses (valid 90 days from now) or `(address, valid_until_epoch_ms)` pairs.
- `subaccounts`, `vaults`: addresses of the master's subaccounts / vaults it leads.
- per-account dicts keyed by address (any case): `equities` (starting USDC; default `equity`),
  `abstraction` ("default" | "disabled" | "unifiedAccount" | "portfolioMargin" |
  "dexAbstraction"; unified/portfolio keep the USDC in spot), `spot_usdc` (a standard account's
  spot USDC), `cum_volume` (traded USD so far: default 0, a new account), `requests_used`.
- `nonces_kept`: nonces kept per signer (the venue: 20 small accounts, 100 large ones).
- `book` / `books`: the L2 book shape (levels per side, spacing, USD per level) for every market
  / per coin.

Controls and reads (thread-safe: they run on the server's loop, `call`); the per-account ones
take `account=` (default: the master):
- `set_mark(coin, px)`, `set_funding(coin, hourly_rate)`, `advance(seconds)` (the venue's clock),
  `set_book(coin, shape)`, `set_volume(volume, account=None)`.
- faults: `drop_connections()`, `silent = True` (nothing more is sent: no data, no pongs),
  `refuse_connections = True` (new websockets are turned away), `fail_next(endpoint, status,
  times=1, after_apply=False)` (answer 429 or 5xx; `after_apply=True` applies the action first,
  as when an answer is lost).
- reads: `position(coin, account=None)`, `orders(cloid=None, account=None)`,
  `dead_man_deadline(account=None)`, `fills(account=None)`, `account_value(account=None)`,
  `actions(kind=None)`, `refused()`, `subscriptions()`, `posts`, `pongs_sent`,
  `connections_opened`, `connections_refused`, `venue`, `info_requests` (every `/info` body
  received, faulted ones included).

- `POST /info`, `POST /exchange`: see `venue.FakeVenue`.
- `/ws`: greets like the venue, answers `{"method": "ping"}` with a pong, takes `subscribe` /
  `unsubscribe` (allMids, orderUpdates, userFills, userEvents, activeAssetCtx, l2Book, bbo,
  trades, candle), confirms each with a `subscriptionResponse`, sends the userFills snapshot
  (`isSnapshot: true`) and the first book / bbo at once, and every block (`block_seconds`)
  regenerates the books, runs the venue's timers, triggers and liquidations, and pushes allMids,
  the subscribed asset contexts, books (`WsBook`), best bid and offer (`WsBbo`) and candles
  (`Candle`, open/high/low/close of the mark over the interval). Each taker fill is also a
  `trades` message (`WsTrade[]`) for the coin's trades subscribers; one of these channels for a
  coin not listed is refused on the `error` channel (`Invalid subscription {...}`). Shapes: the
  docs' websocket "Subscriptions" page and the SDK's `hyperliquid/utils/types.py`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from fake_hyperliquid.book import BookShape
from fake_hyperliquid.channels import MarketChannels, trade_of
from fake_hyperliquid.venue import FakeVenue, ReceivedAction
from fake_hyperliquid.wire import Order

T = TypeVar("T")
START_TIMEOUT = 5.0


class OffsetClock:
    """Wall-clock time that a test can move forward (`advance`), for the venue's own timers."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset


@dataclass
class _Fault:
    status: int
    after_apply: bool


class _Session:
    """One websocket client: its subscriptions and an ordered outbox (one writer task)."""

    def __init__(self, websocket: WebSocket, server: FakeHyperliquid) -> None:
        self.websocket = websocket
        self.server = server
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.outbox: asyncio.Queue[str] = asyncio.Queue()

    def send(self, message: dict[str, Any] | str) -> None:
        if not self.server.silent:
            self.outbox.put_nowait(message if isinstance(message, str) else json.dumps(message))

    async def write(self) -> None:
        while True:
            await self.websocket.send_text(await self.outbox.get())

    def wants(self, kind: str, key: str | None) -> bool:
        for sub in self.subscriptions.values():
            if sub.get("type") == kind and key in (None, str(sub.get("user", "")).lower(), sub.get("coin")):
                return True
        return False


class FakeHyperliquid:
    def __init__(self, account: str, agents: list[Any], *, equity: float = 100_000.0, mainnet: bool = False,
                 block_seconds: float = 0.1, subaccounts: list[str] = (), vaults: list[str] = (),
                 equities: dict[str, float] | None = None, abstraction: dict[str, str] | None = None,
                 spot_usdc: dict[str, float] | None = None, cum_volume: dict[str, float] | None = None,
                 requests_used: dict[str, int] | None = None, nonces_kept: int = 20,
                 book: BookShape = BookShape(), books: dict[str, BookShape] | None = None) -> None:
        self.clock = OffsetClock()
        self.venue = FakeVenue(account, agents, self.clock, self._publish, equity=equity, mainnet=mainnet,
                               subaccounts=subaccounts, vaults=vaults, equities=equities, abstraction=abstraction,
                               spot_usdc=spot_usdc, cum_volume=cum_volume, requests_used=requests_used,
                               nonces_kept=nonces_kept, book=book, books=books)
        self.channels = MarketChannels(self.venue, self.clock)
        self.block_seconds = block_seconds
        self.silent = False
        self.refuse_connections = False
        self.connections_opened = 0
        self.connections_refused = 0
        self.pongs_sent = 0
        self.posts = {"info": 0, "exchange": 0}  # requests received, faulted ones included
        self.info_requests: list[dict[str, Any]] = []  # every /info body received, faulted ones included
        self._sessions: set[_Session] = set()
        self._faults: dict[str, deque[_Fault]] = {"info": deque(), "exchange": deque()}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.app = Starlette(routes=[Route("/info", self._info, methods=["POST"]),
                                     Route("/exchange", self._exchange, methods=["POST"]),
                                     WebSocketRoute("/ws", self._ws)])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeHyperliquid:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Accepted connections inherit it: without it, h11's header and body writes meet the
        # client's delayed ACK and every answer waits ~40 ms (the venue answers in a few ms).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", http="h11", ws="websockets-sansio",
                                ws_ping_interval=None, timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, args=(sock,), name="fake-hyperliquid", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake Hyperliquid server did not start")
            time.sleep(0.01)
        return self

    def _run(self, sock: socket.socket) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve(sock))
        self._loop.close()

    async def _serve(self, sock: socket.socket) -> None:
        blocks = asyncio.create_task(self._blocks())
        try:
            await self._server.serve(sockets=[sock])
        finally:
            blocks.cancel()

    def stop(self) -> None:
        """Close every websocket and tell uvicorn to exit. Returns at once: uvicorn takes ~0.2 s
        to wind down, and a daemon thread on its own port needs no waiting for."""
        if self._thread is None:
            return
        self.drop_connections()
        self._server.should_exit = self._server.force_exit = True
        self._thread = None

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the server's loop and return its result (a coroutine function is awaited)."""
        async def run() -> T:
            result = fn()
            return await result if asyncio.iscoroutine(result) else result
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(START_TIMEOUT)

    # ---- controls and faults -------------------------------------------------------------------

    def drop_connections(self) -> None:
        """Close every websocket from the server side."""
        async def drop() -> None:
            for session in list(self._sessions):
                try:
                    await session.websocket.close(code=1012)
                except RuntimeError:
                    pass  # already closing
        self.call(drop)

    def fail_next(self, endpoint: str, status: int, times: int = 1, after_apply: bool = False) -> None:
        """The next `times` requests to `/info` or `/exchange` get `status` (429, 500, 502...)."""
        self.call(lambda: self._faults[endpoint].extend(_Fault(status, after_apply) for _ in range(times)))

    def set_mark(self, coin: str, px: float) -> None:
        self.call(lambda: self.venue.set_mark(coin, px))

    def set_funding(self, coin: str, hourly_rate: float) -> None:
        self.call(lambda: self.venue.set_funding_rate(coin, hourly_rate))

    def set_book(self, coin: str, shape: BookShape) -> None:
        """A new book shape for `coin` (takes effect at once)."""
        def change() -> None:
            book = self.venue.books[coin]
            book.shape = shape
            book.regenerate(self.venue.marks.get(coin, 0.0))
        self.call(change)

    def set_volume(self, volume: float, account: str | None = None) -> None:
        """The account's cumulative traded volume (USD): the address budget and scheduleCancel read it."""
        self.call(lambda: setattr(self.venue.account_of(account), "cum_volume", float(volume)))

    def advance(self, seconds: float) -> None:
        """Move the venue's clock forward and let its timers (dead-man switch, funding) run."""
        def move() -> None:
            self.clock.offset += seconds
            self.venue.tick()
        self.call(move)

    # ---- reads -----------------------------------------------------------------------------

    def subscriptions(self) -> list[dict[str, Any]]:
        """Every subscription of every open websocket (one entry per connection and subscription)."""
        return self.call(lambda: [sub for s in self._sessions for sub in s.subscriptions.values()])

    def orders(self, cloid: str | None = None, account: str | None = None) -> list[Order]:
        """Every order the account placed (any status), oldest first."""
        return self.call(lambda: [o for o in self.venue.account_of(account).orders.values()
                                  if cloid is None or o.cloid == cloid])

    def actions(self, kind: str | None = None) -> list[ReceivedAction]:
        return self.call(lambda: [a for a in self.venue.actions if kind is None or a.action["type"] == kind])

    def refused(self) -> list[str]:
        return self.call(lambda: list(self.venue.refused))

    def position(self, coin: str, account: str | None = None) -> float:
        """Signed base units."""
        return self.call(lambda: float(self.venue.account_of(account).size(coin)))

    def dead_man_deadline(self, account: str | None = None) -> float | None:
        """When the scheduled cancel fires (epoch s), or None."""
        at = self.call(lambda: self.venue.account_of(account).dead_man_ms)
        return None if at is None else at / 1000

    def fills(self, account: str | None = None) -> list[dict[str, Any]]:
        return self.call(lambda: list(self.venue.account_of(account).fills))

    def account_value(self, account: str | None = None) -> float:
        return self.call(lambda: self.venue.margin(self.venue.account_of(account)).account_value())

    # ---- HTTP ------------------------------------------------------------------------------

    def _take_fault(self, endpoint: str) -> _Fault | None:
        self.posts[endpoint] += 1
        faults = self._faults[endpoint]
        return faults.popleft() if faults else None

    async def _info(self, request: Request) -> Response:
        body = await request.json()
        self.info_requests.append(body)
        fault = self._take_fault("info")
        if fault is not None:
            return PlainTextResponse(f"injected {fault.status}", status_code=fault.status)
        if not isinstance(body, dict):
            return PlainTextResponse("Failed to deserialize the JSON body into the target type", status_code=422)
        status, body = self.venue.info(body)
        if status != 200:  # the venue's refusals are plain text, not JSON
            return PlainTextResponse(str(body), status_code=status)
        return JSONResponse(body, status_code=status)

    async def _exchange(self, request: Request) -> Response:
        payload = await request.json()
        fault = self._take_fault("exchange")
        if fault is not None and not fault.after_apply:
            return PlainTextResponse(f"injected {fault.status}", status_code=fault.status)
        result = await self.venue.exchange(payload)
        if fault is not None:
            return PlainTextResponse(f"injected {fault.status} (the action was applied)", status_code=fault.status)
        return JSONResponse(result)

    # ---- websocket -------------------------------------------------------------------------

    async def _ws(self, websocket: WebSocket) -> None:
        if self.refuse_connections:
            self.connections_refused += 1
            await websocket.close(code=1013)  # before accept: the handshake is refused
            return
        await websocket.accept()
        session = _Session(websocket, self)
        self._sessions.add(session)
        self.connections_opened += 1
        writer = asyncio.create_task(session.write())
        session.send("Websocket connection established.")
        try:
            while True:
                try:
                    message = json.loads(await websocket.receive_text())
                except ValueError:
                    session.send({"channel": "error", "data": "Invalid JSON"})
                    continue
                self._on_client_message(session, message)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self._sessions.discard(session)
            writer.cancel()

    def _on_client_message(self, session: _Session, message: dict[str, Any]) -> None:
        method, subscription = message.get("method"), message.get("subscription")
        if method == "ping":
            if not self.silent:
                self.pongs_sent += 1
            session.send({"channel": "pong"})
        elif method == "subscribe" and not self.channels.known(subscription):
            # a book, bbo, tape or candle of a coin the venue does not list (nktkas/hyperliquid
            # `_postRequest.ts` reads this refusal: "Invalid subscription" and the subscription)
            session.send({"channel": "error", "data": f"Invalid subscription {json.dumps(subscription)}"})
        elif method in ("subscribe", "unsubscribe") and isinstance(subscription, dict):
            key = json.dumps(subscription, sort_keys=True)
            if method == "subscribe":
                session.subscriptions[key] = subscription
            else:
                session.subscriptions.pop(key, None)
            session.send({"channel": "subscriptionResponse", "data": {"method": method, "subscription": subscription}})
            if method == "subscribe":
                self._first_data(session, subscription)
        else:
            session.send({"channel": "error", "data": f"Unknown request: {json.dumps(message)}"})

    def _first_data(self, session: _Session, subscription: dict[str, Any]) -> None:
        kind = subscription.get("type")
        user = str(subscription.get("user", "")).lower()
        if kind == "userFills" and user in self.venue.accounts:
            fills = self.venue.accounts[user].fills[-2000:]
            session.send({"channel": "userFills", "data": {"isSnapshot": True, "user": user, "fills": fills}})
        elif kind == "allMids":
            session.send({"channel": "allMids", "data": {"mids": self.venue.mids(subscription.get("dex") or "")}})
        elif kind == "activeAssetCtx" and subscription.get("coin") in self.venue.books:
            coin = subscription.get("coin")
            session.send({"channel": "activeAssetCtx", "data": {"coin": coin, "ctx": self.venue.asset_ctx(coin)}})
        elif kind in ("l2Book", "bbo"):
            message = self.channels.message(subscription)
            if message is not None:
                session.send(message)

    def _publish(self, kind: str, key: str | None, message: dict[str, Any]) -> None:
        for session in list(self._sessions):
            if session.wants(kind, key):
                session.send(message)
        if kind == "userFills":  # a taker fill is a trade on the coin's tape
            for fill in message["data"]["fills"]:
                if fill.get("crossed"):
                    self._publish("trades", fill["coin"], {"channel": "trades", "data": [trade_of(fill, key)]})

    async def _blocks(self) -> None:
        """A block every `block_seconds`: venue timers, then mids and asset contexts."""
        while True:
            await asyncio.sleep(self.block_seconds)
            self.venue.tick()
            mids = {dex: {"channel": "allMids", "data": {"mids": self.venue.mids(dex)}} for dex in self.venue.markets.dexes}
            for session in list(self._sessions):
                for sub in list(session.subscriptions.values()):
                    if sub.get("type") == "allMids" and (sub.get("dex") or "") in mids:
                        session.send(mids[sub.get("dex") or ""])  # each dex's mids to its own subscription
                for sub in list(session.subscriptions.values()):
                    if sub.get("type") == "activeAssetCtx" and sub.get("coin") in self.venue.books:
                        coin = sub.get("coin")
                        session.send({"channel": "activeAssetCtx",
                                      "data": {"coin": coin, "ctx": self.venue.asset_ctx(coin)}})
                    elif sub.get("type") in ("l2Book", "bbo", "candle"):
                        message = self.channels.message(sub)
                        if message is not None:
                            session.send(message)
