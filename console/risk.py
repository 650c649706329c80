"""Which colour a figure earns: `ok`, `warn` or `breach` (painted with the theme's `$risk-ok`,
`$risk-warn`, `$risk-breach`). Colour is never the only cue: every breach also reads in words
or signs (TRIPPED, HALTED, a minus sign)."""

from __future__ import annotations

OK, WARN, BREACH, MUTED = "ok", "warn", "breach", "muted"
GAIN, LOSS = "gain", "loss"  # money made or lost: coloured, never shouted
LEVELS = (OK, WARN, BREACH)

DISTANCE_BREACH = 0.05  # mark within 5% of the liquidation price
DISTANCE_WARN = 0.15  # within 15%: a normal day's move for an alt
USAGE_WARN = 0.8  # a breaker's counter at 80% of its limit

BREACH_EVENTS = frozenset({"breaker_tripped", "engine_error", "liquidated", "panic_exit", "panic_done",
                           "order_denied", "order_rejected", "reduce_failed"})
WARN_EVENTS = frozenset({"derisk_order", "derisk_skipped", "feed_stale", "pending_added", "notify",
                         "order_cancelled", "state_changed"})
OK_EVENTS = frozenset({"feed_restored", "engine_started", "order_sent", "reduce_filled"})


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


def state_level(trading_state: str | None) -> str:
    return {"ACTIVE": OK, "REDUCE_ONLY": WARN, "HALTED": BREACH}.get(trading_state or "", MUTED)


def pnl_level(pnl: float | None) -> str:
    if pnl is None or pnl == 0:
        return MUTED
    return GAIN if pnl > 0 else LOSS


def event_level(event: dict) -> str:
    kind = event.get("kind", "")
    if kind == "pending_closed":
        return OK if event.get("status") == "EXECUTED" else WARN
    if kind == "state_changed":
        return {"HALTED": BREACH, "REDUCE_ONLY": WARN, "ACTIVE": OK}.get(event.get("state", ""), WARN)
    if kind in BREACH_EVENTS:
        return BREACH
    if kind in WARN_EVENTS:
        return WARN
    if kind in OK_EVENTS:
        return OK
    return MUTED
