"""Positions: one row per open position, keyed by market, updated by keyed diff (as Dolphie
does): rows that closed are removed, new ones added, and in the rest only the cells whose text
changed are rewritten. Rows are ordered closest-to-liquidation first; the table re-sorts only
when that order changed. Market, liquidation price and distance take the distance's colour; the
last column is the stop resting on the venue (price, distance from mark) or UNPROTECTED."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from console import format as fmt
from console.palette import RiskPalette, palette_for
from console.risk import BREACH, MUTED, OK, distance_level, pnl_level
from engine.api.state import PositionRow

# (key, label, width, right-aligned). Widths include a one-space gap (cell padding is 0 so the
# ten columns fit 80 terminal columns with the border and the scrollbar).
COLUMNS = (
    ("coin", "Market", 7, False),
    ("side", "Side", 5, False),
    ("size", "Size", 7, True),
    ("entry", "Entry", 8, True),
    ("mark", "Mark", 8, True),
    ("lev", "Lev", 6, True),
    ("upnl", "uPnL", 8, True),
    ("liq", "Liq px", 8, True),
    ("dist", "Dist", 7, True),
    ("stop", "Venue stop", 13, True),
)
COLUMN_KEYS = tuple(c[0] for c in COLUMNS)
_RIGHT = {c[0] for c in COLUMNS if c[3]}

Cell = tuple[str, str]  # (text, risk level)
PRICE_LEN = 7  # the price columns' width less their gap: a sub-0.1 price gives up its last decimal


def position_cells(p: PositionRow) -> tuple[Cell, ...]:
    """The row for one position, as (text, level) pairs in column order."""
    level = distance_level(p.distance)
    alert = level if level != OK else ""  # market and liquidation price light up only when close
    return (
        (p.coin, alert),
        (p.side or ("long" if p.size > 0 else "short"), ""),
        (fmt.size(p.size), ""),
        (fmt.price(p.entry_px, PRICE_LEN), ""),
        (fmt.price(p.mark_px, PRICE_LEN), ""),
        (fmt.leverage(p.leverage), ""),
        (fmt.usd(p.unrealized_pnl, signed=True), pnl_level(p.unrealized_pnl)),
        (fmt.price(p.liquidation_px, PRICE_LEN) if p.liquidation_px is not None else "none", alert),
        (fmt.percent(p.distance) if p.distance is not None else fmt.MISSING, level),
        stop_cell(p),
    )


def stop_cell(p: PositionRow) -> Cell:
    """The venue stop's price and its distance from the mark; UNPROTECTED when it should have
    one and has none."""
    if p.unprotected:
        return "UNPROTECTED", BREACH
    stop = p.venue_stop
    if stop is None:
        return ("none" if p.liquidation_px is None else fmt.MISSING), ""  # none needed: nothing to liquidate
    away = f" {fmt.percent(abs(p.mark_px - stop.trigger_px) / p.mark_px)}" if p.mark_px else ""
    return f"{fmt.price(stop.trigger_px, PRICE_LEN)}{away}", ""


def _order_key(p: PositionRow) -> tuple:
    return (p.distance is None, p.distance if p.distance is not None else 0.0, p.coin)


class PositionsTable(DataTable):
    DEFAULT_CSS = """
    PositionsTable { height: 1fr; scrollbar-size-vertical: 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", cell_padding=0, zebra_stripes=False)
        self._shown: dict[str, tuple[Cell, ...]] = {}  # what each row's cells show now
        self._latest: dict[str, PositionRow] = {}  # the newest picture's rows
        self._order: list[str] = []
        self._palette: RiskPalette | None = None

    def on_mount(self) -> None:
        for key, label, width, right in COLUMNS:
            self.add_column(Text(label, justify="right" if right else "left"), width=width, key=key)

    def _cell_text(self, key: str, cell: Cell, palette: RiskPalette) -> Text:
        text, level = cell
        style = palette[level] if level else ""
        if key in _RIGHT:
            return Text(text, style=style, justify="right", no_wrap=True)
        return Text(text, style=style, no_wrap=True)

    def show(self, positions: tuple[PositionRow, ...]) -> int:
        """Apply the keyed diff; returns how many cells were written (0 when nothing moved).
        Rows far off screen (more than a screen away) are written once they come near: with
        200 positions that is most of them, and `update_cell` is the costliest step."""
        palette = palette_for(self.app)
        if palette is not self._palette:  # new theme: every cell is repainted
            self._palette = palette
            self._shown = {k: () for k in self._shown}
        self._latest = {p.coin: p for p in positions}
        written = 0
        for key in [k for k in self._shown if k not in self._latest]:
            self.remove_row(key)
            del self._shown[key]
            written += 1
        for key, position in self._latest.items():
            if key not in self._shown:
                cells = self._shown[key] = position_cells(position)
                self.add_row(*(self._cell_text(c, cell, palette) for c, cell in zip(COLUMN_KEYS, cells)), key=key)
                written += len(cells)
        order = [p.coin for p in sorted(positions, key=_order_key)]
        if order != self._order:
            self._sort(order)
        return written + self._write_near()

    def _write_near(self) -> int:
        """Rewrite the changed cells of the rows on screen or a screen away from it."""
        palette, written = self._palette, 0
        height = self.size.height
        top = round(self.scroll_y)
        near = range(max(0, top - height), top + 2 * height) if height else None  # None: not laid out yet
        for key, position in self._latest.items():
            cells, old = position_cells(position), self._shown[key]
            if old == cells or (near is not None and self.get_row_index(key) not in near):
                continue
            for i, cell in enumerate(cells):
                if not old or old[i] != cell:
                    self.update_cell(key, COLUMN_KEYS[i], self._cell_text(COLUMN_KEYS[i], cell, palette))
                    written += 1
            self._shown[key] = cells
        return written

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._latest:
            self.call_later(self._write_near)  # rows that come near show the newest picture

    def _sort(self, order: list[str]) -> None:
        """One sort at the end, keeping the cursor on the market it was on."""
        selected = self.selected_key if self._order else None  # the first picture starts at the top
        rank = {key: i for i, key in enumerate(order)}
        self.sort("coin", key=lambda coin: rank.get(coin.plain, len(rank)))
        self._order = order
        if selected is not None and selected in rank:
            self.move_cursor(row=self.get_row_index(selected), scroll=False)

    @property
    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:  # the cursor sits outside the rows (table just emptied)
            return None

    def empty_text(self) -> Text:
        return Text("no open positions", style=palette_for(self.app)[MUTED])
