"""The engine as a running service: store, policies, connector, engine, gateway, market feed and
periodic work on one asyncio loop. Used by `perpguard --engine-only`, `perpguard` and
`perpguard --demo` (which add the console).

Start order (SPEC section 12): open the store; load the policies (the store's, else the config's
policy file, else the defaults, then stored), the trading state and the pending actions;
reconcile with the exchange (`engine.start`); only then open the gateway to orders.
Stop order: stop accepting requests and let those in flight finish, stop the feed and the
periodic work (the dead-man switch is cleared on a clean stop), stop the engine, close the store.

On paper, the account survives restarts (issue 16, item 6): `build` restores the paper exchange
from the store's `paper_account` setting before the engine reconciles with it, and
`PaperAccountSaver` writes it back (see there for how much a `kill -9` can lose). The marks
continue from the saved ones (the random walk starts from the exchange's marks). The paper
venue's Hyperliquid-compatible answers (`/hl/info`, `/hl/ws`) are `Service.venue_api`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
from dataclasses import dataclass, field
from typing import Callable, Iterable

from engine.store.auth import MasterGuard, has_master_password
from engine.domain.clock import Clock, SystemClock
from engine.config import Config, ConfigError
from engine.venues.connector import Connector
from engine.venues.hl_api import VenueApi
from engine.gateway import GatewayServer, create_app, gateway_server
from engine.live.periodic import equity_points, periodic
from engine.live.notify import Notifier
from engine.venues.paper.exchange import PAPER_ADDRESS, PaperExchange
from engine.venues.paper.hl_info import PaperVenueApi
from engine.venues.paper.feed import paper_feed
from engine.venues.paper.prices import MarkTick, RandomWalk
from engine.venues.paper.universe import PAPER_MARKETS, START_PRICES
from engine.risk.policies import parse_policies
from engine.risk.policy_file import DEFAULT_POLICY_BODIES, read_policy_bodies
from engine.live.engine import Engine
from engine.facade import EngineService
from engine.domain.events import EventKind
from engine.store import Store
from engine.store.journal import DurableJournal
from engine.store.paper_account import PaperAccountSaver, UnreadableAccount, restore_paper
from engine.store.writer import StoreWriter

log = logging.getLogger("perpguard.serve")

# Where the paper exchange's marks come from: ticks, or a function of (start prices USD, start
# time epoch s) that returns them. None: a RandomWalk seeded with `[paper] seed`.
MarketSource = Iterable[MarkTick] | Callable[[dict[str, float], float], Iterable[MarkTick]]


def stored_policies(store: Store, config: Config) -> list[dict]:
    """The policies in force: the store's; on first start the config's file or the defaults,
    which are then stored so the API lists and edits them."""
    bodies = store.list_policies()
    if bodies:
        return bodies
    bodies = read_policy_bodies(config.engine.policies) if config.engine.policies else list(DEFAULT_POLICY_BODIES)
    for policy in parse_policies(bodies):
        store.save_policy(policy.as_body())
    return store.list_policies()


PAPER_ADDRESS_KEY = "paper_account_address"


def paper_address(store: Store) -> str:
    """The paper account's address: made once per store (random, like a fresh wallet's) and
    kept, so a bot and `perpguard status` see the same account across restarts."""
    address = store.get_setting(PAPER_ADDRESS_KEY)
    if address is None:
        address = "0x" + secrets.token_hex(20)
        store.set_setting(PAPER_ADDRESS_KEY, address)
    return address


def make_connector(config: Config, clock: Clock, *, paper_account: str = PAPER_ADDRESS) -> Connector:
    if config.exchange.kind == "hyperliquid":
        from pydantic import ValidationError

        from engine.venues.hyperliquid.config import AgentKeyError, HyperliquidConfig
        from engine.venues.hyperliquid.connector import HyperliquidConnector

        try:
            return HyperliquidConnector(HyperliquidConfig.model_validate(config.exchange.hyperliquid_fields()))
        except ValidationError as exc:
            raise ConfigError.from_validation(exc, "exchange.") from None
        except AgentKeyError as exc:
            raise ConfigError("exchange.agent_key", str(exc)) from None
    paper = PaperExchange(PAPER_MARKETS, equity=config.paper.equity, clock=clock,
                          account_mode=config.paper.account_mode, account_address=paper_account)
    for coin, px in START_PRICES.items():
        paper.set_mark(coin, px)
    return paper


@dataclass
class Service:
    """Everything one engine process runs. `start()` then `stop()`."""

    config: Config
    store: Store
    engine: Engine
    service: EngineService
    server: GatewayServer
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task] = field(default_factory=list)
    notifier: Notifier | None = None
    market: MarketSource | None = None
    market_speed: float = 1.0  # > 1 plays the paper market faster than real time (tests)
    # The venue's answers for the Hyperliquid-compatible API (`/hl/info`, `/hl/ws`): the paper
    # exchange's own (PaperVenueApi) on paper, the venue's through HyperliquidRelay on Hyperliquid.
    venue_api: VenueApi | None = None
    paper_saver: PaperAccountSaver | None = None

    @property
    def url(self) -> str:
        return f"http://{self.server.config.host}:{self.server.port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.service.writer.on_failure = lambda message: loop.call_soon_threadsafe(
            self.engine.events.emit, EventKind.ENGINE_ERROR, message)  # from the writer's thread
        await self.engine.start()
        self.service.record_equity()  # the series starts with the reconciled account
        self._server_task = await self.server.start()
        self.tasks.append(loop.create_task(periodic(self.engine, self.stop_event)))
        self.tasks.append(loop.create_task(equity_points(self.service.record_equity, self.stop_event)))
        connector = self.engine.connector
        if self.paper_saver is not None:
            self.tasks.append(loop.create_task(self.paper_saver.run(self.stop_event)))
        if isinstance(connector, PaperExchange):
            ticks = self._marks({c: connector.ledger.marks[c] for c in START_PRICES}, self.engine.clock.now())
            self.tasks.append(loop.create_task(paper_feed(connector, ticks, self.stop_event, self.market_speed)))
        if not has_master_password(self.store):
            log.warning("no master password is set: admin actions (policies, tokens, approve, resume) are refused "
                        "until `perpguard init` sets one")
        # What the start built (modules, markets, policies, the app: about 150,000 objects on paper)
        # lives as long as the process. Frozen, the collector never scans it again: a full
        # collection stopped the loop for 55-86 ms before, and now only scans what came since.
        gc.collect()
        gc.freeze()
        log.info("perpguard engine ready: gateway on %s, %d policies, trading %s", self.url,
                 len(self.engine.gate.policies), self.engine.trading.state.value)

    def _marks(self, prices: dict[str, float], now: float) -> Iterable[MarkTick]:
        if self.market is None:
            return RandomWalk(self.config.paper.seed, prices, start_time=now)
        return self.market(prices, now) if callable(self.market) else self.market

    async def stop(self) -> None:
        await self.server.stop(self._server_task)
        self.stop_event.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.engine.stop()
        if self.paper_saver is not None:
            self.paper_saver.save(force=True)  # the account as it stands after the clean stop
            self.paper_saver.close()
        if self.venue_api is not None:
            await self.venue_api.close()
        if self.notifier is not None:
            await self.notifier.close()
        await asyncio.to_thread(self.service.writer.stop)  # the last events, then the store closes
        self.store.close()
        log.info("perpguard engine stopped cleanly")


def build(config: Config, clock: Clock | None = None, *, market: MarketSource | None = None,
          market_speed: float = 1.0) -> Service:
    """Assemble the service (nothing runs until `start`). On paper, `market` replaces the default
    random walk (the demo's flash crash) and `market_speed` plays it faster."""
    if market_speed <= 0:
        raise ValueError("market_speed must be positive")
    clock = clock or SystemClock()
    store = Store(config.db_url)
    writer: StoreWriter | None = None
    try:
        policies = parse_policies(stored_policies(store, config))
        writer = StoreWriter(batch=store.transactions.batch)
        journal = DurableJournal(store, writer)
        counters = journal.counters(clock.now())
        connector = make_connector(config, clock, paper_account=paper_address(store))
        venue_api: VenueApi | None = None
        paper_saver: PaperAccountSaver | None = None
        if isinstance(connector, PaperExchange):
            try:
                restore_paper(store, connector)  # before the engine reconciles with it
            except UnreadableAccount as exc:
                raise ConfigError("paper", str(exc)) from None
            venue_api = PaperVenueApi(connector)
            paper_saver = PaperAccountSaver(connector, store, writer)
        else:  # Hyperliquid: bots' reads pass through to the venue behind one shared cache
            from engine.venues.hyperliquid.relay import HyperliquidRelay

            venue_api = HyperliquidRelay.for_config(connector.config, budget=connector.budget)
        engine = Engine(connector, policies, clock, pending_store=journal,
                        trading=store.load_trading(), counters=counters, journal=journal,
                        dead_man=config.engine.dead_man)
        journal.restore_counters(counters, clock.now())  # the policies' windows exist now
        service = EngineService(engine, store, MasterGuard(store), writer)
        notifier = None
        if config.notify.webhooks:
            notifier = Notifier(config.notify.webhooks, config.notify.timeout_seconds, config.notify.retries)
            service.subscribe(notifier.on_event)
        host, port = config.host_port()
        app = create_app(service, hl_venue=venue_api, hl_builders=frozenset(config.engine.hl_builders))
        server = gateway_server(app, host, port, config.engine.allow_remote)
    except BaseException:
        if writer is not None:
            writer.stop()
        store.close()
        raise
    return Service(config, store, engine, service, server, notifier=notifier, market=market, market_speed=market_speed,
                   venue_api=venue_api, paper_saver=paper_saver)

