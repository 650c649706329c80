"""The console's layouts, and which pending order `a` and `c` act on.

Overview (0 or Escape): every pane at once. From 120x34, a grid of boxed panes with the buffer
chart; smaller (80x24 over SSH), the same panes condensed: a rule over each instead of a box, a
one-line buffer gauge, at most three lines of breakers, the newest events one line each.
Zoom (1-4, at any size): one view full screen: 1 positions, 2 pending, 3 risk (the buffer
chart and every breaker), 4 the whole log. The view bar names the keys; the wide overview
hides it.

`a` and `c` act on the highlighted row of the pending table when that table has the focus.
Otherwise the first press brings the table up (zooming to it if it is not on screen) with a
row highlighted (an APPROVAL one for `a`) and says what a second press will do, so nothing is
approved or cancelled that the trader has not seen highlighted.

`Views` is a part the app owns: it is given the app (for its size, its widgets and the focus,
all through Textual's public API) and the key map, and keeps its own state.
"""

from __future__ import annotations

from textual.app import App

from console.bindings import KeyMap
from console.panes.breakers import BreakersPane
from console.panes.buffer import BufferChart, BufferGauge
from console.panes.pending import PendingTable, describe
from console.panes.positions import PositionsTable
from console.panes.viewbar import ViewBar
from console.risk import BREACH, MUTED, WARN, buffer_level, distance_level
from engine.api.state import EngineState, PendingRow
from engine.domain.model import Tier

WIDE_COLUMNS, TALL_ROWS = 120, 34  # the grid from here; below it, the condensed overview
# Condensed: the rows around the panes (header 2, view bar 1, footer 1), the gauge's (rule and
# bar) and the least the events keep (rule and two lines).
CONDENSED_FRAME_ROWS, CONDENSED_GAUGE_ROWS, CONDENSED_EVENT_ROWS = 4, 2, 3
VIEW_FOCUS = {"positions": "#positions", "pending": "#pending", "log": "#log"}
VIEW_BINDINGS = {"overview": "view-overview", "positions": "view-positions", "pending": "view-pending",
                 "risk": "view-risk", "log": "view-log"}
PANE_TITLES = {"positions-pane": "Positions", "risk-pane": "Margin buffer", "pending-pane": "Pending",
               "breakers-pane": "Breakers & limits", "log-pane": "Events"}


def is_compact(width: int, height: int) -> bool:
    """Below 120x34 (80x24 over SSH): condensed overview, one-line toasts."""
    return width < WIDE_COLUMNS or height < TALL_ROWS


