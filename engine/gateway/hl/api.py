"""What the `/hl` routes share (`app.state.hl`): the engine service, the venue's answers and
channels, and the `/info` and `/exchange` handlers (the websocket's `post` requests go through
the same two)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.facade import EngineService
from engine.gateway.hl.exchange import HlExchange
from engine.gateway.hl.info import HlInfo
from engine.venues.hl_api import VenueApi


@dataclass
class HlApi:
    service: EngineService
    venue: VenueApi
    info: HlInfo
    exchange: HlExchange
