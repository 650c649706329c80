"""`HyperliquidConnector`: the `engine.venues.connector.Connector` protocol on Hyperliquid (SPEC
section 8), mainnet or testnet, trading through an API (agent) wallet for the configured
account. It composes the parts below, each built in its constructor:

- Accounts as they are (`account.TradedAccount`). At start: `userRole` of `account_address`
  (the guarded account): a master trades as itself; a `subAccount` or a `vault` is traded with
  `vaultAddress` = the account in every L1 action; an `agent` address or one the venue never saw
  refuses to start. `extraAgents` of the master must list our agent, not expired.
  `userAbstraction` (re-read with every snapshot, cached): a unified or portfolio-margin account
  takes its equity from `spotClearinghouseState` (`snapshot.unified_account`).
- Markets (here): `perpDexs` and each named HIP-3 dex's `metaAndAssetCtxs`, for markets named
  `dex:COIN`.
- The address budget: `userRateLimit`, re-read after fills, debounced (`address_limit`); every
  `/exchange` request waits its turn and is checked against it (`actions.ActionSender`).
- Reads: httpx `/info` (clearinghouseState of each dex + frontendOpenOrders (+ the spot state
  of a unified account) for every snapshot; orderStatus to find an order by its cloid).
- Actions: built with the official SDK's wire helpers and signed by `fast_signing` (byte-identical
  to the SDK's signatures) in `signer.ActionSigner`, in a worker thread; posted with httpx on
  the engine loop.
- Orders (`placement.OrderPlacement`): idempotent by cloid (a copy that may have landed is
  asked for, or waited out to its expiry, never doubled); `place` one, `place_group` several in
  one action (`normalTpsl`, `positionTpsl`), on the market's increments (`prepare`). Fired
  triggers come as `OrderTriggered`, then their fills.
- The dead-man switch (`dead_man.DeadManSwitch`): scheduleCancel armed and cleared, its
  refusals, the venue's daily cap of fires.
- Events: one websocket (`feed.Feed`): allMids, orderUpdates, userFills, userEvents, and
  activeAssetCtx for configured markets and held positions; translated by `stream`.

Venue-facing times (nonces, expiries, the dead-man deadline) are wall-clock, as the venue
checks them; event times come from the injected clock, as the engine reads them.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any, Callable

from eth_account.signers.local import LocalAccount

from engine.domain.clock import Clock, SystemClock
from engine.domain.coins import canonical_coin
from engine.domain.model import MarketInfo
from engine.venues.connector import (
    AccountMode, CancelAck, ConnectorError, DeadManStatus, EventHandler, FeedRestored, FeedStale, Grouping, OrderAck,
    OrderRequest, VenueEvent, VenueSnapshot,
)
from engine.venues.hyperliquid.account import TradedAccount, read_at_start
from engine.venues.hyperliquid.actions import ActionSender
from engine.venues.hyperliquid.address_limit import AddressLimitSync
from engine.venues.hyperliquid.budget import AddressBudget, AddressRefused, RateBudget, RateBudgetView
from engine.venues.hyperliquid.config import HyperliquidConfig
from engine.venues.hyperliquid.dead_man import DeadManSwitch
from engine.venues.hyperliquid.feed import PING_SECONDS, Feed
from engine.venues.hyperliquid.http import HttpTransport, VenueUnavailable
from engine.venues.hyperliquid.parse import UserRole, parse_asset_ctxs, parse_open_orders
from engine.venues.hyperliquid.placement import ORDER_TTL_SECONDS, OrderPlacement
from engine.venues.hyperliquid.signer import ActionSigner
from engine.venues.hyperliquid.snapshot import (
    merge_states, parse_clearinghouse_state, parse_meta, unified_account, unified_snapshot,
)
from engine.venues.hyperliquid.stream import StreamTranslator

log = logging.getLogger("perpguard.hyperliquid")

CONNECT_WAIT_SECONDS = 5.0


class HyperliquidConnector:
    """See the module docstring. Construct from a `HyperliquidConfig`; the agent key is read
    (and checked) at construction. `clock` stamps events (the engine's clock). `http` replaces
    the transport to the venue (a test's stand-in)."""

    revision = None  # the venue cannot say cheaply whether the account changed: the engine re-reads it

    def __init__(self, config: HyperliquidConfig, clock: Clock | None = None, *, agent: LocalAccount | None = None,
                 budget: RateBudget | None = None, ping_seconds: float = PING_SECONDS,
                 order_ttl_seconds: float = ORDER_TTL_SECONDS, http: HttpTransport | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self._agent = agent if agent is not None else config.load_agent()
        self.budget = budget or RateBudget()
        self._user = config.account_address
        self.account_address = config.account_address.lower()
        self._http = http or HttpTransport(config.api_url, self.budget, config.request_timeout_seconds)
        self._handlers: list[EventHandler] = []
        self.stream = StreamTranslator(self._user, self.clock, self._emit)
        self.feed = Feed(config.ws_url, self.stream.handle, self._feed_stale, self._feed_restored,
                         config.stale_after_seconds, ping_seconds=ping_seconds)
        self._markets: dict[str, MarketInfo] = {}  # filled at start; the order placement reads it
        self.dexes: list[str] = []  # HIP-3 dexes the configured markets name
        self.address = AddressBudget()
        self._account = TradedAccount(self._http, self._user, config.network)
        self._actions = ActionSender(self._http, self.address)
        self._address_sync = AddressLimitSync(self._http, self.address, self._user)
        self._dead_man = DeadManSwitch(self._actions, self.address)
        self._orders = OrderPlacement(self._http, self._actions, self.stream, self._markets, self._user,
                                      self.clock, self._emit, order_ttl_seconds)
        self.stream.on_fill = self._address_sync.on_fill
        self.stream.on_dead_man_fire = self._dead_man.fired

    @property
    def order_ttl(self) -> float:
        """Seconds an order copy may land in (its `expiresAfter`)."""
        return self._orders.order_ttl

    @property
    def agent_address(self) -> str:
        return self._agent.address

    @property
    def role(self) -> UserRole | None:
        """`userRole` of the guarded account, as read at start."""
        return self._account.role

    @property
    def vault_address(self) -> str | None:
        """The `vaultAddress` every action carries: set for a subaccount or a vault."""
        return self._account.vault_address

    @property
    def master_address(self) -> str | None:
        """Who approves the agent: the master account (a vault's leader)."""
        return self._account.master_address

    @property
    def account_mode(self) -> AccountMode:
        """How the venue margins the account, as `userAbstraction` last said."""
        return self._account.mode

    @property
    def agent_expires_at(self) -> float | None:
        """The agent's `validUntil` (epoch s) as `extraAgents` said at start; None: never expires."""
        return self._account.agent_expires_at

    @property
    def dead_man_deadline(self) -> float | None:
        """Epoch s the venue will cancel every order at, as last confirmed; None: not armed."""
        return self._dead_man.deadline

    @property
    def dead_man(self) -> DeadManStatus:
        return self._dead_man.status

    @property
    def _signer(self) -> ActionSigner | None:
        return self._actions.signer

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the account and the agent, read the markets, prepare the signer, open the
        websocket (waits up to 5 s for it). Raises ConnectorError (`AccountIsAgent`,
        `UnknownAccount`, `AgentNotApproved`, `AgentExpired`, `UnknownDex`, `UnknownAsset`,
        `VenueUnavailable`) when it cannot trade as configured."""
        await self._http.start()
        await self._account.check_role()
        await self._account.check_agent(self.agent_address)
        await self._account.read_mode(force=True)
        meta_and_ctxs = await read_at_start(self._http, {"type": "metaAndAssetCtxs"})
        self._markets.clear()
        self._markets.update(parse_meta(meta_and_ctxs))
        self.dexes = sorted({c.partition(":")[0] for c in self.config.markets if ":" in c})
        perp_dexs, dex_metas, contexts = None, {}, [meta_and_ctxs]
        if self.dexes:
            perp_dexs = await read_at_start(self._http, {"type": "perpDexs"})
            listed = {d["name"] for d in perp_dexs if isinstance(d, dict) and "name" in d}
            missing = [d for d in self.dexes if d not in listed]
            if missing:
                raise ConnectorError("UnknownDex", f"no builder-deployed (HIP-3) perp dex named {', '.join(missing)} "
                                     f"on Hyperliquid {self.config.network} (listed: {', '.join(sorted(listed)) or 'none'})")
            for dex in self.dexes:
                dex_ctxs = await read_at_start(self._http, {"type": "metaAndAssetCtxs", "dex": dex})
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
        self._actions.signer = await asyncio.to_thread(
            lambda: ActionSigner(self._agent, self._user, self.config.mainnet, meta_and_ctxs[0],
                                 vault_address=self.vault_address, perp_dexs=perp_dexs, dex_metas=dex_metas))
        await self._address_sync.read()
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
        await self._address_sync.stop()
        await self.feed.stop()
        await self._http.close()

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
        mode = await self._account.read_mode()
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
        order's prices as `prepare.rounded` says), sign with the order's cloid, send (grouping
        `na`); never a second copy of a cloid that may have landed."""
        return await self._orders.place(order)

    async def place_group(self, orders: list[OrderRequest], grouping: Grouping) -> list[OrderAck]:
        """Several orders in one signed action with this `grouping`, one answer each, in order;
        nothing sent when any order cannot be. See `placement.OrderPlacement.place_group`."""
        return await self._orders.place_group(orders, grouping)

    async def cancel(self, coin: str, oid: str) -> CancelAck:
        coin = canonical_coin(coin)
        if coin not in self._markets or not oid.isdigit():
            return CancelAck(oid, False, f"no Hyperliquid order {oid} on {coin}")
        try:
            response = await self._actions.act(lambda: self._signer.cancel([(coin, int(oid))]), urgent=True)
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
            response = await self._actions.act(lambda: self._signer.cancel(orders), urgent=True)
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
            response = await self._actions.act(lambda: self._signer.update_leverage(coin, int(leverage), not isolated))
        except VenueUnavailable as exc:
            raise ConnectorError("VenueUnavailable", str(exc)) from None
        except AddressRefused as exc:
            raise ConnectorError("RateLimited", str(exc)) from None
        if response.get("status") != "ok":
            raise ConnectorError("InvalidLeverage", str(response.get("response")))

    async def update_isolated_margin(self, coin: str, usd: float) -> None:
        coin = canonical_coin(coin)
        if coin not in self._markets:
            raise ConnectorError("UnknownAsset", f"Unknown asset {coin}.")
        ntli = round(usd * 1_000_000)
        try:
            response = await self._actions.act(lambda: self._signer.update_isolated_margin(coin, ntli))
        except VenueUnavailable as exc:
            raise ConnectorError("VenueUnavailable", str(exc)) from None
        except AddressRefused as exc:
            raise ConnectorError("RateLimited", str(exc)) from None
        if response.get("status") != "ok":
            raise ConnectorError("MarginRefused", str(response.get("response")))

    async def arm_dead_man(self, seconds: float | None) -> DeadManStatus:
        """scheduleCancel at now + `seconds` (at least 5 s, Hyperliquid's floor); None or 0
        clears it. Never raises for the venue: the answer (also `dead_man`) says what stands.
        See `dead_man.DeadManSwitch.arm` for when it is not sent."""
        return await self._dead_man.arm(seconds)


def _statuses(response: Any) -> list[Any]:
    """The per-item results of a batched action (cancels), [] when the action failed."""
    if isinstance(response, dict) and response.get("status") == "ok":
        return response["response"]["data"]["statuses"]
    return []


def _error_text(response: Any, statuses: list[Any]) -> str:
    if statuses and isinstance(statuses[0], dict) and "error" in statuses[0]:
        return statuses[0]["error"]
    return str(response.get("response") if isinstance(response, dict) else response)
