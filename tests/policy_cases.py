"""Shared cases for the policy tests: the catalogue's types, the seed bodies of SPEC section 11,
and small helpers to read decisions. Imported by the test_policies* and gate-property files."""


from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from typing import Callable

import pytest

from builders import MARKETS, MARKS, T0, make_book, make_gate, order
from engine.risk.book import Book
from engine.domain.clock import ManualClock
from engine.risk.counters import DAY, RiskCounters
from engine.risk.gate import RiskGate
from engine.domain.model import Account, OpenOrder, Position, Tier, TradingState, Verdict
from engine.risk.policies import POLICY_TYPES, PolicyError, parse_policies
from engine.risk.policy_file import load_policy_file, read_policy_bodies

ALL_TYPES = {
    "PERP_MAX_LEVERAGE", "PERP_MAX_POSITION_USD", "PERP_ALLOWED_MARKETS", "SPENDING_LIMIT", "RATE_LIMIT",
    "ACTION_CATEGORY_LIMIT", "MAX_GROSS_EXPOSURE", "MAX_POSITION_SHARE", "MIN_MARGIN_BUFFER", "LOSS_LIMIT",
    "MAX_DRAWDOWN", "CIRCUIT_BREAKER", "REWARD_RISK", "RISK_PER_TRADE", "STALE_DATA", "PRICE_BAND",
    "FUNDING_GUARD", "CONCENTRATION", "VOLATILITY_LEVERAGE", "TIME_RESTRICTION", "ORDER_LIMITS",
}  # the types that judge orders
PROTECTING_TYPES = {"VENUE_STOP"}  # judge no order: they protect positions on the venue

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


# ---- state setters for the case tables ------------------------------------------------
def losses_state(n: int, at: float = T0) -> Callable[[RiskGate], None]:
    def setup(gate: RiskGate) -> None:
        for i in range(n):
            gate.counters.on_close(-100.0, at - 60 * (n - i))
    return setup

def spent_state(usd: list[float], category: str = "derivatives") -> Callable[[RiskGate], None]:
    def setup(gate: RiskGate) -> None:
        for i, amount in enumerate(usd):
            spend(gate, amount, T0 - 3_600 * (len(usd) - i), category)
    return setup

def mark_state(coin: str, px: float, at: float = T0) -> Callable[[RiskGate], None]:
    return lambda gate: gate.book.set_mark(coin, px, at)

def funding_state(coin: str, rate: float) -> Callable[[RiskGate], None]:
    return lambda gate: gate.book.set_funding(coin, rate)

def peak_state(equity: float) -> Callable[[RiskGate], None]:
    return lambda gate: gate.counters.on_equity(equity, T0 - 3_600)

def run_setters(case: Case, probe: Probe):
    gate, _ = make_gate([case.body], book=make_book(positions=case.positions))
    if probe.setup:
        probe.setup(gate)
    return gate.evaluate(order(**probe.intent), now=probe.now)
