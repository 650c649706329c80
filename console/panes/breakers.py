"""Breakers and limits: one usage bar per counting rule (`engine_state()["breakers"]`): what is
used against what limit, TRIPPED with the cooldown left, and on top the causes that keep
trading stopped. The margin buffer reads the other way round (more is better)."""

from __future__ import annotations

from rich.text import Text

from console import format as fmt
from console.panes.base import TextPane
from console.panes.header import cause_text, causes_of
from console.risk import BREACH, MUTED, OK, WARN, usage_level

NAME_WIDTH, FIGURES_WIDTH = 18, 20
FULL, EMPTY = "█", "░"


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


def status(row: dict) -> str:
    if row.get("tripped"):
        cooldown = row.get("cooldown_seconds") or 0
        return "TRIPPED" + (f" {fmt.duration(cooldown)}" if cooldown > 0 else "")
    return "ok"


class BreakersPane(TextPane):
    DEFAULT_CSS = """
    BreakersPane { height: auto; padding: 0 1; }
    """

    show_causes = True  # the compact layout leaves them to the header, which says the same
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
