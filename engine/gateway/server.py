"""uvicorn inside the engine's own loop (single writer: the routes call the engine directly).
The engine's runner owns SIGTERM and SIGINT, so uvicorn's own signal capture is switched off."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import uvicorn
from fastapi import FastAPI

from engine.config import is_loopback

log = logging.getLogger("perpguard.gateway")


class RefusedBind(ValueError):
    pass


class GatewayServer(uvicorn.Server):
    def capture_signals(self):  # the runner handles signals and calls `stop`
        return contextlib.nullcontext()

    async def start(self) -> asyncio.Task:
        """Serve in the background; returns once the socket listens (or raises if it cannot)."""
        task = asyncio.get_running_loop().create_task(self.serve())
        while not self.started:
            if task.done():
                task.result()  # raises the bind error
                raise OSError("the gateway stopped before it listened")
            await asyncio.sleep(0.01)
        return task

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return self.servers[0].sockets[0].getsockname()[1]

    async def stop(self, task: asyncio.Task) -> None:
        """Stop accepting, let requests in flight finish, then return."""
        self.should_exit = True
        await task


def gateway_server(app: FastAPI, host: str, port: int, allow_remote: bool = False) -> GatewayServer:
    if not is_loopback(host) and not allow_remote:
        raise RefusedBind(f"refusing to listen on {host}: not a loopback address. The gateway takes orders; "
                          "expose it only on purpose, with `allow_remote = true` under [engine] (or --allow-remote), "
                          "behind TLS and a firewall")
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off", access_log=False,
                            ws_max_size=1 << 20, timeout_graceful_shutdown=10)
    return GatewayServer(config)
