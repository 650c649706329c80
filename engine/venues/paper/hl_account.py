"""The paper account in Hyperliquid's user-scoped info shapes (docs "Info endpoint" and
"Perpetuals"): `clearinghouseState`, `spotClearinghouseState`, `openOrders`,
`frontendOpenOrders`, `orderStatus`, `historicalOrders`, `userFills`, `userFillsByTime`,
`userFunding`, `userRateLimit`, `userFees`.

They answer for the paper account; any other address is an empty account, as the venue
answers for an address that never deposited. Cross margin only (the paper venue's), so
`marginSummary` and `crossMarginSummary` carry the same figures. In the `unified` and
`portfolio` modes the collateral is the spot USDC balance, as on the venue: the perp summary's
accountValue is only the margin in use plus unrealized PnL and nothing is withdrawable from it;
`spotClearinghouseState` holds the USDC, its `hold` the margin in use.

Figures: accountValue = cash + unrealized PnL at mark; positionValue = |size| × mark;
marginUsed = positionValue / leverage; returnOnEquity = uPnL / (|size| × entry / leverage);
liquidationPx by SPEC 7 (cross: margin available = account value − maintenance margin of all
positions), null when a long's is ≤ 0; withdrawable = account value − margin of positions and
of resting orders that add risk, floored at 0. `cumFunding` (positive = paid) is what the
position paid since it opened, given for `allTime` and `sinceChange` too (the paper venue does
not keep those apart).
"""

from __future__ import annotations

from typing import Any

from engine.domain.margin import liquidation_price
from engine.domain.model import OpenOrder
from engine.venues import hl_wire as wire
from engine.venues.paper.exchange import PaperExchange
from engine.venues.paper.history import OrderRecord

REQUEST_CAP_BASE = 10_000  # the venue's address budget: 10000 requests plus one per USDC traded


def _summary(value: float, ntl: float, signed_ntl: float, used: float) -> dict[str, str]:
    return {"accountValue": wire.usd(value), "totalNtlPos": wire.usd(ntl), "totalRawUsd": wire.usd(value - signed_ntl),
            "totalMarginUsed": wire.usd(used)}


