"""Pending: DELAY and APPROVAL orders held by the engine, with the time left (until a DELAY
order is re-checked and sent, or until an APPROVAL expires) and why they were held. APPROVAL
orders (the ones waiting for the trader) come first. An order from a bot names it before its
reason (`alpha: ...`). Keyed by the action id; the cursor stays on
the action it was on when others come and go, so `a` and `c` act on the row the trader is
looking at."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from console import format as fmt
from console.palette import RiskPalette, palette_for
from console.risk import MUTED, WARN
from engine.api.state import PendingRow
from engine.domain.model import Tier

COLUMNS = (("tier", "Tier", 9), ("side", "Side", 5), ("market", "Market", 7), ("amount", "Amount", 12),
           ("left", "Countdown", 13), ("reason", "Reason", 30))
COLUMN_KEYS = tuple(c[0] for c in COLUMNS)
FIXED_WIDTH = sum(c[2] for c in COLUMNS[:-1])
REASON_MIN = COLUMNS[-1][2]
SOON_SECONDS = 60.0  # a countdown under a minute is shown as a warning

Cell = tuple[str, str]


def amount(p: PendingRow) -> str:
    """The order's size as it was submitted: USD notional, else base units."""
    if p.notional_usd is not None:
        return f"{fmt.usd(p.notional_usd)} USD"
    if p.size is not None:
        return f"{fmt.price(p.size)} {p.market}".strip()
    return fmt.MISSING


def bot_of(p: PendingRow) -> str | None:
    """The bot the held order came from (its intent's `bot`), None for the trader's own."""
    bot = p.intent.get("bot")
    return str(bot) if bot else None


def reason_text(p: PendingRow) -> str:
    """Why it was held, after the bot it came from when it came from one."""
    bot = bot_of(p)
    return f"{bot}: {p.reason}" if bot else p.reason


def time_left(p: PendingRow, now: float | None) -> float | None:
    """Seconds until a DELAY order is sent or an APPROVAL one expires."""
    due = p.execute_at if p.tier == Tier.DELAY else p.expires_at
    return None if due is None or now is None else due - now


def clip(text: str, width: int) -> str:
    """`text` cut to `width` characters, an ellipsis saying it was."""
    return text if len(text) <= width else text[:max(0, width - 1)] + "…"


def pending_cells(p: PendingRow, now: float | None, reason_width: int = REASON_MIN) -> tuple[Cell, ...]:
    left = time_left(p, now)
    countdown = ("sends " if p.tier == Tier.DELAY else "exp ") + fmt.duration(left) if left is not None else fmt.MISSING
    return (
        (p.tier, WARN if p.tier == Tier.APPROVAL else ""),
        (p.side, ""),
        (p.market, ""),
        (amount(p), ""),
        (countdown, WARN if left is not None and left < SOON_SECONDS else ""),
        (clip(reason_text(p), reason_width), MUTED),
    )


def describe(p: PendingRow) -> str:
    """`APPROVAL buy BTC 50,000 USD` (`... from alpha` for a bot's): how a notification names an action."""
    bot = bot_of(p)
    return f"{p.tier} {p.side} {p.market} {amount(p)}".strip() + (f" from {bot}" if bot else "")


class PendingTable(DataTable):
    DEFAULT_CSS = """
    PendingTable { height: 1fr; scrollbar-size-vertical: 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", cell_padding=0)
        self._shown: dict[str, tuple[Cell, ...]] = {}
        self._actions: dict[str, PendingRow] = {}
        self._order: list[str] = []
        self._palette: RiskPalette | None = None
        self._last: tuple[tuple[PendingRow, ...], float | None] | None = None  # what show() was given
        self._reason_width = REASON_MIN

    def on_mount(self) -> None:
        for key, label, width in COLUMNS[:-1]:
            self.add_column(label, width=width, key=key)
        self.add_column(COLUMNS[-1][1], key=COLUMN_KEYS[-1])  # as wide as its reasons, cut to what is left

    def on_resize(self) -> None:
        """The reasons are cut to the width that is left: at a new width, again."""
        if self._last is not None and self._fit_reasons() != self._reason_width:
            self._shown = {k: () for k in self._shown}
            self.show(*self._last)

    def _fit_reasons(self) -> int:
        return max(REASON_MIN, self.size.width - FIXED_WIDTH - 1)  # 1: the scrollbar

    @property
    def selected(self) -> PendingRow | None:
        """The action under the cursor, as the last picture showed it."""
        if not self.is_valid_coordinate(self.cursor_coordinate):
            return None
        return self._actions.get(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)

    def first(self, tier: Tier | None = None) -> PendingRow | None:
        """The first action in the table's order (of `tier`, if given)."""
        return next((self._actions[k] for k in self._order if tier is None or self._actions[k].tier == tier), None)

    def select(self, action: PendingRow) -> None:
        if action.id in self._shown:
            self.move_cursor(row=self.get_row_index(action.id))

    def show(self, pending: tuple[PendingRow, ...], now: float | None) -> None:
        """Apply the keyed diff for the held orders at engine time `now` (epoch seconds)."""
        self._last, self._reason_width = (pending, now), self._fit_reasons()
        palette = palette_for(self.app)
        if palette is not self._palette:
            self._palette = palette
            self._shown = {k: () for k in self._shown}
        selected = self.selected
        rows = {p.id: p for p in pending}
        order = sorted(rows, key=lambda k: rows[k].tier != Tier.APPROVAL)  # stable: otherwise as held
        if [k for k in self._order if k in rows] + [k for k in order if k not in self._shown] != order:
            self.clear()  # an APPROVAL arrived behind a DELAY: the rows again, in order (a handful)
            self._shown = {}
        for key in [k for k in self._shown if k not in rows]:
            self.remove_row(key)
            del self._shown[key]
        for key in order:
            action = rows[key]
            cells = pending_cells(action, now, self._reason_width)
            old = self._shown.get(key)
            if old is None:
                self.add_row(*(Text(t, style=palette[lv] if lv else "", no_wrap=True) for t, lv in cells), key=key)
            elif old != cells:
                for i, (t, lv) in enumerate(cells):
                    if not old or old[i] != (t, lv):
                        self.update_cell(key, COLUMN_KEYS[i], Text(t, style=palette[lv] if lv else "", no_wrap=True),
                                         update_width=i == len(cells) - 1)
            self._shown[key] = cells
        self._actions, self._order = rows, order
        index = 0  # not in the trader's hands: the most urgent row is the highlighted one
        if self.has_focus and selected is not None and selected.id in rows:
            index = self.get_row_index(selected.id)
        if rows and index != self.cursor_row:
            self.move_cursor(row=index, scroll=False)
