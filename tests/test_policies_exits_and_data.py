"""Reducing orders pass every entry rule even when the account breaches it; missing data
denies new risk with DATA_UNAVAILABLE (fail closed)."""

from policy_cases import *  # noqa: F401,F403  (the shared cases, helpers and imports)


# ---- 2. reducing orders pass entry rules even when the state breaches them -----------------

# Each state: the account holds 20 BTC long (1M notional on 100k equity, 10x) and breaches
# the rule for any new entry. Selling 5 BTC reduces the position and must pass.
BREACHED = [
    ("PERP_MAX_LEVERAGE", {"maxLeverage": 5}, None, T0, "LEVERAGE_LIMIT"),
    ("PERP_MAX_POSITION_USD", {"maxPositionUsd": 500000}, None, T0, "POSITION_LIMIT"),
    ("PERP_ALLOWED_MARKETS", {"allowedMarkets": ["ETH-USD"]}, None, T0, "MARKET_NOT_ALLOWED"),
    ("SPENDING_LIMIT", {"instant_max_usd": 1000, "on_exceed": "DENY"}, None, T0, "SPENDING_LIMIT"),
    ("RATE_LIMIT", {"maxTransactions": 2, "period": "minute"}, lambda g: submit(g, T0, 5), T0, "RATE_LIMITED"),
    ("ACTION_CATEGORY_LIMIT", {"categoryLimits": {"derivatives": {"per_action_limit_usd": 1000}}}, None, T0, "CATEGORY_LIMIT"),
    ("MAX_GROSS_EXPOSURE", {"maxExposure": 3}, None, T0, "GROSS_EXPOSURE"),
    ("MAX_POSITION_SHARE", {"maxPositionShare": 0.5}, None, T0, "POSITION_SHARE"),
    ("MIN_MARGIN_BUFFER", BUFFER_RULES, None, T0, "MARGIN_BUFFER"),
    ("LOSS_LIMIT", {"dailyLoss": 0.05}, mark_state("BTC", 49_500), T0, "LOSS_LIMIT"),
    ("MAX_DRAWDOWN", {"maxDrawdown": 0.1}, peak_state(200_000), T0, "MAX_DRAWDOWN"),
    ("CIRCUIT_BREAKER", {"maxConsecutiveLosses": 1, "cooldownMinutes": 60}, losses_state(1), T0, "CIRCUIT_BREAKER"),
    ("REWARD_RISK", {"requireStopLoss": True}, None, T0, "STOP_LOSS_REQUIRED"),
    ("RISK_PER_TRADE", {"maxRiskShare": 0.01}, None, T0, "STOP_LOSS_REQUIRED"),
    ("STALE_DATA", {"maxMarkAgeSeconds": 10, "maxAccountAgeSeconds": 30}, None, T0 + 120, "DATA_UNAVAILABLE"),
    ("FUNDING_GUARD", {"maxHourlyFunding": 0.0001}, funding_state("BTC", 0.01), T0, "FUNDING_GUARD"),
    ("CONCENTRATION", {"maxMarketShare": 0.5}, None, T0, "CONCENTRATION"),
    ("VOLATILITY_LEVERAGE", VOL_RULES, vol_history, T0, "VOLATILITY_LEVERAGE"),
    ("TIME_RESTRICTION", {"allowedDays": ["mon"]}, None, T0, "OUTSIDE_TRADING_HOURS"),
    ("ORDER_LIMITS", {"maxOrderUsd": 1000, "maxOpenOrders": 0}, None, T0, "ORDER_TOO_LARGE"),
]


def test_every_entry_rule_has_a_breached_state():
    # PRICE_BAND is price protection, not an entry rule: exits face it too (tested below).
    assert {t for t, *_ in BREACHED} == ALL_TYPES - {"PRICE_BAND"}


