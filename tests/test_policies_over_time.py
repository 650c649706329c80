"""Policies over time: windows roll, periods end, cooldowns run out, volatility and trading windows."""

from policy_cases import *  # noqa: F401,F403  (the shared cases, helpers and imports)

# ---- 4. policies over time: windows roll, periods end, cooldowns run out ------------------

def test_daily_spend_frees_up_24_hours_after_it_was_spent():
    gate, _ = make_gate([{"type": "SPENDING_LIMIT", "rules": {"daily_limit_usd": 50000}}])
    spend(gate, 15_000, T0)
    spend(gate, 15_000, T0 + 3_600)
    spend(gate, 15_000, T0 + 7_200)
    big = order(notional_usd=10_000)
    late = gate.evaluate(big, now=T0 + DAY - 1)
    assert the_denial(late, "SPENDING_LIMIT").value == pytest.approx(55_000)
    rolled = gate.evaluate(big, now=T0 + DAY)  # the first 15k left the window
    assert rolled.allowed
    assert gate.evaluate(order(notional_usd=20_100), now=T0 + DAY).verdict is Verdict.DENY


def test_monthly_spend_is_a_rolling_30_days():
    gate, _ = make_gate([{"type": "SPENDING_LIMIT", "rules": {"monthly_limit_usd": 100000}}])
    spend(gate, 60_000, T0)
    spend(gate, 30_000, T0 + 10 * DAY)
    intent = order(notional_usd=20_000)
    assert the_denial(gate.evaluate(intent, now=T0 + 30 * DAY - 1), "SPENDING_LIMIT").value == pytest.approx(110_000)
    assert gate.evaluate(intent, now=T0 + 30 * DAY).allowed


def test_exits_never_spend_the_budget():
    gate, _ = make_gate([{"type": "SPENDING_LIMIT", "rules": {"daily_limit_usd": 10000}}], book=make_book(positions={"BTC": 2.0}))
    exit_ = gate.evaluate(order(side="sell", size=1.0))  # 50k, five times the daily budget
    assert exit_.allowed and exit_.tier is Tier.INSTANT
    gate.note_forwarded(exit_)
    assert gate.evaluate(order(notional_usd=10_000)).allowed


def test_category_budgets_are_separate_and_roll_over():
    gate, _ = make_gate([{"type": "ACTION_CATEGORY_LIMIT", "rules": {"categoryLimits": {
        "swap": {"daily_limit_usd": 5000}, "derivatives": {"daily_limit_usd": 10000}}}}])
    spend(gate, 5_000, T0, "swap")
    assert gate.evaluate(order(notional_usd=100, category="swap"), now=T0 + 1).verdict is Verdict.DENY
    assert gate.evaluate(order(notional_usd=10_000), now=T0 + 1).allowed  # derivatives untouched
    assert gate.evaluate(order(notional_usd=1_000_000, category="lending"), now=T0 + 1).allowed  # not budgeted
    assert gate.evaluate(order(notional_usd=5_000, category="swap"), now=T0 + DAY).allowed


def test_category_monthly_budget():
    gate, _ = make_gate([{"type": "ACTION_CATEGORY_LIMIT", "rules": {"categoryLimits": {"swap": {"monthly_limit_usd": 20000}}}}])
    spend(gate, 15_000, T0, "swap")
    denied = gate.evaluate(order(notional_usd=6_000, category="swap"), now=T0 + 20 * DAY)
    reason = the_denial(denied, "CATEGORY_LIMIT")
    assert (reason.limit, reason.value) == (20_000, pytest.approx(21_000))
    assert "monthly_limit_usd of 20000 for swap" in reason.message
    assert gate.evaluate(order(notional_usd=6_000, category="swap"), now=T0 + 30 * DAY).allowed


def test_rate_limit_window_slides_and_denied_submissions_count():
    gate, clock = make_gate([{"type": "RATE_LIMIT", "rules": {"maxTransactions": 3, "period": "minute"}}])
    intent = order(size=0.01)
    for t in (T0, T0 + 20, T0 + 40):
        clock.set(t)
        assert gate.evaluate(intent).allowed
        gate.note_submission(t)
    clock.set(T0 + 50)
    fourth = gate.evaluate(intent)
    assert the_denial(fourth, "RATE_LIMITED").value == 4
    gate.note_submission(T0 + 50)  # denied, but it still counts
    clock.set(T0 + 60)  # the T0 submission left the window; T0+20, +40, +50 remain
    assert gate.evaluate(intent).verdict is Verdict.DENY
    clock.set(T0 + 80)  # T0+20 gone too: two left
    assert gate.evaluate(intent).allowed


