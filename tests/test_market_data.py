"""Market data for the paper exchange: real crash candles replayed wick by wick, and a seeded
simulator that is the same every run."""

import statistics
from pathlib import Path

import pytest

from engine.domain.clock import ManualClock
from engine.venues.connector import Liquidated, OrderRequest
from engine.venues.paper import PaperExchange
from engine.venues.paper.prices import (
    Candle, FlashCrash, RandomWalk, VolRegime, candle_marks, feed, flash_crash, read_candles,
)
from tests.builders import MARKETS

CRASHES = Path(__file__).parent / "fixtures" / "crashes"
MARCH_2020 = CRASHES / "binance_um_BTCUSDT_1m_2020-03-13_0130-0245Z.csv"


def test_down_bar_goes_open_low_high_close_in_twenty_marks_three_seconds_apart():
    bar = Candle(1_000_000.0, open=100.0, high=104.0, low=90.0, close=95.0, volume=1.0)
    marks = list(candle_marks([bar]))
    assert len(marks) == 20
    assert [m.time for m in marks] == [1_000_000.0 + 3 * k for k in range(20)]
    px = [m.px for m in marks]
    assert (px[0], px[6], px[13], px[19]) == (100.0, 90.0, 104.0, 95.0)  # extremes hit exactly
    assert min(px) == 90.0 and max(px) == 104.0
    assert all(a > b for a, b in zip(px[0:7], px[1:7]))  # falls to the low first
    assert all(a < b for a, b in zip(px[6:14], px[7:14]))  # then up to the high
    assert all(a > b for a, b in zip(px[13:20], px[14:20]))  # then down to the close


def test_up_bar_goes_open_high_low_close():
    bar = Candle(0.0, open=100.0, high=110.0, low=98.0, close=108.0, volume=1.0)
    px = [m.px for m in candle_marks([bar])]
    assert (px[0], px[6], px[13], px[19]) == (100.0, 110.0, 98.0, 108.0)
    assert px.index(max(px)) < px.index(min(px))


def test_crash_files_read_as_contiguous_minute_bars():
    for path in sorted(CRASHES.glob("*.csv")):
        candles = read_candles(path)
        assert len(candles) > 50
        assert all(b.open_time - a.open_time == 60 for a, b in zip(candles, candles[1:]))
    march = read_candles(MARCH_2020)
    assert march[0] == Candle(1584063000.0, 4533.22, 4545.00, 4510.00, 4532.69, 504.514)
    assert min(c.low for c in march) == 3621.81


def test_replayed_marks_reach_the_real_low_of_the_crash():
    marks = list(candle_marks(read_candles(MARCH_2020)))
    assert len(marks) == 20 * len(read_candles(MARCH_2020))
    assert min(m.px for m in marks) == 3621.81


def test_read_candles_names_what_is_wrong(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("open_time_ms,open,high,low,close\n1,1,1,1,1\n")
    with pytest.raises(ValueError, match="volume_btc"):
        read_candles(bad)
    bad.write_text("open_time_ms,open,high,low,close,volume_btc\n1,10,9,8,9,1\n")
    with pytest.raises(ValueError, match="bad.csv:2"):
        read_candles(bad)


@pytest.mark.parametrize("leverage, liquidated", [(10, True), (2, False)])
async def test_march_2020_wick_liquidates_a_10x_long_but_not_a_2x_long(leverage, liquidated):
    candles = read_candles(MARCH_2020)
    clock = ManualClock(candles[0].open_time)
    ex = PaperExchange(MARKETS, equity=10_000.0, clock=clock)
    events = []
    ex.subscribe(events.append)
    ex.set_mark("BTC", candles[0].open)
    size = round(10_000 * leverage / candles[0].open, 3)
    ack = await ex.place(OrderRequest("BTC", "buy", str(size), "4600", "Ioc"))
    assert ack.status == "filled"
    feed(ex, candle_marks(candles), clock)
    assert bool([e for e in events if isinstance(e, Liquidated)]) is liquidated
    assert (ex.position_size("BTC") == 0) is liquidated


def test_simulator_is_deterministic_for_a_seed():
    def walk(seed):
        return RandomWalk(seed, {"BTC": 50_000.0, "ETH": 3_000.0}, step_seconds=2.0).take(3_600)
    first, again, other = walk(7), walk(7), walk(8)
    assert first == again
    assert first != other
    assert len(first) == 2 * 1_800
    assert [t.time for t in first[:4]] == [1_700_000_000.0, 1_700_000_000.0, 1_700_000_002.0, 1_700_000_002.0]
    assert all(t.px > 0 for t in first)


def test_stormy_regime_moves_more_than_calm():
    def spread(regime):
        ticks = RandomWalk(3, {"BTC": 50_000.0}, regimes=(regime,), jump_probability=0.0).take(7_200)
        px = [t.px for t in ticks]
        return statistics.pstdev(b / a - 1 for a, b in zip(px, px[1:]))
    calm, storm = spread(VolRegime("calm", 0.004, 1e9)), spread(VolRegime("stormy", 0.04, 1e9))
    assert storm > 5 * calm


def test_jumps_move_every_coin_at_once():
    still = VolRegime("still", 0.0, 1e9)
    ticks = RandomWalk(1, {"BTC": 50_000.0, "ETH": 3_000.0}, regimes=(still,), jump_probability=1.0,
                       jump_size=0.02).take(3)
    btc = [t.px for t in ticks if t.coin == "BTC"]
    eth = [t.px for t in ticks if t.coin == "ETH"]
    for series in (btc, eth):
        for a, b in zip(series, series[1:]):
            assert 0.009 < abs(b / a - 1) < 0.031  # 0.5x..1.5x of a 2% jump
    assert [(b > a) for a, b in zip(btc, btc[1:])] == [(b > a) for a, b in zip(eth, eth[1:])]


def test_flash_crash_drops_fifteen_percent_then_wins_half_back():
    start = {"BTC": 50_000.0}
    crash = flash_crash(11, start, crash=FlashCrash(start_seconds=600, drop=0.15, fall_seconds=180,
                                                    rebound=0.5, rebound_seconds=600))
    plain = RandomWalk(11, start, jump_probability=0.0)
    with_crash, without = crash.take(2_400), plain.take(2_400)
    ratio = {a.time - 1_700_000_000.0: a.px / b.px for a, b in zip(with_crash, without)}
    assert ratio[599] == pytest.approx(1.0, abs=1e-4)
    assert ratio[780] == pytest.approx(0.85, abs=1e-4)  # the bottom, 3 minutes in
    assert ratio[1380] == pytest.approx(0.925, abs=1e-4)  # half the drop back
    assert ratio[2399] == pytest.approx(0.925, abs=1e-4)


async def test_flash_crash_liquidates_a_highly_levered_long_through_the_exchange():
    clock = ManualClock(1_700_000_000.0)
    ex = PaperExchange(MARKETS, equity=10_000.0, clock=clock)
    events = []
    ex.subscribe(events.append)
    ex.set_mark("BTC", 50_000.0)
    await ex.place(OrderRequest("BTC", "buy", "3", "51000", "Ioc"))  # 15x
    feed(ex, flash_crash(5, {"BTC": 50_000.0}).take(1_800), clock)
    assert [e.coin for e in events if isinstance(e, Liquidated)] == ["BTC"]
