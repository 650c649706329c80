"""`HyperliquidConnector`: the `engine.venues.connector.Connector` protocol on Hyperliquid (SPEC
section 8), mainnet or testnet, trading through an API (agent) wallet for the configured
account.

- Reads: httpx `/info` (metaAndAssetCtxs at start; clearinghouseState + frontendOpenOrders
  for every snapshot; orderStatus to find an order by its cloid).
- Actions: built with the official SDK's wire helpers and signed by `fast_signing` (byte-identical
  to the SDK's signatures) in `signer.ActionSigner`, in a worker thread; posted with httpx on
  the engine loop.
- Events: one websocket (`feed.Feed`): allMids, orderUpdates, userFills, userEvents, and
  activeAssetCtx for configured markets and held positions; translated by `stream`.

Idempotency: every order carries a cloid derived from its client_id and an `expiresAfter` a
few seconds ahead. When the venue may have taken an order without us hearing back (5xx, lost
connection), or `place` is called again with a client_id already sent, we ask `orderStatus`
by cloid before sending anything: a copy that landed is reported, not doubled; a copy that
did not is waited out to its expiry (after which it can never land) and only then sent again.

Venue-facing times (nonces, expiries, the dead-man deadline) are wall-clock, as the venue
checks them; event times come from the injected clock, as the engine reads them.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, AsyncIterator, Callable

from eth_account.signers.local import LocalAccount

from engine.domain.clock import Clock, SystemClock
from engine.venues.connector import (
    CancelAck, ConnectorError, EventHandler, FeedRestored, FeedStale, OrderAck, OrderRejected, OrderRequest,
    VenueEvent, VenueSnapshot,
)
from engine.venues.hyperliquid.budget import RateBudget, RateBudgetView
from engine.venues.hyperliquid.config import HyperliquidConfig
from engine.venues.hyperliquid.feed import PING_SECONDS, Feed
from engine.venues.hyperliquid.http import HttpTransport, NotProcessed, OutcomeUnknown, VenueUnavailable, backoff
from engine.venues.hyperliquid.parse import (
    OrderStatus, ack_from_response, ack_from_status, parse_asset_ctxs, parse_open_orders, parse_order_status,
)
from engine.venues.hyperliquid.signer import ActionSigner, cloid_for
from engine.venues.hyperliquid.stream import ORDERS_REMEMBERED, StreamTranslator
from engine.domain.increments import round_price, round_size
from engine.domain.coins import canonical_coin
from engine.domain.model import MarketInfo
from engine.venues.hyperliquid.snapshot import parse_clearinghouse_state, parse_meta

log = logging.getLogger("perpguard.hyperliquid")

ACTION_ATTEMPTS = 4
ORDER_TTL_SECONDS = 10.0  # an order copy not on the venue by then never will be
EXPIRY_MARGIN_SECONDS = 0.5  # clock skew allowance when waiting a copy out
CONNECT_WAIT_SECONDS = 5.0
MIN_DEAD_MAN_SECONDS = 5.0  # Hyperliquid refuses a scheduleCancel sooner than 5 s ahead


class HyperliquidConnector:
    """See the module docstring. Construct from a `HyperliquidConfig`; the agent key is read
    (and checked) at construction. `clock` stamps events (the engine's clock)."""

    revision = None  # the venue cannot say cheaply whether the account changed: the engine re-reads it

    def __init__(self, config: HyperliquidConfig, clock: Clock | None = None, *, agent: LocalAccount | None = None,
                 budget: RateBudget | None = None, ping_seconds: float = PING_SECONDS,
                 order_ttl_seconds: float = ORDER_TTL_SECONDS) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self._agent = agent if agent is not None else config.load_agent()
        self.budget = budget or RateBudget()
        self.order_ttl = order_ttl_seconds
        self._user = config.account_address
        self._http = HttpTransport(config.api_url, self.budget, config.request_timeout_seconds)
        self._handlers: list[EventHandler] = []
        self.stream = StreamTranslator(self._user, self.clock, self._emit)
        self.feed = Feed(config.ws_url, self.stream.handle, self._feed_stale, self._feed_restored,
                         config.stale_after_seconds, ping_seconds=ping_seconds)
        self._markets: dict[str, MarketInfo] = {}
        self._signer: ActionSigner | None = None
        # cloid -> wall-clock expiry of the latest copy whose fate is unknown (None: all known)
        self._sent: OrderedDict[str, float | None] = OrderedDict()
        self._placing: dict[str, tuple[asyncio.Lock, int]] = {}  # cloid -> (its lock, calls using it)
        self.dead_man_deadline: float | None = None  # epoch s, as last confirmed by the venue

    @property
    def agent_address(self) -> str:
        return self._agent.address

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the markets, prepare the signer, open the websocket (waits up to 5 s for it)."""
        await self._http.start()
        meta_and_ctxs = await self._http.info({"type": "metaAndAssetCtxs"})
        self._markets = parse_meta(meta_and_ctxs)
        unknown = [c for c in self.config.markets if c not in self._markets]
        if unknown:
            raise ConnectorError("UnknownAsset", f"markets not listed on Hyperliquid: {', '.join(unknown)}")
        marks, funding = parse_asset_ctxs(meta_and_ctxs)
        self.stream.markets = set(self._markets)
        now = self.clock.now()
        for coin, px in marks.items():
            self.stream.marks[coin], self.stream.mark_times[coin] = px, now
        self.stream.funding.update(funding)
        self._signer = await asyncio.to_thread(ActionSigner, self._agent, self._user, self.config.mainnet,
                                               meta_and_ctxs[0])
        for subscription in ({"type": "allMids"}, {"type": "orderUpdates", "user": self._user},
                             {"type": "userFills", "user": self._user}, {"type": "userEvents", "user": self._user}):
            await self.feed.add(subscription)
        for coin in self.config.markets:
            await self.feed.add({"type": "activeAssetCtx", "coin": coin})
        await self.feed.start()
        if not await self.feed.wait_connected(CONNECT_WAIT_SECONDS):
            log.warning("hyperliquid websocket not connected yet; the feed stays stale until it is")

    async def stop(self) -> None:
        await self.feed.stop()
        await self._http.close()

    async def meta(self) -> dict[str, MarketInfo]:
        return dict(self._markets)

    def subscribe(self, handler: EventHandler) -> Callable[[], None]:
        self._handlers.append(handler)
        return lambda: self._handlers.remove(handler) if handler in self._handlers else None

    def rate_budget(self) -> RateBudgetView:
        """The request-weight budget of this minute (1200 a minute per IP)."""
        return self.budget.view()

    def _emit(self, event: VenueEvent) -> None:
        for handler in list(self._handlers):
            handler(event)

    def _feed_stale(self, silent: float) -> None:
        now = self.clock.now()
        since = max(self.stream.mark_times.values(), default=now)
        self._emit(FeedStale(since, now, f"no market data from Hyperliquid for {silent:.1f} s"))

    def _feed_restored(self, events_lost: bool) -> None:
        self._emit(FeedRestored(self.clock.now(), events_lost))

    # ---- reading ---------------------------------------------------------------------------

    async def snapshot(self) -> VenueSnapshot:
        """Account, positions and open orders from the venue now; live marks (with their real
        times) and funding from the feed. A position's coin gets its mark and funding streamed."""
        state, rows = await asyncio.gather(self._http.info({"type": "clearinghouseState", "user": self._user}),
                                           self._http.info({"type": "frontendOpenOrders", "user": self._user}))
        venue = parse_clearinghouse_state(state)
        now = self.clock.now()
        open_orders = parse_open_orders(rows, self.stream.client_ids)
        self.stream.reconcile(open_orders)
        marks, times = dict(self.stream.marks), dict(self.stream.mark_times)
        for coin, px in venue.marks.items():  # positionValue / |szi|: the venue's mark, as of now
            if coin not in marks:
                marks[coin], times[coin] = px, now
        for position in venue.positions:
            await self.feed.add({"type": "activeAssetCtx", "coin": position.coin})
        return VenueSnapshot(replace(venue.account, time=now), venue.positions, open_orders, marks, now,
                             dict(self.stream.funding), times)

    # ---- orders ----------------------------------------------------------------------------

    async def place(self, order: OrderRequest) -> OrderAck:
        """Round to the market's increments (size down; price never more aggressive), sign with
        the order's cloid, send; never a second copy of a cloid that may have landed."""
        info = self._markets.get(order.coin)
        client_id = order.client_id or f"pg-{uuid.uuid4().hex[:20]}"
        if info is None or info.sz_decimals is None:
            return self._refused(order, client_id, "UnknownAsset", f"Unknown asset {order.coin}.")
        request = replace(order, size=round_size(order.size, info.sz_decimals), client_id=client_id,
                          limit_px=round_price(order.limit_px, info.sz_decimals, order.side))
        if request.size <= 0:
            return self._refused(request, client_id, "InvalidSize",
                                 f"Order has invalid size. ({order.size} is below the lot of {order.coin})")
        cloid = cloid_for(client_id)
        self.stream.expect(cloid, request)
        async with self._one_at_a_time(cloid):  # a concurrent retry waits, then finds this one
            return await self._place(request, cloid)

    async def _place(self, request: OrderRequest, cloid: str) -> OrderAck:
        client_id = request.client_id
        problem = ""
        for attempt in range(ACTION_ATTEMPTS):
            if attempt:
                await asyncio.sleep(backoff(attempt - 1))
            try:
                if cloid in self._sent:
                    landed = await self._landed(cloid)
                    if landed is not None:
                        ack = ack_from_status(request, landed)
                        self.stream.acknowledged(ack)
                        return ack
                response = await self._send_order(request, cloid)
            except (NotProcessed, OutcomeUnknown, VenueUnavailable) as exc:
                problem = str(exc)
                continue
            self._remember(cloid, None)
            ack = ack_from_response(request, response)
            if ack.ok:
                self.stream.acknowledged(ack)
            else:
                self._emit(OrderRejected(None, client_id, request.coin, ack.code, ack.error, self.clock.now()))
            return ack
        if self._sent.get(cloid) is not None:  # a copy may still land: its events will tell
            return OrderAck(None, client_id, "pending", remaining=float(request.size))
        return self._refused(request, client_id, "VenueUnavailable", f"Hyperliquid did not take the order: {problem}")

    @asynccontextmanager
    async def _one_at_a_time(self, cloid: str) -> AsyncIterator[None]:
        lock, users = self._placing.get(cloid, (asyncio.Lock(), 0))
        self._placing[cloid] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._placing[cloid]
            if users == 1:
                del self._placing[cloid]
            else:
                self._placing[cloid] = (lock, users - 1)

    async def _send_order(self, request: OrderRequest, cloid: str) -> Any:
        expires = time.time() + self.order_ttl
        payload = await asyncio.to_thread(self._signer.order, request, cloid, int(expires * 1000))
        try:
            return await self._http.exchange(payload, urgent=request.reduce_only)
        except OutcomeUnknown:
            self._remember(cloid, expires)
            raise

    async def _landed(self, cloid: str) -> OrderStatus | None:
        """The order with this cloid on the venue, or None once no copy of it can still land
        (waits out the latest copy whose fate is unknown)."""
        status = await self._order_status(cloid)
        expires = self._sent.get(cloid)
        if status is None and expires is not None:
            await asyncio.sleep(max(0.0, expires + EXPIRY_MARGIN_SECONDS - time.time()))
            status = await self._order_status(cloid)
            if status is None:
                self._sent[cloid] = None  # expired unseen: it never landed
        return status

    async def _order_status(self, cloid: str) -> OrderStatus | None:
        return parse_order_status(await self._http.info({"type": "orderStatus", "user": self._user, "oid": cloid}))

    def _remember(self, cloid: str, expires: float | None) -> None:
        previous = self._sent.get(cloid)
        self._sent[cloid] = max(previous, expires) if previous is not None and expires is not None else expires
        self._sent.move_to_end(cloid)
        if len(self._sent) > ORDERS_REMEMBERED:
            self._sent.popitem(last=False)

    def _refused(self, order: OrderRequest, client_id: str, code: str, message: str) -> OrderAck:
        self._emit(OrderRejected(None, client_id, order.coin, code, message, self.clock.now()))
        return OrderAck(None, client_id, "rejected", remaining=float(order.size), code=code, error=message)

    async def _act(self, sign: Callable[[], dict[str, Any]], urgent: bool = False) -> Any:
        """Sign and send a non-order action (idempotent: safe to sign again and resend)."""
        problem = ""
        for attempt in range(ACTION_ATTEMPTS):
            if attempt:
                await asyncio.sleep(backoff(attempt - 1))
            payload = await asyncio.to_thread(sign)
            try:
                return await self._http.exchange(payload, urgent)
            except (NotProcessed, OutcomeUnknown) as exc:
                problem = str(exc)
        raise VenueUnavailable(f"Hyperliquid did not take the action after {ACTION_ATTEMPTS} attempts; last: {problem}")

    async def cancel(self, coin: str, oid: str) -> CancelAck:
        coin = canonical_coin(coin)
        if coin not in self._markets or not oid.isdigit():
            return CancelAck(oid, False, f"no Hyperliquid order {oid} on {coin}")
        try:
            response = await self._act(lambda: self._signer.cancel([(coin, int(oid))]), urgent=True)
        except VenueUnavailable as exc:
            return CancelAck(oid, False, str(exc))
        result = _statuses(response)
        if result and result[0] == "success":
            return CancelAck(oid, True)
        return CancelAck(oid, False, _error_text(response, result))

    async def cancel_all(self) -> int:
        """Cancel every open order in one action; the number the venue cancelled. Never raises:
        a panic exit must go on to close positions even if this fails (it is logged)."""
        try:
            rows = await self._http.info({"type": "frontendOpenOrders", "user": self._user})
            orders = [(canonical_coin(r["coin"]), int(r["oid"])) for r in rows
                      if canonical_coin(r["coin"]) in self._markets]
            if not orders:
                return 0
            response = await self._act(lambda: self._signer.cancel(orders), urgent=True)
        except (VenueUnavailable, ValueError) as exc:
            log.error("cancel all failed: %s", exc)
            return 0
        return sum(1 for s in _statuses(response) if s == "success")

    async def set_leverage(self, coin: str, leverage: int, isolated: bool = False) -> None:
        coin = canonical_coin(coin)
        if coin not in self._markets:
            raise ConnectorError("UnknownAsset", f"Unknown asset {coin}.")
        try:
            response = await self._act(lambda: self._signer.update_leverage(coin, int(leverage), not isolated))
        except VenueUnavailable as exc:
            raise ConnectorError("VenueUnavailable", str(exc)) from None
        if response.get("status") != "ok":
            raise ConnectorError("InvalidLeverage", str(response.get("response")))

    async def arm_dead_man(self, seconds: float | None) -> None:
        """scheduleCancel at now + `seconds` (at least 5 s, Hyperliquid's floor); None or 0
        clears it. A venue that refuses or cannot be reached is logged, not raised: the
        previous deadline (`dead_man_deadline`) stands, which errs toward cancelling."""
        if seconds and seconds < MIN_DEAD_MAN_SECONDS:
            raise ConnectorError("InvalidDeadMan", f"the dead-man switch needs at least {MIN_DEAD_MAN_SECONDS:g} s")
        at = time.time() + seconds if seconds else None
        at_ms = int(at * 1000) if at is not None else None
        try:
            response = await self._act(lambda: self._signer.schedule_cancel(at_ms), urgent=True)
        except VenueUnavailable as exc:
            log.error("dead-man switch not %s: %s", "armed" if at else "cleared", exc)
            return
        if response.get("status") != "ok":
            log.error("dead-man switch refused by Hyperliquid: %s", response.get("response"))
            return
        self.dead_man_deadline = at


def _statuses(response: Any) -> list[Any]:
    """The per-item results of a batched action (cancels), [] when the action failed."""
    if isinstance(response, dict) and response.get("status") == "ok":
        return response["response"]["data"]["statuses"]
    return []


def _error_text(response: Any, statuses: list[Any]) -> str:
    if statuses and isinstance(statuses[0], dict) and "error" in statuses[0]:
        return statuses[0]["error"]
    return str(response.get("response") if isinstance(response, dict) else response)
