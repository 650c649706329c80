"""The address budget (`budget.AddressBudget`) kept in step with the venue's `userRateLimit`
for the guarded account: read at start, counted up locally with each fill (the venue grants one
request per USDC traded), and read again `RATE_LIMIT_REFRESH_SECONDS` after a fill (debounced).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from engine.venues.hyperliquid.budget import AddressBudget
from engine.venues.hyperliquid.http import HttpTransport, VenueUnavailable
from engine.venues.hyperliquid.parse import parse_user_rate_limit

log = logging.getLogger("perpguard.hyperliquid")

RATE_LIMIT_REFRESH_SECONDS = 5.0  # userRateLimit re-read this long after a fill (debounced)


class AddressLimitSync:
    """Updates `address` from `userRateLimit` of `user`, read over `http`."""

    def __init__(self, http: HttpTransport, address: AddressBudget, user: str) -> None:
        self._http = http
        self.address = address
        self._user = user
        self._refresh: asyncio.Task | None = None

    async def read(self) -> None:
        """`userRateLimit` of the guarded account -> the address budget; unreadable: left as it was."""
        try:
            limit = parse_user_rate_limit(await self._http.info({"type": "userRateLimit", "user": self._user}))
        except (VenueUnavailable, ValueError, KeyError, TypeError) as exc:
            log.warning("could not read the address rate limit: %s", exc)
            return
        self.address.update(limit.used, limit.cap, limit.volume)

    def on_fill(self, fill: dict[str, Any]) -> None:
        """A new fill: the venue grants one request per USDC traded; re-read the budget soon."""
        self.address.traded(float(fill["sz"]) * float(fill["px"]))
        if self._refresh is None or self._refresh.done():
            try:
                self._refresh = asyncio.get_running_loop().create_task(self._read_later())
            except RuntimeError:
                pass  # no loop (a unit test feeding the translator): the local count stands

    async def _read_later(self) -> None:
        await asyncio.sleep(RATE_LIMIT_REFRESH_SECONDS)
        await self.read()

    async def stop(self) -> None:
        """Drop a pending re-read."""
        if self._refresh is not None:
            self._refresh.cancel()
            await asyncio.gather(self._refresh, return_exceptions=True)
            self._refresh = None
