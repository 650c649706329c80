"""Policy files (JSON list of bodies, or TOML `[[policy]]` tables) and the default set."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from engine.risk.policies import Policy, PolicyError, parse_policies

# SPEC section 4 "Defaults": the seeds' golden rules. Change a value only with a measured reason.
DEFAULT_POLICY_BODIES: list[dict] = [
    {"id": "max-leverage", "type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 5}},
    {"id": "gross-exposure", "type": "MAX_GROSS_EXPOSURE", "rules": {"maxExposure": 3}},
    {"id": "loss-limit", "type": "LOSS_LIMIT", "rules": {"dailyLoss": 0.05, "weeklyLoss": 0.15}},
    {"id": "max-drawdown", "type": "MAX_DRAWDOWN", "rules": {"maxDrawdown": 0.20, "action": "REDUCE_ONLY"}},
    {"id": "circuit-breaker", "type": "CIRCUIT_BREAKER", "rules": {"maxConsecutiveLosses": 3, "cooldownMinutes": 60}},
    {"id": "margin-buffer", "type": "MIN_MARGIN_BUFFER",
     "rules": {"minBuffer": 0.6, "warnBuffer": 0.5, "panicBuffer": 0.25, "targetBuffer": 0.7}},
    {"id": "stale-data", "type": "STALE_DATA", "rules": {"maxMarkAgeSeconds": 10, "maxAccountAgeSeconds": 30}},
    {"id": "price-band", "type": "PRICE_BAND", "rules": {"maxDeviation": 0.05}},
    {"id": "rate-limit", "type": "RATE_LIMIT", "rules": {"maxTransactions": 60, "period": "minute"}},
    {"id": "order-limits", "type": "ORDER_LIMITS", "rules": {"maxOpenOrders": 50}},
    # Protection that outlives the engine (the venue-protection issue): a stop resting on the
    # venue for every position, where the buffer would reach 0.15 (below panic, above liquidation).
    {"id": "venue-stop", "type": "VENUE_STOP",
     "rules": {"triggerBuffer": 0.15, "orderKind": "market", "limitSlippage": 0.02, "minDistance": 0.005}},
]


def default_policies() -> list[Policy]:
    return parse_policies([dict(b) for b in DEFAULT_POLICY_BODIES])


def read_policy_bodies(path: str | Path) -> list[dict]:
    """The bodies in a policy file. JSON: a list (or one object, or a line per body);
    TOML: `[[policy]]` tables with `type` and `[policy.rules]`."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyError(str(path), f"cannot read: {exc.strerror}") from None
    if path.suffix.lower() == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(str(path), f"invalid TOML: {exc}") from None
        unknown = set(data) - {"policy"}
        if unknown:
            raise PolicyError(sorted(unknown)[0], "unknown top-level key; policies go in [[policy]] tables")
        return list(data.get("policy", []))
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:  # one body per line, as the seed documents print them
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise PolicyError(str(path), f"invalid JSON: {exc}") from None
    return [data] if isinstance(data, dict) else data


def load_policy_file(path: str | Path) -> list[Policy]:
    return parse_policies(read_policy_bodies(path))
