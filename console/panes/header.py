"""The header: trading state, equity, margin buffer, feed age and the engine's clock on the
first line; why trading is stopped, what the venue is not doing for the account (a refused
dead-man switch, an API wallet about to expire), what waits for the trader, and the link on
the second."""

from __future__ import annotations

import math

from rich.text import Text

from console import format as fmt
from console.bindings import KeyMap
from console.link import LinkStatus
from console.panes.base import TextPane
from console.risk import BREACH, MUTED, OK, WARN, buffer_level, state_level
from engine.api.state import EngineState, PendingRow
from engine.domain.model import TradingState

FEED_WARN_SECONDS = 5.0  # marks older than this: the feed is lagging (STALE_DATA denies at 10 s by default)

CAUSES = {
    "margin_buffer": "margin buffer below warn",
    "max_drawdown": "max drawdown reached",
    "panic_exit": "panic exit",
    "loss_limit:daily": "daily loss limit",
    "loss_limit:weekly": "weekly loss limit",
    "loss_limit:session": "session loss limit",
}


def causes_of(state: EngineState) -> list[tuple[str, float | None, bool]]:
    """(cause, until, latched) for each REDUCE_ONLY cause the engine lists."""
    return [(c.cause, c.until, c.latched) for c in state.causes]


def cause_text(cause: str, until: float | None, now: float | None, latched: bool = False) -> str:
    """One REDUCE_ONLY cause and how it lifts."""
    label = CAUSES.get(cause, cause.replace("_", " ").replace(":", " "))
    if latched:
        return f"{label} (latched: r resumes)"
    if until is None or not isinstance(until, (int, float)) or not math.isfinite(until):
        return f"{label} (lifts when it clears)"
    left = f", in {fmt.duration(until - now)}" if now is not None else ""
    return f"{label} (lifts {fmt.clock(until)} UTC{left})"


def pending_summary(pending: tuple[PendingRow, ...], approvals: int, approve_key: str = "a") -> tuple[str, str]:
    if not pending:
        return "no pending orders", MUTED
    text = f"{len(pending)} pending"
    if approvals:
        return f"{text} ({approvals} need{'s' if approvals == 1 else ''} approval: {approve_key})", WARN
    return text, OK


AGENT_WARN_SECONDS = 7 * 86_400.0


def venue_notices(state: EngineState) -> list[tuple[str, str]]:
    """What the venue keeps for the account and is not doing: a dead-man switch it refused,
    an API wallet about to expire."""
    notices = []
    if state.unprotected:
        notices.append((f"{state.unprotected} UNPROTECTED position{'s' if state.unprotected > 1 else ''} "
                        f"(no venue stop)", BREACH))
    dead_man = state.dead_man
    if dead_man.refused:
        notices.append((f"dead-man switch NOT armed: {dead_man.reason}", BREACH))
    expires = state.agent_expires_at
    if expires is not None and expires - state.time <= AGENT_WARN_SECONDS:
        notices.append((f"API wallet expires in {fmt.duration(max(0.0, expires - state.time))}", WARN))
    return notices


class HeaderPane(TextPane):
    DEFAULT_CSS = """
    HeaderPane { height: 2; padding: 0 1; background: $panel; }
    """

    def show(self, state: EngineState | None, status: LinkStatus, description: str, keys: KeyMap) -> None:
        """`keys` names the keys for `approve` and `resume` as the keymap has them."""
        palette = self.palette
        if state is None:
            self.set_text(Text.assemble((" WAITING ", palette.badge(MUTED)), "  ",
                                        (f"{description}: {status.text}", palette[BREACH if not status.live else MUTED])))
            return
        account = state.account
        trading = state.trading_state
        buffer = account.margin_buffer
        feed_age = state.feed_age_seconds
        now = state.time
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f" {trading.value} ", palette.badge(state_level(trading)))
        line.append("  equity ", palette[MUTED])
        line.append(f"{fmt.usd(account.equity, cents_below=1e12)} USD")
        line.append("  buffer ", palette[MUTED])
        line.append(fmt.percent(buffer), palette[buffer_level(buffer, account.warn_buffer, account.panic_buffer)])
        line.append("  feed ", palette[MUTED])
        stale = feed_age is None or feed_age > FEED_WARN_SECONDS
        line.append(fmt.age(feed_age), palette[WARN if stale else OK])
        line.append(f"  {fmt.clock(now)} UTC", palette[MUTED])

        second = Text(no_wrap=True, overflow="ellipsis")
        parts: list[tuple[str, str]] = []
        if state.liquidated:
            parts.append(("LIQUIDATED by the venue", BREACH))
        if trading is TradingState.HALTED:
            parts.append((f"HALTED: {state.halt_cause or 'kill switch'} ({keys.label('resume')} resumes)", BREACH))
        if state.flattening is not None:  # a panic exit still closing positions: it goes on until flat
            parts.append((f"FLATTENING: attempt {state.flattening.attempt} ({state.flattening.cause})", BREACH))
        parts += venue_notices(state)
        causes = causes_of(state)
        if causes:
            parts.append(("stopped: " + "; ".join(cause_text(c, u, now, latched) for c, u, latched in causes), WARN))
        parts.append(pending_summary(state.pending, state.approvals, keys.label("approve")))
        parts.append((f"{description}" + ("" if status.live else f": {status.text}"), MUTED if status.live else BREACH))
        for i, (text, level) in enumerate(parts):
            if i:
                second.append(" · ", palette[MUTED])
            second.append(text, palette[level])
        text = Text("\n").join([line, second])
        text.no_wrap, text.overflow = True, "ellipsis"
        self.set_text(text)
