"""Breakers and limits: one usage bar per counting rule (`EngineState.breakers`): what is
used against what limit, TRIPPED with the cooldown left, and on top the causes that keep
trading stopped. The margin buffer reads the other way round (more is better).

Condensed (the small overview): at most three lines of short rows, two to a line when the width
allows, tripped and near-limit ones first; the margin buffer is left to its gauge unless tripped."""

from __future__ import annotations

from rich.text import Text
from textual.message import Message

from console import format as fmt
from console.panes.base import TextPane
from console.panes.header import cause_text, causes_of
from console.risk import BREACH, MUTED, OK, WARN, usage_level
from engine.api.state import BreakerRow, EngineState

NAME_WIDTH, FIGURES_WIDTH = 18, 20
FULL, EMPTY = "█", "░"
CONDENSED_LINES, CONDENSED_NAME, TWO_COLUMNS_FROM = 3, 14, 64
SHORT_NAMES = {"orders per minute": "orders/min"}
SEVERITY = {BREACH: 0, WARN: 1, OK: 2}


MARGIN_BUFFER = "margin buffer"  # the one row where more is better


def breaker_level(row: BreakerRow) -> str:
    if row.unit == "ratio" and row.name == MARGIN_BUFFER:
        if row.tripped:
            return BREACH
        return WARN if row.used is not None and row.limit is not None and row.used < row.limit * 1.2 else OK
    return usage_level(row.used, row.limit, row.tripped)


def usage_fraction(row: BreakerRow) -> float:
    """How full the bar is, 0 to 1."""
    if row.used is None:
        return 0.0
    if row.name == MARGIN_BUFFER:
        return max(0.0, min(1.0, row.used))
    if not row.limit:
        return 1.0 if row.tripped else 0.0
    return max(0.0, min(1.0, row.used / row.limit))


def figures(row: BreakerRow) -> str:
    used, limit = fmt.quantity(row.used, row.unit), fmt.quantity(row.limit, row.unit)
    if row.name == MARGIN_BUFFER:
        return f"{used} (warn {limit})"
    return f"{used} / {limit}" + (" USD" if row.unit == "USD" else "")


def short_figures(row: BreakerRow) -> str:
    """`54k/500k`, or TRIPPED with the cooldown left: the condensed row's right-hand side."""
    if row.tripped:
        return status(row)
    return f"{fmt.quantity(row.used, row.unit)}/{fmt.quantity(row.limit, row.unit)}"


def condensed_rows(rows: list[BreakerRow], capacity: int) -> tuple[list[BreakerRow], int]:
    """The rows a condensed pane shows (at most `capacity`, one slot kept to say how many more)
    and how many it leaves out. Tripped and warning rows first; when they do not all fit, the
    most used next; otherwise the engine's order, so rows do not move about."""
    rows = [r for r in rows if r.name != MARGIN_BUFFER or r.tripped]
    fits = len(rows) <= capacity
    ranked = sorted(enumerate(rows), key=lambda ir: (SEVERITY.get(breaker_level(ir[1]), 2),
                                                     0 if fits else -round(usage_fraction(ir[1]), 1), ir[0]))
    ranked = [r for _i, r in ranked]
    if fits:
        return ranked, 0
    return ranked[:capacity - 1], len(rows) - (capacity - 1)


def status(row: BreakerRow) -> str:
    if row.tripped:
        return "TRIPPED" + (f" {fmt.duration(row.cooldown_seconds)}" if row.cooldown_seconds > 0 else "")
    return "ok"


class BreakersPane(TextPane):
    DEFAULT_CSS = """
    BreakersPane { height: auto; padding: 0 1; }
    """

    class LinesChanged(Message):
        """The pane now takes a different number of lines (a new width fits two rows to a line,
        or fewer): the condensed overview sizes the positions table from it."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.show_causes = True  # the small layouts leave them to the header, which says the same
        self.condensed = False
        self._rows: tuple[tuple[BreakerRow, ...], list, float | None] | None = None

    def configure(self, *, condensed: bool, show_causes: bool) -> None:
        if (condensed, show_causes) != (self.condensed, self.show_causes):
            self.condensed, self.show_causes = condensed, show_causes
            if self._rows is not None:
                self._paint()

    def show(self, state: EngineState) -> None:
        self._rows = (state.breakers, causes_of(state), state.time)
        self._paint()

    def on_resize(self) -> None:
        if self._rows is not None:
            self._paint()

    def _paint(self) -> None:
        palette, lines_before = self.palette, self.line_count
        rows, causes, now = self._rows
        lines = []
        if self.show_causes:
            for cause, until, latched in causes:
                lines.append(Text(f"stopped: {cause_text(cause, until, now, latched)}", style=palette[WARN],
                                  no_wrap=True, overflow="ellipsis"))
        rows = list(rows)
        if self.condensed:
            lines += self._condensed_lines(rows)
            rows = []
        status_width = max((len(status(row)) for row in rows), default=2) + 1
        bar_width = max(5, self.size.width - 2 - NAME_WIDTH - FIGURES_WIDTH - status_width)
        for row in rows:
            level = breaker_level(row)
            filled = round(usage_fraction(row) * bar_width)
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(f"{row.name[:NAME_WIDTH - 1]:<{NAME_WIDTH}}")
            line.append(FULL * filled, palette[level])
            line.append(EMPTY * (bar_width - filled), palette.bar_background)
            line.append(f" {figures(row):<{FIGURES_WIDTH - 1}}", palette[MUTED])
            line.append(f" {status(row)}", palette[level] if level != OK else palette[MUTED])
            lines.append(line)
        if not lines:
            lines.append(Text("no counting policies", style=palette[MUTED]))
        self.set_text(Text("\n").join(lines))
        if self.line_count != lines_before:
            self.post_message(self.LinesChanged())

    def _condensed_lines(self, rows: list[BreakerRow]) -> list[Text]:
        palette, width = self.palette, self.size.width - 2
        columns = 2 if width >= TWO_COLUMNS_FROM else 1
        shown, more = condensed_rows(rows, columns * CONDENSED_LINES)
        cell_width = (width - 2 * (columns - 1)) // columns
        right_width = max((len(short_figures(row)) for row in shown), default=0)
        bar_width = max(4, cell_width - CONDENSED_NAME - right_width - 2)
        cells = []
        for row in shown:
            level = breaker_level(row)
            filled = round(usage_fraction(row) * bar_width)
            cell = Text(no_wrap=True, overflow="ellipsis")
            name = SHORT_NAMES.get(row.name, row.name)
            if len(name) >= CONDENSED_NAME:
                name = name[:CONDENSED_NAME - 2] + "…"
            cell.append(f"{name:<{CONDENSED_NAME}}")
            cell.append(FULL * filled, palette[level])
            cell.append(EMPTY * (bar_width - filled), palette.bar_background)
            cell.append(f" {short_figures(row):>{right_width}}", palette[level] if level != OK else palette[MUTED])
            cells.append(cell)
        if more:
            cells.append(Text(f"+{more} more: 3 shows all", style=palette[MUTED]))
        lines = []
        for start in range(0, len(cells), columns):
            line = Text(no_wrap=True, overflow="ellipsis")
            for i, cell in enumerate(cells[start:start + columns]):
                if i:
                    line.append("  ")
                cell.truncate(cell_width, pad=True)
                line.append_text(cell)
            lines.append(line)
        return lines
