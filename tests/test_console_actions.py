"""The console drives a real engine on the paper exchange through InProcessLink, at 80x24 with
the keyboard only: the overview with every pane, zoom views and back, approve, cancel, panic exit
(confirmed two ways, and aborted), resume with the master password, quit, a user's keymap, and
keys greyed out when they cannot act."""

from __future__ import annotations

import asyncio

from console_fixtures import PASSWORD, build_rig, notifications, settled

from console import format as fmt
from console.app import PerpguardApp
from engine.domain.model import OrderIntent
from console.panes.pending import PendingTable
from console.panes.positions import PositionsTable
from console.panes.viewbar import ViewBar
from console.screens.confirm import ConfirmScreen
from console.screens.password import PasswordScreen

SIZE = (80, 24)


async def settle(pilot, app: PerpguardApp) -> None:
    """Let the key's worker finish, then wait for the screen to show the engine's new picture."""
    await pilot.pause()
    await app.workers.wait_for_complete()
    await settled(pilot, app)


async def test_approve_releases_the_selected_approval_order():
    rig = await build_rig()
    approval = rig.pending("APPROVAL")
    btc_before = rig.engine.book.position("BTC").size
    app = PerpguardApp(rig.link, owns_engine=True)
    told = notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")  # the pending view; the APPROVAL order is the first row
        assert app.views.selected_pending().id == approval["id"]
        assert app.check_action("approve", ()) is True
        await pilot.press("a")
        await settle(pilot, app)
    assert rig.engine.pending.get(approval["id"]) is None
    assert rig.engine.pending.store.actions[approval["id"]].status.value == "EXECUTED"
    assert rig.engine.book.position("BTC").size > btc_before  # the 45k buy went out
    assert any("Approved and sent" in m for m in told)


