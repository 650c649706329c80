"""What a venue offers the Hyperliquid-compatible API (`/hl/info`, `/hl/ws`): answers to
`/info` requests in Hyperliquid's shapes, and the market channels of its websocket.

The paper exchange answers from its own book (`engine.venues.paper.hl_info`); on Hyperliquid
the requests pass through to the venue behind a shared short-lived cache and the websocket
channels are relayed (`engine.venues.hyperliquid.relay`). The user channels (`orderUpdates`,
`userFills`, `userEvents`, `clearinghouseState`) are not here: the gateway serves them from the engine's own events,
so a bot hears what the gate saw.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

# the market channels a venue serves (Hyperliquid's websocket subscription types)
MARKET_CHANNELS = frozenset({"allMids", "l2Book", "trades", "bbo", "candle", "activeAssetCtx"})


class InfoRefused(Exception):
    """The venue's refusal of an info request: the HTTP status and the body it answers with
    (Hyperliquid answers a body it cannot read with 422 and a plain-text reason)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


Send = Callable[[dict[str, Any]], None]


class VenueApi(Protocol):
    async def info(self, body: dict[str, Any]) -> Any:
        """The answer to an `/info` body (`{"type": ...}`) in Hyperliquid's shape; raises
        InfoRefused for one the venue would refuse."""
        ...

    def subscribe(self, subscription: dict[str, Any], send: Send) -> Callable[[], None]:
        """Start a market channel (`subscription["type"]` in MARKET_CHANNELS); `send` gets each
        message as the venue's websocket writes it (`{"channel": ..., "data": ...}`), on the
        engine's loop. Returns the unsubscribe. Raises InfoRefused for a subscription the venue
        would refuse."""
        ...

    async def close(self) -> None:
        ...
