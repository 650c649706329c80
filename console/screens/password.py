"""Asks for the master password (resume; approve over the gateway). Enter submits, Escape
gives up. The typed text is hidden and handed to the caller only."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class PasswordScreen(ModalScreen[str | None]):
    DEFAULT_CSS = """
    PasswordScreen { align: center middle; }
    PasswordScreen > Vertical {
        width: 64; max-width: 100%; height: auto; border: thick $primary; background: $surface; padding: 0 1;
    }
    PasswordScreen #title { text-style: bold; }
    PasswordScreen #why { color: $foreground-muted; margin-bottom: 1; }
    """

    BINDINGS = [Binding("escape", "give_up", "Cancel", id="password.cancel")]

    def __init__(self, why: str) -> None:
        super().__init__()
        self.why = why

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Master password", id="title")
            yield Static(f"{self.why}\nEnter submits · Escape cancels", id="why")
            yield Input(password=True, placeholder="master password", id="password")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value or None)

    def action_give_up(self) -> None:
        self.dismiss(None)
