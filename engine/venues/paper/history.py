"""What the paper venue remembers of its account's past, for Hyperliquid's info answers: every
order's life (`orderStatus`, `historicalOrders`, the `frontendOpenOrders` fields an open order
needs: placed size and time, tif, trigger, parent), the fills (`userFills`: the last
`FILL_LIMIT`, as the venue keeps 2000), the funding payments (`userFunding`) and the account's
traded volume and orders placed (`userRateLimit`).

The exchange feeds it (`PaperExchange.history`): `placing` when it starts on an order, and
`record` with every event it emits, before any subscriber sees it and whatever the feed faults
do, so this is the venue's own record, not the engine's view of it. Bounded: the oldest closed
orders and fills are forgotten first; an open order is never forgotten.

Fills are kept as raw values (`PaperFill`, immutable) and written in the venue's shape only
when asked (`fill_row`): an order costs the venue a few microseconds more, not a dozen number
formats. Funding payments, rare, are kept as the wire rows `userFunding` answers with.
`fill_listeners` hear each new fill (the `trades` channel, the candles' volume, the saver).
"""

from __future__ import annotations

import re
from collections import OrderedDict, deque
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Iterable, NamedTuple

from engine.domain.model import MarketInfo
from engine.venues.connector import (
    FundingPaid, Liquidated, OrderAccepted, OrderCancelled, OrderFilled, OrderRejected, OrderRequest, OrderTriggered,
    VenueEvent,
)
from engine.venues import hl_wire as wire

ORDER_LIMIT = 2000  # orders remembered (historicalOrders answers at most 2000)
FILL_LIMIT = 2000  # fills remembered (userFills answers at most 2000)
FUNDING_LIMIT = 500  # funding payments remembered (userFunding answers at most 500)

_STATUS_IN_REASON = re.compile(r"\((\w+Canceled)\)")


class PaperFill(NamedTuple):
    """One fill: `px` USD, `sz` base units, `start` the signed position before it, `closed_pnl`
    and `fee` USD, `time` ms; `liquidation_mark` the mark (USD) of a liquidation's fill."""

    coin: str
    px: float
    sz: float
    buy: bool
    time: int
    start: float
    closed_pnl: float
    fee: float
    oid: int
    crossed: bool
    tid: int
    cloid: str | None = None
    liquidation_mark: float | None = None


FillListener = Callable[[PaperFill], None]


def fill_row(fill: PaperFill, sz_decimals: int, account_address: str) -> dict[str, Any]:
    """A fill as `userFills` writes it."""
    row: dict[str, Any] = {
        "coin": fill.coin, "px": wire.num(fill.px), "sz": wire.size(fill.sz, sz_decimals),
        "side": "B" if fill.buy else "A", "time": fill.time, "startPosition": wire.size(fill.start, sz_decimals),
        "dir": wire.fill_direction(fill.start, fill.buy, fill.sz), "closedPnl": wire.usd(fill.closed_pnl),
        "hash": wire.synthetic_hash(fill.tid), "oid": fill.oid, "crossed": fill.crossed, "fee": wire.usd(fill.fee),
        "tid": fill.tid, "feeToken": "USDC",
    }
    if fill.cloid is not None:
        row["cloid"] = fill.cloid
    if fill.liquidation_mark is not None:
        row["liquidation"] = {"liquidatedUser": account_address, "markPx": wire.num(fill.liquidation_mark),
                              "method": "market"}
    return row


def cancel_status(reason: str) -> str:
    """Hyperliquid's status for an order the paper venue cancelled with `reason`."""
    named = _STATUS_IN_REASON.search(reason)
    if named:
        return named.group(1)
    if reason.startswith("Reduce only order would increase position"):
        return "reduceOnlyCanceled"
    if reason == "liquidation":
        return "liquidatedCanceled"
    if reason.startswith("dead-man switch"):
        return "scheduledCancel"
    return "canceled"


@dataclass(slots=True)
class OrderRecord:
    """One order as the venue remembers it. Sizes base units, prices USD (as strings on the
    market's increments), times ms. `trigger`: {"triggerPx", "tpsl", "isMarket"} for a trigger
    order. `parent`: the entry oid of a normalTpsl child."""

    oid: int
    coin: str
    side: str  # "B" | "A"
    limit_px: float
    orig_size: float
    remaining: float
    tif: str
    reduce_only: bool
    client_id: str | None
    timestamp: int
    status: str = "open"
    status_timestamp: int = 0
    trigger: dict[str, Any] | None = None
    position_tpsl: bool = False
    parent: int | None = None
    children: list[int] = field(default_factory=list)
    filled: float = 0.0
    accepted: bool = False
    cloid: str | None = None  # set when accepted (Hyperliquid's name for client_id)

    @property
    def closed(self) -> bool:
        return self.status not in ("open", "triggered")

    @property
    def order_type(self) -> str:
        if not self.trigger:
            return "Limit"
        kind = "Take Profit" if self.trigger["tpsl"] == "tp" else "Stop"
        return f"{kind} {'Market' if self.trigger['isMarket'] else 'Limit'}"

    def fires_above(self) -> bool:
        """A sell take-profit and a buy stop fire on a rising mark, the other two on a falling one."""
        assert self.trigger is not None
        return (self.side == "A") == (self.trigger["tpsl"] == "tp")


