"""One clearinghouse account of the fake venue (a master user, a subaccount or a vault): USDC
collateral, positions (cross or isolated), orders, fills, traded volume, the address budget
and the dead-man switch. The margin arithmetic is SPEC section 7 (`engine.domain.margin`).

How the figures are computed (see the docstrings of info.py and clearing.py for the sources):

- `cash`: deposits + realized PnL − fees − funding, minus the margin moved into isolated
  positions. For a standard account (`default`, `disabled`, `dexAbstraction`) it is the perp
  balance; for `unifiedAccount` / `portfolioMargin` it is the spot USDC balance the perps draw on.
- cross value = cash + Σ unrealized PnL of cross positions; account value = cross value +
  Σ (isolated margin + its unrealized PnL).
- margin used: cross notional / leverage; isolated: its margin + unrealized PnL.
- maintenance margin: the market's tiered table at mark (`MarginTable.maintenance_margin`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fake_hyperliquid.markets import Market
from fake_hyperliquid.wire import Order, ms, num

UNIFIED = ("unifiedAccount", "portfolioMargin")
DEFAULT_LEVERAGE = 20  # the venue's default leverage for a market never set (capped by its max)


@dataclass
class Position:
    size: Decimal  # signed base units
    entry_px: float
    margin: float = 0.0  # isolated margin (USD); 0 for cross
    cum_funding: float = 0.0


@dataclass
class Account:
    address: str
    kind: str  # "user" | "subAccount" | "vault"
    master: str | None
    cash: float
    abstraction: str = "default"
    spot_usdc: float = 0.0  # a standard account's spot USDC (unified: `cash` is the spot balance)
    cum_volume: float = 0.0
    requests_used: int = 0
    positions: dict[str, Position] = field(default_factory=dict)
    leverage: dict[str, int] = field(default_factory=dict)
    isolated: dict[str, bool] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    by_cloid: dict[str, int] = field(default_factory=dict)
    fills: list[dict[str, Any]] = field(default_factory=list)
    last_throttled_ms: int | None = None
    dead_man_ms: int | None = None
    dead_man_day: int = -1
    dead_man_fired: int = 0
    liquidation_cooldown_ms: int = 0

    @property
    def ledger(self) -> Account:
        """Kept for older tests that read `venue.paper.ledger.leverage[coin]`."""
        return self

    @property
    def unified(self) -> bool:
        return self.abstraction in UNIFIED

    # ---- reading ---------------------------------------------------------------------------

    def size(self, coin: str) -> Decimal:
        pos = self.positions.get(coin)
        return pos.size if pos else Decimal(0)

    def lev(self, market: Market) -> int:
        return self.leverage.get(market.name, min(DEFAULT_LEVERAGE, market.max_leverage))

    def is_isolated(self, market: Market) -> bool:
        return self.isolated.get(market.name, False)

    def upnl(self, coin: str, mark: float) -> float:
        pos = self.positions.get(coin)
        return float(pos.size) * (mark - pos.entry_px) if pos else 0.0

    def open_orders(self) -> list[Order]:
        return [o for o in self.orders.values() if o.is_open]

    def pending(self) -> list[Order]:
        """Open orders, untriggered triggers and waiting children: what scheduleCancel cancels."""
        return [o for o in self.orders.values() if o.status == "open"]


class Margin:
    """The account's margin figures at the venue's marks."""

    def __init__(self, account: Account, markets: dict[str, Market], marks: dict[str, float], dex: str | None = None):
        self.a, self.markets, self.marks = account, markets, marks
        self.rows = [(self.markets[c], p) for c, p in account.positions.items()
                     if dex is None or self.markets[c].dex == dex]

    def mark(self, coin: str) -> float:
        return self.marks.get(coin) or self.a.positions[coin].entry_px

    def notional(self, coin: str) -> float:
        return abs(float(self.a.size(coin))) * self.mark(coin)

    def cross_upnl(self) -> float:
        return sum(self.a.upnl(m.name, self.mark(m.name)) for m, p in self.rows if not self.a.is_isolated(m))

    def isolated_margin(self) -> float:
        return sum(p.margin for m, p in self.rows if self.a.is_isolated(m))

    def isolated_equity(self) -> float:
        return sum(p.margin + self.a.upnl(m.name, self.mark(m.name)) for m, p in self.rows if self.a.is_isolated(m))

    def cross_value(self) -> float:
        return self.a.cash + self.cross_upnl()

    def account_value(self) -> float:
        return self.cross_value() + self.isolated_equity()

    def cross_mm(self) -> float:
        return sum(m.table.maintenance_margin(self.notional(m.name)) for m, p in self.rows if not self.a.is_isolated(m))

    def cross_initial(self) -> float:
        return sum(self.notional(m.name) / self.a.lev(m) for m, p in self.rows if not self.a.is_isolated(m))

    def order_margin(self) -> float:
        total = 0.0
        for o in self.a.open_orders():
            if o.reduce_only or o.trigger:
                continue
            market = self.markets[o.coin]
            total += o.size * float(o.limit_px) / self.a.lev(market)
        return total

    def available(self) -> float:
        return self.cross_value() - self.cross_initial() - self.order_margin()

    def margin_used(self) -> float:
        return self.cross_initial() + self.isolated_equity()

    def spot_total(self) -> float:
        """A unified account's spot USDC `total`: its balance with the isolated margin it lent
        out and every position's unrealized PnL."""
        return self.a.cash + self.isolated_margin() + self.cross_upnl() + (self.isolated_equity() - self.isolated_margin())

    def unified_ratio(self) -> float:
        """docs "Account abstraction modes", computeUnifiedAccountRatio: cross maintenance
        margin / (spot total − isolated margin), per collateral token (USDC only here)."""
        available = self.spot_total() - self.isolated_margin()
        mm = self.cross_mm()
        if mm == 0:
            return 0.0
        return float("inf") if available <= 0 else mm / available

    def cross_liquidatable(self) -> bool:
        if not any(not self.a.is_isolated(m) for m, p in self.rows):
            return False
        if self.a.unified:
            return self.unified_ratio() > 1.0
        return self.cross_value() < self.cross_mm()


