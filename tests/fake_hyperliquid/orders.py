"""How the fake venue takes orders: the per-order checks, placing limit and trigger orders,
matching them against the book, applying each fill to the account's position and cash, closing
orders, and the TP/SL children of an entry.

Orders (docs "Order types", "Error responses"; per-order errors end in ` asset=N` as the venue
answers them): limit orders (Gtc, Ioc, Alo) match the book level by level inside their limit
(an IOC remainder is cancelled, a GTC remainder rests and fills when the mark reaches its
limit); trigger orders rest until the mark crosses `triggerPx` (a sell tp / buy sl fire going
up, the other two going down), answer `triggered`, then fill reduce-only: market triggers
against the book within the venue's 10% slippage cap, limit triggers as a limit. Grouping
`normalTpsl`: the children wait (`waitingForFill`) until the entry fills; `positionTpsl`: the
children take the whole position when they fire. Siblings cancel each other
(`siblingFilledCanceled`). (Firing and resting fills on mark moves: `clearing.py`.)
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from engine.domain.clock import Clock
from fake_hyperliquid import wire
from fake_hyperliquid.accounts import Account, Margin, Position
from fake_hyperliquid.answers import Refusals, Refused, ok
from fake_hyperliquid.book import Book
from fake_hyperliquid.markets import Market, Markets
from fake_hyperliquid.messages import Messages

OPEN_ORDERS = 1000
MOST_OPEN_ORDERS = 5000
VOLUME_PER_OPEN_ORDER = 5_000_000.0
MARKET_SLIPPAGE = 0.10  # market orders and market triggers fill at most 10% from the mark
PRICE_BAND = 0.80
TAKER_FEE, MAKER_FEE = 0.00045, 0.00015


def fires(order: wire.Order, mark: float) -> bool:
    """Whether a trigger order's triggerPx is reached at this mark."""
    px = float(order.trigger["triggerPx"])
    return mark >= px if order.fires_above else mark <= px


