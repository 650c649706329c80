"""What the trader is told: the outcome of a command sent through the link, and which engine
events deserve a toast on top of their line in the log (SPEC: NOTIFY shows a console toast)."""

from __future__ import annotations

from console.bindings import BINDINGS, KeyMap
from engine.api.errors import ApiError
from engine.domain.events import EventKind
from engine.domain.model import Tier, TradingState
from engine.live.pending import PendingStatus

TOAST_EVENTS = {
    EventKind.NOTIFIED: "information",
    EventKind.BREAKER_TRIPPED: "error",
    EventKind.PANIC_STARTED: "error",
    EventKind.PANIC_DONE: "error",
    EventKind.LIQUIDATED: "error",
    EventKind.ENGINE_ERROR: "error",
    EventKind.FEED_STALE: "warning",
    EventKind.DERISK_ORDERED: "warning",
}
ERROR_SECONDS, OTHER_SECONDS, APPROVAL_SECONDS = 10.0, 5.0, 10.0  # how long a toast stays up


DEFAULT_KEYS = KeyMap(BINDINGS)


def toast_for(event: dict, keys: KeyMap = DEFAULT_KEYS) -> tuple[str, str, float] | None:
    """(message, severity, seconds) for an event worth interrupting the trader, else None.
    `keys` names the keys that act on it (a user's keymap may move them)."""
    kind = event.get("kind")
    message = str(event.get("message", ""))
    if kind == EventKind.PENDING_ADDED and event.get("tier") == Tier.APPROVAL:
        return (f"{message}: {keys.label('approve')} approves, {keys.label('cancel-pending')} cancels", "warning",
                APPROVAL_SECONDS)
    severity = TOAST_EVENTS.get(kind)
    if severity is None:
        return None
    return message, severity, ERROR_SECONDS if severity == "error" else OTHER_SECONDS


def success_message(verb: str, subject: str, result) -> tuple[str, str]:
    result = result if isinstance(result, dict) else {}
    if verb == "approve":
        status, outcome = result.get("status"), result.get("outcome") or ""
        if status == PendingStatus.EXECUTED:
            return f"Approved and sent: {subject} ({outcome})", "information"
        if status == PendingStatus.DENIED:
            return f"Approved, but the re-check denied it: {outcome}", "warning"
        if status == PendingStatus.FAILED:
            return f"Approved, but the venue refused it: {outcome}", "error"
        return f"Approved: {subject} ({status or 'sent'})", "information"
    if verb == "cancel":
        return f"Cancelled: {subject}", "information"
    if verb == "kill":
        left, trading = result.get("positions"), result.get("trading_state", TradingState.HALTED.value)
        if left:
            return f"PANIC EXIT INCOMPLETE: {left} positions remain; trading {trading}", "error"
        return f"PANIC EXIT complete: flat; trading {trading}", "warning"
    if verb == "resume":
        state = result.get("trading_state", "?")
        if state == TradingState.ACTIVE:
            return "Trading resumed: ACTIVE", "information"
        return f"Resumed, still {state}: timed stops run their course", "warning"
    return f"{verb}: done", "information"


def failure_message(verb: str, subject: str, error: BaseException | None) -> tuple[str, str]:
    what = {"approve": "Approve", "cancel": "Cancel", "kill": "PANIC EXIT", "resume": "Resume"}.get(verb, verb)
    if isinstance(error, ApiError):
        if error.unauthorized and verb in ("approve", "resume"):
            return f"{what} refused: wrong master password", "error"
        if error.unauthorized:
            return f"{what} refused: {error.message}", "error"
        return f"{what} failed: {error.message} ({error.code})", "error"
    return f"{what} failed: {error!r}", "error"
