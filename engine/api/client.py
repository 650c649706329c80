"""The Python client of the gateway, sync (`Client`) and async (`AsyncClient`), for bots and
for the thin CLI commands.

    from engine.api.client import Client
    pg = Client(token="pg_...")                      # or master_password="..."
    reply = pg.submit({"market": "BTC", "side": "buy", "notional_usd": 500, "client_id": "b-1"})
    reply.status        # 200 sent, 202 held (reply.body["pending"]["id"]), 403 denied, 409 venue refused
    for message in pg.stream(): ...                  # {"type": "snapshot" | "event" | "gap", ...}

An order's answer is a `Reply` whatever the verdict (a denial is an answer, not an error); any
other refusal raises `GatewayError` with the SPEC section 9 code.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, Iterator, NamedTuple

import httpx
import websockets
from websockets.sync.client import connect as sync_connect

from engine.domain.model import OrderIntent

DEFAULT_URL = "http://127.0.0.1:8710"
ORDER_ANSWERS = {200, 202, 403, 409}


class GatewayError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        self.status, self.body = status, body
        self.code = error.get("code", f"HTTP_{status}")
        self.message = error.get("message", str(body))
        super().__init__(f"{self.code} ({status}): {self.message}")


class Reply(NamedTuple):
    status: int
    body: dict

    @property
    def sent(self) -> bool:
        return self.status == 200

    @property
    def pending_id(self) -> str | None:
        return self.body.get("pending", {}).get("id") if self.status == 202 else None


def _headers(token: str | None, master_password: str | None) -> dict[str, str]:
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if master_password is not None:
        headers["X-Master-Password"] = master_password
    return headers


def _order(intent: dict | OrderIntent) -> dict:
    return intent.model_dump(mode="json", exclude_none=True) if isinstance(intent, OrderIntent) else dict(intent)


def _body(response: httpx.Response, answers: set[int] = frozenset()) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = {"error": {"code": f"HTTP_{response.status_code}", "message": response.text[:200]}}
    if response.status_code in answers and isinstance(body, dict) and ("decision" in body or response.status_code < 300):
        return Reply(response.status_code, body)  # a decision, whatever its verdict (not an auth refusal)
    if response.status_code >= 400:
        raise GatewayError(response.status_code, body)
    return body


def _ws_url(url: str) -> str:
    return url.replace("https://", "wss://", 1).replace("http://", "ws://", 1).rstrip("/") + "/v1/stream"


# One table of calls for both clients: name -> (method, path template, answers-as-Reply)
_CALLS = {
    "state": ("GET", "/v1/state"),
    "pending": ("GET", "/v1/pending"),
    "approve": ("POST", "/v1/pending/{0}/approve"),
    "cancel_pending": ("POST", "/v1/pending/{0}/cancel"),
    "cancel": ("DELETE", "/v1/orders/{0}"),
    "policies": ("GET", "/v1/policies"),
    "add_policy": ("POST", "/v1/policies"),
    "remove_policy": ("DELETE", "/v1/policies/{0}"),
    "create_token": ("POST", "/v1/tokens"),
    "revoke_token": ("DELETE", "/v1/tokens/{0}"),
    "resume": ("POST", "/v1/resume"),
    "audit": ("GET", "/v1/audit"),
    "health": ("GET", "/healthz"),
}


class Client:
    """Blocking client. Every call returns parsed JSON (orders: a `Reply`)."""

    def __init__(self, url: str = DEFAULT_URL, token: str | None = None, master_password: str | None = None,
                 timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.headers = _headers(token, master_password)
        self.http = httpx.Client(base_url=self.url, headers=self.headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def _call(self, name: str, *ids: str, json_body: Any = None, params: dict | None = None) -> Any:
        method, template = _CALLS[name]
        return _body(self.http.request(method, template.format(*ids), json=json_body, params=params))

    def submit(self, intent: dict | OrderIntent) -> Reply:
        return _body(self.http.post("/v1/orders", json=_order(intent)), ORDER_ANSWERS)

    def kill(self, reason: str | None = None) -> dict:
        return _body(self.http.post("/v1/kill", json={"reason": reason} if reason else None))

    def state(self) -> dict: return self._call("state")
    def pending(self) -> list[dict]: return self._call("pending")
    def approve(self, action_id: str) -> dict: return self._call("approve", action_id)
    def cancel_pending(self, action_id: str) -> dict: return self._call("cancel_pending", action_id)
    def cancel(self, order_id: str) -> dict: return self._call("cancel", order_id)
    def policies(self) -> list[dict]: return self._call("policies")
    def add_policy(self, body: dict) -> dict: return self._call("add_policy", json_body=body)
    def remove_policy(self, policy_id: str) -> dict: return self._call("remove_policy", policy_id)
    def resume(self) -> dict: return self._call("resume")
    def health(self) -> dict: return self._call("health")

    def create_token(self, name: str, scopes: list[str], expires_in_seconds: float | None = None) -> dict:
        body = {"name": name, "scopes": scopes, **({"expires_in_seconds": expires_in_seconds} if expires_in_seconds else {})}
        return self._call("create_token", json_body=body)

    def revoke_token(self, token_id: str) -> dict: return self._call("revoke_token", token_id)

    def audit(self, limit: int = 100, kind: str | None = None) -> list[dict]:
        return self._call("audit", params={"limit": limit, **({"kind": kind} if kind else {})})

    def stream(self) -> Iterator[dict]:
        """Snapshots and events as they come, until the connection closes."""
        with sync_connect(_ws_url(self.url), additional_headers=self.headers) as ws:
            for message in ws:
                yield json.loads(message)


class AsyncClient:
    """The same calls, awaitable."""

    def __init__(self, url: str = DEFAULT_URL, token: str | None = None, master_password: str | None = None,
                 timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.headers = _headers(token, master_password)
        self.http = httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=timeout)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_exc) -> None:
        await self.aclose()

    async def _call(self, name: str, *ids: str, json_body: Any = None, params: dict | None = None) -> Any:
        method, template = _CALLS[name]
        return _body(await self.http.request(method, template.format(*ids), json=json_body, params=params))

    async def submit(self, intent: dict | OrderIntent) -> Reply:
        return _body(await self.http.post("/v1/orders", json=_order(intent)), ORDER_ANSWERS)

    async def kill(self, reason: str | None = None) -> dict:
        return _body(await self.http.post("/v1/kill", json={"reason": reason} if reason else None))

    async def state(self) -> dict: return await self._call("state")
    async def pending(self) -> list[dict]: return await self._call("pending")
    async def approve(self, action_id: str) -> dict: return await self._call("approve", action_id)
    async def cancel_pending(self, action_id: str) -> dict: return await self._call("cancel_pending", action_id)
    async def cancel(self, order_id: str) -> dict: return await self._call("cancel", order_id)
    async def policies(self) -> list[dict]: return await self._call("policies")
    async def resume(self) -> dict: return await self._call("resume")

    async def audit(self, limit: int = 100, kind: str | None = None, since: float | None = None) -> list[dict]:
        params = {"limit": limit, **({"kind": kind} if kind else {}), **({"since": since} if since is not None else {})}
        return await self._call("audit", params=params)

    async def stream(self) -> AsyncIterator[dict]:
        async with websockets.connect(_ws_url(self.url), additional_headers=self.headers) as ws:
            async for message in ws:
                yield json.loads(message)