class Orders:
    def __init__(self, markets: Markets, marks: dict[str, float], books: dict[str, Book], clock: Clock,
                 messages: Messages, refusals: Refusals) -> None:
        self.markets = markets
        self.marks = marks
        self.books = books
        self.clock = clock
        self.messages = messages
        self.refusals = refusals
        self._tid = 0
        self._oid = 0
        self._group = 0

    def _now_ms(self) -> int:
        return wire.ms(self.clock.now())

    def _next_tid(self) -> int:
        self._tid += 1
        return self._tid

    def _margin(self, account: Account) -> Margin:
        return Margin(account, self.markets.by_name, self.marks)

    def order_action(self, action: dict[str, Any], account: Account) -> dict[str, Any]:
        grouping = action.get("grouping", "na")
        statuses: list[Any] = []
        entry: wire.Order | None = None
        siblings: list[wire.Order] = []
        group = None
        if grouping in ("normalTpsl", "positionTpsl"):
            self._group += 1
            group = self._group
        for i, w in enumerate(action["orders"]):
            child = grouping == "normalTpsl" and i > 0 and "trigger" in w.get("t", {})
            try:
                order, status = self._place(account, w, grouping, group, entry if child else None)
            except Refused as exc:
                self.refusals.note(str(exc))
                statuses.append({"error": str(exc)})
                continue
            if grouping == "normalTpsl" and i == 0:
                entry = order
            elif order.trigger:
                siblings.append(order)
            statuses.append(status)
        if entry is not None and entry.filled > 0:
            self.activate_children(account, entry)
        return ok("order", statuses)

    def _market(self, asset: Any) -> Market:
        market = self.markets.by_asset.get(asset) if isinstance(asset, int) else None
        if market is None:
            raise Refused(f"Invalid asset {asset}")
        return market

    def _place(self, account: Account, w: dict[str, Any], grouping: str, group: int | None,
               parent: wire.Order | None) -> tuple[wire.Order, Any]:
        market = self._market(w.get("a"))
        suffix = f" asset={market.asset}"
        try:
            size, px = Decimal(str(w["s"])), Decimal(str(w["p"]))
        except (InvalidOperation, KeyError):
            raise Refused(f"Order has invalid size.{suffix}") from None
        buy, reduce_only, cloid = bool(w["b"]), bool(w.get("r", False)), w.get("c")
        t = w.get("t", {})
        trigger = t.get("trigger")
        position_tpsl = grouping == "positionTpsl" and trigger is not None
        if size == 0 and not position_tpsl:
            raise Refused("Order has zero size.")
        if size < 0 or size != size.quantize(market.lot, rounding=ROUND_DOWN):
            raise Refused(f"Order has invalid size.{suffix}")
        if not market.price_ok(px):
            raise Refused(f"Price must be divisible by tick size.{suffix}")
        mark = self.marks.get(market.name)
        if not mark:
            raise Refused(f"Order price too far from oracle.{suffix}")
        if trigger is not None:
            trigger_px = Decimal(str(trigger["triggerPx"]))
            if not market.price_ok(trigger_px):
                raise Refused(f"Price must be divisible by tick size.{suffix}")
        if not (trigger and trigger.get("isMarket")) and abs(float(px) - mark) / mark > PRICE_BAND:
            raise Refused(f"Order price cannot be more than 80% away from the reference price.{suffix}")
        if market.only_isolated and not account.is_isolated(market):
            # The venue's text for a cross leverage on such an asset (answered to updateLeverage,
            # quoted by public bots trading xyz:* markets); an order at cross is refused the same way.
            raise Refused(f"Cross margin is not allowed for this asset.{suffix}")
        tif = t.get("limit", {}).get("tif") if trigger is None else None
        if trigger is None and tif not in ("Gtc", "Ioc", "Alo"):
            raise Refused(f"Invalid order type.{suffix}")
        rests = trigger is not None or tif != "Ioc"
        if rests:
            self._check_open_order_cap(account, reduce_only or trigger is not None, suffix)
        position = account.size(market.name)
        reduces = position != 0 and (position > 0) != buy
        if reduce_only and not reduces and parent is None and not position_tpsl:
            raise Refused(f"Reduce only order would increase position.{suffix}")
        now = self._now_ms()
        if trigger is not None:
            order = self._new_order(account, market, buy, px, size, None, reduce_only, cloid, now)
            order.trigger = {"isMarket": bool(trigger["isMarket"]), "triggerPx": wire.num(float(trigger_px)),
                             "tpsl": trigger["tpsl"]}
            order.position_tpsl, order.group = position_tpsl, group
            if parent is not None:
                order.waiting, order.parent = True, parent.oid
                parent.children.append(order.oid)
            elif fires(order, mark):
                # A trigger already satisfied when placed is refused (BadTriggerPx).
                del account.orders[order.oid]
                raise Refused(f"Invalid TP/SL price.{suffix}")
            self._register(account, order)
            if order.waiting:
                return order, "waitingForFill"
            self.messages.order_update(account, order)
            return order, {"resting": self._ids(order)}
        # A limit order.
        if reduce_only:
            size = min(size, abs(position))
        closes = reduce_only and size >= abs(position)
        if float(size * px) < 10 and not closes:
            raise Refused(f"Order must have minimum value of $10.{suffix}")
        book = self.books[market.name]
        crosses = book.crosses(buy, float(px))
        if tif == "Alo" and crosses:
            bid, ask = book.best()
            raise Refused(f"Post only order would have immediately matched, bbo was {bid}@{ask}.{suffix}")
        if tif == "Ioc" and not crosses:
            raise Refused(f"Order could not immediately match against any resting orders.{suffix}")
        self._check_margin(account, market, buy, size, float(px), reduce_only, suffix)
        order = self._new_order(account, market, buy, px, size, tif, reduce_only, cloid, now)
        order.passive = not (float(px) >= mark if buy else float(px) <= mark)
        self._register(account, order)
        fills = book.take(buy, float(px), size) if crosses else []
        self.apply_taker(account, market, order, fills)
        if order.size > 0 and tif == "Ioc":
            self.close(account, order, "canceled")
        elif order.size > 0:
            self.messages.order_update(account, order)  # rests: "open"
        if order.filled > 0 and order.size == 0 or tif == "Ioc":
            filled = sum(sz for _, sz in fills)
            avg = sum(p * float(sz) for p, sz in fills) / float(filled)
            return order, {"filled": {"totalSz": wire.num(float(filled)), "avgPx": wire.num(avg), **self._ids(order)}}
        return order, {"resting": self._ids(order)}

    def _ids(self, order: wire.Order) -> dict[str, Any]:
        return {"oid": order.oid} | ({"cloid": order.cloid} if order.cloid else {})

    def _new_order(self, account: Account, market: Market, buy: bool, px: Decimal, size: Decimal, tif: str | None,
                   reduce_only: bool, cloid: str | None, now: int) -> wire.Order:
        self._oid += 1
        order = wire.Order(self._oid, market.name, "B" if buy else "A", wire.num(float(px)), float(size), float(size),
                           tif, reduce_only, cloid, now, status_timestamp=now, account=account.address,
                           asset=market.asset)
        account.orders[order.oid] = order
        return order

    def _register(self, account: Account, order: wire.Order) -> None:
        if order.cloid:
            account.by_cloid[order.cloid] = order.oid

    def _check_open_order_cap(self, account: Account, exempt_kind: bool, suffix: str) -> None:
        """docs "Rate limits" (user limits): 1000 open orders, plus one per 5M USDC of volume, at
        most 5000; at 1000 or more open orders a reduce-only or trigger order is refused too.
        The venue's refusal text is not on record: this one is the fake's."""
        count = len(account.pending())
        limit = min(MOST_OPEN_ORDERS, OPEN_ORDERS + int(account.cum_volume // VOLUME_PER_OPEN_ORDER))
        if count >= limit or (exempt_kind and count >= OPEN_ORDERS):
            raise Refused(f"Too many open orders: {count} open, the limit is {limit}.{suffix}")

    def _check_margin(self, account: Account, market: Market, buy: bool, size: Decimal, px: float,
                      reduce_only: bool, suffix: str) -> None:
        if reduce_only:
            return
        position = account.size(market.name)
        reduces = position != 0 and (position > 0) != buy
        adds = size if not reduces else max(Decimal(0), size - abs(position))
        if adds <= 0:
            return
        leverage = account.lev(market)
        required = float(adds) * px / leverage
        if required > self._margin(account).available() + 1e-9:
            raise Refused(f"Insufficient margin to place order.{suffix}")
        new_notional = abs(float(position + (size if buy else -size))) * px
        if leverage > market.table.max_leverage(new_notional):
            raise Refused(f"Order would cause position to exceed margin tier limit at current leverage.{suffix}")

    def apply_taker(self, account: Account, market: Market, order: wire.Order,
                     fills: list[tuple[float, Decimal]], liquidation: bool = False) -> None:
        for px, sz in fills:
            self.fill(account, market, order, px, sz, TAKER_FEE if not liquidation else 0.0, crossed=True,
                       liquidation=liquidation)

    def fill(self, account: Account, market: Market, order: wire.Order | None, px: float, sz: Decimal, fee_rate: float,
              crossed: bool, liquidation: bool = False, buy: bool | None = None) -> None:
        """Apply one fill to the account's position and cash; report it."""
        buy = (order.side == "B") if order is not None else bool(buy)
        signed = sz if buy else -sz
        coin = market.name
        pos = account.positions.get(coin)
        old = pos.size if pos else Decimal(0)
        new = old + signed
        fee = float(sz) * px * fee_rate
        realized = 0.0
        isolated = account.is_isolated(market)
        lev = account.lev(market)
        if pos is None or old == 0:
            pos = account.positions[coin] = Position(signed, px)
            if isolated:
                pos.margin = float(sz) * px / lev
                account.cash -= pos.margin
        elif (old > 0) == (signed > 0):
            w_old, w_add = abs(float(old)), float(sz)
            pos.entry_px = (w_old * pos.entry_px + w_add * px) / (w_old + w_add)
            pos.size = new
            if isolated:
                add = float(sz) * px / lev
                pos.margin += add
                account.cash -= add
        else:
            closed = min(sz, abs(old))
            realized = float(closed) * (px - pos.entry_px) * (1.0 if old > 0 else -1.0)
            if isolated:
                released = pos.margin * float(closed) / abs(float(old))
                pos.margin -= released
                account.cash += released
            if new == 0:
                account.cash += pos.margin
                del account.positions[coin]
            elif (new > 0) == (old > 0):
                pos.size = new
            else:
                account.cash += pos.margin
                fresh = account.positions[coin] = Position(new, px)
                if isolated:
                    fresh.margin = abs(float(new)) * px / lev
                    account.cash -= fresh.margin
        account.cash += realized - fee
        account.cum_volume += float(sz) * px
        now = self._now_ms()
        oid = order.oid if order is not None else 0
        if order is not None:
            order.size = max(0.0, order.size - float(sz))
            order.filled += float(sz)
        liq = {"liquidatedUser": account.address, "markPx": wire.num(self.marks.get(coin, px)),
               "method": "market"} if liquidation else None
        row = wire.fill(coin=coin, side="B" if buy else "A", px=px, size=float(sz), start=float(old),
                        closed_pnl=realized, fee=fee, oid=oid, crossed=crossed, tid=self._next_tid(), time_ms=now,
                        cloid=order.cloid if order is not None else None, liquidation=liq)
        self.messages.add_fill(account, row)
        if order is not None and order.size == 0:
            self.close(account, order, "filled")

    def close(self, account: Account, order: wire.Order, status: str) -> None:
        order.status, order.status_timestamp = status, self._now_ms()
        self.messages.order_update(account, order)
        if status == "filled" and order.parent is None and order.children:
            self.activate_children(account, order)
        if status != "filled" and order.children and order.filled == 0:
            for oid in order.children:  # the entry never filled: its children go with it
                child = account.orders[oid]
                if child.status == "open":
                    self.close(account, child, "canceled")

    def activate_children(self, account: Account, entry: wire.Order) -> None:
        for oid in entry.children:
            child = account.orders[oid]
            if child.status == "open" and child.waiting:
                child.waiting = False
                self.messages.order_update(account, child)
