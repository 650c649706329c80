"""The event log: what the engine said, newest at the bottom, with the engine's time (UTC) and
a short label coloured by severity; an order event from a bot names it first (`alpha: ...`).
The last events are kept so a theme change repaints them.
The condensed overview shows only the newest few, one line each (`RecentEvents`)."""

from __future__ import annotations

from collections import deque

from rich.table import Table
from rich.text import Text
from textual.widgets import RichLog

from console import format as fmt
from console.palette import palette_for
from console.panes.base import TextPane
from console.risk import MUTED, event_level
from engine.domain.events import EventKind as K

KEEP = 500
LABELS = {
    K.BREAKER_TRIPPED: "BREAKER", K.DERISK_ORDERED: "DE-RISK", K.DERISK_SKIPPED: "DE-RISK", K.ENGINE_ERROR: "ERROR",
    K.ENGINE_STARTED: "ENGINE", K.FEED_RESTORED: "FEED", K.FEED_STALE: "FEED", K.LIQUIDATED: "LIQUIDATED",
    K.NOTIFIED: "NOTIFY", K.ORDER_CANCELLED: "CANCELLED", K.ORDER_DENIED: "DENIED", K.ORDER_REJECTED: "REJECTED",
    K.ORDER_SENT: "SENT", K.ORDER_FILLED: "FILLED", K.PANIC_DONE: "PANIC", K.PANIC_STARTED: "PANIC",
    K.PENDING_ADDED: "HELD", K.PENDING_CLOSED: "PENDING", K.POSITION_CLOSED: "CLOSED", K.STATE_CHANGED: "STATE",
    K.REDUCE_FILLED: "REDUCE", K.REDUCE_FAILED: "REDUCE",
}
LABEL_WIDTH = 10


def label_of(event: dict) -> str:
    kind = str(event.get("kind", ""))
    return LABELS.get(kind, kind.upper()[:LABEL_WIDTH])


def event_text(event: dict) -> str:
    """The event's message, after the bot whose order it was about when there was one."""
    message, bot = str(event.get("message", "")), event.get("bot")
    return f"{bot}: {message}" if bot else message


def event_line(event: dict, palette) -> Table:
    """Time, label, message; a long message wraps under itself, not under the time."""
    label = label_of(event)
    line = Table.grid(padding=(0, 1), expand=True)
    line.add_column(width=8, no_wrap=True)
    line.add_column(width=LABEL_WIDTH, no_wrap=True)
    line.add_column(ratio=1)
    line.add_row(Text(fmt.clock(event.get("at")), style=palette[MUTED]), Text(label, style=palette[event_level(event)]),
                 Text(event_text(event)))
    return line


class EventLog(RichLog):
    DEFAULT_CSS = """
    EventLog { height: 1fr; scrollbar-size-vertical: 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=KEEP, wrap=True, markup=False, highlight=False, auto_scroll=True)
        self.events: deque[dict] = deque(maxlen=KEEP)
        self._palette = None

    def add(self, events: list[dict]) -> None:
        palette = palette_for(self.app)
        if palette is not self._palette:
            self._palette = palette
            self.clear()
            events = list(self.events) + list(events)
            self.events.clear()
        for event in events:
            self.events.append(event)
            self.write(event_line(event, palette), expand=True)

    def repaint(self) -> None:
        """Rewrite every kept line in the current theme's colours."""
        self.add([])


class RecentEvents(TextPane):
    """The newest events, one line each (a long message is cut, not wrapped), as many as the
    pane is tall: the condensed overview's log. The whole log is one key away (4)."""

    DEFAULT_CSS = """
    RecentEvents { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.events: deque[dict] = deque(maxlen=50)

    def add(self, events: list[dict]) -> None:
        self.events.extend(events)
        if events:
            self.repaint()

    def on_resize(self) -> None:
        self.repaint()

    def repaint(self) -> None:
        palette = self.palette
        lines = []
        for event in list(self.events)[-max(1, self.size.height):]:
            lines.append(Text.assemble((fmt.clock(event.get("at")), palette[MUTED]), " ",
                                       (f"{label_of(event):<{LABEL_WIDTH}}", palette[event_level(event)]), " ",
                                       event_text(event)))
        self.set_text(Text("\n").join(lines) if lines else Text("no events yet", style=palette[MUTED]))
