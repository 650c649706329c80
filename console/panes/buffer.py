"""The margin buffer: a gauge with the panic, warn and target marks, and a chart of the buffer
(left axis, %) and equity (right axis, USD) over the last hour, downsampled to the chart's
width and redrawn at most twice a second, only when a new sample arrived."""

from __future__ import annotations

import time

from rich.text import Text
from textual_plotext import PlotextPlot

from console import format as fmt
from console.history import RiskHistory, downsample
from console.panes.base import TextPane
from console.palette import palette_for
from console.risk import BREACH, MUTED, OK, WARN, buffer_level
from engine.api.state import AccountView, EngineState

REDRAW_SECONDS = 0.5  # at most two chart redraws a second
FULL, EMPTY, MARK = "█", "░", "│"


def gauge_bar(buffer: float | None, marks: list[float | None], width: int) -> tuple[str, int]:
    """The bar's characters and how many of them are filled, marks drawn as │."""
    width = max(4, width)
    filled = 0 if buffer is None else round(max(0.0, min(1.0, buffer)) * width)
    chars = [FULL if i < filled else EMPTY for i in range(width)]
    for mark in marks:
        if mark is not None and 0 < mark < 1:
            chars[min(width - 1, int(mark * width))] = MARK
    return "".join(chars), filled


