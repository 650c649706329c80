"""`HyperliquidConnector`: the `engine.venues.connector.Connector` protocol on Hyperliquid (SPEC
section 8), mainnet or testnet, trading through an API (agent) wallet for the configured
account.

- Accounts as they are. At start: `userRole` of `account_address` (the guarded account): a
  master trades as itself; a `subAccount` or a `vault` is traded with `vaultAddress` = the
  account in every L1 action (signed and posted); an `agent` address or one the venue never
  saw (`missing`) refuses to start. `extraAgents` of the master (a vault's: its leader, from
  `vaultDetails`) must list our agent, not expired (`agent_expires_at`). `userAbstraction`
  (re-read with every snapshot, cached `ABSTRACTION_TTL_SECONDS`): a unified or portfolio-margin
  account takes its equity from `spotClearinghouseState` (`snapshot.unified_account`).
  `perpDexs` and each named HIP-3 dex's `metaAndAssetCtxs`, for markets named `dex:COIN`.
  `userRateLimit`: the address budget (re-read after fills, debounced).
- Reads: httpx `/info` (clearinghouseState of each dex + frontendOpenOrders (+ the spot state
  of a unified account) for every snapshot; orderStatus to find an order by its cloid).
- Actions: built with the official SDK's wire helpers and signed by `fast_signing` (byte-identical
  to the SDK's signatures) in `signer.ActionSigner`, in a worker thread; posted with httpx on
  the engine loop.
- Events: one websocket (`feed.Feed`): allMids, orderUpdates, userFills, userEvents, and
  activeAssetCtx for configured markets and held positions; translated by `stream`.

Idempotency: every order carries a cloid derived from its client_id and an `expiresAfter` a
few seconds ahead. When the venue may have taken an order without us hearing back (5xx, lost
connection), or `place` is called again with a client_id already sent, we ask `orderStatus`
by cloid before sending anything: a copy that landed is reported, not doubled; a copy that
did not is waited out to its expiry (after which it can never land) and only then sent again.

Trigger orders (stop-loss / take-profit): `place` sends one alone (grouping `na`);
`place_group` sends several in one action (`normalTpsl`: an entry and its TP/SL children, which
wait for the entry to fill; `positionTpsl`: stops that close the whole position), idempotent by
the orders' cloids the same way. Their prices are rounded as `_rounded` says (a stop never
looser); a market trigger carries the venue's default 10% cap from its trigger price as its
limit. Fired triggers come as `OrderTriggered`, then their fills.

Venue-facing times (nonces, expiries, the dead-man deadline) are wall-clock, as the venue
checks them; event times come from the injected clock, as the engine reads them.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from decimal import Decimal
from collections import OrderedDict
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from typing import Any, AsyncIterator, Callable

from eth_account.signers.local import LocalAccount

from engine.domain.clock import Clock, SystemClock
from datetime import datetime, timezone

from engine.venues.connector import (
    DEAD_MAN_DAILY_FIRES, AccountMode, CancelAck, ConnectorError, DeadManStatus, EventHandler, FeedRestored,
    FeedStale, Grouping, OrderAck, OrderRejected, OrderRequest, Trigger, VenueEvent, VenueSnapshot,
)
from engine.venues.hyperliquid.budget import (
    AddressBudget, AddressRefused, RateBudget, RateBudgetView, address_weight,
)
from engine.venues.hyperliquid.config import HyperliquidConfig
from engine.venues.hyperliquid.feed import PING_SECONDS, Feed
from engine.venues.hyperliquid.http import HttpTransport, NotProcessed, OutcomeUnknown, VenueUnavailable, backoff
from engine.venues.hyperliquid.parse import is_rejected as is_rejected_status
from engine.venues.hyperliquid.parse import (
    OrderStatus, UserRole, ack_from_response, ack_from_status, acks_from_response, agent_valid_until, fills_of, is_rate_limited,
    parse_asset_ctxs, parse_open_orders, parse_order_status, parse_user_rate_limit, parse_user_role,
)
from engine.venues.hyperliquid.signer import ActionSigner, cloid_for
from engine.venues.hyperliquid.stream import ORDERS_REMEMBERED, StreamTranslator
from engine.domain.increments import round_price, round_size
from engine.domain.coins import canonical_coin
from engine.domain.model import MarketInfo
from engine.venues.hyperliquid.snapshot import (
    account_mode_of, merge_states, parse_clearinghouse_state, parse_meta, unified_account, unified_snapshot,
)

log = logging.getLogger("perpguard.hyperliquid")

ACTION_ATTEMPTS = 4
ORDER_TTL_SECONDS = 10.0  # an order copy not on the venue by then never will be
EXPIRY_MARGIN_SECONDS = 0.5  # clock skew allowance when waiting a copy out
CONNECT_WAIT_SECONDS = 5.0
MIN_DEAD_MAN_SECONDS = 5.0  # Hyperliquid refuses a scheduleCancel sooner than 5 s ahead
DEAD_MAN_RETRY_SECONDS = 600.0  # after a refusal for too little volume, ask again at most every 10 min
DEAD_MAN_SPARE_SECONDS = 30.0  # address budget low: no re-arm while the deadline is this far away
VOLUME_REFUSAL = "Cannot set scheduled cancel time until enough volume traded"
ABSTRACTION_TTL_SECONDS = 5.0  # userAbstraction weighs 20: read at most this often
RATE_LIMIT_REFRESH_SECONDS = 5.0  # userRateLimit re-read this long after a fill (debounced)
FIRE_SAME_MS = 1_000  # scheduledCancel updates within this of each other are one fire
DAY_MS = 86_400_000
MARKET_TRIGGER_SLIPPAGE = Decimal("0.10")  # the venue's default cap for market TP/SL, from the trigger price


class HyperliquidConnector:
    """See the module docstring. Construct from a `HyperliquidConfig`; the agent key is read
    (and checked) at construction. `clock` stamps events (the engine's clock)."""

    revision = None  # the venue cannot say cheaply whether the account changed: the engine re-reads it

    def __init__(self, config: HyperliquidConfig, clock: Clock | None = None, *, agent: LocalAccount | None = None,
                 budget: RateBudget | None = None, ping_seconds: float = PING_SECONDS,
                 order_ttl_seconds: float = ORDER_TTL_SECONDS) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self._agent = agent if agent is not None else config.load_agent()
        self.budget = budget or RateBudget()
        self.order_ttl = order_ttl_seconds
        self._user = config.account_address
        self.account_address = config.account_address.lower()
        self._http = HttpTransport(config.api_url, self.budget, config.request_timeout_seconds)
        self._handlers: list[EventHandler] = []
        self.stream = StreamTranslator(self._user, self.clock, self._emit)
        self.feed = Feed(config.ws_url, self.stream.handle, self._feed_stale, self._feed_restored,
                         config.stale_after_seconds, ping_seconds=ping_seconds)
        self._markets: dict[str, MarketInfo] = {}
        self._signer: ActionSigner | None = None
        # cloid -> wall-clock expiry of the latest copy whose fate is unknown (None: all known)
        self._sent: OrderedDict[str, float | None] = OrderedDict()
        self._placing: dict[str, tuple[asyncio.Lock, int]] = {}  # cloid -> (its lock, calls using it)
        self.stream.on_fill = self._on_fill
        self.stream.on_dead_man_fire = self._on_dead_man_fire
        self.address = AddressBudget()
        self.role: UserRole | None = None
        self.vault_address: str | None = None  # set for a subaccount or a vault
        self.master_address: str | None = None  # who approves the agent
        self.account_mode: AccountMode = "standard"
        self._abstraction_read_at = float("-inf")
        self.dexes: list[str] = []  # HIP-3 dexes the configured markets name
        self._agent_expires_at: float | None = None
        self._dead_man = DeadManStatus()
        self._volume_refused_at = float("-inf")  # monotonic time of the last refusal for volume
        self._fires: list[int] = []  # ms of each distinct dead-man fire seen (UTC days roll)
        self._limit_refresh: asyncio.Task | None = None

    @property
    def agent_address(self) -> str:
        return self._agent.address

    @property
    def agent_expires_at(self) -> float | None:
        """The agent's `validUntil` (epoch s) as `extraAgents` said at start; None: never expires."""
        return self._agent_expires_at

    @property
    def dead_man_deadline(self) -> float | None:
        """Epoch s the venue will cancel every order at, as last confirmed; None: not armed."""
        return self._dead_man.until if self._dead_man.armed else None

    @property
    def dead_man(self) -> DeadManStatus:
        return replace(self._dead_man, fired_today=self._fires_today())

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the account and the agent, read the markets, prepare the signer, open the
        websocket (waits up to 5 s for it). Raises ConnectorError (`AccountIsAgent`,
        `UnknownAccount`, `AgentNotApproved`, `AgentExpired`, `UnknownDex`, `UnknownAsset`,
        `VenueUnavailable`) when it cannot trade as configured."""
        await self._http.start()
        await self._check_account()
        await self._check_agent()
        await self._read_abstraction(force=True)
        meta_and_ctxs = await self._info({"type": "metaAndAssetCtxs"})
        self._markets = parse_meta(meta_and_ctxs)
        self.dexes = sorted({c.partition(":")[0] for c in self.config.markets if ":" in c})
        perp_dexs, dex_metas, contexts = None, {}, [meta_and_ctxs]
        if self.dexes:
            perp_dexs = await self._info({"type": "perpDexs"})
            listed = {d["name"] for d in perp_dexs if isinstance(d, dict) and "name" in d}
            missing = [d for d in self.dexes if d not in listed]
            if missing:
                raise ConnectorError("UnknownDex", f"no builder-deployed (HIP-3) perp dex named {', '.join(missing)} "
                                     f"on Hyperliquid {self.config.network} (listed: {', '.join(sorted(listed)) or 'none'})")
            for dex in self.dexes:
                dex_ctxs = await self._info({"type": "metaAndAssetCtxs", "dex": dex})
                dex_metas[dex] = dex_ctxs[0]
                self._markets.update(parse_meta(dex_ctxs))
                contexts.append(dex_ctxs)
        unknown = [c for c in self.config.markets if c not in self._markets]
        if unknown:
            raise ConnectorError("UnknownAsset", f"markets not listed on Hyperliquid: {', '.join(unknown)}")
        self.stream.markets = set(self._markets)
        now = self.clock.now()
        for answer in contexts:
            marks, funding = parse_asset_ctxs(answer)
            for coin, px in marks.items():
                self.stream.marks[coin], self.stream.mark_times[coin] = px, now
            self.stream.funding.update(funding)
        self._signer = await asyncio.to_thread(
            lambda: ActionSigner(self._agent, self._user, self.config.mainnet, meta_and_ctxs[0],
                                 vault_address=self.vault_address, perp_dexs=perp_dexs, dex_metas=dex_metas))
        await self._read_rate_limit()
        subscriptions = [{"type": "allMids"}] + [{"type": "allMids", "dex": d} for d in self.dexes]
        subscriptions += [{"type": "orderUpdates", "user": self._user}, {"type": "userFills", "user": self._user},
                          {"type": "userEvents", "user": self._user}]
        for subscription in subscriptions:
            await self.feed.add(subscription)
        for coin in self.config.markets:
            await self.feed.add({"type": "activeAssetCtx", "coin": coin})
        await self.feed.start()
        if not await self.feed.wait_connected(CONNECT_WAIT_SECONDS):
            log.warning("hyperliquid websocket not connected yet; the feed stays stale until it is")

    async def stop(self) -> None:
        if self._limit_refresh is not None:
            self._limit_refresh.cancel()
            await asyncio.gather(self._limit_refresh, return_exceptions=True)
            self._limit_refresh = None
        await self.feed.stop()
        await self._http.close()

    async def _info(self, body: dict[str, Any]) -> Any:
        """An info read at start: a venue that cannot be reached or refuses it is a ConnectorError."""
        try:
            return await self._http.info(body)
        except (VenueUnavailable, ValueError) as exc:
            raise ConnectorError("VenueUnavailable", str(exc)) from None

    async def _check_account(self) -> None:
        """`userRole` of the guarded account: how to trade it, and who approves our agent."""
        address = self._user
        try:
            role = parse_user_role(await self._info({"type": "userRole", "user": address}))
        except ValueError as exc:
            raise ConnectorError("VenueUnavailable", f"cannot tell what account {address} is: {exc}") from None
        self.role = role
        network = self.config.network
        if role.role == "agent":
            master = role.master or "the account that approved it"
            raise ConnectorError("AccountIsAgent", (
                f"account_address {address} is an API wallet (agent), not an account: set account_address to "
                f"{master} (the account that holds the funds; for a subaccount or a vault, its own address) "
                f"and keep the agent's key where agent_key_env / agent_key_file say"))
        if role.role == "missing":
            raise ConnectorError("UnknownAccount", (
                f"Hyperliquid {network} knows no account {address}: set account_address to the address of the "
                f"account that holds the funds (your master account, a subaccount or a vault, as the app shows "
                f"it; not the API wallet's), and check network = \"{network}\""))
        if role.role == "subAccount":
            self.vault_address = address.lower()
            self.master_address = role.master
        elif role.role == "vault":
            self.vault_address = address.lower()
            details = await self._info({"type": "vaultDetails", "vaultAddress": address})
            self.master_address = details.get("leader") if isinstance(details, dict) else None
        elif role.role == "user":
            self.master_address = address
        else:
            raise ConnectorError("UnknownAccount", f"Hyperliquid says {address} is a {role.role!r}, which perpguard "
                                 "cannot trade: set account_address to a master account, a subaccount or a vault")
        if self.master_address is None:
            raise ConnectorError("UnknownAccount", f"Hyperliquid did not say who controls the {role.role} {address}")

    async def _check_agent(self) -> None:
        """Our agent must be approved by the master (a vault's leader) and not expired."""
        master, agent = self.master_address, self.agent_address
        agents = await self._info({"type": "extraAgents", "user": master})
        approved, until = agent_valid_until(agents, agent)
        whose = f"the {self.role.role} {self._user}" if self.vault_address else f"the account {self._user}"
        approver = "the vault's leader" if self.role.role == "vault" else "the master account"
        if not approved:
            raise ConnectorError("AgentNotApproved", (
                f"the API wallet {agent} (the key perpguard was given) is not approved by {master} for {whose}: "
                f"approve it in the app (More -> API) signing with {approver} ({master}), or give perpguard the key "
                f"of an API wallet that is (run `perpguard init --exchange hyperliquid` for the steps)"))
        self._agent_expires_at = until
        if until is not None and until <= time.time():
            when = datetime.fromtimestamp(until, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            raise ConnectorError("AgentExpired", (
                f"the API wallet {agent} approved by {master} expired on {when}: Hyperliquid refuses every action "
                f"it signs (the panic exit included). Generate a new API wallet in the app (More -> API), approve "
                f"it with {approver} and give perpguard its key"))

    async def _read_abstraction(self, force: bool = False) -> AccountMode:
        """`userAbstraction` -> the account mode (cached ABSTRACTION_TTL_SECONDS unless forced)."""
        mono = time.monotonic()
        if force or mono - self._abstraction_read_at >= ABSTRACTION_TTL_SECONDS:
            answer = await self._http.info({"type": "userAbstraction", "user": self._user})
            self.account_mode = account_mode_of(answer)
            self._abstraction_read_at = mono
        return self.account_mode

    async def _read_rate_limit(self) -> None:
        """`userRateLimit` of the guarded account -> the address budget; unreadable: left as it was."""
        try:
            limit = parse_user_rate_limit(await self._http.info({"type": "userRateLimit", "user": self._user}))
        except (VenueUnavailable, ValueError, KeyError, TypeError) as exc:
            log.warning("could not read the address rate limit: %s", exc)
            return
        self.address.update(limit.used, limit.cap, limit.volume)

    def _on_fill(self, fill: dict[str, Any]) -> None:
        """A new fill: the venue grants one request per USDC traded; re-read the budget soon."""
        self.address.traded(float(fill["sz"]) * float(fill["px"]))
        if self._limit_refresh is None or self._limit_refresh.done():
            try:
                self._limit_refresh = asyncio.get_running_loop().create_task(self._refresh_rate_limit())
            except RuntimeError:
                pass  # no loop (a unit test feeding the translator): the local count stands

    async def _refresh_rate_limit(self) -> None:
        await asyncio.sleep(RATE_LIMIT_REFRESH_SECONDS)
        await self._read_rate_limit()

    def _on_dead_man_fire(self, at_ms: int) -> None:
        if any(abs(at_ms - seen) <= FIRE_SAME_MS for seen in self._fires):
            return  # another order cancelled by the same fire
        self._fires.append(at_ms)
        self._fires = [f for f in self._fires if f >= at_ms - 2 * DAY_MS]
        self._dead_man = DeadManStatus(False, None, "fired: the venue cancelled every resting order",
                                       self._fires_today())

    def _fires_today(self) -> int:
        midnight = int(time.time() * 1000) // DAY_MS * DAY_MS
        return sum(1 for f in self._fires if f >= midnight)

    async def meta(self) -> dict[str, MarketInfo]:
        return dict(self._markets)

    def subscribe(self, handler: EventHandler) -> Callable[[], None]:
        self._handlers.append(handler)
        return lambda: self._handlers.remove(handler) if handler in self._handlers else None

    def rate_budget(self) -> RateBudgetView:
        """The request-weight budget of this minute (1200 a minute per IP), with the address
        budget (`userRateLimit`) as `.address`."""
        return replace(self.budget.view(), address=self.address.view())

    def _emit(self, event: VenueEvent) -> None:
        for handler in list(self._handlers):
            handler(event)

    def _feed_stale(self, silent: float) -> None:
        now = self.clock.now()
        since = max(self.stream.mark_times.values(), default=now)
        self._emit(FeedStale(since, now, f"no market data from Hyperliquid for {silent:.1f} s"))

    def _feed_restored(self, events_lost: bool) -> None:
        self._emit(FeedRestored(self.clock.now(), events_lost))

    # ---- reading ---------------------------------------------------------------------------

    async def snapshot(self) -> VenueSnapshot:
        """Account, positions and open orders from the venue now (every dex we trade, merged);
        live marks (with their real times) and funding from the feed. A unified or
        portfolio-margin account (its mode re-read here) takes its account figures from the
        spot state. A position's coin gets its mark and funding streamed."""
        mode = await self._read_abstraction()
        dexes = [""] + self.dexes
        reads = [self._http.info(self._with_dex({"type": "clearinghouseState", "user": self._user}, d)) for d in dexes]
        reads += [self._http.info(self._with_dex({"type": "frontendOpenOrders", "user": self._user}, d)) for d in dexes]
        if mode != "standard":
            reads.append(self._http.info({"type": "spotClearinghouseState", "user": self._user}))
        answers = await asyncio.gather(*reads)
        states, rows = answers[:len(dexes)], [r for answer in answers[len(dexes):2 * len(dexes)] for r in answer]
        venue = merge_states(parse_clearinghouse_state(state) for state in states)
        if mode != "standard":
            unified = unified_account(answers[-1], dict(zip(dexes, states)))
            venue = unified_snapshot(venue, unified, mode)
        now = self.clock.now()
        open_orders = parse_open_orders(rows, self.stream.client_ids, self.stream.requests)
        self.stream.reconcile(open_orders)
        marks, times = dict(self.stream.marks), dict(self.stream.mark_times)
        for coin, px in venue.marks.items():  # positionValue / |szi|: the venue's mark, as of now
            if coin not in marks:
                marks[coin], times[coin] = px, now
        for position in venue.positions:
            await self.feed.add({"type": "activeAssetCtx", "coin": position.coin})
        return VenueSnapshot(replace(venue.account, time=now), venue.positions, open_orders, marks, now,
                             dict(self.stream.funding), times, venue.venue_cross_maintenance, venue.unknown, mode)

    @staticmethod
    def _with_dex(body: dict[str, Any], dex: str) -> dict[str, Any]:
        return body | {"dex": dex} if dex else body

    # ---- orders ----------------------------------------------------------------------------

    async def place(self, order: OrderRequest) -> OrderAck:
        """Round to the market's increments (size down; price never more aggressive; a trigger
        order's prices as `_rounded` says), sign with the order's cloid, send (grouping `na`);
        never a second copy of a cloid that may have landed."""
        prepared = self._prepare(order, "na")
        if isinstance(prepared, OrderAck):
            self._emit(OrderRejected(None, prepared.client_id, order.coin, prepared.code, prepared.error,
                                     self.clock.now()))
            return prepared
        request = prepared
        cloid = cloid_for(request.client_id)
        self.stream.expect(cloid, request)
        async with self._one_at_a_time(cloid):  # a concurrent retry waits, then finds this one
            return await self._place(request, cloid)

    def _prepare(self, order: OrderRequest, grouping: Grouping) -> OrderRequest | OrderAck:
        """The order as it will be sent (a client_id, on the market's increments), or the
        rejection that keeps it from being sent (not emitted)."""
        info = self._markets.get(order.coin)
        client_id = order.client_id or f"pg-{uuid.uuid4().hex[:20]}"

        def refused(code: str, message: str) -> OrderAck:
            return OrderAck(None, client_id, "rejected", remaining=float(order.size), code=code, error=message)

        if info is None or info.sz_decimals is None:
            return refused("UnknownAsset", f"Unknown asset {order.coin}.")
        request = _rounded(replace(order, client_id=client_id), info.sz_decimals)
        # A positionTpsl trigger takes the whole position when it fires: the venue lets it carry no size.
        sizeless = grouping == "positionTpsl" and request.trigger is not None
        if request.size <= 0 and not (sizeless and request.size == 0):
            return refused("InvalidSize", f"Order has invalid size. ({order.size} is below the lot of {order.coin})")
        if request.limit_px <= 0 or (request.trigger is not None and request.trigger.trigger_px <= 0):
            return refused("InvalidPrice", f"Order has invalid price. ({order.limit_px} rounds to 0 on "
                                           f"{order.coin}'s tick: not sent)")
        return request

    async def _place(self, request: OrderRequest, cloid: str) -> OrderAck:
        client_id = request.client_id
        problem = ""
        for attempt in range(ACTION_ATTEMPTS):
            if attempt:
                await asyncio.sleep(backoff(attempt - 1))
            try:
                if cloid in self._sent:
                    landed = await self._landed(cloid)
                    if landed is not None:
                        ack = ack_from_status(request, await self._with_fills(landed))
                        self.stream.acknowledged(ack)
                        return ack
                response = await self._send_order(request, cloid)
            except AddressRefused as exc:
                return self._refused(request, client_id, "RateLimited", str(exc))
            except (NotProcessed, OutcomeUnknown, VenueUnavailable) as exc:
                problem = str(exc)
                continue
            self._remember(cloid, None)
            self._note_refusal(response)
            ack = ack_from_response(request, response)
            if ack.ok:
                self.stream.acknowledged(ack)
            else:
                self._emit(OrderRejected(None, client_id, request.coin, ack.code, ack.error, self.clock.now()))
            return ack
        if self._sent.get(cloid) is not None:  # a copy may still land: its events will tell
            return OrderAck(None, client_id, "pending", remaining=float(request.size))
        return self._refused(request, client_id, "VenueUnavailable", f"Hyperliquid did not take the order: {problem}")

    async def place_group(self, orders: list[OrderRequest], grouping: Grouping) -> list[OrderAck]:
        """Several orders in one signed action with this `grouping` (`normalTpsl`: the entry
        first, then its reduce-only TP/SL triggers; `positionTpsl`: position stops), one answer
        each, in order: `resting` for an order on the book, a trigger waiting for its price or a
        child waiting for its entry (`waitingForFill`; its oid is looked up by cloid), `filled` /
        `partially_filled` for an entry that traded, `rejected` with the venue's per-order code
        and text.

        Nothing is sent when any order cannot be (an unknown market, a size below the lot, a
        client_id twice): an entry must never go out without its stop. Idempotent by the
        orders' cloids as `place` is: after an unknown outcome (or a call again with client_ids
        already sent) each cloid is asked of `orderStatus` first; if any of them is on the venue
        the action landed and the answers come from there, else the copy is waited out to its
        expiry and only then sent again: never a second copy of the group blind."""
        if grouping not in ("na", "normalTpsl", "positionTpsl"):
            raise ValueError(f"grouping must be na, normalTpsl or positionTpsl, not {grouping!r}")
        if not orders:
            return []
        prepared = [self._prepare(order, grouping) for order in orders]
        cloids = [cloid_for(p.client_id) if isinstance(p, OrderRequest) else None for p in prepared]
        twice = {c for c in cloids if c is not None and cloids.count(c) > 1}
        bad = next((i for i, p in enumerate(prepared) if isinstance(p, OrderAck) or cloids[i] in twice), None)
        if bad is not None:
            acks = []
            for i, (order, p) in enumerate(zip(orders, prepared)):
                client_id = p.client_id
                if isinstance(p, OrderAck):
                    ack = p
                elif cloids[i] in twice:
                    ack = OrderAck(None, client_id, "rejected", remaining=float(p.size), code="DuplicateClientId",
                                   error=f"client_id {client_id} is twice in the group: not sent")
                else:
                    reason = prepared[bad].error if isinstance(prepared[bad], OrderAck) else "a client_id twice"
                    ack = OrderAck(None, client_id, "rejected", remaining=float(p.size), code="GroupNotSent",
                                   error=f"not sent: order {bad} of the group was refused ({reason})")
                self._emit(OrderRejected(None, client_id, order.coin, ack.code, ack.error, self.clock.now()))
                acks.append(ack)
            return acks
        requests: list[OrderRequest] = prepared  # type: ignore[assignment]
        for request, cloid in zip(requests, cloids):
            self.stream.expect(cloid, request)
        async with AsyncExitStack() as stack:
            for cloid in sorted(set(cloids)):  # one lock order: two overlapping groups never deadlock
                await stack.enter_async_context(self._one_at_a_time(cloid))
            return await self._place_group(requests, cloids, grouping)

    async def _place_group(self, requests: list[OrderRequest], cloids: list[str], grouping: Grouping) -> list[OrderAck]:
        problem = ""
        for attempt in range(ACTION_ATTEMPTS):
            if attempt:
                await asyncio.sleep(backoff(attempt - 1))
            try:
                if any(cloid in self._sent for cloid in cloids):
                    landed = await self._group_landed(cloids)
                    if landed is not None:
                        return await self._acks_from_statuses(requests, landed)
                response = await self._send_group(requests, cloids, grouping)
            except AddressRefused as exc:
                return [self._refused(r, r.client_id, "RateLimited", str(exc)) for r in requests]
            except (NotProcessed, OutcomeUnknown, VenueUnavailable) as exc:
                problem = str(exc)
                continue
            for cloid in cloids:
                self._remember(cloid, None)
            self._note_refusal(response)
            acks = acks_from_response(requests, response)
            acks = [await self._with_oid(ack, cloid) for ack, cloid in zip(acks, cloids)]
            for request, ack in zip(requests, acks):
                if ack.ok:
                    self.stream.acknowledged(ack)
                else:
                    self._emit(OrderRejected(None, ack.client_id, request.coin, ack.code, ack.error, self.clock.now()))
            return acks
        if any(self._sent.get(cloid) is not None for cloid in cloids):  # a copy may still land
            return [OrderAck(None, r.client_id, "pending", remaining=float(r.size)) for r in requests]
        return [self._refused(r, r.client_id, "VenueUnavailable", f"Hyperliquid did not take the orders: {problem}")
                for r in requests]

    async def _send_group(self, requests: list[OrderRequest], cloids: list[str], grouping: Grouping) -> Any:
        urgent = all(r.reduce_only for r in requests)  # stops for a position already held
        await self._address_turn(urgent)
        self.address.check(len(requests), urgent)  # raises AddressRefused: never sent
        expires = time.time() + self.order_ttl
        payload = await asyncio.to_thread(self._signer.orders, list(zip(requests, cloids)), grouping,
                                          int(expires * 1000))
        try:
            return await self._http.exchange(payload, urgent=urgent)
        except OutcomeUnknown:
            for cloid in cloids:
                self._remember(cloid, expires)
            raise

    async def _group_landed(self, cloids: list[str]) -> list[OrderStatus | None] | None:
        """Each order of a group on the venue (None: not there), or None when no copy of the
        group landed and none can any more. One action lands whole or not at all, so any order
        found means it landed (an order missing then was refused by the venue)."""
        statuses = [await self._order_status(cloid) for cloid in cloids]
        if any(s is not None for s in statuses):
            return statuses
        expires = max((self._sent.get(cloid) or 0.0 for cloid in cloids), default=0.0)
        if expires:
            await asyncio.sleep(max(0.0, expires + EXPIRY_MARGIN_SECONDS - time.time()))
            statuses = [await self._order_status(cloid) for cloid in cloids]
            if any(s is not None for s in statuses):
                return statuses
        for cloid in cloids:
            if cloid in self._sent:
                self._sent[cloid] = None  # expired unseen: it never landed
        return None

    async def _acks_from_statuses(self, requests: list[OrderRequest], statuses: list[OrderStatus | None]) -> list[OrderAck]:
        acks = []
        for request, status in zip(requests, statuses):
            if status is None:
                ack = OrderAck(None, request.client_id, "rejected", remaining=float(request.size), code="VenueRejected",
                               error="the group landed without this order: the venue refused it (its answer was lost)")
            else:
                ack = ack_from_status(request, await self._with_fills(status))
                self.stream.acknowledged(ack)
            acks.append(ack)
        return acks

    async def _with_oid(self, ack: OrderAck, cloid: str) -> OrderAck:
        """A child answered `waitingForFill` has no oid in the answer: ask `orderStatus` by cloid."""
        if not ack.ok or ack.oid is not None:
            return ack
        try:
            status = await self._order_status(cloid)
        except (VenueUnavailable, ValueError) as exc:
            log.warning("could not read the oid of order %s: %s", cloid, exc)
            return ack
        return replace(ack, oid=status.oid) if status is not None else ack

    @asynccontextmanager
    async def _one_at_a_time(self, cloid: str) -> AsyncIterator[None]:
        lock, users = self._placing.get(cloid, (asyncio.Lock(), 0))
        self._placing[cloid] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._placing[cloid]
            if users == 1:
                del self._placing[cloid]
            else:
                self._placing[cloid] = (lock, users - 1)

    async def _send_order(self, request: OrderRequest, cloid: str) -> Any:
        urgent = request.reduce_only
        await self._address_turn(urgent)
        self.address.check(1, urgent)  # raises AddressRefused: never sent
        expires = time.time() + self.order_ttl
        payload = await asyncio.to_thread(self._signer.order, request, cloid, int(expires * 1000))
        try:
            return await self._http.exchange(payload, urgent=urgent)
        except OutcomeUnknown:
            self._remember(cloid, expires)
            raise

    async def _landed(self, cloid: str) -> OrderStatus | None:
        """The order with this cloid on the venue, or None once no copy of it can still land
        (waits out the latest copy whose fate is unknown)."""
        status = await self._order_status(cloid)
        expires = self._sent.get(cloid)
        if status is None and expires is not None:
            await asyncio.sleep(max(0.0, expires + EXPIRY_MARGIN_SECONDS - time.time()))
            status = await self._order_status(cloid)
            if status is None:
                self._sent[cloid] = None  # expired unseen: it never landed
        return status

    async def _with_fills(self, status: OrderStatus) -> OrderStatus:
        """The order's filled size and price from its fills: the stream's, else `userFills`
        (orderStatus' sizes cannot say what filled)."""
        if is_rejected_status(status.status):
            return status
        size, avg = self.stream.filled(status.oid)
        if size == 0:
            try:
                size, avg = fills_of(await self._http.info({"type": "userFills", "user": self._user}), status.oid)
            except (VenueUnavailable, ValueError) as exc:
                log.warning("could not read the fills of order %s: %s", status.oid, exc)
        return replace(status, filled=size or None, avg_px=avg)

    async def _address_turn(self, urgent: bool) -> None:
        """After the venue refused us for the address budget, urgent requests go one per 10 s."""
        wait = self.address.wait(urgent)
        if wait > 0:
            await asyncio.sleep(wait)

    def _note_refusal(self, response: Any) -> None:
        """Hear the address-budget refusal in any `/exchange` answer."""
        if isinstance(response, dict) and response.get("status") == "err" \
                and is_rate_limited(str(response.get("response"))):
            self.address.venue_refused(str(response["response"]))
            log.error("Hyperliquid refused a request for the address budget: %s", response["response"])

    async def _order_status(self, cloid: str) -> OrderStatus | None:
        return parse_order_status(await self._http.info({"type": "orderStatus", "user": self._user, "oid": cloid}))

    def _remember(self, cloid: str, expires: float | None) -> None:
        previous = self._sent.get(cloid)
        self._sent[cloid] = max(previous, expires) if previous is not None and expires is not None else expires
        self._sent.move_to_end(cloid)
        if len(self._sent) > ORDERS_REMEMBERED:
            self._sent.popitem(last=False)

    def _refused(self, order: OrderRequest, client_id: str, code: str, message: str) -> OrderAck:
        self._emit(OrderRejected(None, client_id, order.coin, code, message, self.clock.now()))
        return OrderAck(None, client_id, "rejected", remaining=float(order.size), code=code, error=message)

    async def _act(self, sign: Callable[[], dict[str, Any]], urgent: bool = False) -> Any:
        """Sign and send a non-order action (idempotent: safe to sign again and resend). Raises
        AddressRefused when the address budget forbids it, VenueUnavailable when it never got through."""
        problem = ""
        for attempt in range(ACTION_ATTEMPTS):
            if attempt:
                await asyncio.sleep(backoff(attempt - 1))
            payload = await asyncio.to_thread(sign)
            await self._address_turn(urgent)
            self.address.check(address_weight(payload["action"]), urgent)
            try:
                response = await self._http.exchange(payload, urgent)
            except (NotProcessed, OutcomeUnknown) as exc:
                problem = str(exc)
                continue
            self._note_refusal(response)
            return response
        raise VenueUnavailable(f"Hyperliquid did not take the action after {ACTION_ATTEMPTS} attempts; last: {problem}")

    async def cancel(self, coin: str, oid: str) -> CancelAck:
        coin = canonical_coin(coin)
        if coin not in self._markets or not oid.isdigit():
            return CancelAck(oid, False, f"no Hyperliquid order {oid} on {coin}")
        try:
            response = await self._act(lambda: self._signer.cancel([(coin, int(oid))]), urgent=True)
        except (VenueUnavailable, AddressRefused) as exc:
            return CancelAck(oid, False, str(exc))
        result = _statuses(response)
        if result and result[0] == "success":
            return CancelAck(oid, True)
        return CancelAck(oid, False, _error_text(response, result))

    async def cancel_all(self) -> int:
        """Cancel every open order in one action; the number the venue cancelled. Never raises:
        a panic exit must go on to close positions even if this fails (it is logged)."""
        try:
            rows = []
            for dex in [""] + self.dexes:
                rows += await self._http.info(self._with_dex({"type": "frontendOpenOrders", "user": self._user}, dex))
            orders = [(canonical_coin(r["coin"]), int(r["oid"])) for r in rows
                      if canonical_coin(r["coin"]) in self._markets]
            if not orders:
                return 0
            response = await self._act(lambda: self._signer.cancel(orders), urgent=True)
        except (VenueUnavailable, AddressRefused, ValueError) as exc:
            log.error("cancel all failed: %s", exc)
            return 0
        return sum(1 for s in _statuses(response) if s == "success")

    async def set_leverage(self, coin: str, leverage: int, isolated: bool = False) -> None:
        coin = canonical_coin(coin)
        if coin not in self._markets:
            raise ConnectorError("UnknownAsset", f"Unknown asset {coin}.")
        if not isolated and self._markets[coin].only_isolated:
            raise ConnectorError("OnlyIsolated", f"{coin} trades with isolated margin only: set isolated leverage")
        try:
            response = await self._act(lambda: self._signer.update_leverage(coin, int(leverage), not isolated))
        except VenueUnavailable as exc:
            raise ConnectorError("VenueUnavailable", str(exc)) from None
        except AddressRefused as exc:
            raise ConnectorError("RateLimited", str(exc)) from None
        if response.get("status") != "ok":
            raise ConnectorError("InvalidLeverage", str(response.get("response")))

    async def arm_dead_man(self, seconds: float | None) -> DeadManStatus:
        """scheduleCancel at now + `seconds` (at least 5 s, Hyperliquid's floor); None or 0
        clears it. Never raises for the venue: the answer (also `dead_man`) says what stands.

        - Refused by the venue: not armed, `reason` its text. Refused for too little traded
          volume (the venue wants $1M): not asked again for `DEAD_MAN_RETRY_SECONDS` (10 min);
          the standing status is returned meanwhile.
        - Fired `DEAD_MAN_DAILY_FIRES` times this UTC day (the venue's cap): not sent, says so.
        - Address budget low and the standing deadline still >= 30 s away: not re-sent (a
          re-arm every 20 s costs 4,320 requests a day).
        - Not reachable: the previous deadline stands (armed while it is ahead).
        """
        if seconds and seconds < MIN_DEAD_MAN_SECONDS:
            raise ConnectorError("InvalidDeadMan", f"the dead-man switch needs at least {MIN_DEAD_MAN_SECONDS:g} s")
        now, fired = time.time(), self._fires_today()
        standing = self._dead_man
        if seconds:
            if fired >= DEAD_MAN_DAILY_FIRES:
                self._dead_man = DeadManStatus(
                    False, None, f"not armed: the venue's dead-man switch already fired {fired} times today (UTC), "
                    f"its daily limit of {DEAD_MAN_DAILY_FIRES}; it can be armed again after midnight UTC", fired)
                return self._dead_man
            if time.monotonic() - self._volume_refused_at < DEAD_MAN_RETRY_SECONDS:
                return self.dead_man
            if (self.address.view().low and standing.armed and standing.until is not None
                    and standing.until - now >= DEAD_MAN_SPARE_SECONDS):
                return self.dead_man
        at = now + seconds if seconds else None
        at_ms = int(at * 1000) if at is not None else None
        try:
            response = await self._act(lambda: self._signer.schedule_cancel(at_ms), urgent=True)
        except (VenueUnavailable, AddressRefused) as exc:
            log.error("dead-man switch not %s: %s", "armed" if at else "cleared", exc)
            still = standing.armed and standing.until is not None and standing.until > now
            self._dead_man = DeadManStatus(still, standing.until if still else None,
                                           None if still else f"not {'armed' if at else 'cleared'}: {exc}", fired)
            return self._dead_man
        if not isinstance(response, dict) or response.get("status") != "ok":
            reason = str(response.get("response") if isinstance(response, dict) else response)
            log.error("dead-man switch refused by Hyperliquid: %s", reason)
            if reason.startswith(VOLUME_REFUSAL):
                self._volume_refused_at = time.monotonic()
            self._dead_man = DeadManStatus(False, None, reason, fired)
            return self._dead_man
        self._volume_refused_at = float("-inf")
        self._dead_man = DeadManStatus(True, at, None, fired) if at is not None else DeadManStatus(
            False, None, "cleared", fired)
        return self._dead_man


def _statuses(response: Any) -> list[Any]:
    """The per-item results of a batched action (cancels), [] when the action failed."""
    if isinstance(response, dict) and response.get("status") == "ok":
        return response["response"]["data"]["statuses"]
    return []


def _error_text(response: Any, statuses: list[Any]) -> str:
    if statuses and isinstance(statuses[0], dict) and "error" in statuses[0]:
        return statuses[0]["error"]
    return str(response.get("response") if isinstance(response, dict) else response)


def _rounded(order: OrderRequest, sz_decimals: int) -> OrderRequest:
    """The order on the market's increments (5 significant figures, 6 − szDecimals decimals,
    integers always valid); size rounded down to the lot.

    - A limit order's price never more aggressive than asked (a buy rounds down, a sell up).
    - A trigger price never looser than asked: a stop-loss rounds toward the mark (a sell's, a
      long's stop below the mark, up; a buy's, a short's stop above it, down), at most one
      tick tighter; a take-profit to the nearest tick.
    - A trigger's limit: a market trigger carries the venue's cap, the trigger price ∓ 10%
      (`MARKET_TRIGGER_SLIPPAGE`) rounded away from the trigger, whatever `limit_px` said; a
      limit trigger's own `limit_px` rounds toward filling (a sell down, a buy up; one tick at
      most), so a protective exit is never the one that does not fill by a tick.
    """
    size = round_size(order.size, sz_decimals)
    trigger = order.trigger
    if trigger is None:
        return replace(order, size=size, limit_px=round_price(order.limit_px, sz_decimals, order.side))
    # round_price(px, side): a "buy" rounds down, a "sell" up.
    toward_fill = "buy" if order.side == "sell" else "sell"  # a sell's limit down, a buy's up
    if trigger.tpsl == "sl":
        trigger_px = round_price(trigger.trigger_px, sz_decimals, order.side)  # a sell's up, a buy's down
    else:
        trigger_px = round_price(trigger.trigger_px, sz_decimals)
    if trigger.is_market:
        cap = Decimal(1) + MARKET_TRIGGER_SLIPPAGE if order.side == "buy" else Decimal(1) - MARKET_TRIGGER_SLIPPAGE
        limit_px = round_price(trigger_px * cap, sz_decimals, toward_fill)
    else:
        limit_px = round_price(order.limit_px, sz_decimals, toward_fill)
    return replace(order, size=size, limit_px=limit_px, trigger=Trigger(trigger_px, trigger.tpsl, trigger.is_market))