def test_rate_limit_period_in_seconds_and_hourly():
    gate, _ = make_gate([{"type": "RATE_LIMIT", "rules": {"maxTransactions": 1, "period": 10}}])
    gate.note_submission(T0)
    assert gate.evaluate(order(size=0.01), now=T0 + 9.9).verdict is Verdict.DENY
    assert gate.evaluate(order(size=0.01), now=T0 + 10).allowed
    hourly, _ = make_gate([{"type": "RATE_LIMIT", "rules": {"maxTransactions": 2, "period": "hourly"}}])
    submit(hourly, T0, 2)
    assert hourly.evaluate(order(size=0.01), now=T0 + 3_599).verdict is Verdict.DENY
    assert hourly.evaluate(order(size=0.01), now=T0 + 3_600).allowed


def test_circuit_breaker_cools_down_and_a_win_resets_the_streak():
    gate, _ = make_gate([{"type": "CIRCUIT_BREAKER", "rules": {"maxConsecutiveLosses": 3, "cooldownMinutes": 60}}])
    for k in range(3):
        gate.counters.on_close(-50.0, T0 + k)
    last = T0 + 2
    assert "CIRCUIT_BREAKER" in codes(gate.evaluate(order(size=0.1), now=last + 3_599))
    assert gate.evaluate(order(size=0.1), now=last + 3_600).allowed
    gate.counters.on_close(-10.0, last + 4_000)  # the streak is still 4: a new loss re-trips it
    assert "CIRCUIT_BREAKER" in codes(gate.evaluate(order(size=0.1), now=last + 4_001))
    gate.counters.on_close(+10.0, last + 4_002)
    assert gate.evaluate(order(size=0.1), now=last + 4_003).allowed


def test_daily_loss_limit_lifts_at_the_next_utc_day():
    gate, _ = make_gate([{"type": "LOSS_LIMIT", "rules": {"dailyLoss": 0.05}}], book=make_book(positions={"BTC": 2.0}))
    gate.book.set_mark("BTC", 47_000, T0 + 60)  # -6000 on the day
    gate.counters.on_equity(gate.book.equity, T0 + 60)
    assert "LOSS_LIMIT" in codes(gate.evaluate(order(size=0.01), now=T0 + 120))
    next_day = gate.counters.next_day(T0)
    gate.counters.on_equity(gate.book.equity, next_day)  # the engine's first equity of the day
    assert gate.evaluate(order(size=0.01), now=next_day + 1).allowed


def test_weekly_loss_outlasts_the_day_and_lifts_on_monday():
    gate, _ = make_gate([{"type": "LOSS_LIMIT", "rules": {"weeklyLoss": 0.15}}], book=make_book(positions={"BTC": 2.0}))
    gate.book.set_mark("BTC", 42_000, T0 + 60)  # -16000: 16% of the week's 100k
    gate.counters.on_equity(gate.book.equity, T0 + 60)
    wednesday = gate.counters.next_day(T0) + 3_600
    gate.counters.on_equity(gate.book.equity, wednesday)
    denied = gate.evaluate(order(size=0.01), now=wednesday)
    reason = the_denial(denied, "LOSS_LIMIT")
    assert (reason.limit, reason.value) == (pytest.approx(15_000), pytest.approx(16_000))
    assert "Weekly loss of 16000 USD" in reason.message
    monday = gate.counters.next_week(T0)
    gate.counters.on_equity(gate.book.equity, monday)
    assert gate.evaluate(order(size=0.01), now=monday + 1).allowed


def test_realized_only_loss_limit_ignores_open_losses():
    gate, _ = make_gate([{"type": "LOSS_LIMIT", "rules": {"dailyLoss": 0.05, "includeUnrealized": False}}],
                        book=make_book(positions={"BTC": 2.0}))
    gate.book.set_mark("BTC", 40_000, T0)  # -20000 open, nothing realized
    assert gate.evaluate(order(size=0.01)).allowed
    gate.counters.on_close(-5_000.0, T0)
    assert the_denial(gate.evaluate(order(size=0.01)), "LOSS_LIMIT").value == pytest.approx(5_000)


def test_drawdown_follows_marks_against_the_peak():
    gate, _ = make_gate([{"type": "MAX_DRAWDOWN", "rules": {"maxDrawdown": 0.1}}], book=make_book(positions={"BTC": 2.0}))
    gate.book.set_mark("BTC", 60_000, T0 + 1)
    gate.counters.on_equity(gate.book.equity, T0 + 1)  # peak 120k
    gate.book.set_mark("BTC", 55_000, T0 + 2)  # 110k: 8.3% down
    assert gate.evaluate(order(size=0.01), now=T0 + 2).allowed
    gate.book.set_mark("BTC", 53_000, T0 + 3)  # 106k: 11.7% down
    reason = the_denial(gate.evaluate(order(size=0.01), now=T0 + 3), "MAX_DRAWDOWN")
    assert reason.value == pytest.approx(1 - 106_000 / 120_000)


