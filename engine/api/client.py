"""The Python client of the gateway, sync (`Client`) and async (`AsyncClient`), for bots, the
thin CLI commands, the demo bot and the attached console.

    from engine.api.client import Client
    pg = Client(token="pg_...")                      # or master_password="..."
    reply = pg.submit({"market": "BTC", "side": "buy", "notional_usd": 500, "client_id": "b-1"})
    reply.status        # 200 sent, 202 held (reply.body["pending"]["id"]), 403 denied, 409 venue refused
    for message in pg.stream(): ...                  # {"type": "snapshot" | "event" | "gap", ...}
    pg.size({"market": "BTC", "side": "buy", "stop_loss": 60_000}, risk_share=0.01)["max_size"]

An order's answer is a `Reply` whatever the verdict (a denial is an answer, not an error). Any
other refusal raises `engine.api.errors.ApiError` with the gateway's status, SPEC section 9 code
and field; an engine that cannot be reached (or does not answer in time) raises it too, with
status 0 and code `LINK_DOWN`. The calls a console makes (`state`, `policies`, `approve`,
`cancel_pending`, `kill`, `resume`, `submit`, `stream`) take `master_password=` for that call
alone, on top of the client's own credentials; `kill` takes a `timeout` (seconds) too.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, Iterator, NamedTuple
from urllib.parse import quote, urlsplit

import httpx
from websockets.asyncio.client import connect as async_connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus, WebSocketException
from websockets.sync.client import connect as sync_connect

from engine.api.errors import LINK_DOWN, ApiError
from engine.domain.model import OrderIntent
from engine.risk.sizing import NOT_ASKED, SizeRequest

DEFAULT_URL = "http://127.0.0.1:8710"
DEFAULT_TIMEOUT_SECONDS = 30.0
KILL_TIMEOUT_SECONDS = 120.0  # a panic exit takes as long as the venue needs to fill the exits
STREAM_MAX_BYTES = 2 ** 24  # one snapshot of a large book; websockets' own default is 1 MiB
ORDER_ANSWERS = frozenset({200, 202, 403, 409})


class Reply(NamedTuple):
    status: int
    body: dict

    @property
    def sent(self) -> bool:
        return self.status == 200

    @property
    def pending_id(self) -> str | None:
        return self.body.get("pending", {}).get("id") if self.status == 202 else None


def gateway_url(url: str) -> str:
    """`url` without its trailing slash; ValueError unless it is http(s)://host[:port][/path]."""
    parts = urlsplit(url.rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"gateway URL must be http(s)://host:port, not {url!r}")
    return url.rstrip("/")


def stream_url(url: str) -> str:
    """The `WS /v1/stream` address of the gateway at `url`."""
    return url.replace("https://", "wss://", 1).replace("http://", "ws://", 1).rstrip("/") + "/v1/stream"


def auth_headers(token: str | None, master_password: str | None) -> dict[str, str]:
    """The gateway's credentials: a bot token (`Authorization: Bearer pg_...`) and/or the
    master password (`X-Master-Password`)."""
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if master_password:
        headers["X-Master-Password"] = master_password
    return headers


def link_down(url: str, exc: Exception) -> ApiError:
    """The ApiError (status 0, LINK_DOWN) for a transport failure, saying what it means."""
    name = type(exc).__name__
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, OSError)):
        return ApiError(0, LINK_DOWN, f"cannot reach the engine at {url}: {name}")
    if isinstance(exc, (httpx.TimeoutException, TimeoutError)):
        return ApiError(0, LINK_DOWN, f"no answer from the engine at {url} in time ({name}); "
                                      "what was asked may still have happened")
    return ApiError(0, LINK_DOWN, f"the connection to the engine at {url} broke: {name}")


def _order(intent: dict | OrderIntent) -> dict:
    return intent.model_dump(mode="json", exclude_none=True) if isinstance(intent, OrderIntent) else dict(intent)


def _size_body(intent: dict | OrderIntent | SizeRequest, sizing: dict) -> dict:
    """The `POST /v1/size` body: the intent (an OrderIntent loses its size, notional_usd,
    client_id and dry_run; a dict goes as given) and the formulas' inputs given as keywords."""
    if isinstance(intent, OrderIntent):
        body = intent.model_dump(mode="json", exclude_none=True, exclude=set(NOT_ASKED))
    elif isinstance(intent, SizeRequest):
        body = intent.model_dump(mode="json", exclude_none=True)
    else:
        body = dict(intent)
    return {**body, **{k: v for k, v in sizing.items() if v is not None}}


def _answer(response: httpx.Response, answers: frozenset[int] = frozenset()) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if response.status_code in answers and isinstance(body, dict) and ("decision" in body or response.status_code < 300):
        return Reply(response.status_code, body)  # a decision, whatever its verdict (not an auth refusal)
    if response.status_code >= 400:
        raise ApiError.from_response(response.status_code, body)
    return body


# How the gateway refuses or ends a stream (engine/gateway/stream.py): 4000 + the HTTP status.
_STREAM_CLOSE_CODES = {4401: (401, "UNAUTHORIZED"), 4403: (403, "FORBIDDEN")}


