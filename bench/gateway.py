"""Gateway latency beside a bare FastAPI app, in the same run, over the same loopback HTTP
client: one order (dry run: the full gate, no venue) through perpguard's gateway with a bot
token, against a bare FastAPI endpoint that only validates the same body and answers. The two
are asked in turn, so a busy moment on the machine weighs on both."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from engine.config import load_config
from engine.domain.model import OrderIntent
from engine.node import build

ORDER = {"market": "BTC", "side": "buy", "notional_usd": 500.0, "dry_run": True}


class _Served:
    """A uvicorn server in a thread of its own, on 127.0.0.1, any free port."""

    def __init__(self, app) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    def __exit__(self, *_exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def bare_app() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/orders")
    async def orders(intent: OrderIntent) -> dict:
        return {"status": "dry_run", "market": intent.market}

    return app


def _p50_ms(targets: list[tuple[str, dict]], n: int) -> list[float]:
    """Median latency of each target, requests interleaved so drift hits both alike."""
    clients = [httpx.Client(base_url=url, headers=headers) for url, headers in targets]
    try:
        for _ in range(50):  # warm up
            for http in clients:
                http.post("/v1/orders", json=ORDER)
        samples: list[list[float]] = [[] for _ in clients]
        for _ in range(n):
            for http, out in zip(clients, samples):
                t0 = time.perf_counter()
                response = http.post("/v1/orders", json=ORDER)
                out.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, response.text
    finally:
        for http in clients:
            http.close()
    return [statistics.median(out) for out in samples]


def measure(n: int = 2000) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "perpguard.toml").write_text("")
        config = load_config(str(Path(tmp) / "perpguard.toml"),
                             **{"engine.db": f"sqlite:///{tmp}/bench.db", "engine.listen": "127.0.0.1:0"})
        loop = asyncio.new_event_loop()
        service = build(config)
        _info, token = service.store.create_token("bench", {"trade", "read"}, None)
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(service.start())
            ready.set()
            loop.run_forever()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        ready.wait(30)
        try:
            with _Served(bare_app()) as bare_url:
                gateway, bare = _p50_ms([(service.url, {"Authorization": f"Bearer {token}"}), (bare_url, {})], n)
        finally:
            asyncio.run_coroutine_threadsafe(service.stop(), loop).result(30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
    return {"gateway_p50_ms": gateway, "bare_fastapi_p50_ms": bare}


if __name__ == "__main__":
    print(measure())
