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

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from typing import Callable

import pytest

from builders import MARKETS, MARKS, T0, make_book, make_gate, order
from engine.book import Book
from engine.clock import ManualClock
from engine.counters import DAY, RiskCounters
from engine.gate import RiskGate
from engine.model import Account, OpenOrder, Position, Tier, TradingState, Verdict
from engine.policies import POLICY_TYPES, PolicyError, parse_policies
from engine.policy_file import load_policy_file, read_policy_bodies

ALL_TYPES = {
    "PERP_MAX_LEVERAGE", "PERP_MAX_POSITION_USD", "PERP_ALLOWED_MARKETS", "SPENDING_LIMIT", "RATE_LIMIT",
    "ACTION_CATEGORY_LIMIT", "MAX_GROSS_EXPOSURE", "MAX_POSITION_SHARE", "MIN_MARGIN_BUFFER", "LOSS_LIMIT",
    "MAX_DRAWDOWN", "CIRCUIT_BREAKER", "REWARD_RISK", "RISK_PER_TRADE", "STALE_DATA", "PRICE_BAND",
    "FUNDING_GUARD", "CONCENTRATION", "VOLATILITY_LEVERAGE", "TIME_RESTRICTION", "ORDER_LIMITS",
}

# The six bodies of SPEC section 11, verbatim.
SEED_LINES = [
    '{"walletId": "<id>", "type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 5.0, "leverageTiers": {"BTC-USD": 3.0, "ETH-USD": 4.0, "ALT-USD": 2.0}}}',
    '{"walletId": "<id>", "type": "PERP_MAX_POSITION_USD", "rules": {"maxPositionUsd": 50000, "marketLimits": {"BTC-USD": 25000, "ETH-USD": 15000, "SOL-USD": 10000}}}',
    '{"walletId": "<id>", "type": "PERP_ALLOWED_MARKETS", "rules": {"allowedMarkets": ["BTC-USD", "ETH-USD", "SOL-USD"]}}',
    '{"walletId": "<id>", "type": "SPENDING_LIMIT", "rules": {"instant_max_usd": 1000, "notify_max_usd": 5000, "delay_max_usd": 20000, "delay_seconds": 300, "daily_limit_usd": 50000, "monthly_limit_usd": 500000}}',
    '{"walletId": "<id>", "type": "RATE_LIMIT", "rules": {"maxTransactions": 100, "period": "hourly"}}',
    '{"walletId": "<id>", "type": "ACTION_CATEGORY_LIMIT", "rules": {"categoryLimits": {"swap": {"daily_limit_usd": 100000}, "lending": {"daily_limit_usd": 50000}, "derivatives": {"daily_limit_usd": 200000}}}}',
]
SEED_BODIES = [json.loads(line) for line in SEED_LINES]

BUFFER_RULES = {"minBuffer": 0.9, "warnBuffer": 0.5, "panicBuffer": 0.25, "targetBuffer": 0.7}


# ---- helpers -------------------------------------------------------------------------------

def codes(decision) -> list[str]:
    return [r.code for r in decision.denials]


def the_denial(decision, code: str):
    found = [r for r in decision.denials if r.code == code]
    assert len(found) == 1, f"expected one {code} denial, got {[(r.code, r.message) for r in decision.reasons]}"
    return found[0]


def spend(gate: RiskGate, usd: float, at: float, category: str = "derivatives") -> None:
    """An entry of `usd` on BTC forwarded to the venue at `at` (it spends the rolling budgets)."""
    decision = gate.evaluate(order(notional_usd=usd, category=category), now=at)
    assert decision.allowed, decision.reasons
    gate.note_forwarded(decision)


def submit(gate: RiskGate, at: float, n: int = 1) -> None:
    for _ in range(n):
        gate.note_submission(at)


def feed_minutes(counters: RiskCounters, coin: str, closes: list[float], start: float = T0) -> None:
    """One mark per minute, so minute k closes at closes[k]."""
    for k, px in enumerate(closes):
        counters.on_mark(coin, px, start + 60 * k)


