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
"""

from __future__ import annotations

from textual import events

from console.panes.breakers import BreakersPane
from console.panes.buffer import BufferChart, BufferGauge
from console.panes.pending import PendingTable, describe
from console.panes.positions import PositionsTable
from console.panes.viewbar import ViewBar
from console.risk import BREACH, MUTED, WARN, buffer_level, distance_level

WIDE_COLUMNS, TALL_ROWS = 120, 34  # the grid from here; below it, the condensed overview
# Condensed: the rows around the panes (header 2, view bar 1, footer 1), the gauge's (rule and
# bar) and the least the events keep (rule and two lines).
CONDENSED_FRAME_ROWS, CONDENSED_GAUGE_ROWS, CONDENSED_EVENT_ROWS = 4, 2, 3
VIEW_FOCUS = {"positions": "#positions", "pending": "#pending", "log": "#log"}
VIEW_BINDINGS = {"overview": "view-overview", "positions": "view-positions", "pending": "view-pending",
                 "risk": "view-risk", "log": "view-log"}


class Views:
    """Mixed into the App: needs `self.view`, `self._state`, `self._layout`, `self._positions_max`
    and `self._pane_titles`, and calls `self._refresh_bindings_if_changed`."""

    @property
    def compact(self) -> bool:
        width, height = self.size
        return width < WIDE_COLUMNS or height < TALL_ROWS

    @property
    def layout(self) -> str:
        """`grid` (wide overview), `condensed` (small overview) or `zoom` (one view)."""
        if self.view != "overview":
            return "zoom"
        return "condensed" if self.compact else "grid"

    def shows(self, view: str) -> bool:
        """Whether `view`'s pane is on screen."""
        return self.view in (view, "overview")

    def on_resize(self, event: events.Resize) -> None:
        self.call_later(self._apply_layout)  # after the App's own handler has taken the new size

    def _apply_layout(self) -> None:
        layout, compact, height = self.layout, self.compact, self.size.height
        if (self.view, layout, compact, height) == self._layout:
            return
        self._layout = (self.view, layout, compact, height)
        self.query_one("#dashboard").set_classes(f"view-{self.view} layout-{layout}")
        condensed = layout == "condensed"
        self.query_one(BufferGauge).set_condensed(condensed)
        self.query_one(BreakersPane).configure(condensed=condensed, show_causes=not compact)
        self.query_one(PendingTable).show_header = not condensed
        self.query_one(ViewBar).display = layout != "grid"
        self.size_positions()  # after the breakers, whose line count it reads
        self.put_titles()
        self._update_view_bar()

    def size_positions(self) -> None:
        """Condensed: the positions table as tall as it needs, up to what the other panes leave
        (the newest events keep at least two lines); it scrolls beyond that."""
        max_height = None
        if self.layout == "condensed":
            pending = len((self._state or {}).get("pending") or [])
            others = (CONDENSED_FRAME_ROWS + CONDENSED_GAUGE_ROWS + 1 + min(3, max(1, pending))
                      + 1 + self.query_one(BreakersPane).line_count + CONDENSED_EVENT_ROWS)
            max_height = max(2, self.size.height - others - 1)  # 1: the positions' own rule
        if max_height != self._positions_max:
            self._positions_max = max_height
            self.query_one(PositionsTable).styles.max_height = max_height

    def put_titles(self) -> None:
        """The panes' titles; on the condensed overview's rules (no corners), spaced out by hand."""
        pad = " " if self.layout == "condensed" else ""
        for pane_id, title in self._pane_titles.items():
            pane = self.query_one(f"#{pane_id}")
            if pane.border_title != f"{pad}{title}{pad}":
                pane.border_title = f"{pad}{title}{pad}"

    def focus_default(self) -> None:
        """In the overview: the pending table when something waits, else the positions."""
        pending = self.query_one(PendingTable)
        (pending if pending.row_count else self.query_one(PositionsTable)).focus()

    def action_show_view(self, view: str) -> None:
        if view == self.view:
            return
        self.view = view
        self._apply_layout()
        if view == "overview":
            self.focus_default()
        elif view in VIEW_FOCUS:
            self.query_one(VIEW_FOCUS[view]).focus()
        else:
            self.screen.set_focus(None)
        if view in ("risk", "overview"):
            self.call_after_refresh(self.query_one(BufferChart).redraw, True)
        self._update_view_bar()
        self.refresh_bindings()

    def key_label(self, binding_id: str, default: str) -> str:
        """The key(s) bound to `binding_id` now (a user's keymap included), for the screen."""
        keys = self._keymap.get(binding_id)
        if keys is None:
            keys = next((b.key for b in self.BINDINGS if getattr(b, "id", None) == binding_id), default)
        return "/".join({"escape": "Esc"}.get(key.strip(), key.strip()) for key in keys.split(","))

    def _update_view_bar(self) -> None:
        state = self._state or {}
        positions, pending = state.get("positions") or [], state.get("pending") or []
        account = state.get("account") or {}
        closest = min((p["distance"] for p in positions if p.get("distance") is not None), default=None)
        tripped = sum(1 for b in state.get("breakers") or [] if b.get("tripped"))
        approvals = sum(1 for p in pending if p.get("tier") == "APPROVAL")
        level = buffer_level(account.get("margin_buffer"), account.get("warn_buffer"), account.get("panic_buffer"))
        counts = {
            "positions": (str(len(positions)), distance_level(closest) if positions else MUTED),
            "pending": (f"{len(pending)}" + ("!" if approvals else ""), WARN if approvals else MUTED),
            "risk": (f"{tripped} tripped" if tripped else "", BREACH if tripped else level),
        }
        keys = {view: self.key_label(binding, "") for view, binding in VIEW_BINDINGS.items()}
        self.query_one(ViewBar).show(self.view, counts, keys)

    # ---- the pending order the keys act on ------------------------------------------------

    def selected_pending(self) -> dict | None:
        return self.query_one(PendingTable).selected

    def pending_in_hand(self) -> bool:
        """The pending table is on screen and has the focus: `a` and `c` act on its cursor row."""
        return self.shows("pending") and self.query_one(PendingTable).has_focus

    def pending_target(self, tier: str | None) -> dict | None:
        """What a first press would pick: the highlighted row if it fits, else the first that does."""
        table = self.query_one(PendingTable)
        selected = table.selected
        if selected is not None and (tier is None or selected.get("tier") == tier):
            return selected
        return table.first(tier)

    def bring_pending(self, action: dict, binding_id: str, verb: str) -> None:
        """The first press of `a` or `c` away from the pending table: show it, highlight
        `action`, and say what the next press does."""
        if not self.shows("pending"):
            self.action_show_view("pending")
        table = self.query_one(PendingTable)
        table.focus()
        table.select(action)
        self.refresh_bindings()
        self.notify(f"Selected: {describe(action)}. Press {self.key_label(binding_id, '?')} again to {verb} it.")

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        self._refresh_bindings_if_changed()  # `a` and `c` read the focus: grey them out or not