def _stream_closed(url: str, exc: ConnectionClosedError) -> ApiError:
    """The refusal a 4401/4403 close frame says (credentials missing, wrong, revoked or expired;
    no read scope), else LINK_DOWN."""
    code = exc.rcvd.code if exc.rcvd is not None else None
    if code not in _STREAM_CLOSE_CODES:
        return link_down(url, exc)
    status, name = _STREAM_CLOSE_CODES[code]
    return ApiError(status, name, exc.rcvd.reason or "the gateway closed the stream", "Authorization")


def _stream_refused(exc: InvalidStatus) -> ApiError:
    body: Any = exc.response.body or b""
    try:
        body = json.loads(body)
    except ValueError:
        body = body.decode(errors="replace")
    return ApiError.from_response(exc.response.status_code, body)


# One table of calls for both clients: name -> (method, path template)
_CALLS = {
    "submit": ("POST", "/v1/orders"),
    "kill": ("POST", "/v1/kill"),
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
    "add_bot": ("POST", "/v1/bots"),
    "list_bots": ("GET", "/v1/bots"),
    "remove_bot": ("DELETE", "/v1/bots/{0}"),
    "resume": ("POST", "/v1/resume"),
    "audit": ("GET", "/v1/audit"),
    "size": ("POST", "/v1/size"),
    "health": ("GET", "/healthz"),
}


