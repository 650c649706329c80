"""Orders on their way to the paper exchange, as a part of `PaperExchange` (`paper.in_flight`):
with the `delay_orders` fault on (`engine.venues.paper.faults`), `place` answers `pending` at
once and the orders of one action reach the venue `order_delay` seconds later, on the first
`poll` at or after that time (`landed`). They can be cancelled before they land.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from engine.domain.clock import Clock
from engine.venues.connector import Grouping, OrderAck, OrderCancelled, OrderRequest, VenueEvent


@dataclass(slots=True)
class InFlight:
    """Orders sent together that reach the venue at `due` (`delay_orders`)."""

    due: float
    oids: list[str]
    requests: list[OrderRequest]
    grouping: Grouping = "na"


class InFlightOrders:
    """`flights` in the order they land (by `due`, epoch s). `emit` is the exchange's."""

    def __init__(self, clock: Clock, emit: Callable[[VenueEvent], None]) -> None:
        self.clock = clock
        self._emit = emit
        self.flights: list[InFlight] = []

    def send(self, due: float, oids: list[str], orders: list[OrderRequest], grouping: Grouping) -> list[OrderAck]:
        """Send the orders of one action to land at `due`: one `pending` answer each."""
        self.flights.append(InFlight(due, oids, list(orders), grouping))
        self.flights.sort(key=lambda f: f.due)
        return [OrderAck(oid, o.client_id, "pending", remaining=float(o.size)) for oid, o in zip(oids, orders)]

    def landed(self, now: float) -> InFlight | None:
        """The next action that has reached the venue at `now` (taken off the way), or None."""
        flights = self.flights
        if flights and flights[0].due <= now:
            return flights.pop(0)
        return None

    def cancel(self, oid: str) -> bool:
        """Cancel `oid` before it lands (a normalTpsl entry takes its children with it); False
        when it is not on its way."""
        for flight in self.flights:
            if oid in flight.oids:
                i = flight.oids.index(oid)
                drop = range(len(flight.oids)) if flight.grouping == "normalTpsl" and i == 0 else [i]
                for j in sorted(drop, reverse=True):
                    request = flight.requests.pop(j)
                    self._emit(OrderCancelled(flight.oids.pop(j), request.coin, "cancelled before it reached the venue",
                                              self.clock.now(), request.client_id))
                if not flight.oids:
                    self.flights.remove(flight)
                return True
        return False
