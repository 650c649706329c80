"""Help: the keys as they are bound now (a user's keymap included), and how to read the panes."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

READING = """\
Reading the screen
  Header     trading state (ACTIVE / REDUCE_ONLY / HALTED), equity, margin
             buffer, age of the newest mark, the engine's clock (UTC), and
             why trading stopped
  Positions  closest to liquidation first; Dist = |mark - liq| / mark
  Buffer     (account value - maintenance margin) / account value; below
             warn the engine reduces, below panic it flattens and halts
  Pending    DELAY orders send themselves when the countdown ends (after a
             re-check); APPROVAL orders (listed first) wait for `a` and
             expire at the end of theirs
  Breakers   usage of each counting policy; TRIPPED shows the cooldown
             left
Layouts: the overview shows every pane at once (below 120x34 condensed:
no chart, the tripped and busiest breakers, the newest events); 1-4 zoom
one pane, 0 or Escape goes back. `a` and `c` act on the highlighted
pending row; away from that table the first press highlights one, the
second acts.
Colours: ok / warn / breach come from the theme (t cycles; one is
colour-blind safe), and every breach also says so in words."""


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 88; max-width: 100%; height: auto; max-height: 100%; border: thick $primary;
        background: $surface; padding: 0 1;
    }
    """

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close", id="help.close")]

    def __init__(self, keys: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        width = max((len(k) for k, _, _ in self.keys), default=1) + 2
        what_width = max((len(w) for _, w, _ in self.keys), default=1) + 1
        lines = ["Keys (remap them by binding id in the config's [keymap])"]
        lines += [f"  {key:<{width}}{what:<{what_width}}id: {binding_id}" for key, what, binding_id in self.keys]
        lines += [f"  {'ctrl+p':<{width}}command palette: every action by name", "", READING, "", "Escape closes"]
        with VerticalScroll():
            yield Static("\n".join(lines), markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
