"""Domain values: immutable, small, with units in their docstrings.

Sign convention everywhere: position `size` is signed base units (long > 0, short < 0);
`side` of an order is `buy` (+1) or `sell` (-1). Money is USD. Fractions are 0..1 (0.05 = 5%).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Annotated, Literal, NamedTuple

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.domain.coins import canonical_coin
from engine.domain.margin import MarginTable


# C0 controls (NUL, newline, escape, ...), DEL and the C1 block.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LAYOUT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # tab and newline allowed


def _no_control(value: str, pattern: re.Pattern[str], what: str) -> str:
    found = pattern.search(value)
    if found:
        raise ValueError(f"{what} must not contain control characters "
                         f"(U+{ord(found.group()):04X} at position {found.start()})")
    return value


def printable(value: str) -> str:
    """`value` unchanged, or ValueError if it holds a control character. Names and ids travel
    into logs, the audit chain, the console and HTTP headers, where a NUL truncates and a
    newline forges a line."""
    return _no_control(value, _CONTROL, "a name")


def printable_text(value: str) -> str:
    """As `printable`, but tabs and newlines are allowed (free text such as a description)."""
    return _no_control(value, _CONTROL_BUT_LAYOUT, "text")


Name = Annotated[str, AfterValidator(printable)]
Text = Annotated[str, AfterValidator(printable_text)]


class Verdict(str, enum.Enum):
    ALLOW = "ALLOW"
    DENY = "DENY"


class Tier(str, enum.Enum):
    """How an allowed order is released. Ordered: a higher tier wins."""

    INSTANT = "INSTANT"
    NOTIFY = "NOTIFY"
    DELAY = "DELAY"
    APPROVAL = "APPROVAL"

    @property
    def rank(self) -> int:
        return _TIER_RANK[self]


_TIER_RANK = {Tier.INSTANT: 0, Tier.NOTIFY: 1, Tier.DELAY: 2, Tier.APPROVAL: 3}


class TradingState(str, enum.Enum):
    ACTIVE = "ACTIVE"
    REDUCE_ONLY = "REDUCE_ONLY"  # "stop trading": no new risk, exits allowed
    HALTED = "HALTED"  # kill switch: nothing but the engine's own flattening


class MarginMode(str, enum.Enum):
    CROSS = "cross"
    ISOLATED = "isolated"


class BuilderFee(BaseModel):
    """Hyperliquid's builder code on an order: the builder's address and its fee in tenths of a
    basis point (10 = 0.01% of the notional), which the account must have approved."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    address: str = Field(pattern=r"^0x[0-9a-f]{40}$")
    fee: int = Field(ge=0, le=1000)


