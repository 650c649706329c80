"""The fake venue's brain: one account on a `PaperExchange` (Hyperliquid's margin, fill and
liquidation rules, reused as they are), answering `/info` and `/exchange` bodies and turning
the paper exchange's events into Hyperliquid websocket messages.

`/exchange` checks what the real venue checks before acting: the EIP-712 signature must
recover to an agent registered for the account, the nonce must be fresh (inside the time
window, above the lowest of the signer's 100 highest, never seen) and `expiresAfter`, when
set, not passed. Only limit orders (Gtc, Ioc, Alo) are modelled.

Everything here runs on the server's event loop (single writer).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable

from engine.domain.clock import Clock
from engine.venues.connector import (
    ConnectorError, FundingPaid, Liquidated, OrderAccepted, OrderCancelled, OrderFilled, OrderRequest, VenueEvent,
)
from engine.venues.paper.exchange import PaperExchange
from engine.venues.hyperliquid.snapshot import parse_meta
from fake_hyperliquid import wire
from fake_hyperliquid.recorded import has_recording, recorded
from fake_hyperliquid.signatures import recover_signer

DAY_MS = 86_400_000
NONCES_KEPT = 100
PUBLIC_RECORDINGS = ("l2Book", "candleSnapshot", "fundingHistory")  # market data served as recorded
Publish = Callable[[str, "str | None", dict[str, Any]], None]  # (subscription type, user or coin, message)


@dataclass(frozen=True)
class ReceivedAction:
    """An `/exchange` action that passed the signature and nonce checks."""

    signer: str
    nonce: int
    action: dict[str, Any]
    expires_after: int | None


def _err(message: str) -> dict[str, Any]:
    return {"status": "err", "response": message}


def _ok(kind: str, statuses: list[Any] | None = None) -> dict[str, Any]:
    if statuses is None:
        return {"status": "ok", "response": {"type": kind}}
    return {"status": "ok", "response": {"type": kind, "data": {"statuses": statuses}}}


class FakeVenue:
    def __init__(self, account: str, agents: list[str], clock: Clock, publish: Publish, *,
                 equity: float = 100_000.0, mainnet: bool = False) -> None:
        self.account = account.lower()
        self.agents = {a.lower() for a in agents}
        self.clock = clock
        self.mainnet = mainnet
        self._publish = publish
        self.meta = recorded("meta")
        self.coins = [asset["name"] for asset in self.meta["universe"]]  # asset index -> coin
        self.paper = PaperExchange(parse_meta(self.meta), equity=equity, clock=clock)
        for coin, px in recorded("allMids").items():
            if coin in self.paper.markets:
                self.paper.set_mark(coin, float(px))
        self.paper.subscribe(self._on_paper_event)
        self.orders: dict[int, wire.Order] = {}
        self.by_cloid: dict[str, int] = {}
        self.fills: list[dict[str, Any]] = []
        self.actions: list[ReceivedAction] = []
        self.refused: list[str] = []  # why each refused /exchange request was refused
        self._nonces: dict[str, list[int]] = {}
        self._tid = 0

    def _now_ms(self) -> int:
        return wire.ms(self.clock.now())

    # ---- /exchange --------------------------------------------------------------------------

    async def exchange(self, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            signer = recover_signer(payload, self.mainnet)
        except (KeyError, TypeError, ValueError) as exc:
            return self._refuse(f"Invalid signature: {exc}")
        if signer not in self.agents:
            return self._refuse(f"User or API Wallet {signer} does not exist.")
        problem = self._check_nonce(signer, payload["nonce"])
        if problem:
            return self._refuse(problem)
        expires = payload.get("expiresAfter")
        if expires is not None and self._now_ms() > expires:
            return self._refuse(f"Action expired at {expires} (now {self._now_ms()})")
        action = payload["action"]
        self.actions.append(ReceivedAction(signer, payload["nonce"], action, expires))
        handler = {"order": self._orders, "cancel": self._cancel, "cancelByCloid": self._cancel_by_cloid,
                   "scheduleCancel": self._schedule_cancel, "updateLeverage": self._update_leverage}.get(action["type"])
        if handler is None:
            return _err(f"the fake Hyperliquid does not model {action['type']}")
        return await handler(action)

    def _refuse(self, message: str) -> dict[str, Any]:
        self.refused.append(message)
        return _err(message)

    def _check_nonce(self, signer: str, nonce: int) -> str | None:
        now = self._now_ms()
        if not now - 2 * DAY_MS < nonce < now + DAY_MS:
            return f"Invalid nonce: {nonce} is outside the time window"
        kept = self._nonces.setdefault(signer, [])
        position = bisect.bisect_left(kept, nonce)
        if position < len(kept) and kept[position] == nonce:
            return f"Invalid nonce: duplicate nonce {nonce}"
        if len(kept) >= NONCES_KEPT and nonce <= kept[0]:
            return f"Invalid nonce: {nonce} is below the lowest of the last {NONCES_KEPT}"
        kept.insert(position, nonce)
        del kept[:-NONCES_KEPT]
        return None

    def _coin(self, asset: int) -> str | None:
        return self.coins[asset] if 0 <= asset < len(self.coins) else None

    async def _orders(self, action: dict[str, Any]) -> dict[str, Any]:
        statuses = []
        for w in action["orders"]:
            coin = self._coin(w["a"])
            if coin is None:
                statuses.append({"error": f"Invalid asset {w['a']}"})
                continue
            if "limit" not in w["t"]:
                statuses.append({"error": "the fake Hyperliquid takes limit orders only"})
                continue
            try:
                request = OrderRequest(coin, "buy" if w["b"] else "sell", Decimal(w["s"]), Decimal(w["p"]),
                                       w["t"]["limit"]["tif"], w["r"], w.get("c"))
            except (ValueError, ArithmeticError) as exc:
                statuses.append({"error": f"Invalid order: {exc}"})
                continue
            ack = await self.paper.place(request)
            ids = {"oid": int(ack.oid)} | ({"cloid": w["c"]} if w.get("c") else {})
            if ack.status == "rejected":
                statuses.append({"error": ack.error})
            elif ack.status == "resting" and not ack.filled_size:
                statuses.append({"resting": ids})
            else:
                statuses.append({"filled": {"totalSz": wire.num(ack.filled_size), "avgPx": wire.num(ack.avg_px), **ids}})
        return _ok("order", statuses)

    async def _cancel(self, action: dict[str, Any]) -> dict[str, Any]:
        statuses = []
        for c in action["cancels"]:
            ack = await self.paper.cancel(self._coin(c["a"]) or "", str(c["o"]))
            statuses.append("success" if ack.cancelled else {"error": ack.error})
        return _ok("cancel", statuses)

    async def _cancel_by_cloid(self, action: dict[str, Any]) -> dict[str, Any]:
        statuses = []
        for c in action["cancels"]:
            oid = self.by_cloid.get(c["cloid"])
            ack = await self.paper.cancel(self._coin(c["asset"]) or "", str(oid)) if oid else None
            statuses.append("success" if ack and ack.cancelled else {"error": "Order was never placed, already canceled, or filled."})
        return _ok("cancel", statuses)

    async def _schedule_cancel(self, action: dict[str, Any]) -> dict[str, Any]:
        at = action.get("time")
        if at is None:
            await self.paper.arm_dead_man(None)
        elif at < self._now_ms() + 5000:
            return _err("Scheduled cancel time too early, must be at least 5 seconds after current time.")
        else:
            await self.paper.arm_dead_man(at / 1000 - self.clock.now())
        return _ok("default")

    async def _update_leverage(self, action: dict[str, Any]) -> dict[str, Any]:
        coin = self._coin(action["asset"])
        try:
            await self.paper.set_leverage(coin or "", action["leverage"], isolated=not action["isCross"])
        except ConnectorError as exc:
            return _err(exc.message)
        return _ok("default")

    # ---- /info ------------------------------------------------------------------------------

    def info(self, body: dict[str, Any]) -> tuple[int, Any]:
        kind = body.get("type")
        mine = str(body.get("user", "")).lower() == self.account
        if kind == "meta":
            return 200, recorded("meta")
        if kind == "metaAndAssetCtxs":
            return 200, [recorded("meta"), [wire.asset_ctx(self.paper, c) for c in self.coins]]
        if kind == "allMids":
            return 200, self.mids()
        if kind == "clearinghouseState":
            paper = self.paper if mine else PaperExchange({}, equity=0.0, clock=self.clock)
            return 200, wire.clearinghouse_state(paper, self.clock.now())
        if kind in ("openOrders", "frontendOpenOrders"):
            rows = [o.basic() if kind == "openOrders" else o.frontend()
                    for o in self.orders.values() if o.status == "open"] if mine else []
            return 200, rows
        if kind == "orderStatus":
            oid = body.get("oid")
            order = self.orders.get(self.by_cloid.get(oid, -1) if isinstance(oid, str) else oid) if mine else None
            if order is None:
                return 200, {"status": "unknownOid"}
            return 200, {"status": "order", "order": {"order": order.frontend(), "status": order.status,
                                                      "statusTimestamp": order.status_timestamp}}
        if kind in PUBLIC_RECORDINGS and has_recording(kind):
            return 200, recorded(kind)
        return 422, "Failed to deserialize the JSON body into the target type"

    def mids(self) -> dict[str, str]:
        return {coin: wire.num(px) for coin, px in self.paper.ledger.marks.items()}

    # ---- paper events -> websocket messages -----------------------------------------------------

    def _on_paper_event(self, event: VenueEvent) -> None:
        now = self._now_ms()
        if isinstance(event, OrderAccepted):
            order = wire.Order(int(event.oid), event.coin, "B" if event.side == "buy" else "A", wire.num(event.limit_px),
                               event.size, event.size, event.tif, event.reduce_only, event.client_id, now,
                               status_timestamp=now)
            self.orders[order.oid] = order
            if order.cloid:
                self.by_cloid[order.cloid] = order.oid
            self._order_update(order)
        elif isinstance(event, OrderFilled):
            order = self.orders[int(event.oid)]
            order.size = event.remaining
            signed = event.size if event.side == "buy" else -event.size
            self._add_fill(wire.fill(coin=event.coin, side=order.side, px=event.px, size=event.size,
                                     start=self.paper.position_size(event.coin) - signed, closed_pnl=event.realized_pnl,
                                     fee=event.fee, oid=order.oid, crossed=not event.maker, tid=self._next_tid(),
                                     time_ms=now, cloid=order.cloid))
            if event.remaining == 0:
                order.status, order.status_timestamp = "filled", now
                self._order_update(order)
        elif isinstance(event, OrderCancelled):
            order = self.orders[int(event.oid)]
            reason = event.reason
            order.status = ("scheduledCancel" if "dead-man" in reason else "liquidatedCanceled" if "liquidation" in reason
                            else "reduceOnlyCanceled" if reason.startswith("Reduce only") else "canceled")
            order.status_timestamp = now
            self._order_update(order)
        elif isinstance(event, FundingPaid):
            self._publish("userEvents", self.account, {"channel": "user", "data": {"funding": {
                "time": now, "coin": event.coin, "usdc": wire.num(-event.payment), "szi": wire.num(event.size),
                "fundingRate": wire.num(event.rate), "nSamples": None}}})
        elif isinstance(event, Liquidated):
            self._add_fill(wire.fill(coin=event.coin, side="A" if event.size > 0 else "B", px=event.px,
                                     size=abs(event.size), start=event.size, closed_pnl=-event.loss, fee=0.0, oid=0,
                                     crossed=True, tid=self._next_tid(), time_ms=now,
                                     liquidation={"liquidatedUser": self.account, "markPx": wire.num(event.px),
                                                  "method": "market"}))

    def _next_tid(self) -> int:
        self._tid += 1
        return self._tid

    def _order_update(self, order: wire.Order) -> None:
        self._publish("orderUpdates", self.account, {"channel": "orderUpdates", "data": [order.update()]})

    def _add_fill(self, row: dict[str, Any]) -> None:
        self.fills.append(row)
        self._publish("userFills", self.account, {"channel": "userFills", "data": {"user": self.account, "fills": [row]}})
        self._publish("userEvents", self.account, {"channel": "user", "data": {"fills": [row]}})
