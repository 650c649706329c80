"""The perpguard console (SPEC section 13): `PerpguardApp(link, owns_engine, keymap, theme)`.

It reads the engine only through its `EngineLink`. A timer pulls the newest state picture and
the events since the last pull `REFRESH_SECONDS` apart, whatever the feed rate, so a storm of
marks costs one redraw per tick, and the panes rewrite only what changed. Commands run as
workers; every outcome and failure lands in one `on_worker_state_changed`.

Layouts (console.views): an overview of every pane at once, a grid from 120x34 and condensed
below (80x24 over SSH); 1-4 zoom one view, 0 or Escape goes back to the overview.
"""

from __future__ import annotations

import time
from dataclasses import replace
from functools import partial
from typing import Iterable

from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Container, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from console.bindings import BINDINGS, COMMANDS, HELP
from console.commands import LinkCommands
from console.link import EngineLink, LinkStatus
from console.panes.breakers import BreakersPane
from console.panes.buffer import BufferChart, BufferGauge
from console.panes.events import EventLog, RecentEvents
from console.panes.header import HeaderPane
from console.panes.pending import PendingTable, describe
from console.panes.positions import PositionsTable
from console.panes.viewbar import ViewBar
from console.outcomes import toast_for
from console.screens.confirm import ConfirmScreen
from console.screens.help import HelpScreen
from console.screens.password import PasswordScreen
from console.screens.policies import PoliciesScreen
from console.terminal import exit_on_hangup, watch_terminal
from console.views import Views
from themes import CONSOLE_CSS, DEFAULT_THEME, RISK_DEFAULTS, next_theme, register_all, theme_name

REFRESH_SECONDS = 0.25  # four redraws a second at most, whatever the feed rate
TABLE_SECONDS = 0.5  # the positions table, the costliest pane to repaint: twice a second
MAX_TOASTS_PER_REFRESH = 3


