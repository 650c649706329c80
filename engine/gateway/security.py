"""Who is calling: the master password (`X-Master-Password`: everything) or a bot token
(`Authorization: Bearer pg_...`: its scopes trade, read, kill). Declared with FastAPI's security
classes so the OpenAPI document says how to authenticate."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from engine.api.errors import ApiError
from engine.facade import EngineService
from engine.store.tokens import SCOPES, TokenInfo

master_header = APIKeyHeader(name="X-Master-Password", auto_error=False, description="The master password (admin)")
bearer = HTTPBearer(auto_error=False, description="A bot token pg_... with scopes trade, read, kill")


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # "master" or "token"
    scopes: frozenset[str]
    token_id: str | None = None
    name: str | None = None  # the token's name: its orders carry it as OrderIntent.bot

    @property
    def scope(self) -> str:
        """Whose client ids these are: each bot token has its own, the master one more."""
        return f"token:{self.token_id}" if self.token_id else "master"


MASTER = Principal("master", SCOPES)


class TokenCache:
    """Known-good tokens for `TTL` seconds, so a bot's every order does not cost a database
    read. Expiry is still checked on each use; a revocation through this gateway drops the cache
    at once, and one made elsewhere takes effect within TTL."""

    TTL = 1.0

    def __init__(self) -> None:
        self._known: dict[str, tuple[TokenInfo, float]] = {}

    def find(self, store, token: str, now: float) -> TokenInfo | None:
        hit = self._known.get(token)
        if hit is not None and now - hit[1] < self.TTL and hit[0].usable(now):
            return hit[0]
        info = store.find_token(token, now)
        if info is None:
            self._known.pop(token, None)
        else:
            self._known[token] = (info, now)
        return info

    def clear(self) -> None:
        self._known.clear()


async def identify(service: EngineService, master: str | None, token: str | None,
                   tokens: TokenCache | None = None) -> Principal:
    """The caller, or ApiError 401. A wrong master password is slowed down by the guard."""
    if master is not None:
        await service.check_master(master)
        return MASTER
    if token and service.store is not None:
        now = time.time()
        info = tokens.find(service.store, token, now) if tokens else service.store.find_token(token, now)
        if info is not None:
            return Principal("token", info.scopes, info.id, info.name)
    raise ApiError(401, "UNAUTHORIZED", "give X-Master-Password or Authorization: Bearer pg_...", "Authorization")


async def caller(request: Request, master: Annotated[str | None, Depends(master_header)],
                 credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    service: EngineService = request.app.state.service
    return await identify(service, master, credentials.credentials if credentials else None, request.app.state.tokens)


def needs(*scopes: str):
    """A dependency: the caller, holding at least one of `scopes` ("master" = the password)."""

    async def check(principal: Annotated[Principal, Depends(caller)]) -> Principal:
        if principal.kind == "master" or any(s in principal.scopes for s in scopes if s != "master"):
            return principal
        wanted = " or ".join(scopes)
        raise ApiError(403, "FORBIDDEN", f"this needs {wanted}; the token has {', '.join(sorted(principal.scopes))}",
                           "Authorization")

    return check
