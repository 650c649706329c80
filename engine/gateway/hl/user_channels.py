"""The user channels of `/hl/ws` (`userFills`, `orderUpdates`, `userEvents`, `clearinghouseState`)
for the guarded account, served from what the engine saw, so a bot hears the fills the gate counts, including
those of its held (DELAY/APPROVAL) orders released later.

- Fills come from the engine's ORDER_FILLED events. Hyperliquid's fill row (SDK
  `hyperliquid/utils/types.py` `Fill`; docs "Subscriptions" `WsFill`) holds more than the event:
  `startPosition` is the book's position before the fill (the engine re-reads the account only
  after it; fills since the last read are added), `dir` follows from it, `time` is the event's
  time, `crossed` is the taker flag (the event's `maker`, else taker), `tid` and `hash` are the
  venue's own (the ones its `userFills` answer has: a client that counts fills by trade id,
  as Hummingbot's connector does, must not count one fill twice); the money is written to the
  micro-dollar, as the venue writes it. A fill whose venue gave no tid gets one made from the
  fill itself (the same on every connection) and the zero hash.
- Order updates (`WsOrder`) come from the connector's order events: OrderAccepted -> `open`,
  OrderFilled with nothing left -> `filled`, OrderCancelled -> the venue's status word when the
  venue gave one (`marginCanceled`, `reduceOnlyCanceled`...) else `canceled`, OrderRejected ->
  `rejected` (or the venue's word), OrderTriggered -> `triggered`. The engine logs none of
  these but fills, so the connector is asked directly (reading only).
- A liquidation's fill (the connector's Liquidated: the venue closing the position at the mark)
  goes out on the same channels, with the venue's `liquidation` field naming the account.
- `userEvents` carries the fills (`{"fills": [...]}` on channel `user`, as the venue writes it).
- `clearinghouseState` (what ccxt pro's `watch_balance` and `watch_positions` subscribe to;
  `{"type": "clearinghouseState", "user", "dex"?}`) sends `{"dex", "user", "clearinghouseState":
  <what /info clearinghouseState answers>}` (nktkas/hyperliquid `ClearinghouseStateEvent`, ccxt
  pro `handle_balance`): on subscribe, then after each change of the account the connector
  reports (a fill, a funding payment, a liquidation), read through the same `/info` handler as
  HTTP. One read at a time per subscription; a change during a read is read once more after it.
  A mark alone sends nothing (the unrealized PnL it moves is in the next one).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from typing import Any, Awaitable, Callable

from engine.domain.events import EngineEvent, EventKind
from engine.facade import EngineService
from engine.risk.book import Book
from engine.venues import connector as venue
from engine.venues import hl_wire as wire
from engine.venues.hyperliquid.parse import is_cancelled, is_rejected
from engine.venues.hyperliquid.signer import cloid_for

log = logging.getLogger("perpguard.gateway.hl")

USER_CHANNELS = frozenset({"userFills", "orderUpdates", "userEvents", "clearinghouseState"})
ZERO_HASH = "0x" + "0" * 64
ORDERS_REMEMBERED = 10_000
STATE_TIMEOUT_SECONDS = 10.0
STATE_CHANGES = (venue.OrderFilled, venue.FundingPaid, venue.Liquidated)  # what changes a clearinghouseState
Sink = Callable[[dict[str, Any]], None]
Read = Callable[[dict[str, Any]], Awaitable[tuple[int, Any]]]  # an /info handler: body -> (status, answer)


def lot_of(book: Book, coin: str) -> int:
    """The market's lot (szDecimals) sizes are written to, or 8 places for one the book does not list."""
    info = book.markets.get(coin)
    return info.sz_decimals if info is not None and info.sz_decimals is not None else 8


def wire_oid(oid: Any) -> Any:
    """The venue's oids are integers; ours are their decimal text."""
    return int(oid) if isinstance(oid, str) and oid.isdigit() else oid


