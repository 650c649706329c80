"""`/hl/info`: the venue's answers (the paper exchange's own, or Hyperliquid's through a shared
cache), with one change: a registered bot's address means the guarded account, so a bot that
asks about "its" account (ccxt's `walletAddress`, the SDK's `account_address`) sees the account
whose orders it sends, the one the gate judges. And `extraAgents` for the guarded account lists
the registered bots that may trade (as approved API wallets, valid for the venue's longest term,
180 days, from now): a bot that checks its key is an agent of the account before it trades
(Hummingbot's connector does, at connect) finds it there. perpguard's own agent is not listed:
no bot signs with it."""

from __future__ import annotations

import time
from typing import Any

from engine.facade import EngineService
from engine.venues.hl_api import InfoRefused, VenueApi

DESERIALIZE = "Failed to deserialize the JSON body into the target type: "
AGENT_TERM_MS = 180 * 24 * 3600 * 1000  # the longest validity the venue gives an API wallet


class HlInfo:
    def __init__(self, service: EngineService, venue: VenueApi) -> None:
        self.service = service
        self.venue = venue

    def account_of(self, user: Any) -> Any:
        """The guarded account's address for a registered bot's, else `user` as given."""
        if isinstance(user, str) and self.service.bot_for(user) is not None:
            return self.service.engine.connector.account_address
        return user

    async def handle(self, body: Any) -> tuple[int, Any]:
        """(HTTP status, body) for one `/info` request, as Hyperliquid answers it."""
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            return 422, DESERIALIZE + "missing field `type`"
        if "user" in body:
            body = {**body, "user": self.account_of(body["user"])}
            if body["type"] == "extraAgents" and isinstance(body["user"], str) \
                    and body["user"].lower() == self.service.engine.connector.account_address.lower():
                return 200, self.agents()
        try:
            return 200, await self.venue.info(body)
        except InfoRefused as refused:
            return refused.status, refused.message

    def agents(self) -> list[dict[str, Any]]:
        """The registered bots with the trade scope, as the venue lists a user's API wallets."""
        until = int(time.time() * 1000) + AGENT_TERM_MS
        return [{"name": bot.name, "address": bot.address, "validUntil": until}
                for bot in self.service.list_bots() if bot.may("trade")]