class OrderIntent(BaseModel):
    """What a bot asks for. Exactly one of `size` (base units) or `notional_usd` (USD).

    Strict, because a lenient reading turns a typo into an order: numbers are JSON numbers
    (ints are fine; `true` is not 1 and numeric strings such as `"0.5"` are refused), booleans
    are JSON booleans (`"yes"` is refused), every number is finite, and names hold no control
    characters."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, strict=True,
                              allow_inf_nan=False)

    market: Name = Field(description="Coin or alias: BTC, BTC-USD, BTC-PERP, BTC/USD")
    side: Literal["buy", "sell"]
    size: float | None = Field(default=None, gt=0, allow_inf_nan=False, description="Base units")
    notional_usd: float | None = Field(default=None, gt=0, allow_inf_nan=False, description="USD at the order price")
    type: Literal["market", "limit"] = "market"
    limit_px: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    reduce_only: bool = False
    leverage: float | None = Field(default=None, ge=1, allow_inf_nan=False, description="Leverage the order sets on its market")
    margin_mode: Literal["cross", "isolated"] | None = Field(
        default=None, description="Margin the entry opens with: isolated-only markets (HIP-3) need isolated")
    stop_loss: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    take_profit: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    trailing_stop: float | None = Field(
        default=None, gt=0, lt=1, allow_inf_nan=False,
        description="Trail the position's venue stop this fraction behind the best mark since the fill (only ever tightens)")
    tif: Literal["Gtc", "Ioc", "Alo"] | None = Field(
        default=None, description="A limit order's time in force: Gtc (default), Ioc, or Alo (post-only)")
    trigger_px: float | None = Field(
        default=None, gt=0, allow_inf_nan=False,
        description="A reduce-only trigger order (a bot's own stop-loss / take-profit): it rests until the mark "
                    "reaches this price, then executes as `type` says (market, or limit at limit_px)")
    tpsl: Literal["tp", "sl"] | None = Field(default=None, description="A trigger order's kind: sl or tp")
    client_id: Name | None = Field(default=None, min_length=1, max_length=128)
    builder: BuilderFee | None = Field(
        default=None, description="A builder fee the order pays on Hyperliquid (only builders in [engine] "
                                  "hl_builders: the Hyperliquid-compatible API strips any other)")
    category: Name = Field(default="derivatives", min_length=1, max_length=64)
    dry_run: bool = False
    bot: Name | None = Field(
        default=None, min_length=1, max_length=64,
        description="the registered bot the order came from; set by the gateway from the caller, a body's value is "
                    "replaced (a bot token's orders carry the token's name; the master's keep the body's value). "
                    "Policies scoped to this bot judge it on top of the account's")

    @field_validator("market")
    @classmethod
    def _canonical_market(cls, value: str) -> str:
        return canonical_coin(value)

    @model_validator(mode="after")
    def _one_amount_and_a_price(self) -> OrderIntent:
        if (self.size is None) == (self.notional_usd is None):
            raise ValueError("give exactly one of size or notional_usd")
        if self.type == "limit" and self.limit_px is None:
            raise ValueError("limit_px is required for a limit order")
        if self.tif is not None and self.type != "limit":
            raise ValueError("tif is for limit orders (a market order is Ioc)")
        if (self.trigger_px is None) != (self.tpsl is None):
            raise ValueError("a trigger order needs both trigger_px and tpsl")
        if self.trigger_px is not None and not self.reduce_only:
            raise ValueError("a trigger order must be reduce_only (it protects a position)")
        return self

    @property
    def sign(self) -> int:
        return 1 if self.side == "buy" else -1


@dataclass(frozen=True, slots=True)
class Mark:
    """Mark price of a coin (USD) and when it was observed (epoch seconds)."""

    coin: str
    px: float
    time: float


@dataclass(frozen=True, slots=True)
class Position:
    """An open perpetual position as the venue reports it.

    `size` signed base units; `entry_px` USD; `leverage` the market's leverage setting;
    `isolated_margin` the USD backing an isolated position (Hyperliquid's `marginUsed`,
    which includes its unrealized PnL), None for cross.
    """

    coin: str
    size: float
    entry_px: float
    leverage: float | None = None
    margin_mode: MarginMode = MarginMode.CROSS
    isolated_margin: float | None = None
    max_leverage: float | None = None
    unrealized_pnl: float | None = None
    cum_funding: float | None = None

    @property
    def side(self) -> str:
        return "long" if self.size > 0 else "short"


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """A resting order on the venue. `size` unsigned remaining base units."""

    oid: str
    coin: str
    side: Literal["buy", "sell"]
    size: float
    limit_px: float
    reduce_only: bool = False
    client_id: str | None = None
    trigger_px: float | None = None  # a trigger order (stop-loss / take-profit) resting until the mark fires it
    tpsl: str | None = None  # "sl" | "tp" for a trigger order


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a policy spoke. `effect` is DENY, or TIER (asks for a release tier; NOTIFY is
    how a warning threshold speaks)."""

    policy_id: str
    type: str
    code: str
    message: str
    limit: float | str | None = None
    value: float | str | None = None
    effect: Literal["DENY", "TIER"] = "DENY"
    tier: Tier | None = None
    hold_seconds: float | None = None  # DELAY: seconds to wait; APPROVAL: seconds before it expires
    field: str | None = None  # the intent's field a VALIDATION reason names

    def as_dict(self) -> dict:
        body = {
            "policy_id": self.policy_id,
            "type": self.type,
            "code": self.code,
            "message": self.message,
            "limit": self.limit,
            "value": self.value,
            "effect": self.effect,
        }
        if self.field is not None:
            body["field"] = self.field
        return body


