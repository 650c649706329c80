"""The console's keys. Every binding has an id, so a user's config can remap it
(`[keymap] approve = "A"` becomes `App.set_keymap({"approve": "A"})`), and every action is
also in the command palette (ctrl+p) under the same name. `KeyMap` says which keys each id is
bound to now, so the screen names the keys the trader actually has."""

from __future__ import annotations

from typing import Iterable, Mapping

from textual.binding import Binding

BINDINGS = [
    Binding("a", "approve", "Approve", id="approve", tooltip="Approve the selected APPROVAL order"),
    Binding("c", "cancel_pending", "Cancel", id="cancel-pending", tooltip="Cancel the selected pending order"),
    Binding("!", "panic", "Panic", id="panic", tooltip="Panic exit: close every position, then HALT (asks first)"),
    Binding("r", "resume", "Resume", id="resume", tooltip="Lift HALTED and latched stops (asks the master password)"),
    Binding("p", "policies", "Policies", id="policies", tooltip="The policies in force and their usage"),
    Binding("t", "next_theme", "Theme", id="theme", tooltip="Next theme: dark, light, high contrast, colour-blind"),
    Binding("?", "help", "Help", id="help", tooltip="Keys and how to read the screen"),
    Binding("q", "quit_console", "Quit", id="quit", tooltip="Quit (asks first when the engine runs in here)"),
    # Attached to an engine that runs on its own, `q` only detaches. Two bindings on one key, the
    # app enabling one (check_action), so the footer names what `q` does; KeyMap moves both.
    Binding("q", "detach", "Detach", id="detach", tooltip="Leave the console; the engine keeps running"),
    Binding("0,escape", "show_view('overview')", "Overview", id="view-overview", show=False),
    Binding("1", "show_view('positions')", "Positions", id="view-positions", show=False),
    Binding("2", "show_view('pending')", "Pending", id="view-pending", show=False),
    Binding("3", "show_view('risk')", "Risk", id="view-risk", show=False),
    Binding("4", "show_view('log')", "Log", id="view-log", show=False),
]

# (binding id, what it does) for the help screen, in the order shown.
HELP = [
    ("approve", "approve the selected APPROVAL order"),
    ("cancel-pending", "cancel the selected pending order"),
    ("panic", "PANIC EXIT: flatten everything, HALT"),
    ("resume", "resume trading (master password)"),
    ("policies", "policies and their usage"),
    ("theme", "next theme"),
    ("help", "this help"),
    ("quit", "quit / detach"),
    ("view-overview", "overview: every pane at once"),
    ("view-positions", "zoom: positions"),
    ("view-pending", "zoom: pending orders"),
    ("view-risk", "zoom: buffer chart, all breakers"),
    ("view-log", "zoom: the whole event log"),
]

# (title, help, action) for the command palette.
COMMANDS = [
    ("Approve selected pending order", "Release the selected APPROVAL order (re-checked first)", "approve"),
    ("Cancel selected pending order", "Drop the selected DELAY or APPROVAL order", "cancel_pending"),
    ("Panic exit", "Cancel all orders, close every position, then HALT trading (asks first)", "panic"),
    ("Resume trading", "Lift HALTED and latched stops (asks the master password)", "resume"),
    ("Policies", "The policies in force, read-only, with usage", "policies"),
    ("Next theme", "Cycle dark, light, high contrast, colour-blind safe", "next_theme"),
    ("Help", "Keys and how to read the screen", "help"),
    ("Show overview", "Every pane at once", "show_view('overview')"),
    ("Show positions", "Zoom: the positions, full screen", "show_view('positions')"),
    ("Show pending orders", "Zoom: the pending orders, full screen", "show_view('pending')"),
    ("Show risk", "Zoom: margin buffer chart and every breaker", "show_view('risk')"),
    ("Show event log", "Zoom: the whole event log", "show_view('log')"),
    ("Quit or detach", "Leave the console (asks first when the engine runs in here)", "quit_console"),
]


DISPLAY = {"escape": "Esc", "question_mark": "?", "exclamation_mark": "!"}


class KeyMap:
    """The keys bound to each binding id: the defaults above, overlaid with a user's keymap.
    `detach` follows `quit` unless the keymap names it, as both are what `q` does.

        keys = KeyMap(BINDINGS, {"approve": "A"})
        keys.label("approve")  # "A"
        keys.label("view-overview")  # "0/Esc"
    """

    def __init__(self, bindings: Iterable[Binding], keymap: Mapping[str, str] | None = None) -> None:
        self.defaults = {b.id: b.key for b in bindings if b.id}
        self.keymap = {binding_id: keys for binding_id, keys in (keymap or {}).items()}
        if "quit" in self.keymap and "detach" not in self.keymap:
            self.keymap["detach"] = self.keymap["quit"]

    def keys(self, binding_id: str) -> list[str]:
        """The keys bound to `binding_id`, as the user or the defaults spell them."""
        keys = self.keymap.get(binding_id, self.defaults.get(binding_id, ""))
        return [key.strip() for key in keys.split(",") if key.strip()]

    def label(self, binding_id: str, default: str = "?") -> str:
        """`a`, `0/Esc`: the keys of `binding_id` for the screen."""
        keys = self.keys(binding_id)
        return "/".join(DISPLAY.get(key, key) for key in keys) if keys else default