def annualized_vol(closes: list[float]) -> float:
    """What the engine should see after `feed_minutes(closes)`: the last close is still open,
    so the returns are those of closes[:-1]; sample stdev of one-minute log returns × √(minutes/yr)."""
    done = closes[:-1]
    returns = [math.log(b / a) for a, b in zip(done, done[1:])]
    return statistics.stdev(returns) * math.sqrt(525_600)


VOL_CLOSES = [50_000.0 * (1.001 if k % 2 else 1.0) * (1 + 0.0003 * (k % 3)) for k in range(12)]
VOL_REALIZED = annualized_vol(VOL_CLOSES)
VOL_RULES = {"targetVolatility": 2 * VOL_REALIZED, "lookbackMinutes": 60, "floorLeverage": 1}


def vol_history(gate: RiskGate) -> None:
    feed_minutes(gate.counters, "BTC", VOL_CLOSES)


def unpriced_book(coin: str = "XRP", size: float = 1_000.0, equity: float = 100_000.0) -> Book:
    """A book holding a position whose mark has never arrived."""
    book = Book(MARKETS)
    book.load(Account(equity, equity, equity, T0), [Position(coin, size, 0.5, leverage=5)], marks=dict(MARKS), at=T0)
    return book


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


def _losses(n: int, at: float = T0) -> Callable[[RiskGate], None]:
    def setup(gate: RiskGate) -> None:
        for i in range(n):
            gate.counters.on_close(-100.0, at - 60 * (n - i))
    return setup


def _spent(usd: list[float], category: str = "derivatives") -> Callable[[RiskGate], None]:
    def setup(gate: RiskGate) -> None:
        for i, amount in enumerate(usd):
            spend(gate, amount, T0 - 3_600 * (len(usd) - i), category)
    return setup


def _mark(coin: str, px: float, at: float = T0) -> Callable[[RiskGate], None]:
    return lambda gate: gate.book.set_mark(coin, px, at)


def _funding(coin: str, rate: float) -> Callable[[RiskGate], None]:
    return lambda gate: gate.book.set_funding(coin, rate)


