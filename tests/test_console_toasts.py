"""Toasts a trader can live with over SSH: at 80x24 one line under the header, never over the
positions, the pending orders or the events; never over a modal (confirm, password, policies,
help), and back once it closes. And `q` says what it does: Quit in here, Detach when attached."""

from __future__ import annotations

from console_fixtures import build_rig, settled, toasts_on_screen, wait_until

from console.app import PerpguardApp
from engine.domain.model import OrderIntent

HELD_FOR_APPROVAL = OrderIntent(market="SOL", side="buy", notional_usd=45_000)  # above delay_max_usd: APPROVAL


async def hold_for_approval(pilot, rig, app) -> None:
    await rig.engine.submit(HELD_FOR_APPROVAL)
    await rig.engine.settle()
    app.refresh_now()


async def test_a_toast_at_80x24_is_one_line_under_the_header_and_covers_no_pane():
    rig = await build_rig()
    app = PerpguardApp(rig.link, owns_engine=True)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settled(pilot, app)
        await hold_for_approval(pilot, rig, app)
        await wait_until(pilot, lambda: len(toasts_on_screen(app)) == 1, "the approval toast")
        toast = toasts_on_screen(app)[0]
        assert "buy SOL held" in str(toast.render()) and "a approves, c cancels" in str(toast.render())
        assert toast.region.height == 1 and toast.region.y == app.query_one("#header").region.bottom
        for pane in ("#positions-pane", "#risk-pane", "#pending-pane", "#breakers-pane", "#log-pane"):
            assert not toast.region.overlaps(app.query_one(pane).region), pane
        recent = app.query_one("#recent").render().plain
        assert "buy SOL held" in recent  # the same news in the events pane, readable


async def test_only_the_newest_toast_shows_at_80x24():
    rig = await build_rig()
    app = PerpguardApp(rig.link, owns_engine=True)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settled(pilot, app)
        app.notify("first", timeout=30)
        app.notify("second", timeout=30)
        await wait_until(pilot, lambda: [str(t.render()) for t in toasts_on_screen(app)] == ["second"],
                         "the newest toast alone")


async def test_from_120x34_toasts_are_textuals_own():
    rig = await build_rig()
    app = PerpguardApp(rig.link, owns_engine=True)
    async with app.run_test(size=(160, 50), notifications=True) as pilot:
        await settled(pilot, app)
        await hold_for_approval(pilot, rig, app)
        await wait_until(pilot, lambda: len(toasts_on_screen(app)) == 1, "the approval toast")
        toast = toasts_on_screen(app)[0]
        region, (width, height) = toast.region, app.size
        assert region.height > 1 and region.x > width // 2 and region.bottom >= height - 2  # bottom right, boxed


async def test_no_toast_over_a_modal_and_back_once_it_closes():
    rig = await build_rig()
    app = PerpguardApp(rig.link, owns_engine=True)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settled(pilot, app)
        await hold_for_approval(pilot, rig, app)
        await wait_until(pilot, lambda: len(toasts_on_screen(app)) == 1, "the approval toast")
        for key in ("p", "question_mark", "!"):  # policies, help, the panic question
            await pilot.press(key)
            await wait_until(pilot, lambda: app.screen.id != "_default" and not toasts_on_screen(app),
                             f"no toast over the screen {key} opens")
            await pilot.press("escape")
            await wait_until(pilot, lambda: app.screen.id == "_default" and len(toasts_on_screen(app)) == 1,
                             "the toast back on the dashboard")


async def test_a_toast_raised_under_a_modal_waits_for_it():
    rig = await build_rig()
    app = PerpguardApp(rig.link, owns_engine=True)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settled(pilot, app)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: app.screen.id != "_default", "the help screen")
        await hold_for_approval(pilot, rig, app)
        await pilot.pause()
        assert not toasts_on_screen(app)
        await pilot.press("escape")
        await wait_until(pilot, lambda: len(toasts_on_screen(app)) == 1, "the approval toast after help closed")


async def test_q_says_quit_in_here_and_detach_when_attached_and_follows_the_keymap():
    rig = await build_rig()
    owner = PerpguardApp(rig.link, owns_engine=True)
    async with owner.run_test(size=(80, 24)) as pilot:
        await settled(pilot, owner)
        assert owner.screen.active_bindings["q"].binding.description == "Quit"
    attached = PerpguardApp(rig.link, owns_engine=False, keymap={"quit": "x"})
    async with attached.run_test(size=(80, 24)) as pilot:
        await settled(pilot, attached)
        assert attached.screen.active_bindings["x"].binding.description == "Detach"
        assert "q" not in attached.screen.active_bindings
        await pilot.press("x")
        await pilot.pause()
    assert attached.return_value == "detach"
    assert len(rig.engine.book.positions()) == 4  # the engine untouched
