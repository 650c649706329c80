"""A pane that shows one Rich Text and repaints only when that text changed."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from console.palette import RiskPalette, palette_for


class TextPane(Widget):
    DEFAULT_CSS = """
    TextPane { height: auto; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._text = Text()

    @property
    def palette(self) -> RiskPalette:
        return palette_for(self.app)

    def set_text(self, text: Text) -> bool:
        """Show `text`, one screen line per text line (too long: cut with an ellipsis); False
        (and no repaint) when it is what is already shown."""
        text.no_wrap, text.overflow = True, "ellipsis"
        if text == self._text:
            return False
        self._text = text
        self.refresh(layout=self.styles.height is None or self.styles.height.is_auto)
        return True

    @property
    def line_count(self) -> int:
        """How many lines the pane shows now."""
        return self._text.plain.count("\n") + 1

    def render(self) -> Text:
        return self._text
