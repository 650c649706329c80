"""Posting `/exchange` actions within the address budget (`budget.AddressBudget`): every action
waits its turn (one urgent request per 10 s after the venue refused us for the budget), is
checked against what is left, and its answer is heard for the venue's refusal.

`ActionSender.act` signs and sends a non-order action (cancel, leverage, scheduleCancel), which
is safe to sign again and resend; orders have their own idempotent path (`placement`). The
signer is made at start, once the account and the markets are known.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from engine.venues.hyperliquid.budget import AddressBudget, address_weight
from engine.venues.hyperliquid.http import HttpTransport, NotProcessed, OutcomeUnknown, VenueUnavailable, backoff
from engine.venues.hyperliquid.parse import is_rate_limited
from engine.venues.hyperliquid.signer import ActionSigner

log = logging.getLogger("perpguard.hyperliquid")

ACTION_ATTEMPTS = 4


class ActionSender:
    """Spends `address` (the guarded account's budget) on `/exchange` requests over `http`."""

    def __init__(self, http: HttpTransport, address: AddressBudget) -> None:
        self._http = http
        self.address = address
        self.signer: ActionSigner | None = None  # made at start

    async def admit(self, weight: int, urgent: bool) -> None:
        """Wait our turn (after the venue refused us for the address budget, urgent requests go
        one per 10 s), then raise AddressRefused when the budget forbids `weight` requests."""
        wait = self.address.wait(urgent)
        if wait > 0:
            await asyncio.sleep(wait)
        self.address.check(weight, urgent)

    def note_refusal(self, response: Any) -> None:
        """Hear the address-budget refusal in any `/exchange` answer."""
        if isinstance(response, dict) and response.get("status") == "err" \
                and is_rate_limited(str(response.get("response"))):
            self.address.venue_refused(str(response["response"]))
            log.error("Hyperliquid refused a request for the address budget: %s", response["response"])

    async def act(self, sign: Callable[[], dict[str, Any]], urgent: bool = False) -> Any:
        """Sign and send a non-order action (idempotent: safe to sign again and resend). Raises
        AddressRefused when the address budget forbids it, VenueUnavailable when it never got through."""
        problem = ""
        for attempt in range(ACTION_ATTEMPTS):
            if attempt:
                await asyncio.sleep(backoff(attempt - 1))
            payload = sign()
            await self.admit(address_weight(payload["action"]), urgent)
            try:
                response = await self._http.exchange(payload, urgent)
            except (NotProcessed, OutcomeUnknown) as exc:
                problem = str(exc)
                continue
            self.note_refusal(response)
            return response
        raise VenueUnavailable(f"Hyperliquid did not take the action after {ACTION_ATTEMPTS} attempts; last: {problem}")
