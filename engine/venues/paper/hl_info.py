"""`PaperVenueApi`: the paper exchange behind the Hyperliquid-compatible API (`/hl/info`,
`/hl/ws`), implementing `engine.venues.hl_api.VenueApi` so the official SDK and ccxt run against
paper unmodified.

`info(body)` answers, in the venue's shapes (string-encoded numbers, int oids, ms times):
market data `meta`, `allPerpMetas` (`[meta]`: the native dex alone), `spotMeta`, `metaAndAssetCtxs`,
`spotMetaAndAssetCtxs`, `perpDexs` (`[null]`: no builder dexes on paper), `allMids`, `l2Book` (synthetic, see `MarketAnswers.l2_book`),
`candleSnapshot` (from the marks seen, see `engine.venues.paper.candles`), `fundingHistory`,
`exchangeStatus` (ccxt's fetch_status and fetch_time); user data `clearinghouseState`,
`spotClearinghouseState`, `openOrders`, `frontendOpenOrders`, `orderStatus` (oid or cloid),
`historicalOrders`, `userFills`, `userFillsByTime`, `userFunding`, `userNonFundingLedgerUpdates`
(`[]`: the paper account's cash was set, not deposited; nothing moves in or out), `userRateLimit`,
`userFees`, `userRole`, `userAbstraction`, `extraAgents` (`[]`: no API wallets on paper; the
gateway answers it with the registered bots),
`maxBuilderFee` (0). User-scoped types answer for `paper.account_address` (the
gateway maps a bot's address to it first); any other address is an empty account (`userRole`:
`missing`). A `dex` other than the first (`""` or absent) is unknown: null, as the venue
answers an unknown dex.

A body the venue could not read raises `InfoRefused(422, ...)` with the venue's text (axum's
`Failed to deserialize the JSON body into the target type: ...` with serde's reason: `missing
field`, `unknown variant`, `invalid type`). A type the paper venue does not answer is refused
the same way, naming the types it answers.

`subscribe(subscription, send)` serves the market channels (see
`engine.venues.paper.channels`); a subscription the venue would not parse raises
`InfoRefused(400, "Error parsing JSON into valid websocket request: ...")`, the text the venue
sends on its `error` channel.

Wiring: `PaperVenueApi(paper)` hooks itself into the exchange (a mark listener feeding the
candles and the channels, a fill listener); `close()` unhooks it. Everything runs on the
engine's loop, as the exchange does.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from engine.venues.hl_api import MARKET_CHANNELS, InfoRefused, Send
from engine.venues.paper.candles import INTERVALS, CandleBook
from engine.venues.paper.channels import MarketChannels
from engine.venues.paper.exchange import PaperExchange
from engine.venues.paper.hl_account import AccountAnswers
from engine.venues.paper.hl_market import MarketAnswers
from engine.venues.paper.history import PaperFill
from engine.venues.hl_wire import is_cloid, ms as wire_ms

DESERIALIZE = "Failed to deserialize the JSON body into the target type: "
BAD_SUBSCRIPTION = "Error parsing JSON into valid websocket request: "
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")

MARKET_TYPES = ("meta", "allPerpMetas", "spotMeta", "metaAndAssetCtxs", "spotMetaAndAssetCtxs", "perpDexs",
                "allMids", "l2Book", "candleSnapshot", "fundingHistory", "exchangeStatus")
USER_TYPES = ("clearinghouseState", "spotClearinghouseState", "openOrders", "frontendOpenOrders", "orderStatus",
              "historicalOrders", "userFills", "userFillsByTime", "userFunding", "userNonFundingLedgerUpdates",
              "userRateLimit", "userFees", "userRole", "userAbstraction", "extraAgents", "maxBuilderFee")
INFO_TYPES = MARKET_TYPES + USER_TYPES


class _Body:
    """Reads one request's fields the way serde would, refusing with its words."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.column = len(json.dumps(body, separators=(",", ":")))

    def refuse(self, reason: str) -> InfoRefused:
        return InfoRefused(422, f"{DESERIALIZE}{reason} at line 1 column {self.column}")

    def field(self, name: str, source: dict[str, Any] | None = None) -> Any:
        source = self.body if source is None else source
        if name not in source or source[name] is None:
            raise self.refuse(f"missing field `{name}`")
        return source[name]

    def text(self, name: str, source: dict[str, Any] | None = None) -> str:
        value = self.field(name, source)
        if not isinstance(value, str):
            raise self.refuse(f"invalid type: {_kind(value)}, expected a string")
        return value

    def integer(self, name: str, source: dict[str, Any] | None = None, *, required: bool = True) -> int | None:
        source = self.body if source is None else source
        if not required and source.get(name) is None:
            return None
        value = self.field(name, source)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.refuse(f"invalid type: {_kind(value)}, expected u64")
        return value

    def user(self) -> str:
        value = self.text("user")
        if not _ADDRESS.match(value):
            raise self.refuse(f'invalid value: string "{value}", expected a 0x-prefixed address of 40 hex digits')
        return value.lower()

    def dex(self) -> str:
        value = self.body.get("dex")
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.refuse(f"invalid type: {_kind(value)}, expected a string")
        return value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f'string "{value}"'
    if isinstance(value, list):
        return "sequence"
    return "map" if isinstance(value, dict) else "null"


