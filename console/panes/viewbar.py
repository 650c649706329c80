"""The view bar of the compact layout (80x24): which of the four views is showing, and the
key that shows each. Counts ride along so nothing waits unseen in a hidden view."""

from __future__ import annotations

from rich.text import Text

from console.panes.base import TextPane
from console.risk import BREACH, MUTED, WARN

VIEWS = (("positions", "1", "Positions"), ("pending", "2", "Pending"), ("risk", "3", "Risk"), ("log", "4", "Log"))


class ViewBar(TextPane):
    DEFAULT_CSS = """
    ViewBar { height: 1; padding: 0 1; }
    """

    def show(self, view: str, counts: dict[str, tuple[str, str]]) -> None:
        """`counts` maps a view to (extra text, risk level) shown after its name."""
        palette = self.palette
        text = Text(no_wrap=True, overflow="ellipsis")
        for name, key, label in VIEWS:
            extra, level = counts.get(name, ("", MUTED))
            style = palette.badge("accent") if name == view else palette[MUTED]
            text.append(f" {key} {label}", style)
            if extra:
                text.append(f" {extra}", palette[level]
                            if level in (WARN, BREACH) else style)
            text.append(" ", style)
            text.append("  ")
        self.set_text(text)