class _BaseClient:
    """What both clients share: the address, the credentials, the table of calls and the one
    error. `timeout` is seconds per request (a kill waits `KILL_TIMEOUT_SECONDS` unless told)."""

    def __init__(self, url: str = DEFAULT_URL, token: str | None = None, master_password: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self.url = gateway_url(url)
        self.timeout = timeout
        self.headers = auth_headers(token, master_password)

    def _request(self, name: str, ids: tuple[str, ...], json_body: Any, params: dict | None,
                 master_password: str | None, timeout: float | None) -> dict:
        method, template = _CALLS[name]
        return {"method": method, "url": template.format(*(quote(i, safe="") for i in ids)), "json": json_body,
                "params": params, "headers": auth_headers(None, master_password),
                "timeout": httpx.USE_CLIENT_DEFAULT if timeout is None else timeout}

    def _stream_options(self, master_password: str | None) -> dict:
        return {"uri": stream_url(self.url), "additional_headers": {**self.headers, **auth_headers(None, master_password)},
                "open_timeout": self.timeout, "max_size": STREAM_MAX_BYTES}

    @staticmethod
    def _kill_body(reason: str | None) -> dict | None:
        return {"reason": reason} if reason else None

    @staticmethod
    def _token_body(name: str, scopes: list[str], expires_in_seconds: float | None) -> dict:
        return {"name": name, "scopes": scopes, **({"expires_in_seconds": expires_in_seconds} if expires_in_seconds else {})}

    @staticmethod
    def _audit_params(limit: int, kind: str | None, since: float | None) -> dict:
        return {"limit": limit, **({"kind": kind} if kind else {}), **({"since": since} if since is not None else {})}


class Client(_BaseClient):
    """Blocking client. Every call returns parsed JSON (orders: a `Reply`)."""

    def __init__(self, url: str = DEFAULT_URL, token: str | None = None, master_password: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        super().__init__(url, token, master_password, timeout)
        self.http = httpx.Client(base_url=self.url, headers=self.headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def _call(self, name: str, *ids: str, json_body: Any = None, params: dict | None = None,
              master_password: str | None = None, timeout: float | None = None,
              answers: frozenset[int] = frozenset()) -> Any:
        try:
            response = self.http.request(**self._request(name, ids, json_body, params, master_password, timeout))
        except httpx.TransportError as exc:
            raise link_down(self.url, exc) from exc
        return _answer(response, answers)

    def submit(self, intent: dict | OrderIntent, *, master_password: str | None = None) -> Reply:
        return self._call("submit", json_body=_order(intent), master_password=master_password, answers=ORDER_ANSWERS)

    def size(self, intent: dict | OrderIntent | SizeRequest, **sizing: Any) -> dict:
        """The largest size of `intent` the gate allows now (`POST /v1/size`): `max_size`, `tier`,
        `binding`, `formulas`. Keywords add the formulas' inputs (`risk_share=0.01`,
        `win_probability=0.55, payoff_ratio=1.5, kelly_fraction=0.5`). Nothing is acted on."""
        return self._call("size", json_body=_size_body(intent, sizing))

    def kill(self, reason: str | None = None, *, master_password: str | None = None,
             timeout: float = KILL_TIMEOUT_SECONDS) -> dict:
        return self._call("kill", json_body=self._kill_body(reason), master_password=master_password, timeout=timeout)

    def state(self, *, master_password: str | None = None) -> dict:
        return self._call("state", master_password=master_password)

    def pending(self) -> list[dict]:
        return self._call("pending")

    def approve(self, action_id: str, *, master_password: str | None = None) -> dict:
        return self._call("approve", action_id, master_password=master_password)

    def cancel_pending(self, action_id: str, *, master_password: str | None = None) -> dict:
        return self._call("cancel_pending", action_id, master_password=master_password)

    def cancel(self, order_id: str) -> dict:
        return self._call("cancel", order_id)

    def policies(self, *, master_password: str | None = None) -> list[dict]:
        return self._call("policies", master_password=master_password)

    def add_policy(self, body: dict) -> dict:
        return self._call("add_policy", json_body=body)

    def remove_policy(self, policy_id: str) -> dict:
        return self._call("remove_policy", policy_id)

    def resume(self, *, master_password: str | None = None) -> dict:
        return self._call("resume", master_password=master_password)

    def health(self) -> dict:
        return self._call("health")

    def create_token(self, name: str, scopes: list[str], expires_in_seconds: float | None = None) -> dict:
        return self._call("create_token", json_body=self._token_body(name, scopes, expires_in_seconds))

    def revoke_token(self, token_id: str) -> dict:
        return self._call("revoke_token", token_id)

    def audit(self, limit: int = 100, kind: str | None = None, since: float | None = None) -> list[dict]:
        return self._call("audit", params=self._audit_params(limit, kind, since))

    def add_bot(self, name: str, address: str | None = None, scopes: list[str] | None = None) -> dict:
        """Register a bot for the Hyperliquid-compatible API (master): `{name, address, scopes,
        created_at}`, plus `private_key` (shown this once) when no `address` was given and the
        gateway made the key. ApiError 409 CONFLICT when the name or address is taken."""
        body = {"name": name, **({"address": address} if address else {}), **({"scopes": scopes} if scopes else {})}
        return self._call("add_bot", json_body=body)

    def list_bots(self) -> list[dict]:
        return self._call("list_bots")

    def remove_bot(self, name: str) -> dict:
        """Forget the bot and remove its scoped policies: `{name, removed, policies_removed}`."""
        return self._call("remove_bot", name)

    def stream(self, *, master_password: str | None = None) -> Iterator[dict]:
        """Snapshots and events as they come, until the gateway closes the stream."""
        try:
            with sync_connect(**self._stream_options(master_password)) as ws:
                for message in ws:
                    yield json.loads(message)
        except InvalidStatus as exc:
            raise _stream_refused(exc) from exc
        except ConnectionClosedError as exc:
            raise _stream_closed(self.url, exc) from exc
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise link_down(self.url, exc) from exc


class AsyncClient(_BaseClient):
    """The same calls, awaitable."""

    def __init__(self, url: str = DEFAULT_URL, token: str | None = None, master_password: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        super().__init__(url, token, master_password, timeout)
        self.http = httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=timeout)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_exc) -> None:
        await self.aclose()

    async def _call(self, name: str, *ids: str, json_body: Any = None, params: dict | None = None,
                    master_password: str | None = None, timeout: float | None = None,
                    answers: frozenset[int] = frozenset()) -> Any:
        try:
            response = await self.http.request(**self._request(name, ids, json_body, params, master_password, timeout))
        except httpx.TransportError as exc:
            raise link_down(self.url, exc) from exc
        return _answer(response, answers)

    async def submit(self, intent: dict | OrderIntent, *, master_password: str | None = None) -> Reply:
        return await self._call("submit", json_body=_order(intent), master_password=master_password,
                                answers=ORDER_ANSWERS)

    async def size(self, intent: dict | OrderIntent | SizeRequest, **sizing: Any) -> dict:
        return await self._call("size", json_body=_size_body(intent, sizing))

    async def kill(self, reason: str | None = None, *, master_password: str | None = None,
                   timeout: float = KILL_TIMEOUT_SECONDS) -> dict:
        return await self._call("kill", json_body=self._kill_body(reason), master_password=master_password,
                                timeout=timeout)

    async def state(self, *, master_password: str | None = None) -> dict:
        return await self._call("state", master_password=master_password)

    async def pending(self) -> list[dict]:
        return await self._call("pending")

    async def approve(self, action_id: str, *, master_password: str | None = None) -> dict:
        return await self._call("approve", action_id, master_password=master_password)

    async def cancel_pending(self, action_id: str, *, master_password: str | None = None) -> dict:
        return await self._call("cancel_pending", action_id, master_password=master_password)

    async def cancel(self, order_id: str) -> dict:
        return await self._call("cancel", order_id)

    async def policies(self, *, master_password: str | None = None) -> list[dict]:
        return await self._call("policies", master_password=master_password)

    async def resume(self, *, master_password: str | None = None) -> dict:
        return await self._call("resume", master_password=master_password)

    async def audit(self, limit: int = 100, kind: str | None = None, since: float | None = None) -> list[dict]:
        return await self._call("audit", params=self._audit_params(limit, kind, since))

    async def stream(self, *, master_password: str | None = None) -> AsyncIterator[dict]:
        """Snapshots and events as they come, until the gateway closes the stream."""
        try:
            async with async_connect(**self._stream_options(master_password)) as ws:
                async for message in ws:
                    yield json.loads(message)
        except InvalidStatus as exc:
            raise _stream_refused(exc) from exc
        except ConnectionClosedError as exc:
            raise _stream_closed(self.url, exc) from exc
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise link_down(self.url, exc) from exc