class PaperVenueApi:
    """See the module docstring. `paper`: the node's PaperExchange."""

    def __init__(self, paper: PaperExchange) -> None:
        self.paper = paper
        self.candles = CandleBook()
        self.market = MarketAnswers(paper, self.candles)
        self.account = AccountAnswers(paper)
        self.channels = MarketChannels(self.market, self.candles, paper.account_address)
        for coin, px in paper.ledger.marks.items():  # the candles start from the marks the venue has now
            self.candles.on_mark(coin, px, paper.mark_times.get(coin, paper.clock.now()))
        paper.mark_listeners.append(self._on_mark)
        paper.history.fill_listeners.append(self._on_fill)

    # ---- VenueApi ------------------------------------------------------------------------------

    async def info(self, body: dict[str, Any]) -> Any:
        if not isinstance(body, dict):
            raise InfoRefused(422, f"{DESERIALIZE}invalid type: {_kind(body)}, expected internally tagged enum "
                                   "InfoRequest at line 1 column 1")
        req = _Body(body)
        kind = req.text("type")
        if kind not in INFO_TYPES:
            expected = ", ".join(f"`{t}`" for t in INFO_TYPES)
            raise req.refuse(f"unknown variant `{kind}`, expected one of {expected}")
        if kind in MARKET_TYPES:
            return self._market(kind, req)
        return self._user(kind, req)

    def subscribe(self, subscription: dict[str, Any], send: Send) -> Callable[[], None]:
        def refused() -> InfoRefused:
            frame = json.dumps({"method": "subscribe", "subscription": subscription}, separators=(",", ":"))
            return InfoRefused(400, BAD_SUBSCRIPTION + frame)

        if not isinstance(subscription, dict) or subscription.get("type") not in MARKET_CHANNELS:
            raise refused()
        kind = subscription["type"]
        coin, interval = subscription.get("coin"), subscription.get("interval")
        if kind == "allMids":
            if subscription.get("dex") not in (None, ""):
                raise refused()
            return self.channels.open(kind, None, None, send)
        if not isinstance(coin, str) or coin not in self.paper.markets:
            raise refused()
        if kind == "candle" and interval not in INTERVALS:
            raise refused()
        return self.channels.open(kind, coin, interval, send)

    async def close(self) -> None:
        self.channels.close()
        if self._on_mark in self.paper.mark_listeners:
            self.paper.mark_listeners.remove(self._on_mark)
        if self._on_fill in self.paper.history.fill_listeners:
            self.paper.history.fill_listeners.remove(self._on_fill)

    # ---- answers -------------------------------------------------------------------------------

    def _market(self, kind: str, req: _Body) -> Any:
        market = self.market
        if kind in ("meta", "metaAndAssetCtxs", "allMids") and req.dex() != "":
            return None
        if kind == "meta":
            return market.meta()
        if kind == "allPerpMetas":  # one meta per perp dex, the native one first: paper has only that one
            return [market.meta()]
        if kind == "metaAndAssetCtxs":
            return [market.meta(), market.asset_ctxs()]
        if kind == "spotMeta":
            return market.spot_meta()
        if kind == "spotMetaAndAssetCtxs":
            return [market.spot_meta(), []]
        if kind == "perpDexs":
            return [None]
        if kind == "allMids":
            return market.all_mids()
        if kind == "l2Book":
            return market.l2_book(req.text("coin"))
        if kind == "exchangeStatus":
            return market.exchange_status()
        if kind == "fundingHistory":
            coin, start = req.text("coin"), req.integer("startTime")
            end = req.integer("endTime", required=False)
            return market.funding_history(coin, start or 0, end if end is not None else wire_ms(self.paper.clock.now()))
        spec = req.field("req")
        if not isinstance(spec, dict):
            raise req.refuse(f"invalid type: {_kind(spec)}, expected struct CandleSnapshotReq")
        coin, interval = req.text("coin", spec), req.text("interval", spec)
        if interval not in INTERVALS:
            expected = ", ".join(f"`{i}`" for i in INTERVALS)
            raise req.refuse(f"unknown variant `{interval}`, expected one of {expected}")
        start = req.integer("startTime", spec)
        end = req.integer("endTime", spec, required=False)
        now = int(self.paper.clock.now() * 1000)
        return market.candle_snapshot(coin, interval, start or 0, end if end is not None else now)

    def _user(self, kind: str, req: _Body) -> Any:
        account = self.account
        user = req.user()
        if kind in ("clearinghouseState", "openOrders", "frontendOpenOrders") and req.dex() != "":
            return None if kind == "clearinghouseState" else []
        if kind == "clearinghouseState":
            return account.clearinghouse_state(user)
        if kind == "spotClearinghouseState":
            return account.spot_clearinghouse_state(user)
        if kind in ("openOrders", "frontendOpenOrders"):
            return account.open_orders(user, frontend=kind == "frontendOpenOrders")
        if kind == "orderStatus":
            oid = req.field("oid")
            if isinstance(oid, str):
                if not is_cloid(oid):
                    raise req.refuse(f'invalid value: string "{oid}", expected an oid (u64) or a cloid (0x + 32 hex)')
                return account.order_status(user, oid.lower())
            return account.order_status(user, req.integer("oid"))  # type: ignore[arg-type]
        if kind == "historicalOrders":
            return account.historical_orders(user)
        if kind == "userFills":
            return account.fills(user)
        if kind == "userFillsByTime":
            return account.fills(user, req.integer("startTime"), req.integer("endTime", required=False))
        if kind == "userFunding":
            return account.funding(user, req.integer("startTime"), req.integer("endTime", required=False))  # type: ignore[arg-type]
        if kind == "userNonFundingLedgerUpdates":
            req.integer("startTime")
            return []
        if kind == "userRateLimit":
            return account.rate_limit(user)
        if kind == "userFees":
            return account.fees(user)
        if kind == "userRole":
            return {"role": "user"} if user == account.address else {"role": "missing"}
        if kind == "userAbstraction":
            return account.abstraction(user)
        if kind == "extraAgents":
            return []
        req.text("builder")  # maxBuilderFee: nothing is approved on paper
        return 0

    # ---- fed by the exchange ---------------------------------------------------------------------

    def _on_mark(self, coin: str, px: float, at: float) -> None:
        self.candles.on_mark(coin, px, at)
        if self.channels.watching_marks:
            self.channels.on_mark(coin)

    def _on_fill(self, fill: PaperFill) -> None:
        self.candles.on_fill(fill)
        self.channels.on_fill(fill)
