"""An unmodified bot's clients read the paper account (issue 16, item 4): the official SDK's
`Info` and ccxt's `hyperliquid`, over real HTTP, read its positions, orders, fills, balance,
book and candles as the paper exchange holds them."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any, Callable, TypeVar

import ccxt
import pytest
import uvicorn
from hyperliquid.info import Info
from hyperliquid.utils.types import Cloid
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from engine.domain.clock import ManualClock
from engine.venues.hl_api import InfoRefused
from engine.venues.paper.exchange import PaperExchange
from engine.venues.paper.hl_info import PaperVenueApi
from engine.venues.paper.universe import PAPER_MARKETS
from tests.paper_hl_venue import ADDRESS, CLOID, START, paper_venue, trade

T = TypeVar("T")


class InfoServer:
    """`POST /info` answered by a PaperVenueApi under uvicorn on 127.0.0.1 (its own thread and
    loop, where the paper exchange lives too: `call` runs code there)."""

    def __init__(self, make: Callable[[], tuple[PaperExchange, PaperVenueApi, ManualClock]]) -> None:
        self._make = make
        self.app = Starlette(routes=[Route("/info", self._info, methods=["POST"])])
        self.loop = asyncio.new_event_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="off", http="h11"))
        self.thread = threading.Thread(target=self._run, args=(sock,), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the info server did not start"
            time.sleep(0.01)
        self.paper, self.api, self.clock = self.call(self._make)

    def _run(self, sock: socket.socket) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve(sockets=[sock]))

    async def _info(self, request: Request) -> Any:
        try:
            return JSONResponse(await self.api.info(await request.json()))
        except InfoRefused as refused:
            return PlainTextResponse(refused.message, refused.status)

    def call(self, fn: Callable[[], T]) -> T:
        async def run() -> T:
            result = fn()
            return await result if asyncio.iscoroutine(result) else result
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def served():
    server = InfoServer(paper_venue)
    server.call(lambda: trade(server.paper, server.clock))
    yield server
    server.stop()


def test_the_sdk_reads_the_paper_account(served):
    info = Info(served.url, skip_ws=True)  # asks spotMeta and meta at init, builds its asset map from them
    assert info.name_to_asset("BTC") == 0 and info.name_to_asset("ARB") == 4
    assert info.asset_to_sz_decimals[0] == 5
    state = info.user_state(ADDRESS)
    btc = next(p["position"] for p in state["assetPositions"] if p["position"]["coin"] == "BTC")
    assert (btc["szi"], btc["entryPx"], btc["leverage"]) == ("0.5", "65032.5", {"type": "cross", "value": 20})
    assert float(state["marginSummary"]["accountValue"]) == pytest.approx(served.call(served.paper.account_value))
    assert [o["oid"] for o in info.open_orders(ADDRESS)] == [4, 3]
    front = info.frontend_open_orders(ADDRESS)
    assert [(o["oid"], o["isTrigger"], o["orderType"]) for o in front] == [(4, True, "Stop Market"), (3, False, "Limit")]
    assert [f["oid"] for f in info.user_fills(ADDRESS)] == [2, 1]
    book = info.l2_snapshot("BTC")
    assert book["coin"] == "BTC" and book["levels"][0][0]["px"] == "65267.0"
    bars = info.candles_snapshot("BTC", "1m", int(START * 1000), int(START * 1000) + 300_000)
    assert [b["c"] for b in bars] == ["65000.0", "65100.0", "65800.0", "65300.0", "65300.0"]
    assert info.all_mids()["BTC"] == "65300.0"
    assert info.query_order_by_oid(ADDRESS, 3)["order"]["status"] == "open"
    assert info.query_order_by_cloid(ADDRESS, Cloid.from_str(CLOID))["order"]["order"]["oid"] == 3
    assert info.query_order_by_oid(ADDRESS, 1234) == {"status": "unknownOid"}
    assert [u["name"] for u in info.meta()["universe"]] == list(PAPER_MARKETS)
    assert info.user_role(ADDRESS) == {"role": "user"}
    assert info.user_rate_limit(ADDRESS)["nRequestsUsed"] == 4


def client(served: InfoServer) -> ccxt.hyperliquid:
    return ccxt.hyperliquid({"urls": {"api": {"public": served.url, "private": served.url}}, "walletAddress": ADDRESS})


def test_ccxt_loads_the_paper_markets_and_reads_the_account(served):
    exchange = client(served)
    markets = exchange.load_markets()
    btc = markets["BTC/USDC:USDC"]
    assert (btc["id"], btc["baseName"], btc["precision"]["amount"], btc["limits"]["leverage"]["max"]) == ("0", "BTC", 1e-05, 40)
    assert {m["symbol"] for m in markets.values()} == {f"{c}/USDC:USDC" for c in PAPER_MARKETS}

    positions = {p["symbol"]: p for p in exchange.fetch_positions()}
    long, short = positions["BTC/USDC:USDC"], positions["ETH/USDC:USDC"]
    assert (long["side"], long["contracts"], long["entryPrice"], long["leverage"]) == ("long", 0.5, 65032.5, 20)
    assert (short["side"], short["contracts"], short["entryPrice"]) == ("short", 2.0, 3198.4)
    assert long["unrealizedPnl"] == pytest.approx(133.75) and long["markPrice"] == pytest.approx(65300)
    assert long["liquidationPrice"] is None or long["liquidationPrice"] < 65300

    balance = exchange.fetch_balance()
    assert balance["USDC"]["total"] == pytest.approx(served.call(served.paper.account_value), abs=1e-5)

    orders = {o["id"]: o for o in exchange.fetch_open_orders()}
    assert orders["3"]["price"] == 60000 and orders["3"]["amount"] == 0.2 and orders["3"]["clientOrderId"] == CLOID
    assert orders["4"]["triggerPrice"] == 58000 and orders["4"]["stopLossPrice"] == 58000 and orders["4"]["reduceOnly"]
    assert exchange.fetch_order("3")["status"] == "open"
    assert exchange.fetch_order("1")["status"] == "closed" and exchange.fetch_order("1")["filled"] == 0.5

    trades = exchange.fetch_my_trades()
    assert {(t["symbol"], t["side"], t["price"], t["amount"], t["takerOrMaker"]) for t in trades} == {
        ("BTC/USDC:USDC", "buy", 65032.5, 0.5, "taker"), ("ETH/USDC:USDC", "sell", 3198.4, 2.0, "taker")}


def test_ccxt_reads_the_synthetic_market_data(served):
    exchange = client(served)
    exchange.load_markets()
    book = exchange.fetch_order_book("BTC/USDC:USDC")
    assert book["bids"][0][0] == 65267 and book["asks"][0][0] == 65333 and [60000, 0.2] in book["bids"]
    ticker = exchange.fetch_ticker("BTC/USDC:USDC")
    assert (ticker["bid"], ticker["ask"], ticker["close"]) == (65267, 65333, 65300)
    bars = exchange.fetch_ohlcv("BTC/USDC:USDC", "1m", since=int(START * 1000))
    assert [b[1:5] for b in bars[:4]] == [[65000, 65000, 65000, 65000], [65000, 65400, 64800, 65100],
                                         [65100, 65900, 65050, 65800], [65800, 65850, 65200, 65300]]
    assert bars[0][5] == 0.5  # the paper fill's volume


def test_ccxt_reads_a_unified_accounts_balance_from_spot():
    server = InfoServer(lambda: paper_venue("unified"))
    try:
        server.call(lambda: trade(server.paper, server.clock))
        balance = client(server).fetch_balance()  # ccxt asks userAbstraction, then spotClearinghouseState
        assert balance["USDC"]["total"] == pytest.approx(server.call(server.paper.account_value), abs=1e-5)
        assert balance["USDC"]["used"] > 0
    finally:
        server.stop()


def test_ccxt_reads_the_funding_rates_the_paper_venue_applied_and_its_clock():
    server = InfoServer(paper_venue)
    try:
        def two_hours() -> None:
            for rate in (0.0001, -0.00025):  # one rate each hour
                server.paper.set_funding_rate("BTC", rate)
                server.clock.advance(3600)
                server.paper.poll()
        server.call(two_hours)
        exchange = client(server)
        exchange.load_markets()
        history = exchange.fetch_funding_rate_history("BTC/USDC:USDC", since=int(START * 1000))
        assert [(h["fundingRate"], h["timestamp"]) for h in history] == [
            (0.0001, int((START + 3600) * 1000)), (-0.00025, int((START + 7200) * 1000))]
        assert [h["fundingRate"] for h in exchange.fetch_funding_rate_history("ETH/USDC:USDC", since=int(START * 1000))] \
            == [0.0, 0.0]  # every market has its hourly record, charged or not
        paper_ms = int(server.clock.now() * 1000)
        assert exchange.fetch_time() == paper_ms
        assert exchange.fetch_status()["status"] == "ok"
        assert exchange.fetch_deposits(since=int(START * 1000)) == []  # the paper cash was set, never deposited
    finally:
        server.stop()