class AccountAnswers:
    def __init__(self, paper: PaperExchange) -> None:
        self.paper = paper

    @property
    def address(self) -> str:
        return self.paper.account_address

    @property
    def unified(self) -> bool:
        return self.paper.account_mode in ("unified", "portfolio")

    def _now(self) -> int:
        return wire.ms(self.paper.clock.now())

    # ---- balances and positions ----------------------------------------------------------------

    def clearinghouse_state(self, user: str) -> dict[str, Any]:
        if user != self.address:
            empty = _summary(0.0, 0.0, 0.0, 0.0)
            return {"marginSummary": empty, "crossMarginSummary": dict(empty), "crossMaintenanceMarginUsed": "0.0",
                    "withdrawable": "0.0", "assetPositions": [], "time": self._now()}
        paper, ledger = self.paper, self.paper.ledger
        account_value = ledger.account_value()
        maintenance = ledger.maintenance_margin()
        positions, ntl, signed_ntl, used, upnl_total = [], 0.0, 0.0, 0.0, 0.0
        for coin, holding in ledger.holdings.items():
            size, mark = float(holding.size), ledger.mark(coin)
            leverage = ledger.leverage[coin]
            value = abs(size) * mark
            margin = value / leverage
            upnl = ledger.unrealized_pnl(coin)
            ntl, signed_ntl, used, upnl_total = ntl + value, signed_ntl + size * mark, used + margin, upnl_total + upnl
            rate = ledger.table(coin).maintenance_rate(value)
            liq = liquidation_price(mark, size, account_value - maintenance, rate)
            basis = abs(size) * holding.entry_px / leverage
            funding = wire.usd(holding.cum_funding)
            positions.append({"type": "oneWay", "position": {
                "coin": coin, "szi": wire.size(holding.size, paper.markets[coin].sz_decimals or 0),
                "leverage": {"type": "cross", "value": leverage}, "entryPx": wire.num(holding.entry_px),
                "positionValue": wire.usd(value), "unrealizedPnl": wire.usd(upnl),
                "returnOnEquity": wire.num(upnl / basis if basis else 0.0),
                "liquidationPx": wire.num(liq) if liq is not None else None, "marginUsed": wire.usd(margin),
                "maxLeverage": int(ledger.max_leverage(coin)),
                "cumFunding": {"allTime": funding, "sinceOpen": funding, "sinceChange": funding},
            }})
        if self.unified:
            value, withdrawable = used + upnl_total, 0.0
        else:
            value, withdrawable = account_value, max(0.0, paper.available_margin())
        summary = _summary(value, ntl, signed_ntl, used)
        return {"marginSummary": summary, "crossMarginSummary": dict(summary),
                "crossMaintenanceMarginUsed": wire.usd(maintenance), "withdrawable": wire.usd(withdrawable),
                "assetPositions": positions, "time": self._now()}

    def spot_clearinghouse_state(self, user: str) -> dict[str, Any]:
        """Standard mode holds nothing in spot (all the collateral is in the perps; the venue
        leaves empty balances out). Unified/portfolio: the USDC collateral (total = cash +
        unrealized PnL; hold = margin of positions and resting orders) and what is left after
        maintenance margin."""
        if user != self.address or not self.unified:
            return {"balances": []}
        ledger = self.paper.ledger
        total = ledger.account_value()
        hold = total - self.paper.available_margin()
        return {"balances": [{"coin": "USDC", "token": 0, "total": wire.usd(total), "hold": wire.usd(hold),
                              "entryNtl": "0.0"}],
                "tokenToAvailableAfterMaintenance": [[0, wire.usd(total - ledger.maintenance_margin())]]}

    def abstraction(self, user: str) -> str:
        """`userAbstraction`: the venue's name of the account mode."""
        if user != self.address:
            return "default"
        return {"standard": "disabled", "unified": "unifiedAccount", "portfolio": "portfolioMargin"}[
            self.paper.account_mode]

    # ---- orders ----------------------------------------------------------------------------

    def _basic(self, order: OpenOrder, record: OrderRecord | None) -> dict[str, Any]:
        """The `openOrders` row of a live order."""
        sz_decimals = self.paper.markets[order.coin].sz_decimals or 0
        row: dict[str, Any] = {"coin": order.coin, "side": wire.side(order.side), "limitPx": wire.num(order.limit_px),
                               "sz": wire.size(order.size, sz_decimals), "oid": int(order.oid),
                               "timestamp": record.timestamp if record else self._now(),
                               "origSz": wire.size(record.orig_size if record else order.size, sz_decimals)}
        cloid = wire.cloid_for(order.client_id)
        if cloid is not None:
            row["cloid"] = cloid
        return row

    def _frontend(self, record: OrderRecord, sz: str | None = None) -> dict[str, Any]:
        """The `frontendOpenOrders` / `orderStatus` row of a remembered order (`sz` what is left)."""
        trigger_px, condition = "0.0", "N/A"
        if record.trigger:
            trigger_px = wire.num(record.trigger["triggerPx"])
            condition = f"Price {'above' if record.fires_above() else 'below'} {trigger_px}"
        info = self.paper.markets.get(record.coin)
        sz_decimals = info.sz_decimals or 0 if info is not None else 0
        children = [self._frontend(child) for child in self.paper.history.waiting_children(record)]
        return {"coin": record.coin, "side": record.side, "limitPx": wire.num(record.limit_px),
                "sz": sz if sz is not None else wire.size(record.remaining, sz_decimals), "oid": record.oid,
                "timestamp": record.timestamp, "triggerCondition": condition, "isTrigger": record.trigger is not None,
                "triggerPx": trigger_px, "children": children, "isPositionTpsl": record.position_tpsl,
                "reduceOnly": record.reduce_only, "orderType": record.order_type,
                "origSz": wire.size(record.orig_size, sz_decimals),
                "tif": None if record.trigger else record.tif, "cloid": record.cloid}

    def open_orders(self, user: str, frontend: bool) -> list[dict[str, Any]]:
        """Live orders, newest first (as the venue lists them)."""
        if user != self.address:
            return []
        rows = []
        history = self.paper.history
        for order in reversed(self.paper.open_orders()):
            record = history.order(int(order.oid))
            if frontend and record is not None:
                sz_decimals = self.paper.markets[order.coin].sz_decimals or 0
                rows.append(self._frontend(record, wire.size(order.size, sz_decimals)))
            else:
                rows.append(self._basic(order, record))
        rows.sort(key=lambda r: (r["timestamp"], r["oid"]), reverse=True)
        return rows

    def order_status(self, user: str, oid: int | str) -> dict[str, Any]:
        history = self.paper.history
        record = None
        if user == self.address:
            record = history.order_by_cloid(oid) if isinstance(oid, str) else history.order(oid)
        if record is None:
            return {"status": "unknownOid"}
        return {"status": "order", "order": {"order": self._frontend(record), "status": record.status,
                                             "statusTimestamp": record.status_timestamp}}

    def historical_orders(self, user: str) -> list[dict[str, Any]]:
        if user != self.address:
            return []
        return [{"order": self._frontend(r), "status": r.status, "statusTimestamp": r.status_timestamp}
                for r in self.paper.history.recent_orders() if r.accepted or r.closed]

    # ---- fills, funding, budgets --------------------------------------------------------------

    def fills(self, user: str, start: int | None = None, end: int | None = None) -> list[dict[str, Any]]:
        """The newest fills first, at most 2000; `start`/`end` (ms, inclusive) filter by time."""
        if user != self.address:
            return []
        history = self.paper.history
        return [history.row(f) for f in reversed(history.fills)
                if (start is None or f.time >= start) and (end is None or f.time <= end)]

    def funding(self, user: str, start: int, end: int | None) -> list[dict[str, Any]]:
        if user != self.address:
            return []
        return [f for f in self.paper.history.funding if f["time"] >= start and (end is None or f["time"] <= end)]

    def rate_limit(self, user: str) -> dict[str, Any]:
        history = self.paper.history
        volume, used = (history.cum_volume, history.orders_placed) if user == self.address else (0.0, 0)
        return {"cumVlm": wire.usd(volume), "nRequestsUsed": used, "nRequestsCap": REQUEST_CAP_BASE + int(volume),
                "nRequestsSurplus": 0}

    def fees(self, user: str) -> dict[str, Any]:
        """The paper venue's fee rates (its base tier) in the `userFees` shape."""
        taker, maker = wire.num(self.paper.taker_fee), wire.num(self.paper.maker_fee)
        return {"dailyUserVlm": [], "feeSchedule": {"cross": taker, "add": maker, "spotCross": taker, "spotAdd": maker,
                                                    "tiers": {"vip": [], "mm": []}, "referralDiscount": "0.0",
                                                    "stakingDiscountTiers": []},
                "userCrossRate": taker, "userAddRate": maker, "userSpotCrossRate": taker, "userSpotAddRate": maker,
                "activeReferralDiscount": "0.0", "trial": None, "feeTrialReward": "0.0",
                "nextTrialAvailableTimestamp": None, "stakingLink": None, "activeStakingDiscount": None}
