"""From a Decision (or a de-risk ReduceOrder) to an order the venue takes: sizes rounded down
to the lot, prices on the tick and never more aggressive than asked, market orders as IOC
limits at mark ± the slippage cap, and the lifecycle result awaited when the venue answers
"pending" (filled, partially filled, rejected, or timed out)."""

from __future__ import annotations

import asyncio
import enum
import uuid
from dataclasses import dataclass, replace
from typing import NamedTuple
from decimal import ROUND_DOWN

from engine.venues import connector as venue
from engine.risk.book import Book
from engine.domain.increments import on_lot
from engine.risk.derisk import ReduceOrder
from engine.domain.increments import round_price
from engine.domain.model import Decision, MarginMode, OpenOrder, TradingState
from engine.live.pending import PendingAction

LIFECYCLE_TIMEOUT = 10.0  # seconds to wait for a pending order's outcome
ORDER_LIFECYCLE = (venue.OrderAccepted, venue.OrderFilled, venue.OrderCancelled, venue.OrderRejected)


class SubmitStatus(enum.Enum):
    SENT = "sent"  # the venue has it
    PENDING = "pending"  # held: DELAY or APPROVAL
    DENIED = "denied"  # by the gate
    REJECTED = "rejected"  # the venue refused it
    DRY_RUN = "dry_run"  # judged, not acted on
    UNAVAILABLE = "unavailable"  # allowed, but not sent: the store could not journal it in time


TRANSIENT_CODES = frozenset({"DATA_UNAVAILABLE", "RATE_LIMITED"})  # the same order may pass later


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """What became of an order intent."""

    status: SubmitStatus
    decision: Decision
    ack: venue.OrderAck | None = None
    pending: PendingAction | None = None
    error: str | None = None

    @property
    def final(self) -> bool:
        """The answer the same client id must get again. Not: a dry run, an order the store
        could not journal, a denial only for missing data or a rate limit (a retry may pass)."""
        if self.status is SubmitStatus.DRY_RUN or self.status is SubmitStatus.UNAVAILABLE:
            return False
        if self.status is SubmitStatus.DENIED:
            return not all(r.code in TRANSIENT_CODES for r in self.decision.denials)
        return True


class Placed(NamedTuple):
    """An order handed to the venue (`request`, None if it could not be built), the venue's
    answer (`ack`, None if it never got there) and, if it was not taken, why (`error`)."""

    request: venue.OrderRequest | None
    ack: venue.OrderAck | None
    error: str | None
    children: tuple[venue.OrderAck, ...] = ()  # a bracket's TP/SL children, as the venue answered them
    children_error: str | None = None  # why a child was not taken

    def resting_order(self) -> OpenOrder:
        """The order as it now rests on the venue (its answer said `resting`, nothing filled)."""
        request, trigger = self.request, self.request.trigger
        return OpenOrder(self.ack.oid, request.coin, request.side, float(request.size), float(request.limit_px),
                         request.reduce_only, request.client_id, float(trigger.trigger_px) if trigger else None,
                         trigger.tpsl if trigger else None)

    def order_fields(self) -> dict:
        """The order as the event log and the store record it: size base units, px USD."""
        request, ack = self.request, self.ack
        if request is None:
            return {}
        return {"coin": request.coin, "side": request.side, "size": float(request.size), "px": float(request.limit_px),
                "tif": request.tif, "reduce_only": request.reduce_only, "client_id": request.client_id,
                "oid": ack.oid if ack else None, "status": ack.status if ack else "rejected",
                "filled": ack.filled_size if ack else 0.0, "error": self.error}


