"""The view bar: the overview (every pane at once) and the four zoom views (one pane full
screen), the key that shows each, and how to get back. Counts ride along so nothing waits
unseen behind a zoomed pane. The wide dashboard (120x34 and more) hides it until a zoom."""

from __future__ import annotations

from rich.text import Text

from console.panes.base import TextPane
from console.risk import BREACH, MUTED, WARN

VIEWS = (("overview", "Overview"), ("positions", "Positions"), ("pending", "Pending"), ("risk", "Risk"),
         ("log", "Log"))
DEFAULT_KEYS = {"overview": "0/Esc", "positions": "1", "pending": "2", "risk": "3", "log": "4"}


class ViewBar(TextPane):
    DEFAULT_CSS = """
    ViewBar { height: 1; padding: 0 1; }
    """

    def show(self, view: str, counts: dict[str, tuple[str, str]], keys: dict[str, str] | None = None) -> None:
        """`counts` maps a view to (extra text, risk level) shown after its name; `keys` maps a
        view to the key(s) that show it, as the keymap has them."""
        palette, keys = self.palette, keys or DEFAULT_KEYS
        text = Text(no_wrap=True, overflow="ellipsis")
        for name, label in VIEWS:
            extra, level = counts.get(name, ("", MUTED))
            style = palette.badge("accent") if name == view else palette[MUTED]
            key = keys.get(name, "")
            if name == "overview" and view == name:
                key = key.split("/")[0]  # in the overview, Escape has nothing to go back to
            text.append(f" {key} {label}", style)
            if extra:
                text.append(f" {extra}", palette[level] if level in (WARN, BREACH) else style)
            text.append(" ", style)
            text.append(" ")
        hint = f" {keys.get('positions', '1')}-{keys.get('log', '4')} zoom"
        if view == "overview" and text.cell_len + len(hint) <= self.size.width - 2:
            text.append(hint, palette[MUTED])
        self.set_text(text)
