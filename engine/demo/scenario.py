"""The demo (`perpguard --demo`, and headless `python -m engine.demo`): the engine and gateway on
the paper exchange, a simulated market with a flash crash, and a demo bot trading through the
real gateway, so every tier, a breaker and a de-risk show within the first two minutes.

    service = demo_service(config)          # demo policies, a throwaway database, paper only
    await service.start()
    bot = start_demo_bot(service)           # a task: the scripted bot (engine/demo/bot.py)
    ...                                     # the console, in-process on `service`
    bot.cancel(); await service.stop()

A demo never touches the trader's store, venue or webhooks: `demo_config` points the engine at a
fresh temporary SQLite database, the paper exchange (100,000 USD) and the demo policies
(`examples/demo-policies.json`, whose thresholds are tuned for the demo, not for trading).
`speed` > 1 plays everything faster (market, policy timers, bot waits) for tests.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import copy
import functools
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterable

from engine.store.auth import set_master_password
from engine.api.client import AsyncClient
from engine.config import Config, ExchangeSection, NotifySection, PaperSection
from engine.demo.bot import run_demo_bot
from engine.domain.events import EngineEvent, EventKind
from engine.venues.paper.prices import DEFAULT_REGIMES, FlashCrash, MarkTick, RandomWalk
from engine.node import Service, build

log = logging.getLogger("perpguard.demo")

DEMO_EQUITY = 100_000.0  # USD, the paper account
DEMO_SEED = 7
DEMO_MASTER_PASSWORD = "perpguard-demo"  # set on the demo's own throwaway store only
DEMO_BOT_SCOPES = {"trade", "read"}

# Market-wide: every coin falls 8% over 20 s starting 80 s in, then wins back half of it over 60 s.
# At the demo bot's 6x BTC that takes the margin buffer under warn (0.90) near -4.8% (about 92 s
# in); without the de-risk it would reach panic (0.80) only at -11% and liquidation at -15.6%.
DEMO_CRASH = FlashCrash(start_seconds=80.0, drop=0.08, fall_seconds=20.0, rebound=0.5, rebound_seconds=60.0)

# The demo policy set. examples/demo-policies.json holds the same bodies with a `description`
# each (tests/test_demo.py keeps the two equal); the bodies live here too so an installed
# wheel, which ships no examples/, runs the same demo.
DEMO_POLICY_BODIES: list[dict] = [
    {"id": "demo-markets", "type": "PERP_ALLOWED_MARKETS", "rules": {"allowedMarkets": ["BTC-USD", "ETH-USD", "SOL-USD"]}},
    {"id": "demo-position-caps", "type": "PERP_MAX_POSITION_USD",
     "rules": {"maxPositionUsd": 700000, "marketLimits": {"BTC-USD": 700000, "ETH-USD": 100000, "SOL-USD": 50000}}},
    {"id": "demo-leverage", "type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 8}},
    {"id": "demo-spending", "type": "SPENDING_LIMIT",
     "rules": {"instant_max_usd": 5000, "notify_max_usd": 150000, "delay_max_usd": 250000, "delay_seconds": 20,
               "daily_limit_usd": 1500000, "approval_timeout_seconds": 900, "on_exceed": "APPROVAL"}},
    {"id": "demo-circuit-breaker", "type": "CIRCUIT_BREAKER", "rules": {"maxConsecutiveLosses": 3, "cooldownMinutes": 0.5}},
    {"id": "demo-margin-buffer", "type": "MIN_MARGIN_BUFFER",
     "rules": {"minBuffer": 0.92, "warnBuffer": 0.90, "panicBuffer": 0.80, "targetBuffer": 0.95, "hysteresis": 0.02}},
    {"id": "demo-loss-limit", "type": "LOSS_LIMIT", "rules": {"dailyLoss": 0.5}},
    {"id": "demo-stale-data", "type": "STALE_DATA", "rules": {"maxMarkAgeSeconds": 10, "maxAccountAgeSeconds": 30}},
    {"id": "demo-price-band", "type": "PRICE_BAND", "rules": {"maxDeviation": 0.05}},
    {"id": "demo-rate-limit", "type": "RATE_LIMIT", "rules": {"maxTransactions": 60, "period": "minute"}},
    {"id": "demo-order-limits", "type": "ORDER_LIMITS", "rules": {"maxOpenOrders": 50}},
    {"id": "demo-venue-stop", "type": "VENUE_STOP",
     "rules": {"triggerBuffer": 0.7, "orderKind": "market", "limitSlippage": 0.02, "minDistance": 0.005}},
]


def demo_policy_bodies(speed: float = 1.0) -> list[dict]:
    """The demo policies, their timers (DELAY hold, approval timeout, breaker cooldown) divided by
    `speed`. Data-freshness limits stay as they are: the engine's own clock is real time."""
    if speed <= 0:
        raise ValueError("speed must be positive")
    bodies = copy.deepcopy(DEMO_POLICY_BODIES)
    for body in bodies:
        rules = body["rules"]
        for key in ("delay_seconds", "approval_timeout_seconds"):
            if key in rules:
                rules[key] = max(1, round(rules[key] / speed))
        if "cooldownMinutes" in rules:
            rules["cooldownMinutes"] = rules["cooldownMinutes"] / speed
    return bodies


