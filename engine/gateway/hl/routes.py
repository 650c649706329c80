"""The `/hl` routes on the gateway app: `POST /hl/info`, `POST /hl/exchange`, `WS /hl/ws`.

Bodies are read as JSON by hand (not by a pydantic model): the signature covers the action
exactly as the bot wrote it, key order included, and the venue's own error texts are answered
for what cannot be read. A body that is not JSON gets the venue's 422 text; nothing here
answers 500."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from engine.gateway.hl.api import HlApi
from engine.gateway.hl.info import DESERIALIZE


def _respond(status: int, body: Any) -> Response:
    """The venue's reasons for a refusal are plain text; every answer is JSON, a string one
    included (`userAbstraction` answers `"disabled"`)."""
    if isinstance(body, str) and status != 200:
        return PlainTextResponse(body, status_code=status)
    return JSONResponse(body, status_code=status)


async def _json(request: Request) -> tuple[Any, Response | None]:
    raw = await request.body()
    try:
        return json.loads(raw), None
    except (ValueError, UnicodeDecodeError) as exc:
        return None, PlainTextResponse(DESERIALIZE + f"the body is not JSON ({exc})", status_code=422)


# As the venue documents them: JSON on success (and for an action the venue refused, status "err"),
# a plain-text reason with 422 for a body it cannot read (and 429 when reads are throttled).
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Hyperliquid's answer", "content": {"application/json": {"schema": {}}}},
    422: {"description": "A body the venue cannot deserialize: its text, naming the field",
          "content": {"text/plain": {"schema": {"type": "string"}}}},
    429: {"description": "Reads throttled to keep the venue's IP budget for the engine",
          "content": {"text/plain": {"schema": {"type": "string"}}}},
    503: {"description": "The venue did not answer", "content": {"text/plain": {"schema": {"type": "string"}}}},
}


def install(app: FastAPI, hl: HlApi) -> None:
    """Serve the Hyperliquid-compatible API from `app` (its state holds `hl` for the websocket)."""
    from engine.gateway.hl.ws import hl_ws

    app.state.hl = hl
    router = APIRouter(prefix="/hl", tags=["hyperliquid-compatible"])

    @router.post("/info", summary="Hyperliquid's /info, answered by the venue perpguard trades on",
                 responses=RESPONSES, response_class=JSONResponse)
    async def info(request: Request) -> Response:
        body, bad = await _json(request)
        return bad or _respond(*await hl.info.handle(body))

    @router.post("/exchange", summary="Hyperliquid's /exchange: signed by a registered bot, gated, re-signed",
                 responses=RESPONSES, response_class=JSONResponse)
    async def exchange(request: Request) -> Response:
        body, bad = await _json(request)
        return bad or _respond(*await hl.exchange.handle(body))

    app.include_router(router)
    app.add_api_websocket_route("/hl/ws", hl_ws)
