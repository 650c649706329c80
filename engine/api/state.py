"""The engine's state as bots and consoles see it (`GET /v1/state`, the stream's snapshots, the
console): frozen typed structs, built by `engine.state_view` from the running engine and turned
into JSON only at the edge (`to_json()`, the gateway); a remote console reads them back with
`EngineState.from_json(...)`.

Units: money USD, sizes signed base units (long > 0), shares and buffers fractions, times epoch
seconds, durations seconds. `None` means unknown (no mark, no equity), never zero.

    state = EngineState.from_json(client.state())
    state.account.margin_buffer, [p.coin for p in state.positions], state.approvals
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.domain.model import TradingState


class _Struct(BaseModel):
    # Frozen: a picture of one moment. Unknown fields from a newer engine are ignored, so an
    # older console can attach to it.
    model_config = ConfigDict(frozen=True, extra="ignore")


class StopCause(_Struct):
    """Why trading is stopped: `cause` (`margin_buffer`, `loss_limit:daily`, ...), when it lifts
    by itself (`until`, None if only a buffer recovery or `resume` lifts it), `latched` when only
    `resume` does."""

    cause: str
    until: float | None = None
    latched: bool = False


class AccountView(_Struct):
    """The account: its `address` (0x + 40 hex, lower case: the guarded account on Hyperliquid,
    the paper account's own on paper, stable across restarts), equity and maintenance margin USD,
    the margin buffer `(equity - maintenance) / equity`, account leverage (gross / equity), the
    peak equity the drawdown is measured from, and the MIN_MARGIN_BUFFER thresholds in force
    (None: no such policy)."""

    address: str | None = None

    equity: float | None = None
    maintenance_margin: float | None = None
    margin_buffer: float | None = None
    account_leverage: float | None = None
    peak_equity: float | None = None
    warn_buffer: float | None = None
    panic_buffer: float | None = None
    target_buffer: float | None = None
    mode: str = "standard"  # standard | unified | portfolio (how the venue margins the account)


class DeadManView(_Struct):
    """The venue's dead-man switch: `armed` until `until` (epoch s), else `reason` says why not:
    `refused` by the venue (too little volume, its daily cap reached), or kept cleared by
    perpguard (`disarmed: ...`: venue stops protect the positions and it would cancel them;
    `cleared` on a clean stop). `fired_today` of `daily_cap` fires."""

    armed: bool = False
    until: float | None = None
    reason: str | None = None
    fired_today: int = 0
    daily_cap: int = 10
    refused: bool = False


class VenueStopView(_Struct):
    """The stop resting on the venue for a position: its trigger price USD and order id."""

    trigger_px: float
    oid: str


class PositionRow(_Struct):
    """One open position, valued at mark: `distance` is |mark - liquidation| / mark.
    `venue_stop` is the stop resting on the venue for it (VENUE_STOP), None if there is none:
    then `unprotected` is true when VENUE_STOP is in force (the position should have one)."""

    coin: str
    side: str  # long | short
    size: float
    entry_px: float
    mark_px: float | None = None
    notional: float | None = None
    leverage: float | None = None
    margin_mode: str = "cross"
    unrealized_pnl: float | None = None
    liquidation_px: float | None = None
    distance: float | None = None
    venue_stop: VenueStopView | None = None
    unprotected: bool = False


class OrderRow(_Struct):
    """A resting order on the venue (size unsigned base units, limit USD)."""

    oid: str
    coin: str
    side: str
    size: float
    limit_px: float
    reduce_only: bool = False


class BreakerRow(_Struct):
    """Usage of a counting rule: `used` against `limit` in `unit` (USD, ratio, or a count when
    blank), whether it has tripped, and the cooldown left."""

    policy_id: str
    type: str
    name: str
    used: float | None = None
    limit: float | None = None
    unit: str = ""
    tripped: bool = False
    cooldown_seconds: float = 0.0


class PendingRow(_Struct):
    """A held order: DELAY (released at `execute_at` after re-evaluation) or APPROVAL (waits for
    a human until `expires_at`). `intent` is the order as submitted."""

    id: str
    tier: str  # DELAY | APPROVAL
    status: str
    market: str
    side: str
    size: float | None = None
    notional_usd: float | None = None
    intent: dict[str, Any] = {}
    created_at: float
    execute_at: float | None = None
    expires_at: float | None = None
    reason: str = ""
    outcome: str | None = None
    closed_at: float | None = None


class FlatteningView(_Struct):
    """A panic exit (the kill switch) still flattening the account: the round it is on
    (`attempt`, counted since this engine started), since when (epoch s), why (`cause`), the
    positions still open, and when the next round starts (None while one runs)."""

    attempt: int
    since: float
    cause: str
    positions: int = 0
    next_attempt_at: float | None = None


class EngineState(_Struct):
    """Everything a trader watches, at `time`."""

    time: float
    trading_state: TradingState
    causes: tuple[StopCause, ...] = ()
    halt_cause: str | None = None
    account: AccountView = AccountView()
    positions: tuple[PositionRow, ...] = ()
    open_orders: tuple[OrderRow, ...] = ()
    breakers: tuple[BreakerRow, ...] = ()
    pending: tuple[PendingRow, ...] = ()
    feed_age_seconds: float | None = None
    feed_stale: bool = False
    liquidated: bool = False
    dead_man: DeadManView = DeadManView()
    agent_expires_at: float | None = None  # when the API wallet stops being accepted (None: never)
    flattening: FlatteningView | None = None  # a panic exit still flattening the account (None: not flattening)

    @property
    def approvals(self) -> int:
        """Held orders waiting for a human."""
        return sum(1 for p in self.pending if p.tier == "APPROVAL")

    @property
    def unprotected(self) -> int:
        """Open positions that should carry a venue stop and do not."""
        return sum(1 for p in self.positions if p.unprotected)

    @property
    def tripped(self) -> int:
        """Breakers that have tripped."""
        return sum(1 for b in self.breakers if b.tripped)

    def to_json(self) -> dict:
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: dict) -> EngineState:
        """Read a picture the gateway sent (raises pydantic's ValidationError if it is not one)."""
        return cls.model_validate(data)
