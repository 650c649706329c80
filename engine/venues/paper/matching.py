"""The paper exchange's fill model and its resting limit orders, as a part of `PaperExchange`
(`paper.matching`).

Fill model: an order that crosses the mark on arrival (IOC, or a marketable GTC) fills as a
taker at mark × (1 ± slippage), never worse than its limit; an IOC that does not cross is
rejected (`IocCancel`), an ALO that would cross is rejected (`BadAloPx`) (both by
`engine.venues.paper.rules`). With `partial_fill_ratio` each match fills that fraction of what
is left (rounded down to the lot, at least one lot); an IOC's remainder is cancelled, a GTC's
rests. A resting order fills at its own limit (maker fee) when a mark walks through it. What a
fired trigger order became (`engine.venues.paper.triggers`) fills here too (`execute_fired`).

Each fill is told to the trigger orders (a normalTpsl entry's first fill, a position gone), as
is each resting order cancelled (an entry that ends unfilled).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

from engine.domain.clock import Clock
from engine.domain.increments import round_size
from engine.domain.model import MarketInfo, OpenOrder
from engine.venues.connector import OrderAccepted, OrderAck, OrderCancelled, OrderFilled, OrderRequest, VenueEvent
from engine.venues.paper.ledger import Ledger
from engine.venues.paper.triggers import TriggerOrders

IOC_REMAINDER = "IOC remainder cancelled (no more liquidity at the limit)"


@dataclass(slots=True)
class RestingOrder:
    oid: str
    request: OrderRequest
    remaining: Decimal  # base units still live


class Matching:
    """Prices USD, sizes base units, fees fractions of notional. `emit` is the exchange's."""

    def __init__(self, markets: dict[str, MarketInfo], ledger: Ledger, clock: Clock, emit: Callable[[VenueEvent], None],
                 triggers: TriggerOrders, *, taker_fee: float, maker_fee: float, slippage: float,
                 partial_fill_ratio: float | None) -> None:
        self.markets, self.ledger, self.clock, self.triggers = markets, ledger, clock, triggers
        self._emit = emit
        self.taker_fee, self.maker_fee, self.slippage = taker_fee, maker_fee, slippage
        self.partial_fill_ratio = partial_fill_ratio
        self.resting: dict[str, RestingOrder] = {}  # insertion order = time priority

    # ---- reading -------------------------------------------------------------------------

    def open_orders(self) -> tuple[OpenOrder, ...]:
        """The resting limit orders, in time priority."""
        return tuple(
            OpenOrder(r.oid, r.request.coin, r.request.side, float(r.remaining), float(r.request.limit_px),
                      r.request.reduce_only, r.request.client_id)
            for r in self.resting.values()
        )

    def available_margin(self) -> float:
        """Account value − initial margin of positions and of resting orders that add risk (USD)."""
        orders = sum(float(r.remaining * r.request.limit_px) / self.ledger.leverage[r.request.coin]
                     for r in self.resting.values() if not r.request.reduce_only)
        return self.ledger.account_value() - self.ledger.position_margin() - orders

    # ---- matching ------------------------------------------------------------------------

    def take(self, oid: str, order: OrderRequest, size: Decimal, taker_px: float | None, now: float) -> OrderAck:
        """A plain order the venue accepted at `now` (epoch s), for `size` (what the checks
        left of it): it fills as a taker at `taker_px` when it crosses (None: it does not), then
        an IOC's remainder is cancelled and a GTC's rests."""
        remaining = size
        self._emit(OrderAccepted(oid, order.coin, order.side, float(remaining), float(order.limit_px),
                                 order.tif, order.reduce_only, order.client_id, now))
        filled = Decimal(0)
        if taker_px is not None:
            filled = self._match_size(order.coin, remaining)
            remaining -= filled
            self._fill(oid, order, filled, taker_px, remaining, maker=False)
        avg_px = taker_px if filled else None
        if remaining == 0:
            status = "filled"
        elif order.tif == "Ioc":
            status = "partially_filled"
            self._emit(OrderCancelled(oid, order.coin, IOC_REMAINDER, now, order.client_id))
        else:
            status = "resting"
            self.resting[oid] = RestingOrder(oid, order, remaining)
        return OrderAck(oid, order.client_id, status, float(filled), avg_px, float(remaining) if status == "resting" else 0.0)

    def fill_on_mark(self, coin: str, mark: float) -> None:
        """Resting orders the mark crosses fill at their own limit (the price walked through them)."""
        for resting in [r for r in self.resting.values() if r.request.coin == coin]:
            order = resting.request
            limit = float(order.limit_px)
            if (order.side == "buy" and mark > limit) or (order.side == "sell" and mark < limit):
                continue
            size = self._match_size(coin, resting.remaining)
            if order.reduce_only:
                position = self.ledger.size(coin)
                if position == 0 or (position > 0) == (order.sign > 0):
                    self.cancel(resting, "Reduce only order would increase position.")
                    continue
                size = min(size, abs(position))
            resting.remaining -= size
            if resting.remaining == 0:
                del self.resting[resting.oid]
            self._fill(resting.oid, order, size, limit, resting.remaining, maker=True)
            if order.reduce_only and resting.remaining > 0 and self.ledger.size(coin) == 0:
                self.cancel(resting, "Reduce only order would increase position (position closed).")

    def execute_fired(self, oid: str, order: OrderRequest, mark: float, now: float) -> None:
        """What a trigger fired at `mark` became (`triggers.ExecuteFired`): a market one (`Ioc`)
        fills at mark ± slippage (taker; its limit is no cap), a limit one at its limit when
        marketable, else it rests as a plain reduce-only limit."""
        coin, size, buy, market = order.coin, order.size, order.side == "buy", order.tif == "Ioc"
        if market:
            px: float | None = mark * (1 + self.slippage) if buy else mark * (1 - self.slippage)
        else:
            limit = float(order.limit_px)
            crosses = limit >= mark if buy else limit <= mark
            px = None if not crosses else min(limit, mark * (1 + self.slippage)) if buy else max(limit, mark * (1 - self.slippage))
        if px is None:
            self.resting[oid] = RestingOrder(oid, order, size)  # a limit stop below the market rests
            return
        filled = self._match_size(coin, size)
        remaining = size - filled
        if remaining > 0 and not market:
            self.resting[oid] = RestingOrder(oid, order, remaining)
        self._fill(oid, order, filled, px, remaining, maker=False)
        if remaining > 0 and market:
            self._emit(OrderCancelled(oid, coin, IOC_REMAINDER, now, order.client_id))
        if not self.ledger.holdings and self.ledger.cash < 0:
            self.ledger.cash = 0.0  # a stop filled past the equity (a gap): the venue absorbs the deficit

    def _match_size(self, coin: str, remaining: Decimal) -> Decimal:
        """How much of `remaining` one match fills: all of it, or the partial-fill ratio
        (rounded down to the lot, at least one lot)."""
        if self.partial_fill_ratio is None:
            return remaining
        lot = Decimal(1).scaleb(-self.markets[coin].sz_decimals)
        part = round_size(remaining * Decimal(repr(self.partial_fill_ratio)), self.markets[coin].sz_decimals)
        return min(remaining, max(part, lot))

    def _fill(self, oid: str, order: OrderRequest, size: Decimal, px: float, remaining: Decimal, maker: bool) -> None:
        fee = float(size) * px * (self.maker_fee if maker else self.taker_fee)
        realized = self.ledger.fill(order.coin, order.sign * size, px, fee)
        self._emit(OrderFilled(oid, order.coin, order.side, float(size), px, fee, realized, float(remaining),
                               self.clock.now(), order.client_id, maker))
        triggers = self.triggers
        triggers.entry_filled(oid)
        if triggers.resting:
            triggers.drop_orphans(order.coin)

    # ---- cancelling ----------------------------------------------------------------------

    def cancel_order(self, coin: str, oid: str, reason: str) -> bool:
        """Cancel the resting order `oid` of `coin`; False when no such one rests."""
        resting = self.resting.get(oid)
        if resting is None or resting.request.coin != coin:
            return False
        self.cancel(resting, reason)
        return True

    def cancel_all(self, reason: str) -> int:
        """Cancel every resting order, trigger orders first (so each says `reason`); how many."""
        orders = list(self.resting.values())
        triggers = self.triggers.cancel_all(reason)
        for resting in orders:
            self.cancel(resting, reason)
        return triggers + len(orders)

    def cancel(self, resting: RestingOrder, reason: str) -> None:
        self.resting.pop(resting.oid, None)
        self._emit(OrderCancelled(resting.oid, resting.request.coin, reason, self.clock.now(), resting.request.client_id))
        self.triggers.entry_ended(resting.oid)
