"""The actions a bot may send through `/hl/exchange`, each gated the way perpguard gates its own
API and answered in Hyperliquid's shapes.

- `order`: every order becomes an OrderIntent (engine.gateway.hl.wire) and goes through the
  engine (gate, tiers, idempotency per bot, perpguard's agent signs and sends it). A
  `normalTpsl` group's TP/SL children become the entry's `take_profit` / `stop_loss`, which the
  gate checks against the entry and the liquidation price. The bot's cloid is kept.
- `cancel`, `cancelByCloid`: pass (cancelling never adds risk), except perpguard's own venue
  stops, which only perpguard moves.
- `modify`, `batchModify`: the new order is gated like a new one; only if it passes is the old
  one cancelled and the new one sent (a cancel and a new order: the new order has a new oid,
  as on the venue). One the gate would hold (DELAY/APPROVAL) is refused, `WOULD_HOLD`, and the
  old order left resting: a modify replaces the order or leaves it, never both gone and held.
- `updateLeverage`: gated by PERP_MAX_LEVERAGE (the account's and the bot's own).
- `updateIsolatedMargin`: margin in passes; margin out is gated by MIN_MARGIN_BUFFER.
- `scheduleCancel`: perpguard runs the account's dead-man switch itself (it keeps it cleared
  while venue stops protect positions, since firing would cancel them too), so a bot's own is
  refused with the reason rather than silently overriding that.
- `noop`: done.
"""

from __future__ import annotations

import time
from typing import Any

from engine.api.errors import ApiError
from engine.domain.model import BuilderFee, MarginMode, Tier
from engine.facade import EngineService
from engine.gateway.hl.wire import AssetMap, WireError, cloid_of, err, intent_for, ok, refusal, status_for
from engine.idempotency import Answer
from engine.domain.margin import margin_buffer
from engine.risk.policies.buffer import MinMarginBuffer
from engine.risk.policies.leverage import PerpMaxLeverage
from engine.risk.policies.base import per_market
from engine.venues.connector import ConnectorError
from engine.venues.hl_api import VenueApi

STOP_PREFIX = "pg-stop-"  # perpguard's own venue stops (engine.live.venue_stops)
NEVER_PLACED = "Order was never placed, already canceled, or filled. asset={asset}"
RELOAD_ASSETS_SECONDS = 10.0



