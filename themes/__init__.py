"""perpguard's Textual themes (SPEC section 13): dark (the default), light, high-contrast and a
colour-blind safe one. Every theme defines the three risk colours the console paints with:
`$risk-ok`, `$risk-warn`, `$risk-breach`. Hex colours live here and nowhere else.

The colour-blind theme never pairs red with green: sky blue means fine, yellow means warning,
vermillion means breach (Okabe-Ito palette), and every state also has a word or a sign.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import App
from textual.theme import Theme

THEMES_DIR = Path(__file__).parent
CONSOLE_CSS = THEMES_DIR / "console.tcss"

# Fallbacks for any theme that does not name the risk colours (e.g. Textual's built-in themes
# chosen from the command palette).
RISK_DEFAULTS = {"risk-ok": "#4EBF71", "risk-warn": "#ffa62b", "risk-breach": "#e5484d"}

DARK = Theme(
    name="perpguard-dark",
    primary="#4aa3ff",
    secondary="#2f6fb0",
    accent="#f0b429",
    warning="#d29922",
    error="#f85149",
    success="#3fb950",
    foreground="#d6dde6",
    background="#0d1117",
    surface="#161b22",
    panel="#1f2733",
    dark=True,
    variables={"risk-ok": "#3fb950", "risk-warn": "#e3b341", "risk-breach": "#ff5f56",
               "footer-key-foreground": "#4aa3ff"},
)

LIGHT = Theme(
    name="perpguard-light",
    primary="#0969da",
    secondary="#54aeff",
    accent="#9a6700",
    warning="#9a6700",
    error="#cf222e",
    success="#1a7f37",
    foreground="#1f2328",
    background="#f6f8fa",
    surface="#ffffff",
    panel="#dde4ec",
    dark=False,
    variables={"risk-ok": "#1a7f37", "risk-warn": "#9a6700", "risk-breach": "#cf222e",
               "footer-key-foreground": "#0969da"},
)

HIGH_CONTRAST = Theme(
    name="perpguard-high-contrast",
    primary="#ffff00",
    secondary="#00ffff",
    accent="#00ffff",
    warning="#ffff00",
    error="#ff4040",
    success="#00ff00",
    foreground="#ffffff",
    background="#000000",
    surface="#000000",
    panel="#262626",
    dark=True,
    luminosity_spread=0.25,
    text_alpha=1.0,
    variables={"risk-ok": "#00ff00", "risk-warn": "#ffff00", "risk-breach": "#ff4040",
               "footer-key-foreground": "#ffff00", "block-cursor-background": "#ffff00",
               "block-cursor-foreground": "#000000", "border": "#ffffff"},
)

COLOUR_BLIND = Theme(
    name="perpguard-colour-blind",
    primary="#56b4e9",
    secondary="#0072b2",
    accent="#e69f00",
    warning="#f0e442",
    error="#d55e00",
    success="#56b4e9",
    foreground="#e8e8e8",
    background="#101418",
    surface="#171c22",
    panel="#222a33",
    dark=True,
    variables={"risk-ok": "#56b4e9", "risk-warn": "#f0e442", "risk-breach": "#e66100",
               "footer-key-foreground": "#56b4e9"},
)

THEMES: tuple[Theme, ...] = (DARK, LIGHT, HIGH_CONTRAST, COLOUR_BLIND)
DEFAULT_THEME = DARK.name

# What a user may type in a config or on a command line.
ALIASES = {
    "dark": DARK.name, "light": LIGHT.name, "high-contrast": HIGH_CONTRAST.name, "contrast": HIGH_CONTRAST.name,
    "colour-blind": COLOUR_BLIND.name, "color-blind": COLOUR_BLIND.name, "colorblind": COLOUR_BLIND.name,
    "colourblind": COLOUR_BLIND.name,
}


def theme_name(name: str | None) -> str:
    """The registered name for a user's spelling (`dark`, `colour-blind`, `perpguard-light`...)."""
    if not name:
        return DEFAULT_THEME
    key = name.strip().lower()
    return ALIASES.get(key, key)


def next_theme(current: str) -> str:
    """The theme after `current` in the cycle (`t`); the first one after any foreign theme."""
    names = [t.name for t in THEMES]
    return names[(names.index(current) + 1) % len(names)] if current in names else names[0]


def register_all(app: App) -> None:
    for theme in THEMES:
        app.register_theme(theme)


__all__ = ["DARK", "LIGHT", "HIGH_CONTRAST", "COLOUR_BLIND", "THEMES", "DEFAULT_THEME", "RISK_DEFAULTS",
           "CONSOLE_CSS", "register_all", "theme_name", "next_theme"]
