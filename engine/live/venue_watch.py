"""What the venue itself keeps for the account, watched so the trader is never told it is
protected when it is not: the dead-man switch (`scheduleCancel`) and the API wallet's expiry.

- The dead-man switch: `arm()` (the periodic work calls it every 20 s) asks the connector to
  arm it and keeps the answer. A venue that refuses it (Hyperliquid does below $1M traded
  volume, and after 10 fires a day) is an event (`dead_man_refused`, a webhook), a row in the
  breakers pane and a line in the header, once per refusal, not every 20 s; armed again is
  `dead_man_armed`; each fire the venue reports is `dead_man_fired`.
- The agent: from `AGENT_WARN_DAYS` before it expires, `check(now)` says so (`agent_expiring`,
  a webhook, a header line) once a day; an expired agent stops the start (the connector
  refuses to start), so here it only ever approaches.
"""

from __future__ import annotations

import logging
from typing import Callable, Literal

from engine.domain.clock import Clock
from engine.domain.events import EventKind
from engine.live.event_log import EventLog
from engine.venues.connector import DEAD_MAN_DAILY_FIRES, AccountMode, Connector, DeadManStatus

DeadManMode = Literal["flat", "always"]

log = logging.getLogger("perpguard.live")

DEAD_MAN_SECONDS = 60.0  # armed for now + 60 s ...
DEAD_MAN_REARM_SECONDS = 20.0  # ... and re-armed every 20 s
AGENT_WARN_DAYS = 7.0
DAY = 86_400.0


class VenueWatch:
    """`protected()` counts the open positions that carry a stop resting on the venue: the switch
    would cancel those stops too, so with `dead_man = "flat"` (the default) it is armed only
    while there are none (the account is flat, or its positions have no venue stops), and
    cleared otherwise; `dead_man = "always"` arms it whatever the positions."""

    def __init__(self, connector: Connector, events: EventLog, clock: Clock,
                 protected: Callable[[], int] = lambda: 0, mode: DeadManMode = "flat") -> None:
        self.connector = connector
        self.events = events
        self.clock = clock
        self.protected = protected
        self.mode = mode
        self.dead_man = DeadManStatus()
        self.account_mode: AccountMode = "standard"
        self._agent_warned_at = float("-inf")

    @property
    def agent_expires_at(self) -> float | None:
        return self.connector.agent_expires_at

    async def arm(self, seconds: float | None = DEAD_MAN_SECONDS) -> DeadManStatus:
        """Arm the switch `seconds` ahead (None clears it on a clean stop) and report what changed."""
        protected = self.protected() if seconds and self.mode == "flat" else 0
        try:
            if protected:  # it would cancel the stops that protect the positions: keep it cleared
                cleared = await self.connector.arm_dead_man(None) if self.dead_man.armed or self.dead_man.reason is None \
                    else self.connector.dead_man
                status = DeadManStatus(False, None, f"{DISARMED}: {protected} position{'s' if protected > 1 else ''} "
                                       f"carry venue stops, which scheduleCancel would cancel "
                                       f'(dead_man = "always" arms it anyway)', cleared.fired_today)
                self.note(status)
                return status
            status = await self.connector.arm_dead_man(seconds)
        except Exception as exc:  # a connector that raises anyway: the previous deadline stands
            log.exception("arming the dead-man switch failed")
            status = DeadManStatus(False, self.dead_man.until, f"arming failed: {exc}", self.dead_man.fired_today)
        self.note(status)
        return status

    def note(self, status: DeadManStatus) -> None:
        before, self.dead_man = self.dead_man, status
        if status.fired_today > before.fired_today:
            self.events.emit(EventKind.DEAD_MAN_FIRED,
                             f"the venue's dead-man switch fired: every resting order was cancelled "
                             f"({status.fired_today} of {DEAD_MAN_DAILY_FIRES} fires today)",
                             fired_today=status.fired_today)
        if refused(status) and (before.armed or before.reason != status.reason):
            self.events.emit(EventKind.DEAD_MAN_REFUSED,
                             f"the venue's dead-man switch is NOT armed: resting orders will not be cancelled "
                             f"if perpguard dies ({status.reason})", reason=status.reason)
        elif status.armed and not before.armed and refused(before):
            self.events.emit(EventKind.DEAD_MAN_ARMED, "the venue's dead-man switch is armed again",
                             until=status.until)

    def check(self, now: float) -> None:
        """Warn about an agent that expires within `AGENT_WARN_DAYS`, at most once a day."""
        expires = self.agent_expires_at
        if expires is None or expires - now > AGENT_WARN_DAYS * DAY or now - self._agent_warned_at < DAY:
            return
        self._agent_warned_at = now
        days = max(0.0, expires - now) / DAY
        self.events.emit(EventKind.AGENT_EXPIRING,
                         f"the API wallet perpguard trades with expires in {days:.1f} days: approve a new one "
                         f"before then, or every action (the panic exit included) will be refused",
                         expires_at=expires)

    def agent_days_left(self, now: float) -> float | None:
        """Days until the agent expires when that is within the warning window, else None."""
        expires = self.agent_expires_at
        if expires is None or expires - now > AGENT_WARN_DAYS * DAY:
            return None
        return max(0.0, expires - now) / DAY


CLEARED = "cleared"  # the reason a connector gives when the switch was cleared on purpose
DISARMED = "disarmed"  # perpguard keeps it cleared: venue stops protect the positions


def refused(status: DeadManStatus) -> bool:
    """Not armed because the venue would not (or could not) arm it, not by our choice."""
    return not status.armed and status.reason is not None and status.reason != CLEARED \
        and not status.reason.startswith(DISARMED)
