"""The request-weight budget: Hyperliquid's weights, a rolling minute, cancels first when low."""

import asyncio

import pytest

from engine.venues.hyperliquid.budget import RateBudget, exchange_weight, info_weight
from engine.venues.hyperliquid.http import backoff


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.mark.parametrize("kind,weight", [
    ("clearinghouseState", 2), ("allMids", 2), ("orderStatus", 2), ("l2Book", 2),
    ("meta", 20), ("metaAndAssetCtxs", 20), ("frontendOpenOrders", 20), ("openOrders", 20), ("userRole", 60),
])
def test_info_weights_follow_the_docs(kind, weight):
    assert info_weight(kind) == weight


def test_exchange_weight_is_one_plus_a_fortieth_of_the_batch():
    assert exchange_weight({"type": "order", "orders": [{}]}) == 1
    assert exchange_weight({"type": "order", "orders": [{}] * 79}) == 2
    assert exchange_weight({"type": "cancel", "cancels": [{}] * 80}) == 3
    assert exchange_weight({"type": "scheduleCancel"}) == 1


def test_spending_slides_out_of_the_minute():
    clock = Clock()
    budget = RateBudget(monotonic=clock)
    assert budget.try_spend(600) == 0 and budget.view().used == 600
    clock.t += 30
    assert budget.try_spend(480) == 0
    assert budget.try_spend(20) == pytest.approx(30)  # only the reserve is left: wait for the first 600 to age out
    clock.t += 30
    view = budget.view()
    assert (view.used, view.remaining) == (480, 720)


def test_cancels_may_spend_the_reserve_when_the_budget_runs_low():
    clock = Clock()
    budget = RateBudget(limit=1200, urgent_reserve=120, monotonic=clock)
    assert budget.try_spend(1080) == 0
    assert budget.view().low
    assert budget.try_spend(2) > 0  # an ordinary read waits
    assert budget.try_spend(1, urgent=True) == 0  # a cancel goes


def test_a_429_pauses_ordinary_requests_but_not_cancels():
    clock = Clock()
    budget = RateBudget(monotonic=clock)
    budget.pause(2.0)
    assert budget.try_spend(2) == pytest.approx(2.0)
    assert budget.try_spend(1, urgent=True) == 0
    assert budget.view().paused_seconds == pytest.approx(2.0)


async def test_acquire_waits_until_the_weight_fits():
    budget = RateBudget(limit=10, window_seconds=0.2, urgent_reserve=0)
    await budget.acquire(10)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await budget.acquire(5)
    assert 0.15 <= loop.time() - start < 1.0


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    assert [backoff(a, rng=lambda: 1.0) for a in range(4)] == pytest.approx([0.2, 0.4, 0.8, 1.6])
    assert backoff(0, rng=lambda: 0.0) == pytest.approx(0.1)  # jitter: half to all of the step
    assert backoff(30, rng=lambda: 1.0) == pytest.approx(10.0)
