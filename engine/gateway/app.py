"""The gateway (SPEC section 9): FastAPI over the EngineService, served inside the engine's own
loop. Bots submit orders and read state; consoles attach through `/v1/stream`."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, FastAPI, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from engine.gateway import bots, errors, metrics, stream
from engine.gateway.hl import routes as hl_routes
from engine.gateway.hl.api import HlApi
from engine.gateway.hl.exchange import HlExchange
from engine.gateway.hl.info import HlInfo
from engine.gateway.security import Principal, TokenCache, needs
from engine.domain.model import Name, OrderIntent
from engine.risk.policies import POLICY_ID_PATTERN, PolicyBody
from engine.risk.sizing import SizeRequest
from engine.api.errors import ApiError
from engine.facade import EngineService
from engine.venues.hl_api import VenueApi

PRINTABLE = r"^[^\x00-\x1f\x7f-\x9f]*$"  # no control characters
Id = Annotated[str, Path(min_length=1, max_length=128, pattern=PRINTABLE)]
PolicyPathId = Annotated[str, Path(pattern=POLICY_ID_PATTERN, description="letters, digits, '.', '_', '-'; 1-64 long")]
# An audit item's ref: its table and row number (at most 18 digits: a 64-bit row id).
AUDIT_REF = r"^[a-z_]{1,32}#[0-9]{1,18}$"


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    name: Name = Field(min_length=1, max_length=64, pattern=r"\S",
                       description="a label for the bot; not blank, no control characters")
    scopes: list[Literal["trade", "read", "kill"]] = Field(min_length=1)
    expires_in_seconds: float | None = Field(default=None, gt=0, le=10 * 365 * 86400)


class KillRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    reason: Name | None = Field(default=None, max_length=200)


def create_app(service: EngineService, *, snapshot_seconds: float = 1.0, max_body: int = errors.MAX_BODY_BYTES,
               hl_venue: VenueApi | None = None, hl_builders: frozenset[str] = frozenset()) -> FastAPI:
    """The gateway. With `hl_venue` (the venue's info answers and market channels) it also
    serves the Hyperliquid-compatible API under `/hl`; `hl_builders` are the builder addresses
    a bot's order may pay a fee to."""
    app = FastAPI(title="perpguard gateway", version="1", default_response_class=errors.SafeJSONResponse,
                  description="Pre-trade risk gateway: every order is checked against the trader's policies "
                              "before it reaches the exchange.")
    app.state.service = service
    app.state.metrics = metrics.Metrics()
    app.state.tokens = TokenCache()
    app.state.snapshot_seconds = snapshot_seconds
    errors.install(app)
    app.add_middleware(errors.BodyLimit, limit=max_body)
    app.add_middleware(metrics.CountRequests)
    api = APIRouter(prefix="/v1", responses=errors.ERROR_RESPONSES)

    @api.post("/orders", responses={202: {"description": "Held: DELAY or APPROVAL (pending id)"},
                                    409: {"model": errors.ErrorBody, "description": "The venue refused the order"}})
    async def submit(intent: OrderIntent, request: Request, principal: Annotated[Principal, Depends(needs("trade"))]) -> Any:
        """Submit an intent. A bot token's order carries the token's name as `bot` (whatever the
        body says), so that bot's scoped policies judge it; the master's keeps the body's `bot`."""
        if principal.kind == "token":
            intent = intent.model_copy(update={"bot": principal.name})
        answer = await service.submit(intent, scope=principal.scope)
        request.app.state.metrics.decision(answer)
        return errors.SafeJSONResponse(answer.body, status_code=answer.status)

    @api.post("/size")
    async def size(body: SizeRequest, principal: Annotated[Principal, Depends(needs("read"))]) -> dict:
        """The largest size of an intent (without size) the gate would allow now, its tier, the
        binding policy and the seed sizing formulas. Acts on nothing. A bot token's request is
        sized as that bot's order (`bot` set from the token, as for orders)."""
        if principal.kind == "token":
            body = body.model_copy(update={"bot": principal.name})
        return service.size(body)

    @api.delete("/orders/{order_id}")
    async def cancel_order(order_id: Id, _p: Annotated[Principal, Depends(needs("trade"))]) -> dict:
        return await service.cancel_order(order_id)

    @api.get("/state")
    async def state(_p: Annotated[Principal, Depends(needs("read"))]) -> dict:
        return service.state().to_json()

    @api.get("/pending")
    async def pending(_p: Annotated[Principal, Depends(needs("read"))]) -> list[dict]:
        return service.pending()

    @api.post("/pending/{action_id}/approve")
    async def approve(action_id: Id, _p: Annotated[Principal, Depends(needs("master"))]) -> dict:
        return await service.approve(action_id)

    @api.post("/pending/{action_id}/cancel")
    async def cancel_pending(action_id: Id, _p: Annotated[Principal, Depends(needs("trade"))]) -> dict:
        return await service.cancel_pending(action_id)

    @api.get("/policies")
    async def policies(_p: Annotated[Principal, Depends(needs("read"))]) -> list[dict]:
        return service.policies()

    @api.post("/policies", status_code=201)
    async def add_policy(body: PolicyBody, _p: Annotated[Principal, Depends(needs("master"))]) -> dict:
        return await service.add_policy(body.model_dump(exclude_none=True))

    @api.put("/policies/{policy_id}")
    async def replace_policy(policy_id: PolicyPathId, body: PolicyBody, _p: Annotated[Principal, Depends(needs("master"))]) -> dict:
        return await service.replace_policy(policy_id, body.model_dump(exclude_none=True))

    @api.delete("/policies/{policy_id}")
    async def remove_policy(policy_id: PolicyPathId, _p: Annotated[Principal, Depends(needs("master"))]) -> dict:
        await service.remove_policy(policy_id)
        return {"id": policy_id, "removed": True}

    @api.post("/kill")
    async def kill(_p: Annotated[Principal, Depends(needs("kill"))],
                   body: Annotated[KillRequest | None, Body()] = None) -> dict:
        reason = body.reason if body and body.reason else "kill switch (API)"
        return await service.kill(reason)

    @api.post("/resume")
    async def resume(_p: Annotated[Principal, Depends(needs("master"))]) -> dict:
        return await service.resume_checked()

    @api.post("/tokens", status_code=201)
    async def create_token(body: TokenRequest, _p: Annotated[Principal, Depends(needs("master"))]) -> dict:
        expires = time.time() + body.expires_in_seconds if body.expires_in_seconds else None
        info, plaintext = await service.create_token(body.name, set(body.scopes), expires)
        return {**info.as_dict(), "token": plaintext}

    @api.delete("/tokens/{token_id}")
    async def revoke_token(token_id: Id, request: Request, _p: Annotated[Principal, Depends(needs("master"))]) -> dict:
        if not await service.revoke_token(token_id):
            raise ApiError(404, "NOT_FOUND", f"no token {token_id}", "id")
        request.app.state.tokens.clear()
        return {"id": token_id, "revoked": True}

    @api.get("/audit")
    async def audit(_p: Annotated[Principal, Depends(needs("read"))],
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                    kind: Annotated[str | None, Query(max_length=64, pattern=PRINTABLE)] = None,
                    since: Annotated[float | None, Query(allow_inf_nan=False)] = None,
                    before: Annotated[str | None, Query(max_length=64, pattern=AUDIT_REF,
                                                        description="an item's ref, e.g. events#42")] = None) -> list[dict]:
        try:
            return service.store.audit(limit, kind, since, before)
        except ValueError as exc:
            raise ApiError(422, "VALIDATION", str(exc), "before") from None

    app.include_router(api)
    app.include_router(bots.router)
    if hl_venue is not None:
        hl_routes.install(app, HlApi(service, hl_venue, HlInfo(service, hl_venue),
                                     HlExchange(service, hl_venue, builders=hl_builders)))
    app.add_api_websocket_route("/v1/stream", stream.stream)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok", "trading_state": service.engine.trading.state.value}

    @app.get("/metrics", response_class=metrics.PlainText)
    async def prometheus(request: Request) -> str:
        return request.app.state.metrics.render(service.state())

    return app