async def test_approve_is_greyed_on_a_delay_order_and_cancel_drops_it():
    rig = await build_rig()
    delay = rig.pending("DELAY")
    app = PerpguardApp(rig.link, owns_engine=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", "down")
        assert app.views.selected_pending().id == delay["id"]
        assert app.check_action("approve", ()) is None  # shown, greyed
        assert app.check_action("cancel_pending", ()) is True
        await pilot.press("a")  # greyed: nothing happens
        await settle(pilot, app)
        assert rig.engine.pending.get(delay["id"]) is not None
        await pilot.press("c")
        await settle(pilot, app)
        assert rig.engine.pending.store.actions[delay["id"]].status.value == "CANCELLED"
        assert [p["tier"] for p in rig.service.pending()] == ["APPROVAL"]  # the other one untouched
        assert app.views.selected_pending().tier == "APPROVAL"


async def test_approve_from_a_zoomed_view_first_shows_what_it_would_approve():
    rig = await build_rig()
    app = PerpguardApp(rig.link, owns_engine=True)
    told = notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1", "a")  # from the positions zoom: show the pending zoom, do nothing yet
        await settle(pilot, app)
        assert app.views.view == "pending"
        assert len(rig.service.pending()) == 2
        assert any("Press a again to approve" in m for m in told)
        await pilot.press("a")
        await settle(pilot, app)
        assert [p["tier"] for p in rig.service.pending()] == ["DELAY"]


async def test_the_overview_shows_every_pane_at_80x24_and_a_acts_on_the_highlighted_row():
    rig = await build_rig()
    approval = rig.pending("APPROVAL")
    app = PerpguardApp(rig.link, owns_engine=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.views.view == "overview" and app.views.layout == "condensed"
        for selector in ("#header", "#positions", "#gauge", "#pending", "#breakers", "#recent"):
            widget = app.query_one(selector)
            assert widget.display and widget.region.height > 0, selector
            assert widget.region.bottom <= SIZE[1] - 1, selector  # above the footer
        assert app.query_one(PositionsTable).row_count == 4  # every position fits
        assert app.focused is app.query_one(PendingTable)  # something waits: the pending table has the keys
        assert app.views.selected_pending().id == approval["id"]  # APPROVAL rows first
        await pilot.press("a")
        await settle(pilot, app)
        assert rig.engine.pending.store.actions[approval["id"]].status.value == "EXECUTED"
        assert app.views.view == "overview"


async def test_away_from_the_pending_table_a_and_c_first_highlight_then_act():
    rig = await build_rig()
    delay = rig.pending("DELAY")
    app = PerpguardApp(rig.link, owns_engine=True)
    told = notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("shift+tab")  # to the positions table
        await pilot.pause()
        assert app.focused is app.query_one(PositionsTable)
        assert app.check_action("approve", ()) is True and app.check_action("cancel_pending", ()) is True
        await pilot.press("c")
        await settle(pilot, app)
        assert len(rig.service.pending()) == 2  # nothing cancelled yet: the row is highlighted first
        assert app.focused is app.query_one(PendingTable) and app.views.view == "overview"
        assert any("Press c again to cancel" in m for m in told)
        await pilot.press("down", "c")
        await settle(pilot, app)
        assert rig.engine.pending.store.actions[delay["id"]].status.value == "CANCELLED"
        assert [p["tier"] for p in rig.service.pending()] == ["APPROVAL"]


async def test_zoom_keys_and_back_to_the_overview():
    rig = await build_rig()
    app = PerpguardApp(rig.link, owns_engine=True)
    async with app.run_test(size=SIZE) as pilot:
        bar = app.query_one(ViewBar)
        for key, view in (("1", "positions"), ("2", "pending"), ("3", "risk"), ("4", "log")):
            await pilot.press(key)
            await pilot.pause()
            assert app.views.view == view and app.views.layout == "zoom"
            assert "0/Esc Overview" in bar.render().plain
            await pilot.press("escape" if key in "13" else "0")
            await pilot.pause()
            assert app.views.view == "overview" and app.views.layout == "condensed"
            assert "1-4 zoom" in bar.render().plain
        assert app.query_one("#chart").display is False and app.query_one("#log").display is False
    wide = PerpguardApp(rig.link, owns_engine=True)
    async with wide.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        assert wide.views.layout == "grid" and not wide.query_one(ViewBar).display
        await pilot.press("3")
        await pilot.pause()
        assert wide.views.layout == "zoom" and wide.query_one(ViewBar).display


async def test_approval_orders_come_first_whenever_they_were_held():
    rig = await build_rig(held=(("ETH", "buy", 30_000), ("BTC", "buy", 45_000)))  # the DELAY first
    app = PerpguardApp(rig.link, owns_engine=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.query_one(PendingTable)
        assert [table.get_row_at(i)[0].plain for i in range(table.row_count)] == ["APPROVAL", "DELAY"]
        assert app.views.selected_pending().tier == "APPROVAL"


async def panic(keys: tuple[str, ...]):
    rig = await build_rig()
    app = PerpguardApp(rig.link, owns_engine=True)
    app.told = notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("!")
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.focused.id == "cancel"  # the safe choice has the focus
        await pilot.press(*keys)
        await settle(pilot, app)
        assert not isinstance(app.screen, ConfirmScreen)
    return rig, app


async def test_panic_confirmed_with_a_second_bang_flattens_and_halts():
    rig, app = await panic(("!",))
    assert rig.engine.book.positions() == []
    assert all(rig.paper.position_size(c) == 0 for c in ("BTC", "ETH", "SOL", "DOGE"))
    assert rig.engine.trading.state.value == "HALTED"
    assert rig.service.pending() == []  # held entries die with HALTED
    assert any("PANIC EXIT complete" in m for m in app.told)


async def test_panic_confirmed_with_y():
    rig, _app = await panic(("y",))
    assert rig.engine.book.positions() == []
    assert rig.engine.trading.state.value == "HALTED"


async def test_panic_aborted_with_escape_or_enter_on_cancel_leaves_positions_intact():
    for keys in (("escape",), ("enter",), ("n",)):
        rig, app = await panic(keys)
        assert len(rig.engine.book.positions()) == 4, keys
        assert rig.engine.trading.state.value == "ACTIVE"
        assert any("nothing was sent" in m for m in app.told)


async def test_resume_asks_the_master_password_and_refuses_a_wrong_one():
    rig = await build_rig()
    await rig.service.kill("test")
    app = PerpguardApp(rig.link, owns_engine=True)
    told = notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        assert app.check_action("resume", ()) is True
        await pilot.press("r")
        assert isinstance(app.screen, PasswordScreen)
        await pilot.press(*"hunter2", "enter")
        await settle(pilot, app)
        assert rig.engine.trading.state.value == "HALTED"
        assert any("wrong master password" in m for m in told)

        await pilot.press("r")  # in-process: asked again every time
        assert isinstance(app.screen, PasswordScreen)
        await pilot.press("escape")
        assert rig.engine.trading.state.value == "HALTED"

        await pilot.press("r")
        await pilot.press(*PASSWORD, "enter")
        await settle(pilot, app)
        assert rig.engine.trading.state.value == "ACTIVE"
        assert app.check_action("resume", ()) is None  # nothing left to resume: greyed
        assert any("Trading resumed: ACTIVE" in m for m in told)


async def test_quit_asks_first_when_the_engine_runs_in_here():
    rig = await build_rig()
    app = PerpguardApp(rig.link, owns_engine=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        assert app.is_running
        await pilot.press("q", "y")
        await pilot.pause()
    assert app.return_value == "quit"


async def test_detach_leaves_at_once_and_never_touches_the_engine():
    rig = await build_rig()
    app = PerpguardApp(rig.link, owns_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.return_value == "detach"
    assert len(rig.engine.book.positions()) == 4 and rig.engine.trading.state.value == "ACTIVE"
    await rig.engine.submit(OrderIntent(market="SOL", side="buy", notional_usd=500))
    assert rig.link.drain_events() == []  # the console's listener is gone from the engine


async def test_a_keymap_from_the_config_remaps_bindings_by_id():
    rig = await build_rig()
    app = PerpguardApp(rig.link, owns_engine=True, keymap={"approve": "A", "panic": "ctrl+k"})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", "a")
        await settle(pilot, app)
        assert len(rig.service.pending()) == 2  # `a` no longer approves
        await pilot.press("A")
        await settle(pilot, app)
        assert [p["tier"] for p in rig.service.pending()] == ["DELAY"]
        await pilot.press("!")
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("ctrl+k")
        assert isinstance(app.screen, ConfirmScreen)


async def test_theme_key_cycles_the_four_themes_and_the_palette_lists_every_action():
    rig = await build_rig()
    app = PerpguardApp(rig.link, owns_engine=True, theme="colour-blind")
    async with app.run_test(size=SIZE) as pilot:
        seen = [app.theme]
        for _ in range(4):
            await pilot.press("t")
            await pilot.pause()
            seen.append(app.theme)
        assert seen == ["perpguard-colour-blind", "perpguard-dark", "perpguard-light", "perpguard-high-contrast",
                        "perpguard-colour-blind"]
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for wanted in ("Approve selected pending order", "Cancel selected pending order", "Panic exit",
                       "Resume trading", "Policies", "Next theme", "Help", "Quit or detach"):
            assert wanted in titles


async def test_policies_and_help_screens_open_and_close():
    rig = await build_rig()
    app = PerpguardApp(rig.link, owns_engine=True, keymap={"approve": "A"})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        await settle(pilot, app)
        table = app.screen.query_one("#policies")
        assert table.row_count == 12  # the eleven defaults and the spending limit
        await pilot.press("escape", "question_mark")
        await pilot.pause()
        help_text = str(app.screen.query_one("Static").render())
        assert "A " in help_text and "approve" in help_text  # the remapped key is the one shown
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.screen_stack[0]


async def test_a_storm_of_marks_costs_a_few_redraws_a_second():
    rig = await build_rig()
    app = PerpguardApp(rig.link, owns_engine=True)
    async with app.run_test(size=SIZE) as pilot:
        before = app.pictures_shown
        loop = asyncio.get_running_loop()
        start = loop.time()
        marks = 0
        while marks < 200:  # 200 marks ~5 ms apart: the feed's pace (a loaded machine stretches it; counted per second below)
            rig.set_marks({"BTC": 65_000 + (marks % 50)})
            marks += 1
            await asyncio.sleep(0.005)
        await pilot.pause()
        elapsed = loop.time() - start  # a loaded machine stretches the pause: count per second
        shown = app.pictures_shown - before
        await settled(pilot, app)
        last = 65_000 + ((marks - 1) % 50)
        assert app.query_one(PositionsTable).get_cell("BTC", "mark").plain == fmt.price(last)  # the newest mark
    assert marks / elapsed > 20  # still a storm: many marks for every redraw allowed
    assert shown <= 4 * elapsed + 2  # REFRESH_SECONDS = 0.25: about four a second, whatever the feed
