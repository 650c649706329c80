"""Hyperliquid's dead-man switch (`scheduleCancel`): at a deadline the venue cancels every
resting order of the account unless the deadline was moved on first.

- The venue refuses a deadline sooner than `MIN_DEAD_MAN_SECONDS` (5 s) ahead, and any at all
  until the account traded enough volume ($1M, `VOLUME_REFUSAL`): that refusal is not asked
  again for `DEAD_MAN_RETRY_SECONDS`.
- It fires at most `DEAD_MAN_DAILY_FIRES` times a UTC day. A fire comes as a `scheduledCancel`
  cancel of each resting order (from `stream`); those within `FIRE_SAME_MS` of each other are one
  fire.
- With the address budget low, a deadline still `DEAD_MAN_SPARE_SECONDS` away is not re-sent.

The deadline is wall-clock, as the venue checks it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from engine.venues.connector import DEAD_MAN_DAILY_FIRES, ConnectorError, DeadManStatus
from engine.venues.hyperliquid.actions import ActionSender
from engine.venues.hyperliquid.budget import AddressBudget, AddressRefused
from engine.venues.hyperliquid.http import VenueUnavailable

log = logging.getLogger("perpguard.hyperliquid")

MIN_DEAD_MAN_SECONDS = 5.0  # Hyperliquid refuses a scheduleCancel sooner than 5 s ahead
DEAD_MAN_RETRY_SECONDS = 600.0  # after a refusal for too little volume, ask again at most every 10 min
DEAD_MAN_SPARE_SECONDS = 30.0  # address budget low: no re-arm while the deadline is this far away
VOLUME_REFUSAL = "Cannot set scheduled cancel time until enough volume traded"
FIRE_SAME_MS = 1_000  # scheduledCancel updates within this of each other are one fire
DAY_MS = 86_400_000


class DeadManSwitch:
    """The switch of the account `actions` signs for; `address` says when its budget is low.
    `confirmed` is the switch as the venue last confirmed it (its `fired_today` as of then)."""

    def __init__(self, actions: ActionSender, address: AddressBudget) -> None:
        self._actions = actions
        self._address = address
        self.confirmed = DeadManStatus()
        self._volume_refused_at = float("-inf")  # monotonic time of the last refusal for volume
        self._fires: list[int] = []  # ms of each distinct dead-man fire seen (UTC days roll)

    @property
    def deadline(self) -> float | None:
        """Epoch s the venue will cancel every order at, as last confirmed; None: not armed."""
        return self.confirmed.until if self.confirmed.armed else None

    @property
    def status(self) -> DeadManStatus:
        """`confirmed`, with the fires of this UTC day counted now."""
        return replace(self.confirmed, fired_today=self.fires_today())

    async def arm(self, seconds: float | None) -> DeadManStatus:
        """scheduleCancel at now + `seconds` (at least 5 s, Hyperliquid's floor); None or 0
        clears it. Never raises for the venue: the answer (also `status`) says what stands.

        - Refused by the venue: not armed, `reason` its text. Refused for too little traded
          volume (the venue wants $1M): not asked again for `DEAD_MAN_RETRY_SECONDS` (10 min);
          the standing status is returned meanwhile.
        - Fired `DEAD_MAN_DAILY_FIRES` times this UTC day (the venue's cap): not sent, says so.
        - Address budget low and the standing deadline still >= 30 s away: not re-sent (a
          re-arm every 20 s costs 4,320 requests a day).
        - Not reachable: the previous deadline stands (armed while it is ahead).
        """
        if seconds and seconds < MIN_DEAD_MAN_SECONDS:
            raise ConnectorError("InvalidDeadMan", f"the dead-man switch needs at least {MIN_DEAD_MAN_SECONDS:g} s")
        now, fired = time.time(), self.fires_today()
        standing = self.confirmed
        if seconds:
            if fired >= DEAD_MAN_DAILY_FIRES:
                self.confirmed = DeadManStatus(
                    False, None, f"not armed: the venue's dead-man switch already fired {fired} times today (UTC), "
                    f"its daily limit of {DEAD_MAN_DAILY_FIRES}; it can be armed again after midnight UTC", fired)
                return self.confirmed
            if time.monotonic() - self._volume_refused_at < DEAD_MAN_RETRY_SECONDS:
                return self.status
            if (self._address.view().low and standing.armed and standing.until is not None
                    and standing.until - now >= DEAD_MAN_SPARE_SECONDS):
                return self.status
        at = now + seconds if seconds else None
        at_ms = int(at * 1000) if at is not None else None
        try:
            response = await self._actions.act(lambda: self._actions.signer.schedule_cancel(at_ms), urgent=True)
        except (VenueUnavailable, AddressRefused) as exc:
            log.error("dead-man switch not %s: %s", "armed" if at else "cleared", exc)
            still = standing.armed and standing.until is not None and standing.until > now
            self.confirmed = DeadManStatus(still, standing.until if still else None,
                                           None if still else f"not {'armed' if at else 'cleared'}: {exc}", fired)
            return self.confirmed
        if not isinstance(response, dict) or response.get("status") != "ok":
            reason = str(response.get("response") if isinstance(response, dict) else response)
            log.error("dead-man switch refused by Hyperliquid: %s", reason)
            if reason.startswith(VOLUME_REFUSAL):
                self._volume_refused_at = time.monotonic()
            self.confirmed = DeadManStatus(False, None, reason, fired)
            return self.confirmed
        self._volume_refused_at = float("-inf")
        self.confirmed = DeadManStatus(True, at, None, fired) if at is not None else DeadManStatus(
            False, None, "cleared", fired)
        return self.confirmed

    def fired(self, at_ms: int) -> None:
        """The venue cancelled an order for the switch at `at_ms` (epoch ms)."""
        if any(abs(at_ms - seen) <= FIRE_SAME_MS for seen in self._fires):
            return  # another order cancelled by the same fire
        self._fires.append(at_ms)
        self._fires = [f for f in self._fires if f >= at_ms - 2 * DAY_MS]
        self.confirmed = DeadManStatus(False, None, "fired: the venue cancelled every resting order",
                                       self.fires_today())

    def fires_today(self) -> int:
        midnight = int(time.time() * 1000) // DAY_MS * DAY_MS
        return sum(1 for f in self._fires if f >= midnight)
