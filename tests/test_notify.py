"""Webhooks: state changes and NOTIFY orders reach a real HTTP receiver on 127.0.0.1, retried
through its failures, without ever holding up the engine."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine.domain.events import EngineEvent
from engine.live.notify import Notifier


class Receiver(ThreadingHTTPServer):
    def __init__(self, fail_first: int) -> None:
        self.fail_first, self.bodies, self.attempts = fail_first, [], 0

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler) -> None:  # noqa: N805 - the handler instance
                self.attempts += 1
                body = handler.rfile.read(int(handler.headers["Content-Length"]))
                status = 503 if self.attempts <= self.fail_first else 200
                if status == 200:
                    self.bodies.append(json.loads(body))
                handler.send_response(status)
                handler.end_headers()

            def log_message(handler, *_args) -> None:  # noqa: N805
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


@pytest.fixture
def receiver():
    server = Receiver(fail_first=2)
    yield server
    server.shutdown()


async def test_state_changes_reach_the_webhook_through_its_failures(receiver):
    notifier = Notifier([receiver.url], retries=3, backoff=0.01)
    notifier.on_event(EngineEvent("state_changed", 1.0, "trading ACTIVE -> HALTED: kill switch", {"state": "HALTED"}))
    notifier.on_event(EngineEvent("order_sent", 1.0, "buy BTC filled"))  # not a notification
    notifier.on_event(EngineEvent("notify", 2.0, "NOTIFY: buy BTC ~2,500 USD sent", {"notional": 2500.0}))
    await notifier.drain()
    await notifier.close()
    assert [b["kind"] for b in receiver.bodies] == ["state_changed", "notify"]
    assert receiver.bodies[0]["state"] == "HALTED" and receiver.bodies[0]["source"] == "perpguard"
    assert receiver.attempts == 4 and notifier.delivered == 2 and notifier.failed == 0


async def test_a_webhook_that_stays_down_is_given_up_on_and_counted():
    notifier = Notifier(["http://127.0.0.1:9/nobody-listens"], retries=1, backoff=0.01)
    notifier.on_event(EngineEvent("panic_exit", 1.0, "PANIC EXIT"))
    await notifier.drain()
    await notifier.close()
    assert notifier.delivered == 0 and notifier.failed == 1
