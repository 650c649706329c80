"""A venue for engine benchmarks: what the Engine needs of a connector (markets, a snapshot,
subscriptions), with no exchange behind it. Events are pushed with `emit`."""

from __future__ import annotations

from typing import Callable

from engine.venues.connector import CancelAck, EventHandler, OrderAck, VenueEvent, VenueSnapshot
from engine.domain.model import MarketInfo


class OfflineVenue:
    revision = None  # the engine re-reads the snapshot when it asks

    def __init__(self, markets: dict[str, MarketInfo], snapshot: VenueSnapshot) -> None:
        self._markets, self._snapshot = markets, snapshot
        self._handlers: list[EventHandler] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def meta(self) -> dict[str, MarketInfo]:
        return dict(self._markets)

    async def snapshot(self) -> VenueSnapshot:
        return self._snapshot

    def subscribe(self, handler: EventHandler) -> Callable[[], None]:
        self._handlers.append(handler)
        return lambda: self._handlers.remove(handler)

    def emit(self, event: VenueEvent) -> None:
        """Hand `event` to every subscriber, as a connector does (HyperliquidConnector._emit)."""
        for handler in list(self._handlers):
            handler(event)

    async def place_group(self, orders, grouping) -> list[OrderAck]:
        """Every order rests (the engine's venue stops): nothing fills offline."""
        self._oids = getattr(self, "_oids", 0)
        acks = []
        for order in orders:
            self._oids += 1
            acks.append(OrderAck(str(self._oids), order.client_id, "resting", remaining=float(order.size)))
        return acks

    async def cancel(self, coin: str, oid: str) -> CancelAck:
        return CancelAck(oid, True)