def clearinghouse_state(account: Account, markets: dict[str, Market], marks: dict[str, float], dex: str,
                        now: float) -> dict[str, Any]:
    """`clearinghouseState` of one dex. A unified/portfolio account's perp summary carries no
    collateral: accountValue is only the margin in use plus unrealized PnL (0 with no position),
    withdrawable 0 — the collateral is in `spotClearinghouseState`."""
    m = Margin(account, markets, marks, dex)
    positions, total_ntl, signed_ntl = [], 0.0, 0.0
    for market, pos in m.rows:
        size, mark, leverage = float(pos.size), m.mark(market.name), account.lev(market)
        value = abs(size) * mark
        total_ntl += value
        signed_ntl += size * mark
        upnl = account.upnl(market.name, mark)
        isolated = account.is_isolated(market)
        used = pos.margin + upnl if isolated else value / leverage
        lev = {"type": "isolated", "value": leverage, "rawUsd": num(pos.margin - size * pos.entry_px)} if isolated \
            else {"type": "cross", "value": leverage}
        positions.append({"type": "oneWay", "position": {
            "coin": market.name, "szi": str(pos.size), "entryPx": num(pos.entry_px), "leverage": lev,
            "liquidationPx": None, "marginUsed": num(used), "maxLeverage": market.max_leverage,
            "positionValue": num(value), "returnOnEquity": num(upnl / (abs(size) * pos.entry_px / leverage)),
            "unrealizedPnl": num(upnl),
            "cumFunding": {"allTime": num(pos.cum_funding), "sinceChange": num(pos.cum_funding),
                           "sinceOpen": num(pos.cum_funding)},
        }})
    if account.unified or dex != "":
        # No perp collateral of its own here (unified: in spot; a builder dex: nothing moved in).
        value = m.cross_initial() + m.cross_upnl() + m.isolated_equity()
        withdrawable = 0.0
    else:
        value = m.account_value()
        withdrawable = max(0.0, m.cross_value() - m.cross_initial() - m.order_margin())
    summary = {"accountValue": num(value), "totalMarginUsed": num(m.margin_used()), "totalNtlPos": num(total_ntl),
               "totalRawUsd": num(value - signed_ntl)}
    cross_value = value - m.isolated_equity()
    cross = {"accountValue": num(cross_value), "totalMarginUsed": num(m.cross_initial()),
             "totalNtlPos": num(sum(m.notional(mk.name) for mk, p in m.rows if not account.is_isolated(mk))),
             "totalRawUsd": num(cross_value - sum(float(p.size) * m.mark(mk.name) for mk, p in m.rows
                                                  if not account.is_isolated(mk)))}
    return {"assetPositions": positions, "crossMaintenanceMarginUsed": num(m.cross_mm()),
            "crossMarginSummary": cross, "marginSummary": summary, "time": ms(now), "withdrawable": num(withdrawable)}


def spot_state(account: Account, markets: dict[str, Market], marks: dict[str, float]) -> dict[str, Any]:
    """`spotClearinghouseState`. Unified/portfolio: the USDC collateral (its total counts the
    perps' unrealized PnL, its hold the margin in use), and `tokenToAvailableAfterMaintenance`
    = total − cross maintenance margin − isolated margin. Standard: its own spot USDC, and no row
    for a token it does not hold (the venue leaves out empty balances)."""
    if account.unified:
        m = Margin(account, markets, marks)
        total = m.spot_total()
        hold = m.cross_initial() + m.isolated_margin() + m.order_margin()
        return {"balances": [{"coin": "USDC", "token": 0, "total": num(total), "hold": num(hold), "entryNtl": "0.0"}],
                "tokenToAvailableAfterMaintenance": [[0, num(total - m.cross_mm() - m.isolated_margin())]]}
    balances = []
    if account.spot_usdc:
        balances.append({"coin": "USDC", "token": 0, "total": num(account.spot_usdc), "hold": "0.0", "entryNtl": "0.0"})
    return {"balances": balances}