class Views:
    def __init__(self, app: App, keys: KeyMap) -> None:
        self.app, self.keys = app, keys
        self.view = "overview"
        self.state: EngineState | None = None  # the picture the panes show
        self._applied: tuple | None = None  # (view, layout, compact, height) the widgets are set for
        self._positions_max: int | None = None
        self._titles = dict(PANE_TITLES)

    # ---- what is on screen ---------------------------------------------------------------

    @property
    def compact(self) -> bool:
        return is_compact(*self.app.size)

    @property
    def layout(self) -> str:
        """`grid` (wide overview), `condensed` (small overview) or `zoom` (one view)."""
        if self.view != "overview":
            return "zoom"
        return "condensed" if self.compact else "grid"

    def shows(self, view: str) -> bool:
        """Whether `view`'s pane is on screen."""
        return self.view in (view, "overview")

    @property
    def settled(self) -> bool:
        """The widgets are set for the view and the terminal's size (a resize is applied once
        Textual has delivered it)."""
        return self._applied == self._wanted() and self._positions_max == self._positions_height()

    def _wanted(self) -> tuple:
        return self.view, self.layout, self.compact, self.app.size.height

    # ---- layout --------------------------------------------------------------------------

    def apply_layout(self) -> None:
        wanted = self._wanted()
        if wanted == self._applied:
            return
        self._applied = wanted
        layout, compact = wanted[1], wanted[2]
        query = self.app.query_one
        self.app.set_class(compact, "-compact")  # one-line toasts (themes/console.tcss)
        query("#dashboard").set_classes(f"view-{self.view} layout-{layout}")
        condensed = layout == "condensed"
        query(BufferGauge).set_condensed(condensed)
        query(BreakersPane).configure(condensed=condensed, show_causes=not compact)
        query(PendingTable).show_header = not condensed
        query(ViewBar).display = layout != "grid"
        self.size_positions()  # after the breakers, whose line count it reads
        self.put_titles()
        self.update_view_bar()

    def show(self, state: EngineState) -> None:
        """The titles, sizes and counts for a new picture (the panes show it themselves)."""
        self.state = state
        approvals = state.approvals
        approve = self.keys.label("approve")
        self._titles.update({
            "positions-pane": f"Positions ({len(state.positions)})",
            "pending-pane": f"Pending ({len(state.pending)}" + (
                f", {approvals} need{'s' if approvals == 1 else ''} approval: {approve}" if approvals else "") + ")",
            "breakers-pane": "Breakers & limits" + (f" ({state.tripped} TRIPPED)" if state.tripped else ""),
        })
        self.put_titles()
        self.app.query_one("#positions-empty").display = not state.positions
        self.app.query_one("#pending-empty").display = not state.pending
        self.size_positions()

    def _positions_height(self) -> int | None:
        if self.layout != "condensed":
            return None
        pending = len(self.state.pending) if self.state else 0
        others = (CONDENSED_FRAME_ROWS + CONDENSED_GAUGE_ROWS + 1 + min(3, max(1, pending))
                  + 1 + self.app.query_one(BreakersPane).line_count + CONDENSED_EVENT_ROWS)
        return max(2, self.app.size.height - others - 1)  # 1: the positions' own rule

    def size_positions(self) -> None:
        """Condensed: the positions table as tall as it needs, up to what the other panes leave
        (the newest events keep at least two lines); it scrolls beyond that."""
        max_height = self._positions_height()
        if max_height != self._positions_max:
            self._positions_max = max_height
            self.app.query_one(PositionsTable).styles.max_height = max_height

    def put_titles(self) -> None:
        """The panes' titles; on the condensed overview's rules (no corners), spaced out by hand."""
        pad = " " if self.layout == "condensed" else ""
        for pane_id, title in self._titles.items():
            pane = self.app.query_one(f"#{pane_id}")
            if pane.border_title != f"{pad}{title}{pad}":
                pane.border_title = f"{pad}{title}{pad}"

    def focus_default(self) -> None:
        """In the overview: the pending table when something waits, else the positions."""
        pending = self.app.query_one(PendingTable)
        (pending if pending.row_count else self.app.query_one(PositionsTable)).focus()

    def show_view(self, view: str) -> None:
        if view == self.view:
            return
        self.view = view
        self.apply_layout()
        if view == "overview":
            self.focus_default()
        elif view in VIEW_FOCUS:
            self.app.query_one(VIEW_FOCUS[view]).focus()
        else:
            self.app.screen.set_focus(None)
        if view in ("risk", "overview"):
            self.app.call_after_refresh(self.app.query_one(BufferChart).redraw, True)
        self.update_view_bar()
        self.app.refresh_bindings()

    def update_view_bar(self) -> None:
        state = self.state
        counts = {}
        if state is not None:
            account = state.account
            closest = min((p.distance for p in state.positions if p.distance is not None), default=None)
            level = buffer_level(account.margin_buffer, account.warn_buffer, account.panic_buffer)
            counts = {
                "positions": (str(len(state.positions)), distance_level(closest) if state.positions else MUTED),
                "pending": (f"{len(state.pending)}" + ("!" if state.approvals else ""),
                            WARN if state.approvals else MUTED),
                "risk": (f"{state.tripped} tripped" if state.tripped else "", BREACH if state.tripped else level),
            }
        keys = {view: self.keys.label(binding, "") for view, binding in VIEW_BINDINGS.items()}
        self.app.query_one(ViewBar).show(self.view, counts, keys)

    # ---- the pending order the keys act on ------------------------------------------------

    def selected_pending(self) -> PendingRow | None:
        return self.app.query_one(PendingTable).selected

    def pending_in_hand(self) -> bool:
        """The pending table is on screen and has the focus: `a` and `c` act on its cursor row."""
        return self.shows("pending") and self.app.query_one(PendingTable).has_focus

    def pending_target(self, tier: Tier | None) -> PendingRow | None:
        """What a first press would pick: the highlighted row if it fits, else the first that does."""
        table = self.app.query_one(PendingTable)
        selected = table.selected
        if selected is not None and (tier is None or selected.tier == tier):
            return selected
        return table.first(tier)

    def bring_pending(self, action: PendingRow, binding_id: str, verb: str) -> None:
        """The first press of `a` or `c` away from the pending table: show it, highlight
        `action`, and say what the next press does."""
        if not self.shows("pending"):
            self.show_view("pending")
        table = self.app.query_one(PendingTable)
        table.focus()
        table.select(action)
        self.app.refresh_bindings()
        self.app.notify(f"Selected: {describe(action)}. Press {self.keys.label(binding_id)} again to {verb} it.")
