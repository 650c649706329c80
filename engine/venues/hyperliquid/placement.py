"""Orders sent to Hyperliquid, idempotent by cloid (SPEC section 8).

Every order carries a cloid derived from its client_id and an `expiresAfter` a few seconds
ahead (`order_ttl`). When the venue may have taken an order without us hearing back (5xx, lost
connection), or `place` is called again with a client_id already sent, we ask `orderStatus` by
cloid before sending anything: a copy that landed is reported, not doubled; a copy that did not
is waited out to its expiry (after which it can never land) and only then sent again. Calls for
one cloid take turns (`_one_at_a_time`): a concurrent retry waits, then finds the first.

Trigger orders (stop-loss / take-profit): `place` sends one alone (grouping `na`); `place_group`
sends several in one action (`normalTpsl`: an entry and its TP/SL children, which wait for the
entry to fill; `positionTpsl`: stops that close the whole position), idempotent by the orders'
cloids the same way. Their prices are rounded as `prepare.rounded` says.

Expiries are wall-clock, as the venue checks them; event times come from the injected clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from typing import Any, AsyncIterator, Mapping

from engine.domain.clock import Clock
from engine.domain.model import MarketInfo
from engine.venues.connector import EventHandler, Grouping, OrderAck, OrderRejected, OrderRequest
from engine.venues.hyperliquid.actions import ACTION_ATTEMPTS, ActionSender
from engine.venues.hyperliquid.budget import AddressRefused
from engine.venues.hyperliquid.http import HttpTransport, NotProcessed, OutcomeUnknown, VenueUnavailable, backoff
from engine.venues.hyperliquid.parse import is_rejected as is_rejected_status
from engine.venues.hyperliquid.parse import (
    OrderStatus, ack_from_response, ack_from_status, acks_from_response, fills_of, parse_order_status,
)
from engine.venues.hyperliquid.prepare import prepare
from engine.venues.hyperliquid.signer import cloid_for
from engine.venues.hyperliquid.stream import ORDERS_REMEMBERED, StreamTranslator

log = logging.getLogger("perpguard.hyperliquid")

ORDER_TTL_SECONDS = 10.0  # an order copy not on the venue by then never will be
EXPIRY_MARGIN_SECONDS = 0.5  # clock skew allowance when waiting a copy out


class OrderPlacement:
    """Places orders on `markets` (filled in by the connector at start) for `user`: signed by
    `actions.signer`, within its address budget, posted over `http`. The stream is told what to
    expect and what was acknowledged; rejections are handed to `emit`, stamped by `clock`."""

    def __init__(self, http: HttpTransport, actions: ActionSender, stream: StreamTranslator,
                 markets: Mapping[str, MarketInfo], user: str, clock: Clock, emit: EventHandler,
                 order_ttl: float = ORDER_TTL_SECONDS) -> None:
        self._http = http
        self._actions = actions
        self._stream = stream
        self._markets = markets
        self._user = user
        self._clock = clock
        self._emit = emit
        self.order_ttl = order_ttl
        # cloid -> wall-clock expiry of the latest copy whose fate is unknown (None: all known)
        self._sent: OrderedDict[str, float | None] = OrderedDict()
        self._placing: dict[str, tuple[asyncio.Lock, int]] = {}  # cloid -> (its lock, calls using it)

    async def place(self, order: OrderRequest) -> OrderAck:
        """Round to the market's increments (size down; price never more aggressive; a trigger
        order's prices as `prepare.rounded` says), sign with the order's cloid, send (grouping `na`);
        never a second copy of a cloid that may have landed."""
        prepared = prepare(order, self._markets, "na")
        if isinstance(prepared, OrderAck):
            self._emit(OrderRejected(None, prepared.client_id, order.coin, prepared.code, prepared.error,
                                     self._clock.now()))
            return prepared
        request = prepared
        cloid = cloid_for(request.client_id)
        self._stream.expect(cloid, request)
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
                        ack = ack_from_status(request, await self._with_fills(landed))
                        self._stream.acknowledged(ack)
                        return ack
                response = await self._send_order(request, cloid)
            except AddressRefused as exc:
                return self._refused(request, client_id, "RateLimited", str(exc))
            except (NotProcessed, OutcomeUnknown, VenueUnavailable) as exc:
                problem = str(exc)
                continue
            self._remember(cloid, None)
            self._actions.note_refusal(response)
            ack = ack_from_response(request, response)
            if ack.ok:
                self._stream.acknowledged(ack)
            else:
                self._emit(OrderRejected(None, client_id, request.coin, ack.code, ack.error, self._clock.now()))
            return ack
        if self._sent.get(cloid) is not None:  # a copy may still land: its events will tell
            return OrderAck(None, client_id, "pending", remaining=float(request.size))
        return self._refused(request, client_id, "VenueUnavailable", f"Hyperliquid did not take the order: {problem}")

    async def place_group(self, orders: list[OrderRequest], grouping: Grouping) -> list[OrderAck]:
        """Several orders in one signed action with this `grouping` (`normalTpsl`: the entry
        first, then its reduce-only TP/SL triggers; `positionTpsl`: position stops), one answer
        each, in order: `resting` for an order on the book, a trigger waiting for its price or a
        child waiting for its entry (`waitingForFill`; its oid is looked up by cloid), `filled` /
        `partially_filled` for an entry that traded, `rejected` with the venue's per-order code
        and text.

        Nothing is sent when any order cannot be (an unknown market, a size below the lot, a
        client_id twice): an entry must never go out without its stop. Idempotent by the
        orders' cloids as `place` is: after an unknown outcome (or a call again with client_ids
        already sent) each cloid is asked of `orderStatus` first; if any of them is on the venue
        the action landed and the answers come from there, else the copy is waited out to its
        expiry and only then sent again: never a second copy of the group blind."""
        if grouping not in ("na", "normalTpsl", "positionTpsl"):
            raise ValueError(f"grouping must be na, normalTpsl or positionTpsl, not {grouping!r}")
        if not orders:
            return []
        prepared = [prepare(order, self._markets, grouping) for order in orders]
        cloids = [cloid_for(p.client_id) if isinstance(p, OrderRequest) else None for p in prepared]
        twice = {c for c in cloids if c is not None and cloids.count(c) > 1}
        bad = next((i for i, p in enumerate(prepared) if isinstance(p, OrderAck) or cloids[i] in twice), None)
        if bad is not None:
            acks = []
            for i, (order, p) in enumerate(zip(orders, prepared)):
                client_id = p.client_id
                if isinstance(p, OrderAck):
                    ack = p
                elif cloids[i] in twice:
                    ack = OrderAck(None, client_id, "rejected", remaining=float(p.size), code="DuplicateClientId",
                                   error=f"client_id {client_id} is twice in the group: not sent")
                else:
                    reason = prepared[bad].error if isinstance(prepared[bad], OrderAck) else "a client_id twice"
                    ack = OrderAck(None, client_id, "rejected", remaining=float(p.size), code="GroupNotSent",
                                   error=f"not sent: order {bad} of the group was refused ({reason})")
                self._emit(OrderRejected(None, client_id, order.coin, ack.code, ack.error, self._clock.now()))
                acks.append(ack)
            return acks
        requests: list[OrderRequest] = prepared  # type: ignore[assignment]
        for request, cloid in zip(requests, cloids):
            self._stream.expect(cloid, request)
        async with AsyncExitStack() as stack:
            for cloid in sorted(set(cloids)):  # one lock order: two overlapping groups never deadlock
                await stack.enter_async_context(self._one_at_a_time(cloid))
            return await self._place_group(requests, cloids, grouping)

    async def _place_group(self, requests: list[OrderRequest], cloids: list[str], grouping: Grouping) -> list[OrderAck]:
        problem = ""
        for attempt in range(ACTION_ATTEMPTS):
            if attempt:
                await asyncio.sleep(backoff(attempt - 1))
            try:
                if any(cloid in self._sent for cloid in cloids):
                    landed = await self._group_landed(cloids)
                    if landed is not None:
                        return await self._acks_from_statuses(requests, landed)
                response = await self._send_group(requests, cloids, grouping)
            except AddressRefused as exc:
                return [self._refused(r, r.client_id, "RateLimited", str(exc)) for r in requests]
            except (NotProcessed, OutcomeUnknown, VenueUnavailable) as exc:
                problem = str(exc)
                continue
            for cloid in cloids:
                self._remember(cloid, None)
            self._actions.note_refusal(response)
            acks = acks_from_response(requests, response)
            acks = [await self._with_oid(ack, cloid) for ack, cloid in zip(acks, cloids)]
            for request, ack in zip(requests, acks):
                if ack.ok:
                    self._stream.acknowledged(ack)
                else:
                    self._emit(OrderRejected(None, ack.client_id, request.coin, ack.code, ack.error, self._clock.now()))
            return acks
        if any(self._sent.get(cloid) is not None for cloid in cloids):  # a copy may still land
            return [OrderAck(None, r.client_id, "pending", remaining=float(r.size)) for r in requests]
        return [self._refused(r, r.client_id, "VenueUnavailable", f"Hyperliquid did not take the orders: {problem}")
                for r in requests]

    async def _send_group(self, requests: list[OrderRequest], cloids: list[str], grouping: Grouping) -> Any:
        urgent = all(r.reduce_only for r in requests)  # stops for a position already held
        await self._actions.admit(len(requests), urgent)  # raises AddressRefused: never sent
        expires = time.time() + self.order_ttl
        payload = self._actions.signer.orders(list(zip(requests, cloids)), grouping, int(expires * 1000))
        try:
            return await self._http.exchange(payload, urgent=urgent)
        except OutcomeUnknown:
            for cloid in cloids:
                self._remember(cloid, expires)
            raise

    async def _group_landed(self, cloids: list[str]) -> list[OrderStatus | None] | None:
        """Each order of a group on the venue (None: not there), or None when no copy of the
        group landed and none can any more. One action lands whole or not at all, so any order
        found means it landed (an order missing then was refused by the venue)."""
        statuses = [await self._order_status(cloid) for cloid in cloids]
        if any(s is not None for s in statuses):
            return statuses
        expires = max((self._sent.get(cloid) or 0.0 for cloid in cloids), default=0.0)
        if expires:
            await asyncio.sleep(max(0.0, expires + EXPIRY_MARGIN_SECONDS - time.time()))
            statuses = [await self._order_status(cloid) for cloid in cloids]
            if any(s is not None for s in statuses):
                return statuses
        for cloid in cloids:
            if cloid in self._sent:
                self._sent[cloid] = None  # expired unseen: it never landed
        return None

    async def _acks_from_statuses(self, requests: list[OrderRequest], statuses: list[OrderStatus | None]) -> list[OrderAck]:
        acks = []
        for request, status in zip(requests, statuses):
            if status is None:
                ack = OrderAck(None, request.client_id, "rejected", remaining=float(request.size), code="VenueRejected",
                               error="the group landed without this order: the venue refused it (its answer was lost)")
            else:
                ack = ack_from_status(request, await self._with_fills(status))
                self._stream.acknowledged(ack)
            acks.append(ack)
        return acks

    async def _with_oid(self, ack: OrderAck, cloid: str) -> OrderAck:
        """A child answered `waitingForFill` has no oid in the answer: ask `orderStatus` by cloid."""
        if not ack.ok or ack.oid is not None:
            return ack
        try:
            status = await self._order_status(cloid)
        except (VenueUnavailable, ValueError) as exc:
            log.warning("could not read the oid of order %s: %s", cloid, exc)
            return ack
        return replace(ack, oid=status.oid) if status is not None else ack

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
        urgent = request.reduce_only
        await self._actions.admit(1, urgent)  # raises AddressRefused: never sent
        expires = time.time() + self.order_ttl
        payload = self._actions.signer.order(request, cloid, int(expires * 1000))
        try:
            return await self._http.exchange(payload, urgent=urgent)
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

    async def _with_fills(self, status: OrderStatus) -> OrderStatus:
        """The order's filled size and price from its fills: the stream's, else `userFills`
        (orderStatus' sizes cannot say what filled)."""
        if is_rejected_status(status.status):
            return status
        size, avg = self._stream.filled(status.oid)
        if size == 0:
            try:
                size, avg = fills_of(await self._http.info({"type": "userFills", "user": self._user}), status.oid)
            except (VenueUnavailable, ValueError) as exc:
                log.warning("could not read the fills of order %s: %s", status.oid, exc)
        return replace(status, filled=size or None, avg_px=avg)

    async def _order_status(self, cloid: str) -> OrderStatus | None:
        return parse_order_status(await self._http.info({"type": "orderStatus", "user": self._user, "oid": cloid}))

    def _remember(self, cloid: str, expires: float | None) -> None:
        previous = self._sent.get(cloid)
        self._sent[cloid] = max(previous, expires) if previous is not None and expires is not None else expires
        self._sent.move_to_end(cloid)
        if len(self._sent) > ORDERS_REMEMBERED:
            self._sent.popitem(last=False)

    def _refused(self, order: OrderRequest, client_id: str, code: str, message: str) -> OrderAck:
        self._emit(OrderRejected(None, client_id, order.coin, code, message, self._clock.now()))
        return OrderAck(None, client_id, "rejected", remaining=float(order.size), code=code, error=message)
