"""Hyperliquid's websocket channels -> the venue events of `engine.venues.connector`, plus the live
marks and funding rates the connector reports in its snapshots.

- `allMids`: a mark for every listed perp, until the coin's `activeAssetCtx` arrives; from
  then on that coin's mark is the context's `markPx` (the price Hyperliquid margins and
  liquidates at), and its `funding` the hourly rate.
- `orderUpdates`: `open` -> OrderAccepted (once per order); the cancel family
  (`canceled`, `marginCanceled`, `scheduledCancel`...) -> OrderCancelled; the reject family
  -> OrderRejected; `filled` ends the order (its fills come on `userFills`); `triggered` (a
  TP/SL whose trigger was hit) -> OrderTriggered and keeps it live (its fills follow as
  OrderFilled with the same oid). The venue's order object carries no tif, reduce-only flag nor
  trigger: those are the ones we sent (`expect`); the trigger price falls back to the object's
  `triggerPx` (else its `limitPx`) and the mark it fired at to our latest mark when that one
  is past the trigger, else the trigger price itself (the venue does not say). A dead-man fire (`scheduledCancel`, one fire
  cancels many orders at one `statusTimestamp`) is told to `on_dead_man_fire(ms)`.
- `userFills`: each fill -> OrderFilled, or Liquidated when the fill liquidated us. Each
  (re)subscription starts with a snapshot of recent fills (`isSnapshot: true`). The first one
  is history, never replayed as new fills (the account snapshot holds their effect), except
  the fills of orders this connector sent (known by cloid): an order that fills before the
  first snapshot arrives (a loaded machine, a slow socket) is in it, and is new. After a
  reconnect, the snapshot's fills not seen before and no older than the newest fill we knew (by
  the venue's own `time`, never our clock) were made while we were away: they are told, once,
  so their realized PnL and losing streak count. Fills are told once, by `tid` (or hash).
  The fills seen per order are tallied (`filled(oid)`): `orderStatus` cannot say what filled.
- `userEvents`: funding payments -> FundingPaid (its fills also come on `userFills`).

An `allMids` message becomes one MarksUpdated (the engine judges the account once per message,
not once per coin). A mark that did not change is re-reported once a second, so the engine
knows it is still live without taking every coin at every block. Event times are the
connector clock's time of arrival.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Iterable

from engine.domain.clock import Clock
from engine.venues.connector import (
    MarksUpdated, MarkUpdated, OrderAccepted, OrderAck, OrderCancelled, OrderRejected, OrderRequest, OrderTriggered,
    VenueEvent,
)
from engine.venues.hyperliquid.parse import (
    is_cancelled, is_rejected, is_triggered, liquidation_of, parse_fill, parse_funding, parse_mids, side_of, tif_of,
    tpsl_of,
)
from engine.domain.coins import canonical_coin
from engine.domain.model import OpenOrder

MARK_REFRESH_SECONDS = 1.0
FILLS_REMEMBERED = 10_000
ORDERS_REMEMBERED = 10_000
MARKET_DATA = frozenset({"allMids", "activeAssetCtx"})


@dataclass(slots=True)
class _Live:
    """An order we know is live: what is left of it, and whether OrderAccepted went out."""

    remaining: float
    client_id: str | None
    announced: bool


class StreamTranslator:
    def __init__(self, account: str, clock: Clock, emit: Callable[[VenueEvent], None],
                 markets: Iterable[str] = (), monotonic: Callable[[], float] = time.monotonic) -> None:
        self.account = account.lower()
        self.clock = clock
        self._emit = emit
        self._monotonic = monotonic
        self.markets: set[str] = set(markets)
        self.marks: dict[str, float] = {}
        self.mark_times: dict[str, float] = {}
        self.funding: dict[str, float] = {}
        self.client_ids: dict[str, str] = {}  # cloid -> our client_id
        self._requests: OrderedDict[str, OrderRequest] = OrderedDict()  # cloid -> the order as we sent it
        self._ctx_coins: set[str] = set()
        self._reported: dict[str, tuple[float, float]] = {}  # coin -> (px, monotonic time) last emitted
        self._live: dict[str, _Live] = {}  # oid -> live order
        self._fills_seen: set[Any] = set()
        self._fills_order: deque[Any] = deque()
        self._newest_fill_ms: int | None = None  # venue time of the newest fill known (None: no snapshot yet)
        self._filled: OrderedDict[str, tuple[float, float]] = OrderedDict()  # oid -> (size, notional) seen
        self.on_fill: Callable[[dict[str, Any]], None] | None = None  # every new fill (not history)
        self.on_dead_man_fire: Callable[[int], None] | None = None  # statusTimestamp ms of a scheduledCancel

    # ---- what the connector tells us -------------------------------------------------------

    def expect(self, cloid: str, request: OrderRequest) -> None:
        """We are sending this order: remember its client_id, tif and reduce-only flag."""
        self.client_ids[cloid] = request.client_id
        self._requests[cloid] = request
        if len(self._requests) > ORDERS_REMEMBERED:  # the oldest orders are long settled
            old, _ = self._requests.popitem(last=False)
            self.client_ids.pop(old, None)

    def acknowledged(self, ack: OrderAck) -> None:
        """The venue answered `place`: a resting order is live with `ack.remaining` left."""
        if ack.status == "resting" and ack.oid is not None and ack.oid not in self._live:
            self._live[ack.oid] = _Live(ack.remaining, ack.client_id, announced=False)

    def reconcile(self, open_orders: Iterable[OpenOrder]) -> None:
        """The venue's open orders now (a fresh snapshot): forget orders that are gone."""
        fresh = {}
        for order in open_orders:
            known = self._live.get(order.oid)
            fresh[order.oid] = _Live(order.size, order.client_id, known.announced if known else True)
        self._live = fresh

    # ---- messages ----------------------------------------------------------------------------

    def handle(self, channel: str, data: Any) -> bool:
        """Translate one message; True when it was market data (what keeps the feed fresh)."""
        handler = {
            "allMids": self._all_mids, "activeAssetCtx": self._asset_ctx, "orderUpdates": self._order_updates,
            "userFills": self._user_fills, "user": self._user_events,
        }.get(channel)
        if handler is not None:
            handler(data)
        return channel in MARKET_DATA

    def _all_mids(self, data: Any) -> None:
        """One message, one MarksUpdated: the engine judges the account once per message."""
        mids = parse_mids(data["mids"], self.markets)
        for coin in self._ctx_coins:
            mids.pop(coin, None)
        if not mids:
            return
        now, mono = self.clock.now(), self._monotonic()
        self.marks.update(mids)
        self.mark_times.update(dict.fromkeys(mids, now))
        reported = self._reported
        changed = {coin: px for coin, px in mids.items()
                   if (last := reported.get(coin)) is None or last[0] != px or mono - last[1] >= MARK_REFRESH_SECONDS}
        if changed:
            reported.update({coin: (px, mono) for coin, px in changed.items()})
            self._emit(MarksUpdated(MappingProxyType(changed), now))

    def _asset_ctx(self, data: Any) -> None:
        coin, ctx = canonical_coin(data["coin"]), data["ctx"]
        self._ctx_coins.add(coin)
        if ctx.get("funding") is not None:
            self.funding[coin] = float(ctx["funding"])
        if ctx.get("markPx") is not None:
            self._mark(coin, float(ctx["markPx"]))

    def _mark(self, coin: str, px: float) -> None:
        now, mono = self.clock.now(), self._monotonic()
        self.marks[coin] = px
        self.mark_times[coin] = now
        last = self._reported.get(coin)
        if last is None or last[0] != px or mono - last[1] >= MARK_REFRESH_SECONDS:
            self._reported[coin] = (px, mono)
            self._emit(MarkUpdated(coin, px, now))

    def _order_updates(self, updates: list[dict[str, Any]]) -> None:
        now = self.clock.now()
        for update in updates:
            order, status = update["order"], update["status"]
            oid, coin = str(order["oid"]), canonical_coin(order["coin"])
            cloid = order.get("cloid")
            client_id = self.client_ids.get(cloid, cloid) if cloid else None
            if status == "open":
                live = self._live.setdefault(oid, _Live(float(order["sz"]), client_id, announced=False))
                if live.announced:
                    continue
                live.announced = True
                request = self._requests.get(cloid) if cloid else None
                self._emit(OrderAccepted(
                    oid, coin, side_of(order["side"]), float(order["sz"]), float(order["limitPx"]),
                    request.tif if request else tif_of(order.get("tif")),
                    request.reduce_only if request else bool(order.get("reduceOnly", False)), client_id, now))
            elif status == "filled":
                self._live.pop(oid, None)
            elif is_triggered(status):
                live = self._live.setdefault(oid, _Live(float(order["sz"]), client_id, announced=True))
                if float(order.get("sz") or 0) > 0:
                    live.remaining = float(order["sz"])
                self._emit(self._triggered(order, coin, oid, cloid, client_id, now))
            elif is_cancelled(status):
                self._live.pop(oid, None)
                if status == "scheduledCancel" and self.on_dead_man_fire is not None:
                    self.on_dead_man_fire(int(update.get("statusTimestamp") or self.clock.now() * 1000))
                self._emit(OrderCancelled(oid, coin, status, now, client_id))
            elif is_rejected(status):
                self._live.pop(oid, None)
                self._emit(OrderRejected(oid, client_id, coin, status, f"order {status}", now))

    def request(self, cloid: str | None) -> OrderRequest | None:
        """The order with this cloid as we sent it (None: not ours, or long forgotten)."""
        return self._requests.get(cloid) if cloid else None

    @property
    def requests(self) -> dict[str, OrderRequest]:
        """cloid -> the order as we sent it (read-only use)."""
        return self._requests

    def _triggered(self, order: dict[str, Any], coin: str, oid: str, cloid: str | None, client_id: str | None,
                   now: float) -> OrderTriggered:
        request = self.request(cloid)
        side = side_of(order["side"])
        trigger = request.trigger if request is not None else None
        if trigger is not None:
            trigger_px, tpsl = float(trigger.trigger_px), trigger.tpsl
        else:
            trigger_px = float(order.get("triggerPx") or order.get("limitPx") or 0.0)
            tpsl = tpsl_of(order) or "sl"
        mark = self.marks.get(coin)
        past = mark is not None and (trigger.fires(side, mark) if trigger is not None else False)
        return OrderTriggered(oid, coin, side, trigger_px, mark if past else trigger_px, client_id, now, tpsl)

    def filled(self, oid: str) -> tuple[float, float | None]:
        """(base units, average price) of the fills seen for this order (0, None: none seen)."""
        size, notional = self._filled.get(oid, (0.0, 0.0))
        return size, (notional / size if size else None)

    def _tally(self, fill: dict[str, Any]) -> None:
        oid = str(fill["oid"])
        size, notional = self._filled.get(oid, (0.0, 0.0))
        sz = float(fill["sz"])
        self._filled[oid] = (size + sz, notional + sz * float(fill["px"]))
        self._filled.move_to_end(oid)
        if len(self._filled) > ORDERS_REMEMBERED:
            self._filled.popitem(last=False)

    def _user_fills(self, data: dict[str, Any]) -> None:
        now = self.clock.now()
        snapshot = bool(data.get("isSnapshot"))
        # A re-subscription's snapshot may hold fills made while we were disconnected: unseen
        # ones at or after the newest fill we knew (the venue's own times, never ours) are new.
        known_until = self._newest_fill_ms
        for fill in data.get("fills") or []:
            if not self._remember(fill):
                continue
            self._tally(fill)
            self._newest_fill_ms = max(self._newest_fill_ms or 0, int(fill.get("time") or 0))
            ours = fill.get("cloid") in self._requests  # sent by this connector: never history
            if snapshot and not ours and (known_until is None or int(fill.get("time") or 0) < known_until):
                continue  # history: its effect is in the account snapshot already
            if self.on_fill is not None:
                self.on_fill(fill)
            liquidated = liquidation_of(fill, self.account, now)
            if liquidated is not None:
                self._emit(liquidated)
                continue
            oid = str(fill["oid"])
            live = self._live.get(oid)
            remaining = 0.0
            if live is not None:
                live.remaining = max(0.0, live.remaining - float(fill["sz"]))
                remaining = live.remaining
                if remaining == 0:
                    del self._live[oid]
            cloid = fill.get("cloid")
            client_id = self.client_ids.get(cloid, cloid) if cloid else (live.client_id if live else None)
            self._emit(parse_fill(fill, now, client_id, remaining))

    def _remember(self, fill: dict[str, Any]) -> bool:
        """False when this fill was seen before (the snapshot after a reconnect repeats them)."""
        key = fill.get("tid") or (fill.get("hash"), fill["oid"], fill["time"], fill["sz"], fill["px"])
        if key in self._fills_seen:
            return False
        self._fills_seen.add(key)
        self._fills_order.append(key)
        if len(self._fills_order) > FILLS_REMEMBERED:
            self._fills_seen.discard(self._fills_order.popleft())
        return True

    def _user_events(self, data: dict[str, Any]) -> None:
        if "funding" in data:
            self._emit(parse_funding(data["funding"], self.clock.now()))
