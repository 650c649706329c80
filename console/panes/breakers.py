"""Breakers and limits: one usage bar per counting rule (`engine_state()["breakers"]`): what is
used against what limit, TRIPPED with the cooldown left, and on top the causes that keep
trading stopped. The margin buffer reads the other way round (more is better).

Condensed (the small overview): at most three lines of short rows, two to a line when the width
allows, tripped and near-limit ones first; the margin buffer is left to its gauge unless tripped."""

from __future__ import annotations

from rich.text import Text

from console import format as fmt
from console.panes.base import TextPane
from console.panes.header import cause_text, causes_of
from console.risk import BREACH, MUTED, OK, WARN, usage_level

NAME_WIDTH, FIGURES_WIDTH = 18, 20
FULL, EMPTY = "█", "░"
CONDENSED_LINES, CONDENSED_NAME, TWO_COLUMNS_FROM = 3, 14, 64
SHORT_NAMES = {"orders per minute": "orders/min"}
SEVERITY = {BREACH: 0, WARN: 1, OK: 2}


def breaker_level(row: dict) -> str:
    if row.get("unit") == "ratio" and row.get("name") == "margin buffer":
        used, warn = row.get("used"), row.get("limit")
        if row.get("tripped"):
            return BREACH
        return WARN if used is not None and warn is not None and used < warn * 1.2 else OK
    return usage_level(row.get("used"), row.get("limit"), bool(row.get("tripped")))


def usage_fraction(row: dict) -> float:
    used, limit = row.get("used"), row.get("limit")
    if used is None:
        return 0.0
    if row.get("name") == "margin buffer":
        return max(0.0, min(1.0, used))
    if not limit:
        return 1.0 if row.get("tripped") else 0.0
    return max(0.0, min(1.0, used / limit))


def figures(row: dict) -> str:
    unit = row.get("unit", "")
    used, limit = fmt.quantity(row.get("used"), unit), fmt.quantity(row.get("limit"), unit)
    if row.get("name") == "margin buffer":
        return f"{used} (warn {limit})"
    return f"{used} / {limit}" + (" USD" if unit == "USD" else "")


def short_figures(row: dict) -> str:
    """`54k/500k`, or TRIPPED with the cooldown left: the condensed row's right-hand side."""
    if row.get("tripped"):
        return status(row)
    unit = row.get("unit", "")
    return f"{fmt.quantity(row.get('used'), unit)}/{fmt.quantity(row.get('limit'), unit)}"


def condensed_rows(rows: list[dict], capacity: int) -> tuple[list[dict], int]:
    """The rows a condensed pane shows (at most `capacity`, one slot kept to say how many more)
    and how many it leaves out. Tripped and warning rows first; when they do not all fit, the
    most used next; otherwise the engine's order, so rows do not move about."""
    rows = [r for r in rows if r.get("name") != "margin buffer" or r.get("tripped")]
    fits = len(rows) <= capacity
    ranked = sorted(enumerate(rows), key=lambda ir: (SEVERITY.get(breaker_level(ir[1]), 2),
                                                     0 if fits else -round(usage_fraction(ir[1]), 1), ir[0]))
    ranked = [r for _i, r in ranked]
    if fits:
        return ranked, 0
    return ranked[:capacity - 1], len(rows) - (capacity - 1)


def status(row: dict) -> str:
    if row.get("tripped"):
        cooldown = row.get("cooldown_seconds") or 0
        return "TRIPPED" + (f" {fmt.duration(cooldown)}" if cooldown > 0 else "")
    return "ok"


class BreakersPane(TextPane):
    DEFAULT_CSS = """
    BreakersPane { height: auto; padding: 0 1; }
    """

    show_causes = True  # the small layouts leave them to the header, which says the same
    condensed = False

    def configure(self, *, condensed: bool, show_causes: bool) -> None:
        if (condensed, show_causes) != (self.condensed, self.show_causes):
            self.condensed, self.show_causes = condensed, show_causes
            if getattr(self, "_rows", None) is not None:
                self._paint()

    def show(self, state: dict) -> None:
        self._rows = (tuple(tuple(sorted(r.items())) for r in state.get("breakers") or ()),
                      tuple(causes_of(state)), state.get("time"), state.get("trading_state"))
        self._paint()

    def on_resize(self) -> None:
        if getattr(self, "_rows", None) is not None:
            self._paint()

    def _paint(self) -> None:
        palette = self.palette
        rows, causes, now, trading = self._rows
        lines = []
        if self.show_causes:
            for cause, until, latched in causes:
                lines.append(Text(f"stopped: {cause_text(cause, until, now, latched)}", style=palette[WARN],
                                  no_wrap=True, overflow="ellipsis"))
        rows = [dict(items) for items in rows]
        if self.condensed:
            lines += self._condensed_lines(rows)
            rows = []
        status_width = max((len(status(row)) for row in rows), default=2) + 1
        bar_width = max(5, self.size.width - 2 - NAME_WIDTH - FIGURES_WIDTH - status_width)
        for row in rows:
            level = breaker_level(row)
            filled = round(usage_fraction(row) * bar_width)
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(f"{str(row.get('name', ''))[:NAME_WIDTH - 1]:<{NAME_WIDTH}}")
            line.append(FULL * filled, palette[level])
            line.append(EMPTY * (bar_width - filled), palette.bar_background)
            line.append(f" {figures(row):<{FIGURES_WIDTH - 1}}", palette[MUTED])
            line.append(f" {status(row)}", palette[level] if level != OK else palette[MUTED])
            lines.append(line)
        if not lines:
            lines.append(Text("no counting policies", style=palette[MUTED]))
        self.set_text(Text("\n").join(lines))

    def _condensed_lines(self, rows: list[dict]) -> list[Text]:
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
            name = SHORT_NAMES.get(str(row.get("name", "")), str(row.get("name", "")))
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
