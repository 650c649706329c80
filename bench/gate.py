"""Gate latency: one order against all 22 policy types, with N open positions."""

from __future__ import annotations

import time

from engine.risk.book import Book
from engine.domain.clock import ManualClock
from engine.risk.counters import RiskCounters
from engine.risk.gate import RiskGate
from engine.domain.margin import MarginTable
from engine.domain.model import Account, MarketInfo, OrderIntent, Position
from engine.risk.policies import POLICY_TYPES, parse_policies

T0 = 1_700_000_000.0

# Every type of the catalogue, with limits an ordinary order passes (the full path runs).
ALL_POLICIES = [
    {"type": "PERP_MAX_LEVERAGE", "rules": {"maxLeverage": 5, "leverageTiers": {"BTC": 3, "ALT": 2}, "warningLeverage": 4}},
    {"type": "PERP_MAX_POSITION_USD", "rules": {"maxPositionUsd": 50000, "marketLimits": {"BTC": 25000}}},
    {"type": "PERP_ALLOWED_MARKETS", "rules": {"allowedMarkets": [f"C{i}" for i in range(600)] + ["BTC"]}},
    {"type": "SPENDING_LIMIT", "rules": {"instant_max_usd": 1000, "notify_max_usd": 5000, "delay_max_usd": 20000,
                                         "daily_limit_usd": 50000, "monthly_limit_usd": 500000}},
    {"type": "RATE_LIMIT", "rules": {"maxTransactions": 1_000_000, "period": "minute"}},
    {"type": "ACTION_CATEGORY_LIMIT", "rules": {"categoryLimits": {"derivatives": {"daily_limit_usd": 200000}}}},
    {"type": "MAX_GROSS_EXPOSURE", "rules": {"maxExposure": 3, "maxGrossUsd": 1_000_000}},
    {"type": "MAX_POSITION_SHARE", "rules": {"maxPositionShare": 0.5}},
    {"type": "MIN_MARGIN_BUFFER", "rules": {"minBuffer": 0.6, "warnBuffer": 0.5, "panicBuffer": 0.25, "targetBuffer": 0.7}},
    {"type": "LOSS_LIMIT", "rules": {"dailyLoss": 0.05, "weeklyLoss": 0.15, "sessionLossUsd": 10000}},
    {"type": "MAX_DRAWDOWN", "rules": {"maxDrawdown": 0.2}},
    {"type": "CIRCUIT_BREAKER", "rules": {"maxConsecutiveLosses": 3, "cooldownMinutes": 60}},
    {"type": "REWARD_RISK", "rules": {"requireStopLoss": True, "minRewardRisk": 1.5}},
    {"type": "RISK_PER_TRADE", "rules": {"maxRiskShare": 0.01}},
    {"type": "STALE_DATA", "rules": {"maxMarkAgeSeconds": 10, "maxAccountAgeSeconds": 30}},
    {"type": "PRICE_BAND", "rules": {"maxDeviation": 0.05}},
    {"type": "FUNDING_GUARD", "rules": {"maxHourlyFunding": 0.001}},
    {"type": "CONCENTRATION", "rules": {"maxMarketShare": 0.9, "minGrossUsd": 10000}},
    {"type": "VOLATILITY_LEVERAGE", "rules": {"targetVolatility": 2.0, "lookbackMinutes": 60, "floorLeverage": 1}},
    {"type": "TIME_RESTRICTION", "rules": {"allowedDays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}},
    {"type": "ORDER_LIMITS", "rules": {"maxOrderUsd": 20000, "maxOpenOrders": 50, "minOrderUsd": 10}},
    {"type": "VENUE_STOP", "rules": {"triggerBuffer": 0.15}},
]
assert {b["type"] for b in ALL_POLICIES} == set(POLICY_TYPES), "the bench must cover every policy type"


def build(positions: int) -> tuple[RiskGate, OrderIntent]:
    coins = [f"C{i}" for i in range(positions)]
    markets = {c: MarketInfo(c, 2, MarginTable.flat(20)) for c in coins + ["BTC"]}
    marks = {c: 100.0 for c in coins} | {"BTC": 50_000.0}
    book = Book(markets)
    equity = 1_000_000.0
    book.load(Account(equity, equity, equity, T0), [Position(c, 10.0 if i % 2 else -10.0, 100.0) for i, c in enumerate(coins)],
              marks=marks, at=T0)
    counters = RiskCounters()
    clock = ManualClock(T0 - 3600)
    gate = RiskGate(parse_policies(ALL_POLICIES), book, counters, clock)
    for minute in range(61):  # an hour of BTC marks for realized volatility
        t = T0 - 3600 + minute * 60
        counters.on_mark("BTC", 50_000 * (1 + 0.001 * ((-1) ** minute)), t)
        book.set_mark("BTC", 50_000.0, t)
    book.set_mark("BTC", 50_000.0, T0)
    book.touch_account(T0)
    book.set_funding("BTC", 0.0001)
    counters.on_equity(equity, T0)
    clock.set(T0)
    intent = OrderIntent(market="BTC", side="buy", size=0.01, type="limit", limit_px=50_000.0,
                         stop_loss=49_000.0, take_profit=52_000.0)
    return gate, intent


def measure(positions: int, n: int = 20_000, repeats: int = 5) -> dict:
    gate, intent = build(positions)
    decision = gate.evaluate(intent)
    assert decision.allowed, [r.message for r in decision.reasons]
    evaluate, clock = gate.evaluate, time.perf_counter_ns
    p50s, p99s = [], []
    for _ in range(repeats):
        samples = []
        for _ in range(n):
            t0 = clock()
            evaluate(intent)
            samples.append(clock() - t0)
        samples.sort()
        p50s.append(samples[n // 2] / 1000)
        p99s.append(samples[int(n * 0.99)] / 1000)
    p50s.sort()
    p99s.sort()
    return {"p50_us": p50s[repeats // 2], "p99_us": p99s[repeats // 2]}
