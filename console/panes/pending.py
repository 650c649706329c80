"""Pending: DELAY and APPROVAL orders held by the engine, with the time left (until a DELAY
order is re-checked and sent, or until an APPROVAL expires) and why they were held. APPROVAL
orders (the ones waiting for the trader) come first. Keyed by the action id; the cursor stays on
the action it was on when others come and go, so `a` and `c` act on the row the trader is
looking at."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from console import format as fmt
from console.palette import RiskPalette, palette_for
from console.risk import MUTED, WARN

COLUMNS = (("tier", "Tier", 9), ("side", "Side", 5), ("market", "Market", 7), ("amount", "Amount", 12),
           ("left", "Countdown", 13), ("reason", "Reason", 30))
COLUMN_KEYS = tuple(c[0] for c in COLUMNS)
FIXED_WIDTH = sum(c[2] for c in COLUMNS[:-1])
SOON_SECONDS = 60.0  # a countdown under a minute is shown as a warning

Cell = tuple[str, str]


def amount(p: dict) -> str:
    if p.get("notional_usd") is not None:
        return f"{fmt.usd(p['notional_usd'])} USD"
    if p.get("size") is not None:
        return f"{fmt.price(p['size'])} {p.get('market', '')}".strip()
    return fmt.MISSING


def time_left(p: dict, now: float | None) -> float | None:
    due = p.get("execute_at") if p.get("tier") == "DELAY" else p.get("expires_at")
    return None if due is None or now is None else due - now


def pending_cells(p: dict, now: float | None) -> tuple[Cell, ...]:
    left = time_left(p, now)
    tier = str(p.get("tier", "?"))
    countdown = ("sends " if tier == "DELAY" else "exp ") + fmt.duration(left) if left is not None else fmt.MISSING
    return (
        (tier, WARN if tier == "APPROVAL" else ""),
        (str(p.get("side", "")), ""),
        (str(p.get("market", "")), ""),
        (amount(p), ""),
        (countdown, WARN if left is not None and left < SOON_SECONDS else ""),
        (str(p.get("reason") or ""), MUTED),
    )


def describe(p: dict) -> str:
    """`APPROVAL buy BTC 50,000 USD`: how a notification names an action."""
    return f"{p.get('tier', '')} {p.get('side', '')} {p.get('market', '')} {amount(p)}".strip()


class PendingTable(DataTable):
    DEFAULT_CSS = """
    PendingTable { height: 1fr; scrollbar-size-vertical: 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", cell_padding=0)
        self._shown: dict[str, tuple[Cell, ...]] = {}
        self._actions: dict[str, dict] = {}
        self._order: list[str] = []
        self._palette: RiskPalette | None = None

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, width=width, key=key)

    def on_resize(self) -> None:
        """The reason column takes the width that is left."""
        column = self.columns.get(COLUMN_KEYS[-1])  # type: ignore[call-overload]
        width = max(20, self.size.width - FIXED_WIDTH - 1)
        if column is not None and column.width != width:
            column.width = width
            self._require_update_dimensions = True
            self.refresh()

    @property
    def selected(self) -> dict | None:
        """The action under the cursor, as the last picture showed it."""
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:
            return None
        return self._actions.get(key)

    def first(self, tier: str | None = None) -> dict | None:
        """The first action in the table's order (of `tier`, if given)."""
        return next((self._actions[k] for k in self._order if tier is None or self._actions[k].get("tier") == tier),
                    None)

    def select(self, action: dict) -> None:
        key = str(action.get("id"))
        if key in self._shown:
            self.move_cursor(row=self.get_row_index(key))

    def show(self, pending: list[dict], now: float | None) -> None:
        palette = palette_for(self.app)
        if palette is not self._palette:
            self._palette = palette
            self._shown = {k: () for k in self._shown}
        selected = self.selected
        rows = {str(p["id"]): p for p in pending if p.get("id") is not None}
        order = sorted(rows, key=lambda k: rows[k].get("tier") != "APPROVAL")  # stable: otherwise as held
        if [k for k in self._order if k in rows] + [k for k in order if k not in self._shown] != order:
            self.clear()  # an APPROVAL arrived behind a DELAY: the rows again, in order (a handful)
            self._shown = {}
        for key in [k for k in self._shown if k not in rows]:
            self.remove_row(key)
            del self._shown[key]
        for key in order:
            action = rows[key]
            cells = pending_cells(action, now)
            old = self._shown.get(key)
            if old is None:
                self.add_row(*(Text(t, style=palette[lv] if lv else "", no_wrap=True) for t, lv in cells), key=key)
            elif old != cells:
                for i, (t, lv) in enumerate(cells):
                    if not old or old[i] != (t, lv):
                        self.update_cell(key, COLUMN_KEYS[i], Text(t, style=palette[lv] if lv else "", no_wrap=True))
            self._shown[key] = cells
        self._actions, self._order = rows, order
        index = 0  # not in the trader's hands: the most urgent row is the highlighted one
        if self.has_focus and selected is not None and str(selected["id"]) in rows:
            index = self.get_row_index(str(selected["id"]))
        if rows and index != self.cursor_row:
            self.move_cursor(row=index, scroll=False)
