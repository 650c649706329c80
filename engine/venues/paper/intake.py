"""How the paper exchange takes in the orders of one action, as a part of `PaperExchange`
(`paper.intake`): numbered (`number`: oids, in sequence), recorded in the venue's history,
checked (unknown asset, an injected rejection, a cloid already used, then the venue's rules in
`engine.venues.paper.rules`), grouped as `place_group` says (`execute_group`), then rested as
trigger orders (`engine.venues.paper.triggers`) or matched (`engine.venues.paper.matching`),
the account checked for liquidation after each plain order.
"""

from __future__ import annotations

from typing import Callable

from engine.domain.clock import Clock
from engine.domain.model import MarketInfo
from engine.venues.connector import Grouping, OrderAck, OrderRejected, OrderRequest, VenueEvent
from engine.venues.paper.faults import Faults
from engine.venues.paper.history import PaperHistory
from engine.venues.paper.ledger import Ledger
from engine.venues.paper.matching import Matching
from engine.venues.paper.rules import OrderCheck, check_order_request, check_trigger_request
from engine.venues.paper.triggers import ENTRY_UNFILLED, TriggerOrders


class OrderIntake:
    """`emit` is the exchange's; `check_liquidation` its liquidation check (after a plain order
    is matched). `client_ids`: cloid -> oid of every order accepted with one."""

    def __init__(self, markets: dict[str, MarketInfo], ledger: Ledger, clock: Clock,
                 emit: Callable[[VenueEvent], None], history: PaperHistory, faults: Faults, triggers: TriggerOrders,
                 matching: Matching, check_liquidation: Callable[[], None]) -> None:
        self.markets, self.ledger, self.clock, self.history, self.faults = markets, ledger, clock, history, faults
        self.triggers, self.matching = triggers, matching
        self._emit, self._check_liquidation = emit, check_liquidation
        self.client_ids: dict[str, str] = {}
        self.next_oid = 1

    def number(self, count: int) -> list[str]:
        """The oids of the next `count` orders."""
        oids = [str(self.next_oid + i) for i in range(count)]
        self.next_oid += count
        return oids

    def execute_group(self, oids: list[str], orders: list[OrderRequest], grouping: Grouping) -> list[OrderAck]:
        """The orders of one action, processed now (see `PaperExchange.place_group`)."""
        if not orders:
            return []
        if grouping == "na":
            return [self._execute_trigger(oid, o) if o.trigger is not None else self._execute(oid, o)
                    for oid, o in zip(oids, orders)]
        group = self.triggers.new_group()
        if grouping == "positionTpsl":
            return [self._reject(oid, o, "InvalidGrouping", "A positionTpsl group holds trigger orders only.")
                    if o.trigger is None else self._execute_trigger(oid, o, position_tpsl=True, group=group)
                    for oid, o in zip(oids, orders)]
        entry_oid, entry = oids[0], orders[0]
        if entry.trigger is not None:
            ack = self._reject(entry_oid, entry, "InvalidGrouping",
                               "The first order of a normalTpsl group is its entry, not a trigger order.")
        else:
            ack = self._execute(entry_oid, entry)
        acks = [ack]
        for oid, child in zip(oids[1:], orders[1:]):
            if not ack.ok:
                acks.append(self._reject(oid, child, "EntryRejected", f"Its entry order was rejected ({ack.code}): "
                                                                      f"the TP/SL is not placed."))
            elif child.trigger is None:
                acks.append(self._reject(oid, child, "InvalidGrouping",
                                         "The orders after a normalTpsl entry are its trigger children."))
            elif ack.filled_size > 0:  # the entry filled on arrival: the children rest at once
                acks.append(self._execute_trigger(oid, child, group=group))
            elif ack.status == "resting":
                acks.append(self._execute_trigger(oid, child, group=group, entry=(entry_oid, entry.side)))
            else:  # the entry ended unfilled on arrival
                acks.append(self._reject(oid, child, "EntryRejected", ENTRY_UNFILLED))
        return acks

    def _reject(self, oid: str, order: OrderRequest, code: str, message: str) -> OrderAck:
        self.history.placing(oid, order, self.clock.now())
        self._emit(OrderRejected(oid, order.client_id, order.coin, code, message, self.clock.now()))
        return OrderAck(oid, order.client_id, "rejected", remaining=float(order.size), code=code, error=message)

    def _execute_trigger(self, oid: str, order: OrderRequest, *, position_tpsl: bool = False, group: int | None = None,
                         entry: tuple[str, str] | None = None) -> OrderAck:
        """Place one trigger order: it rests (`resting`). `entry` (oid, side): a normalTpsl
        child waiting for that resting entry's first fill."""
        self.history.placing(oid, order, self.clock.now(), position_tpsl=position_tpsl,
                             parent=entry[0] if entry else None)
        check = self._refusal(order, position_tpsl=position_tpsl, entry_side=entry[1] if entry else None)
        if check.code is not None:
            return self._reject(oid, order, check.code, check.message)
        if order.client_id is not None:
            self.client_ids[order.client_id] = oid
        return self.triggers.rest(oid, order, position_tpsl=position_tpsl, group=group,
                                  entry=entry[0] if entry else None)

    def _execute(self, oid: str, order: OrderRequest) -> OrderAck:
        now = self.clock.now()
        self.history.placing(oid, order, now)
        check = self._refusal(order)
        if check.code is not None:
            return self._reject(oid, order, check.code, check.message)
        if order.client_id is not None:
            self.client_ids[order.client_id] = oid
        ack = self.matching.take(oid, order, check.size, check.taker_px, now)
        self._check_liquidation()
        return ack

    def _refusal(self, order: OrderRequest, *, position_tpsl: bool = False, entry_side: str | None = None) -> OrderCheck:
        info = self.markets.get(order.coin)
        if info is None:
            return OrderCheck.refused("UnknownAsset", f"Unknown asset {order.coin}.")
        rejection = self.faults.take_rejection()
        if rejection is not None:
            return OrderCheck.refused(*rejection)
        if order.client_id is not None and order.client_id in self.client_ids:
            return OrderCheck.refused("DuplicateCloid", f"Order with client_id {order.client_id} was already placed "
                                                        f"(oid {self.client_ids[order.client_id]}).")
        if order.trigger is not None:
            return check_trigger_request(order, info, self.ledger, position_tpsl=position_tpsl, entry_side=entry_side)
        return check_order_request(order, info, self.ledger, self.matching.slippage, self.matching.available_margin())