class FillRows:
    """Hyperliquid fill rows from ORDER_FILLED events, with the position each fill started from."""

    def __init__(self, book: Book) -> None:
        self.book = book
        self._read = -1  # the book's snapshot (its `loads`) the moves below follow
        self._moved: dict[str, float] = {}  # coin -> signed base units filled since that read

    def row(self, event: EngineEvent) -> dict[str, Any]:
        """The row of an ORDER_FILLED event."""
        return self._row(event.data, event.at)

    def liquidation(self, event: venue.Liquidated, account: str) -> dict[str, Any]:
        """The row of the fill that liquidated (part of) a position, with the venue's
        `liquidation` field (docs "Subscriptions" `FillLiquidation`): closed at the mark, taker."""
        side = "buy" if event.size < 0 else "sell"  # a short is closed by a buy
        row = self._row({"coin": event.coin, "side": side, "size": abs(event.size), "px": event.px, "oid": 0,
                         "realized_pnl": -event.loss, "fee": 0.0, "maker": False, "tid": event.tid,
                         "hash": event.hash}, event.time)
        row["liquidation"] = {"liquidatedUser": account, "markPx": wire.num(event.px), "method": "market"}
        return row

    def _row(self, data: dict[str, Any], at: float) -> dict[str, Any]:
        coin, side, size, px = data["coin"], data["side"], float(data["size"]), float(data["px"])
        if self.book.loads != self._read:  # a fresh snapshot holds the fills before it
            self._read, self._moved = self.book.loads, {}
        position = self.book.position(coin)
        start = (position.size if position is not None else 0.0) + self._moved.get(coin, 0.0)
        self._moved[coin] = self._moved.get(coin, 0.0) + (size if side == "buy" else -size)
        time_ms = int(round(at * 1000))
        tid = data.get("tid")
        if tid is None:
            seed = f"{data['oid']}|{data.get('remaining')}|{size!r}|{px!r}|{time_ms}".encode()
            tid = int.from_bytes(hashlib.sha256(seed).digest()[:6], "big")
        lot = lot_of(self.book, coin)
        row = {"coin": coin, "px": wire.num(px), "sz": wire.size(size, lot), "side": wire.side(side), "time": time_ms,
               "startPosition": wire.size(start, lot), "dir": wire.fill_direction(start, side == "buy", size),
               "closedPnl": wire.usd(float(data.get("realized_pnl") or 0.0)), "hash": data.get("hash") or ZERO_HASH,
               "oid": wire_oid(data["oid"]), "crossed": not data.get("maker", False),
               "fee": wire.usd(float(data.get("fee") or 0.0)), "tid": tid, "feeToken": "USDC"}
        if data.get("client_id"):
            row["cloid"] = cloid_for(data["client_id"])
        return row


class OrderRows:
    """Hyperliquid order updates from the connector's order events."""

    def __init__(self, book: Book) -> None:
        self.book = book
        self._orders: OrderedDict[str, dict[str, Any]] = OrderedDict()  # oid -> the order's wire row

    def update(self, event: venue.VenueEvent) -> dict[str, Any] | None:
        """The update for one venue event (None: not an order's status change)."""
        if isinstance(event, venue.OrderAccepted):
            order = self._remember(event.oid, event.coin, event.side, event.limit_px, event.size, event.client_id,
                                   event.time)
            return self._status(order, "open", event.time)
        if isinstance(event, venue.OrderFilled):
            order = self._known(event.oid, event.coin, event.side, event.px, event.size, event.client_id, event.time)
            order["sz"] = wire.size(event.remaining, lot_of(self.book, event.coin))
            if event.remaining > 0:
                return None  # still open: the venue sends no update for a partial fill
            self._orders.pop(event.oid, None)
            return self._status(order, "filled", event.time)
        if isinstance(event, venue.OrderCancelled):
            order = self._known(event.oid, event.coin, None, None, None, event.client_id, event.time)
            self._orders.pop(event.oid, None)
            word = event.reason if is_cancelled(event.reason) else "canceled"
            if "reduceOnlyCanceled" in event.reason:
                word = "reduceOnlyCanceled"
            return self._status(order, word, event.time)
        if isinstance(event, venue.OrderRejected) and event.oid is not None:
            order = self._known(event.oid, event.coin, None, None, None, event.client_id, event.time)
            self._orders.pop(event.oid, None)
            return self._status(order, event.code if is_rejected(event.code) else "rejected", event.time)
        if isinstance(event, venue.OrderTriggered):
            order = self._known(event.oid, event.coin, event.side, event.trigger_px, None, event.client_id, event.time)
            return self._status(order, "triggered", event.time)
        return None

    def _remember(self, oid: str, coin: str, side: str, limit_px: float, size: float, client_id: str | None,
                  at: float) -> dict[str, Any]:
        sz = wire.size(size, lot_of(self.book, coin))
        order = {"coin": coin, "side": wire.side(side), "limitPx": wire.num(limit_px), "sz": sz,
                 "oid": wire_oid(oid), "timestamp": int(round(at * 1000)), "origSz": sz}
        if client_id:
            order["cloid"] = cloid_for(client_id)
        self._orders[oid] = order
        if len(self._orders) > ORDERS_REMEMBERED:
            self._orders.popitem(last=False)
        return order

    def _known(self, oid: str, coin: str, side: str | None, px: float | None, size: float | None,
               client_id: str | None, at: float) -> dict[str, Any]:
        """The order as we know it: from its OrderAccepted, else the book's open orders, else
        what this event says."""
        order = self._orders.get(oid)
        if order is not None:
            return order
        resting = self.book.open_orders.get(oid)
        if resting is not None:
            return self._remember(oid, resting.coin, resting.side, resting.limit_px, resting.size,
                                  resting.client_id or client_id, at)
        return self._remember(oid, coin, side or "buy", px or 0.0, size or 0.0, client_id, at)

    @staticmethod
    def _status(order: dict[str, Any], status: str, at: float) -> dict[str, Any]:
        return {"order": dict(order), "status": status, "statusTimestamp": int(round(at * 1000))}


