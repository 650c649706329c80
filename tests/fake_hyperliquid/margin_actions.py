"""How the fake venue changes an account's margin settings on a market: `updateLeverage` (the
leverage and cross/isolated, refused when it would leave too little margin or break the
market's tier) and `updateIsolatedMargin` (USD into or out of an isolated position)."""

from __future__ import annotations

from typing import Any

from fake_hyperliquid.accounts import Account, Margin
from fake_hyperliquid.answers import Refusals, ok
from fake_hyperliquid.markets import Markets


class MarginActions:
    def __init__(self, markets: Markets, marks: dict[str, float], refusals: Refusals) -> None:
        self.markets = markets
        self.marks = marks
        self.refusals = refusals

    def _margin(self, account: Account) -> Margin:
        return Margin(account, self.markets.by_name, self.marks)

    def update_leverage(self, action: dict[str, Any], account: Account) -> dict[str, Any]:
        market = self.markets.by_asset.get(action.get("asset"))
        if market is None:
            return self.refusals.refuse(f"Invalid asset {action.get('asset')}")
        leverage, cross = action.get("leverage"), bool(action.get("isCross"))
        if cross and market.only_isolated:
            return self.refusals.refuse("Cross margin is not allowed for this asset.")
        if not isinstance(leverage, int) or not 1 <= leverage <= market.max_leverage:
            return self.refusals.refuse("Invalid leverage value")
        if market.name in account.positions and account.is_isolated(market) == cross:
            return self.refusals.refuse("Cannot switch leverage type with open position.")
        previous = (account.leverage.get(market.name), account.isolated.get(market.name))
        account.leverage[market.name], account.isolated[market.name] = leverage, not cross
        m = self._margin(account)
        notional = m.notional(market.name) if market.name in account.positions else 0.0
        if m.available() < 0 or leverage > market.table.max_leverage(notional):
            account.leverage[market.name], account.isolated[market.name] = previous
            if previous[0] is None:
                del account.leverage[market.name]
            if previous[1] is None:
                del account.isolated[market.name]
            return self.refusals.refuse("Cross position does not have sufficient margin available to decrease "
                                        "leverage. To decrease leverage, deposit more collateral.")
        return ok("default")

    def update_isolated_margin(self, action: dict[str, Any], account: Account) -> dict[str, Any]:
        """Moves USD (`ntli`, 6 decimals) into (> 0) or out of (< 0) an isolated position's margin.
        Out only down to the venue's transfer floor, max(notional / leverage, 10% of notional)
        (as the venue's UI computes it, e.g. ava-labs/core-mobile #4010); the refusal texts are
        the fake's own (the venue's are not documented)."""
        market = self.markets.by_asset.get(action.get("asset"))
        ntli = action.get("ntli")
        if market is None:
            return self.refusals.refuse(f"Invalid asset {action.get('asset')}")
        position = account.positions.get(market.name)
        if position is None or not account.is_isolated(market):
            return self.refusals.refuse("No isolated position to update margin for.")
        if isinstance(ntli, bool) or not isinstance(ntli, int):
            return self.refusals.refuse("Invalid ntli")
        amount = ntli / 1e6
        m = self._margin(account)
        if amount > 0 and amount > m.available():
            return self.refusals.refuse("Insufficient margin to add to isolated position.")
        notional = m.notional(market.name)
        floor = max(notional / account.lev(market), 0.1 * notional)
        if amount < 0 and position.margin + amount < floor:
            return self.refusals.refuse("Insufficient margin for reduction of isolated margin.")
        position.margin += amount
        account.cash -= amount
        return ok("default")

