"""The fake venue's brain: several clearinghouse accounts (a master user, its subaccounts and
vaults), a finite L2 book per market, and Hyperliquid's rules, answering `/info` and
`/exchange` bodies and turning what happens into websocket messages. Everything runs on the
server's event loop (single writer).

`/exchange`, in the venue's order: the EIP-712 signature must recover to an agent of the master
(or the master itself) that has not expired (`extraAgents.validUntil`), else `User or API
Wallet 0x… does not exist.` (the text as hyperliquid-python-sdk #54/#133 and nomeida/hyperliquid
#112 quote it; the older answers carried an `L1 error: ` prefix, today's do not); the nonce must
be fresh: inside (now − 2 days, now + 1 day), above the lowest of the signer's `nonces_kept`
highest (20; the venue keeps 100 for large accounts), never seen — texts `Invalid nonce:
duplicate nonce N`, `Invalid nonce: nonce too low N < M`, `Invalid nonce: nonce too high N > M`
(as answered live, quoted in public SDK code); `vaultAddress` must be a subaccount or vault of
the master (`Vault not registered: 0x…`, hyperliquid-python-sdk #172); `expiresAfter` not passed.
Without `vaultAddress` the action lands on the master, as on the venue (hummingbot #7312: a
connector that forgets it trades the main account).

Address budget (docs "Rate limits", address-based): each address (a subaccount is its own)
starts with 10,000 requests plus 1 per USDC of cumulative volume; an action spends 1 per order
or cancel in it; cancels may go to min(cap + 100,000, 2 × cap). Over the cap, one request per
10 s gets through; the others get HTTP 200 with a top-level err `Too many cumulative requests
sent (N > M) for cumulative volume traded $V. Place taker orders to free up 1 request per USDC
traded.` (the venue's text, quoted from live answers in public bots).

Orders (docs "Order types", "Error responses"; per-order errors end in ` asset=N` as the venue
answers them): limit orders (Gtc, Ioc, Alo) match the book level by level inside their limit
(an IOC remainder is cancelled, a GTC remainder rests and fills when the mark reaches its
limit); trigger orders rest until the mark crosses `triggerPx` (a sell tp / buy sl fire going
up, the other two going down), answer `triggered`, then fill reduce-only: market triggers
against the book within the venue's 10% slippage cap, limit triggers as a limit. Grouping
`normalTpsl`: the children wait (`waitingForFill`) until the entry fills; `positionTpsl`: the
children take the whole position when they fire. Siblings cancel each other
(`siblingFilledCanceled`).

Liquidation (docs "Liquidations" and the venue's announcement of partial liquidations:
"For liquidatable positions larger than 100k USDC ..., only 20% of the position will be sent as
a market liquidation order to the book. After a block where any position of a user is
partially liquidated, there is a cooldown period of 30 seconds. During this cooldown period,
all market liquidation orders for that user will be for the entire position"): a standard
account when cross account value < cross maintenance margin; an isolated position when its
margin + PnL < its maintenance margin; a unified/portfolio account by computeUnifiedAccountRatio
(docs "Account abstraction modes": cross maintenance margin / (spot USDC total − isolated
margin) > 1). Liquidation fills carry `liquidation`; a deficit is absorbed (cash floors at 0).

Unified accounts (docs "Account abstraction modes"; nautilus_trader #4206, wayfinder-paths-sdk
#615: "On a UnifiedAccount, USDC collateral lives in spot, so marginSummary.accountValue reads
~0 when no perp positions are open"): `spotClearinghouseState` holds the USDC: total = the
balance + isolated margin lent out + every position's unrealized PnL, hold = margin in use,
tokenToAvailableAfterMaintenance = total − cross maintenance − isolated margin. The perp
`clearinghouseState` reads accountValue = margin in use + unrealized PnL, withdrawable 0.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any, Callable

from engine.domain.clock import Clock
from fake_hyperliquid import wire
from fake_hyperliquid.accounts import Account, Margin, Position, clearinghouse_state, spot_state
from fake_hyperliquid.book import Book, BookShape
from fake_hyperliquid.markets import SPOT_META, Market, Markets
from fake_hyperliquid.recorded import has_recording, recorded
from fake_hyperliquid.signatures import recover_signer

DAY_MS = 86_400_000
HOUR = 3600.0
AGENT_DAYS = 90
INITIAL_REQUESTS = 10_000
THROTTLED_EVERY_MS = 10_000
SCHEDULE_CANCEL_VOLUME = 1_000_000.0
SCHEDULE_CANCEL_PER_DAY = 10
OPEN_ORDERS = 1000
MOST_OPEN_ORDERS = 5000
VOLUME_PER_OPEN_ORDER = 5_000_000.0
PARTIAL_LIQUIDATION_ABOVE = 100_000.0
PARTIAL_LIQUIDATION_SHARE = Decimal("0.2")
LIQUIDATION_COOLDOWN_MS = 30_000
MARKET_SLIPPAGE = 0.10  # market orders and market triggers fill at most 10% from the mark
PRICE_BAND = 0.80
FUNDING_CAP = 0.04
TAKER_FEE, MAKER_FEE = 0.00045, 0.00015
PUBLIC_RECORDINGS = ("candleSnapshot", "fundingHistory")  # market data served as recorded
Publish = Callable[[str, "str | None", dict[str, Any]], None]  # (subscription type, user or coin, message)

MISSING_ORDER = "Order was never placed, already canceled, or filled."


@dataclass(frozen=True)
class ReceivedAction:
    """An `/exchange` action that passed the signature, nonce, vault and budget checks."""

    signer: str
    nonce: int
    action: dict[str, Any]
    expires_after: int | None
    account: str = ""  # the account it acted on


@dataclass
class Agent:
    address: str
    name: str
    valid_until: int  # epoch ms


def _err(message: str) -> dict[str, Any]:
    return {"status": "err", "response": message}


def _ok(kind: str, statuses: list[Any] | None = None) -> dict[str, Any]:
    if statuses is None:
        return {"status": "ok", "response": {"type": kind}}
    return {"status": "ok", "response": {"type": kind, "data": {"statuses": statuses}}}


def _usd(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


class Refused(Exception):
    """An order's error status (the venue's words)."""


class FakeVenue:
    def __init__(self, account: str, agents: list[Any], clock: Clock, publish: Publish, *,
                 equity: float = 100_000.0, mainnet: bool = False, subaccounts: list[str] = (),
                 vaults: list[str] = (), equities: dict[str, float] | None = None,
                 abstraction: dict[str, str] | None = None, spot_usdc: dict[str, float] | None = None,
                 cum_volume: dict[str, float] | None = None, requests_used: dict[str, int] | None = None,
                 nonces_kept: int = 20, book: BookShape = BookShape(),
                 books: dict[str, BookShape] | None = None) -> None:
        self.clock = clock
        self.mainnet = mainnet
        self.nonces_kept = nonces_kept
        self._publish = publish
        self.account = account.lower()  # the master
        now_ms = self._now_ms()
        self.agents: dict[str, Agent] = {}
        for entry in agents:
            address, until = (entry, now_ms + AGENT_DAYS * DAY_MS) if isinstance(entry, str) else entry
            self.agents[address.lower()] = Agent(address.lower(), "perpguard", int(until))
        low = lambda d: {k.lower(): v for k, v in (d or {}).items()}  # noqa: E731
        equities, modes, spots = low(equities), low(abstraction), low(spot_usdc)
        volumes, used = low(cum_volume), low(requests_used)
        self.accounts: dict[str, Account] = {}
        for address, kind in [(self.account, "user")] + [(a.lower(), "subAccount") for a in subaccounts] \
                + [(a.lower(), "vault") for a in vaults]:
            self.accounts[address] = Account(
                address, kind, None if kind == "user" else self.account, float(equities.get(address, equity)),
                modes.get(address, "default"), float(spots.get(address, 0.0)), float(volumes.get(address, 0.0)),
                int(used.get(address, 0)))
        self.markets = Markets()
        self.by_name = self.markets.by_name
        self.marks: dict[str, float] = dict(self.markets.start_marks)
        self.funding_rates: dict[str, float] = {}
        self._funding_hour = math.floor(clock.now() / HOUR)
        shapes = books or {}
        self.books = {name: Book(m, shapes.get(name, book)) for name, m in self.by_name.items()}
        for name, b in self.books.items():
            b.regenerate(self.marks.get(name, 0.0))
        self.actions: list[ReceivedAction] = []
        self.refused: list[str] = []  # why each refused /exchange request (or order in it) was refused
        self._nonces: dict[str, list[int]] = {}
        self._tid = 0
        self._oid = 0
        self._group = 0

    # ---- helpers ----------------------------------------------------------------------------

    def _now_ms(self) -> int:
        return wire.ms(self.clock.now())

    @property
    def master(self) -> Account:
        return self.accounts[self.account]

    @property
    def paper(self) -> Account:
        """The master account (older tests read `venue.paper.ledger.leverage`)."""
        return self.master

    @property
    def orders(self) -> dict[int, wire.Order]:
        return self.master.orders

    @property
    def fills(self) -> list[dict[str, Any]]:
        return self.master.fills

    def account_of(self, address: str | None) -> Account:
        return self.accounts[(address or self.account).lower()]

    def margin(self, account: Account, dex: str | None = None) -> Margin:
        return Margin(account, self.by_name, self.marks, dex)

    def _next_tid(self) -> int:
        self._tid += 1
        return self._tid

    # ---- /exchange --------------------------------------------------------------------------

    async def exchange(self, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            signer = recover_signer(payload, self.mainnet)
        except (KeyError, TypeError, ValueError) as exc:
            return self._refuse(f"Invalid signature: {exc}")
        now = self._now_ms()
        agent = self.agents.get(signer)
        if signer != self.account and (agent is None or agent.valid_until <= now):
            return self._refuse(f"User or API Wallet {signer} does not exist.")
        problem = self._check_nonce(signer, payload["nonce"])
        if problem:
            return self._refuse(problem)
        vault = payload.get("vaultAddress")
        if vault is not None:
            target = self.accounts.get(str(vault).lower())
            if target is None or target.master != self.account:
                return self._refuse(f"Vault not registered: {str(vault).lower()}")
        else:
            target = self.master
        expires = payload.get("expiresAfter")
        if expires is not None and now > expires:
            return self._refuse(f"Action already expired: {expires} < {now}")
        action = payload["action"]
        refusal = self._spend(target, action, now)
        if refusal:
            return self._refuse(refusal)
        self.actions.append(ReceivedAction(signer, payload["nonce"], action, expires, target.address))
        handler = {"order": self._order_action, "cancel": self._cancel, "cancelByCloid": self._cancel_by_cloid,
                   "scheduleCancel": self._schedule_cancel, "updateLeverage": self._update_leverage,
                   "updateIsolatedMargin": self._update_isolated_margin,
                   "noop": lambda a, t: _ok("default")}.get(action["type"])
        if handler is None:
            return _err(f"the fake Hyperliquid does not model {action['type']}")
        result = handler(action, target)
        self._after_change()
        return result

    def _refuse(self, message: str) -> dict[str, Any]:
        self.refused.append(message)
        return _err(message)

    def _check_nonce(self, signer: str, nonce: int) -> str | None:
        now = self._now_ms()
        if nonce <= now - 2 * DAY_MS:
            return f"Invalid nonce: nonce too low {nonce} < {now - 2 * DAY_MS}"
        if nonce >= now + DAY_MS:
            return f"Invalid nonce: nonce too high {nonce} > {now + DAY_MS}"
        kept = self._nonces.setdefault(signer, [])
        position = bisect.bisect_left(kept, nonce)
        if position < len(kept) and kept[position] == nonce:
            return f"Invalid nonce: duplicate nonce {nonce}"
        if len(kept) >= self.nonces_kept and nonce < kept[0]:
            return f"Invalid nonce: nonce too low {nonce} < {kept[0]}"
        kept.insert(position, nonce)
        del kept[:-self.nonces_kept]
        return None

    def request_cap(self, account: Account) -> int:
        return INITIAL_REQUESTS + int(account.cum_volume)

    def _spend(self, account: Account, action: dict[str, Any], now: int) -> str | None:
        """docs "Rate limits": a batch of n orders or cancels counts n against the address."""
        kind = action.get("type")
        cost = len(action.get("orders", ())) if kind == "order" else \
            len(action.get("cancels", ())) if kind in ("cancel", "cancelByCloid") else 1
        cost = max(1, cost)
        cap = self.request_cap(account)
        if kind in ("cancel", "cancelByCloid"):
            cap = min(cap + 100_000, 2 * cap)
        if account.requests_used + cost > cap:
            if account.last_throttled_ms is not None and now - account.last_throttled_ms < THROTTLED_EVERY_MS:
                return (f"Too many cumulative requests sent ({account.requests_used + cost} > {cap}) for cumulative "
                        f"volume traded ${_usd(account.cum_volume)}. Place taker orders to free up 1 request per USDC "
                        f"traded.")
            account.last_throttled_ms = now  # the one request per 10 s an address over its cap may send
        account.requests_used += cost
        return None

    # ---- orders -----------------------------------------------------------------------------

    def _order_action(self, action: dict[str, Any], account: Account) -> dict[str, Any]:
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
                self.refused.append(str(exc))
                statuses.append({"error": str(exc)})
                continue
            if grouping == "normalTpsl" and i == 0:
                entry = order
            elif order.trigger:
                siblings.append(order)
            statuses.append(status)
        if entry is not None and entry.filled > 0:
            self._activate_children(account, entry)
        return _ok("order", statuses)

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
            elif self._fires(order, mark):
                # A trigger already satisfied when placed is refused (BadTriggerPx).
                del account.orders[order.oid]
                raise Refused(f"Invalid TP/SL price.{suffix}")
            self._register(account, order)
            if order.waiting:
                return order, "waitingForFill"
            self._order_update(account, order)
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
        self._apply_taker(account, market, order, fills)
        if order.size > 0 and tif == "Ioc":
            self._close(account, order, "canceled")
        elif order.size > 0:
            self._order_update(account, order)  # rests: "open"
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
        if required > self.margin(account).available() + 1e-9:
            raise Refused(f"Insufficient margin to place order.{suffix}")
        new_notional = abs(float(position + (size if buy else -size))) * px
        if leverage > market.table.max_leverage(new_notional):
            raise Refused(f"Order would cause position to exceed margin tier limit at current leverage.{suffix}")

    def _apply_taker(self, account: Account, market: Market, order: wire.Order,
                     fills: list[tuple[float, Decimal]], liquidation: bool = False) -> None:
        for px, sz in fills:
            self._fill(account, market, order, px, sz, TAKER_FEE if not liquidation else 0.0, crossed=True,
                       liquidation=liquidation)

    def _fill(self, account: Account, market: Market, order: wire.Order | None, px: float, sz: Decimal, fee_rate: float,
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
        self._add_fill(account, wire.fill(coin=coin, side="B" if buy else "A", px=px, size=float(sz), start=float(old),
                                          closed_pnl=realized, fee=fee, oid=oid, crossed=crossed,
                                          tid=self._next_tid(), time_ms=now,
                                          cloid=order.cloid if order is not None else None, liquidation=liq))
        if order is not None and order.size == 0:
            self._close(account, order, "filled")

    def _close(self, account: Account, order: wire.Order, status: str) -> None:
        order.status, order.status_timestamp = status, self._now_ms()
        self._order_update(account, order)
        if status == "filled" and order.parent is None and order.children:
            self._activate_children(account, order)
        if status != "filled" and order.children and order.filled == 0:
            for oid in order.children:  # the entry never filled: its children go with it
                child = account.orders[oid]
                if child.status == "open":
                    self._close(account, child, "canceled")

    def _activate_children(self, account: Account, entry: wire.Order) -> None:
        for oid in entry.children:
            child = account.orders[oid]
            if child.status == "open" and child.waiting:
                child.waiting = False
                self._order_update(account, child)

    # ---- cancels, switches, leverage ----------------------------------------------------------

    def _cancel(self, action: dict[str, Any], account: Account) -> dict[str, Any]:
        statuses = []
        for c in action["cancels"]:
            order = account.orders.get(c.get("o"))
            statuses.append(self._cancel_one(account, order, c.get("a")))
        return _ok("cancel", statuses)

    def _cancel_by_cloid(self, action: dict[str, Any], account: Account) -> dict[str, Any]:
        statuses = []
        for c in action["cancels"]:
            oid = account.by_cloid.get(str(c.get("cloid")))
            statuses.append(self._cancel_one(account, account.orders.get(oid) if oid else None, c.get("asset")))
        return _ok("cancel", statuses)

    def _cancel_one(self, account: Account, order: wire.Order | None, asset: Any) -> Any:
        if order is None or order.status != "open" or order.asset != asset:
            return {"error": MISSING_ORDER}
        self._close(account, order, "canceled")
        for oid in order.children:
            child = account.orders[oid]
            if child.status == "open":
                self._close(account, child, "canceled")
        return "success"

    def _schedule_cancel(self, action: dict[str, Any], account: Account) -> dict[str, Any]:
        """docs "Exchange endpoint", Schedule cancel (dead man's switch): at least 5 s ahead,
        at most 10 triggers a day (the count resets at 00:00 UTC), and only once the account has
        traded $1,000,000. What the venue does once 10 triggers fired today is not documented:
        the fake refuses to arm the switch again that day, with its own text."""
        at = action.get("time")
        if at is None:
            account.dead_man_ms = None
            return _ok("default")
        if account.cum_volume < SCHEDULE_CANCEL_VOLUME:
            return self._refuse(f"Cannot set scheduled cancel time until enough volume traded. Required: "
                                f"${SCHEDULE_CANCEL_VOLUME:.0f}. Traded: ${_usd(account.cum_volume)}.")
        now = self._now_ms()
        if at < now + 5000:
            return self._refuse("Scheduled cancel time too early, must be at least 5 seconds after current time.")
        if self._fired_today(account) >= SCHEDULE_CANCEL_PER_DAY:
            return self._refuse(f"Scheduled cancel already triggered {SCHEDULE_CANCEL_PER_DAY} times today "
                                f"(the count resets at 00:00 UTC).")
        account.dead_man_ms = int(at)
        return _ok("default")

    def _fired_today(self, account: Account) -> int:
        day = self._now_ms() // DAY_MS
        return account.dead_man_fired if account.dead_man_day == day else 0

    def _update_leverage(self, action: dict[str, Any], account: Account) -> dict[str, Any]:
        market = self.markets.by_asset.get(action.get("asset"))
        if market is None:
            return self._refuse(f"Invalid asset {action.get('asset')}")
        leverage, cross = action.get("leverage"), bool(action.get("isCross"))
        if cross and market.only_isolated:
            return self._refuse("Cross margin is not allowed for this asset.")
        if not isinstance(leverage, int) or not 1 <= leverage <= market.max_leverage:
            return self._refuse("Invalid leverage value")
        if market.name in account.positions and account.is_isolated(market) == cross:
            return self._refuse("Cannot switch leverage type with open position.")
        previous = (account.leverage.get(market.name), account.isolated.get(market.name))
        account.leverage[market.name], account.isolated[market.name] = leverage, not cross
        m = self.margin(account)
        notional = m.notional(market.name) if market.name in account.positions else 0.0
        if m.available() < 0 or leverage > market.table.max_leverage(notional):
            account.leverage[market.name], account.isolated[market.name] = previous
            if previous[0] is None:
                del account.leverage[market.name]
            if previous[1] is None:
                del account.isolated[market.name]
            return self._refuse("Cross position does not have sufficient margin available to decrease leverage. "
                                "To decrease leverage, deposit more collateral.")
        return _ok("default")

    def _update_isolated_margin(self, action: dict[str, Any], account: Account) -> dict[str, Any]:
        """Moves USD (`ntli`, 6 decimals) into (> 0) or out of (< 0) an isolated position's margin.
        Out only down to the venue's transfer floor, max(notional / leverage, 10% of notional)
        (as the venue's UI computes it, e.g. ava-labs/core-mobile #4010); the refusal texts are
        the fake's own (the venue's are not documented)."""
        market = self.markets.by_asset.get(action.get("asset"))
        ntli = action.get("ntli")
        if market is None:
            return self._refuse(f"Invalid asset {action.get('asset')}")
        position = account.positions.get(market.name)
        if position is None or not account.is_isolated(market):
            return self._refuse("No isolated position to update margin for.")
        if isinstance(ntli, bool) or not isinstance(ntli, int):
            return self._refuse("Invalid ntli")
        amount = ntli / 1e6
        m = self.margin(account)
        if amount > 0 and amount > m.available():
            return self._refuse("Insufficient margin to add to isolated position.")
        notional = m.notional(market.name)
        floor = max(notional / account.lev(market), 0.1 * notional)
        if amount < 0 and position.margin + amount < floor:
            return self._refuse("Insufficient margin for reduction of isolated margin.")
        position.margin += amount
        account.cash -= amount
        return _ok("default")

    # ---- time and marks ---------------------------------------------------------------------

    def set_mark(self, coin: str, px: float) -> None:
        if coin not in self.by_name:
            raise KeyError(f"unknown market {coin}")
        if not (px > 0 and math.isfinite(px)):
            raise ValueError(f"mark must be a positive number, not {px!r}")
        self.poll()
        self.marks[coin] = float(px)
        self.books[coin].regenerate(float(px))
        self._after_change()

    def set_funding_rate(self, coin: str, hourly_rate: float) -> None:
        self.funding_rates[coin] = hourly_rate

    def tick(self) -> None:
        """A block: the book comes back around the mark, timers run, triggers and liquidations."""
        for coin, book in self.books.items():
            book.regenerate(self.marks.get(coin, 0.0))
        self.poll()
        self._after_change()

    def poll(self) -> None:
        """What is due now: the dead-man switches, hourly funding."""
        now = self._now_ms()
        for account in self.accounts.values():
            if account.dead_man_ms is not None and now >= account.dead_man_ms:
                account.dead_man_ms = None
                day = now // DAY_MS
                account.dead_man_fired = self._fired_today(account) + 1
                account.dead_man_day = day
                for order in account.pending():  # every open order, trigger orders included
                    self._close(account, order, "scheduledCancel")
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
                self._publish("userEvents", account.address, {"channel": "user", "data": {"funding": {
                    "time": wire.ms(at), "coin": coin, "usdc": wire.num(-payment), "szi": wire.num(float(pos.size)),
                    "fundingRate": wire.num(rate), "nSamples": None}}})

    def _after_change(self) -> None:
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
            market = self.by_name[order.coin]
            size = Decimal(wire.num(order.size))
            if order.reduce_only:
                position = account.size(order.coin)
                if position == 0 or (position > 0) == buy:
                    self._close(account, order, "reduceOnlyCanceled")
                    continue
                size = min(size, abs(position))
            if reached:
                self._fill(account, market, order, limit, size, MAKER_FEE, crossed=False)
            else:
                for px, sz in book.take(buy, limit, size):
                    self._fill(account, market, order, px, sz, MAKER_FEE, crossed=False)
            if order.status == "open" and order.reduce_only and account.size(order.coin) == 0:
                self._close(account, order, "reduceOnlyCanceled")

    def _fires(self, order: wire.Order, mark: float) -> bool:
        px = float(order.trigger["triggerPx"])
        return mark >= px if order.fires_above else mark <= px

    def _fire_triggers(self, account: Account) -> None:
        for order in [o for o in account.open_orders() if o.trigger]:
            mark = self.marks.get(order.coin)
            if mark is None or not self._fires(order, mark):
                continue
            market = self.by_name[order.coin]
            trigger = order.trigger
            order.status, order.status_timestamp = "triggered", self._now_ms()
            self._order_update(account, order)
            order.status = "open"
            for oid in [o.oid for o in account.pending() if o.group is not None and o.group == order.group
                        and o.oid != order.oid and o.trigger]:
                self._close(account, account.orders[oid], "siblingFilledCanceled")
            order.trigger = None
            position = account.size(order.coin)
            buy = order.side == "B"
            if position == 0 or (position > 0) == buy:
                self._close(account, order, "reduceOnlyCanceled")
                continue
            size = abs(position) if order.position_tpsl else min(Decimal(wire.num(order.orig_size)), abs(position))
            order.orig_size = order.size = float(size)
            order.reduce_only = True
            book = self.books[order.coin]
            if trigger["isMarket"]:
                limit = mark * (1 + MARKET_SLIPPAGE) if buy else mark * (1 - MARKET_SLIPPAGE)
                fills = book.take(buy, limit, size)
                self._apply_taker(account, market, order, fills)
                if order.status == "open":
                    self._close(account, order, "canceled" if fills else "marketOrderNoLiquidityRejected")
            else:
                order.tif = "Gtc"
                limit = float(order.limit_px)
                if book.crosses(buy, limit):
                    self._apply_taker(account, market, order, book.take(buy, limit, size))
                if order.status == "open":
                    self._order_update(account, order)

    def _liquidate(self, account: Account) -> None:
        if not account.positions:
            return
        now = self._now_ms()
        m = self.margin(account)
        doomed: list[str] = []
        if m.cross_liquidatable():
            doomed += [c for c in account.positions if not account.is_isolated(self.by_name[c])]
        for coin, pos in account.positions.items():
            market = self.by_name[coin]
            if account.is_isolated(market) and coin not in doomed:
                equity = pos.margin + account.upnl(coin, m.mark(coin))
                if equity < market.table.maintenance_margin(m.notional(coin)):
                    doomed.append(coin)
        if not doomed:
            return
        cross = m.cross_liquidatable()
        for order in account.pending():
            if cross or order.coin in doomed:
                self._close(account, order, "liquidatedCanceled")
        in_cooldown = now < account.liquidation_cooldown_ms
        partial = False
        for coin in doomed:
            market = self.by_name[coin]
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
                self._fill(account, market, None, px, sz, 0.0, crossed=True, liquidation=True, buy=buy)
        if partial:
            account.liquidation_cooldown_ms = now + LIQUIDATION_COOLDOWN_MS
        if not account.positions:
            account.cash = max(account.cash, 0.0)  # a deficit is the backstop's (HLP), not the user's

    # ---- /info ------------------------------------------------------------------------------

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
            return 200, clearinghouse_state(account, self.by_name, self.marks, dex, self.clock.now())
        if kind == "spotClearinghouseState":
            return 200, spot_state(account, self.by_name, self.marks) if account else {"balances": []}
        if kind in ("openOrders", "frontendOpenOrders"):
            if account is None:
                return 200, []
            rows = []
            for o in account.open_orders():
                if self.by_name[o.coin].dex != dex:
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
                return 200, {"role": "agent", "data": {"user": self.account}}
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
            if user != self.account:
                return 200, []
            return 200, [{"name": a.name, "address": a.address, "validUntil": a.valid_until}
                         for a in self.agents.values()]
        if kind == "userRateLimit":
            if account is None:
                account = Account(user, "user", None, 0.0)
            return 200, {"cumVlm": wire.num(account.cum_volume), "nRequestsUsed": account.requests_used,
                         "nRequestsCap": self.request_cap(account), "nRequestsSurplus": 0}
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

    # ---- websocket messages -----------------------------------------------------------------

    def _order_update(self, account: Account, order: wire.Order) -> None:
        self._publish("orderUpdates", account.address, {"channel": "orderUpdates", "data": [order.update()]})

    def _add_fill(self, account: Account, row: dict[str, Any]) -> None:
        account.fills.append(row)
        self._publish("userFills", account.address,
                      {"channel": "userFills", "data": {"user": account.address, "fills": [row]}})
        self._publish("userEvents", account.address, {"channel": "user", "data": {"fills": [row]}})
