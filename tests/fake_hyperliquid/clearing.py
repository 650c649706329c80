"""The fake venue's clearing: time and marks move, and what follows from them on every account —
the dead-man switches and hourly funding fall due, resting limit orders fill when the mark
reaches them, triggers fire, and accounts past maintenance are liquidated.

Liquidation (docs "Liquidations" and the venue's announcement of partial liquidations:
"For liquidatable positions larger than 100k USDC ..., only 20% of the position will be sent as
a market liquidation order to the book. After a block where any position of a user is
partially liquidated, there is a cooldown period of 30 seconds. During this cooldown period,
all market liquidation orders for that user will be for the entire position"): a standard
account when cross account value < cross maintenance margin; an isolated position when its
margin + PnL < its maintenance margin; a unified/portfolio account by computeUnifiedAccountRatio
(docs "Account abstraction modes": cross maintenance margin / (spot USDC total − isolated
margin) > 1). Liquidation fills carry `liquidation`; a deficit is absorbed (cash floors at 0).
"""

from __future__ import annotations

import math
from decimal import ROUND_DOWN, Decimal

from engine.domain.clock import Clock
from fake_hyperliquid import wire
from fake_hyperliquid.accounts import Account, Margin
from fake_hyperliquid.book import Book
from fake_hyperliquid.cancels import Cancels
from fake_hyperliquid.markets import Markets
from fake_hyperliquid.messages import Messages
from fake_hyperliquid.orders import MAKER_FEE, MARKET_SLIPPAGE, Orders, fires

HOUR = 3600.0
PARTIAL_LIQUIDATION_ABOVE = 100_000.0
PARTIAL_LIQUIDATION_SHARE = Decimal("0.2")
LIQUIDATION_COOLDOWN_MS = 30_000
FUNDING_CAP = 0.04


