"""What the venue keeps for the account, as the trader sees it: a dead-man switch the venue
refuses is said (event, webhook kind, /v1/state, breakers row) once, not every 20 s; its daily
fires are counted; an API wallet about to expire is warned about; the account mode is shown;
an entry on an isolated-only market that would open cross margin is denied with the reason."""

from __future__ import annotations

import pytest

from builders import MARKETS, MARKS, T0, make_book, make_gate, order
from engine.domain.clock import ManualClock
from engine.domain.events import EventKind
from engine.domain.margin import MarginTable
from engine.domain.model import Account, MarginMode, MarketInfo, Position
from engine.live.engine import Engine
from engine.live.notify import NOTIFY_KINDS
from engine.live.venue_watch import AGENT_WARN_DAYS, DAY
from engine.risk.policies import parse_policies
from engine.risk.policy_file import DEFAULT_POLICY_BODIES
from engine.state_view import engine_state
from engine.venues.connector import DEAD_MAN_DAILY_FIRES
from engine.venues.paper.exchange import PaperExchange


def paper_engine(clock: ManualClock, **paper_kw) -> tuple[Engine, PaperExchange]:
    paper = PaperExchange(MARKETS, clock=clock, **paper_kw)
    for coin, px in MARKS.items():
        paper.set_mark(coin, px)
    return Engine(paper, parse_policies(DEFAULT_POLICY_BODIES), clock), paper


def kinds(engine: Engine, kind: EventKind) -> list:
    return [e for e in engine.events.recent if e.kind is kind]


async def test_the_venues_daily_cap_on_dead_man_fires_is_counted_and_its_refusal_said_once():
    clock = ManualClock(T0 - T0 % DAY + 3600)  # 01:00 UTC: ten fires fit before midnight
    engine, paper = paper_engine(clock)
    await engine.start()
    watch = engine.venue_watch
    for fire in range(DEAD_MAN_DAILY_FIRES):
        status = await watch.arm(60)
        assert status.armed
        clock.advance(61)  # the engine "died" for a minute: the venue fires
        paper.poll()
    status = await watch.arm(60)
    assert not status.armed and status.fired_today == DEAD_MAN_DAILY_FIRES
    assert "10 times today" in status.reason
    for _ in range(3):  # re-arming every 20 s does not repeat the alarm
        await watch.arm(60)
    refused = kinds(engine, EventKind.DEAD_MAN_REFUSED)
    assert len(refused) == 1 and "NOT armed" in refused[0].message
    assert len(kinds(engine, EventKind.DEAD_MAN_FIRED)) == DEAD_MAN_DAILY_FIRES
    assert {EventKind.DEAD_MAN_REFUSED, EventKind.DEAD_MAN_FIRED} <= NOTIFY_KINDS  # webhooks hear of it

    state = engine_state(engine).to_json()
    assert state["dead_man"]["armed"] is False and "10 times today" in state["dead_man"]["reason"]
    row = next(r for r in state["breakers"] if r["type"] == "DEAD_MAN")
    assert row["tripped"] and row["used"] == DEAD_MAN_DAILY_FIRES and row["limit"] == DEAD_MAN_DAILY_FIRES

    clock.set(T0 - T0 % DAY + DAY + 60)  # the venue's count resets at 00:00 UTC
    status = await watch.arm(60)
    assert status.armed and status.fired_today == 0
    assert len(kinds(engine, EventKind.DEAD_MAN_ARMED)) == 1
    assert engine_state(engine).dead_man.armed


async def test_an_armed_switch_shows_no_breaker_row_and_a_clean_stop_is_not_a_refusal():
    clock = ManualClock(T0)
    engine, _paper = paper_engine(clock)
    await engine.start()
    await engine.venue_watch.arm(60)
    state = engine_state(engine)
    assert state.dead_man.armed and state.dead_man.until == pytest.approx(T0 + 60)
    assert not [r for r in state.breakers if r.type == "DEAD_MAN"]
    await engine.venue_watch.arm(None)
    assert not engine_state(engine).dead_man.armed
    assert not kinds(engine, EventKind.DEAD_MAN_REFUSED)


