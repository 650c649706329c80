"""`WS /v1/stream`: a state snapshot on connect, then every engine event as it happens and a
fresh snapshot every `snapshot_seconds`. Auth as the HTTP API (header or `?token=`), scope read.

A console that reads too slowly loses events, not the engine's time: the queue is bounded, and
on overflow the client gets `{"type": "gap"}` and the next snapshot, which is the truth."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import WebSocket, WebSocketDisconnect

from engine.domain.events import EngineEvent
from engine.gateway.errors import finite
from engine.gateway.security import identify
from engine.facade import ServiceError

QUEUE_LIMIT = 1000


async def stream(websocket: WebSocket) -> None:
    service = websocket.app.state.service
    auth = websocket.headers.get("authorization", "")
    token = auth.partition(" ")[2].strip() if auth.lower().startswith("bearer ") else websocket.query_params.get("token")
    try:
        principal = await identify(service, websocket.headers.get("x-master-password"), token, websocket.app.state.tokens)
    except ServiceError as exc:
        await websocket.close(code=4401, reason=exc.message[:120])
        return
    if principal.kind != "master" and "read" not in principal.scopes:
        await websocket.close(code=4403, reason="this needs the read scope")
        return
    await websocket.accept()
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
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), timeout=max(0.0, next_snapshot - loop.time()))
            except asyncio.TimeoutError:
                await websocket.send_json(finite({"type": "snapshot", "state": service.state().to_json()}))
                next_snapshot = loop.time() + interval
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
