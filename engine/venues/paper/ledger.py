"""The paper account: cash, positions and marks, with Hyperliquid's cross-margin arithmetic
(SPEC section 7). One cross account; isolated margin is not modelled.

Units: USD for money and prices; sizes are exact signed `Decimal` base units (long > 0), so
positions never accumulate float dust; money is float (pure arithmetic; tests pin tolerances).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine.domain.margin import MarginTable
from engine.domain.model import MarketInfo

# Hyperliquid's default leverage for a market nobody has set (capped by the market's maximum).
DEFAULT_LEVERAGE = 20


@dataclass(slots=True)
class Holding:
    """One open position (mutable, internal to the ledger)."""

    size: Decimal  # signed base units
    entry_px: float  # USD, size-weighted average of the fills that opened it
    cum_funding: float = 0.0  # USD paid since it opened (positive = paid, negative = received)


@dataclass(frozen=True, slots=True)
class Closure:
    """A position closed by the venue: signed size, at px (USD), realized PnL (USD)."""

    coin: str
    size: Decimal
    px: float
    realized_pnl: float


class Ledger:
    """Cash + positions at mark. `cash` is deposits + realized PnL − fees − funding paid."""

    def __init__(self, markets: dict[str, MarketInfo], equity: float, default_leverage: int = DEFAULT_LEVERAGE) -> None:
        self.markets = markets
        self.cash = float(equity)
        self.holdings: dict[str, Holding] = {}
        self.marks: dict[str, float] = {}
        self.leverage: dict[str, int] = {
            coin: int(min(default_leverage, self.table(coin).max_leverage(0.0))) or 1 for coin in markets
        }
        self.fees_paid = 0.0
        self.realized_pnl = 0.0
        self.funding_paid = 0.0

    def table(self, coin: str) -> MarginTable:
        return self.markets[coin].margin_table  # type: ignore[return-value]

    def max_leverage(self, coin: str, notional: float = 0.0) -> float:
        return self.table(coin).max_leverage(notional)

    # ---- reading -------------------------------------------------------------------------

    def size(self, coin: str) -> Decimal:
        holding = self.holdings.get(coin)
        return holding.size if holding else Decimal(0)

    def mark(self, coin: str) -> float:
        """Mark (USD); a position without a mark yet is valued at its entry."""
        mark = self.marks.get(coin)
        if mark is None:
            holding = self.holdings.get(coin)
            return holding.entry_px if holding else 0.0
        return mark

    def unrealized_pnl(self, coin: str) -> float:
        holding = self.holdings.get(coin)
        if holding is None:
            return 0.0
        return float(holding.size) * (self.mark(coin) - holding.entry_px)

    def notional(self, coin: str) -> float:
        """|size| × mark, USD."""
        return abs(float(self.size(coin))) * self.mark(coin)

    def account_value(self) -> float:
        """Cash plus unrealized PnL at mark (USD): Hyperliquid's accountValue."""
        return self.cash + sum(self.unrealized_pnl(coin) for coin in self.holdings)

    def maintenance_margin(self) -> float:
        """Sum over positions of the tiered maintenance margin at mark (USD)."""
        return sum(self.table(coin).maintenance_margin(self.notional(coin)) for coin in self.holdings)

    def position_margin(self) -> float:
        """Initial margin held by positions: Σ notional / leverage at mark (USD)."""
        return sum(self.notional(coin) / self.leverage[coin] for coin in self.holdings)

    def liquidatable(self) -> bool:
        """SPEC 7: liquidation happens when account value < maintenance margin, at mark."""
        return bool(self.holdings) and self.account_value() < self.maintenance_margin()

    # ---- changing ------------------------------------------------------------------------

    def fill(self, coin: str, signed_size: Decimal, px: float, fee: float) -> float:
        """Apply a fill of `signed_size` base units at `px`; charge `fee` USD. Returns the
        realized PnL (USD, before the fee) of the part that closed the position."""
        holding = self.holdings.get(coin)
        old = holding.size if holding else Decimal(0)
        new = old + signed_size
        realized = 0.0
        if holding is None or old == 0:
            self.holdings[coin] = Holding(signed_size, px)
        elif (old > 0) == (signed_size > 0):
            weight_old, weight_add = abs(float(old)), abs(float(signed_size))
            holding.entry_px = (weight_old * holding.entry_px + weight_add * px) / (weight_old + weight_add)
            holding.size = new
        else:
            closed = min(abs(signed_size), abs(old))
            realized = float(closed) * (px - holding.entry_px) * (1.0 if old > 0 else -1.0)
            if new == 0:
                del self.holdings[coin]
            elif (new > 0) == (old > 0):
                holding.size = new
            else:  # flipped: the rest opens a new position at the fill price
                self.holdings[coin] = Holding(new, px)
        self.cash += realized - fee
        self.realized_pnl += realized
        self.fees_paid += fee
        return realized

    def pay_funding(self, coin: str, payment: float) -> None:
        """The account pays `payment` USD (negative: receives) on its `coin` position."""
        self.cash -= payment
        self.funding_paid += payment
        holding = self.holdings.get(coin)
        if holding is not None:
            holding.cum_funding += payment

    def close_all_at_mark(self) -> list[Closure]:
        """Close every position at its mark (a cross liquidation). A deficit below zero is
        absorbed by the venue (Hyperliquid's liquidator vault), so cash never goes negative."""
        closures = []
        for coin in list(self.holdings):
            holding = self.holdings[coin]
            px = self.mark(coin)
            size = holding.size
            realized = self.fill(coin, -size, px, 0.0)
            closures.append(Closure(coin, size, px, realized))
        self.cash = max(self.cash, 0.0)
        return closures
