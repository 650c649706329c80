"""How figures read on the console, and the chart's history: pure functions, pinned."""

from __future__ import annotations

import pytest

from console import format as fmt
from console.history import RiskHistory, Sample, downsample
from console.panes.header import causes_of, cause_text
from console.risk import BREACH, OK, WARN, buffer_level, distance_level
from engine.api.state import EngineState, StopCause
from engine.domain.model import TradingState


@pytest.mark.parametrize("px, text", [(65_012.4, "65,012"), (3_212.46, "3,212.5"), (0.150123, "0.15012"),
                                      (150, "150.00"), (None, "—"), (float("nan"), "—")])
def test_prices_have_five_significant_figures(px, text):
    assert fmt.price(px) == text


def test_a_price_in_a_table_column_keeps_a_gap_to_the_next():
    assert fmt.price(0.0960123) == "0.096012" and fmt.price(0.0960123, max_len=7) == "0.09601"
    assert fmt.price(65_012.4, max_len=7) == "65,012" and fmt.price(0.150123, max_len=7) == "0.15012"


def test_sizes_money_and_time():
    assert fmt.size(-4.6875) == "4.6875" and fmt.size(80.0) == "80" and fmt.size(60_000) == "60,000"
    assert fmt.usd(-7.5, signed=True) == "-7.50" and fmt.usd(1_343.2, signed=True) == "+1,343"
    assert fmt.usd(99_948.694, cents_below=1e12) == "99,948.69"
    assert fmt.duration(299.2) == "5:00" and fmt.duration(3600) == "1:00:00" and fmt.duration(-5) == "0:00"
    assert fmt.clock(1_700_000_000) == "22:13:20"  # UTC, the engine's clock
    assert fmt.percent(0.987) == "98.7%"


def test_risk_levels():
    assert buffer_level(0.2, 0.5, 0.25) == BREACH and buffer_level(0.4, 0.5, 0.25) == WARN
    assert buffer_level(0.9, 0.5, 0.25) == OK
    assert distance_level(0.03) == BREACH and distance_level(0.10) == WARN and distance_level(None) == OK


def test_causes_read_as_the_engine_sends_them():
    listed = EngineState(time=0, trading_state=TradingState.REDUCE_ONLY,
                         causes=(StopCause(cause="max_drawdown", latched=True),
                                 StopCause(cause="loss_limit:daily", until=3600.0)))
    assert causes_of(listed) == [("max_drawdown", None, True), ("loss_limit:daily", 3600.0, False)]
    assert cause_text("max_drawdown", None, 0, latched=True) == "max drawdown reached (latched: r resumes)"
    assert cause_text("loss_limit:daily", 3600.0, 0) == "daily loss limit (lifts 01:00:00 UTC, in 1:00:00)"


def test_history_samples_once_a_second_keeping_the_low_and_stays_idle_when_nothing_moves():
    history = RiskHistory(step=1.0)
    assert history.add(0.0, 0.9, 100.0)
    assert history.add(0.5, 0.8, 99.0)  # same second: the lower buffer replaces
    assert not history.add(0.7, 0.85, 99.0)
    assert [s.buffer for s in history.samples] == [0.8]
    assert history.add(5.0, 0.8, 100.0)  # equity moved
    version = history.version
    assert not history.add(6.0, 0.8, 100.0)  # unchanged: no new sample, no redraw
    assert history.version == version
    assert history.add(40.0, 0.8, 100.0)  # but a quiet line still gets a point every 30 s


def test_downsample_keeps_the_lowest_buffer_of_each_bucket():
    samples = [Sample(float(i), 0.9 - (0.5 if i == 37 else 0.0), 100.0 + i) for i in range(100)]
    out = downsample(samples, 10)
    assert len(out) == 10
    assert min(s.buffer for s in out) == pytest.approx(0.4)  # the dip survives
    assert out[-1].equity == 199.0 and out[-1].at == 99.0


def test_the_header_says_what_the_venue_is_not_doing_for_the_account():
    from console.panes.header import venue_notices
    from engine.api.state import DeadManView

    refused = EngineState(time=0, trading_state=TradingState.ACTIVE, agent_expires_at=3 * 86_400 + 7200,
                          dead_man=DeadManView(armed=False, reason="Cannot set scheduled cancel time until enough "
                                                                   "volume traded. Required: $1000000. Traded: $0.",
                                                         refused=True))
    notices = venue_notices(refused)
    assert notices[0] == ("dead-man switch NOT armed: Cannot set scheduled cancel time until enough volume "
                          "traded. Required: $1000000. Traded: $0.", BREACH)
    assert notices[1] == ("API wallet expires in 3d 02h", WARN)
    fine = EngineState(time=0, trading_state=TradingState.ACTIVE, agent_expires_at=30 * 86_400,
                       dead_man=DeadManView(armed=True, until=60))
    assert venue_notices(fine) == []
    stopped = EngineState(time=0, trading_state=TradingState.ACTIVE, dead_man=DeadManView(armed=False, reason="cleared"))
    assert venue_notices(stopped) == []