class Clearing:
    def __init__(self, accounts: dict[str, Account], markets: Markets, marks: dict[str, float],
                 funding_rates: dict[str, float], books: dict[str, Book], clock: Clock, orders: Orders,
                 cancels: Cancels, messages: Messages) -> None:
        self.accounts = accounts
        self.markets = markets
        self.marks = marks
        self.funding_rates = funding_rates
        self.books = books
        self.clock = clock
        self.orders = orders
        self.cancels = cancels
        self.messages = messages
        self._funding_hour = math.floor(clock.now() / HOUR)

    def _now_ms(self) -> int:
        return wire.ms(self.clock.now())

    def _margin(self, account: Account) -> Margin:
        return Margin(account, self.markets.by_name, self.marks)

    def set_mark(self, coin: str, px: float) -> None:
        if coin not in self.markets.by_name:
            raise KeyError(f"unknown market {coin}")
        if not (px > 0 and math.isfinite(px)):
            raise ValueError(f"mark must be a positive number, not {px!r}")
        self.poll()
        self.marks[coin] = float(px)
        self.books[coin].regenerate(float(px))
        self.after_change()

    def set_funding_rate(self, coin: str, hourly_rate: float) -> None:
        self.funding_rates[coin] = hourly_rate

    def tick(self) -> None:
        """A block: the book comes back around the mark, timers run, triggers and liquidations."""
        for coin, book in self.books.items():
            book.regenerate(self.marks.get(coin, 0.0))
        self.poll()
        self.after_change()

    def poll(self) -> None:
        """What is due now: the dead-man switches, hourly funding."""
        self.cancels.fire_due(self.accounts.values())
        hour = math.floor(self.clock.now() / HOUR)
        while self._funding_hour < hour:
            self._funding_hour += 1
            self._pay_funding(self._funding_hour * HOUR)

    def _pay_funding(self, at: float) -> None:
        for account in self.accounts.values():
            for coin, pos in list(account.positions.items()):
                rate = max(-FUNDING_CAP, min(FUNDING_CAP, self.funding_rates.get(coin, 0.0)))
                if rate == 0:
                    continue
                mark = self.marks.get(coin, pos.entry_px)
                payment = float(pos.size) * mark * rate
                account.cash -= payment
                pos.cum_funding += payment
                self.messages.funding(account, {
                    "time": wire.ms(at), "coin": coin, "usdc": wire.num(-payment), "szi": wire.num(float(pos.size)),
                    "fundingRate": wire.num(rate), "nSamples": None})

    def after_change(self) -> None:
        for account in self.accounts.values():
            self._fill_resting(account)
            self._fire_triggers(account)
            self._liquidate(account)

    def _fill_resting(self, account: Account) -> None:
        """A resting limit order placed on its own side of the mark fills at its limit once the
        mark reaches it (maker). The remainder of a marketable GTC takes the book's depth inside
        its limit as the book comes back (each block or mark)."""
        for order in [o for o in account.open_orders() if not o.trigger]:
            mark = self.marks.get(order.coin)
            limit = float(order.limit_px)
            buy = order.side == "B"
            book = self.books[order.coin]
            reached = mark is not None and order.passive and (mark <= limit if buy else mark >= limit)
            if not reached and not book.crosses(buy, limit):
                continue
            market = self.markets.by_name[order.coin]
            size = Decimal(wire.num(order.size))
            if order.reduce_only:
                position = account.size(order.coin)
                if position == 0 or (position > 0) == buy:
                    self.orders.close(account, order, "reduceOnlyCanceled")
                    continue
                size = min(size, abs(position))
            if reached:
                self.orders.fill(account, market, order, limit, size, MAKER_FEE, crossed=False)
            else:
                for px, sz in book.take(buy, limit, size):
                    self.orders.fill(account, market, order, px, sz, MAKER_FEE, crossed=False)
            if order.status == "open" and order.reduce_only and account.size(order.coin) == 0:
                self.orders.close(account, order, "reduceOnlyCanceled")

    def _fire_triggers(self, account: Account) -> None:
        for order in [o for o in account.open_orders() if o.trigger]:
            mark = self.marks.get(order.coin)
            if mark is None or not fires(order, mark):
                continue
            market = self.markets.by_name[order.coin]
            trigger = order.trigger
            order.status, order.status_timestamp = "triggered", self._now_ms()
            self.messages.order_update(account, order)
            order.status = "open"
            for oid in [o.oid for o in account.pending() if o.group is not None and o.group == order.group
                        and o.oid != order.oid and o.trigger]:
                self.orders.close(account, account.orders[oid], "siblingFilledCanceled")
            order.trigger = None
            position = account.size(order.coin)
            buy = order.side == "B"
            if position == 0 or (position > 0) == buy:
                self.orders.close(account, order, "reduceOnlyCanceled")
                continue
            size = abs(position) if order.position_tpsl else min(Decimal(wire.num(order.orig_size)), abs(position))
            order.orig_size = order.size = float(size)
            order.reduce_only = True
            book = self.books[order.coin]
            if trigger["isMarket"]:
                limit = mark * (1 + MARKET_SLIPPAGE) if buy else mark * (1 - MARKET_SLIPPAGE)
                fills = book.take(buy, limit, size)
                self.orders.apply_taker(account, market, order, fills)
                if order.status == "open":
                    self.orders.close(account, order, "canceled" if fills else "marketOrderNoLiquidityRejected")
            else:
                order.tif = "Gtc"
                limit = float(order.limit_px)
                if book.crosses(buy, limit):
                    self.orders.apply_taker(account, market, order, book.take(buy, limit, size))
                if order.status == "open":
                    self.messages.order_update(account, order)

    def _liquidate(self, account: Account) -> None:
        if not account.positions:
            return
        now = self._now_ms()
        m = self._margin(account)
        doomed: list[str] = []
        if m.cross_liquidatable():
            doomed += [c for c in account.positions if not account.is_isolated(self.markets.by_name[c])]
        for coin, pos in account.positions.items():
            market = self.markets.by_name[coin]
            if account.is_isolated(market) and coin not in doomed:
                equity = pos.margin + account.upnl(coin, m.mark(coin))
                if equity < market.table.maintenance_margin(m.notional(coin)):
                    doomed.append(coin)
        if not doomed:
            return
        cross = m.cross_liquidatable()
        for order in account.pending():
            if cross or order.coin in doomed:
                self.orders.close(account, order, "liquidatedCanceled")
        in_cooldown = now < account.liquidation_cooldown_ms
        partial = False
        for coin in doomed:
            market = self.markets.by_name[coin]
            pos = account.positions.get(coin)
            if pos is None:
                continue
            size = abs(pos.size)
            if m.notional(coin) > PARTIAL_LIQUIDATION_ABOVE and not in_cooldown:
                size = (size * PARTIAL_LIQUIDATION_SHARE).quantize(market.lot, rounding=ROUND_DOWN)
                partial = True
            buy = pos.size < 0
            mark = self.marks[coin]
            limit = mark * (1 + MARKET_SLIPPAGE) if buy else mark * (1 - MARKET_SLIPPAGE)
            fills = self.books[coin].take(buy, limit, size) or [(mark, size)]  # the backstop takes what the book won't
            for px, sz in fills:
                self.orders.fill(account, market, None, px, sz, 0.0, crossed=True, liquidation=True, buy=buy)
        if partial:
            account.liquidation_cooldown_ms = now + LIQUIDATION_COOLDOWN_MS
        if not account.positions:
            account.cash = max(account.cash, 0.0)  # a deficit is the backstop's (HLP), not the user's
