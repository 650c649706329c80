"""ACTIVE -> REDUCE_ONLY ("stop trading") -> HALTED (kill switch), with causes.

REDUCE_ONLY may have several causes at once, each lifting its own way: the margin buffer's
when the buffer recovers (the engine calls `lift`), a loss limit's at its period's end
(`until`), a latched one (drawdown) only by `resume`. HALTED lifts only by `resume`.
Every transition returns a TradingStateChanged event for the store and the console.

`Flattening` is the record a panic exit (or the kill switch) keeps while the account is being
flattened: saved before the exit acts and cleared once the account is flat, so an exit that a
crash, `kill -9` or a restart interrupted resumes at start (SPEC section 6).
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.domain.model import TradingState, TradingStateChanged

LATCHED = float("inf")


@dataclass(frozen=True, slots=True)
class Flattening:
    """A panic exit under way: why (`cause`, as HALTED will say) and since when (epoch s)."""

    cause: str
    since: float


class TradingStateMachine:
    def __init__(self, state: TradingState = TradingState.ACTIVE, causes: dict[str, float | None] | None = None,
                 halt_cause: str | None = None) -> None:
        self.state = state
        # cause -> when it lifts by itself (epoch s), None = when the engine says so, inf = latched
        self.causes: dict[str, float | None] = dict(causes or {})
        self.halt_cause = halt_cause

    def _move(self, to: TradingState, cause: str, at: float, **detail) -> TradingStateChanged | None:
        if to is self.state:
            return None
        event = TradingStateChanged(self.state, to, cause, at, detail)
        self.state = to
        return event

    def halt(self, cause: str, at: float) -> TradingStateChanged | None:
        self.halt_cause = cause
        return self._move(TradingState.HALTED, cause, at)

    def reduce_only(self, cause: str, at: float, until: float | None = None) -> TradingStateChanged | None:
        """Add a REDUCE_ONLY cause (until: epoch s it lifts at; None: lifted by `lift`; LATCHED)."""
        self.causes[cause] = until
        if self.state is TradingState.HALTED:
            return None
        return self._move(TradingState.REDUCE_ONLY, cause, at, until=until)

    def lift(self, cause: str, at: float) -> TradingStateChanged | None:
        """The condition behind `cause` cleared (latched causes ignore this)."""
        if self.causes.get(cause, 0) == LATCHED or cause not in self.causes:
            return None
        del self.causes[cause]
        return self._settle(f"{cause} cleared", at)

    def tick(self, at: float) -> TradingStateChanged | None:
        """Lift the causes whose time has come."""
        expired = [c for c, until in self.causes.items() if until is not None and until != LATCHED and until <= at]
        for cause in expired:
            del self.causes[cause]
        return self._settle(f"{', '.join(expired)} expired", at) if expired else None

    def resume(self, at: float) -> TradingStateChanged | None:
        """The trader's resume (master password checked by the caller): clears HALTED and latches;
        causes still running their own course (a loss limit's period) keep REDUCE_ONLY."""
        self.halt_cause = None
        self.causes = {c: u for c, u in self.causes.items() if u is not None and u != LATCHED}
        target = TradingState.REDUCE_ONLY if self.causes else TradingState.ACTIVE
        return self._move(target, "resume", at)

    def _settle(self, cause: str, at: float) -> TradingStateChanged | None:
        if self.state is TradingState.REDUCE_ONLY and not self.causes:
            return self._move(TradingState.ACTIVE, cause, at)
        return None
