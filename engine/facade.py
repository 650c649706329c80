"""The engine as a service: the one facade the gateway, the CLI clients and the in-process
console call. It adds to the Engine what a long-running process needs: the durable store
(events and decisions into the hash chain, the trading state and pending actions committed
before anything is acknowledged, idempotent answers that survive a restart), the master
password for admin actions, and the policies' lifecycle.

Every answer to an order is one `Answer` (HTTP status + JSON body), so the gateway, the
idempotency record and the Python client all see the same thing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from typing import TYPE_CHECKING, Callable, NamedTuple

from engine.domain.events import EngineEvent, EventKind
from engine.live.execution import SubmitResult, SubmitStatus
from engine.domain.model import OrderIntent
from engine.live.pending import PendingAction
from engine.live.protection import FlatteningInProgress
from engine.risk.policies import parse_policies, parse_policy
from engine.risk.sizing import SizeRequest, SizingError, largest_size
from engine.live.engine import Engine
from engine.risk.trading_state import TradingStateMachine
from engine.store.bots import SCOPES as BOT_SCOPES, BotCache, BotError, BotExists, BotInfo
from engine.store.journal import DURABLE_DEADLINE
from engine.store.writer import StoreWriter
from engine.api.errors import ApiError, error_body
from engine.api.state import EngineState
from engine.idempotency import Answer, IdempotencyKeys
from engine.state_view import engine_state

if TYPE_CHECKING:
    from engine.store.auth import MasterGuard
    from engine.store import Store

log = logging.getLogger("perpguard.service")

ORDER_EVENTS = frozenset({EventKind.ORDER_SENT, EventKind.ORDER_REJECTED, EventKind.REDUCE_FILLED, EventKind.REDUCE_FAILED})
STATE_EVENTS = frozenset({EventKind.STATE_CHANGED, EventKind.BREAKER_TRIPPED, EventKind.PANIC_STARTED, EventKind.PANIC_DONE})


def answer_for(result: SubmitResult) -> Answer:
    decision = result.decision.as_dict()
    if result.status is SubmitStatus.DENIED:
        body = result.decision.error_body()
        return Answer(422 if body["error"]["code"] == "VALIDATION" else 403, {**body, "decision": decision})
    if result.status is SubmitStatus.PENDING:
        return Answer(202, {"status": "pending", "pending": result.pending.as_dict(), "decision": decision})
    if result.status is SubmitStatus.REJECTED:
        return Answer(409, {**error_body("VENUE_REJECTED", result.error or "rejected by the venue"), "decision": decision})
    if result.status is SubmitStatus.UNAVAILABLE:
        return Answer(503, {**unavailable(result.error or "the store is unavailable").body, "decision": decision})
    body = {"status": result.status.value, "decision": decision}
    if result.ack is not None:
        ack = result.ack
        body["order"] = {"oid": ack.oid, "client_id": ack.client_id, "status": ack.status,
                         "filled_size": ack.filled_size, "avg_px": ack.avg_px, "remaining": ack.remaining}
    return Answer(200, body)


def unavailable(why: str) -> Answer:
    """503: the store could not journal the order in time; nothing was sent (retry)."""
    return Answer(503, error_body("STORE_UNAVAILABLE", why))


class EngineService:
    def __init__(self, engine: Engine, store: Store | None = None, guard: MasterGuard | None = None,
                 writer: StoreWriter | None = None) -> None:
        """`writer` takes the store's writes off the engine loop (the node gives one); without
        it they are made on the spot (tools and tests)."""
        self.engine = engine
        self.store = store
        self.guard = guard
        self.writer = writer
        self._saved_trading: tuple | None = None
        self.keys = IdempotencyKeys(store, self._write)
        engine.events.subscribe(self._on_event)

    def _write(self, fn: Callable, *args, **kwargs) -> None:
        if self.writer is not None:
            self.writer.submit(fn, *args, **kwargs)
        else:
            fn(*args, **kwargs)

    async def stored(self, fn: Callable, *args, **kwargs):
        """`fn(*args, **kwargs)` (a store write) through the writer, its result once committed;
        503 STORE_UNAVAILABLE if the database does not take it within the deadline (it is still
        written as soon as it answers)."""
        if self.writer is None:
            return fn(*args, **kwargs)
        done = asyncio.wrap_future(self.writer.submit(fn, *args, **kwargs))
        try:
            return await asyncio.wait_for(asyncio.shield(done), DURABLE_DEADLINE)
        except asyncio.TimeoutError:
            raise ApiError(503, "STORE_UNAVAILABLE", "the store did not confirm the change in time; it is saved as "
                           "soon as the database answers") from None

    async def durable(self, deadline: float = DURABLE_DEADLINE) -> bool:
        """Everything handed to the store so far is committed (within `deadline` seconds)."""
        return True if self.writer is None else await self.writer.durable(deadline)

    # ---- persistence ---------------------------------------------------------------------

    def _on_event(self, event: EngineEvent) -> None:
        """Runs inside `emit`, before the engine goes on: the chain and the trading state are
        on disk before any caller hears about the change; every order sent and every fill is
        recorded, with an equity point at each fill."""
        store = self.store
        if store is None:
            return
        if event.kind in STATE_EVENTS:
            self.save_trading(event)  # the state and the event that says why, in one transaction
        else:
            self._write(store.append_event, event)
        data = event.data
        if event.kind in ORDER_EVENTS and "side" in data:  # an order that reached the venue (or was refused there)
            self._write(store.record_order, at=event.at, coin=data["coin"], side=data["side"], size=data["size"],
                        status=data["status"], px=data["px"], oid=data["oid"], client_id=data["client_id"],
                        reduce_only=data["reduce_only"], error=data["error"])
        elif event.kind is EventKind.ORDER_FILLED:
            self._write(store.record_fill, at=event.at, oid=data["oid"], coin=data["coin"], side=data["side"],
                        size=data["size"], px=data["px"], fee=data["fee"], realized_pnl=data["realized_pnl"],
                        client_id=data["client_id"])
            self.record_equity()

    def record_equity(self) -> None:
        """An equity point (the node asks for one at least once a minute; every fill adds one)."""
        book = self.engine.book
        if self.store is not None and book.equity is not None:
            self._write(self.store.record_equity, self.engine.clock.now(), book.equity, book.margin_buffer)

    def save_trading(self, event: EngineEvent | None = None) -> None:
        """The trading state as it is now (a copy: the write may land later), with the event
        that moved it, in one transaction."""
        trading = self.engine.trading
        key = (trading.state, tuple(sorted(trading.causes.items())), trading.halt_cause)
        if self.store is None:
            return
        if key != self._saved_trading:
            now = TradingStateMachine(trading.state, dict(trading.causes), trading.halt_cause)
            self._write(self.store.save_trading, now, event)
            self._saved_trading = key
        elif event is not None:
            self._write(self.store.append_event, event)

    def subscribe(self, listener: Callable[[EngineEvent], None]) -> Callable[[], None]:
        return self.engine.events.subscribe(listener)

    # ---- reads ---------------------------------------------------------------------------

    def state(self) -> EngineState:
        return engine_state(self.engine)

    def pending(self) -> list[dict]:
        return [a.as_dict() for a in self.engine.pending.open_actions()]

    def policies(self) -> list[dict]:
        return [p.as_body() for p in self.engine.gate.policies]

    def recent_events(self, limit: int = 200) -> list[dict]:
        return [e.as_dict() for e in list(self.engine.events.recent)[-limit:]]

    # ---- orders --------------------------------------------------------------------------

    async def submit(self, intent: OrderIntent, scope: str = "master", *, venue_id: bool = False) -> Answer:
        """The order path, idempotent per `scope` (the bot token's id, or "master"): the same
        client_id gives the same final answer, even across a restart, and at most one venue
        order (engine.idempotency). The decision is journaled before anything is sent, and a
        held order is durable before it is acknowledged."""
        return await self.keys.run(scope, intent, self._submit_once, venue_id=venue_id)

    async def _submit_once(self, intent: OrderIntent) -> tuple[Answer, bool]:
        result = await self.engine.submit(intent)
        if result.status is SubmitStatus.PENDING and not await self.durable():
            self.engine.cancel_pending(result.pending.id, "the store did not confirm it in time: not held")
            return unavailable("the store did not confirm the held order in time: it was not held, retry"), False
        return answer_for(result), result.final

    def size(self, request: SizeRequest) -> dict:
        """`POST /v1/size`: the largest size of the intent the gate allows now, its tier, the
        binding policy and the seed formulas (engine.risk.sizing). Pure: nothing is recorded and
        nothing counts toward the rate limit; 422 VALIDATION naming the field it cannot answer."""
        try:
            return largest_size(self.engine.gate, request).as_dict()
        except SizingError as bad:
            raise ApiError(422, "VALIDATION", str(bad), bad.field) from None

    async def cancel_order(self, oid: str) -> dict:
        if oid not in self.engine.book.open_orders:
            raise ApiError(404, "NOT_FOUND", f"no open order {oid}", "id")
        ack = await self.engine.cancel_order(oid)
        return {"oid": oid, "cancelled": ack.cancelled, "error": ack.error}

    # ---- pending ---------------------------------------------------------------------------

    def _open(self, action_id: str) -> PendingAction:
        action = self.engine.pending.get(action_id)
        if action is None:
            raise ApiError(404, "NOT_FOUND", f"no open pending action {action_id}", "id")
        return action

    async def approve(self, action_id: str) -> dict:
        self._open(action_id)
        return (await self.engine.approve(action_id)).as_dict()

    async def cancel_pending(self, action_id: str) -> dict:
        """Cancel a held order; answered once the cancellation is durable."""
        self._open(action_id)
        cancelled = self.engine.cancel_pending(action_id).as_dict()
        if not await self.durable():
            raise ApiError(503, "STORE_UNAVAILABLE", "the store did not confirm the cancellation in time; it is "
                           "saved as soon as the database answers")
        return cancelled

    # ---- kill switch and resume ----------------------------------------------------------------

    async def kill(self, cause: str = "kill switch") -> dict:
        """Flatten and HALT whatever the store's state; `durable` says whether HALTED is on disk
        yet (if not, it is written as soon as the database answers)."""
        await self.engine.kill(cause)
        self.save_trading()
        return {"trading_state": self.engine.trading.state.value, "positions": len(self.engine.book.positions()),
                "open_orders": len(self.engine.book.open_orders), "durable": await self.durable()}

    async def check_master(self, password: str | None) -> None:
        if self.guard is None or not password or not await self.guard.check(password):
            raise ApiError(401, "UNAUTHORIZED", "master password missing or wrong", "X-Master-Password")

    async def resume(self, password: str | None) -> dict:
        await self.check_master(password)
        return await self.resume_checked()

    async def resume_checked(self) -> dict:
        """Resume, the caller having checked the master password; answered once it is durable.
        409 CONFLICT while a panic exit is still flattening the account (it finishes first)."""
        try:
            self.engine.resume()
        except FlatteningInProgress as refused:
            raise ApiError(409, "CONFLICT", str(refused)) from None
        self.save_trading()
        if not await self.durable():
            raise ApiError(503, "STORE_UNAVAILABLE", "the store did not confirm the resume in time; it is saved as "
                           "soon as the database answers")
        return {"trading_state": self.engine.trading.state.value}

    # ---- policies --------------------------------------------------------------------------

    def _apply(self, bodies: list[dict]) -> None:
        self.engine.set_policies(parse_policies(bodies))

    async def add_policy(self, body: dict, *, actor: str = "master") -> dict:
        """Validate, apply, store (answered once stored). An id already present is replaced (PUT
        semantics). `actor` (who asked; the gateway's policy calls need the master password)
        goes into the audit chain."""
        kind = body.get("type") if isinstance(body, dict) and isinstance(body.get("type"), str) else "policy"
        policy = parse_policy(body, f"{kind.lower().replace('_', '-')}-{uuid.uuid4().hex[:8]}")  # PolicyError names the field
        bodies = [b for b in self.policies() if b["id"] != policy.id] + [policy.as_body()]
        self._apply(bodies)  # in force at once, whatever the database is doing
        if self.store is not None:
            await self.stored(self.store.save_policy, policy.as_body(), actor=actor)
        return policy.as_body()

    async def replace_policy(self, policy_id: str, body: dict, *, actor: str = "master") -> dict:
        if all(b["id"] != policy_id for b in self.policies()):
            raise ApiError(404, "NOT_FOUND", f"no policy {policy_id}", "id")
        return await self.add_policy({**body, "id": policy_id}, actor=actor)

    async def remove_policy(self, policy_id: str, *, actor: str = "master") -> None:
        bodies = self.policies()
        if all(b["id"] != policy_id for b in bodies):
            raise ApiError(404, "NOT_FOUND", f"no policy {policy_id}", "id")
        self._apply([b for b in bodies if b["id"] != policy_id])
        if self.store is not None:
            await self.stored(self.store.delete_policy, policy_id, actor=actor)

    # ---- bot tokens ------------------------------------------------------------------------

    async def create_token(self, name: str, scopes: set[str], expires_at: float | None) -> tuple:
        """(TokenInfo, the plaintext token, shown once)."""
        return await self.stored(self.store.create_token, name, scopes, expires_at)

    async def revoke_token(self, token_id: str) -> bool:
        return await self.stored(self.store.revoke_token, token_id)

    # ---- bots: identities for the Hyperliquid-compatible API (engine.store.bots) ----------------

    @functools.cached_property
    def _bots(self) -> BotCache | None:
        """Every bot by address, so `/hl/exchange` looks a signer up without a database read."""
        return BotCache(self.store) if self.store is not None else None

    def _bot_store(self) -> Store:
        if self.store is None:
            raise ApiError(503, "STORE_UNAVAILABLE", "this engine runs without a store: bots cannot be registered")
        return self.store

    async def add_bot(self, name: str, address: str | None = None, scopes: frozenset[str] | set[str] = BOT_SCOPES,
                      *, actor: str = "master") -> tuple[BotInfo, str | None]:
        """Register a bot whose signatures `/hl/exchange` accepts: (its info, the private key).
        Without `address` a key is generated and its private key (0x hex) returned, this once:
        it is never stored. Answered once stored; 409 CONFLICT when the name or the address is
        taken, 422 VALIDATION naming the field for bad input."""
        store, private_key = self._bot_store(), None
        if address is None:
            from eth_account import Account  # only when a key is made: a heavy import

            account = Account.create()
            address, key = account.address, account.key.hex()
            private_key = key if key.startswith("0x") else f"0x{key}"
        info = await self.stored(_refusal_as_value, store.add_bot, name, address, frozenset(scopes), actor=actor)
        if isinstance(info, BotError):  # a refusal, not a failure of the store: the writer stays quiet
            status, code = (409, "CONFLICT") if isinstance(info, BotExists) else (422, "VALIDATION")
            raise ApiError(status, code, str(info), info.field)
        self._bots.clear()
        return info, private_key

    def list_bots(self) -> list[BotInfo]:
        """Every registered bot, oldest first."""
        return self.store.list_bots() if self.store is not None else []

    async def remove_bot(self, name: str, *, actor: str = "master") -> list[str]:
        """Forget the bot (its signatures are refused at once), then remove the policies scoped to
        it; answers their ids. 404 NOT_FOUND naming it if there is no such bot."""
        if not await self.stored(self._bot_store().remove_bot, name, actor=actor):
            raise ApiError(404, "NOT_FOUND", f"no bot {name}", "name")
        self._bots.clear()
        scoped = [body["id"] for body in self.policies() if body.get("bot") == name]
        for policy_id in scoped:
            await self.remove_policy(policy_id, actor=actor)
        return scoped

    def bot_for(self, address: str) -> BotInfo | None:
        """The bot registered with `address` (0x hex, any case), or None: the signer check of
        `/hl/exchange`. A dict lookup; an add or a removal through this service is seen at once,
        one made by another process within a second (BotCache.TTL)."""
        return self._bots.find(address) if self._bots is not None else None


def _refusal_as_value(add: Callable[..., BotInfo], *args, **kwargs) -> BotInfo | BotError:
    """`add(...)`, a BotError it raises returned instead (the store writer reports what raises)."""
    try:
        return add(*args, **kwargs)
    except BotError as refused:
        return refused