@pytest.mark.parametrize("peak, equity, max_drawdown", [(125_000, 100_000, 0.2), (100_000, 90_000, 0.1)])
def test_a_drawdown_of_exactly_max_drawdown_trips(peak, equity, max_drawdown):
    # The rule trips when the drawdown *reaches* maxDrawdown ("reached MAX_DRAWDOWN"): a peak
    # of 125k and equity of 100k is exactly 20% down and must stop entries, float noise or not.
    gate, _ = make_gate([{"type": "MAX_DRAWDOWN", "rules": {"maxDrawdown": max_drawdown}}], book=make_book(equity=equity))
    gate.counters.on_equity(peak, T0 - 3_600)
    assert "MAX_DRAWDOWN" in codes(gate.evaluate(order(size=0.01)))


@pytest.mark.parametrize("share, btc, mark", [(0.07, 1.4, 45_000), (0.05, 2.0, 47_500)])
def test_a_loss_of_exactly_the_daily_limit_trips(share, btc, mark):
    # 7% of 100k is 7000: losing exactly 7000 reached LOSS_LIMIT (the rule's own ">=" says so).
    gate, _ = make_gate([{"type": "LOSS_LIMIT", "rules": {"dailyLoss": share}}], book=make_book(positions={"BTC": btc}))
    gate.book.set_mark("BTC", mark, T0)
    assert 100_000 - gate.book.equity == pytest.approx(share * 100_000, abs=1e-9)
    assert "LOSS_LIMIT" in codes(gate.evaluate(order(size=0.01)))


def test_concentration_applies_from_min_gross():
    gate, _ = make_gate([{"type": "CONCENTRATION", "rules": {"maxMarketShare": 0.6, "minGrossUsd": 100000}}])
    assert gate.evaluate(order(size=1.9)).allowed  # 95k gross, 100% BTC: below minGrossUsd
    reason = the_denial(gate.evaluate(order(size=2.0)), "CONCENTRATION")  # from 100k on, the share counts
    assert (reason.limit, reason.value) == (0.6, pytest.approx(1.0))


def test_volatility_history_older_than_the_lookback_is_forgotten():
    gate, _ = make_gate([{"type": "VOLATILITY_LEVERAGE", "rules": VOL_RULES}])
    vol_history(gate)
    assert gate.evaluate(order(size=0.1), now=T0 + 12 * 60).allowed
    later = T0 + 3 * 3_600
    feed_minutes(gate.counters, "BTC", VOL_CLOSES[:3], start=later)  # two hours of silence, then three minutes
    assert codes(gate.evaluate(order(size=0.1), now=later + 180)) == ["DATA_UNAVAILABLE"]


def test_stale_marks_fail_closed_and_a_fresh_mark_reopens():
    gate, _ = make_gate([{"type": "STALE_DATA", "rules": {"maxMarkAgeSeconds": 10, "maxAccountAgeSeconds": 30}}])
    assert gate.evaluate(order(size=0.1), now=T0 + 20).verdict is Verdict.DENY
    gate.book.set_mark("BTC", 50_100, T0 + 19)
    assert gate.evaluate(order(size=0.1), now=T0 + 20).allowed
    assert gate.evaluate(order(size=0.1), now=T0 + 31).verdict is Verdict.DENY  # account now 31 s old
    gate.book.touch_account(T0 + 30)
    gate.book.set_mark("BTC", 50_100, T0 + 30)
    assert gate.evaluate(order(size=0.1), now=T0 + 31).allowed


def test_volatility_cap_shrinks_to_the_floor_and_opens_to_the_ceiling():
    wild = [50_000.0 * (1.02 if k % 2 else 1.0) for k in range(12)]  # ~1430%/yr
    gate, _ = make_gate([{"type": "VOLATILITY_LEVERAGE", "rules": {"targetVolatility": 0.5, "lookbackMinutes": 60,
                                                                   "floorLeverage": 1.5, "maxLeverage": 4}}])
    feed_minutes(gate.counters, "BTC", wild)
    reason = the_denial(gate.evaluate(order(size=3.2)), "VOLATILITY_LEVERAGE")  # 1.6x
    assert reason.limit == pytest.approx(1.5)
    assert gate.evaluate(order(size=3.0)).allowed  # 1.5x: the floor

    calm, _ = make_gate([{"type": "VOLATILITY_LEVERAGE", "rules": {"targetVolatility": 0.5, "lookbackMinutes": 60,
                                                                   "floorLeverage": 1.5, "maxLeverage": 4}}])
    feed_minutes(calm.counters, "BTC", [50_000.0] * 12)  # zero realized volatility
    assert calm.evaluate(order(size=8.0)).allowed  # 4x: the ceiling
    assert the_denial(calm.evaluate(order(size=8.1)), "VOLATILITY_LEVERAGE").limit == pytest.approx(4)


