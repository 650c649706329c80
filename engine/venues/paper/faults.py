"""Fault injection for the paper exchange (all off by default), so tests and demos can make
the venue misbehave the ways real ones do.

- `freeze_marks = True`: the venue's mark stops moving (`set_mark` is ignored); after
  `stale_after` seconds without a mark, `poll()` emits `FeedStale`; the next mark once unfrozen
  emits `FeedRestored`.
- `drop_feed = True`: the venue keeps trading (fills, funding, liquidations happen) but no event
  reaches subscribers (lost, as on a dead websocket); `snapshot()` still answers. Setting it
  back to False emits `FeedRestored(events_lost=True)`: reconcile from `snapshot()`.
- `reject_next(n, reason, code)`: the next n orders the venue processes are rejected.
- `delay_orders(seconds)`: from now on `place` answers `pending` at once and the venue
  processes the order `seconds` later (on the first `poll`/`set_mark` at or after that time),
  against the state of that moment; `delay_orders(0)` turns it off. Cancels are not delayed.
"""

from __future__ import annotations

from engine.venues.connector import FeedRestored


class FaultSwitches:
    """Mixed into `PaperExchange`; the attributes are set up by its constructor."""

    @property
    def drop_feed(self) -> bool:
        return self._drop_feed

    @drop_feed.setter
    def drop_feed(self, value: bool) -> None:
        was, self._drop_feed = self._drop_feed, bool(value)
        if value and not was:
            self._dropped_before = self.dropped_events
        if was and not value:
            self._stale = False
            self._emit(FeedRestored(self.clock.now(), events_lost=self.dropped_events > self._dropped_before))

    def reject_next(self, n: int = 1, reason: str = "Order rejected by the venue (paper fault injection).",
                    code: str = "Injected") -> None:
        """The next `n` orders the venue processes are rejected with `reason`."""
        self._rejects_left, self._reject = n, (code, reason)

    def delay_orders(self, seconds: float) -> None:
        """Orders placed from now on reach the venue `seconds` later (0 = at once)."""
        self._order_delay = max(0.0, float(seconds))
