"""Fault injection for the paper exchange (all off by default), so tests and demos can make
the venue misbehave the ways real ones do. A part of the exchange: `paper.faults`.

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

from typing import Callable


class Faults:
    """The switches the exchange reads. `feed_back(events_lost)` is the exchange's: it is called
    when a dropped feed comes back."""

    def __init__(self, feed_back: Callable[[bool], None]) -> None:
        self._feed_back = feed_back
        self.freeze_marks = False
        self._drop_feed = False
        self.dropped_events = 0  # events lost to `drop_feed`, all time
        self._dropped_before = 0
        self._rejects_left = 0
        self._reject = ("Injected", "")
        self.order_delay = 0.0  # seconds between `place` and the venue processing the order

    @property
    def drop_feed(self) -> bool:
        return self._drop_feed

    @drop_feed.setter
    def drop_feed(self, value: bool) -> None:
        was, self._drop_feed = self._drop_feed, bool(value)
        if value and not was:
            self._dropped_before = self.dropped_events
        if was and not value:
            self._feed_back(self.dropped_events > self._dropped_before)

    def reject_next(self, n: int = 1, reason: str = "Order rejected by the venue (paper fault injection).",
                    code: str = "Injected") -> None:
        """The next `n` orders the venue processes are rejected with `reason`."""
        self._rejects_left, self._reject = n, (code, reason)

    def take_rejection(self) -> tuple[str, str] | None:
        """(code, reason) if the order being processed is to be rejected (one of `reject_next`)."""
        if self._rejects_left <= 0:
            return None
        self._rejects_left -= 1
        return self._reject

    def delay_orders(self, seconds: float) -> None:
        """Orders placed from now on reach the venue `seconds` later (0 = at once)."""
        self.order_delay = max(0.0, float(seconds))
