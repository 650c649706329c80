"""The policy catalogue (SPEC section 4): parse bodies into policies, validate their rules.

A body is `{type, rules, enabled?, account?, id?, description?, bot?}`; the WAIaaS form
`{"walletId": ..., "type": ..., "rules": {...}}` is accepted as it is (walletId -> account).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema

from engine.domain.model import Name, Text
from engine.risk.policies import (  # noqa: F401
    access, buffer, exposure, flow, leverage, losses, market_data, spending, trade_quality, venue_stop,
)
from engine.risk.policies.base import POLICY_TYPES, Policy

# A policy id is a URL path segment (`DELETE /v1/policies/{id}`) and a label in logs: letters,
# digits, `.`, `_` and `-`, starting with a letter or digit (so never `.` or `..`), 1-64 long.
POLICY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


def policy_id(value: str) -> str:
    """`value` if it is a valid policy id (POLICY_ID_PATTERN), else ValueError saying the rule."""
    if re.fullmatch(POLICY_ID_PATTERN, value) is None:
        raise ValueError(f"a policy id is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit "
                         f"(got {value[:80]!r})")
    return value


PolicyId = Annotated[str, AfterValidator(policy_id), WithJsonSchema({"type": "string", "pattern": POLICY_ID_PATTERN})]


class PolicyError(ValueError):
    """A policy body that cannot be used. `field` is the dotted path of the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class PolicyBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    type: str
    rules: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    account: Name | None = Field(default=None, max_length=128)
    walletId: Name | None = Field(default=None, max_length=128)
    id: PolicyId | None = None
    description: Text | None = Field(default=None, max_length=1000)
    bot: Name | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"\S",
        description="Scope the policy to one bot (a registered bot's or a bot token's name): it judges only that "
                    "bot's orders, which pass the account's policies too. Its counters (RATE_LIMIT, SPENDING_LIMIT, "
                    "ACTION_CATEGORY_LIMIT) count that bot's orders only; account figures (positions, losses, "
                    "buffer) stay the account's, and the engine's own protection (de-risk, breakers, venue stops) "
                    "follows the account's policies alone")


def _field_path(prefix: str, loc: tuple) -> str:
    parts = [prefix] if prefix else []
    for item in loc:
        if isinstance(item, int) and parts:
            parts[-1] = f"{parts[-1]}[{item}]"
        elif not str(item).startswith(("function-", "model-")):
            parts.append(str(item))
    return ".".join(parts) or "body"


def _raise_first(exc: ValidationError, prefix: str) -> None:
    """Raise a PolicyError naming every bad field, unknown ones (likely typos) first."""
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    parts = []
    for err in errors:
        message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        parts.append((_field_path(prefix, err["loc"]), message))
    field, message = parts[0]
    if len(parts) > 1:
        message += "; " + "; ".join(f"{f}: {m}" for f, m in parts[1:])
    raise PolicyError(field, message) from None


def parse_policy(body: Any, default_id: str, where: str = "") -> Policy:
    """One body -> a Policy. Raises PolicyError naming the field (e.g. `rules.maxLeverage`)."""
    if not isinstance(body, dict):
        raise PolicyError(where or "body", "a policy must be a JSON object")
    try:
        head = PolicyBody.model_validate(body)
    except ValidationError as exc:
        _raise_first(exc, where)
    cls = POLICY_TYPES.get(head.type)
    if cls is None:
        raise PolicyError(_field_path(where, ("type",)), f"unknown policy type {head.type!r}; known: {', '.join(sorted(POLICY_TYPES))}")
    try:
        rules = cls.Rules.model_validate(head.rules)
    except ValidationError as exc:
        _raise_first(exc, _field_path(where, ("rules",)))
    return cls(head.id or default_id, rules, head.enabled, head.account or head.walletId, head.bot)


def parse_policies(bodies: Any) -> list[Policy]:
    """A list of bodies -> policies, ids defaulting to `TYPE-n`. Duplicate ids are an error."""
    if not isinstance(bodies, list):
        raise PolicyError("policies", "expected a list of policy bodies")
    policies, seen = [], set()
    for i, body in enumerate(bodies):
        kind = body.get("type", "policy") if isinstance(body, dict) else "policy"
        policy = parse_policy(body, f"{kind}-{i + 1}", f"policies[{i}]")
        if policy.id in seen:
            raise PolicyError(f"policies[{i}].id", f"duplicate policy id {policy.id!r}")
        seen.add(policy.id)
        policies.append(policy)
    return policies


__all__ = ["POLICY_ID_PATTERN", "POLICY_TYPES", "Policy", "PolicyError", "PolicyId", "parse_policy", "parse_policies",
           "policy_id"]
