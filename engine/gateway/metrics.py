"""`/metrics` in Prometheus text format: the account's figures now, and counters of requests and
decisions since the gateway started."""

from __future__ import annotations

import math
from collections import Counter

from fastapi.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.api.state import EngineState

STATES = ("ACTIVE", "REDUCE_ONLY", "HALTED")


class PlainText(PlainTextResponse):
    media_type = "text/plain; version=0.0.4"


class Metrics:
    def __init__(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()
        self.decisions: Counter[str] = Counter()

    def decision(self, answer) -> None:
        self.decisions[answer.body.get("status") or answer.body.get("error", {}).get("code", "unknown")] += 1

    def render(self, state: EngineState) -> str:
        account = state.account
        lines = []

        def gauge(name: str, help_: str, value, labels: str = "") -> None:
            if not any(line.startswith(f"# HELP {name} ") for line in lines):
                lines.extend([f"# HELP {name} {help_}", f"# TYPE {name} gauge"])
            if value is not None and math.isfinite(value):
                lines.append(f"{name}{labels} {value}")

        gauge("perpguard_equity_usd", "Account value.", account.equity)
        gauge("perpguard_maintenance_margin_usd", "Maintenance margin of all positions.", account.maintenance_margin)
        gauge("perpguard_margin_buffer_ratio", "(account value - maintenance) / account value.", account.margin_buffer)
        gauge("perpguard_positions", "Open positions.", len(state.positions))
        gauge("perpguard_open_orders", "Resting orders.", len(state.open_orders))
        gauge("perpguard_pending_actions", "DELAY and APPROVAL orders waiting.", len(state.pending))
        gauge("perpguard_feed_age_seconds", "Age of the oldest mark of an open position.", state.feed_age_seconds)
        for name in STATES:
            gauge("perpguard_trading_state", "1 for the current trading state.", int(state.trading_state.value == name),
                  f'{{state="{name}"}}')
        lines.extend(["# HELP perpguard_decisions_total Order answers by outcome.", "# TYPE perpguard_decisions_total counter"])
        lines.extend(f'perpguard_decisions_total{{outcome="{k}"}} {v}' for k, v in sorted(self.decisions.items()))
        lines.extend(["# HELP perpguard_http_requests_total Gateway requests by route and status.",
                      "# TYPE perpguard_http_requests_total counter"])
        lines.extend(f'perpguard_http_requests_total{{route="{r}",status="{s}"}} {v}'
                     for (r, s), v in sorted(self.requests.items()))
        return "\n".join(lines) + "\n"


class CountRequests:
    """ASGI middleware: count responses by route template and status (bounded label set)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = scope.get("route")
                path = getattr(route, "path", "unmatched")
                scope["app"].state.metrics.requests[(path, message["status"])] += 1
            await send(message)

        await self.app(scope, receive, counted)
