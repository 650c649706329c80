"""Who is calling: the master password (`X-Master-Password`: everything) or a bot token
(`Authorization: Bearer pg_...`: its scopes trade, read, kill). Declared with FastAPI's security
classes so the OpenAPI document says how to authenticate."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from engine.service import EngineService, ServiceError
from engine.store.tokens import SCOPES

master_header = APIKeyHeader(name="X-Master-Password", auto_error=False, description="The master password (admin)")
bearer = HTTPBearer(auto_error=False, description="A bot token pg_... with scopes trade, read, kill")


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # "master" or "token"
    scopes: frozenset[str]
    token_id: str | None = None


MASTER = Principal("master", SCOPES)


async def identify(service: EngineService, master: str | None, token: str | None) -> Principal:
    """The caller, or ServiceError 401. A wrong master password is slowed down by the guard."""
    if master is not None:
        await service.check_master(master)
        return MASTER
    if token and service.store is not None:
        info = service.store.find_token(token, time.time())
        if info is not None:
            return Principal("token", info.scopes, info.id)
    raise ServiceError(401, "UNAUTHORIZED", "give X-Master-Password or Authorization: Bearer pg_...", "Authorization")


async def caller(request: Request, master: Annotated[str | None, Depends(master_header)],
                 credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    service: EngineService = request.app.state.service
    return await identify(service, master, credentials.credentials if credentials else None)


def needs(*scopes: str):
    """A dependency: the caller, holding at least one of `scopes` ("master" = the password)."""

    async def check(principal: Annotated[Principal, Depends(caller)]) -> Principal:
        if principal.kind == "master" or any(s in principal.scopes for s in scopes if s != "master"):
            return principal
        wanted = " or ".join(scopes)
        raise ServiceError(403, "FORBIDDEN", f"this needs {wanted}; the token has {', '.join(sorted(principal.scopes))}",
                           "Authorization")

    return check
