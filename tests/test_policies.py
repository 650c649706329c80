"""The policy catalogue (SPEC sections 3 and 4) as a trader meets it through the gate.

For each of the 21 policy types: an order just inside the limit is allowed, one just past it
is denied with the policy's code and a message that carries the limit and the projected
figure; a reducing order passes the entry rule even when the account breaches it; missing
data denies new risk with DATA_UNAVAILABLE. Then the gate's own semantics (every policy
evaluated, tiers, clamping, trading states, error bodies), rules validation and policy files.

State is driven only through the public API: the Book (`set_mark`, `set_funding`, `load`),
the counters (`on_equity`, `on_close`, `on_mark`), the gate (`note_submission`,
`note_forwarded`) and time through the `now` argument of `evaluate`.
"""
from policy_cases import *  # noqa: F401,F403  (the shared cases, helpers and imports)

# ---- 1. just inside / just past, for every policy type ------------------------------------

@dataclass
class Probe:
    intent: dict
    now: float = T0
    setup: Callable[[RiskGate], None] | None = None


@dataclass
class Case:
    id: str
    body: dict
    inside: Probe
    past: Probe
    code: str
    limit: float | str
    value: float | str
    says: tuple[str, ...]
    positions: dict = field(default_factory=dict)












CASES = [
    Case("PERP_MAX_LEVERAGE-account", {"type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 5}},
         Probe({"size": 4.0}), Probe({"size": 4.02}), "LEVERAGE_LIMIT", 5, 5.01,
         ("Account leverage", "limit of 5", "projected 5.01"), positions={"ETH": 100.0}),
    Case("PERP_MAX_LEVERAGE-market-tier", {"type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 5, "leverageTiers": {"BTC-USD": 3.0, "ALT-USD": 2.0}}},
         Probe({"size": 6.0}), Probe({"size": 6.02}), "LEVERAGE_LIMIT", 3, 3.01,
         ("BTC leverage", "limit of 3", "projected 3.01")),
    Case("PERP_MAX_LEVERAGE-ALT-default", {"type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 5, "leverageTiers": {"BTC-USD": 3.0, "ALT-USD": 2.0}}},
         Probe({"market": "ETH-PERP", "size": 66.0}), Probe({"market": "ETH-PERP", "size": 67.0}), "LEVERAGE_LIMIT", 2, 2.01,
         ("ETH leverage", "limit of 2", "projected 2.01")),
    Case("PERP_MAX_LEVERAGE-order-sets-leverage", {"type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 5}},
         Probe({"size": 0.1, "leverage": 5}), Probe({"size": 0.1, "leverage": 6}), "LEVERAGE_LIMIT", 5, 6,
         ("BTC leverage", "limit of 5", "projected 6")),
    Case("PERP_MAX_POSITION_USD-market", {"type": "PERP_MAX_POSITION_USD", "rules": {"maxPositionUsd": 50000, "marketLimits": {"BTC-USD": 25000}}},
         Probe({"size": 0.5}), Probe({"size": 0.502}), "POSITION_LIMIT", 25_000, 25_100,
         ("PERP_MAX_POSITION_USD limit of 25000 for BTC", "projected 25100")),
    Case("PERP_MAX_POSITION_USD-adds-to-long", {"type": "PERP_MAX_POSITION_USD", "rules": {"maxPositionUsd": 50000, "marketLimits": {"BTC-USD": 25000}}},
         Probe({"market": "ETH", "size": 6.6}), Probe({"market": "ETH", "size": 6.7}), "POSITION_LIMIT", 50_000, 50_100,
         ("PERP_MAX_POSITION_USD limit of 50000", "projected 50100"), positions={"ETH": 10.0}),
    Case("PERP_MAX_POSITION_USD-adds-to-short", {"type": "PERP_MAX_POSITION_USD", "rules": {"maxPositionUsd": 50000}},
         Probe({"market": "ETH", "side": "sell", "size": 6.6}), Probe({"market": "ETH", "side": "sell", "size": 6.7}),
         "POSITION_LIMIT", 50_000, 50_100, ("limit of 50000", "projected 50100"), positions={"ETH": -10.0}),
    Case("PERP_ALLOWED_MARKETS", {"type": "PERP_ALLOWED_MARKETS", "rules": {"allowedMarkets": ["BTC-USD", "ETH-PERP", "SOL/USD"]}},
         Probe({"market": "SOL", "size": 1.0}), Probe({"market": "DOGE", "size": 1_000.0}), "MARKET_NOT_ALLOWED",
         "BTC,ETH,SOL", "DOGE", ("DOGE is not in PERP_ALLOWED_MARKETS", "BTC, ETH, SOL")),
    Case("PERP_ALLOWED_MARKETS-WAIaaS-form", {"type": "PERP_ALLOWED_MARKETS", "rules": {"markets": [{"market": "BTC-USD"}]}},
         Probe({"market": "BTC-PERP", "size": 0.1}), Probe({"market": "ETH-USD", "size": 1.0}), "MARKET_NOT_ALLOWED",
         "BTC", "ETH", ("ETH is not in PERP_ALLOWED_MARKETS (BTC)",)),
    Case("SPENDING_LIMIT-per-order", {"type": "SPENDING_LIMIT", "rules": {"instant_max_usd": 1000, "notify_max_usd": 5000, "delay_max_usd": 20000, "on_exceed": "DENY"}},
         Probe({"notional_usd": 20_000}), Probe({"notional_usd": 20_100}), "SPENDING_LIMIT", 20_000, 20_100,
         ("SPENDING_LIMIT of 20000 per order", "projected 20100")),
    Case("SPENDING_LIMIT-daily", {"type": "SPENDING_LIMIT", "rules": {"daily_limit_usd": 50000}},
         Probe({"notional_usd": 5_000}, setup=spent_state([15_000] * 3)), Probe({"notional_usd": 5_100}, setup=spent_state([15_000] * 3)),
         "SPENDING_LIMIT", 50_000, 50_100, ("daily_limit_usd of 50000", "projected 50100")),
    Case("SPENDING_LIMIT-monthly", {"type": "SPENDING_LIMIT", "rules": {"monthly_limit_usd": 100000}},
         Probe({"notional_usd": 10_000}, setup=spent_state([30_000] * 3)), Probe({"notional_usd": 10_100}, setup=spent_state([30_000] * 3)),
         "SPENDING_LIMIT", 100_000, 100_100, ("monthly_limit_usd of 100000", "projected 100100")),
    Case("RATE_LIMIT", {"type": "RATE_LIMIT", "rules": {"maxTransactions": 3, "period": "minute"}},
         Probe({"size": 0.01}, setup=lambda g: submit(g, T0 - 30, 2)), Probe({"size": 0.01}, setup=lambda g: submit(g, T0 - 30, 3)),
         "RATE_LIMITED", 3, 4, ("RATE_LIMIT of 3 per minute", "submitted 3")),
    Case("ACTION_CATEGORY_LIMIT-per-action", {"type": "ACTION_CATEGORY_LIMIT", "rules": {"categoryLimits": {"swap": {"per_action_limit_usd": 2000}}}},
         Probe({"notional_usd": 2_000, "category": "swap"}), Probe({"notional_usd": 2_100, "category": "swap"}), "CATEGORY_LIMIT",
         2_000, 2_100, ("per_action_limit_usd of 2000 for swap", "projected 2100")),
    Case("ACTION_CATEGORY_LIMIT-daily", {"type": "ACTION_CATEGORY_LIMIT", "rules": {"categoryLimits": {"derivatives": {"daily_limit_usd": 10000}}}},
         Probe({"notional_usd": 4_000}, setup=spent_state([6_000])), Probe({"notional_usd": 4_100}, setup=spent_state([6_000])), "CATEGORY_LIMIT",
         10_000, 10_100, ("daily_limit_usd of 10000 for derivatives", "projected 10100")),
    Case("MAX_GROSS_EXPOSURE-multiple", {"type": "MAX_GROSS_EXPOSURE", "rules": {"maxExposure": 3}},
         Probe({"size": 3.0}), Probe({"size": 3.01}), "GROSS_EXPOSURE", 300_000, 300_500,
         ("MAX_GROSS_EXPOSURE limit of 3x equity = 300000", "projected 300500"), positions={"ETH": 50.0}),
    Case("MAX_GROSS_EXPOSURE-usd", {"type": "MAX_GROSS_EXPOSURE", "rules": {"maxGrossUsd": 200000}},
         Probe({"size": 3.0}), Probe({"size": 3.01}), "GROSS_EXPOSURE", 200_000, 200_500,
         ("MAX_GROSS_EXPOSURE limit of 200000", "projected 200500"), positions={"SOL": -500.0}),
    Case("MAX_POSITION_SHARE", {"type": "MAX_POSITION_SHARE", "rules": {"maxPositionShare": 0.5}},
         Probe({"size": 1.0}), Probe({"size": 1.001}), "POSITION_SHARE", 50_000, 50_050,
         ("MAX_POSITION_SHARE limit of 0.5 of equity = 50000", "projected 50050")),
    Case("MIN_MARGIN_BUFFER", {"type": "MIN_MARGIN_BUFFER", "rules": BUFFER_RULES},
         # BTC flat 40x: maintenance 1.25% of notional; 16 BTC = 800k -> 10k maintenance -> buffer 0.9
         Probe({"size": 16.0}), Probe({"size": 16.1}), "MARGIN_BUFFER", 0.9, 0.899375,
         ("minimum of 0.9", "projected 0.899375")),
    Case("LOSS_LIMIT-daily-unrealized", {"type": "LOSS_LIMIT", "rules": {"dailyLoss": 0.05}},
         Probe({"size": 0.01}, setup=mark_state("BTC", 47_501)), Probe({"size": 0.01}, setup=mark_state("BTC", 47_400)),
         "LOSS_LIMIT", 5_000, 5_200, ("Daily loss of 5200 USD", "LOSS_LIMIT of 5000"), positions={"BTC": 2.0}),
    Case("LOSS_LIMIT-session-realized", {"type": "LOSS_LIMIT", "rules": {"sessionLossUsd": 1000, "includeUnrealized": False}},
         Probe({"size": 0.01}, setup=lambda g: g.counters.on_close(-999, T0)),
         Probe({"size": 0.01}, setup=lambda g: g.counters.on_close(-1_100, T0)),
         "LOSS_LIMIT", 1_000, 1_100, ("Session loss of 1100 USD", "LOSS_LIMIT of 1000")),
    Case("MAX_DRAWDOWN", {"type": "MAX_DRAWDOWN", "rules": {"maxDrawdown": 0.2}},
         Probe({"size": 0.01}, setup=peak_state(124_000)), Probe({"size": 0.01}, setup=peak_state(126_000)),
         "MAX_DRAWDOWN", 0.2, 1 - 100_000 / 126_000, ("Drawdown of 0.206349", "MAX_DRAWDOWN of 0.2")),
    Case("CIRCUIT_BREAKER", {"type": "CIRCUIT_BREAKER", "rules": {"maxConsecutiveLosses": 3, "cooldownMinutes": 60}},
         Probe({"size": 0.01}, setup=losses_state(2)), Probe({"size": 0.01}, setup=losses_state(3)),
         "CIRCUIT_BREAKER", 3, 3, ("3 losing closes in a row", "(max 3)", "entries resume in 59m00s")),
    Case("REWARD_RISK-long", {"type": "REWARD_RISK", "rules": {"minRewardRisk": 2}},
         Probe({"size": 0.1, "stop_loss": 49_000, "take_profit": 52_000}), Probe({"size": 0.1, "stop_loss": 49_000, "take_profit": 51_900}),
         "REWARD_RISK", 2, 1.9, ("minimum of 2", "projected 1.9")),
    Case("REWARD_RISK-short", {"type": "REWARD_RISK", "rules": {"minRewardRisk": 2}},
         Probe({"side": "sell", "size": 0.1, "stop_loss": 51_000, "take_profit": 48_000}),
         Probe({"side": "sell", "size": 0.1, "stop_loss": 51_000, "take_profit": 48_100}),
         "REWARD_RISK", 2, 1.9, ("minimum of 2", "projected 1.9")),
    Case("RISK_PER_TRADE", {"type": "RISK_PER_TRADE", "rules": {"maxRiskShare": 0.01}},
         Probe({"size": 1.0, "stop_loss": 49_000}), Probe({"size": 1.0, "stop_loss": 48_950}),
         "RISK_PER_TRADE", 1_000, 1_050, ("RISK_PER_TRADE limit of 1000 USD", "projected 1050")),
    Case("STALE_DATA-mark", {"type": "STALE_DATA", "rules": {"maxMarkAgeSeconds": 10, "maxAccountAgeSeconds": 60}},
         Probe({"size": 0.1}, now=T0 + 10), Probe({"size": 0.1}, now=T0 + 10.5), "DATA_UNAVAILABLE", 10, 10.5,
         ("BTC mark is 10.5 s old", "maxMarkAgeSeconds of 10")),
    Case("STALE_DATA-account", {"type": "STALE_DATA", "rules": {"maxMarkAgeSeconds": 10, "maxAccountAgeSeconds": 30}},
         Probe({"size": 0.1}, now=T0 + 30, setup=mark_state("BTC", 50_000, T0 + 25)),
         Probe({"size": 0.1}, now=T0 + 31, setup=mark_state("BTC", 50_000, T0 + 25)), "DATA_UNAVAILABLE", 30, 31,
         ("Account data is 31 s old", "maxAccountAgeSeconds of 30")),
    Case("PRICE_BAND-buy", {"type": "PRICE_BAND", "rules": {"maxDeviation": 0.05}},
         Probe({"size": 0.1, "type": "limit", "limit_px": 52_500}), Probe({"size": 0.1, "type": "limit", "limit_px": 52_550}),
         "PRICE_BAND", 0.05, 0.051, ("Limit 52550 is 0.051 from mark 50000", "maxDeviation of 0.05")),
    Case("PRICE_BAND-sell", {"type": "PRICE_BAND", "rules": {"maxDeviation": 0.05}},
         Probe({"side": "sell", "size": 0.1, "type": "limit", "limit_px": 47_500}),
         Probe({"side": "sell", "size": 0.1, "type": "limit", "limit_px": 47_450}),
         "PRICE_BAND", 0.05, 0.051, ("Limit 47450 is 0.051 from mark 50000", "maxDeviation of 0.05")),
    Case("FUNDING_GUARD-longs-pay", {"type": "FUNDING_GUARD", "rules": {"maxHourlyFunding": 0.0005}},
         Probe({"size": 0.1}, setup=funding_state("BTC", 0.0005)), Probe({"size": 0.1}, setup=funding_state("BTC", 0.00051)),
         "FUNDING_GUARD", 0.0005, 0.00051, ("BTC longs pay 0.00051/h", "maxHourlyFunding of 0.0005")),
    Case("FUNDING_GUARD-shorts-pay", {"type": "FUNDING_GUARD", "rules": {"maxHourlyFunding": 0.0005}},
         Probe({"side": "sell", "size": 0.1}, setup=funding_state("BTC", -0.0005)),
         Probe({"side": "sell", "size": 0.1}, setup=funding_state("BTC", -0.00051)),
         "FUNDING_GUARD", 0.0005, 0.00051, ("BTC shorts pay 0.00051/h", "maxHourlyFunding of 0.0005")),
    Case("CONCENTRATION", {"type": "CONCENTRATION", "rules": {"maxMarketShare": 0.5}},
         Probe({"size": 0.6}), Probe({"size": 0.61}), "CONCENTRATION", 0.5, 30_500 / 60_500,
         ("CONCENTRATION limit of 0.5 of gross", "projected 0.504132"), positions={"ETH": 10.0}),
    Case("VOLATILITY_LEVERAGE", {"type": "VOLATILITY_LEVERAGE", "rules": VOL_RULES},
         # the cap is targetVolatility / realized = 2x; cross leverage = BTC notional / equity
         Probe({"size": 3.98}, setup=vol_history), Probe({"size": 4.04}, setup=vol_history),
         "VOLATILITY_LEVERAGE", 2, 2.02, ("VOLATILITY_LEVERAGE limit of 2", "projected 2.02")),
    Case("TIME_RESTRICTION-hours", {"type": "TIME_RESTRICTION", "rules": {"allowedHours": {"start": 9, "end": 22}}},
         # T0 is Tuesday 22:13:20 UTC
         Probe({"size": 0.1}, now=T0 - 14 * 60), Probe({"size": 0.1}, now=T0 - 13 * 60 - 20),
         "OUTSIDE_TRADING_HOURS", "9-22 every day", "Tue 22:00", ("Entries are allowed 9-22 on every day (UTC)", "now Tue 22:00")),
    Case("TIME_RESTRICTION-timezone-days", {"type": "TIME_RESTRICTION", "rules": {"allowedHours": {"start": "09:30", "end": "17:00"}, "allowedDays": ["mon", "tue", "wed", "thu", "fri"], "timezone": "America/New_York"}},
         # 17:13 in New York at T0
         Probe({"size": 0.1}, now=T0 - 14 * 60), Probe({"size": 0.1}, now=T0 - 13 * 60 - 20),
         "OUTSIDE_TRADING_HOURS", "09:30-17:00 mon,tue,wed,thu,fri", "Tue 17:00", ("(America/New_York)", "now Tue 17:00")),
    Case("ORDER_LIMITS-max", {"type": "ORDER_LIMITS", "rules": {"maxOrderUsd": 10000}},
         Probe({"size": 0.2}), Probe({"size": 0.201}), "ORDER_TOO_LARGE", 10_000, 10_050,
         ("maxOrderUsd of 10000", "projected 10050")),
    Case("ORDER_LIMITS-min", {"type": "ORDER_LIMITS", "rules": {"minOrderUsd": 10}},
         Probe({"market": "DOGE", "size": 100.0}), Probe({"market": "DOGE", "size": 99.0}), "ORDER_TOO_SMALL", 10, 9.9,
         ("minOrderUsd of 10", "projected 9.9")),
]


def test_the_boundary_table_covers_every_policy_type():
    assert {c.body["type"] for c in CASES} == ALL_TYPES == set(POLICY_TYPES) - PROTECTING_TYPES


def test_venue_stop_judges_no_order_however_large():
    gate, _clock = make_gate([{"type": "VENUE_STOP", "rules": {"triggerBuffer": 0.15}}])
    for intent in (order(size=50.0), order(side="sell", notional_usd=5_000_000), order(market="ETH", size=0.01)):
        decision = gate.evaluate(intent)
        assert decision.allowed and not decision.reasons




@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_an_order_just_inside_the_limit_is_allowed(case: Case):
    decision = run_setters(case, case.inside)
    assert decision.verdict is Verdict.ALLOW, [r.message for r in decision.reasons]
    assert decision.denials == ()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_an_order_just_past_the_limit_is_denied_with_the_figures(case: Case):
    decision = run_setters(case, case.past)
    assert decision.verdict is Verdict.DENY
    reason = the_denial(decision, case.code)
    assert reason.type == case.body["type"]
    if isinstance(case.limit, str):
        assert (reason.limit, reason.value) == (case.limit, case.value)
    else:
        assert reason.limit == pytest.approx(case.limit, rel=1e-6)
        assert reason.value == pytest.approx(case.value, rel=1e-6)
    for text in case.says:
        assert text in reason.message, reason.message
