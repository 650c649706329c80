"""`WS /v1/stream`: a state snapshot on connect, then every engine event as it happens and a
fresh snapshot every `snapshot_seconds`. Auth as the HTTP API (header or `?token=`), scope read.

A refused stream is accepted and then closed with 4401 (no or bad credentials) or 4403 (no read
scope), the reason in the close frame (`websockets` raises ConnectionClosedError, `.rcvd.code`).
The credential is checked again every RECHECK_SECONDS: a token revoked or expired while the
stream is open ends it with 4401 within a few seconds.

A console that reads too slowly loses events, not the engine's time: the queue is bounded, and
on overflow the client gets `{"type": "gap"}` and the next snapshot, which is the truth."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import WebSocket, WebSocketDisconnect

from engine.api.errors import ApiError
from engine.domain.events import EngineEvent
from engine.facade import EngineService
from engine.gateway.errors import finite
from engine.gateway.security import TokenCache, identify

QUEUE_LIMIT = 1000
# The credential is looked at again this often, so a revoked or expired token's stream ends
# within about this plus TokenCache.TTL seconds.
RECHECK_SECONDS = 1.0
# Close codes: HTTP's 401 and 403 in the range left to applications (4000-4999).
UNAUTHORIZED, FORBIDDEN = 4401, 4403


async def refusal(service: EngineService, master: str | None, token: str | None,
                  tokens: TokenCache) -> tuple[int, str] | None:
    """None while the credential may read the stream; else the close code and reason."""
    try:
        principal = await identify(service, master, token, tokens)
    except ApiError as exc:
        return UNAUTHORIZED, exc.message
    if principal.kind != "master" and "read" not in principal.scopes:
        return FORBIDDEN, "this needs the read scope"
    return None


async def stream(websocket: WebSocket) -> None:
    service = websocket.app.state.service
    tokens = websocket.app.state.tokens
    auth = websocket.headers.get("authorization", "")
    token = auth.partition(" ")[2].strip() if auth.lower().startswith("bearer ") else websocket.query_params.get("token")
    master = websocket.headers.get("x-master-password")
    # Accepted before the check, so a refusal reaches the client as its close code: closing an
    # unaccepted websocket answers a bare HTTP 403 whatever the reason.
    await websocket.accept()
    refused = await refusal(service, master, token, tokens)
    if refused is not None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await websocket.close(code=refused[0], reason=refused[1][:120])
        return
    queue: asyncio.Queue[EngineEvent | None] = asyncio.Queue(QUEUE_LIMIT)

    def listen(event: EngineEvent) -> None:
        if queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                while True:
                    queue.get_nowait()
            queue.put_nowait(None)  # a gap: the next snapshot tells the truth
        else:
            queue.put_nowait(event)

    unsubscribe = service.subscribe(listen)
    interval = websocket.app.state.snapshot_seconds
    loop = asyncio.get_running_loop()
    try:
        await websocket.send_json(finite({"type": "snapshot", "state": service.state().to_json()}))
        next_snapshot = loop.time() + interval
        next_check = loop.time() + RECHECK_SECONDS
        while True:
            if loop.time() >= next_check:
                refused = await refusal(service, master, token, tokens)
                if refused is not None:  # revoked or expired while streaming
                    await websocket.close(code=refused[0], reason=refused[1][:120])
                    return
                next_check = loop.time() + RECHECK_SECONDS
            if loop.time() >= next_snapshot:
                await websocket.send_json(finite({"type": "snapshot", "state": service.state().to_json()}))
                next_snapshot = loop.time() + interval
                continue
            try:
                event = await asyncio.wait_for(queue.get(), timeout=max(0.0, min(next_snapshot, next_check) - loop.time()))
            except asyncio.TimeoutError:
                continue
            if event is None:
                await websocket.send_json({"type": "gap"})
                next_snapshot = loop.time()
            else:
                await websocket.send_json(finite({"type": "event", "event": event.as_dict()}))
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client went away
    finally:
        unsubscribe()