class Executor:
    def __init__(self, connector: venue.Connector, book: Book, slippage: float) -> None:
        self.connector = connector
        self.book = book
        self.slippage = slippage

    def request_for(self, decision: Decision, state: TradingState) -> tuple[venue.OrderRequest | None, str | None]:
        """The venue order for an allowed decision, or why it cannot be built."""
        intent = decision.intent
        info = self.book.markets.get(decision.coin)
        if info is None or info.sz_decimals is None:
            return None, f"unknown market {decision.coin} on this venue"
        if decision.size is None or decision.px is None:
            return None, f"no mark for {decision.coin}: the order cannot be priced"
        size = on_lot(decision.size, info.sz_decimals, ROUND_DOWN)
        if size <= 0:
            return None, f"size {decision.size:g} is below the lot of {decision.coin}"
        client_id = intent.client_id or f"pg-{uuid.uuid4().hex[:20]}"
        if intent.trigger_px is not None:  # a bot's own reduce-only stop or take-profit
            order = self.trigger_order(decision.coin, intent.side, size, intent.trigger_px, intent.tpsl,
                                       intent.type == "market", self.slippage, info.sz_decimals, client_id)
            if intent.type == "limit":
                order = replace(order, limit_px=round_price(intent.limit_px, info.sz_decimals, intent.side))
            return order, None
        px = round_price(decision.px, info.sz_decimals, intent.side)
        tif = intent.tif or ("Ioc" if intent.type == "market" else "Gtc")
        # A reducing order goes out reduce-only, so the venue cannot turn it into a flip.
        reduce_only = intent.reduce_only or decision.reducing
        builder = (intent.builder.address, intent.builder.fee) if intent.builder else None
        return venue.OrderRequest(decision.coin, intent.side, size, px, tif, reduce_only, client_id,
                                  builder=builder), None

    async def place_decision(self, decision: Decision, state: TradingState) -> Placed:
        """Send an allowed decision. `error` says why it was not sent or the venue refused it."""
        request, problem = self.request_for(decision, state)
        if request is None:
            return Placed(None, None, problem)
        intent = decision.intent
        isolated = intent.margin_mode == "isolated"
        leg = self.book.leg(decision.coin)
        opens_isolated = isolated and (leg is None or leg.position.margin_mode is not MarginMode.ISOLATED)
        if (intent.leverage is not None or opens_isolated) and not decision.reducing:
            try:  # a new isolated leg without a leverage opens at 1x: the venue sets the mode with one
                await self.connector.set_leverage(decision.coin, int(intent.leverage or 1), isolated=isolated)
            except venue.ConnectorError as exc:
                return Placed(request, None, f"leverage refused: {exc.message}")
        children = self.bracket_for(decision, request) if not decision.reducing else []
        if children:
            acks = await self.connector.place_group([request, *children], "normalTpsl")
            ack = await self.settled(acks[0], request)
            refused = [f"{c.trigger.tpsl} child: {a.error or a.code}" for c, a in zip(children, acks[1:]) if not a.ok]
            error = (ack.error or ack.code or "rejected") if not ack.ok else None
            return Placed(request, ack, error, tuple(acks[1:]), "; ".join(refused) or None)
        ack = await self.settled(await self.connector.place(request), request)
        return Placed(request, ack, (ack.error or ack.code or "rejected") if not ack.ok else None)

    def bracket_for(self, decision: Decision, entry: venue.OrderRequest) -> list[venue.OrderRequest]:
        """An entry's `stop_loss` / `take_profit` as reduce-only market triggers for the entry's
        size, the other side (Hyperliquid's normalTpsl children: they rest once the entry fills)."""
        intent = decision.intent
        info = self.book.markets[decision.coin]
        side = "sell" if entry.side == "buy" else "buy"
        children = []
        for tpsl, px in (("sl", intent.stop_loss), ("tp", intent.take_profit)):
            if px is None:
                continue
            children.append(self.trigger_order(entry.coin, side, entry.size, px, tpsl, True, self.slippage,
                                               info.sz_decimals, f"{entry.client_id}-{tpsl}"))
        return children

    @staticmethod
    def trigger_order(coin: str, side: str, size, trigger_px: float, tpsl: str, is_market: bool, slippage: float,
                      sz_decimals: int, client_id: str) -> venue.OrderRequest:
        """A reduce-only trigger order on the market's increments: its limit is the trigger price
        moved `slippage` the way it executes (the worst price it may fill at)."""
        # a stop rounds toward the mark (a sell's up, a buy's down), never looser; a take-profit to the nearest
        trigger = round_price(trigger_px, sz_decimals, side if tpsl == "sl" else None)
        limit = round_price(trigger_px * (1 + slippage if side == "buy" else 1 - slippage), sz_decimals, side)
        return venue.OrderRequest(coin, side, size, limit, "Gtc", True, client_id,
                                  venue.Trigger(trigger, tpsl, is_market))

    async def place_reduce(self, order: ReduceOrder) -> Placed:
        request = venue.OrderRequest(order.coin, order.side, order.size, order.limit_px, "Ioc", True,
                                     f"pg-derisk-{uuid.uuid4().hex[:14]}")
        ack = await self.settled(await self.connector.place(request), request)
        return Placed(request, ack, (ack.error or ack.code or "rejected") if not ack.ok else None)

    async def settled(self, ack: venue.OrderAck, request: venue.OrderRequest) -> venue.OrderAck:
        """The order's outcome: the ack itself, or (for `pending`) the events that end it."""
        if ack.status != "pending":
            return ack
        done: asyncio.Future = asyncio.get_running_loop().create_future()
        filled = {"size": 0.0}

        def watch(event: venue.VenueEvent) -> None:
            if done.done() or not isinstance(event, ORDER_LIFECYCLE):
                return
            if event.client_id != request.client_id and not (ack.oid and event.oid == ack.oid):
                return
            if isinstance(event, venue.OrderAccepted) and request.tif != "Ioc":
                done.set_result(venue.OrderAck(event.oid, request.client_id, "resting", remaining=event.size))
            elif isinstance(event, venue.OrderFilled):
                filled["size"] += event.size
                if event.remaining == 0:
                    done.set_result(venue.OrderAck(event.oid, request.client_id, "filled", filled["size"], event.px))
            elif isinstance(event, venue.OrderCancelled):
                status = "partially_filled" if filled["size"] else "rejected"
                done.set_result(venue.OrderAck(event.oid, request.client_id, status, filled["size"], error=event.reason))
            elif isinstance(event, venue.OrderRejected):
                done.set_result(venue.OrderAck(event.oid, request.client_id, "rejected", code=event.code, error=event.reason))

        unsubscribe = self.connector.subscribe(watch)
        try:
            return await asyncio.wait_for(done, LIFECYCLE_TIMEOUT)
        except asyncio.TimeoutError:
            return venue.OrderAck(ack.oid, request.client_id, "rejected", filled["size"], code="Timeout",
                                  error=f"no outcome within {LIFECYCLE_TIMEOUT:g} s")
        finally:
            unsubscribe()
