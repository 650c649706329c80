"""The paper exchange's dead-man switch (Hyperliquid's `scheduleCancel`), as a part of
`PaperExchange` (`paper.dead_man_switch`): armed at least 5 s ahead, it fires at its deadline
(the exchange then cancels every resting order, trigger orders included), at most
`DEAD_MAN_DAILY_FIRES` times a UTC day; after that arming is refused until midnight UTC.

The switch keeps the deadline, the fires and why it is not armed; the exchange asks it on each
`poll` whether it fires (`fire_if_due`).
"""

from __future__ import annotations

from engine.domain.clock import Clock
from engine.venues.connector import DEAD_MAN_DAILY_FIRES, DeadManStatus


class DeadManSwitch:
    """Times epoch s. `deadline`: when it fires unless re-armed (None: not armed). `fires`: when
    it fired, this UTC day and before. `reason`: why it is not armed (None while it is)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.deadline: float | None = None
        self.fires: list[float] = []
        self.reason: str | None = None

    def arm(self, seconds: float | None) -> None:
        """Fire `seconds` from now; None (or 0) clears it. Refused (with a reason) under 5 s,
        and once it fired `DEAD_MAN_DAILY_FIRES` times this UTC day (that also disarms it)."""
        if not seconds:
            self.deadline, self.reason = None, "cleared"
        elif seconds < 5:
            self.reason = "refused: the time must be at least 5 seconds ahead"
        elif self.fires_today() >= DEAD_MAN_DAILY_FIRES:
            self.deadline = None
            self.reason = f"refused: it already fired {DEAD_MAN_DAILY_FIRES} times today (UTC)"
        else:
            self.deadline, self.reason = self.clock.now() + seconds, None

    def fire_if_due(self, now: float) -> bool:
        """Whether it fires at `now` (its deadline has passed): then it is spent and the fire
        counted, and the exchange cancels every resting order."""
        if self.deadline is None or now < self.deadline:
            return False
        self.deadline = None
        self.fires.append(now)
        self.reason = "fired: every resting order was cancelled"
        return True

    def disarm(self) -> None:
        """The venue stops: nothing is left to fire (the reason is kept)."""
        self.deadline = None

    @property
    def status(self) -> DeadManStatus:
        armed = self.deadline is not None
        return DeadManStatus(armed, self.deadline, None if armed else self.reason, self.fires_today())

    def fires_today(self) -> int:
        midnight = self.clock.now() // 86_400 * 86_400
        return sum(1 for at in self.fires if at >= midnight)
