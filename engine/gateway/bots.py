"""`/v1/bots` (master only): the bot identities whose signatures the Hyperliquid-compatible API
accepts. A bot is a name, an Ethereum address and scopes (trade, read). Without an address
perpguard makes the key itself and answers its private key once, in `private_key`; it is never
stored, so it cannot be shown again."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from engine.facade import EngineService
from engine.gateway import errors
from engine.gateway.security import Principal, needs
from engine.store.bots import ADDRESS_PATTERN, NAME_PATTERN

BotName = Annotated[str, Path(pattern=NAME_PATTERN, description="letters, digits, '.', '_', '-'; 1-64 long")]


class BotRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(pattern=NAME_PATTERN, description="letters, digits, '.', '_', '-', starting with a letter or "
                                                        "digit; 1-64 long (policies name it in `bot`)")
    address: str | None = Field(default=None, pattern=ADDRESS_PATTERN,
                                description="the address the bot signs with (0x + 40 hex); without it perpguard "
                                            "makes a key and answers its private key once")
    scopes: list[Literal["trade", "read"]] = Field(default=["trade", "read"], min_length=1,
                                                   description="what its signatures may do")


router = APIRouter(prefix="/v1", tags=["bots"], responses=errors.ERROR_RESPONSES)
_CONFLICT = {409: {"model": errors.ErrorBody, "description": "The name or the address is already registered"}}


def _service(request: Request) -> EngineService:
    return request.app.state.service


@router.post("/bots", status_code=201, responses=_CONFLICT)
async def add_bot(body: BotRequest, request: Request, _p: Annotated[Principal, Depends(needs("master"))]) -> dict:
    """Register a bot. The answer carries `private_key` only when perpguard made the key."""
    info, private_key = await _service(request).add_bot(body.name, body.address, frozenset(body.scopes))
    return {**info.as_dict(), **({"private_key": private_key} if private_key else {})}


@router.get("/bots")
async def list_bots(request: Request, _p: Annotated[Principal, Depends(needs("master"))]) -> list[dict]:
    """Each bot, with `signs_as` (mainnet | testnet: the phantom-agent source its client signed
    its last action with through /hl/exchange since the engine started; null before that)."""
    hl = getattr(request.app.state, "hl", None)
    signed_as = hl.exchange.signed_as if hl is not None else {}
    return [{**bot.as_dict(), "signs_as": signed_as.get(bot.name)} for bot in _service(request).list_bots()]


@router.delete("/bots/{name}")
async def remove_bot(name: BotName, request: Request, _p: Annotated[Principal, Depends(needs("master"))]) -> dict:
    """Forget the bot (its signatures are refused from now on) and remove the policies scoped to it."""
    removed = await _service(request).remove_bot(name)
    return {"name": name, "removed": True, "policies_removed": removed}
