"""The paper exchange's trigger orders (stop-loss / take-profit, `OrderRequest.trigger`), as a
part of `PaperExchange` (`paper.triggers`).

Reduce-only always (the paper venue refuses the other kind), refused with `Invalid TP/SL price.`
when the mark already meets the condition, resting (listed with `trigger_px`/`tpsl`) until a
mark fires them (`Trigger.fires`): `OrderTriggered`, then a market trigger fills at once at
mark ± slippage (taker fee; its `limit_px` is not a cap, as the venue's market triggers fill
within its own wide cap), a limit trigger at its `limit_px` when marketable, else it rests as a
plain reduce-only GTC limit. The size is what the position is at that moment: a `positionTpsl`
trigger closes the whole position, any other is clamped to it; a trigger never opens or flips a
position. Groups (`place_group`): `normalTpsl` children wait for their entry's first fill (and
go with an entry that ends unfilled); siblings of a group are cancelled when one fires; a
trigger whose position is gone (closed or flipped) is cancelled at once (reduce only).
Cancel-all, the dead-man switch and a liquidation cancel trigger orders as well.

`TriggerOrders` keeps them and decides: which a mark fires, what a fired one becomes (a plain
reduce-only order sized to the position), which are cancelled and why. What a fired trigger
becomes is filled by the exchange's fill model (`engine.venues.paper.matching`), handed to `fire`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from engine.domain.clock import Clock
from engine.domain.model import OpenOrder
from engine.venues.connector import OrderAccepted, OrderAck, OrderCancelled, OrderRequest, OrderTriggered, VenueEvent
from engine.venues.paper.ledger import Ledger

# Why the venue cancels a trigger order (Hyperliquid's order statuses, in words).
REDUCE_ONLY_CANCELED = "Canceled due to reduce only: the position it would close is gone (reduceOnlyCanceled)."
SIBLING_CANCELED = "Canceled due to sibling order being filled (siblingFilledCanceled)."
ENTRY_UNFILLED = "Canceled: its entry order ended unfilled, its TP/SL go with it."

# Fills what a fired trigger became: (oid, the plain reduce-only order, the mark USD that fired
# it, the time epoch s it fired). A market trigger becomes an `Ioc`, a limit one a `Gtc`.
ExecuteFired = Callable[[str, OrderRequest, float, float], None]


@dataclass(slots=True)
class RestingTrigger:
    """A resting trigger order. `px`/`falling`: it fires when the mark is <= px (falling) or
    >= px. `group`: the siblings placed with it in one `place_group` (one firing cancels the
    others). `waiting`: a `normalTpsl` child whose entry has not filled yet (it cannot fire)."""

    oid: str
    request: OrderRequest
    px: float
    falling: bool
    position_tpsl: bool = False
    group: int | None = None
    waiting: bool = False


class TriggerOrders:
    """The resting trigger orders of one paper account. `emit` is the exchange's (every event
    goes through it)."""

    def __init__(self, ledger: Ledger, clock: Clock, emit: Callable[[VenueEvent], None]) -> None:
        self.ledger, self.clock = ledger, clock
        self._emit = emit
        self.resting: dict[str, RestingTrigger] = {}  # by oid, in placement order
        self.children: dict[str, list[str]] = {}  # a normalTpsl entry not filled yet -> its waiting children
        self.groups = 0  # the last group number given (`new_group`)

    def new_group(self) -> int:
        """A number for the orders of one `place_group` (siblings)."""
        self.groups += 1
        return self.groups

    def rest(self, oid: str, order: OrderRequest, *, position_tpsl: bool = False, group: int | None = None,
             entry: str | None = None) -> OrderAck:
        """Rest a trigger order the exchange has checked and accepted. `entry`: the oid of the
        resting normalTpsl entry whose first fill it waits for."""
        trigger = order.trigger
        assert trigger is not None
        falling = (order.side == "sell") == (trigger.tpsl == "sl")
        self.resting[oid] = RestingTrigger(oid, order, float(trigger.trigger_px), falling, position_tpsl, group,
                                           waiting=entry is not None)
        if entry is not None:
            self.children.setdefault(entry, []).append(oid)
        self._emit(OrderAccepted(oid, order.coin, order.side, float(order.size), float(order.limit_px), order.tif,
                                 True, order.client_id, self.clock.now()))
        return OrderAck(oid, order.client_id, "resting", remaining=float(order.size))

    # ---- reading -------------------------------------------------------------------------

    def quiet_band(self, coin: str) -> tuple[float, float]:
        """(low, high) USD: a mark of `coin` strictly between them fires none of them."""
        low, high = float("-inf"), float("inf")
        for t in self.resting.values():
            if t.request.coin != coin:
                continue
            if t.falling:
                low = max(low, t.px)
            else:
                high = min(high, t.px)
        return low, high

    def open_orders(self) -> tuple[OpenOrder, ...]:
        """In placement order, with `trigger_px`/`tpsl`, sized as `size_now` says."""
        return tuple(
            OpenOrder(t.oid, t.request.coin, t.request.side, self.size_now(t), float(t.request.limit_px),
                      True, t.request.client_id, t.px, t.request.trigger.tpsl)  # type: ignore[union-attr]
            for t in self.resting.values()
        )

    def size_now(self, t: RestingTrigger) -> float:
        """What the trigger would close now (base units): the whole position for a positionTpsl
        one, its placed size otherwise."""
        return abs(float(self.ledger.size(t.request.coin))) if t.position_tpsl else float(t.request.size)

    # ---- what marks and fills do to them ---------------------------------------------------

    def fire(self, coin: str, mark: float, execute: ExecuteFired) -> None:
        """The trigger orders this mark fires, in placement order (one firing may cancel another);
        `execute` fills what each became."""
        fired = [t for t in self.resting.values()
                 if t.request.coin == coin and not t.waiting and (mark <= t.px if t.falling else mark >= t.px)]
        for t in fired:
            if t.oid in self.resting:
                self._fire(t, mark, execute)

    def _fire(self, t: RestingTrigger, mark: float, execute: ExecuteFired) -> None:
        """One trigger fired at `mark`: its siblings are cancelled, then it executes reduce-only,
        sized to the position now (`execute`), or is cancelled when that position is gone."""
        del self.resting[t.oid]
        order, coin, now = t.request, t.request.coin, self.clock.now()
        trigger = order.trigger
        assert trigger is not None
        self._emit(OrderTriggered(t.oid, coin, order.side, t.px, mark, order.client_id, now, trigger.tpsl))
        if t.group is not None:
            for sibling in [s for s in self.resting.values() if s.group == t.group]:
                self.cancel(sibling, SIBLING_CANCELED)
        position = self.ledger.size(coin)
        if position == 0 or (position > 0) == (order.side == "buy"):
            self._emit(OrderCancelled(t.oid, coin, REDUCE_ONLY_CANCELED, now, order.client_id))
            return
        size = abs(position) if t.position_tpsl else min(order.size, abs(position))
        plain = OrderRequest(coin, order.side, size, order.limit_px, "Ioc" if trigger.is_market else "Gtc", True,
                             order.client_id)
        execute(t.oid, plain, mark, now)

    def drop_orphans(self, coin: str) -> None:
        """A trigger never opens nor flips a position: once the position it would close is gone
        (closed, or flipped to its own side), it is cancelled (reduce only)."""
        position = self.ledger.size(coin)
        for t in [t for t in self.resting.values() if t.request.coin == coin and not t.waiting]:
            if position == 0 or (position > 0) == (t.request.side == "buy"):
                self.cancel(t, REDUCE_ONLY_CANCELED)

    def entry_filled(self, oid: str) -> None:
        """A fill of order `oid`: if it is a normalTpsl entry's first, its children rest from now on."""
        children = self.children.pop(oid, None)
        if children:
            for child in children:
                trigger = self.resting.get(child)
                if trigger is not None:
                    trigger.waiting = False

    def entry_ended(self, oid: str) -> None:
        """Resting order `oid` was cancelled: a normalTpsl entry that ends unfilled takes its
        waiting children with it."""
        children = self.children.pop(oid, None)
        if children:
            for child in children:
                trigger = self.resting.get(child)
                if trigger is not None:
                    trigger.waiting = False  # (no longer listed under the entry)
                    self.cancel(trigger, ENTRY_UNFILLED)

    # ---- cancelling ----------------------------------------------------------------------

    def cancel_order(self, coin: str, oid: str, reason: str) -> bool:
        """Cancel the trigger order `oid` of `coin`; False when no such one rests."""
        trigger = self.resting.get(oid)
        if trigger is None or trigger.request.coin != coin:
            return False
        self.cancel(trigger, reason)
        return True

    def cancel_all(self, reason: str) -> int:
        """Cancel every trigger order (each says `reason`); how many there were."""
        triggers = list(self.resting.values())
        self.children.clear()
        for trigger in triggers:
            self.cancel(trigger, reason)
        return len(triggers)

    def cancel(self, t: RestingTrigger, reason: str) -> None:
        self.resting.pop(t.oid, None)
        if t.waiting:
            for entry, children in list(self.children.items()):
                if t.oid in children:
                    children.remove(t.oid)
                    if not children:
                        del self.children[entry]
        self._emit(OrderCancelled(t.oid, t.request.coin, reason, self.clock.now(), t.request.client_id))