class BufferGauge(TextPane):
    """Two lines (figures, then the bar); `condensed` (the small overview): one line, the
    buffer, the bar with its marks, then what the marks are."""

    DEFAULT_CSS = """
    BufferGauge { height: auto; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.condensed = False
        self._account: AccountView | None = None

    def show(self, account: AccountView) -> None:
        self._account = account
        self._paint()

    def set_condensed(self, condensed: bool) -> None:
        if condensed != self.condensed:
            self.condensed = condensed
            if self._account is not None:
                self._paint()

    def on_resize(self) -> None:
        if self._account is not None:
            self._paint()

    def _paint(self) -> None:
        a, palette = self._account, self.palette
        buffer, warn, panic, target = a.margin_buffer, a.warn_buffer, a.panic_buffer, a.target_buffer
        level = buffer_level(buffer, warn, panic)
        title = Text(no_wrap=True, overflow="ellipsis")
        if self.condensed:
            title.append(fmt.percent(buffer), palette[level])
            title.append({BREACH: " BELOW PANIC", WARN: " below warn", OK: "", MUTED: " no figures"}[level],
                         palette[level])
            marks = Text(f" {MARK}panic {fmt.percent(panic, 0)} {MARK}warn {fmt.percent(warn, 0)} {MARK}target "
                         f"{fmt.percent(target, 0)}", palette[MUTED])
            width = self.size.width - 2 - title.cell_len - 1 - marks.cell_len
            self.set_text(Text.assemble(title, " ", self._bar(buffer, panic, warn, target, level, max(10, width)),
                                        marks))
            return
        title.append("buffer ")
        title.append(fmt.percent(buffer), palette[level])
        title.append({BREACH: "  BELOW PANIC", WARN: "  below warn: reducing", OK: "", MUTED: "  no figures"}[level],
                     palette[level])
        title.append(f"  marks {MARK} panic {fmt.percent(panic, 0)} · warn {fmt.percent(warn, 0)} · target "
                     f"{fmt.percent(target, 0)}  maintenance {fmt.usd(a.maintenance_margin)} USD  leverage "
                     f"{fmt.leverage(a.account_leverage)}", palette[MUTED])
        line = self._bar(buffer, panic, warn, target, level, self.size.width - 2)
        self.set_text(Text("\n").join([title, line]))

    def _bar(self, buffer, panic, warn, target, level: str, width: int) -> Text:
        palette = self.palette
        bar, filled = gauge_bar(buffer, [panic, warn, target], width)
        line = Text(no_wrap=True)
        for i, char in enumerate(bar):
            if char == MARK:
                mark_level = BREACH if panic is not None and i == min(len(bar) - 1, int(panic * len(bar))) else WARN
                line.append(char, palette[mark_level])
            else:
                line.append(char, palette[level] if i < filled else palette.bar_background)
        return line


def minute_ticks(span: float) -> list[float]:
    """x ticks (minutes before now, <= 0) at a round step, at most five of them."""
    step = next((m for m in (0.5, 1, 2, 5, 10, 15, 30, 60) if span / m <= 4), 60)
    return [-k * step for k in range(int(span // step), -1, -1)]


def money_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """Three equity ticks, labelled short (99.95k) but precise enough to tell apart."""
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    ticks = [lo, (lo + hi) / 2, hi]
    digits = 3
    while digits < 8:
        labels = [_short(t, digits) for t in ticks]
        if len(set(labels)) == len(labels):
            return ticks, labels
        digits += 1
    return ticks, labels


def _short(value: float, digits: int) -> str:
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g}{suffix}"
    return f"{value:.{digits}g}"


class BufferChart(PlotextPlot):
    DEFAULT_CSS = """
    BufferChart { height: 1fr; min-height: 6; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.history = RiskHistory()
        self._drawn = (-1, 0, 0)  # (history version, width, height) last drawn
        self._drawn_at = float("-inf")
        self._theme: object = None
        self._marks: tuple = (None, None)
        self._placeholder: Text | None = None

    def record(self, state: EngineState) -> None:
        a = state.account
        self.history.add(state.time, a.margin_buffer, a.equity)
        self._marks = (a.warn_buffer, a.panic_buffer)

    def on_resize(self) -> None:
        self.redraw(force=True)  # downsampled to the width: a new width, a new plot

    def render(self):
        return self._placeholder if self._placeholder is not None else super().render()

    @property
    def caught_up(self) -> bool:
        """What is drawn is the newest history at this size and in this theme (or the chart is
        not on screen, so there is nothing to draw)."""
        if not self.size.width or not self.display:
            return True
        key = (self.history.version, self.size.width, self.size.height)
        return key == self._drawn and palette_for(self.app) is self._theme

    def redraw(self, force: bool = False) -> bool:
        """Replot if a sample arrived (or the size or theme changed) and the last redraw is at
        least REDRAW_SECONDS old. True when it replotted."""
        if not self.size.width or not self.display:
            return False  # not laid out (or hidden): on_resize draws it when it is
        palette = palette_for(self.app)
        if not force and self.caught_up:
            return False
        now = time.monotonic()
        if not force and now - self._drawn_at < REDRAW_SECONDS:
            return False
        self._drawn = (self.history.version, self.size.width, self.size.height)
        self._drawn_at, self._theme = now, palette
        samples = downsample(list(self.history.samples), max(10, self.size.width - 16))
        if len(samples) < 2:
            self._placeholder = Text("buffer and equity history: it builds up while the console runs",
                                     style=palette[MUTED])
            self.refresh()
            return True
        self._placeholder = None
        self._plot_samples(samples, palette)
        self.refresh()
        return True

    def _plot_samples(self, samples, palette) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        latest = samples[-1].at
        xs = [(s.at - latest) / 60.0 for s in samples]
        buffers = [(x, s.buffer * 100) for x, s in zip(xs, samples) if s.buffer is not None]
        equities = [(x, s.equity) for x, s in zip(xs, samples) if s.equity is not None]
        if buffers:
            plt.plot([b[0] for b in buffers], [b[1] for b in buffers], color=palette.rgb[OK], marker="braille",
                     label="buffer")
        warn, panic = self._marks
        if warn is not None:
            plt.hline(warn * 100, palette.rgb[WARN])
        if panic is not None:
            plt.hline(panic * 100, palette.rgb[BREACH])
        plt.ylim(0, 100)
        marks = sorted({0.0, 100.0} | {m * 100 for m in (warn, panic) if m is not None})
        plt.yticks(marks, [f"{m:.0f}%" for m in marks])
        if equities:
            values = [e[1] for e in equities]
            plt.plot([e[0] for e in equities], values, color=palette.accent_rgb, marker="braille", yside="right",
                     label="equity")
            ticks, labels = money_ticks(min(values), max(values))
            plt.ylim(ticks[0], ticks[-1], yside="right")
            plt.yticks(ticks, labels, yside="right")
        span = -xs[0]
        plt.xlim(-span, 0)
        ticks = minute_ticks(span)
        plt.xticks(ticks, ["now" if t == 0 else f"{t:g}m" for t in ticks])
