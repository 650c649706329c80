"""Where and when entries are allowed: listed markets, a trading window."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator, model_validator

from engine.domain.coins import canonical_coin
from engine.domain.model import Reason
from engine.risk.policies.base import RULES_CONFIG, Fast, Policy, Rules
from engine.risk.projection import Projection


class MarketEntry(BaseModel):
    """WAIaaS form: `markets: [{"market": "BTC-USD"}]`."""

    model_config = RULES_CONFIG
    market: str


class AllowedMarketsRules(Rules):
    allowedMarkets: list[str] | None = Field(default=None, description="Markets where entries are allowed (aliases welcome)")
    markets: list[MarketEntry] | None = Field(default=None, description="WAIaaS form of the same list")

    @model_validator(mode="after")
    def _one_list(self) -> AllowedMarketsRules:
        if self.allowedMarkets is None and self.markets is None:
            raise ValueError("give allowedMarkets (or WAIaaS markets)")
        return self

    def coins(self) -> frozenset[str]:
        names = list(self.allowedMarkets or []) + [m.market for m in self.markets or []]
        return frozenset(canonical_coin(n) for n in names)


class PerpAllowedMarkets(Policy):
    type = "PERP_ALLOWED_MARKETS"
    Rules = AllowedMarketsRules
    __slots__ = ("_coins",)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._coins = self.rules.coins()

    def evaluate(self, p: Projection) -> Reason | None:
        if p.reducing or p.coin in self._coins:
            return None
        return self.deny("MARKET_NOT_ALLOWED",
                         f"{p.coin} is not in PERP_ALLOWED_MARKETS ({', '.join(sorted(self._coins))})",
                         ",".join(sorted(self._coins)), p.coin)

    def fast(self, counters) -> Fast:
        return Fast("coin in $coins", {"coins": self._coins})


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _minutes(value: int | str, field: str) -> int:
    if isinstance(value, int):
        if not 0 <= value <= 24:
            raise ValueError(f"{field} hour must be within 0..24")
        return value * 60
    try:
        hh, mm = value.split(":")
        h, m = int(hh), int(mm)
    except ValueError:
        raise ValueError(f"{field} must be an hour (0..24) or 'HH:MM'") from None
    if not (0 <= h <= 24 and 0 <= m < 60) or h * 60 + m > 1440:
        raise ValueError(f"{field} must be within 00:00..24:00")
    return h * 60 + m


class HoursWindow(BaseModel):
    model_config = RULES_CONFIG
    start: int | str = Field(description="Hour 0..24 or 'HH:MM', local time")
    end: int | str = Field(description="Hour 0..24 or 'HH:MM'; before start means the window spans midnight")

    @model_validator(mode="after")
    def _valid(self) -> HoursWindow:
        _minutes(self.start, "start")
        _minutes(self.end, "end")
        return self


class TimeRestrictionRules(Rules):
    allowedHours: HoursWindow | None = None
    allowedDays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] | None = Field(
        default=None, description="Three-letter lower-case day names")
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v


class TimeRestriction(Policy):
    type = "TIME_RESTRICTION"
    Rules = TimeRestrictionRules
    judges_state = False
    __slots__ = ("_zone", "_start", "_end", "_days", "_known")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        r: TimeRestrictionRules = self.rules
        self._zone = ZoneInfo(r.timezone)
        self._start = _minutes(r.allowedHours.start, "start") if r.allowedHours else None
        self._end = _minutes(r.allowedHours.end, "end") if r.allowedHours else None
        self._days = frozenset(_DAYS.index(d) for d in r.allowedDays) if r.allowedDays is not None else None
        self._known = (0.0, 0.0, False)  # (from, until, open): the answer for one local minute

    def is_open(self, at: float) -> bool:
        since, until, known = self._known
        if since <= at < until:
            return known
        local = datetime.fromtimestamp(at, self._zone)
        answer = self._open_at(local)
        # The answer holds for the rest of this local minute; a millisecond is kept clear of
        # each end so the rounding of `at` to microseconds cannot carry it over a boundary.
        start = at - local.second - local.microsecond / 1e6
        self._known = (start + 0.001, start + 59.999, answer)
        return answer

    def _open_at(self, local: datetime) -> bool:
        if self._days is not None and local.weekday() not in self._days:
            return False
        if self._start is None:
            return True
        minute = local.hour * 60 + local.minute
        if self._start <= self._end:
            return self._start <= minute < self._end
        return minute >= self._start or minute < self._end  # spans midnight

    def evaluate(self, p: Projection) -> Reason | None:
        if p.reducing or self.is_open(p.now):
            return None
        r: TimeRestrictionRules = self.rules
        window = f"{r.allowedHours.start}-{r.allowedHours.end}" if r.allowedHours else "any hour"
        days = ",".join(r.allowedDays) if r.allowedDays is not None else "every day"
        now = datetime.fromtimestamp(p.now, self._zone).strftime("%a %H:%M")
        return self.deny("OUTSIDE_TRADING_HOURS",
                         f"Entries are allowed {window} on {days} ({r.timezone}) by TIME_RESTRICTION; now {now}",
                         f"{window} {days}", now)

    def fast(self, counters) -> Fast:
        return Fast("$policy.is_open(now)", {"policy": self})