def _scratch_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="perpguard-demo-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def demo_config(base: Config | None = None, *, speed: float = 1.0, directory: str | Path | None = None) -> Config:
    """`base` turned into a demo: the demo policies (written to `directory`), a fresh SQLite
    database there, the paper exchange with 100,000 USD, no webhooks. The gateway address and
    the console settings are kept. `directory` defaults to a temporary one removed at exit."""
    base = base or Config()
    where = Path(directory) if directory is not None else _scratch_dir()
    where.mkdir(parents=True, exist_ok=True)
    policies = where / "demo-policies.json"
    policies.write_text(json.dumps(demo_policy_bodies(speed), indent=1))
    db = where / "demo.db"
    for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        stale.unlink(missing_ok=True)  # a demo always starts from nothing
    engine = base.engine.model_copy(update={"db": f"sqlite:///{db.resolve()}", "policies": str(policies)})
    return base.model_copy(update={
        "engine": engine,
        "paper": PaperSection(equity=DEMO_EQUITY, seed=base.paper.seed),
        "exchange": ExchangeSection(kind="paper"),
        "notify": NotifySection(),
    })


def demo_market(start_prices: dict[str, float], start_time: float, seed: int = DEMO_SEED) -> Iterable[MarkTick]:
    """Marks every second: a seeded random walk (calm and normal regimes, no random jumps, so
    the script's losses are the fees' and the slippage's) with `DEMO_CRASH` laid over it."""
    return RandomWalk(seed, start_prices, start_time=start_time, regimes=DEFAULT_REGIMES[:2],
                      jump_probability=0.0, crash=DEMO_CRASH)


def demo_service(base: Config | None = None, *, speed: float = 1.0, directory: str | Path | None = None) -> Service:
    """`build()` for the demo: demo config, demo market (seeded from `[paper] seed`), at `speed`.
    The demo's own store gets the master password `DEMO_MASTER_PASSWORD` (approve, resume)."""
    config = demo_config(base, speed=speed, directory=directory)
    service = build(config, market=functools.partial(demo_market, seed=config.paper.seed), market_speed=speed)
    set_master_password(service.store, DEMO_MASTER_PASSWORD)
    return service


def demo_token(service: Service) -> str:
    """A bot token (trade, read) on the demo's store, for the demo bot."""
    _info, token = service.store.create_token("demo-bot", set(DEMO_BOT_SCOPES), None)
    return token


def start_demo_bot(service: Service, stop: asyncio.Event | None = None, *, speed: float | None = None) -> asyncio.Task:
    """Run the demo bot against the started service's gateway, as a task. It stops when `stop`
    (default: the service's own stop event) is set, or when cancelled."""
    speed = speed if speed is not None else service.market_speed
    token = demo_token(service)
    stop = stop or service.stop_event

    async def bot() -> None:
        async with AsyncClient(service.url, token=token) as client:
            await run_demo_bot(client, stop, pace=1.0 / speed)

    return asyncio.get_running_loop().create_task(bot(), name="perpguard-demo-bot")


# ---- headless: python -m engine.demo ------------------------------------------------------------


def _print_event(event: EngineEvent) -> None:
    if event.kind is not EventKind.ENGINE_STARTED:
        logging.getLogger("perpguard.events").info("%s", event.message)


def _summary(service: Service) -> str:
    state = service.service.state()
    account = state.account
    positions = ", ".join(f"{p.coin} {p.size:+g} (${p.notional or 0:,.0f})" for p in state.positions) or "flat"
    return (f"equity {account.equity or 0:,.2f} USD, margin buffer {account.margin_buffer or 0:.3f}, trading "
            f"{state.trading_state.value}, positions: {positions}, pending: {len(state.pending)}")


async def run_headless(base: Config | None = None, *, speed: float = 1.0, linger: float = 5.0) -> int:
    """The demo without the console: the bot's lines and the engine's events on stderr."""
    service = demo_service(base, speed=speed)
    await service.start()
    service.service.subscribe(_print_event)
    log.info("demo engine on %s (a throwaway database; demo master password %r)", service.url, DEMO_MASTER_PASSWORD)
    try:
        await start_demo_bot(service, speed=speed)
        await asyncio.sleep(linger / speed)
        log.info("end of the demo: %s", _summary(service))
    finally:
        await service.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--speed", type=float, default=1.0, help="play the demo this many times faster")
    parser.add_argument("--listen", default="127.0.0.1:0", help="gateway address (default: a free loopback port)")
    args = parser.parse_args(argv)
    if args.speed <= 0:
        parser.error("--speed must be positive")
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)-17s %(message)s",
                        datefmt="%H:%M:%S")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the bot's requests, one line each
    try:
        return asyncio.run(run_headless(Config(engine={"listen": args.listen}), speed=args.speed))
    except KeyboardInterrupt:
        return 130


