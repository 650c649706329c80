"""A real engine service (store, engine on the paper exchange, gateway on 127.0.0.1) running in
a background thread with its own asyncio loop, for tests that talk to it over HTTP."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx

from engine.store.auth import set_master_password
from engine.config import load_config
from engine.node import Service, build

MASTER = "correct horse battery"


class EngineThread:
    def __init__(self, tmp: Path, db_url: str | None = None, policies: Path | None = None, *,
                 config_file: str | None = None, **overrides) -> None:
        """`config_file`: a perpguard.toml to start from (e.g. one trading the fake Hyperliquid);
        else an empty one (the paper exchange)."""
        if config_file is None:
            config_file = tmp / "perpguard.toml"
            config_file.write_text("")
        self.config = load_config(str(config_file), **{"engine.db": db_url or f"sqlite:///{tmp / 'pg.db'}",
                                                       "engine.listen": "127.0.0.1:0",
                                                       "engine.policies": str(policies) if policies else None,
                                                       **overrides})
        self.loop = asyncio.new_event_loop()
        self.service: Service | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.service = build(self.config)
            set_master_password(self.service.store, MASTER)
            self.loop.run_until_complete(self.service.start())
        except BaseException as exc:  # surfaced to the test in __enter__
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()

    def call(self, coro, timeout: float = 30.0):
        """Run a coroutine on the engine's loop (the single writer) and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def url(self) -> str:
        return self.service.url

    def __enter__(self) -> EngineThread:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *_exc) -> None:
        if self.service is not None and self._error is None:
            self.call(self.service.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def seed_policies(engine: EngineThread, bodies: list[dict]) -> None:
    """Save `bodies` through the running engine's API, as a trader would (each answered 201)."""
    with httpx.Client(base_url=engine.url, headers={"X-Master-Password": MASTER}) as http:
        for body in bodies:
            answer = http.post("/v1/policies", json=body)
            assert answer.status_code == 201, answer.text
