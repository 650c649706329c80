"""What the trader sees, pinned: the overview (every pane at once) in each theme at 80x24 (SSH)
and 160x50, and in the dark one at 100x30; the panic modal; a tripped breaker on the overview
and in the risk zoom; the pending zoom with an APPROVAL order waiting; a toast at 80x24, and a
modal with a toast due (none drawn over it). A real engine on the paper exchange with a frozen
clock and fixed marks, so every figure and time on screen is the same on every run.

Every frame is taken once the app says it is settled (`PerpguardApp.settled`: the newest
picture applied, the throttled positions table and the chart caught up, the layout and the
theme's colours applied), waited for on that condition with a deadline, never on a sleep.
Toasts live for seconds of wall-clock time, so a frame that is not about one is taken with
none up (`calm`), and the ones about a toast raise it just before.

After a deliberate change: `python -m pytest tests/test_console_snapshots.py --snapshot-update`,
then look at the SVGs in tests/__snapshots__/ before committing them."""

from __future__ import annotations

import asyncio

import pytest
from console_fixtures import build_rig, settled, toasts_on_screen, trip_daily_loss, wait_until

from console.app import PerpguardApp
from engine.domain.model import OrderIntent

THEMES = ("dark", "light", "high-contrast", "colour-blind")
SIZES = {"80x24": (80, 24), "160x50": (160, 50)}
HELD_FOR_APPROVAL = OrderIntent(market="SOL", side="buy", notional_usd=45_000)  # above delay_max_usd: APPROVAL


def app_on_rig(theme: str = "dark"):
    rig = asyncio.run(build_rig())
    return rig, PerpguardApp(rig.link, owns_engine=True, theme=theme)


async def calm(pilot, app) -> None:
    """The settled screen with no toast up (each would be gone a few seconds later)."""
    await pilot.pause()  # `notify` posts a message: let the last ones land before clearing
    app.clear_notifications()
    await wait_until(pilot, lambda: not toasts_on_screen(app), "the toasts to go")
    await settled(pilot, app)


async def hold_for_approval(pilot, rig, app) -> None:
    """A bot's order held for APPROVAL now: its toast is up, on a settled screen."""
    await settled(pilot, app)
    await rig.engine.submit(HELD_FOR_APPROVAL)
    await rig.engine.settle()
    app.refresh_now()
    await wait_until(pilot, lambda: len(toasts_on_screen(app)) == 1, "the approval toast")
    await settled(pilot, app)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("theme", THEMES)
def test_dashboard(snap_compare, theme, size):
    _rig, app = app_on_rig(theme)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=lambda pilot: calm(pilot, app))


def test_panic_modal(snap_compare):
    _rig, app = app_on_rig()

    async def panic(pilot):
        await calm(pilot, app)
        await pilot.press("!")
        await wait_until(pilot, lambda: app.screen.id != "_default", "the panic question")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZES["80x24"], run_before=panic)


def test_overview_at_100x30(snap_compare):
    _rig, app = app_on_rig()
    assert snap_compare(app, terminal_size=(100, 30), run_before=lambda pilot: calm(pilot, app))


@pytest.mark.parametrize("size", SIZES)
def test_tripped_breaker(snap_compare, size):
    rig, app = app_on_rig()

    async def fall(pilot):
        await settled(pilot, app)
        await trip_daily_loss(rig, app)
        await calm(pilot, app)

    assert snap_compare(app, terminal_size=SIZES[size], run_before=fall)


def test_tripped_breaker_risk_zoom(snap_compare):
    rig, app = app_on_rig()

    async def fall(pilot):
        await settled(pilot, app)
        await trip_daily_loss(rig, app)
        await pilot.press("3")
        await calm(pilot, app)

    assert snap_compare(app, terminal_size=SIZES["80x24"], run_before=fall)


def test_approval_pending(snap_compare):
    _rig, app = app_on_rig()

    async def zoom(pilot):
        await pilot.press("2")
        await calm(pilot, app)

    assert snap_compare(app, terminal_size=SIZES["80x24"], run_before=zoom)


def test_toast_at_80x24_is_one_line_under_the_header(snap_compare):
    """The APPROVAL toast on one line over the view bar: positions, pending and the events
    (the held order's line among them) all still readable."""
    rig, app = app_on_rig()
    assert snap_compare(app, terminal_size=SIZES["80x24"], run_before=lambda pilot: hold_for_approval(pilot, rig, app))


def test_no_toast_over_a_modal(snap_compare):
    """The help screen opened while the APPROVAL toast is due: no toast over it (nor over the
    dashboard behind it)."""
    rig, app = app_on_rig()

    async def help_over_toast(pilot):
        await hold_for_approval(pilot, rig, app)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: app.screen.id != "_default" and not toasts_on_screen(app), "help, no toast")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZES["160x50"], run_before=help_over_toast)
