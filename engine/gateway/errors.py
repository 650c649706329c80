"""Every refusal rendered in the one error shape (SPEC section 9, built by `engine.api.errors`):
`{"error": {"code", "message", "domain", "retryable", "details"?}}`. Bad input is a 4xx naming
the field; bodies are capped in size; responses never carry NaN or infinity (JSON has no such
numbers: they become null)."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.config import ConfigError
from engine.risk.policies import PolicyError
from engine.api.errors import ApiError, ErrorBody, error_body

log = logging.getLogger("perpguard.gateway")

MAX_BODY_BYTES = 64 * 1024


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": why}
    for status, why in ((401, "Unauthorized: master password or token missing or wrong"),
                        (403, "Forbidden: the token lacks the scope, or the order was denied"),
                        (404, "Not found"), (413, "Body too large"), (422, "Validation: the field is named"))
}


def finite(value: Any) -> Any:
    """The value with every NaN or infinite float replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


class SafeJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(finite(content), ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def error(status: int, code: str, message: str, field: str | None = None) -> SafeJSONResponse:
    return SafeJSONResponse(error_body(code, message, field), status_code=status)


def _field(loc: tuple) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> SafeJSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
        field = _field(tuple(first.get("loc", ("body",))))
        message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        every = [{"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg"))} for e in errors[:20]]
        return SafeJSONResponse(error_body("VALIDATION", f"{field}: {message}", field, {"errors": every}), status_code=422)

    @app.exception_handler(PolicyError)
    async def _policy(_request: Request, exc: PolicyError) -> SafeJSONResponse:
        return error(422, "VALIDATION", str(exc), exc.field)

    @app.exception_handler(ConfigError)
    async def _config(_request: Request, exc: ConfigError) -> SafeJSONResponse:
        return error(422, "VALIDATION", str(exc), exc.field)

    @app.exception_handler(ApiError)
    async def _refused(_request: Request, exc: ApiError) -> SafeJSONResponse:
        return SafeJSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> SafeJSONResponse:
        if exc.status_code == 400:  # the body could not be parsed at all: bad input, like any other
            return error(422, "VALIDATION", f"body: {exc.detail}", "body")
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE"}.get(exc.status_code, "HTTP_ERROR")
        return error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> SafeJSONResponse:
        log.exception("unexpected error in the gateway")
        return error(500, "INTERNAL", f"internal error ({type(exc).__name__}); the engine log has the details")


class BodyLimit:
    """ASGI middleware: refuse a request body over `limit` bytes with 413, whether it announces
    its length or streams it."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return await error(413, "PAYLOAD_TOO_LARGE", f"body over {self.limit} bytes", "body")(scope, receive, send)
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise StarletteHTTPException(413, f"body over {self.limit} bytes")
            return message

        await self.app(scope, limited, send)
