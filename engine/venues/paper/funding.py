"""Hourly funding on the paper venue (SPEC section 7): at each hour boundary every position
pays size × oracle price × rate, the rate capped at ±4% an hour. The oracle price is the mark.
Sign: a positive rate means longs pay shorts; `FundingPaid.payment` is what the account paid."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from typing import Iterator

from engine.venues.connector import FundingPaid
from engine.venues.paper.ledger import Ledger

HOUR = 3600.0
FUNDING_CAP_PER_HOUR = 0.04
RATE_HISTORY = 500  # hourly rates kept per market (`fundingHistory` answers at most 500)


def capped_funding_rate(rate: float) -> float:
    """The hourly rate the venue applies: the given rate, capped at ±4%."""
    return max(-FUNDING_CAP_PER_HOUR, min(FUNDING_CAP_PER_HOUR, rate))


class HourlyFunding:
    """`coins`: the markets whose applied rate is recorded each hour (`history`), held or not."""

    def __init__(self, now: float, coins: Iterable[str] = ()) -> None:
        self.rates: dict[str, float] = {}  # hourly, fraction, as set (capped when applied)
        self._hour = math.floor(now / HOUR)
        # coin -> (hour boundary epoch s, the rate applied then), oldest first: the market's own
        # record, as the venue's `fundingHistory` answers it (market data: not saved with the account)
        self.history: dict[str, deque[tuple[float, float]]] = {coin: deque(maxlen=RATE_HISTORY) for coin in coins}

    def capped_rates(self) -> dict[str, float]:
        return {coin: capped_funding_rate(rate) for coin, rate in self.rates.items()}

    def next_hour(self) -> float:
        """The next hour boundary at which funding is paid (epoch s)."""
        return (self._hour + 1) * HOUR

    def due_hours(self, now: float) -> Iterator[float]:
        """Each hour boundary passed since the last call (epoch s), oldest first."""
        hour = math.floor(now / HOUR)
        while self._hour < hour:
            self._hour += 1
            yield self._hour * HOUR

    def pay(self, ledger: Ledger, at: float) -> list[FundingPaid]:
        """Charge every position for the hour ending at `at`; the events to report."""
        for coin, rates in self.history.items():
            rates.append((at, capped_funding_rate(self.rates.get(coin, 0.0))))
        paid = []
        for coin in list(ledger.holdings):
            rate = capped_funding_rate(self.rates.get(coin, 0.0))
            if rate == 0:
                continue
            size, px = float(ledger.size(coin)), ledger.mark(coin)
            payment = size * px * rate
            ledger.pay_funding(coin, payment)
            paid.append(FundingPaid(coin, rate, payment, size, px, at))
        return paid
