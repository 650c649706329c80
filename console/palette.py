"""Rich styles for the risk levels, read from the current theme's variables (`$risk-ok`,
`$risk-warn`, `$risk-breach`). Widgets that paint Rich text (table cells, bars, log lines) ask
here, so no colour is ever written in widget code and a theme change repaints everything."""

from __future__ import annotations

from weakref import WeakKeyDictionary

from rich.style import Style
from textual.app import App
from textual.color import Color

from console.risk import BREACH, GAIN, LOSS, MUTED, OK, WARN


_BADGE = Style(reverse=True, bold=True)


class RiskPalette:
    def __init__(self, app: App) -> None:
        variables = app.theme_variables or app.get_css_variables()
        self.variables = variables
        background = Color.parse(variables.get("background", "black"))

        def colour(name: str, fallback: str = "foreground") -> Color:
            return background + Color.parse(variables.get(name) or variables[fallback])  # blends any alpha

        self.styles = {
            OK: Style(color=colour("risk-ok").rich_color),
            WARN: Style(color=colour("risk-warn").rich_color),
            BREACH: Style(color=colour("risk-breach").rich_color, bold=True),
            MUTED: Style(color=colour("foreground-muted", "foreground").rich_color),
            "accent": Style(color=colour("primary").rich_color),
            GAIN: Style(color=colour("risk-ok").rich_color),
            LOSS: Style(color=colour("risk-breach").rich_color),  # a loss is not an alarm: not bold
        }
        self.rgb = {level: colour(f"risk-{level}").rgb for level in (OK, WARN, BREACH)}
        self.accent_rgb = colour("primary").rgb
        self.bar_background = Style(color=colour("panel", "surface").rich_color)

    def __getitem__(self, level: str) -> Style:
        return self.styles.get(level, Style())

    def badge(self, level: str) -> Style:
        """The level's colour as a block behind the text (trading state, TRIPPED)."""
        return self[level] + _BADGE


_PALETTES: WeakKeyDictionary[App, RiskPalette] = WeakKeyDictionary()


def palette_for(app: App) -> RiskPalette:
    """The palette of the app's current theme: the same object until the theme's variables
    change in value (Textual rebuilds the dict on every CSS refresh, a new theme or not), so
    panes can tell a new theme by identity and repaint only then."""
    cached = _PALETTES.get(app)
    variables = app.theme_variables or app.get_css_variables()
    if cached is None or (cached.variables is not variables and cached.variables != variables):
        cached = _PALETTES[app] = RiskPalette(app)
    cached.variables = variables  # equal in value: compare by identity next time
    return cached
