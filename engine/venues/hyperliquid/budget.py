"""Hyperliquid's request-weight budget, tracked on our side so we slow down before the venue
answers 429 (docs: "Rate limits and user limits").

REST requests from one IP share 1200 weight a rolling minute. `/info` requests weigh 2
(l2Book, allMids, clearinghouseState, orderStatus, spotClearinghouseState, exchangeStatus),
60 (userRole) or 20 (every other type); `/exchange` actions weigh 1 + floor(batch / 40).

When the budget runs low, cancels (and risk-reducing orders) go first: ordinary requests may not
spend the last `urgent_reserve` of the minute, which is kept for them.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

WEIGHT_PER_MINUTE = 1200
WINDOW_SECONDS = 60.0
URGENT_RESERVE = 120  # weight only cancels and reduce-only orders may spend (10% of the minute)

_INFO_WEIGHT_2 = frozenset({"l2Book", "allMids", "clearinghouseState", "orderStatus",
                            "spotClearinghouseState", "exchangeStatus"})
_INFO_WEIGHT_60 = frozenset({"userRole"})


def info_weight(request_type: str) -> int:
    """The weight of one `/info` request of this type."""
    if request_type in _INFO_WEIGHT_2:
        return 2
    if request_type in _INFO_WEIGHT_60:
        return 60
    return 20


def exchange_weight(action: dict[str, Any]) -> int:
    """The weight of one `/exchange` action: 1 + floor(batch / 40), batch = its orders, cancels
    or modifies (1 for an unbatched action)."""
    for key in ("orders", "cancels", "modifies"):
        batch = action.get(key)
        if isinstance(batch, list):
            return 1 + len(batch) // 40
    return 1


@dataclass(frozen=True, slots=True)
class RateBudgetView:
    """The budget now: weights spent and left in the rolling window (`window_seconds`),
    the part kept for cancels, and seconds left of a pause the venue imposed with a 429."""

    limit: int
    used: int
    remaining: int
    urgent_reserve: int
    window_seconds: float
    paused_seconds: float

    @property
    def low(self) -> bool:
        """Only cancels and reduce-only orders may go out now."""
        return self.remaining <= self.urgent_reserve


class RateBudget:
    """A rolling window of spent weights. `acquire` waits until the weight fits."""

    def __init__(self, limit: int = WEIGHT_PER_MINUTE, window_seconds: float = WINDOW_SECONDS,
                 urgent_reserve: int = URGENT_RESERVE, monotonic: Callable[[], float] = time.monotonic) -> None:
        if not 0 <= urgent_reserve < limit:
            raise ValueError("urgent_reserve must be within [0, limit)")
        self.limit = limit
        self.window = window_seconds
        self.urgent_reserve = urgent_reserve
        self._now = monotonic
        self._spent: deque[tuple[float, int]] = deque()
        self._used = 0
        self._paused_until = float("-inf")

    def _prune(self, now: float) -> None:
        while self._spent and self._spent[0][0] <= now - self.window:
            self._used -= self._spent.popleft()[1]

    def view(self) -> RateBudgetView:
        now = self._now()
        self._prune(now)
        return RateBudgetView(self.limit, self._used, self.limit - self._used, self.urgent_reserve,
                              self.window, max(0.0, self._paused_until - now))

    def try_spend(self, weight: int, urgent: bool = False) -> float:
        """Spend `weight` now if it fits and return 0; else spend nothing and return the seconds
        to wait before it may fit."""
        now = self._now()
        self._prune(now)
        if not urgent and now < self._paused_until:
            return self._paused_until - now
        allowance = self.limit - self._used - (0 if urgent else self.urgent_reserve)
        if weight <= allowance:
            self._spent.append((now, weight))
            self._used += weight
            return 0.0
        # wait for enough old spending to leave the window
        freed, need = 0, weight - allowance
        for at, w in self._spent:
            freed += w
            if freed >= need:
                return max(0.01, at + self.window - now)
        return self.window  # more than the window holds: cannot happen with sane weights

    async def acquire(self, weight: int, urgent: bool = False) -> None:
        """Wait until `weight` fits in the window, then spend it. `urgent` (cancels, reduce-only
        orders) may use the reserve and ignores a 429 pause (its caller backs off on its own)."""
        while (wait := self.try_spend(weight, urgent)) > 0:
            await asyncio.sleep(wait)

    def pause(self, seconds: float) -> None:
        """The venue answered 429: hold ordinary requests for `seconds`."""
        self._paused_until = max(self._paused_until, self._now() + seconds)