class ExpiringPaper(PaperExchange):
    """The paper venue trading with an API wallet that expires at a given time."""

    def __init__(self, *args, expires_at: float, **kw) -> None:
        super().__init__(*args, **kw)
        self.agent_expires_at = expires_at


async def test_an_agent_about_to_expire_is_warned_about_once_a_day_from_seven_days_before():
    clock = ManualClock(T0)
    paper = ExpiringPaper(MARKETS, clock=clock, expires_at=T0 + 10 * DAY)
    for coin, px in MARKS.items():
        paper.set_mark(coin, px)
    engine = Engine(paper, parse_policies(DEFAULT_POLICY_BODIES), clock)
    await engine.start()
    await engine.tick()
    assert not kinds(engine, EventKind.AGENT_EXPIRING)  # ten days left: nothing yet
    clock.advance(3 * DAY + 60)
    await engine.tick()
    clock.advance(3600)
    await engine.tick()
    warned = kinds(engine, EventKind.AGENT_EXPIRING)
    assert len(warned) == 1 and "expires in 7.0 days" in warned[0].message
    assert warned[0].data["expires_at"] == T0 + 10 * DAY
    clock.advance(DAY)
    await engine.tick()
    assert len(kinds(engine, EventKind.AGENT_EXPIRING)) == 2  # and again the next day
    assert EventKind.AGENT_EXPIRING in NOTIFY_KINDS
    assert engine_state(engine).agent_expires_at == T0 + 10 * DAY
    assert AGENT_WARN_DAYS == 7


async def test_the_account_mode_is_the_venues():
    clock = ManualClock(T0)
    engine, _paper = paper_engine(clock, account_mode="unified")
    await engine.start()
    state = engine_state(engine).to_json()
    assert state["account"]["mode"] == "unified"
    assert state["account"]["equity"] == pytest.approx(100_000)
    with pytest.raises(ValueError, match="account_mode"):
        PaperExchange(MARKETS, clock=clock, account_mode="margin")


ISOLATED_ONLY = MarketInfo("xyz:TSLA", 3, MarginTable.flat(10), only_isolated=True)


def isolated_only_gate(position: Position | None = None):
    book = make_book()
    book.markets["xyz:TSLA"] = ISOLATED_ONLY
    marks = {**MARKS, "xyz:TSLA": 250.0}
    book.load(Account(100_000, 100_000, 100_000, T0), [position] if position else [], marks=marks, at=T0)
    gate, _clock = make_gate(DEFAULT_POLICY_BODIES, book=book)
    return gate


def test_a_cross_entry_on_an_isolated_only_market_is_denied_with_the_reason():
    gate = isolated_only_gate()
    decision = gate.evaluate(order("xyz:TSLA", notional_usd=1000))
    assert not decision.allowed
    denial = decision.denials[0]
    assert denial.code == "ISOLATED_ONLY" and "xyz:TSLA is isolated-only" in denial.message
    assert gate.evaluate(order("xyz:TSLA", notional_usd=1000, margin_mode="isolated", leverage=3)).allowed
    assert gate.evaluate(order("BTC", notional_usd=1000)).allowed  # other markets are not concerned


def test_an_isolated_leg_may_grow_and_any_leg_may_shrink_on_an_isolated_only_market():
    isolated = Position("xyz:TSLA", 4.0, 250.0, leverage=3, margin_mode=MarginMode.ISOLATED, isolated_margin=400.0)
    assert isolated_only_gate(isolated).evaluate(order("xyz:TSLA", notional_usd=500)).allowed
    cross = Position("xyz:TSLA", 4.0, 250.0, leverage=3)
    gate = isolated_only_gate(cross)
    assert gate.evaluate(order("xyz:TSLA", side="sell", size=2.0)).allowed  # reducing: always allowed
    assert not gate.evaluate(order("xyz:TSLA", notional_usd=500)).allowed