@pytest.mark.parametrize("kind, rules, setup, now, code", BREACHED, ids=[b[0] for b in BREACHED])
def test_a_reducing_order_passes_an_entry_rule_the_account_breaches(kind, rules, setup, now, code):
    gate, _ = make_gate([{"type": kind, "rules": rules}], book=make_book(positions={"BTC": 20.0}))
    if setup:
        setup(gate)

    entry = gate.evaluate(order(size=0.1), now=now)
    assert entry.verdict is Verdict.DENY
    assert code in codes(entry)

    exit_ = gate.evaluate(order(side="sell", size=5.0), now=now)
    assert exit_.reducing
    assert exit_.verdict is Verdict.ALLOW, [r.message for r in exit_.reasons]
    assert exit_.tier is Tier.INSTANT
    assert exit_.projected.position_size == pytest.approx(15.0)

    closing_limit = gate.evaluate(order(side="sell", size=20.0, type="limit", limit_px=gate.book.marks["BTC"]), now=now)
    assert closing_limit.verdict is Verdict.ALLOW, [r.message for r in closing_limit.reasons]


def test_price_band_stops_an_exit_at_a_fat_finger_price_but_not_a_sane_one():
    gate, _ = make_gate([{"type": "PRICE_BAND", "rules": {"maxDeviation": 0.05}}], book=make_book(positions={"BTC": 2.0}))
    fat_finger = gate.evaluate(order(side="sell", size=1.0, type="limit", limit_px=5_000, reduce_only=True))
    assert fat_finger.reducing and fat_finger.verdict is Verdict.DENY
    assert the_denial(fat_finger, "PRICE_BAND").value == pytest.approx(0.9)
    sane = gate.evaluate(order(side="sell", size=1.0, type="limit", limit_px=48_000, reduce_only=True))
    assert sane.verdict is Verdict.ALLOW


def test_market_orders_are_priced_at_mark_plus_the_band_as_slippage_cap():
    gate, _ = make_gate([{"type": "PRICE_BAND", "rules": {"maxDeviation": 0.02}}])
    assert gate.evaluate(order(size=0.1)).px == pytest.approx(51_000)
    assert gate.evaluate(order(side="sell", size=0.1)).px == pytest.approx(49_000)
    no_band, _ = make_gate([])
    assert no_band.evaluate(order(size=0.1)).px == pytest.approx(52_500)  # default 5% cap


def test_an_ioc_limit_is_a_market_order_whose_worst_price_the_band_caps():
    """The SDK's and ccxt's market orders are IOC limits 5% beyond the mid or the touch, always
    a little over a 5% band from the mark: they pass, sent at the band's edge, never looser."""
    gate, _ = make_gate([{"type": "PRICE_BAND", "rules": {"maxDeviation": 0.05}}], book=make_book(positions={"BTC": 2.0}))
    buy = gate.evaluate(order(size=0.1, type="limit", tif="Ioc", limit_px=52_600))  # the ask 50,100 × 1.05
    assert buy.verdict is Verdict.ALLOW and buy.px == pytest.approx(52_500)
    tight = gate.evaluate(order(size=0.1, type="limit", tif="Ioc", limit_px=50_200))
    assert tight.px == pytest.approx(50_200)  # a worst price inside the band is kept
    exit_ = gate.evaluate(order(side="sell", size=2.0, type="limit", tif="Ioc", limit_px=5_000, reduce_only=True))
    assert exit_.verdict is Verdict.ALLOW and exit_.px == pytest.approx(47_500)
    resting = gate.evaluate(order(size=0.1, type="limit", tif="Gtc", limit_px=52_600))  # rests, or fills far off
    assert resting.verdict is Verdict.DENY and the_denial(resting, "PRICE_BAND")
    unbanded, _ = make_gate([])
    assert unbanded.evaluate(order(size=0.1, type="limit", tif="Ioc", limit_px=60_000)).px == pytest.approx(60_000)


# ---- 3. missing data denies new risk (fail closed) ----------------------------------------

def _xrp_with_mark(gate: RiskGate) -> None:
    gate.book.set_mark("XRP", 0.5, T0)  # priced, but XRP has no margin table


