"""The largest size of an intent the gate would allow now (`POST /v1/size`, the client's
`size()`), and the seed sizing formulas of SPEC section 4 (engine.domain.margin).

The answer comes from the gate itself: a bisection in whole lots of the market
(10^-szDecimals base units) on `RiskGate.evaluate` being ALLOW, between one lot and a cap of
`equity × the market's max leverage / price` (plus the open position, for an order against it).
The caps that matter (leverage, position and exposure caps, margin buffer, spending budgets)
only tighten as the size grows, so the boundary found is the largest allowed size; where a rule
is not monotone the answer is still an allowed size with one lot more denied. Every
evaluation is at one instant and the gate's evaluation is pure: nothing is recorded, nothing
counts toward the rate limit. At most `MAX_EVALUATIONS` evaluations (a few µs each).

Units: sizes in base units (unsigned), prices and notionals in USD, shares as fractions of
equity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.domain.coins import canonical_coin
from engine.domain.increments import MIN_ORDER_USD, on_lot
from engine.domain.margin import fractional_kelly, kelly_fraction, risk_based_size
from engine.domain.model import Decision, Name, OrderIntent, Reason, TradingState
from engine.risk.gate import RiskGate

# A market without a margin table is bounded as if it allowed this leverage (Hyperliquid's highest).
FALLBACK_MAX_LEVERAGE = 50.0
MAX_LOTS = 2 ** 38  # the search never looks past this many lots: ≤ 40 evaluations in all
MAX_EVALUATIONS = 40
MAX_REPORTED_SIZE = 1e15  # a formula's size past this (a stop a hair from the entry) is reported as this

# The intent fields that have no place in a size question: the answer is the size, and it acts on nothing.
NOT_ASKED = frozenset({"size", "notional_usd", "client_id", "dry_run", "builder"})


class SizingError(ValueError):
    """The request cannot be answered as asked; `field` names the body key (422 VALIDATION)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class SizeRequest(BaseModel):
    """An order intent without its size (`POST /v1/size`), plus the inputs of the seed formulas.

    As strict as `OrderIntent`: numbers are JSON numbers, every number is finite, names hold
    no control characters, unknown keys (and `size`, `notional_usd`, `client_id`, `dry_run`)
    are refused naming the key."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, strict=True,
                              allow_inf_nan=False)

    market: Name = Field(description="Coin or alias: BTC, BTC-USD, BTC-PERP, BTC/USD")
    side: Literal["buy", "sell"]
    type: Literal["market", "limit"] = "market"
    limit_px: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    reduce_only: bool = False
    leverage: float | None = Field(default=None, ge=1, allow_inf_nan=False, description="Leverage the order sets on its market")
    margin_mode: Literal["cross", "isolated"] | None = None
    stop_loss: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    take_profit: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    trailing_stop: float | None = Field(default=None, gt=0, lt=1, allow_inf_nan=False)
    tif: Literal["Gtc", "Ioc", "Alo"] | None = None
    trigger_px: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    tpsl: Literal["tp", "sl"] | None = None
    category: Name = Field(default="derivatives", min_length=1, max_length=64)
    bot: Name | None = Field(default=None, min_length=1, max_length=64,
                             description="size as this bot's order (its scoped policies too); set by the gateway "
                                         "from a bot token, as for POST /v1/orders")
    risk_share: float | None = Field(
        default=None, gt=0, le=1, allow_inf_nan=False,
        description="Risk-based size: the share of equity lost if the stop_loss is hit (0.01 = 1%); needs stop_loss")
    max_position_share: float | None = Field(
        default=None, gt=0, le=1000, allow_inf_nan=False,
        description="Caps the risk-based size at this share of equity × leverage of notional")
    win_probability: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False,
                                          description="Kelly: the chance of a win (with payoff_ratio)")
    payoff_ratio: float | None = Field(default=None, gt=0, le=1e6, allow_inf_nan=False,
                                       description="Kelly: average win / average loss (with win_probability)")
    kelly_fraction: float = Field(default=0.5, gt=0, le=1, allow_inf_nan=False,
                                  description="Fractional Kelly: the share of the Kelly bet (0.5 = half Kelly)")

    @field_validator("market")
    @classmethod
    def _canonical_market(cls, value: str) -> str:
        return canonical_coin(value)

    def problem(self) -> tuple[str, str] | None:
        """(field, message) of the first rule between fields the request breaks, or None."""
        if self.type == "limit" and self.limit_px is None:
            return "limit_px", "limit_px is required for a limit order"
        if self.risk_share is not None and self.stop_loss is None:
            return "stop_loss", "risk_share sizes from the stop distance: give stop_loss too"
        if (self.win_probability is None) != (self.payoff_ratio is None):
            missing = "payoff_ratio" if self.payoff_ratio is None else "win_probability"
            return missing, "Kelly needs both win_probability and payoff_ratio"
        return None

    def intent(self, size: float) -> OrderIntent:
        """The order intent of this request at `size` base units (a dry run)."""
        fields = self.model_dump(include=set(OrderIntent.model_fields) - NOT_ASKED)
        return OrderIntent(**fields, size=size, dry_run=True)


@dataclass(frozen=True, slots=True)
class SizeAnswer:
    """The largest allowed size (base units, on the lot; 0 when nothing is allowed), its decision,
    and `binding`: the first denial one lot above it (None when the search reached `cap`)."""

    request: SizeRequest
    trading_state: TradingState
    sz_decimals: int
    px: float | None
    max_size: Decimal
    cap: Decimal
    decision: Decision | None  # at max_size (None when it is 0)
    binding: Reason | None
    evaluations: int
    equity: float | None

    def formulas(self) -> dict:
        """The seed formulas (engine.domain.margin) at this entry price and equity; a size each
        implies, on the lot, and that size capped at `max_size`."""
        r, px, equity = self.request, self.px, self.equity
        priced = px is not None and px > 0 and equity is not None and equity > 0
        out: dict = {"equity": equity, "entry_px": px, "risk_based": None, "kelly": None}
        if r.risk_share is not None and r.stop_loss is not None:
            size = None
            if priced and px != r.stop_loss:
                size = risk_based_size(equity, r.risk_share, px, r.stop_loss, r.max_position_share, r.leverage or 1.0)
            out["risk_based"] = {"risk_share": r.risk_share, "risk_usd": r.risk_share * equity if equity else None,
                                 "stop_loss": r.stop_loss, "stop_distance": abs(px - r.stop_loss) if px else None,
                                 "max_position_share": r.max_position_share, **self._implied(size)}
        if r.win_probability is not None and r.payoff_ratio is not None:
            full = kelly_fraction(r.win_probability, r.payoff_ratio)
            part = fractional_kelly(r.win_probability, r.payoff_ratio, r.kelly_fraction)
            size, basis = None, "stop_loss" if r.stop_loss is not None else "notional"
            if priced and part > 0:
                # the bet is the share of equity at risk: lost at the stop, or (no stop) the notional itself
                distance = abs(px - r.stop_loss) if r.stop_loss is not None else px
                size = part * equity / distance if distance > 0 else None
            elif priced:
                size = 0.0
            out["kelly"] = {"win_probability": r.win_probability, "payoff_ratio": r.payoff_ratio, "kelly": full,
                            "kelly_fraction": r.kelly_fraction, "fractional_kelly": part, "basis": basis,
                            **self._implied(size)}
        return out

    def _implied(self, size: float | None) -> dict:
        if size is None:
            return {"size": None, "notional_usd": None, "allowed_size": None}
        lots = on_lot(min(size, MAX_REPORTED_SIZE), self.sz_decimals, ROUND_DOWN)
        allowed = min(lots, self.max_size)
        px = self.px or 0.0
        return {"size": float(lots), "notional_usd": float(lots) * px, "allowed_size": float(allowed)}

    def as_dict(self) -> dict:
        d, px = self.decision, self.px
        min_size = None
        if px is not None and px > 0:
            min_size = float(on_lot(min(MIN_ORDER_USD / Decimal(repr(px)), Decimal(MAX_REPORTED_SIZE)),
                                    self.sz_decimals, ROUND_UP))
        return {
            "market": self.request.market,
            "side": self.request.side,
            "trading_state": self.trading_state.value,
            "max_size": float(self.max_size),
            "notional_usd": d.notional if d is not None else 0.0,
            "px": px,
            "tier": d.tier.value if d is not None else None,
            "binding": self.binding.as_dict() if self.binding is not None else None,
            "projected": d.projected.as_dict() if d is not None else None,
            "lot": float(Decimal(1).scaleb(-self.sz_decimals)),
            "min_size": min_size,  # the venue's smallest order at this price (10 USD)
            "cap": float(self.cap),
            "evaluations": self.evaluations,
            "formulas": self.formulas(),
        }


def largest_size(gate: RiskGate, request: SizeRequest, now: float | None = None) -> SizeAnswer:
    """The largest size of `request` the gate allows at `now` (default: the gate's clock).
    Raises SizingError for a request that cannot be answered (a missing field, an unknown
    market, an order the gate calls malformed at any size)."""
    problem = request.problem()
    if problem is not None:
        raise SizingError(*problem)
    book = gate.book
    info = book.markets.get(request.market)
    if info is None or info.sz_decimals is None:
        raise SizingError("market", f"unknown market {request.market} on this venue")
    now = gate.clock.now() if now is None else now
    decimals = info.sz_decimals
    lot = Decimal(1).scaleb(-decimals)
    px = request.limit_px if request.type == "limit" else book.marks.get(request.market)
    equity = book.equity
    evaluations = 0
    base = request.intent(float(lot))  # validated once; each size is a copy of it

    def evaluate(lots: int) -> Decision:
        nonlocal evaluations
        evaluations += 1
        return gate.evaluate(base.model_copy(update={"size": float(lot * lots)}), now)

    def answer(lots: int, decision: Decision | None, binding: Reason | None, cap: int) -> SizeAnswer:
        return SizeAnswer(request, gate.trading.state, decimals, px, lot * lots, lot * cap,
                          decision if lots else None, binding, evaluations, equity)

    first = evaluate(1)
    if not first.allowed:
        body = first.error_body()["error"]
        if body["code"] == "VALIDATION":  # malformed at any size (a stop on the wrong side): as POST /v1/orders
            raise SizingError(body.get("details", {}).get("field") or "body", body["message"])
        return answer(0, None, first.denials[0], 0)
    cap = _cap_lots(gate, request, px, equity, decimals)
    if cap is None:
        return answer(0, None, Reason("gate", "MARKET_DATA", "DATA_UNAVAILABLE",
                                      f"no mark or equity for {request.market}: the size cannot be bounded"), 0)
    if cap <= 1:
        return answer(1, first, None, 1)
    top = evaluate(cap)
    if top.allowed:
        return answer(cap, top, None, cap)
    lo, hi, at_lo, at_hi = 1, cap, first, top  # allowed at lo, denied at hi
    while hi - lo > 1 and evaluations < MAX_EVALUATIONS:
        mid = (lo + hi) // 2
        decision = evaluate(mid)
        if decision.allowed:
            lo, at_lo = mid, decision
        else:
            hi, at_hi = mid, decision
    if hi - lo > 1:  # out of evaluations (not reached below MAX_LOTS): the one just above lo
        at_hi = evaluate(lo + 1)
        if at_hi.allowed:
            return answer(lo + 1, at_hi, None, cap)
    return answer(lo, at_lo, at_hi.denials[0], cap)


def _cap_lots(gate: RiskGate, request: SizeRequest, px: float | None, equity: float | None, decimals: int) -> int | None:
    """The most lots the search looks at: equity × the market's highest leverage / price, plus
    the open position for an order against it; the position alone for an order the gate clamps
    to it (reduce-only, or any exit while trading is stopped). None without a price or equity."""
    lot = Decimal(1).scaleb(-decimals)
    leg = gate.book.leg(request.market)
    held = abs(leg.position.size) if leg is not None else 0.0
    against = held > 0 and (leg.position.size > 0) != (request.side == "buy")
    if against and (request.reduce_only or gate.trading.state is not TradingState.ACTIVE):
        return max(1, int(on_lot(held, decimals, ROUND_DOWN) / lot))
    if px is None or px <= 0 or equity is None or equity <= 0:
        return None
    table = gate.book.margin_table(request.market)
    leverage = table.max_leverage(0.0) if table is not None else FALLBACK_MAX_LEVERAGE
    size = equity * leverage / px + (held if against else 0.0)
    lots = size / float(lot)
    return max(1, min(MAX_LOTS, int(lots))) if math.isfinite(lots) else MAX_LOTS
