"""How figures read on screen: prices to five significant figures (as Hyperliquid quotes
them), USD with thousands separators, fractions as percentages, durations as m:ss. Missing
figures show as an em dash, never as zero. Pure functions: the panes and the tests share them."""

from __future__ import annotations

import math
import time

MISSING = "—"


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def price(px: float | None, max_len: int | None = None) -> str:
    """USD price with five significant figures: 65,012 · 3,212.5 · 0.15012; with `max_len`, as
    many decimals as fit in that many characters (a table column: 0.096012 -> 0.09601)."""
    if not _finite(px):
        return MISSING
    if px == 0:
        return "0"
    digits = min(8, max(0, 4 - int(math.floor(math.log10(abs(px))))))
    text = f"{px:,.{digits}f}"
    while max_len is not None and len(text) > max_len and digits > 0:
        digits -= 1
        text = f"{px:,.{digits}f}"
    return text


def size(units: float | None) -> str:
    """Base units, unsigned, five significant figures, no trailing zeros: 0.27692 · 80 · 60,000."""
    text = price(abs(units)) if _finite(units) else MISSING
    return text.rstrip("0").rstrip(".") if "." in text else text


def usd(amount: float | None, signed: bool = False, cents_below: float = 1_000) -> str:
    """USD with thousands separators; cents only below `cents_below` (a column stays narrow)."""
    if not _finite(amount):
        return MISSING
    sign = "+" if signed and amount > 0 else ""
    if abs(amount) >= cents_below:
        return f"{sign}{amount:,.0f}"
    return f"{sign}{amount:,.2f}"


def usd_short(amount: float | None) -> str:
    """USD in four characters or so: 950 · 12.5k · 1.25M."""
    if not _finite(amount):
        return MISSING
    value = abs(amount)
    sign = "-" if amount < 0 else ""
    if value >= 1e6:
        return f"{sign}{value / 1e6:.3g}M"
    if value >= 1e3:
        return f"{sign}{value / 1e3:.3g}k"
    return f"{sign}{value:.0f}"


def percent(fraction: float | None, decimals: int = 1) -> str:
    if not _finite(fraction):
        return MISSING
    return f"{fraction * 100:.{decimals}f}%"


def leverage(x: float | None) -> str:
    return f"{x:.1f}x" if _finite(x) else MISSING


def duration(seconds: float | None) -> str:
    """0:42 · 4:05 · 1:02:03 · 3d 04h. Negative durations read as 0:00."""
    if not _finite(seconds):
        return MISSING
    total = max(0, int(math.ceil(seconds)))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def age(seconds: float | None) -> str:
    """How old the data is: 0.4s · 12s · 3m."""
    if not _finite(seconds):
        return MISSING
    if seconds < 10:
        return f"{max(0.0, seconds):.1f}s"
    if seconds < 120:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.0f}m"


def clock(epoch: float | None) -> str:
    """Epoch seconds as HH:MM:SS UTC: the engine's clock, never the terminal's."""
    if not _finite(epoch):
        return MISSING
    return time.strftime("%H:%M:%S", time.gmtime(epoch))


def quantity(value: float | None, unit: str) -> str:
    """A breaker figure in its unit: USD, ratio (a fraction) or a plain count."""
    if unit == "USD":
        return usd_short(value)
    if unit == "ratio":
        return percent(value)
    if not _finite(value):
        return MISSING
    return f"{value:g}"