def _gate_without_account(bodies):
    book = Book(MARKETS)
    book.set_mark("BTC", 50_000.0, T0)
    return RiskGate(parse_policies(bodies), book, RiskCounters(), ManualClock(T0))


def _gate_without_peak(bodies):
    return RiskGate(parse_policies(bodies), make_book(), RiskCounters(), ManualClock(T0))


# (policy type, rules, how the gate is built, the order): the order raises risk on a
# market (or account) whose figure the policy cannot compute.
MISSING = [
    ("PERP_MAX_LEVERAGE", {"maxLeverage": 5}, "no mark", {"market": "XRP", "size": 100.0}),
    ("PERP_MAX_POSITION_USD", {"maxPositionUsd": 50000}, "no mark", {"market": "XRP", "size": 100.0}),
    ("SPENDING_LIMIT", {"instant_max_usd": 1000}, "no mark", {"market": "XRP", "size": 100.0}),
    ("ACTION_CATEGORY_LIMIT", {"categoryLimits": {"derivatives": {"daily_limit_usd": 1000}}}, "no mark", {"market": "XRP", "size": 100.0}),
    ("MAX_GROSS_EXPOSURE", {"maxExposure": 3}, "unpriced position", {"size": 0.1}),
    ("MAX_POSITION_SHARE", {"maxPositionShare": 0.5}, "no mark", {"market": "XRP", "size": 100.0}),
    ("MIN_MARGIN_BUFFER", BUFFER_RULES, "no margin table", {"market": "XRP", "size": 100.0}),
    ("LOSS_LIMIT", {"dailyLoss": 0.05}, "no account", {"size": 0.1}),
    ("MAX_DRAWDOWN", {"maxDrawdown": 0.2}, "no peak equity", {"size": 0.1}),
    ("REWARD_RISK", {"minRewardRisk": 2}, "no mark", {"market": "XRP", "size": 100.0, "stop_loss": 0.4, "take_profit": 0.8}),
    ("RISK_PER_TRADE", {"maxRiskShare": 0.01}, "no mark", {"market": "XRP", "size": 100.0, "stop_loss": 0.4}),
    ("STALE_DATA", {"maxMarkAgeSeconds": 10, "maxAccountAgeSeconds": 30}, "no mark", {"market": "XRP", "size": 100.0}),
    ("PRICE_BAND", {"maxDeviation": 0.05}, "no mark", {"market": "XRP", "size": 100.0}),
    ("PRICE_BAND", {"maxDeviation": 0.05}, "no mark (limit order)", {"market": "XRP", "size": 100.0, "type": "limit", "limit_px": 0.5}),
    ("FUNDING_GUARD", {"maxHourlyFunding": 0.001}, "no funding rate", {"size": 0.1}),
    ("CONCENTRATION", {"maxMarketShare": 0.5}, "no mark", {"market": "XRP", "size": 100.0}),
    ("VOLATILITY_LEVERAGE", VOL_RULES, "no volatility history", {"size": 0.1}),
    ("ORDER_LIMITS", {"maxOrderUsd": 10000}, "no mark", {"market": "XRP", "size": 100.0}),
]


def test_every_policy_that_needs_data_is_checked_without_it():
    # The other four judge only the order, the clock or counters that always exist.
    assert {m[0] for m in MISSING} == ALL_TYPES - {"PERP_ALLOWED_MARKETS", "RATE_LIMIT", "CIRCUIT_BREAKER", "TIME_RESTRICTION"}


@pytest.mark.parametrize("kind, rules, missing, intent", MISSING, ids=[f"{m[0]}-{m[2]}" for m in MISSING])
def test_missing_data_denies_new_risk_with_data_unavailable(kind, rules, missing, intent):
    bodies = [{"type": kind, "rules": rules}]
    if missing == "no account":
        gate = _gate_without_account(bodies)
    elif missing == "no peak equity":
        gate = _gate_without_peak(bodies)
    elif missing == "unpriced position":
        gate, _ = make_gate(bodies, book=unpriced_book())
    else:
        gate, _ = make_gate(bodies)
        if missing == "no margin table":
            _xrp_with_mark(gate)

    decision = gate.evaluate(order(**intent))

    assert decision.verdict is Verdict.DENY
    assert (kind, "DATA_UNAVAILABLE") in [(r.type, r.code) for r in decision.denials]
    assert set(codes(decision)) == {"DATA_UNAVAILABLE"}  # nothing breached: only data is missing
    body = decision.error_body()["error"]
    assert body["code"] == "DATA_UNAVAILABLE" and body["retryable"] is True


