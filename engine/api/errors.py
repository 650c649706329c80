"""The one error of the wire contract (SPEC section 9), on both sides of the wire.

The engine raises `ApiError` for every refusal (the facade, the gateway's auth), the gateway
renders `error.body()`, and the Python client and the console's link raise the same class back
from the answer (`ApiError.from_response`), or with status 0 and code `LINK_DOWN` when the
engine cannot be reached:

    try:
        client.resume()
    except ApiError as refused:
        refused.status, refused.code, refused.field   # 401, "UNAUTHORIZED", "X-Master-Password"
        refused.body()   # {"error": {"code": "UNAUTHORIZED", "message": "...", "domain": "AUTH",
                         #            "retryable": false, "details": {"field": "X-Master-Password"}}}

`domain` and `retryable` come from one table here, for every code the gateway answers with.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

LINK_DOWN = "LINK_DOWN"  # status 0: no answer from the engine at all (refused, unreachable, timed out)

# The domain of each code; any other code is a REQUEST error. POLICY codes are a denied order's.
DOMAINS: dict[str, str] = {
    "UNAUTHORIZED": "AUTH", "FORBIDDEN": "AUTH",
    "VENUE_REJECTED": "EXCHANGE",
    "NOT_FOUND": "REQUEST", "VALIDATION": "REQUEST", "CONFLICT": "REQUEST",
    "POLICY_DENIED": "POLICY", "HALTED": "POLICY", "REDUCE_ONLY": "POLICY", "DATA_UNAVAILABLE": "POLICY",
    LINK_DOWN: "LINK",
    "STORE_UNAVAILABLE": "STORE",
}
DEFAULT_DOMAIN = "REQUEST"
# Codes worth trying again unchanged a little later.
RETRYABLE = frozenset({"DATA_UNAVAILABLE", "RATE_LIMITED", LINK_DOWN, "STORE_UNAVAILABLE"})


def error_body(code: str, message: str, field: str | None = None, details: dict[str, Any] | None = None) -> dict:
    """`{"error": {"code", "message", "domain", "retryable", "details"?}}`; `details` holds the
    `field` the error names (first) and any other `details` given."""
    error: dict[str, Any] = {"code": code, "message": message, "domain": DOMAINS.get(code, DEFAULT_DOMAIN),
                             "retryable": code in RETRYABLE}
    extra = {**({"field": field} if field else {}), **(details or {})}
    if extra:
        error["details"] = extra
    return {"error": error}


class ApiError(Exception):
    """A refusal or a failure: the HTTP `status` (0 when the engine could not be reached), the
    SPEC section 9 `code`, a `message` a trader can act on, the `field` it names (a body key, a
    query parameter, a header such as `X-Master-Password`) and any other `details`."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code} ({status}): {message}" if status else f"{code}: {message}")
        self.status, self.code, self.message, self.field = status, code, message, field
        self.details: dict[str, Any] = dict(details or {})

    @property
    def domain(self) -> str:
        return DOMAINS.get(self.code, DEFAULT_DOMAIN)

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE

    @property
    def unauthorized(self) -> bool:
        """The credentials were missing or wrong (not merely short of a scope: that is 403)."""
        return self.status == 401 or self.code == "UNAUTHORIZED"

    def body(self) -> dict:
        """The JSON body the gateway answers with."""
        return error_body(self.code, self.message, self.field, self.details)

    @classmethod
    def from_response(cls, status: int, body: Any) -> ApiError:
        """The error an HTTP answer carries: its `{"error": {...}}` if it has one, else
        `HTTP_<status>` with the start of whatever came back (`body` parsed JSON or text)."""
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            text = body.strip()[:200] if isinstance(body, str) else ""
            return cls(status, f"HTTP_{status}", text or f"the gateway answered {status}")
        details = dict(error.get("details") or {}) if isinstance(error.get("details"), dict) else {}
        field = details.pop("field", None)
        return cls(status, str(error.get("code") or f"HTTP_{status}"), str(error.get("message", "")),
                   field if isinstance(field, str) else None, details)


# The shape as the gateway's OpenAPI documents it (a docstring here would change /openapi.json).
class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")
    code: str
    message: str
    domain: str
    retryable: bool
    details: dict[str, Any] | None = None


class ErrorBody(BaseModel):
    """The error shape; a denied order also carries its `decision`."""

    model_config = ConfigDict(extra="allow")
    error: ErrorDetail