class PaperHistory:
    """`position_of(coin)`: the account's signed position now (base units), read right after
    the exchange applied a fill, to write the fill's `startPosition`."""

    def __init__(self, markets: dict[str, MarketInfo], account_address: str,
                 position_of: Callable[[str], float]) -> None:
        self.markets = markets
        self.account_address = account_address
        self.position_of = position_of
        self.orders: OrderedDict[int, OrderRecord] = OrderedDict()
        self.by_cloid: dict[str, int] = {}
        self.fills: deque[PaperFill] = deque(maxlen=FILL_LIMIT)
        self.funding: deque[dict[str, Any]] = deque(maxlen=FUNDING_LIMIT)
        self.next_tid = 1
        self.cum_volume = 0.0  # USD traded, all time
        self.orders_placed = 0
        self.fill_listeners: list[FillListener] = []
        self._closed_rows: dict[int, list[Any]] = {}  # saved rows of closed orders (they change no more)

    # ---- fed by the exchange ----------------------------------------------------------------

    def placing(self, oid: str, order: OrderRequest, at: float, *, position_tpsl: bool = False,
                parent: str | None = None) -> None:
        """The venue starts on `order` under `oid` (it may still refuse it)."""
        key = int(oid)
        if key in self.orders:
            return
        trigger = None
        if order.trigger is not None:
            trigger = {"triggerPx": float(order.trigger.trigger_px), "tpsl": order.trigger.tpsl,
                       "isMarket": order.trigger.is_market}
        now = int(at * 1000)
        size = float(order.size)
        record = OrderRecord(key, order.coin, "B" if order.side == "buy" else "A", float(order.limit_px), size, size,
                             order.tif, order.reduce_only, order.client_id, now, status_timestamp=now,
                             trigger=trigger, position_tpsl=position_tpsl,
                             parent=int(parent) if parent is not None else None)
        self.orders[key] = record
        if record.parent is not None and record.parent in self.orders:
            self.orders[record.parent].children.append(key)
        self._forget_old_orders()

    def record(self, event: VenueEvent) -> VenueEvent:
        """One event the exchange emits (marks excluded); returned as subscribers get it: a fill
        (or a liquidation's) with the trade id and hash this record gave it, as `userFills` has
        them, so a bot hears the same fill on the websocket as it reads over /info."""
        kind = type(event)
        if kind is OrderFilled or kind is Liquidated:
            fill = self._filled(event) if kind is OrderFilled else self._liquidated(event)  # type: ignore[arg-type]
            return replace(event, tid=fill.tid, hash=wire.synthetic_hash(fill.tid))  # type: ignore[type-var]
        if kind is OrderAccepted:
            record = self.orders.get(int(event.oid))  # type: ignore[union-attr]
            if record is not None:
                record.accepted = True
                record.remaining = record.orig_size = event.size  # type: ignore[union-attr]
                self.orders_placed += 1
                if record.client_id is not None:
                    record.cloid = wire.cloid_for(record.client_id)
                    self.by_cloid[record.cloid] = record.oid  # type: ignore[index]
        elif kind is OrderCancelled:
            self._close(event.oid, cancel_status(event.reason), event.time)  # type: ignore[union-attr]
        elif kind is OrderTriggered:
            record = self.orders.get(int(event.oid))  # type: ignore[union-attr]
            if record is not None:
                record.status, record.status_timestamp = "triggered", wire.ms(event.time)  # type: ignore[union-attr]
        elif kind is OrderRejected:
            if event.oid is not None:  # type: ignore[union-attr]
                record = self.orders.get(int(event.oid))  # type: ignore[union-attr]
                if record is not None:
                    if record.client_id is not None:
                        record.cloid = wire.cloid_for(record.client_id)
                        self.by_cloid.setdefault(record.cloid, record.oid)  # type: ignore[arg-type]
                    self._close(event.oid, wire.REJECTED_STATUS.get(event.code, "rejected"),  # type: ignore[union-attr]
                                event.time)  # type: ignore[union-attr]
        elif kind is FundingPaid:
            self._funding(event)  # type: ignore[arg-type]
        return event

    # ---- reading ----------------------------------------------------------------------------

    def order(self, oid: int) -> OrderRecord | None:
        return self.orders.get(oid)

    def order_by_cloid(self, cloid: str) -> OrderRecord | None:
        oid = self.by_cloid.get(cloid.lower())
        return self.orders.get(oid) if oid is not None else None

    def waiting_children(self, record: OrderRecord) -> list[OrderRecord]:
        """The normalTpsl children still waiting for this entry's first fill."""
        if record.filled > 0 or not record.children:
            return []
        return [c for oid in record.children if (c := self.orders.get(oid)) is not None and not c.closed]

    def recent_orders(self) -> Iterable[OrderRecord]:
        """Every remembered order, newest first."""
        return reversed(self.orders.values())

    # ---- persistence (engine.venues.paper.account_state) -------------------------------------

    def export(self) -> dict[str, Any]:
        """Plain values; the rows handed out are not changed afterwards (closed orders' rows are
        made once, open ones afresh), so they can be serialized on another thread."""
        return {"order_fields": list(_RECORD_FIELDS), "orders": [self._row(r) for r in self.orders.values()],
                "fills": list(self.fills),  # tuples
                "funding": list(self.funding), "next_tid": self.next_tid, "cum_volume": self.cum_volume,
                "orders_placed": self.orders_placed}

    def restore(self, state: dict[str, Any]) -> None:
        self.orders.clear()
        self.by_cloid.clear()
        self._closed_rows.clear()
        names = state.get("order_fields", _RECORD_FIELDS)
        for row in state.get("orders", []):
            record = OrderRecord(**dict(zip(names, row)))
            self.orders[record.oid] = record
            if record.cloid is not None and (record.accepted or record.cloid not in self.by_cloid):
                self.by_cloid[record.cloid] = record.oid
        self.fills.clear()
        self.fills.extend(PaperFill(*row) for row in state.get("fills", []))
        self.funding.clear()
        self.funding.extend(state.get("funding", []))
        self.next_tid = int(state.get("next_tid", 1))
        self.cum_volume = float(state.get("cum_volume", 0.0))
        self.orders_placed = int(state.get("orders_placed", 0))

    # ---- internals --------------------------------------------------------------------------

    def _row(self, record: OrderRecord) -> list[Any]:
        """The record's fields in `_RECORD_FIELDS` order (the children list copied)."""
        row = self._closed_rows.get(record.oid)
        if row is None:
            row = [getattr(record, name) for name in _RECORD_FIELDS]
            row[_CHILDREN] = list(record.children)
            if record.closed:
                self._closed_rows[record.oid] = row
        return row

    def _sz_decimals(self, coin: str) -> int:
        info = self.markets.get(coin)
        return info.sz_decimals or 0 if info is not None else 0

    def _close(self, oid: str, status: str, at: float) -> None:
        record = self.orders.get(int(oid))
        if record is not None and not record.closed:  # `remaining` stays what was left unfilled
            record.status, record.status_timestamp = status, wire.ms(at)

    def _filled(self, event: OrderFilled) -> PaperFill:
        record = self.orders.get(int(event.oid))
        buy = event.side == "buy"
        if record is not None:
            record.filled += event.size
            record.remaining = event.remaining
            if event.remaining == 0:
                record.status, record.status_timestamp = "filled", wire.ms(event.time)
        # The exchange emits a fill right after applying it: the position before is now − fill.
        start = self.position_of(event.coin) - (event.size if buy else -event.size)
        cloid = record.cloid if record is not None else wire.cloid_for(event.client_id)
        return self._add_fill(event.coin, buy, event.px, event.size, start, event.realized_pnl, event.fee,
                              int(event.oid), not event.maker, event.time, cloid)

    def _liquidated(self, event: Liquidated) -> PaperFill:
        return self._add_fill(event.coin, event.size < 0, event.px, abs(event.size), event.size, -event.loss, 0.0, 0,
                              True, event.time, None, event.px)

    def _funding(self, event: FundingPaid) -> None:
        self.funding.append({"time": wire.ms(event.time), "hash": wire.synthetic_hash(-wire.ms(event.time)),
                             "delta": {"type": "funding", "coin": event.coin, "usdc": wire.usd(-event.payment),
                                       "szi": wire.size(event.size, self._sz_decimals(event.coin)),
                                       "fundingRate": wire.num(event.rate), "nSamples": None}})

    def _add_fill(self, coin: str, buy: bool, px: float, sz: float, start: float, closed_pnl: float, fee: float,
                  oid: int, crossed: bool, at: float, cloid: str | None,
                  liquidation_mark: float | None = None) -> PaperFill:
        tid = self.next_tid
        self.next_tid += 1
        fill = PaperFill(coin, px, sz, buy, int(round(at * 1000)), start, closed_pnl, fee, oid, crossed, tid, cloid,
                         liquidation_mark)
        self.fills.append(fill)
        self.cum_volume += sz * px
        for listener in self.fill_listeners:
            listener(fill)
        return fill

    def row(self, fill: PaperFill) -> dict[str, Any]:
        """`fill` as `userFills` writes it."""
        return fill_row(fill, self._sz_decimals(fill.coin), self.account_address)

    def _forget_old_orders(self) -> None:
        while len(self.orders) > ORDER_LIMIT:
            victim = next((oid for oid, r in self.orders.items() if r.closed), None)
            if victim is None:
                return  # every remembered order is open: none may be forgotten
            record = self.orders.pop(victim)
            self._closed_rows.pop(victim, None)
            if record.cloid is not None and self.by_cloid.get(record.cloid) == victim:
                del self.by_cloid[record.cloid]


_RECORD_FIELDS = tuple(f.name for f in fields(OrderRecord))
_CHILDREN = _RECORD_FIELDS.index("children")
