"""What the trader is told: the outcome of a command sent through the link, and which engine
events deserve a toast on top of their line in the log (SPEC: NOTIFY shows a console toast)."""

from __future__ import annotations

from console.link import LinkError

TOAST_EVENTS = {
    "notify": "information",
    "breaker_tripped": "error",
    "panic_exit": "error",
    "panic_done": "error",
    "liquidated": "error",
    "engine_error": "error",
    "feed_stale": "warning",
    "derisk_order": "warning",
}


def toast_for(event: dict) -> tuple[str, str, float] | None:
    """(message, severity, seconds) for an event worth interrupting the trader, else None."""
    kind = event.get("kind")
    message = str(event.get("message", ""))
    if kind == "pending_added" and event.get("tier") == "APPROVAL":
        return f"{message}: a approves, c cancels", "warning", 10.0
    severity = TOAST_EVENTS.get(kind)
    if severity is None:
        return None
    return message, severity, 10.0 if severity == "error" else 5.0


def success_message(verb: str, subject: str, result) -> tuple[str, str]:
    result = result if isinstance(result, dict) else {}
    if verb == "approve":
        status, outcome = result.get("status"), result.get("outcome") or ""
        if status == "EXECUTED":
            return f"Approved and sent: {subject} ({outcome})", "information"
        if status == "DENIED":
            return f"Approved, but the re-check denied it: {outcome}", "warning"
        if status == "FAILED":
            return f"Approved, but the venue refused it: {outcome}", "error"
        return f"Approved: {subject} ({status or 'sent'})", "information"
    if verb == "cancel":
        return f"Cancelled: {subject}", "information"
    if verb == "kill":
        left = result.get("positions")
        if left:
            return f"PANIC EXIT INCOMPLETE: {left} positions remain; trading {result.get('trading_state', 'HALTED')}", "error"
        return f"PANIC EXIT complete: flat; trading {result.get('trading_state', 'HALTED')}", "warning"
    if verb == "resume":
        state = result.get("trading_state", "?")
        if state == "ACTIVE":
            return "Trading resumed: ACTIVE", "information"
        return f"Resumed, still {state}: timed stops run their course", "warning"
    return f"{verb}: done", "information"


def failure_message(verb: str, subject: str, error: BaseException | None) -> tuple[str, str]:
    what = {"approve": "Approve", "cancel": "Cancel", "kill": "PANIC EXIT", "resume": "Resume"}.get(verb, verb)
    if isinstance(error, LinkError):
        if error.unauthorized and verb in ("approve", "resume"):
            return f"{what} refused: wrong master password", "error"
        if error.unauthorized:
            return f"{what} refused: {error.message}", "error"
        return f"{what} failed: {error.message} ({error.code})", "error"
    return f"{what} failed: {error!r}", "error"
