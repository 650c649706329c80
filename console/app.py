"""The perpguard console (SPEC section 13): `PerpguardApp(link, owns_engine, keymap, theme)`.

It reads the engine only through its `EngineLink`. A timer pulls the newest `EngineState` and
the events since the last pull `REFRESH_SECONDS` apart, whatever the feed rate, so a storm of
marks costs one redraw per tick, and the panes rewrite only what changed. Commands run as
workers (console.commands); every outcome and failure is reported in one place.

Layouts (console.views): an overview of every pane at once, a grid from 120x34 and condensed
below (80x24 over SSH); 1-4 zoom one view, 0 or Escape goes back to the overview. Below 120x34
a toast is one line under the header (themes/console.tcss); no toast is drawn over a modal.

`settled` says the screen shows the newest picture in full, for tests to wait on.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Iterable

from textual import events
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Container, Vertical
from textual.driver import Driver
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Static
from textual.worker import Worker

from console.bindings import BINDINGS, COMMANDS, HELP, KeyMap
from console.commands import LinkCommands
from console.link import EngineLink, LinkStatus
from console.outcomes import toast_for
from console.palette import RiskPalette, palette_for
from console.panes.breakers import BreakersPane
from console.panes.buffer import BufferChart, BufferGauge
from console.panes.events import EventLog, RecentEvents
from console.panes.header import HeaderPane
from console.panes.pending import PendingTable, describe
from console.panes.positions import PositionsTable
from console.panes.viewbar import ViewBar
from console.screens.confirm import ConfirmScreen
from console.screens.help import HelpScreen
from console.screens.password import PasswordScreen
from console.screens.policies import PoliciesScreen
from console.terminal import exit_on_hangup, terminal_driver, watch_terminal
from console.views import Views
from engine.api.state import EngineState
from engine.domain.model import Tier, TradingState
from themes import CONSOLE_CSS, DEFAULT_THEME, RISK_DEFAULTS, next_theme, register_all, theme_name

REFRESH_SECONDS = 0.25  # four redraws a second at most, whatever the feed rate
TABLE_SECONDS = 0.5  # the positions table, the costliest pane to repaint: twice a second
MAX_TOASTS_PER_REFRESH = 3


class PerpguardApp(App[str]):
    TITLE = "perpguard"
    CSS_PATH = str(CONSOLE_CSS)
    BINDINGS = BINDINGS

    def __init__(self, link: EngineLink, owns_engine: bool, keymap: dict[str, str] | None = None,
                 theme: str | None = None, *, refresh_seconds: float = REFRESH_SECONDS,
                 driver_class: type[Driver] | None = None) -> None:
        super().__init__(driver_class=driver_class)
        self.link, self.owns_engine, self.refresh_seconds = link, owns_engine, refresh_seconds
        register_all(self)
        wanted = theme_name(theme)
        self._theme_problem = None if wanted in self.available_themes else f"unknown theme {theme!r}: using dark"
        self.theme = wanted if wanted in self.available_themes else DEFAULT_THEME
        self.keys = KeyMap(BINDINGS, keymap)
        if self.keys.keymap:
            self.set_keymap(self.keys.keymap)
        self.views = Views(self, self.keys)
        self.link_commands = LinkCommands(self, link, finished=self.refresh_now)
        self.pictures_shown = 0  # pictures put on screen: the redraw budget tests hold the app to
        self._state: EngineState | None = None
        self._status: LinkStatus | None = None
        self._palette: RiskPalette | None = None  # the colours the panes were painted in
        self._backlog = True  # the first events drained are history: logged, not toasted
        self._binding_key: tuple | None = None
        self._asked_stream_password = False
        self._table_at = float("-inf")
        self._table_state: EngineState | None = None  # the picture the positions table shows

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
        self.views.apply_layout()
        await self.link.open()
        self.theme_changed_signal.subscribe(self, lambda _theme: self.repaint())
        self.screen_change_signal.subscribe(self, self._screen_changed, immediate=True)  # before a frame
        self.refresh_now()
        self.views.focus_default()
        self.set_interval(self.refresh_seconds, self.refresh_now)
        watch_terminal(self)
        if self._theme_problem:
            self.notify(self._theme_problem, severity="warning")

    async def on_unmount(self) -> None:
        await self.link.close()

    def on_resize(self, event: events.Resize) -> None:
        self.call_later(self.views.apply_layout)  # after the App's own handler has taken the new size

    def on_breakers_pane_lines_changed(self, event: BreakersPane.LinesChanged) -> None:
        self.views.size_positions()  # the condensed positions table gets the lines the breakers left

    def _screen_changed(self, screen: Screen) -> None:
        # A modal (confirm, password, policies, help) hides the toasts until it closes: they
        # would cover the question, and they stay in the log (themes/console.tcss).
        self.set_class(isinstance(screen, ModalScreen), "-modal")

    # ---- the feed ------------------------------------------------------------------------

    @property
    def settled(self) -> bool:
        """The screen shows the link's newest picture in full: the first one has arrived and
        been applied, the throttled positions table and the chart have caught up with it, the
        layout fits the terminal and every pane is painted in the current theme's colours."""
        latest = self.link.latest_state()
        if latest is None or self._state is None:
            return False
        chart_drawn = not self.views.shows("risk") or self.query_one(BufferChart).caught_up
        return (self._state == latest and self._table_state == latest and self._palette is palette_for(self)
                and self.views.settled and chart_drawn)

    def refresh_now(self, force: bool = False) -> None:
        """Pull the newest picture and events from the link and show what changed (`force`:
        repaint the throttled panes too, the positions table and the chart)."""
        if not self.is_running:
            return  # shutting down: the panes may already be gone
        events = self.link.drain_events()
        status = self.link.status()
        state = self.link.latest_state()
        if palette_for(self) is not self._palette:
            self._repaint_logs()  # a new theme, whether or not its signal came first
            force = True
        if events:
            self.query_one(EventLog).add(events)
            self.query_one(RecentEvents).add(events)
            if not self._backlog:
                self._toast(events)
        self._backlog = False
        if force or state is not self._state or status != self._status or self._table_state is not state:
            self._state, self._status = state, status
            self._show(state, status, force)
        elif self.views.shows("risk"):
            self.query_one(BufferChart).redraw()  # one the chart's own throttle held back
        self._ask_stream_password()

    def repaint(self) -> None:
        """Everything again in the current theme's colours."""
        self._repaint_logs()
        self._show(self._state, self._status or self.link.status(), force=True)

    def _repaint_logs(self) -> None:
        self._palette = palette_for(self)
        self.query_one(EventLog).repaint()
        self.query_one(RecentEvents).repaint()

    def _show(self, state: EngineState | None, status: LinkStatus, force: bool = False) -> None:
        self.query_one(HeaderPane).show(state, status, self.link.description, self.keys)
        if state is not None:
            with self.batch_update():
                table = self.query_one(PositionsTable)
                now = time.monotonic()
                if force or now - self._table_at >= TABLE_SECONDS or len(state.positions) != table.row_count:
                    self._table_at, self._table_state = now, state
                    table.show(state.positions)
                self.query_one(PendingTable).show(state.pending, state.time)
                self.query_one(BufferGauge).show(state.account)
                self.query_one(BreakersPane).show(state)
                chart = self.query_one(BufferChart)
                chart.record(state)
                if self.views.shows("risk"):
                    chart.redraw(force=force)
                self.views.show(state)
            self.pictures_shown += 1
        self.views.update_view_bar()
        self._refresh_bindings_if_changed()

    def _toast(self, events: list[dict]) -> None:
        toasts = [t for t in (toast_for(e, self.keys) for e in events) if t is not None]
        for message, severity, timeout in toasts[-MAX_TOASTS_PER_REFRESH:]:
            self.notify(message, severity=severity, timeout=timeout, markup=False)

    def _ask_stream_password(self) -> None:
        """A gateway that refuses the stream without credentials: ask the password once."""
        if not self.link.needs_password:
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
        the pending table), `c` with nothing pending, `r` while ACTIVE. False hides `q`'s other
        meaning: quit when the engine runs in here, detach when it runs on its own."""
        views = self.views
        if action == "quit_console":
            return self.owns_engine
        if action == "detach":
            return not self.owns_engine
        if action == "approve":
            if views.pending_in_hand():
                selected = views.selected_pending()
                return True if selected and selected.tier == Tier.APPROVAL else None
            return True if views.pending_target(Tier.APPROVAL) else None
        if action == "cancel_pending":
            target = views.selected_pending() if views.pending_in_hand() else views.pending_target(None)
            return True if target else None
        if action == "resume":
            return True if self._state and self._state.trading_state is not TradingState.ACTIVE else None
        return True

    def _refresh_bindings_if_changed(self) -> None:
        selected, approval = self.views.selected_pending(), self.views.pending_target(Tier.APPROVAL)
        key = (selected and selected.id, selected and selected.tier, approval and approval.id,
               self._state and self._state.trading_state, self.views.pending_in_hand())
        if key != self._binding_key:
            self._binding_key = key
            self.refresh_bindings()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "pending":
            self._refresh_bindings_if_changed()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        self._refresh_bindings_if_changed()  # `a` and `c` read the focus: grey them out or not

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.link_commands.worker_changed(event)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for title, help_text, action in COMMANDS:
            if action == "quit_console" and not self.owns_engine:
                action = "detach"
            yield SystemCommand(title, help_text, partial(self.run_action, action))
        yield from super().get_system_commands(screen)

    # ---- actions -------------------------------------------------------------------------

    def action_show_view(self, view: str) -> None:
        self.views.show_view(view)

    def action_approve(self) -> None:
        views = self.views
        if not views.pending_in_hand():
            target = views.pending_target(Tier.APPROVAL)
            if target is None:
                self.notify("No order waits for approval", severity="warning")
            else:
                views.bring_pending(target, "approve", "approve")
            return
        action = views.selected_pending()
        if action is None or action.tier != Tier.APPROVAL:
            self.notify("Highlight an APPROVAL order first", severity="warning")
            return
        subject, commands = describe(action), self.link_commands
        commands.with_password("approve", f"Approve {subject}",
                               lambda password: commands.run("approve", partial(self.link.approve, action.id),
                                                             subject, password))

    def action_cancel_pending(self) -> None:
        views = self.views
        if not views.pending_in_hand():
            target = views.pending_target(None)
            if target is None:
                self.notify("No pending order to cancel", severity="warning")
            else:
                views.bring_pending(target, "cancel-pending", "cancel")
            return
        action = views.selected_pending()
        if action is None:
            self.notify("No pending order highlighted", severity="warning")
            return
        self.link_commands.run("cancel", partial(self.link.cancel_pending, action.id), describe(action),
                               self.link_commands.password)

    def action_panic(self) -> None:
        positions = self._state.positions if self._state else ()
        gross = sum(abs(p.notional or 0.0) for p in positions)
        body = (f"Cancel every open order and close all {len(positions)} positions (gross {gross:,.0f} USD) with "
                "reduce-only IOC orders, then HALT trading.\nOnly resume with the master password lifts HALTED.")

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self.notify("PANIC EXIT sent: flattening everything", severity="error")
                self.link_commands.run("kill", self.link.kill, "panic exit", self.link_commands.password)
            else:
                self.notify("Panic exit cancelled: nothing was sent")

        self.push_screen(ConfirmScreen("PANIC EXIT", body, "Flatten everything", confirm_keys=("!", "y")), answered)

    def action_resume(self) -> None:
        trading = self._state.trading_state if self._state else None
        if trading in (None, TradingState.ACTIVE):
            self.notify("Trading is already ACTIVE", severity="warning")
            return
        commands = self.link_commands
        commands.with_password("resume", f"Resume trading (now {trading.value})",
                               lambda password: commands.run("resume", lambda pw: self.link.resume(pw or ""),
                                                             trading.value, password))

    def action_policies(self) -> None:
        self.push_screen(PoliciesScreen(self.link, lambda: self._state.breakers if self._state else ()))

    def action_next_theme(self) -> None:
        self.theme = next_theme(self.theme)

    def action_help(self) -> None:
        keys = []
        for binding_id, what in HELP:
            binding = next((b for b in BINDINGS if b.id == binding_id), None)
            if binding is not None:
                shown = ", ".join(self.get_key_display(binding.with_key(k)) for k in self.keys.keys(binding_id))
                keys.append((shown, what, binding_id))
        self.push_screen(HelpScreen(keys))

    def action_detach(self) -> None:
        self.exit("detach")  # the engine runs on its own: nothing to ask

    def action_quit_console(self) -> None:
        if not self.owns_engine:
            self.action_detach()
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
    app = PerpguardApp(link, owns_engine, keymap=keymap, theme=theme, driver_class=terminal_driver())
    with exit_on_hangup(app):
        await app.run_async(headless=headless)
    return app.return_value
