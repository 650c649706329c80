"""The live engine on the paper exchange: de-risk, panic, kill switch, pending, stale data."""

import json
from pathlib import Path

import pytest

from engine.cli.main import main
from engine.domain.clock import ManualClock
from engine.domain.model import OrderIntent, TradingState
from engine.venues.paper.exchange import PaperExchange
from engine.venues.paper.universe import PAPER_MARKETS
from engine.live.pending import PendingStatus
from engine.risk.policies import parse_policies
from engine.risk.policy_file import default_policies
from engine.live.engine import Engine
from engine.live.execution import SubmitStatus

CRASH_2021 = Path(__file__).parent / "fixtures/crashes/binance_um_BTCUSDT_1m_2021-05-19_1219-1345Z.csv"
T0 = 1_700_000_000.0


async def make_engine(policies=None, equity=100_000.0, **paper_kw):
    clock = ManualClock(T0)
    paper = PaperExchange(PAPER_MARKETS, equity=equity, clock=clock, **paper_kw)
    paper.set_mark("BTC", 50_000.0)
    paper.set_mark("ETH", 3_000.0)
    engine = Engine(paper, default_policies() if policies is None else policies, clock)
    await engine.start()
    return engine, paper, clock


async def move(engine, paper, clock, coin, px, seconds=1.0):
    clock.advance(seconds)
    paper.set_mark(coin, px)
    await engine.tick()
    await engine.settle()


def kinds(engine):
    return [e.kind for e in engine.events.recent]