class Projected(NamedTuple):
    """The account after a full fill of the order. None means the figure could not be computed.
    (A NamedTuple, not a frozen dataclass: as immutable, and five times cheaper to build on
    the order path.)"""

    position_size: float | None
    position_notional: float | None
    gross_notional: float | None
    equity: float | None
    account_leverage: float | None
    market_leverage: float | None
    margin_buffer: float | None
    liquidation_px: float | None
    distance: float | None

    def as_dict(self) -> dict:
        return self._asdict()


class Decision(NamedTuple):
    """The gate's answer (a NamedTuple for the same reason as Projected). `size` is what would be sent (clamped for reducing orders), base units;
    `px` the order price (limit price, or the slippage-capped IOC price of a market order)."""

    verdict: Verdict
    tier: Tier
    reasons: tuple[Reason, ...]
    projected: Projected
    intent: OrderIntent
    coin: str
    size: float | None
    px: float | None
    notional: float | None
    reducing: bool
    at: float
    hold_seconds: float | None = None  # DELAY: wait before re-check; APPROVAL: time before it expires

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOW

    @property
    def denials(self) -> tuple[Reason, ...]:
        return tuple(r for r in self.reasons if r.effect == "DENY")

    def as_dict(self) -> dict:
        return {
            "verdict": self.verdict.value,
            "tier": self.tier.value,
            "reasons": [r.as_dict() for r in self.reasons],
            "projected": self.projected.as_dict(),
            "market": self.coin,
            "size": self.size,
            "px": self.px,
            "notional": self.notional,
            "reducing": self.reducing,
            "hold_seconds": self.hold_seconds,
            "at": self.at,
        }

    def error_body(self) -> dict:
        """The SPEC section 9/11 error shape for a denial.

        The code is the state's (`HALTED`, `REDUCE_ONLY`) when the state denied, else
        `VALIDATION` (naming the field) when the order itself is wrong, else
        `POLICY_DENIED` when any rule was breached, else `DATA_UNAVAILABLE` when only missing
        data stood in the way (that one is retryable)."""
        denials = self.denials
        by_code = {r.code: r for r in reversed(denials)}
        for code in ("HALTED", "REDUCE_ONLY"):
            if code in by_code:
                return _error(code, by_code[code].message, denials)
        if "VALIDATION" in by_code:  # the order itself is wrong (a stop on the wrong side): say which field
            reason = by_code["VALIDATION"]
            return _error("VALIDATION", reason.message, denials, reason.field)
        breaches = [r for r in denials if r.code != "DATA_UNAVAILABLE"]
        if breaches:
            return _error("POLICY_DENIED", breaches[0].message, denials)
        first = denials[0] if denials else None
        return _error("DATA_UNAVAILABLE", first.message if first else "denied", denials)


def _error(code: str, message: str, denials: tuple[Reason, ...], field: str | None = None) -> dict:
    details: dict = {"field": field} if field else {}
    details["reasons"] = [r.as_dict() for r in denials]
    return {
        "error": {
            "code": code,
            "message": message,
            "domain": "REQUEST" if code == "VALIDATION" else "POLICY",
            "retryable": code == "DATA_UNAVAILABLE",
            "details": details,
        }
    }


@dataclass(frozen=True, slots=True)
class TradingStateChanged:
    """A transition of the trading state, with its cause (persisted; survives restart)."""

    previous: TradingState
    state: TradingState
    cause: str
    at: float
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Account:
    """Account figures as the venue reports them (USD).

    `account_value` is the whole account (Hyperliquid `marginSummary.accountValue`: cross
    collateral plus isolated margins); `cross_account_value` the cross part only.
    """

    account_value: float
    cross_account_value: float | None = None
    withdrawable: float | None = None
    time: float | None = None


@dataclass(frozen=True, slots=True)
class MarketInfo:
    """What the venue says about a market: lot size and margin tiers."""

    coin: str
    sz_decimals: int | None
    margin_table: MarginTable | None  # None: the venue did not say
    only_isolated: bool = False