class HlActions:
    def __init__(self, service: EngineService, venue: VenueApi, builders: frozenset[str]) -> None:
        self.service = service
        self.venue = venue
        self.builders = builders
        self._assets: AssetMap | None = None
        self._loaded_at = 0.0

    async def assets(self) -> AssetMap:
        if self._assets is None:
            self._assets, self._loaded_at = await AssetMap.load(self.venue), time.monotonic()
        return self._assets

    async def _coin(self, asset: Any, field: str) -> str:
        """The coin of an asset id; a new market listed since the map was read is found by
        reading the venue's meta again (at most every RELOAD_ASSETS_SECONDS)."""
        assets = await self.assets()
        known = isinstance(asset, int) and not isinstance(asset, bool) and asset in assets.coins
        if not known and isinstance(asset, int) and time.monotonic() - self._loaded_at > RELOAD_ASSETS_SECONDS:
            self._assets = None
            assets = await self.assets()
        return assets.coin(asset, field)

    async def run(self, action: dict[str, Any], bot: Any) -> dict[str, Any]:
        kind = action["type"]
        handler = {"order": self.order, "cancel": self.cancel, "cancelByCloid": self.cancel_by_cloid,
                   "modify": self.modify, "batchModify": self.batch_modify, "updateLeverage": self.update_leverage,
                   "updateIsolatedMargin": self.update_isolated_margin, "scheduleCancel": self.schedule_cancel,
                   "noop": self.noop}.get(kind)
        if handler is None:
            raise WireError("action.type", f"unknown variant `{kind}`")
        return await handler(action, bot)

    # ---- orders -----------------------------------------------------------------------------

    async def order(self, action: dict[str, Any], bot: Any) -> dict[str, Any]:
        orders = action.get("orders")
        if not isinstance(orders, list) or not orders:
            raise WireError("action.orders", "must be a non-empty list of orders")
        grouping = action.get("grouping", "na")
        if grouping not in ("na", "normalTpsl", "positionTpsl"):
            raise WireError("action.grouping", f"must be na, normalTpsl or positionTpsl, not {grouping!r}")
        builder = self._builder(action.get("builder"))
        assets = await self.assets()
        if grouping == "normalTpsl" and len(orders) > 1:
            return ok("order", {"statuses": await self._bracket(orders, assets, bot, builder)})
        statuses = []
        for i, wire in enumerate(orders):
            if isinstance(wire, dict):
                await self._coin(wire.get("a"), f"action.orders[{i}].a")  # a market listed since: the map is read again
            intent = intent_for(wire, await self.assets(), f"action.orders[{i}]", bot=bot.name, builder=builder)
            statuses.append(status_for(await self._submit(intent, bot)))
        return ok("order", {"statuses": statuses})

    async def _bracket(self, orders: list[Any], assets: AssetMap, bot: Any, builder: BuilderFee | None) -> list[Any]:
        """An entry and its TP/SL children (normalTpsl) as one intent with take_profit / stop_loss."""
        prices: dict[str, float] = {}
        for i, child in enumerate(orders[1:], start=1):
            intent = intent_for(child, assets, f"action.orders[{i}]", bot=bot.name)
            if intent.trigger_px is None:
                raise WireError(f"action.orders[{i}].t", "a normalTpsl child must be a trigger order")
            prices["stop_loss" if intent.tpsl == "sl" else "take_profit"] = intent.trigger_px
        entry = intent_for(orders[0], assets, "action.orders[0]", bot=bot.name, builder=builder, **prices)
        status = status_for(await self._submit(entry, bot))
        children = ["waitingForFill" if "error" not in status else {"error": status["error"]} for _ in orders[1:]]
        return [status, *children]

    async def _submit(self, intent, bot: Any) -> Answer:
        held = self._held_already(intent, bot)
        if held is not None:
            return held
        try:
            return await self.service.submit(intent, scope=f"hl:{bot.name}", venue_id=True)
        except ApiError as refused:  # the same cloid for a different order
            return Answer(refused.status, {"error": {"code": refused.code, "message": refused.message}})

    def _held_already(self, intent: Any, bot: Any) -> Answer | None:
        """A bot that does not know perpguard's HELD answer takes it for a failure and sends the
        order again (Freqtrade every 5 s): each copy would be held and released, multiplying the
        position. So while a bot has an order held for a market and side, another one there that
        would be held too is refused, naming the first; one that passes at once still passes."""
        engine = self.service.engine
        waiting = [a for a in engine.pending.open_actions()
                   if a.intent.bot == bot.name and a.intent.market == intent.market and a.intent.side == intent.side]
        if not waiting or any(intent.client_id is not None and a.intent.client_id == intent.client_id for a in waiting):
            return None  # nothing held there, or the same order again by its cloid: the first answer is repeated
        decision = engine.gate.evaluate(intent)
        if not decision.allowed or decision.tier not in (Tier.DELAY, Tier.APPROVAL):
            return None
        first = waiting[0]
        return Answer(403, {"error": {"code": "ALREADY_HELD", "message": (
            f"this bot's {first.intent.side} {first.intent.market} order is held as pending {first.id} "
            f"({first.tier.value}); perpguard holds one order a market and side for a bot, so this one was not "
            f"queued: wait for that one's fill or cancel it")}})

    def _builder(self, builder: Any) -> BuilderFee | None:
        """The order's builder fee if its builder is allowlisted (`[engine] hl_builders`), which
        perpguard's agent then signs with the order; any other builder field is dropped (ccxt
        adds its own builder to every order)."""
        if not isinstance(builder, dict) or str(builder.get("b", "")).lower() not in self.builders:
            return None
        fee = builder.get("f")
        if isinstance(fee, bool) or not isinstance(fee, int) or not 0 <= fee <= 1000:
            raise WireError("action.builder.f", "the builder fee must be an integer of tenths of a basis point, 0-1000")
        return BuilderFee(address=str(builder["b"]).lower(), fee=fee)

    # ---- cancels ----------------------------------------------------------------------------

    async def _cancel_oid(self, oid: str, asset: Any) -> Any:
        order = self.service.engine.book.open_orders.get(oid)
        if order is None:
            return {"error": NEVER_PLACED.format(asset=asset)}
        if (order.client_id or "").startswith(STOP_PREFIX):
            return {"error": refusal("PROTECTED", f"order {oid} is perpguard's venue stop for {order.coin}; "
                                                  f"perpguard moves it with the position")}
        try:
            result = await self.service.cancel_order(oid)
        except ApiError:
            return {"error": NEVER_PLACED.format(asset=asset)}
        return "success" if result["cancelled"] else {"error": result["error"] or NEVER_PLACED.format(asset=asset)}

    async def cancel(self, action: dict[str, Any], bot: Any) -> dict[str, Any]:
        cancels = action.get("cancels")
        if not isinstance(cancels, list) or not cancels:
            raise WireError("action.cancels", "must be a non-empty list of {a, o}")
        statuses = []
        for i, item in enumerate(cancels):
            if not isinstance(item, dict) or isinstance(item.get("o"), bool) or not isinstance(item.get("o"), int):
                raise WireError(f"action.cancels[{i}].o", "must be an order id (integer)")
            await self._coin(item.get("a"), f"action.cancels[{i}].a")
            statuses.append(await self._cancel_oid(str(item["o"]), item["a"]))
        return ok("cancel", {"statuses": statuses})

    def _oid_of_cloid(self, cloid: str) -> str | None:
        return next((o.oid for o in self.service.engine.book.open_orders.values()
                     if (o.client_id or "").lower() == cloid), None)

    async def cancel_by_cloid(self, action: dict[str, Any], bot: Any) -> dict[str, Any]:
        cancels = action.get("cancels")
        if not isinstance(cancels, list) or not cancels:
            raise WireError("action.cancels", "must be a non-empty list of {asset, cloid}")
        statuses = []
        for i, item in enumerate(cancels):
            if not isinstance(item, dict):
                raise WireError(f"action.cancels[{i}]", "must be {asset, cloid}")
            await self._coin(item.get("asset"), f"action.cancels[{i}].asset")
            cloid = cloid_of({"c": item.get("cloid")}, f"action.cancels[{i}].cloid")
            oid = self._oid_of_cloid(cloid) if cloid else None
            statuses.append(await self._cancel_oid(oid, item["asset"]) if oid else
                            {"error": NEVER_PLACED.format(asset=item["asset"])})
        return ok("cancel", {"statuses": statuses})

    # ---- modify -----------------------------------------------------------------------------

    async def _modify_one(self, target: Any, wire: Any, field: str, bot: Any) -> Any:
        if isinstance(target, str):
            oid = self._oid_of_cloid(cloid_of({"c": target}, f"{field}.oid") or "")
        elif isinstance(target, int) and not isinstance(target, bool):
            oid = str(target)
        else:
            raise WireError(f"{field}.oid", "must be an order id or a cloid")
        if isinstance(wire, dict):
            await self._coin(wire.get("a"), f"{field}.order.a")
        intent = intent_for(wire, await self.assets(), f"{field}.order", bot=bot.name)
        old = self.service.engine.book.open_orders.get(oid) if oid else None
        if old is None:
            return {"error": "Cannot modify canceled or filled order"}
        if (old.client_id or "").startswith(STOP_PREFIX):
            return {"error": refusal("PROTECTED", f"order {oid} is perpguard's venue stop; perpguard moves it")}
        judged = await self.service.submit(intent.model_copy(update={"dry_run": True, "client_id": None}))
        if "error" in judged.body:
            return status_for(judged)
        tier = judged.body["decision"]["tier"]
        if tier in (Tier.DELAY.value, Tier.APPROVAL.value):
            # On the venue a modify replaces the order or leaves it: cancelling it here and holding
            # the new one would answer an error while the old order is gone. Left as it was.
            return {"error": refusal("WOULD_HOLD", f"the modified order would be held ({tier}), and a modify is not "
                                                   f"held: order {oid} rests as it was; cancel it and send the new "
                                                   f"order to have that one held")}
        cancelled = await self._cancel_oid(oid, wire["a"])
        if cancelled != "success":
            return cancelled
        if intent.client_id is not None and intent.client_id == (old.client_id or "").lower():
            # the venue (and perpguard's connector) keep a cloid to its first order: the new one gets its own
            intent = intent.model_copy(update={"client_id": None})
        return status_for(await self._submit(intent, bot))

    async def modify(self, action: dict[str, Any], bot: Any) -> dict[str, Any]:
        status = await self._modify_one(action.get("oid"), action.get("order"), "action", bot)
        return err(status["error"]) if isinstance(status, dict) and "error" in status else ok()

    async def batch_modify(self, action: dict[str, Any], bot: Any) -> dict[str, Any]:
        modifies = action.get("modifies")
        if not isinstance(modifies, list) or not modifies:
            raise WireError("action.modifies", "must be a non-empty list of {oid, order}")
        statuses = []
        for i, item in enumerate(modifies):
            if not isinstance(item, dict):
                raise WireError(f"action.modifies[{i}]", "must be {oid, order}")
            statuses.append(await self._modify_one(item.get("oid"), item.get("order"), f"action.modifies[{i}]", bot))
        return ok("order", {"statuses": statuses})

    # ---- leverage, margin, dead-man ---------------------------------------------------------------

    async def update_leverage(self, action: dict[str, Any], bot: Any) -> dict[str, Any]:
        coin = await self._coin(action.get("asset"), "action.asset")
        leverage, cross = action.get("leverage"), action.get("isCross")
        if isinstance(leverage, bool) or not isinstance(leverage, int) or leverage < 1:
            raise WireError("action.leverage", "must be a positive integer")
        if not isinstance(cross, bool):
            raise WireError("action.isCross", "must be true or false")
        engine = self.service.engine
        state = engine.trading.state.value
        if state == "HALTED":
            return err(refusal("HALTED", "trading is halted; leverage changes wait for resume"))
        held = engine.book.position(coin)  # the book holds open positions only
        if state == "REDUCE_ONLY":
            # No entry passes, so a leverage setting adds no risk by itself; on a held position
            # it does when it goes up (an isolated one gives up margin). Bots (ccxt's Freqtrade)
            # set the leverage before every order, their reducing ones included, which must pass.
            if held is not None and (held.leverage is None or leverage > held.leverage):
                return err(refusal("REDUCE_ONLY", f"trading is reduce-only; {coin}'s leverage can stay or go down, "
                                                  f"not up (now {held.leverage or 'unknown'}x, asked {leverage}x)"))
        for policy in engine.gate.policies:
            if not isinstance(policy, PerpMaxLeverage) or not policy.enabled or policy.bot not in (None, bot.name):
                continue
            rules = policy.rules
            cap = min(per_market(rules.leverageTiers, coin, rules.maxLeverage), rules.maxLeverage)
            if leverage > cap:
                return err(refusal("POLICY_DENIED", f"{coin} leverage {leverage}x would exceed PERP_MAX_LEVERAGE "
                                                    f"limit of {cap:g} (policy {policy.id})"))
        if held is not None and held.leverage == leverage and (held.margin_mode is MarginMode.ISOLATED) is (not cross):
            # the venue has it so already (as last read): ccxt sends this before every order, and
            # each action the venue takes spends the address budget
            return ok()
        try:
            await engine.connector.set_leverage(coin, leverage, isolated=not cross)
        except ConnectorError as refused:  # the venue's refusal, in its words
            return err(refused.message)
        if held is not None:
            # the position's leverage (and its isolated margin) moved: the book reads it again, so
            # the gate and the no-op check above compare with the venue's new setting, not the old
            await engine.resync()
        return ok()

    async def update_isolated_margin(self, action: dict[str, Any], bot: Any) -> dict[str, Any]:
        """Adding margin to an isolated position only lowers risk: it passes. Taking margin out
        passes only if the position's isolated buffer stays at or above every MIN_MARGIN_BUFFER
        `minBuffer` (the account's and the bot's own) and trading is not HALTED; with the
        position's margin unknown it is refused (fail closed)."""
        coin = await self._coin(action.get("asset"), "action.asset")
        ntli = action.get("ntli")
        if isinstance(ntli, bool) or not isinstance(ntli, int) or ntli == 0:
            raise WireError("action.ntli", "must be a non-zero integer: USD with 6 decimals, < 0 takes margin out")
        if not isinstance(action.get("isBuy"), bool):
            raise WireError("action.isBuy", "must be true or false")
        usd = ntli / 1e6
        refused = self._margin_refusal(coin, usd, bot) if usd < 0 else None
        if refused:
            return err(refused)
        engine = self.service.engine
        try:
            await engine.connector.update_isolated_margin(coin, usd)
        except ConnectorError as venue_refused:
            return err(venue_refused.message)
        await engine.resync()  # the position's margin moved: the book reads it again
        return ok()

    def _margin_refusal(self, coin: str, usd: float, bot: Any) -> str | None:
        engine = self.service.engine
        if engine.trading.state.value == "HALTED":
            return refusal("HALTED", "trading is halted; margin leaves no isolated position until resume")
        leg = engine.book.leg(coin)
        if leg is None or leg.isolated_margin is None or leg.maintenance is None:
            return refusal("DATA_UNAVAILABLE", f"no isolated {coin} position with a known margin: nothing is taken out")
        after = margin_buffer(leg.isolated_margin + usd, leg.maintenance)
        for policy in engine.gate.policies:
            if not isinstance(policy, MinMarginBuffer) or not policy.enabled or policy.bot not in (None, bot.name):
                continue
            floor = policy.rules.minBuffer
            if after is None or after < floor:
                left = "nothing" if after is None else f"{after:.3f}"
                return refusal("POLICY_DENIED", f"taking {-usd:g} USD out of {coin}'s isolated margin would leave its "
                                                f"buffer at {left}, under MIN_MARGIN_BUFFER minBuffer {floor:g} "
                                                f"(policy {policy.id})")
        return None

    async def schedule_cancel(self, action: dict[str, Any], bot: Any) -> dict[str, Any]:
        return err(refusal("MANAGED", "perpguard runs this account's dead-man switch (scheduleCancel) itself: it "
                                      "keeps it cleared while venue stops protect positions, because firing would "
                                      "cancel those stops too; see dead_man in GET /v1/state"))

    async def noop(self, action: dict[str, Any], bot: Any) -> dict[str, Any]:
        return ok()
