"""Positions: one row per open position, keyed by market, updated by keyed diff (as Dolphie
does): rows that closed are removed, new ones added, and in the rest only the cells whose text
changed are rewritten. Rows are ordered closest-to-liquidation first; the table re-sorts only
when that order changed. Market, liquidation price and distance take the distance's colour."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from console import format as fmt
from console.palette import RiskPalette, palette_for
from console.risk import MUTED, OK, distance_level, pnl_level

# (key, label, width, right-aligned). Widths include a one-space gap (cell padding is 0 so the
# ten columns fit 80 terminal columns with the border and the scrollbar).
COLUMNS = (
    ("coin", "Market", 7, False),
    ("side", "Side", 6, False),
    ("size", "Size", 8, True),
    ("entry", "Entry", 8, True),
    ("mark", "Mark", 8, True),
    ("notional", "Notional", 9, True),
    ("lev", "Lev", 6, True),
    ("upnl", "uPnL", 9, True),
    ("liq", "Liq px", 8, True),
    ("dist", "Dist", 7, True),
)
COLUMN_KEYS = tuple(c[0] for c in COLUMNS)
_RIGHT = {c[0] for c in COLUMNS if c[3]}

Cell = tuple[str, str]  # (text, risk level)

# DataTable keeps its cells in `_data[row_key][column_key]` and its render caches keyed on
# `_update_count` (Textual 0.80 to 8.x); if a later Textual changes that, fall back to update_cell.
_FAST_CELLS = all(hasattr(DataTable, name) for name in ("update_cell", "_render_cell")) and \
    "_update_count" in DataTable.__init__.__code__.co_names


def position_cells(p: dict) -> tuple[Cell, ...]:
    """The row for one `engine_state` position, as (text, level) pairs in column order."""
    level = distance_level(p.get("distance"))
    alert = level if level != OK else ""  # market and liquidation price light up only when close
    upnl = p.get("unrealized_pnl")
    return (
        (str(p.get("coin", "?")), alert),
        (str(p.get("side") or ("long" if (p.get("size") or 0) > 0 else "short")), ""),
        (fmt.size(p.get("size")), ""),
        (fmt.price(p.get("entry_px")), ""),
        (fmt.price(p.get("mark_px")), ""),
        (fmt.usd(p.get("notional"), cents_below=0), ""),
        (fmt.leverage(p.get("leverage")), ""),
        (fmt.usd(upnl, signed=True), pnl_level(upnl)),
        (fmt.price(p.get("liquidation_px")) if p.get("liquidation_px") is not None else "none", alert),
        (fmt.percent(p.get("distance")) if p.get("distance") is not None else fmt.MISSING, level),
    )


def _order_key(p: dict) -> tuple:
    distance = p.get("distance")
    return (distance is None, distance if distance is not None else 0.0, str(p.get("coin")))


class PositionsTable(DataTable):
    DEFAULT_CSS = """
    PositionsTable { height: 1fr; scrollbar-size-vertical: 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", cell_padding=0, zebra_stripes=False)
        self._shown: dict[str, tuple[Cell, ...]] = {}
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

    def show(self, positions: list[dict]) -> int:
        """Apply the keyed diff; returns how many cells were written (0 when nothing moved)."""
        palette = palette_for(self.app)
        if palette is not self._palette:  # new theme: every cell is repainted
            self._palette = palette
            self._shown = {k: () for k in self._shown}
        rows = {str(p.get("coin")): p for p in positions}
        written = 0
        for key in [k for k in self._shown if k not in rows]:
            self.remove_row(key)
            del self._shown[key]
            written += 1
        for key, position in rows.items():
            cells = position_cells(position)
            old = self._shown.get(key)
            if old is None:
                self.add_row(*(self._cell_text(c, cell, palette) for c, cell in zip(COLUMN_KEYS, cells)), key=key)
                written += len(cells)
            elif old != cells:
                for i, cell in enumerate(cells):
                    if not old or old[i] != cell:
                        self._write_cell(key, COLUMN_KEYS[i], self._cell_text(COLUMN_KEYS[i], cell, palette))
                        written += 1
            self._shown[key] = cells
        if written:
            self._cells_written()
        order = [str(p.get("coin")) for p in sorted(positions, key=_order_key)]
        if order != self._order:
            self._sort(order)
        return written

    def _write_cell(self, row: str, column: str, value: Text) -> None:
        """`update_cell` without its per-cell repaint request: with 200 rows moving, thousands
        of cells change per picture, and one repaint for all of them is what the screen needs."""
        if _FAST_CELLS:
            self._data[RowKey(row)][ColumnKey(column)] = value
        else:
            self.update_cell(row, column, value)

    def _cells_written(self) -> None:
        if _FAST_CELLS:
            self._update_count += 1
            self.refresh()

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
