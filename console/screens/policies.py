"""The policies in force, read-only: each with its rules and, for those that count something,
the usage the engine reports (the same figures as the breakers pane)."""

from __future__ import annotations

from typing import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static
from textual.worker import Worker, WorkerState

from console.link import EngineLink
from console.palette import palette_for
from console.panes.breakers import breaker_level, figures, status
from console.risk import MUTED
from engine.api.errors import ApiError
from engine.api.state import BreakerRow


def rules_text(rules: dict) -> str:
    """`maxLeverage=5 leverageTiers={BTC: 3}`: the rules on one line."""
    parts = []
    for key, value in rules.items():
        if isinstance(value, dict):
            value = "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
        elif isinstance(value, list):
            value = "[" + ", ".join(str(v) for v in value) + "]"
        parts.append(f"{key}={value}")
    return " ".join(parts)


class PoliciesScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    PoliciesScreen { align: center middle; }
    PoliciesScreen > Vertical {
        width: 100%; height: 100%; max-width: 160; border: thick $primary; background: $surface;
    }
    PoliciesScreen #title { text-style: bold; padding: 0 1; }
    PoliciesScreen DataTable { height: 1fr; }
    """

    BINDINGS = [Binding("escape,p,q", "close", "Close", id="policies.close")]

    def __init__(self, link: EngineLink, breakers: Callable[[], tuple[BreakerRow, ...]]) -> None:
        super().__init__()
        self.link, self.breakers = link, breakers

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Policies (read-only) · Escape closes", id="title")
            yield DataTable(cursor_type="row", id="policies")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Policy", "Type", "On", "Usage", "Rules")
        table.loading = True
        table.focus()
        self.run_worker(self.link.policies(), name="load-policies", exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.name != "load-policies" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        event.stop()
        table = self.query_one(DataTable)
        table.loading = False
        if event.state is WorkerState.ERROR:
            error = event.worker.error
            message = error.message if isinstance(error, ApiError) else repr(error)
            self.query_one("#title", Static).update(f"Policies could not be read: {message} · Escape closes")
            return
        self.fill(event.worker.result or [])

    def fill(self, bodies: list[dict]) -> None:
        palette = palette_for(self.app)
        usage: dict[str, list[BreakerRow]] = {}
        for row in self.breakers():
            usage.setdefault(row.policy_id, []).append(row)
        table = self.query_one(DataTable)
        for body in bodies:
            rows = usage.get(str(body.get("id")), [])
            used = Text(no_wrap=True)
            for i, row in enumerate(rows):
                if i:
                    used.append("; ")
                used.append(f"{row.name}: {figures(row)} {status(row)}", palette[breaker_level(row)])
            table.add_row(str(body.get("id", "")), str(body.get("type", "")),
                          "yes" if body.get("enabled", True) else Text("no", style=palette[MUTED]),
                          used or Text("—", style=palette[MUTED]), rules_text(body.get("rules") or {}),
                          key=str(body.get("id")))

    def action_close(self) -> None:
        self.dismiss(None)