def test_replay_of_the_2021_crash_survives_with_the_default_policies(capsys):
    code = main(["replay", str(CRASH_2021), "--market", "BTC", "--side", "long", "--leverage", "10", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["liquidated"] is False
    events = [e["kind"] for e in result["events"]]
    assert "reduce_filled" in events
    first_stop = next(i for i, e in enumerate(result["events"]) if e["kind"] == "state_changed" and e["state"] == "REDUCE_ONLY")
    assert "panic_exit" not in events or first_stop < events.index("panic_exit")
    # the low as the marks landed: below panic (25%), which is what fired the panic exit
    assert 0 < result["min_margin_buffer"] < 0.25


def test_replay_without_policies_is_liquidated(capsys, tmp_path):
    empty = tmp_path / "none.json"
    empty.write_text("[]")
    code = main(["replay", str(CRASH_2021), "--market", "BTC", "--side", "long", "--leverage", "10",
                 "--policies", str(empty), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 1 and result["liquidated"] is True


async def test_buffer_below_warn_stops_trading_and_sends_one_reduce_order_toward_target():
    engine, paper, clock = await make_engine()
    # a 39x long (BTC margin is 40x: maintenance 1.25%, buffer 1 − 0.0125 × 39 ≈ 51%), opened
    # outside the gate, as a position found at start would be
    await paper.set_leverage("BTC", 40)
    from engine.venues.connector import OrderRequest
    await paper.place(OrderRequest("BTC", "buy", "76", "50500", "Ioc"))
    await engine.resync()
    assert engine.trading.state is TradingState.ACTIVE
    await move(engine, paper, clock, "BTC", 49_800.0)  # −0.4%: the buffer falls below warn
    rules = engine.protection.buffer_rules
    assert "derisk_order" in kinds(engine) and "reduce_filled" in kinds(engine)
    assert kinds(engine).count("derisk_order") == 1  # one order, then it waited for the result
    assert engine.book.margin_buffer == pytest.approx(rules.targetBuffer, abs=0.01)
    assert 0 < paper.position_size("BTC") < 76


async def test_kill_switch_leaves_no_position_and_no_open_order():
    engine, paper, clock = await make_engine()
    for intent in (OrderIntent(market="BTC", side="buy", size=0.5), OrderIntent(market="ETH", side="sell", size=5),
                   OrderIntent(market="BTC", side="buy", size=0.1, type="limit", limit_px=48_000)):
        assert (await engine.submit(intent)).status is SubmitStatus.SENT
    snap = await paper.snapshot()
    assert len(snap.positions) == 2 and len([o for o in snap.open_orders if o.trigger_px is None]) == 1
    stops = [o for o in snap.open_orders if o.trigger_px is not None]
    assert stops and not engine.venue_stops.unprotected()  # a venue stop on each position that can need one
    await engine.kill("test kill")
    snap = await paper.snapshot()
    assert snap.positions == () and snap.open_orders == ()
    assert engine.trading.state is TradingState.HALTED
    denied = await engine.submit(OrderIntent(market="BTC", side="buy", size=0.01))
    assert denied.status is SubmitStatus.DENIED and denied.decision.denials[0].code == "HALTED"
    engine.resume()
    assert engine.trading.state is TradingState.ACTIVE


async def test_a_partial_fill_has_only_its_remainder_resubmitted():
    engine, paper, clock = await make_engine(partial_fill_ratio=0.5)
    assert (await engine.submit(OrderIntent(market="ETH", side="buy", size=8))).status is SubmitStatus.SENT
    held = paper.position_size("ETH")
    assert held == pytest.approx(4)  # the IOC itself filled half
    await engine.kill()
    asked = [e.data["asked"] for e in engine.events.recent if e.kind in ("reduce_filled", "reduce_failed")]
    assert asked[0] == pytest.approx(held)
    assert asked[1] == pytest.approx(held - held * 0.5)  # the remainder, never the original size
    assert paper.position_size("ETH") == 0


async def test_reduce_only_larger_than_the_position_is_clamped():
    engine, paper, clock = await make_engine()
    await engine.submit(OrderIntent(market="ETH", side="buy", size=2))
    result = await engine.submit(OrderIntent(market="ETH", side="sell", size=10, reduce_only=True))
    assert result.status is SubmitStatus.SENT and result.decision.size == pytest.approx(2)
    assert paper.position_size("ETH") == 0


async def test_stale_marks_deny_new_risk_but_let_exits_through():
    engine, paper, clock = await make_engine()
    await engine.submit(OrderIntent(market="ETH", side="buy", size=2))
    paper.faults.freeze_marks = True
    clock.advance(30)
    paper.poll()
    await engine.tick()
    entry = await engine.submit(OrderIntent(market="ETH", side="buy", size=1))
    assert entry.status is SubmitStatus.DENIED and {r.code for r in entry.decision.denials} == {"DATA_UNAVAILABLE"}
    exit_ = await engine.submit(OrderIntent(market="ETH", side="sell", size=1))
    assert exit_.status is SubmitStatus.SENT and paper.position_size("ETH") == pytest.approx(1)


async def test_derisk_acts_only_on_fresh_data():
    engine, paper, clock = await make_engine()
    await paper.set_leverage("BTC", 40)
    from engine.venues.connector import OrderRequest
    await paper.place(OrderRequest("BTC", "buy", "20", "50500", "Ioc"))
    await engine.resync()
    paper.faults.freeze_marks = True
    clock.advance(60)
    engine.book.set_mark("BTC", 46_000.0, clock.now() - 60)  # an old mark with the buffer near 39%
    engine.protection.after_update(clock.now())
    await engine.settle()
    assert "derisk_skipped" in kinds(engine) and "derisk_order" not in kinds(engine)
    assert paper.position_size("BTC") == pytest.approx(20)


async def test_delay_order_re_evaluated_after_a_price_move_is_denied_when_it_now_breaks_a_cap():
    policies = parse_policies([
        {"type": "SPENDING_LIMIT", "rules": {"instant_max_usd": 1000, "notify_max_usd": 5000, "delay_max_usd": 20000, "delay_seconds": 300}},
        {"type": "PERP_MAX_POSITION_USD", "rules": {"maxPositionUsd": 15000}},
    ])
    engine, paper, clock = await make_engine(policies)
    held = await engine.submit(OrderIntent(market="ETH", side="buy", size=4))  # 12,000 USD: DELAY
    assert held.status is SubmitStatus.PENDING and held.pending.execute_at == T0 + 300
    await move(engine, paper, clock, "ETH", 4_000.0, seconds=301)  # now 16,000 USD > 15,000
    closed = engine.pending.store.actions[held.pending.id]
    assert closed.status is PendingStatus.DENIED and "PERP_MAX_POSITION_USD" in closed.outcome
    assert paper.position_size("ETH") == 0


async def test_delay_order_executes_at_its_time_and_approval_waits_for_a_human():
    policies = parse_policies([{"type": "SPENDING_LIMIT", "rules": {
        "instant_max_usd": 1000, "notify_max_usd": 5000, "delay_max_usd": 20000, "delay_seconds": 300, "approval_timeout_seconds": 600}}])
    engine, paper, clock = await make_engine(policies)
    delayed = await engine.submit(OrderIntent(market="ETH", side="buy", size=4))
    approval = await engine.submit(OrderIntent(market="BTC", side="buy", size=0.5))  # 25,000 USD
    expiring = await engine.submit(OrderIntent(market="BTC", side="buy", size=0.6))
    assert (delayed.status, approval.status, approval.pending.tier.value) == (SubmitStatus.PENDING, SubmitStatus.PENDING, "APPROVAL")
    await move(engine, paper, clock, "ETH", 3_000.0, seconds=299)
    assert paper.position_size("ETH") == 0  # not before execute_at
    await move(engine, paper, clock, "ETH", 3_000.0, seconds=2)
    assert paper.position_size("ETH") == pytest.approx(4)
    done = await engine.approve(approval.pending.id)
    assert done.status is PendingStatus.EXECUTED and paper.position_size("BTC") == pytest.approx(0.5)
    await move(engine, paper, clock, "BTC", 50_000.0, seconds=600)
    assert engine.pending.store.actions[expiring.pending.id].status is PendingStatus.EXPIRED


async def test_halted_cancels_pending_risk():
    policies = parse_policies([{"type": "SPENDING_LIMIT", "rules": {"instant_max_usd": 1000, "delay_max_usd": 20000}}])
    engine, paper, clock = await make_engine(policies)
    held = await engine.submit(OrderIntent(market="ETH", side="buy", size=2))
    assert held.status is SubmitStatus.PENDING
    await engine.kill()
    assert engine.pending.store.actions[held.pending.id].status is PendingStatus.CANCELLED


async def test_same_client_id_twice_gives_one_order():
    engine, paper, clock = await make_engine()
    first = await engine.submit(OrderIntent(market="ETH", side="buy", size=1, client_id="bot-1"))
    second = await engine.submit(OrderIntent(market="ETH", side="buy", size=1, client_id="bot-1"))
    assert first is second and paper.position_size("ETH") == pytest.approx(1)


async def test_reduce_only_from_the_buffer_lifts_with_hysteresis_but_halted_needs_resume():
    engine, paper, clock = await make_engine()
    engine.trading.reduce_only("margin_buffer", clock.now())
    await move(engine, paper, clock, "BTC", 50_000.0)  # flat account: buffer 100% > warn + hysteresis
    assert engine.trading.state is TradingState.ACTIVE
    engine.trading.halt("test", clock.now())
    await move(engine, paper, clock, "BTC", 50_000.0)
    assert engine.trading.state is TradingState.HALTED


async def test_a_feed_the_venue_calls_stale_denies_new_risk_at_once_until_restored():
    """The venue's own FeedStale closes the gate before any mark is old enough for STALE_DATA."""
    engine, paper, clock = await make_engine(stale_after=3.0)
    await move(engine, paper, clock, "BTC", 50_000.0)
    assert (await engine.submit(OrderIntent(market="BTC", side="buy", notional_usd=500))).status is SubmitStatus.SENT
    paper.faults.freeze_marks = True
    clock.advance(4.0)  # past the venue's 3 s, well inside STALE_DATA's 10 s
    paper.poll()
    entry = await engine.submit(OrderIntent(market="ETH", side="buy", notional_usd=500))
    assert entry.status is SubmitStatus.DENIED and entry.decision.error_body()["error"]["code"] == "DATA_UNAVAILABLE"
    exit_ = await engine.submit(OrderIntent(market="BTC", side="sell", notional_usd=200, reduce_only=True))
    assert exit_.status is SubmitStatus.SENT
    paper.faults.freeze_marks = False
    await move(engine, paper, clock, "ETH", 3_000.0)
    assert (await engine.submit(OrderIntent(market="ETH", side="buy", notional_usd=500))).status is SubmitStatus.SENT
