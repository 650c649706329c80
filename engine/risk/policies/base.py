"""What every policy shares: the rules model config, the registry, and how reasons are made.

A policy evaluates one Projection and returns a Reason (deny, a tier request, a warning) or
None. Entry rules judge only risk-increasing orders: a reducing order passes them (SPEC 3).

A policy also states, as a Python expression (`fast`), when it has nothing to say about an
entry; the gate compiles every policy's expression into one function (engine/risk/policies/compiled.py)
and asks for reasons only when that function is false.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

from pydantic import BaseModel, ConfigDict

from engine.risk.counters import RiskCounters
from engine.domain.coins import DEFAULT_MARKET_KEY, canonical_coin
from engine.domain.model import Reason, Tier
from engine.risk.projection import Projection

# Numbers: ints are accepted where floats are asked; strings and booleans are not ("mistyped
# fields rejected"), nor NaN or infinity (JSON `1e309` reads as infinity): a NaN limit passes
# every comparison, so it would be no limit at all.
RULES_CONFIG = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

# A figure equal to its limit is allowed; this keeps float noise from denying it.
TOLERANCE = 1e-9

POLICY_TYPES: dict[str, type[Policy]] = {}


class Rules(BaseModel):
    model_config = RULES_CONFIG


def ceiling(limit: float) -> float:
    """The largest figure a limit lets through (a figure equal to it passes, float noise too)."""
    return limit + abs(limit) * TOLERANCE


def floor(limit: float) -> float:
    """The smallest figure a minimum lets through."""
    return limit - abs(limit) * TOLERANCE


def exceeds(value: float, limit: float) -> bool:
    return value > ceiling(limit)


def below(value: float, limit: float) -> bool:
    return value < floor(limit)


# ---- the fast form (compiled by engine/risk/policies/compiled.py) -------------------------------

class Fast(NamedTuple):
    """`expr` is true exactly when `evaluate` returns None for a risk-increasing order. It reads
    the projection's figures by name (compiled.PROJECTED) and `$name`s: those in `names` are
    bound once when the policies are compiled (a fixed limit as its `ceiling` or `floor`); any
    other `$name` is a temporary (`:=`)."""

    expr: str
    names: dict[str, Any] = {}


def exceeds_src(value: str, limit: str) -> str:
    """`exceeds(value, limit)` as source, for a limit computed per order (`ceiling` written
    out, operation for operation, so the figure it compares is the same float)."""
    return f"{value} > {limit} + abs({limit}) * {TOLERANCE!r}"


def below_src(value: str, limit: str) -> str:
    """`below(value, limit)` as source (`floor` written out)."""
    return f"{value} < {limit} - abs({limit}) * {TOLERANCE!r}"


def fmt(value: float | None) -> str:
    """A number as a trader reads it: 50000, 61250.5, 0.05, 3.33333."""
    if value is None:
        return "unknown"
    if abs(value) >= 1e5:
        text = f"{value:.2f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return f"{value:.6g}"


def market_keyed(mapping: dict[str, float]) -> dict[str, float]:
    """Canonicalise the market keys of a rules map (`BTC-USD` -> `BTC`; `ALT-USD` -> `ALT`)."""
    return {canonical_coin(k): v for k, v in mapping.items()}


def per_market(mapping: dict[str, float], coin: str, fallback: float | None) -> float | None:
    """A market's own limit, else the `ALT` default, else the fallback."""
    value = mapping.get(coin)
    if value is None:
        value = mapping.get(DEFAULT_MARKET_KEY, fallback)
    return value


def bot_metric(metric: str, bot: str) -> str:
    """A counter of one bot's orders only (`submissions@alpha`), for its scoped policies."""
    return f"{metric}@{bot}"


class Policy:
    """Base class. Subclasses set `type`, `Rules`, and implement `evaluate`."""

    type: ClassVar[str]
    Rules: ClassVar[type[Rules]]
    # True when the rule judges the account's state (so `report` can ask it about a snapshot);
    # False when it judges only the order (stop loss, order size, tier, ...).
    judges_state: ClassVar[bool] = True

    __slots__ = ("id", "rules", "enabled", "account", "bot")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "type" in cls.__dict__:
            POLICY_TYPES[cls.type] = cls

    def __init__(self, id: str, rules: Rules, enabled: bool = True, account: str | None = None,
                 bot: str | None = None) -> None:
        self.id = id
        self.rules = rules
        self.enabled = enabled
        self.account = account
        self.bot = bot  # None: the account's; else it judges only that bot's orders (OrderIntent.bot)

    def metric(self, name: str) -> str:
        """The counter `name` ("submissions", "spend", "spend:<category>") as this policy counts
        it: the account's, or for a bot-scoped policy that bot's own orders only."""
        return name if self.bot is None else bot_metric(name, self.bot)

    def evaluate(self, p: Projection) -> Reason | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def fast(self, counters: RiskCounters) -> Fast:
        """When this policy has nothing to say about an entry (see Fast); `counters` are the
        gate's, for the rolling windows it reads. The default asks `evaluate`, so a policy
        without a fast form is still judged, only not as fast."""
        return Fast("$policy.evaluate(p) is None", {"policy": self})

    def windows(self) -> list[tuple[str, float]]:
        """The rolling counters (metric, seconds) this policy reads."""
        return []

    def vol_lookback_minutes(self) -> int:
        return 0

    # ---- reasons -------------------------------------------------------------------------

    def deny(self, code: str, message: str, limit: Any = None, value: Any = None) -> Reason:
        return Reason(self.id, self.type, code, message, limit, value, "DENY")

    def ask_tier(self, tier: Tier, code: str, message: str, limit: Any = None, value: Any = None,
                 hold_seconds: float | None = None) -> Reason:
        return Reason(self.id, self.type, code, message, limit, value, "TIER", tier, hold_seconds)

    def unavailable(self, what: str) -> Reason:
        return Reason(self.id, self.type, "DATA_UNAVAILABLE",
                      f"{self.type} cannot compute {what}: new risk is denied until it can", None, None, "DENY")

    def as_body(self) -> dict:
        """The policy as a file/API body (rules by their wire names)."""
        return {
            "id": self.id,
            "type": self.type,
            "rules": self.rules.model_dump(mode="json", by_alias=True, exclude_none=True),
            "enabled": self.enabled,
            **({"account": self.account} if self.account else {}),
            **({"bot": self.bot} if self.bot else {}),
        }
