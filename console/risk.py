"""Which colour a figure earns: `ok`, `warn` or `breach` (painted with the theme's `$risk-ok`,
`$risk-warn`, `$risk-breach`). Colour is never the only cue: every breach also reads in words
or signs (TRIPPED, HALTED, a minus sign)."""

from __future__ import annotations

from engine.domain.events import EventKind
from engine.domain.model import TradingState
from engine.live.pending import PendingStatus

OK, WARN, BREACH, MUTED = "ok", "warn", "breach", "muted"
GAIN, LOSS = "gain", "loss"  # money made or lost: coloured, never shouted
LEVELS = (OK, WARN, BREACH)

DISTANCE_BREACH = 0.05  # mark within 5% of the liquidation price
DISTANCE_WARN = 0.15  # within 15%: a normal day's move for an alt
USAGE_WARN = 0.8  # a breaker's counter at 80% of its limit

# Event kinds are a StrEnum: the dicts the link hands over carry the plain value, equal to the member.
BREACH_EVENTS = frozenset({EventKind.BREAKER_TRIPPED, EventKind.ENGINE_ERROR, EventKind.LIQUIDATED,
                           EventKind.PANIC_STARTED, EventKind.PANIC_DONE, EventKind.ORDER_DENIED,
                           EventKind.ORDER_REJECTED, EventKind.REDUCE_FAILED})
WARN_EVENTS = frozenset({EventKind.DERISK_ORDERED, EventKind.DERISK_SKIPPED, EventKind.FEED_STALE,
                         EventKind.PENDING_ADDED, EventKind.NOTIFIED, EventKind.ORDER_CANCELLED,
                         EventKind.STATE_CHANGED})
OK_EVENTS = frozenset({EventKind.FEED_RESTORED, EventKind.ENGINE_STARTED, EventKind.ORDER_SENT,
                       EventKind.REDUCE_FILLED})
STATE_LEVELS = {TradingState.ACTIVE: OK, TradingState.REDUCE_ONLY: WARN, TradingState.HALTED: BREACH}


def distance_level(distance: float | None) -> str:
    """Distance to liquidation, |mark - liq| / mark. No liquidation price at all is fine."""
    if distance is None:
        return OK
    if distance < DISTANCE_BREACH:
        return BREACH
    if distance < DISTANCE_WARN:
        return WARN
    return OK


def buffer_level(buffer: float | None, warn: float | None, panic: float | None) -> str:
    if buffer is None:
        return MUTED
    if panic is not None and buffer < panic:
        return BREACH
    if warn is not None and buffer < warn:
        return WARN
    return OK


def usage_level(used: float | None, limit: float | None, tripped: bool) -> str:
    if tripped:
        return BREACH
    if used is None or not limit:
        return OK
    return WARN if used / limit >= USAGE_WARN else OK


def state_level(trading_state: TradingState | str | None) -> str:
    """ACTIVE ok, REDUCE_ONLY warn, HALTED breach (a state's plain value, as events carry it, too)."""
    try:
        return STATE_LEVELS[TradingState(trading_state)]
    except ValueError:
        return MUTED


def pnl_level(pnl: float | None) -> str:
    if pnl is None or pnl == 0:
        return MUTED
    return GAIN if pnl > 0 else LOSS


def event_level(event: dict) -> str:
    """The colour of an event's label in the log (events reach the console as dicts)."""
    kind = event.get("kind", "")
    if kind == EventKind.PENDING_CLOSED:
        return OK if event.get("status") == PendingStatus.EXECUTED else WARN
    if kind == EventKind.STATE_CHANGED:
        level = state_level(event.get("state"))
        return WARN if level == MUTED else level
    if kind in BREACH_EVENTS:
        return BREACH
    if kind in WARN_EVENTS:
        return WARN
    if kind in OK_EVENTS:
        return OK
    return MUTED