class StateFeed:
    """One `clearinghouseState` subscription (see the module docstring)."""

    def __init__(self, read: Read, user: str, dex: str, sink: Sink) -> None:
        self.read, self.user, self.dex, self.sink = read, user.lower(), dex, sink
        self._task: asyncio.Task | None = None
        self._again = False

    def refresh(self) -> None:
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        body: dict[str, Any] = {"type": "clearinghouseState", "user": self.user}
        if self.dex:
            body["dex"] = self.dex
        while True:
            self._again = False
            try:
                status, state = await asyncio.wait_for(self.read(body), STATE_TIMEOUT_SECONDS)
            except Exception:  # the next change reads it again
                log.exception("the clearinghouseState for /hl/ws could not be read")
                status, state = 0, None
            if status == 200 and isinstance(state, dict):
                self.sink({"channel": "clearinghouseState",
                           "data": {"dex": self.dex, "user": self.user, "clearinghouseState": state}})
            if not self._again:
                return

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()


class UserChannels:
    """One connection's user subscriptions of the guarded account, fed from the engine. `add`
    a subscription's sink; the engine and the connector are listened to while any is open.
    `read`: the `/info` handler a `clearinghouseState` is read through."""

    def __init__(self, service: EngineService, read: Read | None = None) -> None:
        self.service = service
        self.read = read
        self._fills = FillRows(service.engine.book)
        self._orders = OrderRows(service.engine.book)
        self._sinks: dict[tuple[str, str, str], Sink] = {}  # (channel, user in lower case, dex) -> sink
        self._states: dict[tuple[str, str, str], StateFeed] = {}  # the clearinghouseState ones
        self._stop: list[Callable[[], None]] = []

    def guarded(self, user: str) -> bool:
        """`user` is the guarded account or a registered bot (both mean the guarded account)."""
        return user.lower() == self.service.engine.connector.account_address.lower() \
            or self.service.bot_for(user) is not None

    def add(self, channel: str, user: str, sink: Sink, dex: str = "") -> None:
        if not self._stop:
            self._stop = [self.service.subscribe(self._on_engine_event),
                          self.service.engine.connector.subscribe(self._on_venue_event)]
        key = (channel, user.lower(), dex)
        self._sinks[key] = sink
        if channel == "clearinghouseState" and self.read is not None:
            self._states[key] = feed = StateFeed(self.read, user, dex, sink)
            feed.refresh()  # the first message: the account now

    def remove(self, channel: str, user: str, dex: str = "") -> None:
        key = (channel, user.lower(), dex)
        self._sinks.pop(key, None)
        feed = self._states.pop(key, None)
        if feed is not None:
            feed.close()
        if not self._sinks:
            self.close()

    def close(self) -> None:
        for stop in self._stop:
            stop()
        self._stop = []
        for feed in self._states.values():
            feed.close()
        self._states.clear()

    def _on_engine_event(self, event: EngineEvent) -> None:
        if event.kind is EventKind.ORDER_FILLED:
            self._send_fill(self._fills.row(event))

    def _send_fill(self, row: dict[str, Any]) -> None:
        for (channel, user, _dex), sink in list(self._sinks.items()):
            if channel == "userFills":
                sink({"channel": "userFills", "data": {"user": user, "fills": [row]}})
            elif channel == "userEvents":
                sink({"channel": "user", "data": {"fills": [row]}})

    def _on_venue_event(self, event: venue.VenueEvent) -> None:
        if isinstance(event, STATE_CHANGES):
            for feed in list(self._states.values()):
                feed.refresh()
        if isinstance(event, venue.Liquidated):  # the venue's fill, which the engine logs as LIQUIDATED, not a fill
            self._send_fill(self._fills.liquidation(event, self.service.engine.connector.account_address.lower()))
            return
        update = self._orders.update(event)
        if update is None:
            return
        for (channel, _user, _dex), sink in list(self._sinks.items()):
            if channel == "orderUpdates":
                sink({"channel": "orderUpdates", "data": [update]})
