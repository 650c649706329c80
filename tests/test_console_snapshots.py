"""What the trader sees, pinned: the overview (every pane at once) in each theme at 80x24 (SSH)
and 160x50, and in the dark one at 100x30; the panic modal; a tripped breaker on the overview
and in the risk zoom; the pending zoom with an APPROVAL order waiting. A real engine on the paper exchange with a frozen clock and
fixed marks, so every figure and time on screen is the same on every run.

After a deliberate change: `python -m pytest tests/test_console_snapshots.py --snapshot-update`,
then look at the SVGs in tests/__snapshots__/ before committing them."""

from __future__ import annotations

import asyncio

import pytest
from console_fixtures import build_rig, trip_daily_loss

from console.app import PerpguardApp

THEMES = ("dark", "light", "high-contrast", "colour-blind")
SIZES = {"80x24": (80, 24), "160x50": (160, 50)}


def app_on_rig(theme: str = "dark"):
    rig = asyncio.run(build_rig())
    return rig, PerpguardApp(rig.link, owns_engine=True, theme=theme)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("theme", THEMES)
def test_dashboard(snap_compare, theme, size):
    _rig, app = app_on_rig(theme)
    assert snap_compare(app, terminal_size=SIZES[size])


def test_panic_modal(snap_compare):
    _rig, app = app_on_rig()
    assert snap_compare(app, terminal_size=SIZES["80x24"], press=["!"])


def test_overview_at_100x30(snap_compare):
    _rig, app = app_on_rig()
    assert snap_compare(app, terminal_size=(100, 30))


@pytest.mark.parametrize("size", SIZES)
def test_tripped_breaker(snap_compare, size):
    rig, app = app_on_rig()

    async def fall(pilot):
        await trip_daily_loss(rig, app)

    assert snap_compare(app, terminal_size=SIZES[size], run_before=fall)


def test_tripped_breaker_risk_zoom(snap_compare):
    rig, app = app_on_rig()

    async def fall(pilot):
        await trip_daily_loss(rig, app)
        await pilot.press("3")

    assert snap_compare(app, terminal_size=SIZES["80x24"], run_before=fall)


def test_approval_pending(snap_compare):
    _rig, app = app_on_rig()
    assert snap_compare(app, terminal_size=SIZES["80x24"], press=["2"])
