"""The fake venue's `/info` answers: market data (meta, asset contexts, mids, the book, the
recorded candles and funding history) and each account's state (clearinghouse, spot, orders,
fills, role, abstraction, agents, rate limit), in the shapes the venue answers them.

Unified accounts (docs "Account abstraction modes"; nautilus_trader #4206, wayfinder-paths-sdk
#615: "On a UnifiedAccount, USDC collateral lives in spot, so marginSummary.accountValue reads
~0 when no perp positions are open"): `spotClearinghouseState` holds the USDC: total = the
balance + isolated margin lent out + every position's unrealized PnL, hold = margin in use,
tokenToAvailableAfterMaintenance = total − cross maintenance − isolated margin. The perp
`clearinghouseState` reads accountValue = margin in use + unrealized PnL, withdrawable 0.
"""

from __future__ import annotations

from typing import Any

from engine.domain.clock import Clock
from fake_hyperliquid import wire
from fake_hyperliquid.accounts import Account, clearinghouse_state, spot_state
from fake_hyperliquid.admission import Agent, request_cap
from fake_hyperliquid.book import Book
from fake_hyperliquid.clearing import FUNDING_CAP
from fake_hyperliquid.markets import SPOT_META, Markets
from fake_hyperliquid.recorded import has_recording, recorded

PUBLIC_RECORDINGS = ("candleSnapshot", "fundingHistory")  # market data served as recorded


class Info:
    def __init__(self, master: str, agents: dict[str, Agent], accounts: dict[str, Account], markets: Markets,
                 marks: dict[str, float], funding_rates: dict[str, float], books: dict[str, Book],
                 clock: Clock) -> None:
        self.master = master
        self.agents = agents
        self.accounts = accounts
        self.markets = markets
        self.marks = marks
        self.funding_rates = funding_rates
        self.books = books
        self.clock = clock

    def _now_ms(self) -> int:
        return wire.ms(self.clock.now())

    def info(self, body: dict[str, Any]) -> tuple[int, Any]:
        kind = body.get("type")
        user = str(body.get("user", "")).lower()
        account = self.accounts.get(user)
        dex = body.get("dex") or ""
        if dex and dex not in self.markets.dexes:
            return 200, None
        if kind == "meta":
            return 200, self.markets.meta(dex)
        if kind == "metaAndAssetCtxs":
            return 200, [self.markets.meta(dex), [self.asset_ctx(m.name) for m in self.markets.of_dex(dex)]]
        if kind == "spotMeta":
            return 200, SPOT_META
        if kind == "spotMetaAndAssetCtxs":  # ccxt's load_markets asks it; PURR is listed, never traded here
            return 200, [SPOT_META, [{"coin": "PURR/USDC", "prevDayPx": "0.2", "dayNtlVlm": "0.0", "markPx": "0.2",
                                      "midPx": "0.2", "circulatingSupply": "597000000.0",
                                      "totalSupply": "999000000.0", "dayBaseVlm": "0.0"}]]
        if kind == "perpDexs":
            return 200, self.markets.perp_dexs()
        if kind == "allMids":
            return 200, self.mids(dex)
        if kind == "l2Book":
            coin = body.get("coin")
            if coin not in self.books:
                return 200, None
            return 200, {"coin": coin, "time": self._now_ms(), "levels": self.books[coin].levels()}
        if kind == "clearinghouseState":
            if account is None:
                account = Account(user, "user", None, 0.0)
            return 200, clearinghouse_state(account, self.markets.by_name, self.marks, dex, self.clock.now())
        if kind == "spotClearinghouseState":
            return 200, spot_state(account, self.markets.by_name, self.marks) if account else {"balances": []}
        if kind in ("openOrders", "frontendOpenOrders"):
            if account is None:
                return 200, []
            rows = []
            for o in account.open_orders():
                if self.markets.by_name[o.coin].dex != dex:
                    continue
                if kind == "openOrders":
                    rows.append(o.basic())
                else:
                    kids = [account.orders[c].frontend() for c in o.children if account.orders[c].status == "open"
                            and account.orders[c].waiting]
                    rows.append(o.frontend(kids))
            return 200, rows
        if kind == "orderStatus":
            oid = body.get("oid")
            order = None
            if account is not None:
                order = account.orders.get(account.by_cloid.get(oid, -1) if isinstance(oid, str) else oid)
            if order is None:
                return 200, {"status": "unknownOid"}
            row = order.frontend()
            row["sz"] = wire.num(order.orig_size)  # the size it was placed with, not what is left
            return 200, {"status": "order", "order": {"order": row, "status": order.status,
                                                      "statusTimestamp": order.status_timestamp}}
        if kind == "userFills":
            return 200, list(reversed(account.fills[-2000:])) if account else []
        if kind == "userRole":
            if account is not None:
                if account.kind == "user":
                    return 200, {"role": "user"}
                if account.kind == "subAccount":
                    return 200, {"role": "subAccount", "data": {"master": account.master}}
                return 200, {"role": "vault"}
            if user in self.agents:
                return 200, {"role": "agent", "data": {"user": self.master}}
            return 200, {"role": "missing"}
        if kind == "vaultDetails":  # a vault's page: its leader approves the agents that trade it
            vault = self.accounts.get(str(body.get("vaultAddress", "")).lower())
            if vault is None or vault.kind != "vault":
                return 200, None
            return 200, {"name": "fake vault", "vaultAddress": vault.address, "leader": vault.master,
                         "description": "", "portfolio": [], "apr": 0.0, "followers": [], "isClosed": False}
        if kind == "userAbstraction":
            return 200, account.abstraction if account else "default"
        if kind == "extraAgents":
            if user != self.master:
                return 200, []
            return 200, [{"name": a.name, "address": a.address, "validUntil": a.valid_until}
                         for a in self.agents.values()]
        if kind == "userRateLimit":
            if account is None:
                account = Account(user, "user", None, 0.0)
            return 200, {"cumVlm": wire.num(account.cum_volume), "nRequestsUsed": account.requests_used,
                         "nRequestsCap": request_cap(account), "nRequestsSurplus": 0}
        if kind in PUBLIC_RECORDINGS and has_recording(kind):
            return 200, recorded(kind)
        return 422, "Failed to deserialize the JSON body into the target type"

    def mids(self, dex: str = "") -> dict[str, str]:
        # The book is regenerated symmetrically around the mark, so its mid is the mark.
        return {m.name: wire.num(self.marks[m.name]) for m in self.markets.of_dex(dex) if m.name in self.marks}

    def asset_ctx(self, coin: str) -> dict[str, Any]:
        mark = wire.num(self.marks.get(coin, 0.0))
        funding = wire.num(max(-FUNDING_CAP, min(FUNDING_CAP, self.funding_rates.get(coin, 0.0))))
        bid, ask = self.books[coin].best()
        impact = [wire.num(bid or 0.0), wire.num(ask or 0.0)]
        return {"funding": funding, "openInterest": "0.0", "prevDayPx": mark, "dayNtlVlm": "0.0", "premium": "0.0",
                "oraclePx": mark, "markPx": mark, "midPx": mark,
                "impactPxs": impact, "dayBaseVlm": "0.0"}
