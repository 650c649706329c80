"""A yes/no question that guards an irreversible command (as Posting's confirm screen does):
the safe button has the focus, Escape or `n` says no, and only the keys named in `confirm_keys`
say yes. The panic exit confirms with a second `!` or `y`."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[bool]):
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical {
        width: 72; max-width: 100%; height: auto; max-height: 100%;
        border: thick $risk-breach; background: $surface; padding: 0 1;
    }
    ConfirmScreen.-mild > Vertical { border: thick $risk-warn; }
    ConfirmScreen #title { text-style: bold; color: $risk-breach; width: 100%; content-align: center middle; }
    ConfirmScreen.-mild #title { color: $risk-warn; }
    ConfirmScreen #body { margin: 1 0; }
    ConfirmScreen #keys { color: $foreground-muted; }
    ConfirmScreen Horizontal { height: auto; align: center middle; }
    ConfirmScreen Button { margin: 0 2; }
    """

    BINDINGS = [
        Binding("escape", "answer(False)", "Cancel", id="confirm.no"),
        Binding("n", "answer(False)", "No", show=False),
    ]

    def __init__(self, title: str, body: str, confirm_label: str, *, confirm_keys: tuple[str, ...] = ("y",),
                 danger: bool = True) -> None:
        super().__init__(classes="" if danger else "-mild")
        self.title_text, self.body, self.confirm_label, self.confirm_keys = title, body, confirm_label, confirm_keys
        self.danger = danger

    def compose(self) -> ComposeResult:
        keys = " or ".join(self.confirm_keys)
        with Vertical():
            yield Static(self.title_text, id="title")
            yield Static(self.body, id="body")
            yield Static(f"{keys} confirms · Escape or n cancels · Tab moves between the buttons", id="keys")
            with Horizontal():
                yield Button("Cancel", id="cancel", variant="primary")
                yield Button(self.confirm_label, id="confirm", variant="error" if self.danger else "warning")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_key(self, event: events.Key) -> None:
        """A confirm key says yes (the keys vary per question, so they are not BINDINGS);
        `!` arrives as the key `exclamation_mark` with the character `!`."""
        if event.key in self.confirm_keys or (event.character and event.character in self.confirm_keys):
            event.stop()
            self.dismiss(True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