def test_volatility_needs_five_one_minute_returns():
    gate, _ = make_gate([{"type": "VOLATILITY_LEVERAGE", "rules": VOL_RULES}])
    feed_minutes(gate.counters, "BTC", VOL_CLOSES[:6])  # 4 returns so far
    assert codes(gate.evaluate(order(size=0.1))) == ["DATA_UNAVAILABLE"]
    gate.counters.on_mark("BTC", VOL_CLOSES[6], T0 + 6 * 60)  # the fifth
    assert gate.evaluate(order(size=0.1)).allowed


def test_realized_volatility_matches_the_textbook_figure():
    gate, _ = make_gate([{"type": "VOLATILITY_LEVERAGE", "rules": VOL_RULES}])
    vol_history(gate)
    assert gate.counters.volatility["BTC"].annualized() == pytest.approx(VOL_REALIZED, rel=1e-9)


def test_time_window_spanning_midnight_and_allowed_days():
    night = [{"type": "TIME_RESTRICTION", "rules": {"allowedHours": {"start": 22, "end": 6}}}]
    gate, _ = make_gate(night)
    assert gate.evaluate(order(size=0.1), now=T0).allowed  # 22:13
    assert gate.evaluate(order(size=0.1), now=T0 + 8 * 3_600).verdict is Verdict.DENY  # 06:13
    assert gate.evaluate(order(size=0.1), now=T0 + 8 * 3_600 - 14 * 60).allowed  # 05:59
    weekdays, _ = make_gate([{"type": "TIME_RESTRICTION", "rules": {"allowedDays": ["mon", "tue"]}}])
    assert weekdays.evaluate(order(size=0.1), now=T0).allowed  # Tuesday
    wednesday = weekdays.evaluate(order(size=0.1), now=T0 + 2 * 3_600)  # 00:13 Wednesday
    assert the_denial(wednesday, "OUTSIDE_TRADING_HOURS").value == "Wed 00:13"


def _book_with_resting(n: int) -> Book:
    book = Book(MARKETS)
    orders = [OpenOrder(f"o{i}", "BTC", "buy", 0.01, 40_000.0) for i in range(n)]
    book.load(Account(100_000.0, 100_000.0, 100_000.0, T0), [], orders, marks=dict(MARKS), at=T0)
    return book


def test_max_open_orders_counts_resting_orders_for_limit_orders_only():
    body = [{"type": "ORDER_LIMITS", "rules": {"maxOpenOrders": 2}}]
    limit = order(size=0.01, type="limit", limit_px=49_900)
    gate, _ = make_gate(body, book=_book_with_resting(1))
    assert gate.evaluate(limit).allowed
    full, _ = make_gate(body, book=_book_with_resting(2))
    reason = the_denial(full.evaluate(limit), "TOO_MANY_OPEN_ORDERS")
    assert (reason.limit, reason.value) == (2, 3)
    assert "maxOpenOrders of 2 (projected 3)" in reason.message
    assert full.evaluate(order(size=0.01)).allowed  # an IOC market order does not rest


def test_warning_thresholds_release_with_a_notification():
    gate, _ = make_gate([
        {"type": "PERP_MAX_POSITION_USD", "rules": {"maxPositionUsd": 50000, "warningPositionUsd": 40000}},
        {"type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 5, "warningLeverage": 0.3}},
    ])
    quiet = gate.evaluate(order(size=0.5))  # 25k, 0.25x
    assert quiet.allowed and quiet.tier is Tier.INSTANT and quiet.reasons == ()
    loud = gate.evaluate(order(size=0.9))  # 45k, 0.45x
    assert loud.allowed and loud.tier is Tier.NOTIFY
    assert {r.code for r in loud.reasons} == {"POSITION_WARNING", "LEVERAGE_WARNING"}


def test_spending_tiers_follow_the_seed_thresholds():
    gate, _ = make_gate([SEED_BODIES[3]])
    expected = [
        (1_000, Tier.INSTANT, None), (1_001, Tier.NOTIFY, None), (5_000, Tier.NOTIFY, None),
        (5_001, Tier.DELAY, 300), (20_000, Tier.DELAY, 300), (20_001, Tier.APPROVAL, 3_600),
    ]
    for usd, tier, hold in expected:
        decision = gate.evaluate(order(notional_usd=usd))
        assert decision.allowed, usd
        assert (decision.tier, decision.hold_seconds) == (tier, hold), usd


