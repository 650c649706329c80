"""A real engine on the paper exchange for the console's tests: fixed marks, a frozen clock,
positions opened and orders held through the engine's own gate (SPENDING_LIMIT tiers), and the
master password checked by a small guard with MasterGuard's interface."""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass
from typing import Callable

from console.link import InProcessLink
from engine.domain.clock import ManualClock
from engine.domain.model import OrderIntent
from engine.venues.paper.exchange import PaperExchange
from engine.venues.paper.universe import PAPER_MARKETS, START_PRICES
from engine.risk.policies import parse_policies
from engine.risk.policy_file import DEFAULT_POLICY_BODIES
from engine.live.engine import Engine
from engine.facade import EngineService
from engine.live.execution import SubmitStatus

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
PASSWORD = "correct horse battery"
# Up to 20k USD sent at once, up to 40k held 5 minutes (DELAY), above that a human approves.
SPENDING = {"id": "spending", "type": "SPENDING_LIMIT",
            "rules": {"instant_max_usd": 20_000, "notify_max_usd": 20_000, "delay_max_usd": 40_000, "delay_seconds": 300,
                      "approval_timeout_seconds": 3600, "daily_limit_usd": 500_000}}
POSITIONS = (("BTC", "buy", 18_000), ("ETH", "sell", 15_000), ("SOL", "buy", 12_000), ("DOGE", "buy", 9_000))
HELD = (("BTC", "buy", 45_000), ("ETH", "buy", 30_000))  # one APPROVAL, one DELAY


class FixedPassword:
    """The master-password check EngineService asks of a guard (`async check(password)`),
    against one known string."""

    def __init__(self, password: str = PASSWORD) -> None:
        self.password = password

    async def check(self, password: str) -> bool:
        return hmac.compare_digest(password.encode(), self.password.encode())


@dataclass
class Rig:
    clock: ManualClock
    paper: PaperExchange
    engine: Engine
    service: EngineService
    link: InProcessLink

    def pending(self, tier: str) -> dict:
        return next(p for p in self.service.pending() if p["tier"] == tier)

    def set_marks(self, marks: dict[str, float]) -> None:
        for coin, px in marks.items():
            self.paper.set_mark(coin, px)


async def build_rig(positions=POSITIONS, held=HELD, extra_policies: list[dict] | None = None) -> Rig:
    clock = ManualClock(T0)
    paper = PaperExchange(PAPER_MARKETS, equity=100_000, clock=clock)
    for coin, px in START_PRICES.items():
        paper.set_mark(coin, px)
    bodies = [dict(b) for b in DEFAULT_POLICY_BODIES] + [SPENDING] + list(extra_policies or [])
    engine = Engine(paper, parse_policies(bodies), clock)
    await engine.start()
    for market, side, usd in positions:
        result = await engine.submit(OrderIntent(market=market, side=side, notional_usd=usd))
        assert result.status is SubmitStatus.SENT, result
    for market, side, usd in held:
        result = await engine.submit(OrderIntent(market=market, side=side, notional_usd=usd))
        assert result.status is SubmitStatus.PENDING, result
    await engine.settle()
    service = EngineService(engine, store=None, guard=FixedPassword())
    return Rig(clock, paper, engine, service, InProcessLink(service, "in-process paper engine"))


SETTLE_SECONDS = 10.0  # the deadline for the screen to catch up (a loaded CI machine included)


async def wait_until(pilot, condition: Callable[[], bool], what: str, seconds: float = SETTLE_SECONDS) -> None:
    """Let the app run until `condition()` holds; fail naming `what` if it does not within
    `seconds`. Each turn waits for the app to go idle, then a little for its timers."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    await pilot.pause()
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def settled(pilot, app) -> None:
    """Wait until the screen shows the engine's newest picture in full (`PerpguardApp.settled`:
    the first picture applied, the throttled positions table and the chart caught up, the
    layout and the theme's colours applied), then for Textual to have painted it."""
    await wait_until(pilot, lambda: app.settled, "the console to show the newest picture")
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


def toasts_on_screen(app) -> list:
    """The toasts drawn now, on the current screen or the ones behind it: Textual's `Toast`
    widgets (queried by name: the class is not public) displayed in a displayed holder, and,
    on the current screen, laid out."""
    return [t for screen in app.screen_stack for t in screen.query("Toast")
            if t.display and t.parent.display and (screen is not app.screen or t.region.area)]


def notifications(app) -> list[str]:
    """Record every message the app notifies from now on (toasts, whether drawn or not)."""
    seen: list[str] = []
    notify = app.notify

    def recording(message, **options):
        seen.append(message)
        return notify(message, **options)

    app.notify = recording
    return seen


async def trip_daily_loss(rig: Rig, app=None, steps: int = 24) -> None:
    """Marks fall step by step, 5 s apart, until the daily loss limit (5%) trips; the app (if
    given) takes a picture at every step, so its chart has a history."""
    start = {coin: START_PRICES[coin] for coin in ("BTC", "SOL", "DOGE", "ETH")}
    if app is not None:
        app.refresh_now(force=True)  # the picture before the fall, whenever the app's own first one lands
    for step in range(1, steps + 1):
        rig.clock.advance(5)
        fall = 0.0075 * step
        rig.set_marks({"BTC": start["BTC"] * (1 - fall), "SOL": start["SOL"] * (1 - 1.6 * fall),
                       "DOGE": start["DOGE"] * (1 - 2 * fall), "ETH": start["ETH"] * (1 - 0.5 * fall)})
        await rig.engine.settle()
        if app is not None:
            app.refresh_now(force=True)