def test_a_known_margin_table_is_all_the_buffer_rule_was_missing():
    # XRP with a mark but no margin table: leverage and size figures exist, the buffer does not.
    gate, _ = make_gate([{"type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 5}},
                         {"type": "PERP_MAX_POSITION_USD", "rules": {"maxPositionUsd": 1000}}])
    _xrp_with_mark(gate)
    decision = gate.evaluate(order("XRP", size=1_000.0))
    assert decision.allowed
    assert decision.projected.position_notional == pytest.approx(500.0)
    assert decision.projected.margin_buffer is None


def test_a_notional_order_without_a_mark_is_stopped_by_the_default_guards():
    from engine.risk.policy_file import DEFAULT_POLICY_BODIES
    gate, _ = make_gate([dict(b) for b in DEFAULT_POLICY_BODIES])
    decision = gate.evaluate(order("XRP", notional_usd=1_000))
    assert decision.verdict is Verdict.DENY
    assert {(r.type, r.code) for r in decision.denials} >= {("STALE_DATA", "DATA_UNAVAILABLE"), ("PRICE_BAND", "DATA_UNAVAILABLE")}
    assert decision.error_body()["error"]["code"] == "DATA_UNAVAILABLE"


def test_usd_caps_still_judge_a_new_position_in_an_unmarked_market_by_what_it_pays():
    gate, _ = make_gate([{"type": "ORDER_LIMITS", "rules": {"maxOrderUsd": 10000}},
                         {"type": "PERP_MAX_POSITION_USD", "rules": {"maxPositionUsd": 15000}}])
    decision = gate.evaluate(order("XRP", notional_usd=20_000))
    assert sorted(codes(decision)) == ["ORDER_TOO_LARGE", "POSITION_LIMIT"]
    assert the_denial(decision, "POSITION_LIMIT").value == pytest.approx(20_000)


def test_funding_guard_does_not_wave_through_an_order_it_cannot_size():
    # XRP longs pay 1%/h, ten times the cap; the buy is by USD and XRP has no mark, so the
    # position after the fill is unknown. The guard must not let it pass unjudged.
    gate, _ = make_gate([{"type": "FUNDING_GUARD", "rules": {"maxHourlyFunding": 0.001}}])
    gate.book.set_funding("XRP", 0.01)
    decision = gate.evaluate(order("XRP", notional_usd=1_000))
    assert decision.verdict is Verdict.DENY
    assert [r.type for r in decision.denials] == ["FUNDING_GUARD"]


def test_funding_rate_missing_for_a_coin_does_not_block_another():
    gate, _ = make_gate([{"type": "FUNDING_GUARD", "rules": {"maxHourlyFunding": 0.001}}])
    gate.book.set_funding("ETH", 0.0001)
    assert gate.evaluate(order("ETH", size=1.0)).allowed
    assert codes(gate.evaluate(order("BTC", size=0.1))) == ["DATA_UNAVAILABLE"]


def test_a_mark_that_arrives_lifts_data_unavailable():
    gate, _ = make_gate([{"type": "STALE_DATA", "rules": {"maxMarkAgeSeconds": 10, "maxAccountAgeSeconds": 30}}])
    assert codes(gate.evaluate(order("XRP", size=100.0), now=T0 + 1)) == ["DATA_UNAVAILABLE"]
    gate.book.set_mark("XRP", 0.5, T0 + 1)
    assert gate.evaluate(order("XRP", size=100.0), now=T0 + 2).allowed


