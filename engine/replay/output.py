"""How `perpguard replay` reads to a trader: a timeline and a plotext chart."""

from __future__ import annotations

import math
from datetime import datetime, timezone

from engine.replay.run import ReplayResult


def _hhmmss(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%H:%M:%S")


def render_timeline(result: ReplayResult) -> str:
    buffer = "unknown" if result.min_margin_buffer is None else f"{result.min_margin_buffer:.1%}"
    head = (f"{result.side} {result.market} at {result.leverage:g}x from {result.equity_start:,.0f} USD over "
            f"{result.bars} bars ({result.marks} marks): "
            f"{'LIQUIDATED' if result.liquidated else 'never liquidated'}; minimum margin buffer {buffer}; "
            f"equity {result.equity_end:,.2f} USD at the end")
    if result.engine_died_at is not None:
        died = any(e["kind"] == "engine_died" for e in result.events)
        head += (f"; the engine died at {_hhmmss(result.engine_died_at)} UTC (only the venue acted after)" if died else
                 f"; the engine was to die at {_hhmmss(result.engine_died_at)} UTC, after the account was gone")
    lines = [head, ""]
    for e in result.events:
        count = f"  (x{e['count']}, until {_hhmmss(e['last_at'])})" if e.get("count") else ""
        lines.append(f"{_hhmmss(e['at'])}  {e['kind']:<20} {e['message']}{count}")
    return "\n".join(lines)


def render_chart(result: ReplayResult, width: int = 100, height: int = 30) -> str:
    """Price, margin buffer and position size, one panel each, one point per bar."""
    import sys

    import plotext as plt

    plt.clear_figure()
    if not sys.stdout.isatty():
        plt.theme("clear")  # no colour codes in files and pipes
    plt.plotsize(width, height)
    plt.subplots(3, 1)
    x = list(range(len(result.series["price"])))
    panels = [("price (USD)", result.series["price"]), ("margin buffer", result.series["buffer"]),
              ("position size", result.series["size"])]
    for row, (title, ys) in enumerate(panels, start=1):
        plt.subplot(row, 1)
        plt.title(title)
        points = [(i, y) for i, y in zip(x, ys) if not math.isnan(y)]
        if points:
            plt.plot([p[0] for p in points], [p[1] for p in points], marker="braille")
    plt.xlabel("bar")
    return plt.build()
