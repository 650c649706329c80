"""Hyperliquid's request-weight budget, tracked on our side so we slow down before the venue
answers 429 (docs: "Rate limits and user limits").

REST requests from one IP share 1200 weight a rolling minute. `/info` requests weigh 2
(l2Book, allMids, clearinghouseState, orderStatus, spotClearinghouseState, exchangeStatus),
60 (userRole) or 20 (every other type); `/exchange` actions weigh 1 + floor(batch / 40).

When the budget runs low, cancels (and risk-reducing orders) go first: ordinary requests may not
spend the last `urgent_reserve` of the minute, which is kept for them.

Each address also has a budget of its own (`AddressBudget`, info `userRateLimit`): 10,000
requests plus one per USDC the address ever traded; each order or cancel of a batch counts
(`address_weight`). The venue refuses beyond it (HTTP 200, `Too many cumulative requests sent
(N > M) for cumulative volume traded $V...`); cancels keep working a while longer
(min(cap + 100,000, 2 × cap)). We track it locally so ordinary orders stop before the venue
refuses, keeping `reserve` requests for cancels and reduce-only orders.
"""

from __future__ import annotations

import asyncio
import re
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


def address_weight(action: dict[str, Any]) -> int:
    """What one `/exchange` action spends of the address budget: one per order, cancel or
    modify of a batch (1 for an unbatched action)."""
    for key in ("orders", "cancels", "modifies"):
        batch = action.get(key)
        if isinstance(batch, list):
            return max(1, len(batch))
    return 1


ADDRESS_RESERVE = 200  # address requests only cancels and reduce-only orders may spend
ADDRESS_LOW = 2_000  # below this many left the budget is low: the dead-man re-arm is spared
ADDRESS_URGENT_SPACING_SECONDS = 10.0  # after the venue refused: one urgent request per 10 s
_REFUSAL = re.compile(r"Too many cumulative requests sent \((\d+) > (\d+)\)(?: for cumulative volume traded \$(\d+(?:\.\d+)?))?")


@dataclass(frozen=True, slots=True)
class AddressBudgetView:
    """The address budget as we track it: `used` of `cap` requests (None: not read yet),
    `reserve` kept for cancels and reduce-only orders, the address's traded `volume` USD, and
    `refused`: the venue refused us for it (only urgent requests go out, one per 10 s, until a
    `userRateLimit` read shows room again)."""

    used: int | None
    cap: int | None
    reserve: int
    volume: float | None
    refused: bool

    @property
    def remaining(self) -> int | None:
        return None if self.used is None or self.cap is None else self.cap - self.used

    @property
    def low(self) -> bool:
        """Little left: spend it on what protects the account."""
        remaining = self.remaining
        return self.refused or (remaining is not None and remaining <= ADDRESS_LOW)


class AddressRefused(Exception):
    """Refused locally: the address budget has only its reserve left (or the venue refused us)."""


class AddressBudget:
    """The address budget (see the module docstring). `check` spends or refuses."""

    def __init__(self, reserve: int = ADDRESS_RESERVE, urgent_spacing: float = ADDRESS_URGENT_SPACING_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.reserve = reserve
        self.urgent_spacing = urgent_spacing
        self._now = monotonic
        self.used: int | None = None
        self.cap: int | None = None
        self.volume: float | None = None
        self.refused = False
        self._last_urgent = float("-inf")

    def view(self) -> AddressBudgetView:
        return AddressBudgetView(self.used, self.cap, self.reserve, self.volume, self.refused)

    def update(self, used: int, cap: int, volume: float | None = None) -> None:
        """A fresh `userRateLimit` reading. Room beyond the reserve ends a venue refusal."""
        self.used, self.cap = used, cap
        if volume is not None:
            self.volume = volume
        if cap - used > self.reserve:
            self.refused = False

    def traded(self, notional: float) -> None:
        """A fill of `notional` USD: the venue adds one request per USDC traded."""
        if self.cap is not None:
            self.cap += int(notional)
        if self.volume is not None:
            self.volume += notional

    def venue_refused(self, message: str) -> None:
        """The venue's refusal; its text says how many were used and the cap."""
        self.refused = True
        match = _REFUSAL.search(message)
        if match:
            self.used, self.cap = int(match.group(1)), int(match.group(2))
            if match.group(3):
                self.volume = float(match.group(3))

    def wait(self, urgent: bool) -> float:
        """Seconds an urgent request must wait for its turn after a venue refusal (0: go)."""
        if not (urgent and self.refused):
            return 0.0
        return max(0.0, self._last_urgent + self.urgent_spacing - self._now())

    def check(self, weight: int, urgent: bool) -> None:
        """Spend `weight` requests, or raise AddressRefused (nothing spent) for an ordinary
        request that would eat into the reserve, or any request after a venue refusal that is
        not urgent. Call `wait` first for an urgent one."""
        if self.refused:
            if not urgent:
                raise AddressRefused(self._refusal_text("Hyperliquid refused this address for its request budget"))
            self._last_urgent = self._now()
        elif not urgent and self.used is not None and self.cap is not None \
                and self.cap - self.used - weight < self.reserve:
            raise AddressRefused(self._refusal_text("only the reserve of the address request budget is left"))
        if self.used is not None:
            self.used += weight

    def _refusal_text(self, why: str) -> str:
        figures = f" ({self.used} of {self.cap} used)" if self.used is not None and self.cap is not None else ""
        return (f"not sent: {why}{figures}; only cancels and reduce-only orders go out until more volume is "
                f"traded (Hyperliquid allows 1 request per USDC traded)")


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
    address: AddressBudgetView | None = None  # the address budget (userRateLimit), when tracked

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
