"""The replay's quiet-bar fast path changes nothing a trader reads: on every crash file, both
sides, several leverages, with and without policies, the result equals the mark-by-mark run."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from engine.venues.paper.prices import RandomWalk, walk_candles, write_candles
from engine.risk.policy_file import default_policies
from engine.replay.run import run_replay

CRASHES = sorted((Path(__file__).parent / "fixtures/crashes").glob("*.csv"))


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _assert_equal(path: Path, side: str, leverage: float, policies) -> None:
    fast = asyncio.run(run_replay(path, "BTC", side, leverage, 100_000, policies(), fast=True))
    exact = asyncio.run(run_replay(path, "BTC", side, leverage, 100_000, policies(), fast=False))
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
