"""A paper venue with Hyperliquid's API on it, and the trading its tests read back
(`test_paper_hl_info.py` in process, `test_paper_hl_info_clients.py` over HTTP)."""

from __future__ import annotations

import math
import time

from engine.domain.clock import ManualClock
from engine.venues.connector import OrderRequest, Trigger
from engine.venues.paper.exchange import PaperExchange
from engine.venues.paper.hl_info import PaperVenueApi
from engine.venues.paper.universe import PAPER_MARKETS, START_PRICES

ADDRESS = "0x" + "ab" * 20
STRANGER = "0x" + "cd" * 20
CLOID = "0x" + "0123456789abcdef" * 2
START = math.floor(time.time() / 3600) * 3600 - 3600.0  # an hour boundary 1-2 h ago: ccxt asks up to now


def paper_venue(account_mode: str = "standard") -> tuple[PaperExchange, PaperVenueApi, ManualClock]:
    clock = ManualClock(START)
    paper = PaperExchange(PAPER_MARKETS, clock=clock, account_address=ADDRESS, account_mode=account_mode)
    for coin, px in START_PRICES.items():
        paper.set_mark(coin, px)
    return paper, PaperVenueApi(paper), clock


async def trade(paper: PaperExchange, clock: ManualClock) -> None:
    """What the tests read back: a BTC long (0.5 at 65032.5: mark 65000 + 5 bp), an ETH short
    (2 at 3198.4), a resting BTC bid with a cloid, a BTC stop below, and four minutes of BTC marks."""
    assert (await paper.place(OrderRequest("BTC", "buy", "0.5", "66000", "Ioc"))).status == "filled"
    assert (await paper.place(OrderRequest("ETH", "sell", "2", "3100", "Ioc"))).status == "filled"
    assert (await paper.place(OrderRequest("BTC", "buy", "0.2", "60000", "Gtc", client_id=CLOID))).status == "resting"
    stop = OrderRequest("BTC", "sell", "0.5", "57000", "Gtc", True, trigger=Trigger("58000", "sl", True))
    assert (await paper.place(stop)).status == "resting"
    for minute, pxs in enumerate([(65000, 65400, 64800, 65100), (65100, 65900, 65050, 65800),
                                  (65800, 65850, 65200, 65300), (65300, 65300, 65300, 65300)], start=1):
        clock.set(START + minute * 60)
        for i, px in enumerate(pxs):
            clock.set(START + minute * 60 + i * 10)
            paper.set_mark("BTC", float(px))

