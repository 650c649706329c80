"""The projected account after a full fill of one order: computed once per check, in O(1),
from the Book's incremental aggregates. Every policy reads the same Projection.

Valuation is at mark; the order itself fills at its price (limit price, or mark for a market
order); fees are ignored (they are small next to the caps these figures feed).
"""

from __future__ import annotations

from engine.risk.book import Book
from engine.risk.counters import RiskCounters
from engine.domain.margin import distance_to_liquidation, liquidation_price, margin_buffer
from engine.domain.model import MarginMode, OrderIntent, TradingState

_ACTIVE, _ISOLATED = TradingState.ACTIVE, MarginMode.ISOLATED  # enum members read once (slow to look up in 3.11)


class Projection:
    """Plain slots object (not frozen: built once, read by every policy, fast to construct)."""

    __slots__ = (
        "intent", "coin", "sign", "now", "book", "counters", "state", "book_equity",
        "mark", "mark_age", "account_age", "px", "size", "notional",
        "s0", "s1", "reducing", "would_increase_reduce_only", "clamped",
        "position_notional", "gross", "equity", "account_leverage", "market_leverage",
        "margin_buffer", "isolated_buffer", "liquidation_px", "distance",
    )

    def __init__(self, intent: OrderIntent, book: Book, counters: RiskCounters, state: TradingState, now: float) -> None:
        self.intent = intent
        coin = self.coin = intent.market
        sign = self.sign = intent.sign
        self.now = now
        self.book = book
        self.counters = counters
        self.state = state

        mark = self.mark = book.marks.get(coin)
        mark_time = book.mark_times.get(coin)
        self.mark_age = now - mark_time if mark_time is not None else None
        self.account_age = now - book.account_time if book.account_time is not None else None

        px = intent.limit_px if intent.type == "limit" else mark
        self.px = px
        size = intent.size
        if size is None and px:
            size = intent.notional_usd / px

        leg = book.leg(coin)
        position = leg.position if leg is not None else None
        s0 = self.s0 = position.size if position is not None else 0.0
        closing_direction = s0 != 0.0 and (s0 > 0) != (sign > 0)
        self.would_increase_reduce_only = intent.reduce_only and not closing_direction
        self.clamped = False
        if closing_direction and size is not None and size > abs(s0):
            # A reduce-only order, or any exit while trading is stopped, is clamped to the
            # position rather than allowed to flip it (SPEC section 3).
            if intent.reduce_only or state is not _ACTIVE:
                size, self.clamped = abs(s0), True
        self.size = size
        self.reducing = closing_direction and size is not None and size <= abs(s0)
        self.notional = size * px if size is not None and px else None

        self.s1 = s0 + sign * size if size is not None else None
        equity = self.book_equity = book.equity  # the account now, whether or not the rest can be projected
        # The position after the fill is valued at mark; a new position in a market without a
        # mark is worth what the order pays for it (so USD caps still judge it). An existing
        # position without a mark cannot be valued: its figures stay unknown (fail closed).
        if mark is not None and size is not None:
            notional1 = abs(self.s1) * mark
        elif s0 == 0.0 and self.notional is not None:
            notional1 = self.notional
        elif s0 == 0.0 and intent.notional_usd is not None:
            notional1 = self.notional = intent.notional_usd
        else:
            notional1 = None
        if notional1 is None or equity is None or not book.all_priced:
            self._unknown()
            return

        notional0, mm0, iso0 = (leg.notional, leg.maintenance, leg.isolated_margin) if leg is not None else (0.0, 0.0, None)
        self.position_notional = notional1
        self.gross = book.gross_notional - notional0 + notional1
        self.equity = equity
        self.account_leverage = self.gross / equity if equity > 0 else None

        isolated = position is not None and position.margin_mode is _ISOLATED
        if isolated and iso0 is not None:
            added = max(0.0, notional1 - notional0)
            iso1 = iso0 + added / (intent.leverage or position.leverage or 1.0)
            backing = iso1
        else:
            iso1 = None
            backing = equity
        market_leverage = notional1 / backing if backing > 0 else None
        if intent.leverage is not None and not self.reducing and market_leverage is not None:
            market_leverage = max(market_leverage, intent.leverage)
        self.market_leverage = market_leverage

        table = book.margin_table(coin)
        mm_total = book.maintenance_margin
        if table is None or mm_total is None or mm0 is None:
            self.margin_buffer = self.isolated_buffer = self.liquidation_px = self.distance = None
            return
        tier = table.tier(notional1)
        rate = table.rates[tier]
        mm1 = notional1 * rate - table.deductions[tier]  # table.maintenance_margin(notional1), one tier lookup
        self.margin_buffer = margin_buffer(equity, mm_total - mm0 + mm1)
        if iso1 is not None:
            self.isolated_buffer = margin_buffer(iso1, mm1)
            available = iso1 - mm1
        else:
            self.isolated_buffer = None
            available = book.cross_account_value - (book.cross_maintenance_margin - mm0 + mm1)
        if mark is None or self.s1 is None:
            self.liquidation_px = self.distance = None
            return
        liq = self.liquidation_px = liquidation_price(mark, self.s1, available, rate)
        self.distance = distance_to_liquidation(mark, liq)

    def _unknown(self) -> None:
        self.position_notional = self.gross = self.equity = None
        self.account_leverage = self.market_leverage = None
        self.margin_buffer = self.isolated_buffer = self.liquidation_px = self.distance = None

    @property
    def increases_risk(self) -> bool:
        return not self.reducing
