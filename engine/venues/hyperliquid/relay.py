"""`HyperliquidRelay`: the `VenueApi` of Hyperliquid itself, for `/hl/info` and `/hl/ws`. Bots
behind perpguard share one IP, and the venue counts request weight per IP (1200 a minute, docs
"Rate limits and user limits"): several bots each polling the same book or meta hit 429 (the
pain of passivbot PR #567). So:

- `info(body)` POSTs the body to the venue's `/info` and answers what it answers, through a
  short-lived cache shared by every caller and keyed by the body (fields in any order, hex in any
  case). Identical requests in flight at the same moment make ONE request (single flight).
  Lifetimes (`info_ttl`): `l2Book` / `allMids` 0.5 s, `meta` / `spotMeta` / `perpDexs` 60 s,
  other market reads 1 s. A request about a user (a `user` field: clearinghouseState,
  openOrders, orderStatus, userFills...) is never cached nor joined: a bot that just placed an
  order must see it, and an answer already in flight may predate it.
- The venue's refusals come back as `InfoRefused(status, text)` with its status and body text
  (its 429 also pauses bots' reads for its Retry-After, 1 s without one); a 5xx or a network
  failure is retried twice with backoff (a read is safe to repeat), then answered 503. Refusals
  are never cached.
- With the connector's `RateBudget` (`budget=`), each request to the venue spends its weight
  (`budget.info_weight`). Bots' reads never eat into the part of the minute kept for the
  engine's own orders, cancels and account reads (`engine_reserve` plus the budget's urgent
  reserve): a read that does not fit is answered 429 at once, as the venue would answer it,
  rather than held (a bot's client backs off on 429; a held request would only time out).
- `subscribe(subscription, send)`: the market channels, relayed over shared upstream websockets
  (`relay_channels.ChannelRelay`).

The node builds it for a HyperliquidConnector as
`HyperliquidRelay.for_config(connector.config, budget=connector.budget)` and closes it with
`close()` when it stops.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import OrderedDict
from typing import Any, Callable

import httpx

from engine.venues.hl_api import InfoRefused, Send
from engine.venues.hyperliquid.budget import RateBudget, info_weight
from engine.venues.hyperliquid.config import HyperliquidConfig
from engine.venues.hyperliquid.feed import PING_SECONDS
from engine.venues.hyperliquid.http import backoff
from engine.venues.hyperliquid.relay_channels import ChannelRelay

FAST_TTL_SECONDS = 0.5  # the venue pushes books and mids about every 0.5 s
MARKET_TTL_SECONDS = 1.0
STATIC_TTL_SECONDS = 60.0  # listings change rarely; a new listing is seen within a minute
FAST_TYPES = frozenset({"l2Book", "allMids"})
STATIC_TYPES = frozenset({"meta", "spotMeta", "perpDexs"})
ENGINE_RESERVE = 240  # weight a minute bots' reads may not spend (20%), beside the urgent reserve
INFO_ATTEMPTS = 3
CACHE_ENTRIES = 512
# What the venue answers, with 422, to a body it cannot read.
UNREADABLE = "Failed to deserialize the JSON body into the target type"


def info_ttl(body: dict[str, Any]) -> float:
    """Seconds an answer to `body` may be reused; 0: never cached nor shared."""
    if "user" in body:
        return 0.0
    kind = body.get("type")
    if kind in STATIC_TYPES:
        return STATIC_TTL_SECONDS
    if kind in FAST_TYPES:
        return FAST_TTL_SECONDS
    return MARKET_TTL_SECONDS


def _lower_hex(value: Any) -> Any:
    if isinstance(value, str) and value[:2] in ("0x", "0X"):
        return value.lower()
    if isinstance(value, dict):
        return {k: _lower_hex(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_hex(v) for v in value]
    return value


def cache_key(body: dict[str, Any]) -> str:
    """The canonical body: fields sorted, hex strings (addresses) lower case, as the venue reads them."""
    return json.dumps(_lower_hex(body), sort_keys=True, separators=(",", ":"))


class HyperliquidRelay:
    """`VenueApi` over Hyperliquid: `api_url` (its HTTP API, `/info` beneath it) and `ws_url`
    (its websocket). `budget`: the connector's request-weight budget, shared so bots and the
    engine draw on one IP allowance (None: not tracked). `monotonic`: the clock of the cache."""

    def __init__(self, api_url: str, ws_url: str, *, budget: RateBudget | None = None, timeout: float = 10.0,
                 engine_reserve: int = ENGINE_RESERVE, ping_seconds: float = PING_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic, rng: Callable[[], float] = random.random) -> None:
        self.api_url = api_url.rstrip("/")
        self.budget = budget
        self.timeout = timeout
        self.engine_reserve = engine_reserve
        self.channels = ChannelRelay(ws_url, ping_seconds=ping_seconds, rng=rng)
        self.requests_sent = 0  # requests that went to the venue
        self._now = monotonic
        self._rng = rng
        self._client: httpx.AsyncClient | None = None
        self._cache: OrderedDict[str, tuple[float, str]] = OrderedDict()  # key -> (expires, answer text)
        self._flights: dict[str, asyncio.Future[str]] = {}

    @classmethod
    def for_config(cls, config: HyperliquidConfig, *, budget: RateBudget | None = None, **kw: Any) -> HyperliquidRelay:
        """The relay for the connector's venue (its `api_url`, `ws_url` and request timeout)."""
        return cls(config.api_url, config.ws_url, budget=budget, timeout=config.request_timeout_seconds, **kw)

    # ---- /info ------------------------------------------------------------------------------

    async def info(self, body: dict[str, Any]) -> Any:
        """The venue's answer to `body`, parsed (a fresh copy for each caller). Raises InfoRefused
        with the venue's status and text, 429 when the budget cannot afford it now, 503 when the
        venue cannot be reached."""
        if not isinstance(body, dict):
            raise InfoRefused(422, UNREADABLE)
        ttl = info_ttl(body)
        if ttl <= 0:
            return json.loads(await self._fetch(body))
        key = cache_key(body)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > self._now():
            return json.loads(cached[1])
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._fill(key, body, ttl))
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._landed(key, done))
        # shielded: a caller that goes away does not cancel the answer the others wait for
        return json.loads(await asyncio.shield(flight))

    def _landed(self, key: str, flight: asyncio.Future[str]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled():
            flight.exception()  # seen: a refusal nobody waited for is not logged as lost

    async def _fill(self, key: str, body: dict[str, Any], ttl: float) -> str:
        sent = self._now()
        text = await self._fetch(body)
        self._cache[key] = (sent + ttl, text)  # as old as the moment it was asked
        self._cache.move_to_end(key)
        if len(self._cache) > CACHE_ENTRIES:
            now = self._now()
            for stale in [k for k, (expires, _) in self._cache.items() if expires <= now]:
                del self._cache[stale]
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return text

    async def _fetch(self, body: dict[str, Any]) -> str:
        """POST /info once (retried on a 5xx or a network failure); the answer's text."""
        weight = info_weight(str(body.get("type")))
        problem = ""
        for attempt in range(INFO_ATTEMPTS):
            if attempt:
                await asyncio.sleep(backoff(attempt - 1, self._rng))
            self._spend(weight)
            try:
                self.requests_sent += 1
                response = await self._http().post("/info", json=body)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code == 429:
                if self.budget is not None:
                    self.budget.pause(_retry_after(response))
                raise InfoRefused(429, response.text)
            if response.status_code >= 500:
                problem = f"{response.status_code} {response.text[:200]}"
                continue
            if response.status_code >= 400:
                raise InfoRefused(response.status_code, response.text)
            try:
                json.loads(response.text)
            except ValueError:
                raise InfoRefused(502, f"perpguard: Hyperliquid answered info {body.get('type')} with "
                                       f"something that is not JSON: {response.text[:200]}") from None
            return response.text
        raise InfoRefused(503, f"perpguard: Hyperliquid did not answer info {body.get('type')} "
                               f"({INFO_ATTEMPTS} attempts; last: {problem}); retry")

    def _spend(self, weight: int) -> None:
        """Spend `weight` of the IP budget, or refuse with 429 (nothing spent)."""
        budget = self.budget
        if budget is None:
            return
        view = budget.view()
        if view.paused_seconds > 0:
            raise InfoRefused(429, f"perpguard: Hyperliquid rate-limited this IP; retry in {view.paused_seconds:.1f} s")
        kept = view.urgent_reserve + self.engine_reserve
        if view.remaining - weight < kept or budget.try_spend(weight) > 0:
            raise InfoRefused(429, f"perpguard: this IP's Hyperliquid request budget is spent for now "
                                   f"({view.remaining} of {view.limit} weight left this minute, {kept} kept for "
                                   f"the engine's own orders and reads; this request weighs {weight}); retry shortly")

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self.api_url, timeout=self.timeout)
        return self._client

    # ---- websocket ----------------------------------------------------------------------------

    def subscribe(self, subscription: dict[str, Any], send: Send) -> Callable[[], None]:
        """A market channel relayed from the venue (see `relay_channels`)."""
        return self.channels.subscribe(subscription, send)

    async def close(self) -> None:
        for flight in list(self._flights.values()):
            flight.cancel()
        await self.channels.close()
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return 1.0