def _peak(equity: float) -> Callable[[RiskGate], None]:
    return lambda gate: gate.counters.on_equity(equity, T0 - 3_600)


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
         Probe({"notional_usd": 5_000}, setup=_spent([15_000] * 3)), Probe({"notional_usd": 5_100}, setup=_spent([15_000] * 3)),
         "SPENDING_LIMIT", 50_000, 50_100, ("daily_limit_usd of 50000", "projected 50100")),
    Case("SPENDING_LIMIT-monthly", {"type": "SPENDING_LIMIT", "rules": {"monthly_limit_usd": 100000}},
         Probe({"notional_usd": 10_000}, setup=_spent([30_000] * 3)), Probe({"notional_usd": 10_100}, setup=_spent([30_000] * 3)),
         "SPENDING_LIMIT", 100_000, 100_100, ("monthly_limit_usd of 100000", "projected 100100")),
    Case("RATE_LIMIT", {"type": "RATE_LIMIT", "rules": {"maxTransactions": 3, "period": "minute"}},
         Probe({"size": 0.01}, setup=lambda g: submit(g, T0 - 30, 2)), Probe({"size": 0.01}, setup=lambda g: submit(g, T0 - 30, 3)),
         "RATE_LIMITED", 3, 4, ("RATE_LIMIT of 3 per minute", "submitted 3")),
    Case("ACTION_CATEGORY_LIMIT-per-action", {"type": "ACTION_CATEGORY_LIMIT", "rules": {"categoryLimits": {"swap": {"per_action_limit_usd": 2000}}}},
         Probe({"notional_usd": 2_000, "category": "swap"}), Probe({"notional_usd": 2_100, "category": "swap"}), "CATEGORY_LIMIT",
         2_000, 2_100, ("per_action_limit_usd of 2000 for swap", "projected 2100")),
    Case("ACTION_CATEGORY_LIMIT-daily", {"type": "ACTION_CATEGORY_LIMIT", "rules": {"categoryLimits": {"derivatives": {"daily_limit_usd": 10000}}}},
         Probe({"notional_usd": 4_000}, setup=_spent([6_000])), Probe({"notional_usd": 4_100}, setup=_spent([6_000])), "CATEGORY_LIMIT",
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
         Probe({"size": 0.01}, setup=_mark("BTC", 47_501)), Probe({"size": 0.01}, setup=_mark("BTC", 47_400)),
         "LOSS_LIMIT", 5_000, 5_200, ("Daily loss of 5200 USD", "LOSS_LIMIT of 5000"), positions={"BTC": 2.0}),
    Case("LOSS_LIMIT-session-realized", {"type": "LOSS_LIMIT", "rules": {"sessionLossUsd": 1000, "includeUnrealized": False}},
         Probe({"size": 0.01}, setup=lambda g: g.counters.on_close(-999, T0)),
         Probe({"size": 0.01}, setup=lambda g: g.counters.on_close(-1_100, T0)),
         "LOSS_LIMIT", 1_000, 1_100, ("Session loss of 1100 USD", "LOSS_LIMIT of 1000")),
    Case("MAX_DRAWDOWN", {"type": "MAX_DRAWDOWN", "rules": {"maxDrawdown": 0.2}},
         Probe({"size": 0.01}, setup=_peak(124_000)), Probe({"size": 0.01}, setup=_peak(126_000)),
         "MAX_DRAWDOWN", 0.2, 1 - 100_000 / 126_000, ("Drawdown of 0.206349", "MAX_DRAWDOWN of 0.2")),
    Case("CIRCUIT_BREAKER", {"type": "CIRCUIT_BREAKER", "rules": {"maxConsecutiveLosses": 3, "cooldownMinutes": 60}},
         Probe({"size": 0.01}, setup=_losses(2)), Probe({"size": 0.01}, setup=_losses(3)),
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
         Probe({"size": 0.1}, now=T0 + 30, setup=_mark("BTC", 50_000, T0 + 25)),
         Probe({"size": 0.1}, now=T0 + 31, setup=_mark("BTC", 50_000, T0 + 25)), "DATA_UNAVAILABLE", 30, 31,
         ("Account data is 31 s old", "maxAccountAgeSeconds of 30")),
    Case("PRICE_BAND-buy", {"type": "PRICE_BAND", "rules": {"maxDeviation": 0.05}},
         Probe({"size": 0.1, "type": "limit", "limit_px": 52_500}), Probe({"size": 0.1, "type": "limit", "limit_px": 52_550}),
         "PRICE_BAND", 0.05, 0.051, ("Limit 52550 is 0.051 from mark 50000", "maxDeviation of 0.05")),
    Case("PRICE_BAND-sell", {"type": "PRICE_BAND", "rules": {"maxDeviation": 0.05}},
         Probe({"side": "sell", "size": 0.1, "type": "limit", "limit_px": 47_500}),
         Probe({"side": "sell", "size": 0.1, "type": "limit", "limit_px": 47_450}),
         "PRICE_BAND", 0.05, 0.051, ("Limit 47450 is 0.051 from mark 50000", "maxDeviation of 0.05")),
    Case("FUNDING_GUARD-longs-pay", {"type": "FUNDING_GUARD", "rules": {"maxHourlyFunding": 0.0005}},
         Probe({"size": 0.1}, setup=_funding("BTC", 0.0005)), Probe({"size": 0.1}, setup=_funding("BTC", 0.00051)),
         "FUNDING_GUARD", 0.0005, 0.00051, ("BTC longs pay 0.00051/h", "maxHourlyFunding of 0.0005")),
    Case("FUNDING_GUARD-shorts-pay", {"type": "FUNDING_GUARD", "rules": {"maxHourlyFunding": 0.0005}},
         Probe({"side": "sell", "size": 0.1}, setup=_funding("BTC", -0.0005)),
         Probe({"side": "sell", "size": 0.1}, setup=_funding("BTC", -0.00051)),
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
    assert {c.body["type"] for c in CASES} == ALL_TYPES == set(POLICY_TYPES)


def _run(case: Case, probe: Probe):
    gate, _ = make_gate([case.body], book=make_book(positions=case.positions))
    if probe.setup:
        probe.setup(gate)
    return gate.evaluate(order(**probe.intent), now=probe.now)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_an_order_just_inside_the_limit_is_allowed(case: Case):
    decision = _run(case, case.inside)
    assert decision.verdict is Verdict.ALLOW, [r.message for r in decision.reasons]
    assert decision.denials == ()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_an_order_just_past_the_limit_is_denied_with_the_figures(case: Case):
    decision = _run(case, case.past)
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
    ("LOSS_LIMIT", {"dailyLoss": 0.05}, _mark("BTC", 49_500), T0, "LOSS_LIMIT"),
    ("MAX_DRAWDOWN", {"maxDrawdown": 0.1}, _peak(200_000), T0, "MAX_DRAWDOWN"),
    ("CIRCUIT_BREAKER", {"maxConsecutiveLosses": 1, "cooldownMinutes": 60}, _losses(1), T0, "CIRCUIT_BREAKER"),
    ("REWARD_RISK", {"requireStopLoss": True}, None, T0, "STOP_LOSS_REQUIRED"),
    ("RISK_PER_TRADE", {"maxRiskShare": 0.01}, None, T0, "STOP_LOSS_REQUIRED"),
    ("STALE_DATA", {"maxMarkAgeSeconds": 10, "maxAccountAgeSeconds": 30}, None, T0 + 120, "DATA_UNAVAILABLE"),
    ("FUNDING_GUARD", {"maxHourlyFunding": 0.0001}, _funding("BTC", 0.01), T0, "FUNDING_GUARD"),
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
    from engine.policy_file import DEFAULT_POLICY_BODIES
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


# ---- 5. gate semantics ---------------------------------------------------------------------

def test_every_policy_is_evaluated_and_each_breach_is_a_reason():
    gate, _ = make_gate([
        {"type": "PERP_MAX_POSITION_USD", "rules": {"maxPositionUsd": 10000}},
        {"type": "ORDER_LIMITS", "rules": {"maxOrderUsd": 5000}},
        {"type": "PERP_ALLOWED_MARKETS", "rules": {"allowedMarkets": ["BTC"]}},
    ])
    decision = gate.evaluate(order(size=1.0))
    assert decision.verdict is Verdict.DENY
    assert sorted(codes(decision)) == ["ORDER_TOO_LARGE", "POSITION_LIMIT"]
    assert len(decision.error_body()["error"]["details"]["reasons"]) == 2


def test_the_tier_is_the_highest_asked_for():
    gate, _ = make_gate([
        {"type": "SPENDING_LIMIT", "rules": {"instant_max_usd": 1000, "notify_max_usd": 5000, "delay_max_usd": 20000, "delay_seconds": 120}},
        {"type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 5, "warningLeverage": 0.01}},
    ])
    notify = gate.evaluate(order(notional_usd=2_000))
    assert (notify.tier, notify.hold_seconds) == (Tier.NOTIFY, None)
    delayed = gate.evaluate(order(notional_usd=10_000))  # leverage warning asks NOTIFY, spend asks DELAY
    assert delayed.allowed and (delayed.tier, delayed.hold_seconds) == (Tier.DELAY, 120)
    approval = gate.evaluate(order(notional_usd=30_000))
    assert approval.allowed and (approval.tier, approval.hold_seconds) == (Tier.APPROVAL, 3_600)


def test_a_reducing_order_is_always_instant():
    gate, _ = make_gate([SEED_BODIES[3], {"type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 5, "warningLeverage": 0.01}}],
                        book=make_book(positions={"BTC": 1.0}))
    decision = gate.evaluate(order(side="sell", size=0.9))  # 45k: APPROVAL for an entry
    assert decision.reducing and decision.allowed
    assert (decision.tier, decision.hold_seconds) == (Tier.INSTANT, None)


@pytest.mark.parametrize("position, side, asked", [(1.5, "sell", 4.0), (-2.0, "buy", 5.0)])
def test_a_reduce_only_order_larger_than_the_position_is_clamped(position, side, asked):
    gate, _ = make_gate([{"type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 1}}], book=make_book(positions={"BTC": position}))
    decision = gate.evaluate(order(side=side, size=asked, reduce_only=True))
    assert decision.allowed and decision.reducing
    assert decision.size == abs(position)
    assert decision.projected.position_size == 0.0
    assert decision.notional == pytest.approx(abs(position) * 50_000)


def test_a_plain_order_past_the_position_is_an_entry_on_the_other_side():
    gate, _ = make_gate([{"type": "PERP_MAX_POSITION_USD", "rules": {"maxPositionUsd": 20000}}], book=make_book(positions={"BTC": 1.0}))
    flip = gate.evaluate(order(side="sell", size=2.0))
    assert not flip.reducing and flip.size == 2.0
    assert flip.projected.position_size == pytest.approx(-1.0)
    assert the_denial(flip, "POSITION_LIMIT").value == pytest.approx(50_000)


@pytest.mark.parametrize("positions, side", [({"BTC": 1.0}, "buy"), ({"BTC": -1.0}, "sell"), ({}, "sell"), ({"ETH": 1.0}, "sell")],
                         ids=["adds-to-long", "adds-to-short", "no-position", "other-coin"])
def test_a_reduce_only_order_that_would_increase_is_denied(positions, side):
    gate, _ = make_gate([], book=make_book(positions=positions))
    decision = gate.evaluate(order(side=side, size=0.1, reduce_only=True))
    assert decision.verdict is Verdict.DENY
    assert codes(decision) == ["REDUCE_ONLY_WOULD_INCREASE"]
    assert decision.error_body()["error"]["code"] == "POLICY_DENIED"


def test_reduce_only_state_denies_entries_and_lets_exits_through():
    gate, _ = make_gate([], book=make_book(positions={"BTC": 2.0}))
    event = gate.trading.reduce_only("margin_buffer", T0)
    assert event.state is TradingState.REDUCE_ONLY
    entry = gate.evaluate(order("ETH", size=1.0))
    assert codes(entry) == ["REDUCE_ONLY"]
    assert "margin_buffer" in entry.denials[0].message
    assert entry.error_body()["error"]["code"] == "REDUCE_ONLY"
    assert codes(gate.evaluate(order(size=0.1))) == ["REDUCE_ONLY"]  # adding to the long
    exit_ = gate.evaluate(order(side="sell", size=0.5))
    assert exit_.allowed and exit_.tier is Tier.INSTANT
    oversized = gate.evaluate(order(side="sell", size=5.0))  # no flip while trading is stopped
    assert oversized.allowed and oversized.size == 2.0 and oversized.projected.position_size == 0.0
    gate.trading.lift("margin_buffer", T0 + 1)
    assert gate.evaluate(order("ETH", size=1.0)).allowed


def test_halted_denies_everything_even_exits():
    gate, _ = make_gate([], book=make_book(positions={"BTC": 2.0}))
    gate.trading.halt("kill switch", T0)
    for intent in (order(size=0.1), order(side="sell", size=1.0), order(side="sell", size=1.0, reduce_only=True)):
        decision = gate.evaluate(intent)
        assert decision.verdict is Verdict.DENY
        assert "HALTED" in codes(decision)
        assert decision.error_body()["error"]["code"] == "HALTED"
    gate.trading.resume(T0 + 1)
    assert gate.evaluate(order(size=0.1)).allowed


def test_error_body_codes():
    gate, _ = make_gate([SEED_BODIES[1], {"type": "FUNDING_GUARD", "rules": {"maxHourlyFunding": 0.001}}])
    # DOGE is not in marketLimits and there is no ALT default: the 50000 account cap applies
    breach = gate.evaluate(order("DOGE", size=600_000.0))
    body = breach.error_body()["error"]
    assert body["code"] == "POLICY_DENIED" and body["retryable"] is False and body["domain"] == "POLICY"
    assert body["message"] == "Position would exceed PERP_MAX_POSITION_USD limit of 50000 (projected 60000)"
    # the funding rate is missing too, but a breach is not retryable
    assert {r["code"] for r in body["details"]["reasons"]} == {"POSITION_LIMIT", "DATA_UNAVAILABLE"}

    only_data = gate.evaluate(order("DOGE", size=1_000.0)).error_body()["error"]
    assert only_data["code"] == "DATA_UNAVAILABLE" and only_data["retryable"] is True
    assert "funding rate of DOGE" in only_data["message"]


def test_evaluate_changes_nothing():
    gate, _ = make_gate([{"type": "RATE_LIMIT", "rules": {"maxTransactions": 1, "period": "minute"}},
                         {"type": "SPENDING_LIMIT", "rules": {"daily_limit_usd": 1000}}])
    for _ in range(5):
        assert gate.evaluate(order(notional_usd=1_000)).allowed


def test_aliases_name_the_same_market():
    gate, _ = make_gate([SEED_BODIES[1]])
    for alias in ("BTC", "BTC-USD", "BTC-PERP", "BTC/USD", "btc-usd"):
        decision = gate.evaluate(order(alias, size=0.6))
        assert decision.coin == "BTC"
        assert the_denial(decision, "POSITION_LIMIT").limit == 25_000


# ---- 6. rules validation -------------------------------------------------------------------

@pytest.mark.parametrize("body, where", [
    ({"type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 5, "maxLevrage": 3}}, "policies[0].rules.maxLevrage"),
    ({"type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 5}, "rule": {}}, "policies[0].rule"),
    ({"type": "ACTION_CATEGORY_LIMIT", "rules": {"categoryLimits": {"swap": {"daily_limt_usd": 1}}}},
     "policies[0].rules.categoryLimits.swap.daily_limt_usd"),
    ({"type": "PERP_ALLOWED_MARKETS", "rules": {"markets": [{"market": "BTC", "venue": "hl"}]}}, "policies[0].rules.markets[0].venue"),
])
def test_an_unknown_field_is_rejected_by_name(body, where):
    with pytest.raises(PolicyError) as err:
        parse_policies([body])
    assert err.value.field == where
    assert "unknown field" in str(err.value)


def test_a_misspelt_required_field_is_reported_by_its_misspelt_name():
    # A trader who typed maxLevrage must be told about maxLevrage (SPEC 4: "Unknown fields are
    # rejected with the field's name"), not only that maxLeverage is missing.
    with pytest.raises(PolicyError) as err:
        parse_policies([{"type": "PERP_MAX_LEVERAGE", "rules": {"maxLevrage": 5}}])
    assert err.value.field == "policies[0].rules.maxLevrage"


@pytest.mark.parametrize("body, where", [
    ({"type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": "5"}}, "policies[0].rules.maxLeverage"),
    ({"type": "RATE_LIMIT", "rules": {"maxTransactions": "100", "period": "hourly"}}, "policies[0].rules.maxTransactions"),
    ({"type": "PERP_MAX_POSITION_USD", "rules": {"maxPositionUsd": 50000, "marketLimits": {"BTC-USD": "25000"}}},
     "policies[0].rules.marketLimits.BTC-USD"),
    ({"type": "SPENDING_LIMIT", "rules": {"daily_limit_usd": "50k"}}, "policies[0].rules.daily_limit_usd"),
])
def test_a_string_where_a_number_is_expected_is_rejected(body, where):
    with pytest.raises(PolicyError) as err:
        parse_policies([body])
    assert err.value.field == where


@pytest.mark.parametrize("body, where", [
    ({"type": "PERP_MAX_LEVERAGES", "rules": {}}, "policies[0].type"),
    ({"type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": -1}}, "policies[0].rules.maxLeverage"),
    ({"type": "MIN_MARGIN_BUFFER", "rules": {**BUFFER_RULES, "panicBuffer": 0.6}}, "policies[0].rules"),
    ({"type": "RATE_LIMIT", "rules": {"maxTransactions": 5, "period": "fortnightly"}}, "policies[0].rules.period"),
    ({"type": "TIME_RESTRICTION", "rules": {"timezone": "Mars/Olympus"}}, "policies[0].rules.timezone"),
])
def test_values_a_trader_could_not_mean_are_rejected(body, where):
    with pytest.raises(PolicyError) as err:
        parse_policies([body])
    assert err.value.field == where


def test_duplicate_ids_are_rejected():
    with pytest.raises(PolicyError) as err:
        parse_policies([{"id": "a", "type": "RATE_LIMIT", "rules": {"maxTransactions": 1, "period": "minute"}},
                        {"id": "a", "type": "PRICE_BAND", "rules": {"maxDeviation": 0.05}}])
    assert err.value.field == "policies[1].id"


@pytest.mark.parametrize("line", SEED_LINES, ids=[b["type"] for b in SEED_BODIES])
def test_each_seed_body_parses_verbatim(line):
    (policy,) = parse_policies([json.loads(line)])
    assert policy.type == json.loads(line)["type"]
    assert policy.account == "<id>"
    assert policy.enabled


def test_the_seed_set_in_action():
    gate, _ = make_gate(list(SEED_BODIES), book=make_book(equity=20_000))
    # leverageTiers: BTC 3x of 20k = 60k, but the BTC position cap of 25000 is tighter
    btc = gate.evaluate(order("BTC-USD", size=0.6))
    assert sorted(codes(btc)) == ["POSITION_LIMIT"]
    assert the_denial(btc, "POSITION_LIMIT").limit == 25_000
    # ETH: 4x of 20k = 80k and a 15000 cap; SOL: ALT 2x = 40k and a 10000 cap
    assert the_denial(gate.evaluate(order("ETH", size=5.1)), "POSITION_LIMIT").limit == 15_000
    eth = gate.evaluate(order("ETH", size=5.0))
    assert eth.allowed and eth.tier is Tier.DELAY and eth.hold_seconds == 300
    # DOGE is not an allowed market
    assert "MARKET_NOT_ALLOWED" in codes(gate.evaluate(order("DOGE", size=100.0)))


# ---- 7. policy files -----------------------------------------------------------------------

def _summary(policies) -> list[tuple[str, dict]]:
    return [(p.type, p.rules.model_dump()) for p in policies]


def test_a_json_list_policy_file(tmp_path):
    path = tmp_path / "policies.json"
    path.write_text(json.dumps(SEED_BODIES, indent=2))
    assert _summary(load_policy_file(path)) == _summary(parse_policies(list(SEED_BODIES)))


def test_a_policy_file_with_one_body_per_line(tmp_path):
    path = tmp_path / "policies.jsonl"
    path.write_text("\n".join(SEED_LINES) + "\n\n")
    policies = load_policy_file(path)
    assert [p.type for p in policies] == [b["type"] for b in SEED_BODIES]
    assert _summary(policies) == _summary(parse_policies(list(SEED_BODIES)))


def test_a_toml_policy_file(tmp_path):
    path = tmp_path / "policies.toml"
    path.write_text("""
[[policy]]
type = "PERP_MAX_LEVERAGE"
[policy.rules]
maxLeverage = 5.0
[policy.rules.leverageTiers]
"BTC-USD" = 3.0
"ALT-USD" = 2

[[policy]]
id = "quiet-hours"
type = "TIME_RESTRICTION"
enabled = false
[policy.rules]
allowedDays = ["mon", "tue"]
[policy.rules.allowedHours]
start = "09:30"
end = 17

[[policy]]
type = "RATE_LIMIT"
[policy.rules]
maxTransactions = 60
period = "minute"
""")
    leverage, hours, rate = load_policy_file(path)
    assert (leverage.type, leverage.rules.maxLeverage, leverage.rules.leverageTiers) == ("PERP_MAX_LEVERAGE", 5.0, {"BTC": 3.0, "ALT": 2})
    assert (hours.id, hours.enabled, hours.rules.allowedHours.start) == ("quiet-hours", False, "09:30")
    assert (rate.rules.maxTransactions, rate.rules.seconds) == (60, 60.0)
    gate, _ = make_gate(read_policy_bodies(path))
    assert gate.evaluate(order(size=6.0)).allowed  # 3x on BTC; the disabled window does not apply
    assert codes(gate.evaluate(order(size=6.1))) == ["LEVERAGE_LIMIT"]