class PerpguardApp(Views, LinkCommands, App[str]):
    TITLE = "perpguard"
    CSS_PATH = str(CONSOLE_CSS)
    BINDINGS = BINDINGS

    def __init__(self, link: EngineLink, owns_engine: bool, keymap: dict[str, str] | None = None,
                 theme: str | None = None, *, refresh_seconds: float = REFRESH_SECONDS) -> None:
        super().__init__()
        self.link, self.owns_engine, self.refresh_seconds = link, owns_engine, refresh_seconds
        register_all(self)
        wanted = theme_name(theme)
        self._theme_problem = None if wanted in self.available_themes else f"unknown theme {theme!r}: using dark"
        self.theme = wanted if wanted in self.available_themes else DEFAULT_THEME
        if keymap:
            self.set_keymap(keymap)
        if not owns_engine:  # attached: `q` leaves the engine running
            bindings = self._bindings.key_to_bindings
            bindings["q"] = [replace(b, description="Detach") if b.id == "quit" else b for b in bindings.get("q", [])]
        self.view = "overview"
        self._layout: tuple | None = None  # (view, layout, compact, height) applied, see Views
        self._positions_max: int | None = None
        self._pane_titles = {"positions-pane": "Positions", "risk-pane": "Margin buffer", "pending-pane": "Pending",
                             "breakers-pane": "Breakers & limits", "log-pane": "Events"}
        self._state: dict | None = None
        self._status: LinkStatus | None = None
        self._backlog = True  # the first events drained are history: logged, not toasted
        self._password: str | None = None  # remembered for the session (remote links only)
        self._jobs: dict = {}  # Worker -> (verb, subject, password, call), see LinkCommands
        self._binding_key: tuple | None = None
        self._asked_stream_password = False
        self._table_at = float("-inf")
        self._table_state: dict | None = None  # the picture the positions table shows

    # ---- layout --------------------------------------------------------------------------

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(RISK_DEFAULTS)

    def compose(self) -> ComposeResult:
        yield HeaderPane(id="header")
        yield ViewBar(id="viewbar")
        with Container(id="dashboard", classes="view-overview"):
            with Vertical(id="positions-pane", classes="pane"):
                yield PositionsTable(id="positions")
                yield Static("no open positions", id="positions-empty", classes="empty")
            with Vertical(id="risk-pane", classes="pane"):
                yield BufferGauge(id="gauge")
                yield BufferChart(id="chart")
            with Vertical(id="pending-pane", classes="pane"):
                yield PendingTable(id="pending")
                yield Static("nothing pending: orders held for DELAY or APPROVAL show here", id="pending-empty",
                             classes="empty")
            with Vertical(id="breakers-pane", classes="pane"):
                yield BreakersPane(id="breakers")
            with Vertical(id="log-pane", classes="pane"):
                yield EventLog(id="log")
                yield RecentEvents(id="recent")
        yield Footer(show_command_palette=False)  # ctrl+p still opens it; 80 columns need the room

    async def on_mount(self) -> None:
        self._apply_layout()
        await self.link.open()
        self.theme_changed_signal.subscribe(self, lambda _theme: self.repaint())
        self.refresh_now()
        self.focus_default()
        self.set_interval(self.refresh_seconds, self.refresh_now)
        watch_terminal(self)
        if self._theme_problem:
            self.notify(self._theme_problem, severity="warning")

    async def on_unmount(self) -> None:
        await self.link.close()

    # ---- the feed ------------------------------------------------------------------------

    def refresh_now(self, force: bool = False) -> None:
        """Pull the newest picture and events from the link and show what changed (`force`:
        repaint the throttled panes too, the positions table and the chart)."""
        if not self.is_running:
            return  # shutting down: the panes may already be gone
        events = self.link.drain_events()
        status = self.link.status()
        state = self.link.latest_state()
        if events:
            self.query_one(EventLog).add(events)
            self.query_one(RecentEvents).add(events)
            if not self._backlog:
                self._toast(events)
        self._backlog = False
        if force or state is not self._state or status != self._status or self._table_state is not state:
            self._state, self._status = state, status
            self._show(state, status, force)
        self._ask_stream_password()

    def repaint(self) -> None:
        """Everything again in the current theme's colours."""
        self.query_one(EventLog).repaint()
        self.query_one(RecentEvents).repaint()
        self._show(self._state, self._status or self.link.status(), force=True)

    def _show(self, state: dict | None, status: LinkStatus, force: bool = False) -> None:
        self.query_one(HeaderPane).show(state, status, self.link.description)
        if state is not None:
            positions = state.get("positions") or []
            pending = state.get("pending") or []
            with self.batch_update():
                table = self.query_one(PositionsTable)
                now = time.monotonic()
                if force or now - self._table_at >= TABLE_SECONDS or len(positions) != table.row_count:
                    self._table_at, self._table_state = now, state
                    table.show(positions)
                self.query_one(PendingTable).show(pending, state.get("time"))
                self.query_one(BufferGauge).show(state.get("account") or {})
                self.query_one(BreakersPane).show(state)
                chart = self.query_one(BufferChart)
                chart.record(state)
                if self.shows("risk"):
                    chart.redraw(force=force)
                self._titles(positions, pending, state)
                self.size_positions()
        self._update_view_bar()
        self._refresh_bindings_if_changed()

    def _titles(self, positions: list[dict], pending: list[dict], state: dict) -> None:
        approvals = sum(1 for p in pending if p.get("tier") == "APPROVAL")
        tripped = sum(1 for b in state.get("breakers") or [] if b.get("tripped"))
        approve = self.key_label("approve", "a")
        titles = {
            "positions-pane": f"Positions ({len(positions)})",
            "pending-pane": f"Pending ({len(pending)}" + (f", {approvals} need{'s' if approvals == 1 else ''} "
                                                          f"approval: {approve}" if approvals else "") + ")",
            "breakers-pane": "Breakers & limits" + (f" ({tripped} TRIPPED)" if tripped else ""),
        }
        self._pane_titles.update(titles)
        self.put_titles()
        self.query_one("#positions-empty").display = not positions
        self.query_one("#pending-empty").display = not pending

    def _toast(self, events: list[dict]) -> None:
        toasts = [t for t in (toast_for(e) for e in events) if t is not None]
        for message, severity, timeout in toasts[-MAX_TOASTS_PER_REFRESH:]:
            self.notify(message, severity=severity, timeout=timeout)

    def _ask_stream_password(self) -> None:
        """A gateway that refuses the stream without credentials: ask the password once."""
        if not getattr(self.link, "needs_password", False):
            self._asked_stream_password = False
            return
        if self._asked_stream_password or isinstance(self.screen, PasswordScreen):
            return
        self._asked_stream_password = True

        def got(password: str | None) -> None:
            if password:
                self.link.use_password(password)

        self.push_screen(PasswordScreen("The gateway wants a token or the master password to show the engine."), got)

    # ---- keys: what is possible now ------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """None greys a key out: `a` with no APPROVAL to act on (or a DELAY row highlighted in
        the pending table), `c` with nothing pending, `r` while ACTIVE."""
        if action == "approve":
            if self.pending_in_hand():
                selected = self.selected_pending()
                return True if selected and selected.get("tier") == "APPROVAL" else None
            return True if self.pending_target("APPROVAL") else None
        if action == "cancel_pending":
            target = self.selected_pending() if self.pending_in_hand() else self.pending_target(None)
            return True if target else None
        if action == "resume":
            return True if self._state and self._state.get("trading_state") not in (None, "ACTIVE") else None
        return True

    def _refresh_bindings_if_changed(self) -> None:
        selected, approval = self.selected_pending(), self.pending_target("APPROVAL")
        key = (selected and selected.get("id"), selected and selected.get("tier"), approval and approval.get("id"),
               (self._state or {}).get("trading_state"), self.pending_in_hand())
        if key != self._binding_key:
            self._binding_key = key
            self.refresh_bindings()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "pending":
            self._refresh_bindings_if_changed()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for title, help_text, action in COMMANDS:
            yield SystemCommand(title, help_text, partial(self.run_action, action))
        yield from super().get_system_commands(screen)

    # ---- actions -------------------------------------------------------------------------

    def action_approve(self) -> None:
        if not self.pending_in_hand():
            target = self.pending_target("APPROVAL")
            if target is None:
                self.notify("No order waits for approval", severity="warning")
            else:
                self.bring_pending(target, "approve", "approve")
            return
        action = self.selected_pending()
        if not action or action.get("tier") != "APPROVAL":
            self.notify("Highlight an APPROVAL order first", severity="warning")
            return
        subject = describe(action)
        self._with_password("approve", f"Approve {subject}",
                            lambda password: self._run("approve", partial(self.link.approve, action["id"]),
                                                       subject, password))

    def action_cancel_pending(self) -> None:
        if not self.pending_in_hand():
            target = self.pending_target(None)
            if target is None:
                self.notify("No pending order to cancel", severity="warning")
            else:
                self.bring_pending(target, "cancel-pending", "cancel")
            return
        action = self.selected_pending()
        if not action:
            self.notify("No pending order highlighted", severity="warning")
            return
        self._run("cancel", partial(self.link.cancel_pending, action["id"]), describe(action), self._password)

    def action_panic(self) -> None:
        state = self._state or {}
        positions = state.get("positions") or []
        gross = sum(abs(p.get("notional") or 0.0) for p in positions)
        body = (f"Cancel every open order and close all {len(positions)} positions (gross {gross:,.0f} USD) with "
                "reduce-only IOC orders, then HALT trading.\nOnly resume with the master password lifts HALTED.")

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self.notify("PANIC EXIT sent: flattening everything", severity="error")
                self._run("kill", self.link.kill, "panic exit", self._password)
            else:
                self.notify("Panic exit cancelled: nothing was sent")

        self.push_screen(ConfirmScreen("PANIC EXIT", body, "Flatten everything", confirm_keys=("!", "y")), answered)

    def action_resume(self) -> None:
        trading = (self._state or {}).get("trading_state")
        if trading in (None, "ACTIVE"):
            self.notify("Trading is already ACTIVE", severity="warning")
            return
        self._with_password("resume", f"Resume trading (now {trading})",
                            lambda password: self._run("resume", lambda pw: self.link.resume(pw or ""), trading, password))

    def action_policies(self) -> None:
        self.push_screen(PoliciesScreen(self.link, lambda: list((self._state or {}).get("breakers") or [])))

    def action_next_theme(self) -> None:
        self.theme = next_theme(self.theme)

    def action_help(self) -> None:
        keys = []
        for binding_id, what in HELP:
            binding = next((b for b in BINDINGS if b.id == binding_id), None)
            if binding is not None:
                key = self._keymap.get(binding_id, binding.key)
                keys.append((", ".join(self.get_key_display(binding.with_key(k)) for k in key.split(",")), what,
                             binding_id))
        self.push_screen(HelpScreen(keys))

    def action_quit_console(self) -> None:
        if not self.owns_engine:
            self.exit("detach")
            return
        body = ("The engine and the gateway run in this process: quitting stops them, and bots lose their "
                "gateway. Positions and resting orders stay on the exchange.\nTo keep an engine running without "
                "a console, start it with `perpguard --engine-only` and use `perpguard attach`.")

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self.exit("quit")

        self.push_screen(ConfirmScreen("Quit perpguard?", body, "Quit", confirm_keys=("y", "q"), danger=False),
                         answered)

async def run_console(link: EngineLink, owns_engine: bool, *, keymap: dict[str, str] | None = None,
                      theme: str | None = None, headless: bool = False) -> str | None:
    """Run the console on the current asyncio loop until the trader quits or detaches, or the
    terminal goes away. Returns "quit", "detach" or "hangup". It never stops the engine: the
    caller decides (the one-process mode stops it on "quit" and "hangup")."""
    app = PerpguardApp(link, owns_engine, keymap=keymap, theme=theme)
    with exit_on_hangup(app):
        await app.run_async(headless=headless)
    return app.return_value
