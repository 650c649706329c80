"""The console's CPU cost (SPEC section 13: the UI refreshes at most a few times a second
whatever the feed rate): the app runs headless at 160x50 (every pane on screen), fed 200
positions whose marks all move 10 times a second, and then idle (the same picture, no updates).
Each figure is process CPU time / wall time over the measuring window (1.0 = one core).

Targets: console_cpu_share <= 0.25, console_idle_cpu_share <= 0.03."""

from __future__ import annotations

import asyncio
import math
import random
import time

from console.app import PerpguardApp
from console.link import LinkStatus
from engine.api.state import AccountView, EngineState, PositionRow
from engine.domain.model import TradingState

POSITIONS = 200
MARKS_PER_SECOND = 10
SIZE = (160, 50)


class FeedLink:
    """An EngineLink fed with synthetic `EngineState` pictures (no engine: the console's own cost)."""

    description = "bench feed"
    password_actions = frozenset()
    remembers_password = False
    needs_password = False

    def use_password(self, password: str | None) -> None: ...

    def __init__(self, positions: int = POSITIONS, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.now = 1_700_000_000.0
        self.coins = [f"C{i:03d}" for i in range(positions)]
        self.entry = {c: 10 ** self.rng.uniform(-1, 4) for c in self.coins}
        self.mark = dict(self.entry)
        self.size = {c: self.rng.choice((-1, 1)) * 1_000 / self.entry[c] for c in self.coins}
        self.state: EngineState | None = None  # built when the console asks, as InProcessLink does

    def step(self, seconds: float) -> None:
        """Every mark moves (a random walk): the next picture is a new one."""
        self.now += seconds
        for c in self.coins:
            self.mark[c] *= math.exp(self.rng.gauss(0, 0.0005))
        self.state = None

    def picture(self) -> EngineState:
        positions = []
        for c in self.coins:
            size, mark = self.size[c], self.mark[c]
            liq = mark * (0.5 if size > 0 else 1.5)
            # model_construct: the engine's pictures come validated; the bench measures the console
            positions.append(PositionRow.model_construct(
                coin=c, side="long" if size > 0 else "short", size=size, entry_px=self.entry[c], mark_px=mark,
                notional=abs(size) * mark, leverage=2.0, unrealized_pnl=size * (mark - self.entry[c]),
                liquidation_px=liq, distance=abs(mark - liq) / mark))
        equity = 100_000 + sum(p.unrealized_pnl for p in positions)
        account = AccountView(equity=equity, maintenance_margin=5_000.0, margin_buffer=1 - 5_000 / equity,
                              account_leverage=2.0, warn_buffer=0.5, panic_buffer=0.25, target_buffer=0.7)
        return EngineState(time=self.now, trading_state=TradingState.ACTIVE, account=account,
                           positions=tuple(positions), feed_age_seconds=0.1)

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def status(self) -> LinkStatus:
        return LinkStatus(True, "bench")

    def latest_state(self) -> EngineState:
        if self.state is None:
            self.state = self.picture()
        return self.state

    def drain_events(self) -> list[dict]:
        return []


async def _share(app: PerpguardApp, link: FeedLink, seconds: float, feed: bool) -> float:
    period = 1.0 / MARKS_PER_SECOND
    loop = asyncio.get_running_loop()

    async def run(until: float) -> None:
        while loop.time() < until:
            await asyncio.sleep(period)
            if feed:
                link.step(period)

    await run(loop.time() + 1.0)  # warm up: the first pictures build every row
    cpu, wall = time.process_time(), time.perf_counter()
    await run(loop.time() + seconds)
    return (time.process_time() - cpu) / (time.perf_counter() - wall)


async def _measure(seconds: float) -> dict:
    link = FeedLink()
    app = PerpguardApp(link, owns_engine=False)
    async with app.run_test(size=SIZE):
        busy = await _share(app, link, seconds, feed=True)
        idle = await _share(app, link, seconds, feed=False)
    return {"console_cpu_share": round(busy, 4), "console_idle_cpu_share": round(idle, 4)}


def measure_console_cpu(seconds: float = 5.0) -> dict:
    """{"console_cpu_share": ..., "console_idle_cpu_share": ...}: CPU time / wall time."""
    return asyncio.run(_measure(seconds))


if __name__ == "__main__":
    print(measure_console_cpu())
