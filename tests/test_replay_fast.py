"""The replay's quiet-bar fast path changes nothing a trader reads: on every crash file, both
sides, several leverages, with and without policies, with a stop resting on the venue and with
the engine dying midway, the result equals the mark-by-mark run. And `--engine-dies-at`: once the
engine is dead only what rests on the venue acts (a venue stop closes the position, or the venue
liquidates it), as the timeline and the JSON say."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import datetime, timezone
from pathlib import Path

import pytest

from engine.cli.main import main
from engine.replay.output import render_timeline
from engine.venues.connector import OrderRequest, Trigger
from engine.venues.paper.prices import RandomWalk, walk_candles, write_candles
from engine.risk.policy_file import default_policies
from engine.replay.run import run_replay

CRASHES = sorted((Path(__file__).parent / "fixtures/crashes").glob("*.csv"))


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _assert_equal(path: Path, side: str, leverage: float, policies, **kw) -> None:
    fast = asyncio.run(run_replay(path, "BTC", side, leverage, 100_000, policies(), fast=True, **kw))
    exact = asyncio.run(run_replay(path, "BTC", side, leverage, 100_000, policies(), fast=False, **kw))
    assert fast.liquidated == exact.liquidated
    assert [(e["kind"], e["at"]) for e in fast.events] == [(e["kind"], e["at"]) for e in exact.events]
    assert [e["message"] for e in fast.events] == [e["message"] for e in exact.events]
    assert _same(fast.min_margin_buffer, exact.min_margin_buffer)
    assert _same(fast.equity_end, exact.equity_end)
    for key in ("price", "buffer", "size"):
        assert len(fast.series[key]) == len(exact.series[key])
        assert all(_same(x, y) for x, y in zip(fast.series[key], exact.series[key])), key


@pytest.mark.parametrize("path", CRASHES, ids=lambda p: p.stem[-21:])
@pytest.mark.parametrize("side", ["long", "short"])
@pytest.mark.parametrize("leverage", [3, 10, 20])
@pytest.mark.parametrize("policies", [default_policies, list], ids=["defaults", "no-policies"])
def test_fast_replay_equals_the_mark_by_mark_replay(path, side, leverage, policies):
    _assert_equal(path, side, leverage, policies)


def test_fast_replay_equals_exact_over_a_long_calm_stretch(tmp_path):
    """Hours of quiet bars crossed on formulas land on the same equity, buffer and peak."""
    path = tmp_path / "day.csv"
    write_candles(path, walk_candles(RandomWalk(11, {"BTC": 65_000.0}, step_seconds=3.0), 600))
    _assert_equal(path, "long", 4, default_policies)


CRASH_2021 = Path(__file__).parent / "fixtures/crashes/binance_um_BTCUSDT_1m_2021-05-19_1219-1345Z.csv"
DIES_1230 = datetime(2021, 5, 19, 12, 30, tzinfo=timezone.utc).timestamp()


def hand_stop(trigger_px: str, side: str = "sell"):
    """A venue setup placing one position stop on the paper exchange before the engine starts
    (the engine finds it resting), whatever the policies."""
    async def setup(paper):
        order = OrderRequest("BTC", side, "0", trigger_px, reduce_only=True, trigger=Trigger(trigger_px))
        [ack] = await paper.place_group([order], "positionTpsl")
        assert ack.status == "resting"
    return setup


@pytest.mark.parametrize("path", CRASHES, ids=lambda p: p.stem[-21:])
@pytest.mark.parametrize("side", ["long", "short"])
@pytest.mark.parametrize("policies", [default_policies, list], ids=["defaults", "no-policies"])
def test_fast_replay_equals_exact_when_the_engine_dies_twenty_minutes_in(path, side, policies):
    start = float(path.read_text().splitlines()[1].split(",")[0]) / 1000
    _assert_equal(path, side, 10, policies, engine_dies_at=start + 20 * 60)


@pytest.mark.parametrize("dies", [None, "12:30"], ids=["alive", "dead"])
def test_fast_replay_equals_exact_with_a_stop_resting_on_the_venue(dies):
    _assert_equal(CRASH_2021, "long", 10, list, engine_dies_at=dies, venue_setup=hand_stop("36000"))


def test_a_dead_engines_hand_placed_venue_stop_closes_the_position_after_its_death():
    """No policies (the engine places no stop of its own): the stop placed on the venue before
    the death is what closes the 10x long in the crash, at its trigger, and the account is never
    liquidated."""
    result = asyncio.run(run_replay(CRASH_2021, "BTC", "long", 10, 100_000, [], engine_dies_at="12:30",
                                    venue_setup=hand_stop("36000")))
    assert result.engine_died_at == DIES_1230 and result.as_dict()["engine_died_at"] == DIES_1230
    assert not result.liquidated
    kinds = [e["kind"] for e in result.events]
    death = kinds.index("engine_died")
    assert result.events[death]["at"] == DIES_1230 and "stop-loss sell BTC at trigger 36000" in result.events[death]["message"]
    assert all(e["at"] < DIES_1230 for e in result.events[:death])
    after = result.events[death + 1:]
    assert [e["kind"] for e in after] == ["venue_stop_triggered", "venue_stop_filled"]
    triggered, filled = after
    assert triggered["at"] > DIES_1230 and triggered["trigger_px"] == 36_000 and triggered["mark"] <= 36_000
    assert filled["side"] == "sell" and filled["size"] > 25 and filled["px"] < 36_000 and filled["realized_pnl"] < 0
    assert result.equity_end > 20_000  # what the stop saved: the rest of the crash happened without the position
    text = render_timeline(result)
    assert "the engine died at 12:30:00 UTC" in text
    assert "12:30:00  engine_died" in text and "venue_stop_filled" in text


def test_a_dead_engine_without_any_stop_is_liquidated():
    result = asyncio.run(run_replay(CRASH_2021, "BTC", "long", 10, 100_000, [], engine_dies_at="12:30"))
    assert result.liquidated
    kinds = [e["kind"] for e in result.events]
    assert kinds.index("engine_died") < kinds.index("liquidated")
    assert "nothing rests on the venue" in result.events[kinds.index("engine_died")]["message"]
    assert not any("venue_stop" in k for k in kinds)


def test_cli_a_dead_engine_without_policies_is_liquidated_exit_1(capsys, tmp_path):
    empty = tmp_path / "none.json"
    empty.write_text("[]")
    code = main(["replay", str(CRASH_2021), "--market", "BTC", "--side", "long", "--leverage", "10",
                 "--policies", str(empty), "--engine-dies-at", "12:30:00", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 1 and result["liquidated"] is True and result["engine_died_at"] == DIES_1230


def test_cli_without_a_death_says_engine_died_at_null(capsys, tmp_path):
    empty = tmp_path / "none.json"
    empty.write_text("[]")
    main(["replay", str(CRASH_2021), "--market", "BTC", "--side", "long", "--leverage", "3",
          "--policies", str(empty), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["engine_died_at"] is None and "engine_died" not in [e["kind"] for e in result["events"]]


def test_cli_the_default_venue_stop_outlives_the_engine(capsys):
    """The default policies keep a stop on the venue (VENUE_STOP): with the engine dead at 12:30
    that stop fires in the crash and the account is not liquidated."""
    code = main(["replay", str(CRASH_2021), "--market", "BTC", "--side", "long", "--leverage", "10",
                 "--engine-dies-at", "12:30", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["liquidated"] is False and result["engine_died_at"] == DIES_1230
    kinds = [e["kind"] for e in result["events"]]
    death = kinds.index("engine_died")
    assert "venue_stop_triggered" in kinds[death:] and "venue_stop_filled" in kinds[death:]
    assert "liquidated" not in kinds


@pytest.mark.parametrize("when, says", [("14:00", "outside the file's span"), ("12:18:59", "outside the file's span"),
                                        ("12h30", "HH:MM"), ("25:00", "HH:MM")])
def test_cli_a_death_time_outside_the_file_or_malformed_is_bad_input(capsys, when, says):
    code = main(["replay", str(CRASH_2021), "--market", "BTC", "--side", "long", "--leverage", "10",
                 "--engine-dies-at", when])
    err = capsys.readouterr().err
    assert code == 2 and "--engine-dies-at" in err and says in err
